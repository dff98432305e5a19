//! Replay of a WAL directory at open: lists the files, checks every record and seq continuity,
//! and cuts a torn tail of the newest file (a bad record elsewhere is a hard error).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::{WalError, WalFile, WalRecord, WalReplay, corrupt, io_err, parse_wal_file_name, v1};

/// What replaying a whole directory found.
pub(super) struct ReplayedDir {
    /// Every WAL file, oldest first.
    pub(super) files: Vec<WalFile>,
    /// One past the last seq of the last record, if any record exists.
    pub(super) prev_end: Option<u64>,
    pub(super) replay: WalReplay,
    /// fsyncs done (cutting a torn tail).
    pub(super) fsyncs: u64,
}

/// The WAL files in `dir` with their first seqs, oldest first; other files are left out.
pub(super) fn list_wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list wal directory", dir))? {
        let entry = entry.map_err(io_err("list wal directory", dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_wal_file_name) {
            names.push((seq, entry.path()));
        }
    }
    names.sort();
    Ok(names)
}

/// Replays every WAL file in `dir`, oldest first; see [`super::Wal::open`].
pub(super) fn replay_dir(dir: &Path, from_seq: u64) -> Result<ReplayedDir, WalError> {
    let names = list_wal_files(dir)?;
    let mut replay = WalReplay::default();
    let mut fsyncs = 0;
    let count = names.len();
    let mut files = Vec::with_capacity(count + 1);
    let mut prev_end = None;
    for (i, (first_seq, path)) in names.into_iter().enumerate() {
        let newest = i + 1 == count;
        let data = fs::read(&path).map_err(io_err("read wal file", &path))?;
        let scan = scan_file(
            &path,
            &data,
            first_seq,
            newest,
            from_seq,
            &mut prev_end,
            &mut replay,
        )?;
        if let Some((offset, reason)) = scan.torn_at {
            let cut = (data.len() - offset) as u64;
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| {
                    f.set_len(offset as u64)?;
                    f.sync_all()
                })
                .map_err(io_err("cut torn tail of wal file", &path))?;
            fsyncs += 1;
            tracing::warn!(
                path = %path.display(), offset, bytes = cut, %reason,
                "cut torn tail of wal file"
            );
            replay.torn_tail_bytes = cut;
            replay.torn_tails_cut = 1;
        }
        files.push(WalFile {
            end_seq: scan.end_seq,
            path,
        });
    }
    Ok(ReplayedDir {
        files,
        prev_end,
        replay,
        fsyncs,
    })
}

/// What replaying one file found.
struct FileScan {
    end_seq: u64,
    /// Offset of the torn tail that must be cut, in the newest file only.
    torn_at: Option<(usize, v1::RecordError)>,
}

/// Replays one file: checks every record's frame and seq continuity, decodes those reaching
/// `from_seq` into `replay`, and finds a torn tail (newest file only).
fn scan_file(
    path: &Path,
    data: &[u8],
    name_seq: u64,
    newest: bool,
    from_seq: u64,
    prev_end: &mut Option<u64>,
    replay: &mut WalReplay,
) -> Result<FileScan, WalError> {
    let mut offset = 0;
    let mut end_seq = name_seq;
    while offset < data.len() {
        let buf = &data[offset..];
        let header = match v1::check_frame(buf) {
            Ok(header) => header,
            Err(v1::RecordError::UnsupportedVersion { version }) => {
                return Err(WalError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    version,
                });
            }
            Err(e) if !newest => {
                return Err(corrupt(path, offset, format!("{e} (not the newest file)")));
            }
            Err(e) => match v1::find_next_valid(data, offset + 1) {
                Some(next) => {
                    return Err(corrupt(
                        path,
                        offset,
                        format!("{e}; a valid record follows at offset {next}"),
                    ));
                }
                None => {
                    return Ok(FileScan {
                        end_seq,
                        torn_at: Some((offset, e)),
                    });
                }
            },
        };
        let first_in_file = offset == 0;
        if first_in_file && header.first_seq != name_seq {
            let reason = format!(
                "first record has seq {} but the file name says {name_seq}",
                header.first_seq
            );
            return Err(corrupt(path, offset, reason));
        }
        if let Some(prev) = *prev_end {
            if header.first_seq < prev {
                let reason = format!(
                    "record seq {} overlaps the previous record ending at {prev}",
                    header.first_seq
                );
                return Err(corrupt(path, offset, reason));
            }
            // A new file may skip seqs below from_seq: open starts one at from_seq when the
            // log ended earlier.
            let gap_allowed = first_in_file && header.first_seq <= from_seq;
            if header.first_seq > prev && !gap_allowed {
                let reason = format!(
                    "record seq {} leaves a gap after the previous record ending at {prev}",
                    header.first_seq
                );
                return Err(corrupt(path, offset, reason));
            }
        }
        if header.end_seq() > from_seq {
            let (stream, rows) =
                v1::decode_framed(buf, &header).map_err(|e| corrupt(path, offset, e))?;
            replay.records.push(WalRecord {
                first_seq: header.first_seq,
                stream,
                rows,
                observed_timestamp_ns: header.observed_timestamp_ns,
            });
        }
        end_seq = header.end_seq();
        *prev_end = Some(end_seq);
        offset += header.record_len();
    }
    Ok(FileScan {
        end_seq,
        torn_at: None,
    })
}
