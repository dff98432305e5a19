//! Tests of the WAL as a whole: round trips, torn tails, corruption, group commit, truncation.
//! Payload and record-format unit tests live next to their code.

use super::*;
use proptest::prelude::*;

pub(crate) fn arb_record() -> impl Strategy<Value = LogRecord> {
    let s = || proptest::option::of(".{0,12}");
    (
        proptest::option::of(any::<i64>()),
        (s(), s(), s(), s(), s()),
        ".{0,40}",
        proptest::collection::vec((".{0,8}", ".{0,16}"), 0..4),
    )
        .prop_map(
            |(timestamp, (level, service, host, trace_id, span_id), message, attributes)| {
                LogRecord {
                    timestamp,
                    level,
                    service,
                    host,
                    trace_id,
                    span_id,
                    message,
                    attributes,
                }
            },
        )
}

fn row(message: &str) -> LogRecord {
    LogRecord {
        timestamp: Some(1_700_000_000_000_000_000),
        level: Some("INFO".into()),
        service: Some("api".into()),
        message: message.into(),
        attributes: vec![("k".into(), "v".into())],
        ..LogRecord::default()
    }
}

fn rows(n: usize, tag: &str) -> Vec<LogRecord> {
    (0..n).map(|i| row(&format!("{tag} row {i}"))).collect()
}

fn open(dir: &Path, from_seq: u64) -> (Wal, WalReplay) {
    Wal::open(dir, from_seq, WalOptions::default()).expect("open wal")
}

fn open_small(dir: &Path, from_seq: u64) -> (Wal, WalReplay) {
    Wal::open(dir, from_seq, WalOptions { max_file_bytes: 1 }).expect("open wal")
}

fn wal_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| parse_wal_file_name(n).is_some())
        .collect();
    names.sort();
    names
}

/// Appends `batches` durably to a fresh WAL in `dir` and returns what replay must yield.
fn write_batches(dir: &Path, batches: &[Vec<LogRecord>], small: bool) -> Vec<WalRecord> {
    let (wal, _) = if small {
        open_small(dir, 0)
    } else {
        open(dir, 0)
    };
    let mut expected = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let first_seq = wal.append_durable("default", batch, i as i64).unwrap();
        if batch.is_empty() {
            continue;
        }
        expected.push(WalRecord {
            first_seq,
            stream: "default".into(),
            rows: batch.clone(),
            observed_timestamp_ns: i as i64,
        });
    }
    expected
}

#[test]
fn wal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Wal>();
}

#[test]
fn file_names_sort_and_parse() {
    assert_eq!(wal_file_name(42), "00000000000000000042.wal");
    assert_eq!(parse_wal_file_name("00000000000000000042.wal"), Some(42));
    assert_eq!(
        parse_wal_file_name(&wal_file_name(u64::MAX)),
        Some(u64::MAX)
    );
    assert!(wal_file_name(9) < wal_file_name(10));
    for bad in [
        "42.wal",
        "0000000000000000004a.wal",
        "99999999999999999999.wal",
        "x",
        "",
    ] {
        assert_eq!(parse_wal_file_name(bad), None, "{bad}");
    }
    assert_eq!(parse_wal_file_name("00000000000000000042.wal.tmp"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn append_reopen_replays_equal(
        batches in proptest::collection::vec(proptest::collection::vec(arb_record(), 0..5), 1..8),
        small in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let expected = write_batches(dir.path(), &batches, small);
        let total: usize = batches.iter().map(Vec::len).sum();
        let (wal, replay) = open(dir.path(), 0);
        prop_assert_eq!(replay.records, expected);
        prop_assert_eq!(replay.torn_tails_cut, 0);
        prop_assert_eq!(wal.next_seq(), total as u64);
    }
}

#[test]
fn appended_rows_get_contiguous_seqs_and_survive_close_without_sync() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, replay) = open(dir.path(), 0);
        assert!(replay.records.is_empty());
        assert_eq!(
            wal.append("default", &rows(3, "a"), 1).unwrap().first_seq(),
            0
        );
        assert_eq!(wal.append("default", &[], 2).unwrap().first_seq(), 3);
        assert_eq!(
            wal.append("default", &rows(2, "b"), 3).unwrap().first_seq(),
            3
        );
        assert_eq!(wal.next_seq(), 5);
    }
    let (wal, replay) = open(dir.path(), 0);
    let seqs: Vec<(u64, usize)> = replay
        .records
        .iter()
        .map(|r| (r.first_seq, r.rows.len()))
        .collect();
    assert_eq!(seqs, [(0, 3), (3, 2)]);
    assert_eq!(wal.next_seq(), 5);
}

#[test]
fn fsync_count_increments_on_wait_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 0);
    let ticket = wal.append("default", &rows(2, "a"), 0).unwrap();
    let before = wal.fsync_count();
    wal.wait_durable(ticket).unwrap();
    assert_eq!(wal.fsync_count(), before + 1);
    // Already durable: no second fsync.
    wal.wait_durable(ticket).unwrap();
    assert_eq!(wal.fsync_count(), before + 1);
    wal.append_durable("default", &rows(1, "b"), 0).unwrap();
    assert_eq!(wal.fsync_count(), before + 2);
}

#[test]
fn group_commit_shares_fsyncs() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 0);
    let wal = Arc::new(wal);
    let before = wal.fsync_count();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        wal.append_durable("default", &rows(1, &format!("t{t} {i}")), 0)
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    let total = THREADS * PER_THREAD;
    assert_eq!(seqs, (0..total as u64).collect::<Vec<_>>());
    let fsyncs = wal.fsync_count() - before;
    assert!(
        fsyncs > 0 && fsyncs < total as u64,
        "{fsyncs} fsyncs for {total} appends"
    );
    drop(wal);
    let (_, replay) = open(dir.path(), 0);
    assert_eq!(replay.records.len(), total);
}

#[test]
fn torn_tail_is_cut_at_every_offset_of_the_last_record() {
    let src = tempfile::tempdir().unwrap();
    let expected = write_batches(
        src.path(),
        &[rows(2, "a"), rows(3, "b"), rows(2, "c")],
        false,
    );
    let name = wal_files(src.path()).remove(0);
    let full = fs::read(src.path().join(&name)).unwrap();
    let last_len = v1::encode_record(5, 2, "default", &expected[2].rows)
        .unwrap()
        .len();
    let last_start = full.len() - last_len;
    for cut in last_start + 1..full.len() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(&name), &full[..cut]).unwrap();
        let (wal, replay) = open(dir.path(), 0);
        assert_eq!(replay.records, expected[..2], "cut at {cut}");
        assert_eq!((replay.torn_tails_cut, wal.torn_tails_cut()), (1, 1));
        assert_eq!(replay.torn_tail_bytes, (cut - last_start) as u64);
        assert_eq!(
            fs::metadata(dir.path().join(&name)).unwrap().len(),
            last_start as u64
        );
        assert_eq!(wal.append_durable("default", &rows(1, "d"), 9).unwrap(), 5);
        drop(wal);
        let (wal, replay) = open(dir.path(), 0);
        assert_eq!(replay.torn_tails_cut, 0);
        assert_eq!(replay.records.len(), 3);
        assert_eq!(replay.records[2].rows, rows(1, "d"));
        assert_eq!(wal.next_seq(), 6);
    }
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_batches(dir.path(), &[rows(2, "a"), rows(2, "b")], false);
    let path = dir.path().join(wal_files(dir.path()).remove(0));
    let mut data = fs::read(&path).unwrap();
    let good = data.len();
    data.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &data).unwrap();
    let (_, replay) = open(dir.path(), 0);
    assert_eq!(replay.records, expected);
    assert_eq!((replay.torn_tails_cut, replay.torn_tail_bytes), (1, 4096));
    assert_eq!(fs::metadata(&path).unwrap().len(), good as u64);
}

fn expect_corrupt(dir: &Path, from_seq: u64) -> (PathBuf, u64, String) {
    match Wal::open(dir, from_seq, WalOptions::default()) {
        Err(WalError::Corrupt {
            path,
            offset,
            reason,
        }) => (path, offset, reason),
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[test]
fn corruption_before_a_valid_record_is_a_hard_error() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_batches(
        dir.path(),
        &[rows(2, "a"), rows(3, "b"), rows(2, "c")],
        false,
    );
    let path = dir.path().join(wal_files(dir.path()).remove(0));
    let clean = fs::read(&path).unwrap();
    let first_len = v1::encode_record(0, 0, "default", &expected[0].rows)
        .unwrap()
        .len();
    // A flipped payload byte in the first and in the second record.
    for (at, offset) in [
        (first_len - 1, 0),
        (first_len + v1::HEADER_BYTES + 2, first_len),
    ] {
        let mut data = clean.clone();
        data[at] ^= 0x40;
        fs::write(&path, &data).unwrap();
        let (p, o, reason) = expect_corrupt(dir.path(), 0);
        assert_eq!(
            (p.as_path(), o),
            (path.as_path(), offset as u64),
            "{reason}"
        );
        let msg = WalError::Corrupt {
            path: p,
            offset: o,
            reason,
        }
        .to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains(&format!("offset {offset}"))
        );
        // The file is left as it was: nothing was cut.
        assert_eq!(fs::read(&path).unwrap(), data);
    }
}

#[test]
fn bad_version_is_never_cut() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), &[rows(2, "a"), rows(2, "b")], false);
    let path = dir.path().join(wal_files(dir.path()).remove(0));
    let mut data = fs::read(&path).unwrap();
    let second = v1::encode_record(0, 0, "default", &rows(2, "a"))
        .unwrap()
        .len();
    data[second + 4] = 2;
    fs::write(&path, &data).unwrap();
    match Wal::open(dir.path(), 0, WalOptions::default()) {
        Err(WalError::UnsupportedVersion {
            offset, version: 2, ..
        }) => assert_eq!(offset, second as u64),
        other => panic!("expected unsupported version, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), data);
}

#[test]
fn a_bad_tail_in_an_older_file_is_a_hard_error() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(
        dir.path(),
        &[rows(2, "a"), rows(2, "b"), rows(2, "c")],
        true,
    );
    let names = wal_files(dir.path());
    assert_eq!(
        names,
        [wal_file_name(0), wal_file_name(2), wal_file_name(4)]
    );
    let older = dir.path().join(&names[1]);
    let data = fs::read(&older).unwrap();
    fs::write(&older, &data[..data.len() - 1]).unwrap();
    let (p, o, _) = expect_corrupt(dir.path(), 0);
    assert_eq!((p.as_path(), o), (older.as_path(), 0));
    // The same cut in the newest file is a torn tail.
    fs::write(&older, &data).unwrap();
    let newest = dir.path().join(&names[2]);
    let data = fs::read(&newest).unwrap();
    fs::write(&newest, &data[..data.len() - 1]).unwrap();
    let (wal, replay) = open_small(dir.path(), 0);
    assert_eq!(
        replay
            .records
            .iter()
            .map(|r| r.first_seq)
            .collect::<Vec<_>>(),
        [0, 2]
    );
    assert_eq!(replay.torn_tails_cut, 1);
    assert_eq!(wal.append_durable("default", &rows(1, "d"), 0).unwrap(), 4);
}

#[test]
fn seq_gaps_and_overlaps_are_corrupt() {
    for (second_seq, what) in [(5, "gap"), (1, "overlaps")] {
        let dir = tempfile::tempdir().unwrap();
        let mut data = v1::encode_record(0, 0, "default", &rows(2, "a")).unwrap();
        let first_len = data.len();
        data.extend(v1::encode_record(second_seq, 0, "default", &rows(2, "b")).unwrap());
        fs::write(dir.path().join(wal_file_name(0)), &data).unwrap();
        let (_, offset, reason) = expect_corrupt(dir.path(), 0);
        assert_eq!(offset, first_len as u64);
        assert!(reason.contains(what), "{reason}");
    }
    // A file whose name disagrees with its first record.
    let dir = tempfile::tempdir().unwrap();
    let data = v1::encode_record(3, 0, "default", &rows(2, "a")).unwrap();
    fs::write(dir.path().join(wal_file_name(0)), &data).unwrap();
    let (_, offset, reason) = expect_corrupt(dir.path(), 0);
    assert_eq!(offset, 0);
    assert!(reason.contains("file name"), "{reason}");
}

#[test]
fn from_seq_skips_records_already_in_segments() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..5).map(|i| rows(2, &format!("b{i}"))).collect();
    let expected = write_batches(dir.path(), &batches, false);
    let firsts = |replay: &WalReplay| {
        replay
            .records
            .iter()
            .map(|r| r.first_seq)
            .collect::<Vec<_>>()
    };
    let (wal, replay) = open(dir.path(), 4);
    assert_eq!(firsts(&replay), [4, 6, 8]);
    assert_eq!(replay.records[..], expected[2..]);
    assert_eq!(wal.next_seq(), 10);
    drop(wal);
    // A record straddling from_seq is replayed whole.
    let (_, replay) = open(dir.path(), 5);
    assert_eq!(firsts(&replay), [4, 6, 8]);
    // from_seq past the end of the log: nothing replayed, a new file starts at from_seq.
    let (wal, replay) = open(dir.path(), 100);
    assert!(replay.records.is_empty());
    assert_eq!(
        wal.append_durable("default", &rows(1, "late"), 0).unwrap(),
        100
    );
    drop(wal);
    assert_eq!(
        wal_files(dir.path()),
        [wal_file_name(0), wal_file_name(100)]
    );
    let (wal, replay) = open(dir.path(), 100);
    assert_eq!(firsts(&replay), [100]);
    assert_eq!(wal.next_seq(), 101);
    drop(wal);
    // Asking for seqs the log skipped is an error, not silent loss.
    let (path, offset, _) = expect_corrupt(dir.path(), 0);
    assert_eq!((path, offset), (dir.path().join(wal_file_name(100)), 0));
}

#[test]
fn truncate_before_deletes_only_fully_covered_files() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open_small(dir.path(), 0);
    for i in 0..5 {
        wal.append_durable("default", &rows(2, &format!("b{i}")), 0)
            .unwrap();
    }
    let names = |d: &Path| {
        wal_files(d)
            .iter()
            .filter_map(|n| parse_wal_file_name(n))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(dir.path()), [0, 2, 4, 6, 8]);
    wal.truncate_before(5).unwrap();
    assert_eq!(names(dir.path()), [4, 6, 8]);
    wal.truncate_before(6).unwrap();
    assert_eq!(names(dir.path()), [6, 8]);
    wal.truncate_before(u64::MAX).unwrap();
    assert_eq!(
        names(dir.path()),
        [10],
        "a new empty file replaces the fully truncated one"
    );
    assert_eq!(
        wal.append_durable("default", &rows(1, "after"), 0).unwrap(),
        10
    );
    drop(wal);
    let (wal, replay) = open_small(dir.path(), 10);
    assert_eq!(
        replay
            .records
            .iter()
            .map(|r| r.first_seq)
            .collect::<Vec<_>>(),
        [10]
    );
    assert_eq!(wal.next_seq(), 11);
}

#[test]
fn rolling_writes_files_named_by_first_seq() {
    let dir = tempfile::tempdir().unwrap();
    let one = v1::encode_record(0, 0, "default", &rows(1, "x"))
        .unwrap()
        .len() as u64;
    let (wal, _) = Wal::open(
        dir.path(),
        0,
        WalOptions {
            max_file_bytes: 3 * one,
        },
    )
    .unwrap();
    for _ in 0..7 {
        wal.append_durable("default", &rows(1, "x"), 0).unwrap();
    }
    drop(wal);
    assert_eq!(
        wal_files(dir.path()),
        [wal_file_name(0), wal_file_name(3), wal_file_name(6)]
    );
    let (_, replay) = open(dir.path(), 0);
    assert_eq!(replay.records.len(), 7);
}

#[test]
fn large_and_compressible_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![LogRecord {
        message: "a".repeat(4 << 20),
        ..LogRecord::default()
    }];
    let many = rows(5000, "many");
    let expected = write_batches(dir.path(), &[big, many], false);
    let (_, replay) = open(dir.path(), 0);
    assert_eq!(replay.records, expected);
}

#[test]
fn truncating_everything_leaves_one_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), 0, WalOptions::default()).unwrap();
    wal.append_durable("default", &rows(3, "a"), 0).unwrap();
    wal.append_durable("default", &rows(2, "b"), 0).unwrap();
    wal.truncate_before(wal.next_seq()).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 0);
    assert_eq!(
        files[0].file_name().unwrap().to_string_lossy(),
        wal_file_name(5)
    );
    assert_eq!(wal.append_durable("default", &rows(1, "c"), 0).unwrap(), 5);
    drop(wal);
    let (wal, replay) = Wal::open(dir.path(), 5, WalOptions::default()).unwrap();
    assert_eq!(replay.records.len(), 1);
    assert_eq!(wal.next_seq(), 6);
}

#[test]
fn an_empty_newest_file_names_the_next_seq() {
    // As `Wal::restart_after_failure` leaves it: one empty file, named past every seq given out,
    // while the catalog may have flushed less (the failed records' seqs are in no segment).
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), 0);
    wal.append_durable("default", &rows(7, "a"), 0).unwrap();
    wal.truncate_before(wal.next_seq()).unwrap();
    drop(wal);
    assert_eq!(wal_files(dir.path()), [wal_file_name(7)]);
    let (wal, replay) = open(dir.path(), 3);
    assert!(replay.records.is_empty());
    assert_eq!(wal.next_seq(), 7);
    assert_eq!(wal.append_durable("default", &rows(1, "b"), 0).unwrap(), 7);
    assert!(!wal.is_failed());
    assert!(!wal.restart_after_failure().unwrap(), "nothing had failed");
    drop(wal);
    assert_eq!(wal_files(dir.path()), [wal_file_name(7)]);
}

#[test]
fn a_failed_wal_starts_over_in_one_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open_small(dir.path(), 0);
    for i in 0..3 {
        wal.append_durable("default", &rows(4, &format!("r{i}")), 0)
            .unwrap();
    }
    // A record whose write "failed" took seqs 12..14; a roll whose directory fsync failed left
    // an empty file of the next seq behind, unlisted.
    let ticket = wal.append("default", &rows(2, "lost"), 0).unwrap();
    std::fs::write(dir.path().join(wal_file_name(14)), b"").unwrap();
    wal.fail_for_test("No space left on device");
    assert!(wal.is_failed());
    assert!(matches!(
        wal.append("default", &rows(1, "refused"), 0),
        Err(WalError::Poisoned { .. })
    ));
    assert!(matches!(
        wal.wait_durable(ticket),
        Err(WalError::Poisoned { .. })
    ));

    // The caller has put every row in segments: the WAL starts over.
    assert!(wal.restart_after_failure().unwrap());
    assert!(!wal.is_failed());
    assert_eq!(wal_files(dir.path()), [wal_file_name(14)]);
    assert_eq!(
        wal.append_durable("default", &rows(3, "after"), 0).unwrap(),
        14
    );
    drop(wal);
    // Reopened with the catalog at seq 11 (the failed record's rows were never stored).
    let (wal, replay) = open(dir.path(), 12);
    assert_eq!(replay.records.len(), 1);
    assert_eq!(replay.records[0].first_seq, 14);
    assert_eq!(wal.next_seq(), 17);
}
