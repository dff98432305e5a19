//! Segments: one Parquet file per tenant, stream and time partition, with the term index
//! embedded after the last row group. Writer, reader, footer keys and the footer digest.

mod digest;
mod reader;
pub mod shred;
mod source;
mod writer;

pub use digest::footer_digest;
pub use reader::{SegmentFooter, SegmentReader, VerifyReport};
pub use source::SegmentFile;
pub use writer::{
    ROW_ORDER, ROW_ORDER_BY_TEMPLATE, SegmentCompression, SegmentLabels, SegmentWriter,
    SegmentWriterOptions, WrittenSegment, fsync_dir, sort_for_segment,
};

/// Version of the segment format (docs/format.md); recorded in the footer. Version 2 added
/// shredded attribute columns ([`shred`]).
pub const SEGMENT_FORMAT_VERSION: u32 = 2;

/// Segment format versions this build reads: version 1 is version 2 without shredded columns.
pub const READABLE_FORMAT_VERSIONS: std::ops::RangeInclusive<u32> = 1..=SEGMENT_FORMAT_VERSION;

/// Footer key-value metadata keys. They locate and check the index; they never hold it.
pub mod footer_keys {
    pub const FORMAT_VERSION: &str = "silt.format_version";
    pub const INDEX_VERSION: &str = "silt.index.version";
    pub const TOKENIZER_VERSION: &str = "silt.tokenizer.version";
    pub const INDEX_OFFSET: &str = "silt.index.offset";
    pub const INDEX_LENGTH: &str = "silt.index.length";
    pub const INDEX_DIRECTORY_LENGTH: &str = "silt.index.directory_length";
    pub const INDEX_DIRECTORY_CRC32C: &str = "silt.index.directory_crc32c";
    pub const TENANT: &str = "silt.tenant";
    pub const STREAM: &str = "silt.stream";
    pub const PARTITION: &str = "silt.partition";
    /// The order of the rows (`service,level,timestamp,_seq`); absent in segments sorted by
    /// `(timestamp, _seq)` alone, which older writers made. Informational: readers assume no order.
    pub const ROW_ORDER: &str = "silt.row_order";
}

/// Rows per Parquet row group: a flush's segment (up to ~300 k rows) is one row group. Pages
/// (one posting block each) are the unit of index pruning, and page statistics prune time, so
/// smaller row groups bought nothing but a dictionary per column chunk: with 65,536 rows a
/// trace look-up loaded `trace_id`'s dictionary in each row group it touched (5.4 MiB read,
/// 15 ms, against 3.0 MiB, 8.9 ms with one row group), and the column took 6.0 bytes a row
/// against 2.9 (benchmark corpus, docs/format.md "Rows").
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 20;

/// The row-group bytes of a segment (everything before the index) are checksummed in stripes
/// of this size; a reader verifies the stripes under every range it reads, so a damaged data
/// page is refused instead of decoded. Parquet-rs writes no page checksums of its own.
/// 4 KiB: a needle read touches a few small pages per column, and every byte of the stripes
/// around them is read to check them. A trace look-up read 7.6 MiB with 16 KiB stripes and
/// 3.8 MiB with 4 KiB (64 KiB read 5× more than 16 KiB); the table costs 4 bytes a stripe.
pub const STRIPE_BYTES: u32 = 4 * 1024;

/// Statistics and column-index min/max values are cut to this many bytes, keeping the footer
/// small for long messages.
pub const STATISTICS_TRUNCATE_BYTES: usize = 64;
