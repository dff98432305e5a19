use super::*;

fn entry(id: &str, tenant: &str, seq: (u64, u64)) -> SegmentEntry {
    SegmentEntry {
        id: id.into(),
        tenant: tenant.into(),
        stream: "default".into(),
        partition: "2026-11-21T10".into(),
        min_timestamp: 1,
        max_timestamp: 2,
        rows: seq.1 - seq.0 + 1,
        bytes: 100,
        blake3: "00".repeat(32),
        page_index_crc32c: 0,
        tier: Tier::Local,
        location: format!("segments/{tenant}/default/p/{id}.parquet"),
        format_version: 1,
        seq: SeqRange {
            first: seq.0,
            last: seq.1,
        },
        created_at: 0,
    }
}

fn added(ids: &[&str], tenant: &str, wal: (u64, u64)) -> CatalogEvent {
    CatalogEvent::SegmentsAdded {
        segments: ids.iter().map(|id| entry(id, tenant, wal)).collect(),
        wal_seq: SeqRange {
            first: wal.0,
            last: wal.1,
        },
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    list_files(dir)
        .unwrap()
        .1
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn commits_survive_reopen_with_snapshots_and_chains() {
    let dir = tempfile::tempdir().unwrap();
    let options = CatalogOptions {
        snapshot_every_events: 4,
    };
    let expected = {
        let (catalog, _) = Catalog::open(dir.path(), options.clone()).unwrap();
        for i in 0..10u64 {
            let tenant = if i % 2 == 0 { "a" } else { "b" };
            catalog
                .commit(
                    tenant,
                    added(&[&format!("s{i}")], tenant, (i * 10, i * 10 + 9)),
                    0,
                )
                .unwrap();
        }
        catalog
            .commit(
                "a",
                CatalogEvent::SegmentsReplaced {
                    removed: vec!["s0".into(), "s2".into()],
                    added: vec![entry("c1", "a", (0, 29))],
                },
                0,
            )
            .unwrap();
        catalog
            .commit(
                "b",
                CatalogEvent::SegmentMoved {
                    id: "s1".into(),
                    tier: Tier::Object,
                    location: "k".into(),
                },
                0,
            )
            .unwrap();
        catalog
            .commit(
                "b",
                CatalogEvent::SegmentsDeleted {
                    ids: vec!["s3".into()],
                },
                0,
            )
            .unwrap();
        catalog.state()
    };
    assert_eq!(expected.last_event, 13);
    assert_eq!(expected.flushed_seq("a"), Some(89));
    assert_eq!(expected.flushed_seq("b"), Some(99));
    assert!(expected.segments.contains_key("c1") && !expected.segments.contains_key("s0"));
    assert_eq!(expected.segments["s1"].tier, Tier::Object);
    let (snapshots, logs) = list_files(dir.path()).unwrap();
    assert_eq!(snapshots.len(), 1, "old snapshots are removed");
    assert_eq!(logs.len(), 1, "logs before the snapshot are removed");

    let (reopened, report) = Catalog::open(dir.path(), options).unwrap();
    assert_eq!(*reopened.state(), *expected);
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(Catalog::read_only(dir.path()).unwrap(), *expected);
    reopened
        .commit("a", added(&["late"], "a", (200, 210)), 0)
        .unwrap();
}

#[test]
fn invalid_events_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, _) = Catalog::open(dir.path(), CatalogOptions::default()).unwrap();
    catalog.commit("a", added(&["x"], "a", (0, 9)), 0).unwrap();
    let before = catalog.state();
    assert!(
        catalog
            .commit("a", added(&["x"], "a", (10, 19)), 0)
            .is_err(),
        "duplicate id"
    );
    assert!(
        catalog
            .commit(
                "b",
                CatalogEvent::SegmentsDeleted {
                    ids: vec!["x".into()]
                },
                0
            )
            .is_err(),
        "other tenant"
    );
    assert!(
        catalog
            .commit("a", added(&["y"], "b", (10, 19)), 0)
            .is_err(),
        "segment of another tenant"
    );
    assert_eq!(*catalog.state(), *before);
    drop(catalog);
    let (reopened, _) = Catalog::open(dir.path(), CatalogOptions::default()).unwrap();
    assert_eq!(*reopened.state(), *before);
}

/// A catalog in `dir` with three events committed; its log and the log's bytes.
fn three_events(dir: &Path) -> (PathBuf, Vec<u8>) {
    let (catalog, _) = Catalog::open(dir, CatalogOptions::default()).unwrap();
    for i in 0..3 {
        catalog
            .commit(
                "a",
                added(&[&format!("s{i}")], "a", (i * 10, i * 10 + 9)),
                0,
            )
            .unwrap();
    }
    drop(catalog);
    let log = log_files(dir).remove(0);
    let full = std::fs::read(&log).unwrap();
    (log, full)
}

/// Opening the catalog of [`three_events`] whose last event was torn: the tear is cut, two
/// events remain, and an event committed after it is there on the next open.
fn torn_tail_is_cut_and_the_next_event_stays(dir: &Path) {
    let (catalog, report) = Catalog::open(dir, CatalogOptions::default()).unwrap();
    assert!(report.torn_tail_bytes > 0);
    assert_eq!(catalog.state().segments.len(), 2);
    catalog
        .commit("a", added(&["again"], "a", (20, 29)), 0)
        .unwrap();
    drop(catalog);
    let (catalog, _) = Catalog::open(dir, CatalogOptions::default()).unwrap();
    assert_eq!(catalog.state().segments.len(), 3);
}

#[test]
fn torn_tail_is_cut_and_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (log, full) = three_events(dir.path());

    // Torn tail: the last event half written.
    std::fs::write(&log, &full[..full.len() - 20]).unwrap();
    torn_tail_is_cut_and_the_next_event_stays(dir.path());

    // Damage in the middle: a hard error naming the file and offset.
    let mut damaged = std::fs::read(&log).unwrap();
    damaged[20] ^= 1;
    std::fs::write(&log, &damaged).unwrap();
    let err = Catalog::open(dir.path(), CatalogOptions::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&log.display().to_string())
            && err.to_string().contains("offset 0"),
        "{err}"
    );
}

#[test]
fn a_rewritten_event_breaks_the_hash_chain() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (catalog, _) = Catalog::open(dir.path(), CatalogOptions::default()).unwrap();
        catalog.commit("a", added(&["s0"], "a", (0, 9)), 0).unwrap();
        catalog
            .commit("a", added(&["s1"], "a", (10, 19)), 0)
            .unwrap();
    }
    // Rewrite the first event with a valid frame checksum but different content.
    let log = log_files(dir.path()).remove(0);
    let bytes = std::fs::read(&log).unwrap();
    let frames = frame::decode_all(&bytes);
    let mut first: EventRecord = serde_json::from_slice(frames.frames[0]).unwrap();
    if let CatalogEvent::SegmentsAdded { segments, .. } = &mut first.event {
        segments[0].rows = 999;
    }
    let mut out = Vec::new();
    frame::encode(&serde_json::to_vec(&first).unwrap(), &mut out);
    frame::encode(frames.frames[1], &mut out);
    std::fs::write(&log, out).unwrap();
    let err = Catalog::open(dir.path(), CatalogOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("hash"), "{err}");
}

const FULL_DISK_CHILD: &str = "SILT_CATALOG_FULL_DISK_DIR";

/// A real full disk (a small tmpfs mounted in a private user and mount namespace, as in
/// server/tests/disk_full.rs): an event that does not fit is taken back out of the log, so
/// the next event is not appended after a torn frame (which the next open would refuse).
#[test]
fn an_event_that_does_not_fit_is_taken_back_out_of_the_log() {
    if let Some(dir) = std::env::var_os(FULL_DISK_CHILD) {
        full_disk_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    crate::test_support::rerun_in_mount_namespace(
        "catalog::tests::an_event_that_does_not_fit_is_taken_back_out_of_the_log",
        FULL_DISK_CHILD,
        dir.path(),
    );
}

fn full_disk_child(dir: &Path) {
    crate::test_support::mount_tmpfs(dir, "1m");
    let options = CatalogOptions {
        snapshot_every_events: 1000,
    };
    let catalog_dir = dir.join("catalog");
    let (catalog, _) = Catalog::open(&catalog_dir, options.clone()).unwrap();
    catalog.commit("a", added(&["s0"], "a", (0, 9)), 0).unwrap();
    // Fill the disk, then free one page: a big event gets part of the way.
    let page = dir.join("page");
    std::fs::write(&page, [0u8; 4096]).unwrap();
    let filler = dir.join("filler");
    {
        let mut f = File::create(&filler).unwrap();
        while f.write_all(&[1u8; 4096]).is_ok() {}
    }
    std::fs::remove_file(&page).unwrap();
    let ids: Vec<String> = (0..60).map(|i| format!("big{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let err = catalog
        .commit("a", added(&ids, "a", (10, 19)), 0)
        .unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(!catalog.is_failed());
    assert_eq!(catalog.state().segments.len(), 1);

    std::fs::remove_file(&filler).unwrap();
    catalog
        .commit("a", added(&["s1"], "a", (10, 19)), 0)
        .unwrap();
    drop(catalog);
    let (catalog, report) = Catalog::open(&catalog_dir, options).unwrap();
    assert_eq!(report.torn_tail_bytes, 0);
    let mut ids: Vec<String> = catalog.state().segments.keys().cloned().collect();
    ids.sort();
    assert_eq!(ids, ["s0", "s1"]);
}

#[test]
fn a_torn_tail_before_only_empty_logs_is_still_a_torn_tail() {
    // A snapshot that made its new log but could not fsync the directory leaves an empty log
    // after the one that events keep going to; a crash then tears that one's last event.
    let dir = tempfile::tempdir().unwrap();
    let (log, full) = three_events(dir.path());
    std::fs::write(&log, &full[..full.len() - 20]).unwrap();
    std::fs::write(dir.path().join(layout::catalog_log_name(90)), b"").unwrap();
    torn_tail_is_cut_and_the_next_event_stays(dir.path());
}
