//! Catalog events and segment entries as stored (JSON inside checksummed frames), and the
//! per-tenant hash chain that links each event to the previous one of its tenant.

use serde::{Deserialize, Serialize};

/// Version of the event encoding; a reader refuses newer events.
pub const EVENT_VERSION: u32 = 1;

/// An inclusive range of WAL sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    pub first: u64,
    pub last: u64,
}

/// Where a segment's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Under the data directory; `location` is relative to it.
    Local,
    /// In the object-store tier; `location` is the object key.
    Object,
}

/// Everything the catalog knows about one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// 32 hex digits, globally unique ([`crate::layout::SegmentId`]).
    pub id: String,
    pub tenant: String,
    pub stream: String,
    pub partition: String,
    /// Nanoseconds since the epoch, UTC, inclusive.
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    pub rows: u64,
    pub bytes: u64,
    /// blake3 of the whole file, hex.
    pub blake3: String,
    /// crc32c of the file's Parquet page index, checked whenever the segment is opened.
    pub page_index_crc32c: u32,
    pub tier: Tier,
    pub location: String,
    pub format_version: u32,
    /// Smallest and largest `_seq` of the rows in the segment.
    pub seq: SeqRange,
    /// Nanoseconds since the epoch when the segment was written.
    pub created_at: i64,
}

/// One change to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CatalogEvent {
    /// A flush: its segments hold every row of the tenant with `_seq` in `wal_seq`.
    SegmentsAdded {
        segments: Vec<SegmentEntry>,
        wal_seq: SeqRange,
    },
    /// A compaction: `added` hold exactly the rows of `removed`.
    SegmentsReplaced {
        removed: Vec<String>,
        added: Vec<SegmentEntry>,
    },
    /// A tier move.
    SegmentMoved {
        id: String,
        tier: Tier,
        location: String,
    },
    /// Retention.
    SegmentsDeleted { ids: Vec<String> },
}

/// An event as stored: numbered, timestamped, and chained to its tenant's previous event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub v: u32,
    /// Global event number, from 1, without gaps.
    pub seq: u64,
    pub tenant: String,
    /// Nanoseconds since the epoch.
    pub at: i64,
    /// `hash` of the previous event of the same tenant; empty for its first.
    pub prev_hash: String,
    pub event: CatalogEvent,
    /// blake3 (hex) of this record's JSON with `hash` empty.
    pub hash: String,
}

impl EventRecord {
    /// The hash this record should carry.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        let json = serde_json::to_vec(&unhashed).expect("events serialize");
        blake3::hash(&json).to_hex().to_string()
    }
}
