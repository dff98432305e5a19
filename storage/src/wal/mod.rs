//! The per-tenant write-ahead log: append with group commit, replay on open, torn-tail repair.
//! Owns one WAL directory's files and its `_seq` counter; record bytes belong to `v1`.
//!
//! One [`Wal`] owns one directory (e.g. `<data>/wal/<tenant>/`) holding files named
//! [`wal_file_name`]`(first_seq)`. Each ingest request becomes exactly one v1 record, written
//! under one lock, so a request is all-or-nothing on replay. [`Wal::wait_durable`] makes records
//! durable with group commit: the first waiter flushes and fsyncs everything appended so far,
//! waiters covered by that fsync return without one.

pub mod payload;
mod replay;
mod scratch;
pub mod v1;

#[cfg(test)]
pub(crate) mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::record::LogRecord;
use replay::ReplayedDir;

/// Default [`WalOptions::max_file_bytes`]: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
/// Appended bytes kept in memory before `append` writes them to the file (no fsync), in bytes
/// (1 MiB). `wait_durable` always writes out whatever is buffered before it fsyncs.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
pub use crate::layout::{parse_wal_file_name, wal_file_name};

/// Tuning for one [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// An append that would grow a non-empty file past this many bytes starts a new file first.
    /// A single record bigger than this still goes into a file of its own.
    pub max_file_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// One replayed request: its rows get `_seq` `first_seq..first_seq + rows.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub first_seq: u64,
    /// The stream every row of the request belongs to.
    pub stream: String,
    pub rows: Vec<LogRecord>,
    pub observed_timestamp_ns: i64,
}

/// What [`Wal::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalReplay {
    /// Records with at least one row at or above `from_seq`, in seq order.
    pub records: Vec<WalRecord>,
    /// Bytes cut from the end of the newest file.
    pub torn_tail_bytes: u64,
    /// 1 when a torn tail was cut, else 0.
    pub torn_tails_cut: u64,
}

/// Proof of one append; pass it to [`Wal::wait_durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an append is not durable until wait_durable returns"]
pub struct AppendTicket {
    first_seq: u64,
    /// Logical byte position (over all files since open) just past the record.
    end_pos: u64,
}

impl AppendTicket {
    /// `_seq` of the record's first row.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }
}

/// Everything that can go wrong in the WAL; each names the file (or directory) concerned.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt wal record in {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("unsupported wal record version {version} in {path} at offset {offset}")]
    UnsupportedVersion {
        path: PathBuf,
        offset: u64,
        version: u8,
    },
    #[error(transparent)]
    RecordTooLarge(#[from] v1::RecordTooLarge),
    #[error("wal sequence exhausted in {path} at seq {next_seq}")]
    SeqExhausted { path: PathBuf, next_seq: u64 },
    #[error(
        "wal in {path} refuses writes until its rows are flushed to segments, after an earlier failure: {reason}"
    )]
    Poisoned { path: PathBuf, reason: String },
}

pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalError {
    let path = path.to_path_buf();
    move |source| WalError::Io { op, path, source }
}

pub(super) fn corrupt(path: &Path, offset: usize, reason: impl ToString) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.to_string(),
    }
}

/// Locks ignoring poisoning: no code path panics while holding these locks.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
pub(super) struct WalFile {
    /// One past the last seq in the file; the seq in its name while it is empty.
    pub(super) end_seq: u64,
    pub(super) path: PathBuf,
}

#[derive(Debug)]
struct Inner {
    /// The file being appended to: `files.last()`.
    file: Arc<File>,
    /// Every live file, oldest first; never empty.
    files: Vec<WalFile>,
    /// Bytes in the current file, including those still in `buf`.
    file_bytes: u64,
    /// Whole records not yet written to `file`.
    buf: Vec<u8>,
    next_seq: u64,
    /// Logical bytes appended since open, over all files.
    appended_pos: u64,
    /// Set after a failed write or fsync: what is on disk is unknown, so nothing more is written.
    failed: Option<String>,
    /// Restarts after a failure so far: a failure seen by a leader that began before the last
    /// restart concerns files that are gone.
    restarts: u64,
}

impl Inner {
    fn current_path(&self) -> &Path {
        self.files
            .last()
            .map_or(Path::new(""), |f| f.path.as_path())
    }
}

#[derive(Debug, Default)]
struct SyncState {
    durable_pos: u64,
    /// A leader is flushing and fsyncing right now.
    syncing: bool,
    failed: Option<String>,
    /// Bumped by [`Wal::restart_after_failure`]: a leader elected before it reports a stale
    /// failure, which must not fail the restarted WAL.
    epoch: u64,
}

/// The write-ahead log of one tenant. `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    fsyncs: AtomicU64,
    fsync_latency: FsyncLatency,
    torn_tails_cut: AtomicU64,
}

/// Upper bounds (seconds) of the buckets of [`FsyncLatency`].
pub const FSYNC_LATENCY_BOUNDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// How long the group-commit fsyncs of a WAL took: a cumulative-bucket histogram
/// (Prometheus style) that callers add up across WALs.
#[derive(Debug, Default)]
pub struct FsyncLatency {
    /// `buckets[i]` counts fsyncs of at most `FSYNC_LATENCY_BOUNDS[i]`; the last, all others.
    buckets: [AtomicU64; FSYNC_LATENCY_BOUNDS.len() + 1],
    sum_ns: AtomicU64,
}

/// A point-in-time copy of one or more [`FsyncLatency`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FsyncLatencySnapshot {
    /// Non-cumulative counts per bucket of [`FSYNC_LATENCY_BOUNDS`], then the overflow.
    pub buckets: [u64; FSYNC_LATENCY_BOUNDS.len() + 1],
    pub sum_seconds: f64,
}

impl FsyncLatencySnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another WAL's figures to these.
    pub fn add(&mut self, other: &FsyncLatencySnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_seconds += other.sum_seconds;
    }
}

impl FsyncLatency {
    fn observe(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let i = FSYNC_LATENCY_BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(FSYNC_LATENCY_BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            took.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    pub fn snapshot(&self) -> FsyncLatencySnapshot {
        let mut out = FsyncLatencySnapshot::default();
        for (o, b) in out.buckets.iter_mut().zip(&self.buckets) {
            *o = b.load(Ordering::Relaxed);
        }
        out.sum_seconds = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        out
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync wal directory", dir))
}

impl Wal {
    /// Opens (creating) `dir`, replays every record with a seq >= `from_seq` (records entirely
    /// below it are only checked: they are in segments already), cuts a torn tail of the newest
    /// file, and positions for appending with `next_seq = max(from_seq, last replayed seq + 1,
    /// the name of an empty newest file)`.
    ///
    /// A record straddling `from_seq` is replayed whole. Files whose records all lie below
    /// `from_seq` are kept until [`Wal::truncate_before`].
    pub fn open(dir: &Path, from_seq: u64, opts: WalOptions) -> Result<(Wal, WalReplay), WalError> {
        let existed = dir.is_dir();
        fs::create_dir_all(dir).map_err(io_err("create wal directory", dir))?;
        let mut fsyncs = 0;
        if !existed && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
            fsyncs += 1;
        }
        let ReplayedDir {
            mut files,
            prev_end,
            replay,
            fsyncs: replay_fsyncs,
        } = replay::replay_dir(dir, from_seq)?;
        fsyncs += replay_fsyncs;

        // An empty newest file (started by a roll or after a failure) names the next seq.
        let next_seq = prev_end
            .into_iter()
            .chain(files.last().map(|f| f.end_seq))
            .fold(from_seq, u64::max);
        let reuse = files.last().is_some_and(|f| f.end_seq == next_seq);
        let (file, file_bytes) = if reuse {
            let path = files.last().map(|f| f.path.clone()).unwrap_or_default();
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io_err("open wal file", &path))?;
            let len = file
                .metadata()
                .map_err(io_err("stat wal file", &path))?
                .len();
            (file, len)
        } else {
            let path = dir.join(wal_file_name(next_seq));
            let file = create_wal_file(dir, &path)?;
            fsyncs += 1;
            files.push(WalFile {
                end_seq: next_seq,
                path,
            });
            (file, 0)
        };
        tracing::debug!(
            dir = %dir.display(), files = files.len(), records = replay.records.len(), next_seq,
            "opened wal"
        );
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(Inner {
                file: Arc::new(file),
                files,
                file_bytes,
                buf: Vec::new(),
                next_seq,
                appended_pos: 0,
                failed: None,
                restarts: 0,
            }),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            fsyncs: AtomicU64::new(fsyncs),
            fsync_latency: FsyncLatency::default(),
            torn_tails_cut: AtomicU64::new(replay.torn_tails_cut),
        };
        Ok((wal, replay))
    }

    /// Appends one record holding all `rows` of one request and returns its ticket; the rows
    /// get `_seq` `ticket.first_seq()..+rows.len()`. Not durable until [`Wal::wait_durable`].
    /// An empty `rows` writes nothing and returns a ticket that is durable already.
    pub fn append(
        &self,
        stream: &str,
        rows: &[LogRecord],
        observed_timestamp_ns: i64,
    ) -> Result<AppendTicket, WalError> {
        if rows.is_empty() {
            // Nothing to store or make durable: the ticket is durable already.
            return Ok(AppendTicket {
                first_seq: self.next_seq(),
                end_pos: 0,
            });
        }
        // Compress outside the lock; only framing, crc and the copy happen under it.
        let body = v1::encode_body(stream, rows)?;
        let len = body.record_len() as u64;
        let mut inner = lock(&self.inner);
        self.check_healthy(&inner)?;
        let first_seq = inner.next_seq;
        let end_seq = self.seq_after(first_seq, u64::from(body.row_count()))?;
        if inner.file_bytes > 0 && inner.file_bytes.saturating_add(len) > self.opts.max_file_bytes {
            self.roll(&mut inner, first_seq)?;
        }
        v1::write_record(first_seq, observed_timestamp_ns, &body, &mut inner.buf);
        inner.file_bytes += len;
        inner.appended_pos += len;
        inner.next_seq = end_seq;
        if let Some(current) = inner.files.last_mut() {
            current.end_seq = end_seq;
        }
        let ticket = AppendTicket {
            first_seq,
            end_pos: inner.appended_pos,
        };
        if inner.buf.len() >= WRITE_BUFFER_BYTES {
            self.flush_locked(&mut inner)?;
        }
        Ok(ticket)
    }

    /// Gives `rows` rows their `_seq`s without writing them: the first is returned. For a
    /// writer whose rows skip the WAL (a bulk load, durable once its rows are in segments);
    /// such a writer must not also [`Wal::append`] (a record after reserved seqs would leave a
    /// gap that replay refuses until those rows are in segments). Reserved seqs of rows lost in
    /// a crash are given again after the next open.
    pub fn reserve(&self, rows: usize) -> Result<u64, WalError> {
        let mut inner = lock(&self.inner);
        let first_seq = inner.next_seq;
        inner.next_seq = self.seq_after(first_seq, rows as u64)?;
        Ok(first_seq)
    }

    /// The seq after `rows` rows from `first_seq`, unless that overflows.
    fn seq_after(&self, first_seq: u64, rows: u64) -> Result<u64, WalError> {
        first_seq
            .checked_add(rows)
            .ok_or_else(|| WalError::SeqExhausted {
                path: self.dir.clone(),
                next_seq: first_seq,
            })
    }

    /// Blocks until the record of `ticket` is fsynced. Group commit: the first waiter becomes the
    /// leader and flushes and fsyncs everything appended so far; waiters whose records that
    /// fsync covered return without one; the rest elect the next leader.
    pub fn wait_durable(&self, ticket: AppendTicket) -> Result<(), WalError> {
        let mut state = lock(&self.sync);
        loop {
            if state.durable_pos >= ticket.end_pos {
                return Ok(());
            }
            if let Some(reason) = &state.failed {
                return Err(WalError::Poisoned {
                    path: self.dir.clone(),
                    reason: reason.clone(),
                });
            }
            if state.syncing {
                state = self
                    .synced
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            let epoch = state.epoch;
            drop(state);
            let result = self.sync_pending();
            state = lock(&self.sync);
            state.syncing = false;
            match result {
                Ok(pos) => state.durable_pos = state.durable_pos.max(pos),
                // The WAL restarted meanwhile: this failure is of the old files. The loop
                // finds the record durable (the restart put it in segments) or syncs again.
                Err(_) if state.epoch != epoch => {}
                Err(e) => {
                    state.failed = Some(e.to_string());
                    drop(state);
                    self.synced.notify_all();
                    return Err(e);
                }
            }
            self.synced.notify_all();
        }
    }

    /// [`Wal::append`] then [`Wal::wait_durable`]; returns the first seq.
    pub fn append_durable(
        &self,
        stream: &str,
        rows: &[LogRecord],
        observed_timestamp_ns: i64,
    ) -> Result<u64, WalError> {
        let ticket = self.append(stream, rows, observed_timestamp_ns)?;
        self.wait_durable(ticket)?;
        Ok(ticket.first_seq)
    }

    /// Deletes the WAL files whose records all have a seq below `seq` (they are in segments
    /// now). Never deletes the file being appended to.
    pub fn truncate_before(&self, seq: u64) -> Result<(), WalError> {
        let mut inner = lock(&self.inner);
        // Everything appended is below `seq`: start a new, empty file so the current one can go.
        if inner.file_bytes > 0 && inner.next_seq <= seq && inner.failed.is_none() {
            let next = inner.next_seq;
            self.roll(&mut inner, next)?;
        }
        let mut removed = 0;
        while inner.files.len() > 1 && inner.files[0].end_seq <= seq {
            let path = &inner.files[0].path;
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete wal file", path)(e)),
            }
            tracing::debug!(path = %path.display(), "deleted wal file");
            inner.files.remove(0);
            removed += 1;
        }
        drop(inner);
        if removed > 0 {
            sync_dir(&self.dir)?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether an earlier write or fsync failed, so that appends are refused until
    /// [`Wal::restart_after_failure`].
    pub fn is_failed(&self) -> bool {
        lock(&self.inner).failed.is_some()
    }

    /// Starts over after a failed write or fsync (a full disk, say): every WAL file deleted, a
    /// new, empty one at the next seq, appends accepted again. Returns `false`, doing nothing,
    /// when nothing had failed.
    ///
    /// The old files are never read again (after a failed fsync what they hold is unknown), so
    /// the caller must first have put every row appended so far into segments, and must keep
    /// appends out until this returns. The old files go first: a crash part-way leaves fewer
    /// of them or none (the next open then starts at the catalog's next seq, perhaps reusing
    /// the seqs of records whose append failed: their rows never reached the memtable, while
    /// those of records whose fsync failed did, and are in segments by now), never an old file
    /// with a torn record before a new one. On an error the WAL stays failed; a later call
    /// retries.
    pub fn restart_after_failure(&self) -> Result<bool, WalError> {
        let mut inner = lock(&self.inner);
        if inner.failed.is_none() {
            return Ok(false);
        }
        for (_, path) in replay::list_wal_files(&self.dir)? {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete wal file", &path)(e)),
            }
        }
        sync_dir(&self.dir)?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let first_seq = inner.next_seq;
        let path = self.dir.join(wal_file_name(first_seq));
        let file = create_wal_file(&self.dir, &path)?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        tracing::info!(dir = %self.dir.display(), first_seq, "wal started over after a failure");
        inner.file = Arc::new(file);
        inner.files = vec![WalFile {
            end_seq: first_seq,
            path,
        }];
        inner.file_bytes = 0;
        inner.buf.clear();
        inner.failed = None;
        inner.restarts += 1;
        let mut state = lock(&self.sync);
        // What was appended before is in segments now: durable.
        state.durable_pos = state.durable_pos.max(inner.appended_pos);
        state.failed = None;
        state.epoch += 1;
        drop(state);
        self.synced.notify_all();
        Ok(true)
    }

    /// Marks the WAL failed as a failed write would (tests of what follows a failure; the
    /// full-disk test in server/tests/disk_full.rs makes real ones).
    #[cfg(test)]
    fn fail_for_test(&self, reason: &str) {
        lock(&self.inner).failed = Some(reason.to_string());
        lock(&self.sync).failed = Some(reason.to_string());
    }

    /// The seq the next appended row will get.
    pub fn next_seq(&self) -> u64 {
        lock(&self.inner).next_seq
    }

    /// How many fsyncs (of WAL files and of the directory) really happened since open,
    /// including those `open` itself did.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Latency of the group-commit fsyncs that acknowledged appends.
    pub fn fsync_latency(&self) -> FsyncLatencySnapshot {
        self.fsync_latency.snapshot()
    }

    /// Torn tails cut by `open` (0 or 1).
    pub fn torn_tails_cut(&self) -> u64 {
        self.torn_tails_cut.load(Ordering::Relaxed)
    }

    /// The directory this WAL owns.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_healthy(&self, inner: &Inner) -> Result<(), WalError> {
        match &inner.failed {
            Some(reason) => Err(WalError::Poisoned {
                path: self.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Marks the WAL failed after `err` left the disk in an unknown state, and returns `err`.
    fn poison(inner: &mut Inner, err: WalError) -> WalError {
        tracing::error!(error = %err, "wal refuses further writes");
        inner.failed = Some(err.to_string());
        err
    }

    /// Writes the buffered records to the current file (no fsync).
    fn flush_locked(&self, inner: &mut Inner) -> Result<(), WalError> {
        if inner.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*inner.file).write_all(&inner.buf) {
            let err = io_err("write wal file", inner.current_path())(e);
            return Err(Self::poison(inner, err));
        }
        inner.buf.clear();
        Ok(())
    }

    /// Leader work: flush under the lock, fsync outside it. Returns the position now durable.
    fn sync_pending(&self) -> Result<u64, WalError> {
        let (file, path, pos, restarts) = {
            let mut inner = lock(&self.inner);
            self.check_healthy(&inner)?;
            self.flush_locked(&mut inner)?;
            (
                Arc::clone(&inner.file),
                inner.current_path().to_path_buf(),
                inner.appended_pos,
                inner.restarts,
            )
        };
        let started = std::time::Instant::now();
        if let Err(e) = file.sync_data() {
            // After a failed fsync the page cache may have dropped the data: never retry. This
            // holds even if a roll has made another file current since; only files that a
            // restart after a failure has deleted are no concern.
            let err = io_err("fsync wal file", &path)(e);
            let mut inner = lock(&self.inner);
            if inner.restarts == restarts {
                return Err(Self::poison(&mut inner, err));
            }
            return Err(err);
        }
        self.fsync_latency.observe(started.elapsed());
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(pos)
    }

    /// Makes the current file durable and starts a new one whose first record is `first_seq`.
    fn roll(&self, inner: &mut Inner, first_seq: u64) -> Result<(), WalError> {
        self.flush_locked(inner)?;
        if let Err(e) = inner.file.sync_data() {
            let err = io_err("fsync wal file", inner.current_path())(e);
            return Err(Self::poison(inner, err));
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let durable = inner.appended_pos;
        let path = self.dir.join(wal_file_name(first_seq));
        let file = match create_wal_file(&self.dir, &path) {
            Ok(file) => file,
            // The file may exist without a durable directory entry: do not reuse it.
            Err(
                err @ WalError::Io {
                    op: "fsync wal directory",
                    ..
                },
            ) => return Err(Self::poison(inner, err)),
            Err(err) => return Err(err),
        };
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(path = %path.display(), "started wal file");
        inner.file = Arc::new(file);
        inner.files.push(WalFile {
            end_seq: first_seq,
            path,
        });
        inner.file_bytes = 0;
        // Lock order is always inner → sync; no one takes inner while holding sync.
        let mut state = lock(&self.sync);
        state.durable_pos = state.durable_pos.max(durable);
        drop(state);
        self.synced.notify_all();
        Ok(())
    }
}

impl Drop for Wal {
    /// Writes buffered records to the OS (no fsync): a clean shutdown loses nothing that was
    /// appended, a crash loses what was not made durable.
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        if inner.failed.is_none()
            && !inner.buf.is_empty()
            && let Err(e) = (&*inner.file).write_all(&inner.buf)
        {
            tracing::warn!(path = %inner.current_path().display(), error = %e, "cannot flush wal on close");
        }
    }
}

/// Creates a new, empty WAL file and fsyncs the directory so its entry survives a crash.
fn create_wal_file(dir: &Path, path: &Path) -> Result<File, WalError> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .map_err(io_err("create wal file", path))?;
    sync_dir(dir)?;
    Ok(file)
}
