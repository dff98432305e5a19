//! Opens a segment with ranged reads (footer, index directory, then only the term blocks a
//! look-up needs), checks every section it reads, and turns postings into Parquet row selections.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use roaring::RoaringBitmap;

use super::shred::{fold_batch, shred_field, shredded_key};
use super::source::StripeTable;
use super::{READABLE_FORMAT_VERSIONS, SegmentFile, SegmentLabels, footer_digest, footer_keys};
use crate::error::{ErrorKind, Result, StorageError};
use crate::index::{
    FIELD_SEPARATOR, FilterPartition, IndexDirectory, READABLE_INDEX_VERSIONS, Term, TermBlock,
};
use crate::tokenizer::TOKENIZER_VERSION;

/// Bytes fetched from the end of a file on open, enough for a typical footer and page index in
/// one request.
pub const FOOTER_PREFETCH_BYTES: usize = 64 * 1024;

/// What the footer's key-value metadata says about the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFooter {
    pub format_version: u32,
    pub index_version: u16,
    pub tokenizer_version: u16,
    pub index_offset: u64,
    pub index_length: u64,
    pub directory_length: u64,
    pub directory_crc32c: u32,
    pub labels: SegmentLabels,
}

impl SegmentFooter {
    fn from_metadata(metadata: &ParquetMetaData, file_size: u64, location: &str) -> Result<Self> {
        let kv: HashMap<&str, &str> = metadata
            .file_metadata()
            .key_value_metadata()
            .map(|kvs| {
                kvs.iter()
                    .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_deref()?)))
                    .collect()
            })
            .unwrap_or_default();
        let text = |key: &str| -> Result<&str> {
            kv.get(key).copied().ok_or_else(|| {
                StorageError::corrupt(location, format!("footer key {key} is missing"))
            })
        };
        let number = |key: &str| -> Result<u64> {
            text(key)?.parse().map_err(|_| {
                StorageError::corrupt(location, format!("footer key {key} is not a number"))
            })
        };
        let format_version = number(footer_keys::FORMAT_VERSION)?;
        if !u32::try_from(format_version).is_ok_and(|v| READABLE_FORMAT_VERSIONS.contains(&v)) {
            return Err(StorageError::unsupported_version(
                location,
                format!("segment format version {format_version}"),
            ));
        }
        let index_version = number(footer_keys::INDEX_VERSION)?;
        if !u16::try_from(index_version).is_ok_and(|v| READABLE_INDEX_VERSIONS.contains(&v)) {
            return Err(StorageError::unsupported_version(
                location,
                format!("index version {index_version}"),
            ));
        }
        let tokenizer_version = number(footer_keys::TOKENIZER_VERSION)?;
        if tokenizer_version != u64::from(TOKENIZER_VERSION) {
            return Err(StorageError::unsupported_version(
                location,
                format!("tokenizer version {tokenizer_version}"),
            ));
        }
        let index_offset = number(footer_keys::INDEX_OFFSET)?;
        let index_length = number(footer_keys::INDEX_LENGTH)?;
        let directory_length = number(footer_keys::INDEX_DIRECTORY_LENGTH)?;
        let directory_crc32c = u32::from_str_radix(text(footer_keys::INDEX_DIRECTORY_CRC32C)?, 16)
            .map_err(|_| {
                StorageError::corrupt(
                    location,
                    "footer key silt.index.directory_crc32c is not hex",
                )
            })?;
        if index_offset < 4
            || directory_length > index_length
            || index_offset
                .checked_add(index_length)
                .is_none_or(|end| end > file_size)
        {
            return Err(StorageError::corrupt(
                location,
                "index location in footer is outside the file",
            ));
        }
        let label = |key: &str| kv.get(key).map(|s| s.to_string()).unwrap_or_default();
        Ok(Self {
            format_version: format_version as u32,
            index_version: index_version as u16,
            tokenizer_version: tokenizer_version as u16,
            index_offset,
            index_length,
            directory_length,
            directory_crc32c,
            labels: SegmentLabels {
                tenant: label(footer_keys::TENANT),
                stream: label(footer_keys::STREAM),
                partition: label(footer_keys::PARTITION),
            },
        })
    }
}

/// Result of [`SegmentReader::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// blake3 of the whole file as it is now; compare with the catalog's.
    pub blake3: [u8; 32],
    pub index_blocks_checked: usize,
}

/// An open segment: parsed footer, checked index directory, and the file to read from.
#[derive(Debug, Clone)]
pub struct SegmentReader {
    file: SegmentFile,
    metadata: Arc<ParquetMetaData>,
    footer: SegmentFooter,
    directory: Arc<IndexDirectory>,
    /// Attribute keys stored as columns of their own, in column order (after the log schema's).
    shreds: Arc<[String]>,
}

fn parquet_error(location: &str, e: ParquetError) -> StorageError {
    match e {
        ParquetError::External(inner) => match inner.downcast::<StorageError>() {
            Ok(storage) => *storage,
            Err(other) => StorageError::corrupt(location, other),
        },
        other => StorageError::from_parquet(location, other),
    }
}

impl SegmentReader {
    /// Opens a local segment file (memory-mapped).
    pub async fn open_local(path: &std::path::Path) -> Result<Self> {
        Self::open(SegmentFile::open_local(path)?).await
    }

    /// Opens a segment: reads the footer with its page index, then the index directory, and
    /// checks the directory checksum, versions, row count, footer digest and the page index's
    /// structure. Use [`SegmentReader::open_verified`] when the catalog knows the page index
    /// checksum.
    pub async fn open(file: SegmentFile) -> Result<Self> {
        Self::open_verified(file, None).await
    }

    /// Like [`SegmentReader::open`], and checks the Parquet page index against the crc32c the
    /// writer recorded ([`super::WrittenSegment::page_index_crc32c`]).
    pub async fn open_verified(
        mut file: SegmentFile,
        page_index_crc32c: Option<u32>,
    ) -> Result<Self> {
        let location = file.location().to_string();
        if file.size() < 12 {
            return Err(StorageError::corrupt(
                &location,
                format!("file is too short ({} bytes) to be Parquet", file.size()),
            ));
        }
        let size = file.size();
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .with_prefetch_hint(Some(FOOTER_PREFETCH_BYTES))
            .load_and_finish(&mut file, size)
            .await
            .map_err(|e| parquet_error(&location, e))?;
        let metadata = Arc::new(metadata);
        let footer = SegmentFooter::from_metadata(&metadata, size, &location)?;
        if let Some(expected) = page_index_crc32c {
            let start = footer.index_offset + footer.index_length;
            let tail = file.read(size - 8..size).await?;
            let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
            let end = (size - 8).checked_sub(footer_len).filter(|&e| e >= start);
            let end =
                end.ok_or_else(|| StorageError::corrupt(&location, "footer overlaps the index"))?;
            let actual = crc32c::crc32c(&file.read(start..end).await?);
            if actual != expected {
                return Err(StorageError::corrupt(
                    &location,
                    format!(
                        "page index checksum mismatch (expected {expected:08x}, found {actual:08x})"
                    ),
                ));
            }
        }
        check_offset_index(&metadata)
            .map_err(|what| StorageError::corrupt(&location, format!("page index: {what}")))?;
        let shreds = stored_shreds(&metadata, footer.format_version)
            .map_err(|what| StorageError::corrupt(&location, format!("columns: {what}")))?;
        let dir_range = footer.index_offset..footer.index_offset + footer.directory_length;
        let dir_bytes = file.read(dir_range).await?;
        let directory = IndexDirectory::decode(
            &dir_bytes,
            footer.directory_crc32c,
            footer.index_length,
            &location,
        )?;
        if directory.version != footer.index_version {
            return Err(StorageError::corrupt(
                &location,
                format!(
                    "footer says index version {}, index directory says {}",
                    footer.index_version, directory.version
                ),
            ));
        }
        let rows = metadata.file_metadata().num_rows();
        if u64::try_from(rows).ok() != Some(directory.rows) {
            return Err(StorageError::corrupt(
                &location,
                format!("footer says {rows} rows, index says {}", directory.rows),
            ));
        }
        let arrow_schema =
            kv_value(&metadata, parquet::arrow::ARROW_SCHEMA_META_KEY).unwrap_or_default();
        let digest = footer_digest(
            &arrow_schema,
            metadata.file_metadata().schema_descr(),
            metadata.row_groups(),
        );
        if digest != directory.footer_digest {
            return Err(StorageError::corrupt(
                &location,
                "footer digest mismatch: the parquet footer was altered",
            ));
        }
        let expected_stripes = footer
            .index_offset
            .div_ceil(u64::from(directory.stripe_bytes));
        if directory.stripes.len() as u64 != expected_stripes {
            return Err(StorageError::corrupt(
                &location,
                "data checksum table does not cover the row groups",
            ));
        }
        file.set_stripes(StripeTable {
            stripe_bytes: u64::from(directory.stripe_bytes),
            data_end: footer.index_offset,
            crcs: directory.stripes.clone(),
        });
        file.set_metadata(metadata.clone());
        Ok(Self {
            file,
            metadata,
            footer,
            directory: Arc::new(directory),
            shreds: shreds.into(),
        })
    }

    /// Attribute keys this segment stores as columns of their own (`attributes.<key>`), in
    /// column order; readers fold them back into `attributes`.
    pub fn shredded_keys(&self) -> &[String] {
        &self.shreds
    }

    pub fn location(&self) -> &str {
        self.file.location()
    }

    pub fn file(&self) -> &SegmentFile {
        &self.file
    }

    pub fn metadata(&self) -> &Arc<ParquetMetaData> {
        &self.metadata
    }

    pub fn footer(&self) -> &SegmentFooter {
        &self.footer
    }

    pub fn directory(&self) -> &IndexDirectory {
        &self.directory
    }

    pub fn num_rows(&self) -> u64 {
        self.directory.rows
    }

    /// The same open segment with a byte counter of its own, so one query's reads are counted
    /// apart from others'.
    pub fn for_query(&self) -> Self {
        Self {
            file: self.file.with_own_counter(),
            ..self.clone()
        }
    }

    /// Bytes fetched so far through this reader.
    pub fn bytes_read(&self) -> u64 {
        self.file.bytes_read()
    }

    async fn read_blocks(&self, which: Range<usize>) -> Result<Vec<TermBlock>> {
        let entries = &self.directory.blocks[which];
        let ranges: Vec<Range<u64>> = entries
            .iter()
            .map(|b| {
                self.footer.index_offset + b.offset..self.footer.index_offset + b.offset + b.length
            })
            .collect();
        let bytes = self.file.read_ranges(&ranges).await?;
        let posting_blocks = self.directory.posting_blocks();
        entries
            .iter()
            .zip(bytes)
            .map(|(entry, bytes)| TermBlock::decode(&bytes, entry, posting_blocks, self.location()))
            .collect()
    }

    /// Candidate posting blocks of `term`: its exact postings if it is in the dictionary, else
    /// the blocks whose fingerprint set holds its fingerprint (a superset; the scan re-checks).
    /// Reads the one term block and the one fingerprint partition it can be in, in one request.
    pub async fn lookup(&self, term: &Term) -> Result<RoaringBitmap> {
        let bytes = term.as_bytes();
        let block = self.directory.block_for(bytes);
        let filter = self.directory.filter_for(bytes);
        let base = self.footer.index_offset;
        let mut ranges = Vec::with_capacity(2);
        if let Some(b) = block {
            let e = &self.directory.blocks[b];
            ranges.push(base + e.offset..base + e.offset + e.length);
        }
        if let Some((p, _)) = filter {
            let e = &self.directory.filters[p];
            ranges.push(base + e.offset..base + e.offset + e.length);
        }
        let mut fetched = self.file.read_ranges(&ranges).await?.into_iter();
        let posting_blocks = self.directory.posting_blocks();
        if let Some(b) = block {
            let bytes_read = fetched.next().expect("one range per section");
            let decoded = TermBlock::decode(
                &bytes_read,
                &self.directory.blocks[b],
                posting_blocks,
                self.location(),
            )?;
            if let Some(postings) = decoded.get(bytes) {
                return Ok(postings.clone());
            }
        }
        match filter {
            Some((p, fingerprint)) => {
                let bytes_read = fetched.next().expect("one range per section");
                let partition = FilterPartition::decode(
                    &bytes_read,
                    &self.directory.filters[p],
                    posting_blocks,
                    self.directory.version,
                    self.location(),
                )?;
                Ok(partition.blocks_with(fingerprint))
            }
            None => Ok(RoaringBitmap::new()),
        }
    }

    /// Union of the posting blocks of every term starting with `prefix` (field + value prefix).
    /// Exact for dictionary terms; blocks holding rare terms of the field are always included,
    /// since their values are only fingerprints.
    pub async fn lookup_prefix(&self, prefix: &Term) -> Result<RoaringBitmap> {
        let start = prefix.as_bytes();
        let end = prefix_end(start);
        let mut out = self.union_range(start, end.as_deref(), |_| true).await?;
        if let Some(field) = prefix.field() {
            out |= self.directory.rare_blocks(field);
        }
        Ok(out)
    }

    /// Union of the posting blocks of every term of `field` whose value satisfies `matches`.
    /// Reads every term block of the field (regular expressions, wildcards).
    pub async fn lookup_matching(
        &self,
        field: &str,
        matches: impl Fn(&[u8]) -> bool,
    ) -> Result<RoaringBitmap> {
        let start = Term::from_parts(field, b"");
        let mut end = field.as_bytes().to_vec();
        end.push(FIELD_SEPARATOR + 1);
        let field_len = start.as_bytes().len();
        let exact = self
            .union_range(start.as_bytes(), Some(&end), |term| {
                matches(&term[field_len..])
            })
            .await?;
        Ok(exact | self.directory.rare_blocks(field))
    }

    /// Union of the posting blocks of every term of `field` whose value the regular expression
    /// `pattern` matches entirely (anchored at both ends). Values are lower-cased in the index,
    /// so the pattern is compiled case-insensitively.
    pub async fn lookup_regex(&self, field: &str, pattern: &str) -> Result<RoaringBitmap> {
        let regex = compile_anchored(pattern)?;
        let literal_prefix = literal_prefix(pattern);
        if !literal_prefix.is_empty() {
            // Only terms starting with the pattern's literal prefix can match.
            let prefix = Term::from_parts(field, literal_prefix.to_lowercase().as_bytes());
            let start = prefix.as_bytes();
            let field_len = field.len() + 1;
            let exact = self
                .union_range(start, prefix_end(start).as_deref(), |t| {
                    regex.is_match(&t[field_len..])
                })
                .await?;
            return Ok(exact | self.directory.rare_blocks(field));
        }
        self.lookup_matching(field, |value| regex.is_match(value))
            .await
    }

    /// Union of the posting blocks of every term of `field` matching a wildcard pattern where
    /// `*` is any run of characters and `?` one character.
    pub async fn lookup_wildcard(&self, field: &str, pattern: &str) -> Result<RoaringBitmap> {
        let mut re = String::with_capacity(pattern.len() * 2);
        for c in pattern.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0u8; 4]))),
            }
        }
        self.lookup_regex(field, &re).await
    }

    async fn union_range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<RoaringBitmap> {
        let which = self.directory.blocks_in_range(start, end);
        let mut out = RoaringBitmap::new();
        for block in self.read_blocks(which).await? {
            for (_, postings) in block.range(start, end).filter(|(t, _)| keep(t)) {
                out |= postings;
            }
        }
        Ok(out)
    }

    /// Every dictionary term (those in two or more posting blocks) with its postings, in order.
    /// Reads every term block; for inspection and tests.
    pub async fn terms(&self) -> Result<Vec<(Vec<u8>, RoaringBitmap)>> {
        let blocks = self.read_blocks(0..self.directory.blocks.len()).await?;
        Ok(blocks
            .iter()
            .flat_map(|b| b.iter().map(|(t, p)| (t.to_vec(), p.clone())))
            .collect())
    }

    /// Rows (file-global row numbers) covered by posting `block`.
    pub fn block_rows(&self, block: u32) -> Range<u64> {
        let size = u64::from(self.directory.block_rows);
        let start = u64::from(block) * size;
        start.min(self.directory.rows)..(start + size).min(self.directory.rows)
    }

    /// For each row group that holds rows of `blocks`, its index and the row ranges inside it
    /// (relative to the row group's first row). Row groups without such rows are absent.
    pub fn row_group_ranges(&self, blocks: &RoaringBitmap) -> Vec<(usize, Vec<Range<usize>>)> {
        let mut out: Vec<(usize, Vec<Range<usize>>)> = Vec::new();
        let mut rg_start = 0u64;
        let mut block_iter = blocks.iter().peekable();
        for (rg, meta) in self.metadata.row_groups().iter().enumerate() {
            let rg_end = rg_start + meta.num_rows() as u64;
            let mut ranges: Vec<Range<usize>> = Vec::new();
            while let Some(&block) = block_iter.peek() {
                let rows = self.block_rows(block);
                if rows.start >= rg_end {
                    break;
                }
                let start = rows.start.max(rg_start);
                let end = rows.end.min(rg_end);
                if start < end {
                    let range = (start - rg_start) as usize..(end - rg_start) as usize;
                    match ranges.last_mut() {
                        Some(last) if last.end == range.start => last.end = range.end,
                        _ => ranges.push(range),
                    }
                }
                if rows.end > rg_end {
                    break; // the block continues into the next row group
                }
                block_iter.next();
            }
            if !ranges.is_empty() {
                out.push((rg, ranges));
            }
            rg_start = rg_end;
        }
        out
    }

    /// Row groups and the selection over their rows that cover exactly `blocks`.
    pub fn row_selection(&self, blocks: &RoaringBitmap) -> (Vec<usize>, RowSelection) {
        let mut row_groups = Vec::new();
        let mut ranges = Vec::new();
        let mut offset = 0usize;
        for (rg, rg_ranges) in self.row_group_ranges(blocks) {
            row_groups.push(rg);
            ranges.extend(
                rg_ranges
                    .into_iter()
                    .map(|r| r.start + offset..r.end + offset),
            );
            offset += self.metadata.row_group(rg).num_rows() as usize;
        }
        (
            row_groups,
            RowSelection::from_consecutive_ranges(ranges.into_iter(), offset),
        )
    }

    /// Row groups and the selection over their rows that picks exactly `rows` (segment row
    /// numbers, increasing, each below the segment's row count).
    pub fn rows_selection(&self, rows: &[u64]) -> (Vec<usize>, RowSelection) {
        let mut row_groups = Vec::new();
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let (mut rg_start, mut offset) = (0u64, 0usize);
        let mut next = rows.iter().copied().peekable();
        for rg in 0..self.metadata.num_row_groups() {
            let rg_rows = self.metadata.row_group(rg).num_rows() as u64;
            let rg_end = rg_start + rg_rows;
            let mut any = false;
            while let Some(row) = next.next_if(|&r| r < rg_end) {
                if row < rg_start {
                    continue; // out of order: already passed
                }
                any = true;
                let at = offset + (row - rg_start) as usize;
                match ranges.last_mut() {
                    Some(last) if last.end == at => last.end = at + 1,
                    Some(last) if last.end > at => {}
                    _ => ranges.push(at..at + 1),
                }
            }
            // Row groups without a selected row are not read and take no place in the selection.
            if any {
                row_groups.push(rg);
                offset += rg_rows as usize;
            }
            rg_start = rg_end;
        }
        (
            row_groups,
            RowSelection::from_consecutive_ranges(ranges.into_iter(), offset),
        )
    }

    /// Reads exactly `rows` (segment row numbers, increasing), all columns: the pages holding
    /// them are fetched and decompressed, but only the selected values are decoded.
    pub async fn read_rows(&self, rows: &[u64]) -> Result<Vec<RecordBatch>> {
        self.read_rows_of(None, rows).await
    }

    /// Reads exactly `rows` (segment row numbers, increasing) of the `columns` named, or of
    /// all: only the pages holding them are fetched and decompressed.
    pub async fn read_rows_of(
        &self,
        columns: Option<&[&str]>,
        rows: &[u64],
    ) -> Result<Vec<RecordBatch>> {
        let (row_groups, selection) = self.rows_selection(rows);
        if row_groups.is_empty() {
            return Ok(Vec::new());
        }
        self.read_selection(None, columns, Some((row_groups, selection)))
            .await
    }

    /// Reads rows: all of them, or only those in posting `blocks`; `columns` projects by name.
    pub async fn read(
        &self,
        columns: Option<&[&str]>,
        blocks: Option<&RoaringBitmap>,
    ) -> Result<Vec<RecordBatch>> {
        self.read_in_blocks(None, columns, blocks).await
    }

    /// [`read`](Self::read) with the Arrow types of `schema`, a schema of every column of the
    /// file whose types the stored ones can be read as (strings as dictionaries or views).
    pub async fn read_as(
        &self,
        schema: arrow::datatypes::SchemaRef,
        columns: Option<&[&str]>,
        blocks: Option<&RoaringBitmap>,
    ) -> Result<Vec<RecordBatch>> {
        self.read_in_blocks(Some(schema), columns, blocks).await
    }

    /// [`read`](Self::read) and [`read_as`](Self::read_as): the Arrow types of `schema`, or
    /// the file's own.
    async fn read_in_blocks(
        &self,
        schema: Option<arrow::datatypes::SchemaRef>,
        columns: Option<&[&str]>,
        blocks: Option<&RoaringBitmap>,
    ) -> Result<Vec<RecordBatch>> {
        let selection = blocks.map(|b| self.row_selection(b));
        if selection
            .as_ref()
            .is_some_and(|(row_groups, _)| row_groups.is_empty())
        {
            return Ok(Vec::new());
        }
        self.read_selection(schema, columns, selection).await
    }

    /// Reads the projected `columns` of the selected rows of some row groups, or of every row.
    /// Batches have the log schema's columns (or those projected), with shredded attributes
    /// folded back into `attributes`.
    async fn read_selection(
        &self,
        schema: Option<arrow::datatypes::SchemaRef>,
        columns: Option<&[&str]>,
        selection: Option<(Vec<usize>, RowSelection)>,
    ) -> Result<Vec<RecordBatch>> {
        let location = self.location().to_string();
        let mut options =
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        if let Some(schema) = schema {
            options = options.with_schema(self.with_shred_fields(schema));
        }
        let arrow_metadata = ArrowReaderMetadata::try_new(self.metadata.clone(), options)
            .map_err(|e| parquet_error(&location, e))?;
        let mut builder =
            ParquetRecordBatchStreamBuilder::new_with_metadata(self.file.clone(), arrow_metadata);
        if let Some(columns) = columns {
            // By top-level column: asking for `attributes` reads the shredded keys too.
            let roots = builder.parquet_schema().root_schema().get_fields();
            let wanted = |name: &str| {
                columns.contains(&name)
                    || (shredded_key(name).is_some()
                        && columns.contains(&crate::schema::ATTRIBUTES))
            };
            let picked = (0..roots.len()).filter(|&i| wanted(roots[i].name()));
            let mask = ProjectionMask::roots(builder.parquet_schema(), picked);
            builder = builder.with_projection(mask);
        }
        if let Some((row_groups, selection)) = selection {
            builder = builder
                .with_row_groups(row_groups)
                .with_row_selection(selection);
        }
        let stream = builder.build().map_err(|e| parquet_error(&location, e))?;
        let batches: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| parquet_error(&location, e))?;
        batches
            .into_iter()
            .map(|b| {
                fold_batch(b).map_err(|e| {
                    StorageError::corrupt(&location, format!("shredded attributes: {e}"))
                })
            })
            .collect()
    }

    /// `schema` (the log schema's columns, as some Arrow types) with this segment's shredded
    /// columns appended as plain strings: the whole file's schema, as Parquet's reader wants it.
    pub fn with_shred_fields(
        &self,
        schema: arrow::datatypes::SchemaRef,
    ) -> arrow::datatypes::SchemaRef {
        if self.shreds.is_empty() {
            return schema;
        }
        let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
        fields.extend(self.shreds.iter().map(|k| Arc::new(shred_field(k))));
        Arc::new(arrow::datatypes::Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        ))
    }

    /// Reads and checks every index block and fingerprint partition, and hashes the whole file.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let blocks = self.read_blocks(0..self.directory.blocks.len()).await?;
        let base = self.footer.index_offset;
        let ranges: Vec<_> = self
            .directory
            .filters
            .iter()
            .map(|e| base + e.offset..base + e.offset + e.length)
            .collect();
        for (bytes, entry) in self
            .file
            .read_ranges(&ranges)
            .await?
            .iter()
            .zip(&self.directory.filters)
        {
            FilterPartition::decode(
                bytes,
                entry,
                self.directory.posting_blocks(),
                self.directory.version,
                self.location(),
            )?;
        }
        let mut hasher = blake3::Hasher::new();
        const CHUNK: u64 = 8 << 20;
        let mut at = 0;
        while at < self.file.size() {
            let end = (at + CHUNK).min(self.file.size());
            hasher.update(&self.file.read(at..end).await?);
            at = end;
        }
        Ok(VerifyReport {
            blake3: *hasher.finalize().as_bytes(),
            index_blocks_checked: blocks.len() + self.directory.filters.len(),
        })
    }
}

/// The shredded attribute keys of a segment, from its top-level columns: the log schema's, in
/// order, then (format version 2) optional strings named `attributes.<key>`.
fn stored_shreds(
    metadata: &ParquetMetaData,
    format_version: u32,
) -> std::result::Result<Vec<String>, String> {
    use parquet::basic::{ConvertedType, Repetition, Type as PhysicalType};
    let roots = metadata
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields();
    let log = crate::schema::log_schema();
    if roots.len() < log.fields().len()
        || roots
            .iter()
            .zip(log.fields())
            .any(|(stored, field)| stored.name() != field.name())
    {
        let names: Vec<&str> = roots.iter().map(|t| t.name()).collect();
        return Err(format!(
            "expected the log schema's columns first, found {names:?}"
        ));
    }
    let mut keys = Vec::new();
    for column in &roots[log.fields().len()..] {
        let key = shredded_key(column.name())
            .ok_or_else(|| format!("unexpected column {:?}", column.name()))?;
        let info = column.get_basic_info();
        let is_string = column.is_primitive()
            && column.get_physical_type() == PhysicalType::BYTE_ARRAY
            && info.repetition() == Repetition::OPTIONAL
            && info.converted_type() == ConvertedType::UTF8;
        if !is_string || format_version < 2 {
            return Err(format!(
                "column {:?} is not a shredded attribute of format version 2",
                column.name()
            ));
        }
        if keys.iter().any(|k: &String| k == key) {
            return Err(format!("column {:?} appears twice", column.name()));
        }
        keys.push(key.to_owned());
    }
    Ok(keys)
}

fn kv_value(metadata: &ParquetMetaData, key: &str) -> Option<String> {
    metadata
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .clone()
}

/// Checks that every column chunk's page locations tile the chunk exactly and that page row
/// numbers increase from 0 within the row group: what the Parquet reader trusts when it skips
/// pages (a damaged offset index would otherwise make it fetch the wrong bytes or panic).
fn check_offset_index(metadata: &ParquetMetaData) -> std::result::Result<(), String> {
    let Some(offset_index) = metadata.offset_index() else {
        return Err("missing offset index".into());
    };
    if offset_index.len() != metadata.num_row_groups() {
        return Err("offset index does not match the row groups".into());
    }
    for (rg, (meta, columns)) in metadata.row_groups().iter().zip(offset_index).enumerate() {
        if columns.len() != meta.num_columns() {
            return Err(format!(
                "row group {rg}: offset index does not match the columns"
            ));
        }
        for (c, (chunk, index)) in meta.columns().iter().zip(columns).enumerate() {
            let pages = index.page_locations();
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or(chunk.data_page_offset());
            let end = start
                .checked_add(chunk.compressed_size())
                .ok_or("column chunk size overflows")?;
            let Some(first) = pages.first() else {
                return Err(format!("row group {rg} column {c}: no pages"));
            };
            if first.offset != chunk.data_page_offset() || first.first_row_index != 0 {
                return Err(format!(
                    "row group {rg} column {c}: first page does not start the chunk"
                ));
            }
            for pair in pages.windows(2) {
                let next_offset = pair[0]
                    .offset
                    .checked_add(i64::from(pair[0].compressed_page_size));
                if next_offset != Some(pair[1].offset)
                    || pair[1].first_row_index <= pair[0].first_row_index
                {
                    return Err(format!(
                        "row group {rg} column {c}: pages are not contiguous"
                    ));
                }
            }
            let last = pages.last().expect("non-empty");
            if last
                .offset
                .checked_add(i64::from(last.compressed_page_size))
                != Some(end)
                || last.first_row_index >= meta.num_rows()
                || pages.iter().any(|p| p.compressed_page_size <= 0)
            {
                return Err(format!(
                    "row group {rg} column {c}: pages do not fill the chunk"
                ));
            }
        }
    }
    Ok(())
}

/// Longest regex size (compiled program bytes) accepted for a dictionary scan.
pub const MAX_REGEX_BYTES: usize = 1 << 20;

fn compile_anchored(pattern: &str) -> Result<regex::bytes::Regex> {
    regex::bytes::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(true)
        .size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| {
            StorageError::invalid_input(format!("invalid regular expression {pattern:?}: {e}"))
        })
}

/// The literal characters a regex starts with (before any metacharacter), e.g. `web-` of `web-.*`.
fn literal_prefix(pattern: &str) -> String {
    let mut out = String::new();
    if pattern.contains('|') {
        return out; // an alternation may not share the first branch's prefix
    }
    for c in pattern.chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' || c == '=' || c == ':' {
            out.push(c);
        } else {
            break;
        }
    }
    // A quantifier applies to the character before it: `ab*` does not require `b`.
    let mut chars = pattern[out.len()..].chars();
    if matches!(chars.next(), Some('*' | '?' | '{')) {
        out.pop();
    }
    out
}

/// The smallest byte string greater than every string starting with `prefix`; `None` if none.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl StorageError {
    /// True when the error means the bytes are damaged (as opposed to unreadable right now).
    pub fn is_corrupt(&self) -> bool {
        self.kind == ErrorKind::Corrupt
    }
}
