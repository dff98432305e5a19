//! Segment write + index build throughput (rows/s) and term look-up latency.
//! Run: `cargo bench -p silt-benches --bench segment`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use silt_benches::CorpusGenerator;
use silt_storage::index::Term;
use silt_storage::schema::batch_from_records;
use silt_storage::segment::{SegmentLabels, SegmentReader, SegmentWriter, SegmentWriterOptions};

const ROWS: usize = 200_000;

fn bench(c: &mut Criterion) {
    let records: Vec<_> = CorpusGenerator::new(7, ROWS as u64, 3600).collect();
    let needle_trace = records[ROWS / 2].trace_id.clone().unwrap();
    let batch = batch_from_records(&records, 0, 0);
    let dir = tempfile::tempdir().unwrap();

    let mut group = c.benchmark_group("segment");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("write_200k_rows_with_index", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| {
                let path = dir.path().join("bench.parquet");
                let mut writer = SegmentWriter::new(
                    &path,
                    SegmentLabels::default(),
                    SegmentWriterOptions::default(),
                );
                writer.push(batch).unwrap();
                black_box(writer.finish().unwrap());
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let path = dir.path().join("lookup.parquet");
    let mut writer = SegmentWriter::new(
        &path,
        SegmentLabels::default(),
        SegmentWriterOptions::default(),
    );
    writer.push(batch).unwrap();
    writer.finish().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let reader = rt.block_on(SegmentReader::open_local(&path)).unwrap();
    let mut group = c.benchmark_group("lookup");
    for (name, term) in [
        ("trace_id", Term::keyword("trace_id", &needle_trace)),
        ("common_token", Term::message_token("order")),
        ("absent_token", Term::message_token("xyzzy")),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(reader.lookup(&term)).unwrap()))
        });
    }
    group.bench_function("open_segment", |b| {
        b.iter(|| black_box(rt.block_on(SegmentReader::open_local(&path)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
