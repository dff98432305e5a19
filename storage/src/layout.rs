//! Every path and file name under a data directory; nothing else in Silt formats paths.
//! Also validates the tenant and stream names that become path components.

use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// File name suffix of every segment.
pub const SEGMENT_EXTENSION: &str = "parquet";
/// Prefix of a segment being written; such files are never in the catalog and are removed on start.
pub const TEMP_PREFIX: &str = ".tmp-";
/// Longest tenant or stream name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Checks that a tenant or stream name is safe as one path component: 1–64 bytes of
/// `[A-Za-z0-9_.-]`, not starting with `.`.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid_input(format!(
            "invalid {kind} name {name:?}: use 1-{MAX_NAME_BYTES} characters of A-Z a-z 0-9 _ . - not starting with '.'"
        )))
    }
}

/// A globally unique segment id: 48 bits of milliseconds since the epoch, then 80 random bits,
/// so ids sort by creation time. Shown as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u128);

impl SegmentId {
    pub fn generate(now_ms: u64) -> Self {
        let random: u128 = u128::from(rand_u64()) << 16 ^ u128::from(rand_u64() & 0xffff);
        SegmentId((u128::from(now_ms & 0xffff_ffff_ffff) << 80) | (random & ((1u128 << 80) - 1)))
    }

    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 32)
            .then(|| u128::from_str_radix(text, 16).ok().map(SegmentId))
            .flatten()
    }
}

impl std::fmt::Display for SegmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

fn rand_u64() -> u64 {
    // std's RandomState is seeded from the OS; hashing a counter gives independent values.
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The layout of one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock file held (flock) by the process that owns the data directory.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// The catalog's directory: its event log and snapshots.
    pub fn catalog_dir(&self) -> PathBuf {
        self.root.join("catalog")
    }

    /// The write-ahead log directory of one tenant.
    pub fn wal_dir(&self, tenant: &str) -> PathBuf {
        self.root.join("wal").join(tenant)
    }

    /// Root of all local segments.
    pub fn segments_dir(&self) -> PathBuf {
        self.root.join("segments")
    }

    /// Directory holding the segments of one tenant, stream and partition.
    pub fn partition_dir(&self, tenant: &str, stream: &str, partition: &str) -> PathBuf {
        self.segments_dir()
            .join(tenant)
            .join(stream)
            .join(partition)
    }

    /// Final path of a segment.
    pub fn segment_path(
        &self,
        tenant: &str,
        stream: &str,
        partition: &str,
        id: SegmentId,
    ) -> PathBuf {
        self.partition_dir(tenant, stream, partition)
            .join(segment_file_name(id))
    }

    /// Object-store key of a segment relative to the tier's root, the same shape as the local path.
    pub fn segment_object_key(
        tenant: &str,
        stream: &str,
        partition: &str,
        id: SegmentId,
    ) -> String {
        format!(
            "segments/{tenant}/{stream}/{partition}/{}",
            segment_file_name(id)
        )
    }
}

/// Extension of WAL files.
pub const WAL_SUFFIX: &str = ".wal";
/// Digits of the zero-padded first seq in a WAL file name: enough for `u64::MAX`.
pub const WAL_SEQ_DIGITS: usize = 20;

/// The file name of the WAL file whose first record has `first_seq`; names sort by seq.
pub fn wal_file_name(first_seq: u64) -> String {
    format!("{first_seq:0width$}{WAL_SUFFIX}", width = WAL_SEQ_DIGITS)
}

/// The first seq encoded in a WAL file name; `None` for any other name.
pub fn parse_wal_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(WAL_SUFFIX)?;
    if digits.len() != WAL_SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Name of the catalog log whose first event is `first_event`.
pub fn catalog_log_name(first_event: u64) -> String {
    format!("log-{first_event:020}.log")
}

pub fn parse_catalog_log_name(name: &str) -> Option<u64> {
    parse_numbered(name, "log-", ".log")
}

/// Name of the catalog snapshot that includes every event up to `last_event`.
pub fn catalog_snapshot_name(last_event: u64) -> String {
    format!("snapshot-{last_event:020}.snap")
}

pub fn parse_catalog_snapshot_name(name: &str) -> Option<u64> {
    parse_numbered(name, "snapshot-", ".snap")
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// `<id>.parquet`
pub fn segment_file_name(id: SegmentId) -> String {
    format!("{id}.{SEGMENT_EXTENSION}")
}

/// The temporary name a segment is written under before its atomic rename.
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!("{TEMP_PREFIX}{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("tenant", "acme-prod_1.eu").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "x y", &"a".repeat(65)] {
            assert!(validate_name("tenant", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn segment_ids_sort_by_time_and_round_trip() {
        let a = SegmentId::generate(1_000);
        let b = SegmentId::generate(2_000);
        assert!(a < b);
        assert_eq!(SegmentId::parse(&a.to_string()), Some(a));
        assert_ne!(SegmentId::generate(5), SegmentId::generate(5));
    }

    #[test]
    fn paths() {
        let d = DataDir::new("/d");
        let id = SegmentId(0xabc);
        let p = d.segment_path("t", "s", "2024-01-01T00", id);
        assert_eq!(
            p,
            PathBuf::from(format!("/d/segments/t/s/2024-01-01T00/{id}.parquet"))
        );
        assert_eq!(
            temp_path_for(&p).file_name().unwrap().to_string_lossy(),
            format!(".tmp-{id}.parquet")
        );
    }
}
