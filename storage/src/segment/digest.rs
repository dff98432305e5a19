//! The footer digest: a blake3 hash of the Parquet footer's row-group layout, stored in the
//! checksummed index directory so a reader detects a damaged footer before trusting it.

use parquet::file::metadata::RowGroupMetaData;
use parquet::schema::types::SchemaDescriptor;

/// Hashes what decides which bytes a reader fetches, which row groups it prunes and how it
/// decodes them: the encoded Arrow schema (`ARROW:schema`), the column paths and physical
/// types, and for every row group and column chunk the row and value counts, page offsets,
/// sizes, codec and min/max statistics. Page-index locations are excluded: they are assigned
/// when the footer is written, after the index.
pub fn footer_digest(
    arrow_schema: &str,
    schema: &SchemaDescriptor,
    row_groups: &[RowGroupMetaData],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"silt footer digest v1");
    h.update(&(arrow_schema.len() as u64).to_le_bytes());
    h.update(arrow_schema.as_bytes());
    h.update(&(schema.num_columns() as u64).to_le_bytes());
    for column in schema.columns() {
        let path = column.path().string();
        h.update(&(path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(format!("{:?}", column.physical_type()).as_bytes());
    }
    h.update(&(row_groups.len() as u64).to_le_bytes());
    for rg in row_groups {
        h.update(&rg.num_rows().to_le_bytes());
        h.update(&(rg.num_columns() as u64).to_le_bytes());
        for chunk in rg.columns() {
            h.update(&chunk.data_page_offset().to_le_bytes());
            h.update(&chunk.dictionary_page_offset().unwrap_or(-1).to_le_bytes());
            h.update(&chunk.compressed_size().to_le_bytes());
            h.update(&chunk.uncompressed_size().to_le_bytes());
            h.update(&chunk.num_values().to_le_bytes());
            h.update(format!("{:?}", chunk.compression()).as_bytes());
            match chunk.statistics() {
                Some(stats) => {
                    h.update(&[1]);
                    for bytes in [stats.min_bytes_opt(), stats.max_bytes_opt()] {
                        let bytes = bytes.unwrap_or_default();
                        h.update(&(bytes.len() as u64).to_le_bytes());
                        h.update(bytes);
                    }
                    h.update(&stats.null_count_opt().unwrap_or(u64::MAX).to_le_bytes());
                }
                None => {
                    h.update(&[0]);
                }
            }
        }
    }
    *h.finalize().as_bytes()
}
