//! The catalog: the manifest of segments as an append-only log of checksummed, hash-chained
//! events with periodic snapshots. Owns crash-safe commits and replay; not segment contents.

mod event;
mod frame;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

pub use event::{CatalogEvent, EVENT_VERSION, EventRecord, SegmentEntry, SeqRange, Tier};

use crate::error::{Result, StorageError};
use crate::layout;
use crate::segment::fsync_dir;

/// A snapshot is written (and older logs dropped) after this many events by default.
pub const DEFAULT_SNAPSHOT_EVERY_EVENTS: u64 = 1000;

#[derive(Debug, Clone)]
pub struct CatalogOptions {
    pub snapshot_every_events: u64,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            snapshot_every_events: DEFAULT_SNAPSHOT_EVERY_EVENTS,
        }
    }
}

/// What the catalog knows about one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCatalog {
    /// Hash of the tenant's last event (the head of its chain).
    pub last_hash: String,
    /// Highest WAL seq whose row is in a segment: replay starts after it.
    pub flushed_seq: Option<u64>,
}

/// The catalog's current state: every live segment and each tenant's chain head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub v: u32,
    pub last_event: u64,
    pub segments: BTreeMap<String, SegmentEntry>,
    pub tenants: BTreeMap<String, TenantCatalog>,
}

impl CatalogState {
    /// Segments of one tenant, oldest data first.
    pub fn tenant_segments(&self, tenant: &str) -> Vec<&SegmentEntry> {
        let mut out: Vec<_> = self
            .segments
            .values()
            .filter(|s| s.tenant == tenant)
            .collect();
        out.sort_by_key(|s| (s.min_timestamp, s.id.clone()));
        out
    }

    pub fn flushed_seq(&self, tenant: &str) -> Option<u64> {
        self.tenants.get(tenant).and_then(|t| t.flushed_seq)
    }

    /// Checks and applies one event; `Err` says why it does not fit the state.
    fn apply(&mut self, record: &EventRecord) -> std::result::Result<(), String> {
        if record.v != EVENT_VERSION {
            return Err(format!("event version {} is not supported", record.v));
        }
        if record.seq != self.last_event + 1 {
            return Err(format!(
                "event {} follows event {}",
                record.seq, self.last_event
            ));
        }
        let tenant = self.tenants.entry(record.tenant.clone()).or_default();
        if record.prev_hash != tenant.last_hash {
            return Err(format!(
                "event {} breaks the hash chain of tenant {}",
                record.seq, record.tenant
            ));
        }
        if record.hash != record.compute_hash() {
            return Err(format!("event {} does not match its hash", record.seq));
        }
        let owned = |segments: &BTreeMap<String, SegmentEntry>, id: &str| {
            segments.get(id).is_some_and(|s| s.tenant == record.tenant)
        };
        let check_new = |segments: &BTreeMap<String, SegmentEntry>, added: &[SegmentEntry]| {
            for s in added {
                if s.tenant != record.tenant {
                    return Err(format!(
                        "segment {} belongs to tenant {}, not {}",
                        s.id, s.tenant, record.tenant
                    ));
                }
                if segments.contains_key(&s.id) {
                    return Err(format!("segment {} is already in the catalog", s.id));
                }
            }
            Ok(())
        };
        match &record.event {
            CatalogEvent::SegmentsAdded { segments, wal_seq } => {
                check_new(&self.segments, segments)?;
                for s in segments {
                    self.segments.insert(s.id.clone(), s.clone());
                }
                tenant.flushed_seq = Some(
                    tenant
                        .flushed_seq
                        .map_or(wal_seq.last, |f| f.max(wal_seq.last)),
                );
            }
            CatalogEvent::SegmentsReplaced { removed, added } => {
                if let Some(id) = removed.iter().find(|id| !owned(&self.segments, id)) {
                    return Err(format!("segment {id} to replace is not in the catalog"));
                }
                for id in removed {
                    self.segments.remove(id);
                }
                check_new(&self.segments, added)?;
                for s in added {
                    self.segments.insert(s.id.clone(), s.clone());
                }
            }
            CatalogEvent::SegmentMoved { id, tier, location } => {
                let Some(s) = self
                    .segments
                    .get_mut(id)
                    .filter(|s| s.tenant == record.tenant)
                else {
                    return Err(format!("segment {id} to move is not in the catalog"));
                };
                s.tier = *tier;
                s.location.clone_from(location);
            }
            CatalogEvent::SegmentsDeleted { ids } => {
                if let Some(id) = ids.iter().find(|id| !owned(&self.segments, id)) {
                    return Err(format!("segment {id} to delete is not in the catalog"));
                }
                for id in ids {
                    self.segments.remove(id);
                }
            }
        }
        let tenant = self
            .tenants
            .get_mut(&record.tenant)
            .expect("inserted above");
        tenant.last_hash.clone_from(&record.hash);
        self.last_event = record.seq;
        Ok(())
    }
}

/// Result of opening a catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogOpenReport {
    pub events_replayed: u64,
    /// Bytes cut from the end of the last log (an append interrupted by a crash).
    pub torn_tail_bytes: u64,
}

struct Writer {
    log: File,
    log_path: PathBuf,
    events_since_snapshot: u64,
    /// Set when a failed append could not be taken back out of the log: whether that event is
    /// on disk is unknown until the next open, so nothing more is appended after it.
    failed: Option<String>,
}

/// The open catalog of a data directory. Commits are serialised; reads see a consistent state.
pub struct Catalog {
    dir: PathBuf,
    options: CatalogOptions,
    writer: Mutex<Writer>,
    state: RwLock<Arc<CatalogState>>,
}

fn corrupt(path: &Path, offset: Option<usize>, what: impl std::fmt::Display) -> StorageError {
    let at = offset
        .map(|o| format!(" at offset {o}"))
        .unwrap_or_default();
    StorageError::corrupt(
        path.display().to_string(),
        format!("catalog file{at}: {what}"),
    )
}

/// Catalog files in `dir`: (snapshots by seq, logs by first event), each sorted ascending.
fn list_files(dir: &Path) -> Result<(Vec<(u64, PathBuf)>, Vec<(u64, PathBuf)>)> {
    let mut snapshots = Vec::new();
    let mut logs = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| StorageError::path_io(dir, "list catalog", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::path_io(dir, "list catalog", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = layout::parse_catalog_snapshot_name(&name) {
            snapshots.push((seq, entry.path()));
        } else if let Some(seq) = layout::parse_catalog_log_name(&name) {
            logs.push((seq, entry.path()));
        }
    }
    snapshots.sort();
    logs.sort();
    Ok((snapshots, logs))
}

/// Loads state from `dir`. With `repair`, a torn tail of the last log is cut off the file.
fn load(dir: &Path, repair: bool) -> Result<(CatalogState, CatalogOpenReport, Option<PathBuf>)> {
    let (snapshots, logs) = list_files(dir)?;
    let mut state = CatalogState {
        v: EVENT_VERSION,
        ..Default::default()
    };
    if let Some((_, path)) = snapshots.last() {
        let bytes = std::fs::read(path)
            .map_err(|e| StorageError::path_io(path, "read catalog snapshot", e))?;
        let frames = frame::decode_all(&bytes);
        if frames.bad.is_some() || frames.frames.len() != 1 {
            return Err(corrupt(path, None, "snapshot is damaged"));
        }
        state = serde_json::from_slice(frames.frames[0]).map_err(|e| corrupt(path, None, e))?;
        if state.v != EVENT_VERSION {
            return Err(StorageError::unsupported_version(
                path.display().to_string(),
                format!("catalog snapshot v{}", state.v),
            ));
        }
    }
    let mut report = CatalogOpenReport::default();
    let last_log = logs.last().map(|(_, p)| p.clone());
    for (i, (_, path)) in logs.iter().enumerate() {
        let bytes =
            std::fs::read(path).map_err(|e| StorageError::path_io(path, "read catalog log", e))?;
        let frames = frame::decode_all(&bytes);
        for (n, payload) in frames.frames.iter().enumerate() {
            let record: EventRecord = serde_json::from_slice(payload)
                .map_err(|e| corrupt(path, None, format!("event {n}: {e}")))?;
            if record.seq <= state.last_event {
                continue; // already in the snapshot
            }
            state.apply(&record).map_err(|e| corrupt(path, None, e))?;
            report.events_replayed += 1;
        }
        if let Some((offset, reason)) = frames.bad {
            // The last log with anything in it: a snapshot may have started an empty one after
            // it and failed before appending there.
            let is_last = logs[i + 1..]
                .iter()
                .all(|(_, later)| std::fs::metadata(later).is_ok_and(|m| m.len() == 0));
            if !is_last || !frames.bad_is_torn_tail(&bytes) {
                return Err(corrupt(path, Some(offset), reason));
            }
            report.torn_tail_bytes = (bytes.len() - frames.good_len) as u64;
            if repair {
                tracing::warn!(file = %path.display(), offset, bytes = report.torn_tail_bytes, "cutting torn tail of catalog log");
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| StorageError::path_io(path, "open catalog log", e))?;
                f.set_len(frames.good_len as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| StorageError::path_io(path, "cut torn tail of catalog log", e))?;
            }
        }
    }
    Ok((state, report, last_log))
}

impl Catalog {
    /// Opens (creating) the catalog in `dir`, replaying snapshot and logs.
    pub fn open(dir: &Path, options: CatalogOptions) -> Result<(Self, CatalogOpenReport)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::path_io(dir, "create catalog directory", e))?;
        let (state, report, last_log) = load(dir, true)?;
        let log_path = match last_log {
            Some(path) => path,
            None => {
                let path = dir.join(layout::catalog_log_name(state.last_event + 1));
                File::create(&path)
                    .map_err(|e| StorageError::path_io(&path, "create catalog log", e))?;
                fsync_dir(dir)?;
                path
            }
        };
        let log = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| StorageError::path_io(&log_path, "open catalog log", e))?;
        let writer = Writer {
            log,
            log_path,
            events_since_snapshot: report.events_replayed,
            failed: None,
        };
        Ok((
            Self {
                dir: dir.to_path_buf(),
                options,
                writer: Mutex::new(writer),
                state: RwLock::new(Arc::new(state)),
            },
            report,
        ))
    }

    /// Reads the catalog without taking ownership (for listing while another process writes).
    /// A torn tail is ignored, not cut.
    pub fn read_only(dir: &Path) -> Result<CatalogState> {
        if !dir.exists() {
            return Ok(CatalogState {
                v: EVENT_VERSION,
                ..Default::default()
            });
        }
        Ok(load(dir, false)?.0)
    }

    /// The current state (cheap: shared until the next commit).
    pub fn state(&self) -> Arc<CatalogState> {
        self.state.read().expect("catalog state lock").clone()
    }

    /// Appends and fsyncs one event of `tenant`; after this returns the event survives a crash.
    pub fn commit(&self, tenant: &str, event: CatalogEvent, now_ns: i64) -> Result<EventRecord> {
        let mut writer = self.writer.lock().expect("catalog writer lock");
        if let Some(reason) = &writer.failed {
            return Err(StorageError::from_io(
                writer.log_path.display().to_string(),
                "append to catalog log (it refuses writes until the data directory is reopened, after an earlier failure)",
                std::io::Error::other(reason.clone()),
            ));
        }
        let current = self.state();
        let mut record = EventRecord {
            v: EVENT_VERSION,
            seq: current.last_event + 1,
            tenant: tenant.to_string(),
            at: now_ns,
            prev_hash: current
                .tenants
                .get(tenant)
                .map(|t| t.last_hash.clone())
                .unwrap_or_default(),
            event,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        let mut next = (*current).clone();
        next.apply(&record)
            .map_err(|e| StorageError::invalid_input(format!("catalog event refused: {e}")))?;

        let mut buf = Vec::new();
        frame::encode(
            &serde_json::to_vec(&record).expect("events serialize"),
            &mut buf,
        );
        let path = writer.log_path.clone();
        let before = writer
            .log
            .metadata()
            .map_err(|e| StorageError::path_io(&path, "stat catalog log", e))?
            .len();
        if let Err(e) = writer
            .log
            .write_all(&buf)
            .and_then(|()| writer.log.sync_data())
        {
            // Take the partial or unconfirmed event back out (a full disk, say), so that the
            // next one is not appended after a torn frame, which the next open would refuse.
            let undone = writer
                .log
                .set_len(before)
                .and_then(|()| writer.log.sync_data());
            if let Err(undo) = undone {
                tracing::error!(file = %path.display(), error = %undo, "cannot take a failed event back out of the catalog log; it refuses writes until reopened");
                writer.failed = Some(format!("{e}; then cannot cut the log back: {undo}"));
            }
            return Err(StorageError::path_io(&path, "append to catalog log", e));
        }
        *self.state.write().expect("catalog state lock") = Arc::new(next.clone());
        writer.events_since_snapshot += 1;
        if writer.events_since_snapshot >= self.options.snapshot_every_events {
            // The event is committed whatever happens to the snapshot, which is only a
            // shortcut for the next open: it is tried again after the next event.
            if let Err(e) = self.snapshot(&mut writer, &next) {
                tracing::warn!(error = %e, "cannot write a catalog snapshot; the log keeps every event");
            }
        }
        Ok(record)
    }

    /// Whether a failed append left the catalog log in a state only reopening settles: the
    /// event may or may not be committed, so the files it names must be kept (the next open
    /// deletes them if it is not).
    pub fn is_failed(&self) -> bool {
        self.writer
            .lock()
            .expect("catalog writer lock")
            .failed
            .is_some()
    }

    /// Writes a snapshot of `state`, starts a new log after it, and removes what it replaces.
    fn snapshot(&self, writer: &mut Writer, state: &CatalogState) -> Result<()> {
        let path = self
            .dir
            .join(layout::catalog_snapshot_name(state.last_event));
        let temp = layout::temp_path_for(&path);
        let mut buf = Vec::new();
        frame::encode(
            &serde_json::to_vec(state).expect("state serializes"),
            &mut buf,
        );
        std::fs::write(&temp, &buf)
            .and_then(|()| File::open(&temp)?.sync_all())
            .and_then(|()| std::fs::rename(&temp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                StorageError::path_io(&path, "write catalog snapshot", e)
            })?;
        let log_path = self
            .dir
            .join(layout::catalog_log_name(state.last_event + 1));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| StorageError::path_io(&log_path, "create catalog log", e))?;
        if let Err(e) = fsync_dir(&self.dir) {
            // Events keep going to the current log; an empty new one after it would only make
            // its tail look like the middle (`load` copes, but leave nothing to cope with).
            let _ = std::fs::remove_file(&log_path);
            return Err(e);
        }
        *writer = Writer {
            log,
            log_path,
            events_since_snapshot: 0,
            failed: None,
        };
        let (snapshots, logs) = list_files(&self.dir)?;
        for (seq, old) in snapshots
            .iter()
            .filter(|(s, _)| *s < state.last_event)
            .chain(logs.iter().filter(|(s, _)| *s <= state.last_event))
        {
            std::fs::remove_file(old).map_err(|e| {
                StorageError::path_io(old, &format!("remove old catalog file {seq}"), e)
            })?;
        }
        fsync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests;
