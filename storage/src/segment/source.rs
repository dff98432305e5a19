//! The bytes of one segment, from a memory-mapped local file or any object store, read by
//! range and counted. Implements Parquet's `AsyncFileReader` so row reads go through it too.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;

use crate::error::{Result, StorageError};

#[derive(Debug)]
enum Backing {
    /// The whole file, memory-mapped. Segments are immutable once renamed into place, so the
    /// mapping never sees a change.
    Mapped(Bytes),
    Object {
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
    },
}

/// A readable segment file. Cheap to clone; clones share the byte counter.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    backing: Arc<Backing>,
    size: u64,
    location: Arc<str>,
    bytes_read: Arc<AtomicU64>,
    metadata: Option<Arc<ParquetMetaData>>,
    stripes: Option<Arc<StripeTable>>,
}

/// Checksums of the data region `[0, data_end)` in fixed-size stripes.
#[derive(Debug)]
pub(crate) struct StripeTable {
    pub stripe_bytes: u64,
    pub data_end: u64,
    pub crcs: Vec<u32>,
}

impl StripeTable {
    /// The range to fetch so that every stripe overlapping `range` can be verified.
    fn widen(&self, range: &Range<u64>) -> Range<u64> {
        if range.start >= self.data_end || range.start == range.end {
            return range.clone();
        }
        let start = range.start / self.stripe_bytes * self.stripe_bytes;
        let data_part_end = range.end.min(self.data_end);
        let widened_end = data_part_end.div_ceil(self.stripe_bytes) * self.stripe_bytes;
        start..range.end.max(widened_end.min(self.data_end))
    }

    /// Verifies the stripes inside `fetched` (which starts at `widened.start`) and returns the
    /// bytes of `wanted`.
    fn check(
        &self,
        fetched: Bytes,
        widened: &Range<u64>,
        wanted: &Range<u64>,
        location: &str,
    ) -> Result<Bytes> {
        if widened.start < self.data_end && wanted.start != wanted.end {
            let first = widened.start / self.stripe_bytes;
            let last = (widened.end.min(self.data_end) - 1) / self.stripe_bytes;
            for stripe in first..=last {
                let lo = stripe * self.stripe_bytes;
                let hi = (lo + self.stripe_bytes).min(self.data_end);
                let bytes = &fetched[(lo - widened.start) as usize..(hi - widened.start) as usize];
                let expected = self.crcs.get(stripe as usize).copied();
                if expected != Some(crc32c::crc32c(bytes)) {
                    return Err(StorageError::corrupt(
                        location,
                        format!("data checksum mismatch in bytes {lo}..{hi}"),
                    ));
                }
            }
        }
        let from = (wanted.start - widened.start) as usize;
        Ok(fetched.slice(from..from + (wanted.end - wanted.start) as usize))
    }
}

impl SegmentFile {
    /// Maps a local segment file.
    pub fn open_local(path: &Path) -> Result<Self> {
        let location = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| StorageError::from_io(&location, "open segment", e))?;
        let size = file
            .metadata()
            .map_err(|e| StorageError::from_io(&location, "stat segment", e))?
            .len();
        let bytes = if size == 0 {
            Bytes::new()
        } else {
            // SAFETY: segments are written under a temp name and renamed into place, never
            // modified afterwards; the mapping is read-only.
            #[allow(unsafe_code)]
            let map = unsafe { memmap2::Mmap::map(&file) }
                .map_err(|e| StorageError::from_io(&location, "map segment", e))?;
            Bytes::from_owner(map)
        };
        Ok(Self::new(Backing::Mapped(bytes), size, location))
    }

    /// A segment stored as an object; only its size is fetched here.
    pub async fn open_object(store: Arc<dyn ObjectStore>, path: ObjectPath) -> Result<Self> {
        let location = format!("{store}/{path}");
        let meta = store
            .head(&path)
            .await
            .map_err(|e| StorageError::from_object_store(&location, "stat", e))?;
        Ok(Self::new(
            Backing::Object { store, path },
            meta.size,
            location,
        ))
    }

    fn new(backing: Backing, size: u64, location: String) -> Self {
        Self {
            backing: Arc::new(backing),
            size,
            location: location.into(),
            bytes_read: Arc::default(),
            metadata: None,
            stripes: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The path or URL used in error messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A handle on the same bytes with its own byte counter (one per query).
    pub fn with_own_counter(&self) -> Self {
        Self {
            bytes_read: Arc::new(AtomicU64::new(0)),
            ..self.clone()
        }
    }

    /// Bytes fetched so far through this file and its clones.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    pub(crate) fn set_metadata(&mut self, metadata: Arc<ParquetMetaData>) {
        self.metadata = Some(metadata);
    }

    /// From now on every read of the data region is checked against `stripes`.
    pub(crate) fn set_stripes(&mut self, stripes: StripeTable) {
        self.stripes = Some(Arc::new(stripes));
    }

    fn check_range(&self, range: &Range<u64>) -> Result<()> {
        if range.start > range.end || range.end > self.size {
            return Err(StorageError::corrupt(
                self.location.to_string(),
                format!(
                    "range {}..{} is outside the file ({} bytes)",
                    range.start, range.end, self.size
                ),
            ));
        }
        Ok(())
    }

    /// Reads `range`, verifying the data checksums under it once they are known; a range past
    /// the end of the file or a checksum mismatch is a corruption error.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        Ok(self
            .read_ranges(std::slice::from_ref(&range))
            .await?
            .remove(0))
    }

    /// Reads several ranges at once (one request per range on object stores, coalesced by the store).
    pub async fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        for range in ranges {
            self.check_range(range)?;
        }
        let widened: Vec<Range<u64>> = match &self.stripes {
            Some(stripes) => ranges.iter().map(|r| stripes.widen(r)).collect(),
            None => ranges.to_vec(),
        };
        let fetched: Vec<Bytes> = match &*self.backing {
            Backing::Mapped(all) => widened
                .iter()
                .map(|r| all.slice(r.start as usize..r.end as usize))
                .collect(),
            Backing::Object { store, path } => {
                store.get_ranges(path, &widened).await.map_err(|e| {
                    StorageError::from_object_store(self.location.to_string(), "read", e)
                })?
            }
        };
        let total: u64 = fetched.iter().map(|b| b.len() as u64).sum();
        self.bytes_read.fetch_add(total, Ordering::Relaxed);
        match &self.stripes {
            Some(stripes) => fetched
                .into_iter()
                .zip(widened.iter().zip(ranges))
                .map(|(bytes, (widened, wanted))| {
                    stripes.check(bytes, widened, wanted, &self.location)
                })
                .collect(),
            None => Ok(fetched),
        }
    }
}

fn to_parquet(e: StorageError) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for SegmentFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.read(range).await.map_err(to_parquet) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.read_ranges(&ranges).await.map_err(to_parquet) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            match &self.metadata {
                Some(metadata) => Ok(metadata.clone()),
                None => Err(ParquetError::General(format!(
                    "metadata of {} was not loaded",
                    self.location
                ))),
            }
        }
        .boxed()
    }
}
