#!/usr/bin/env python3
"""ClickHouse reference numbers for Silt's query benchmark (benches/src/bin/query-bench.rs).

Loads an NDJSON corpus (the shape written by `to_ndjson` in benches/src/lib.rs) into a
persistent embedded ClickHouse (chDB) database, in a MergeTree table shaped like the
OpenTelemetry collector's ClickHouse exporter `otel_logs` table, then runs the same six queries
as query-bench: one cold-ish run (ClickHouse caches and, when permitted, the OS page cache
dropped) and 9 warm runs each, timing only the query execution.

Setup (once):

    python3 -m venv target/chdb-env
    target/chdb-env/bin/pip install -r benches/clickhouse/requirements.txt

Run on the corpus query-bench generated (it deletes KEEP_DIR/corpus.ndjson after ingesting,
so keep a copy), with the needles and trace id it planted (the trace id is in
KEEP_DIR/trace_id; the corpus ends at 2026-11-21T02:00:00Z = 1795226400000000000 ns):

    target/chdb-env/bin/python benches/clickhouse/query_compare.py \\
        --corpus corpus.ndjson --work target/chdb-work \\
        --needle-one xqzneedleone --needle-21 xqzneedletwentyone \\
        --trace-id "$(cat KEEP_DIR/trace_id)" --end-ns 1795226400000000000

The database in --work is reused when it holds the same corpus (path, size and mtime) with the
same body index; --reload forces a fresh load. The Body index is ClickHouse's `text` (inverted)
index when the engine supports it, else the exporter's `tokenbf_v1` bloom filter;
--body-index chooses explicitly.

Output: a human-readable table on stderr and one JSON object on stdout:
    {"engine": "chDB 4.4.0 (ClickHouse 26.9.2.1)", "body_index": ..., "rows_loaded": ...,
     "queries": {"needle, 1 hit": {"warm_ms": .., "cold_ms": .., "rows": .., "matches": ..,
                                   "warm_read_bytes": ..}, ...}}
With --load-only it loads (a fresh load with --reload), prints the load's figures instead
(`insert_s`: the INSERT; `merge_s`: OPTIMIZE TABLE FINAL after it; `disk_bytes`: the active parts
after the merge) and runs no query; `ingest-bench --clickhouse` runs it so.
`rows` is the number of rows the query returned (at most 100 for searches; buckets for the
aggregations); `matches` (searches only) is the number of matching rows regardless of LIMIT
(what Silt's SearchResult.total counts), from an untimed count() query; `warm_read_bytes` is
what ClickHouse reports it read from the table (uncompressed bytes of whole granules).
"""

import argparse
import json
import os
import statistics
import sys
import time

import chdb
from chdb import session as chs

DB = "silt_bench"
TABLE = f"{DB}.otel_logs"
WARM_RUNS = 9
MARKER = "silt_corpus.json"
SCHEMA_VERSION = 1

BODY_INDEXES = {
    "text": "TYPE text(tokenizer = splitByNonAlpha)",
    "tokenbf": "TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1",
}

# ClickHouse-side caches dropped before each cold run (unknown ones are skipped).
CACHES = [
    "MARK CACHE", "UNCOMPRESSED CACHE", "INDEX MARK CACHE", "INDEX UNCOMPRESSED CACHE",
    "PRIMARY INDEX CACHE", "QUERY CACHE", "QUERY CONDITION CACHE", "MMAP CACHE", "PAGE CACHE",
    "TEXT INDEX CACHES",
]

# Columns a search returns: the whole log record, like Silt's hits.
HIT_COLUMNS = "Timestamp, SeverityText, ServiceName, Host, TraceId, SpanId, Body, LogAttributes"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def sql_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table_sql(body_index):
    # The OTel exporter's otel_logs, with the columns this corpus has; `metadata` is flattened
    # into LogAttributes with dotted keys (http.method, ...), as Silt stores attributes.
    return f"""
CREATE TABLE {TABLE}
(
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Host LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body {BODY_INDEXES[body_index]}
)
ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
SETTINGS index_granularity = 8192
"""


def insert_sql(corpus):
    # Every field is read as a string (numbers and nested objects too) and converted here, so
    # lines with missing fields, numeric timestamps or extra keys still load. The timestamp is
    # RFC 3339 or an integer epoch (s, ms, us or ns, told apart by magnitude); `metadata` is
    # flattened one level deep into dotted keys, JSON strings unquoted, numbers kept as text.
    # Up to 100 malformed lines (or 0.1%) are skipped, and reported after the load.
    return f"""
INSERT INTO {TABLE}
    (Timestamp, TraceId, SpanId, SeverityText, ServiceName, Host, Body, LogAttributes)
SELECT
    if(match(timestamp, '^-?[0-9]+$'),
       fromUnixTimestamp64Nano(multiIf(
           abs(toInt64OrZero(timestamp)) >= 100000000000000000, toInt64OrZero(timestamp),
           abs(toInt64OrZero(timestamp)) >= 100000000000000, toInt64OrZero(timestamp) * 1000,
           abs(toInt64OrZero(timestamp)) >= 100000000000, toInt64OrZero(timestamp) * 1000000,
           toInt64OrZero(timestamp) * 1000000000), 'UTC'),
       parseDateTime64BestEffortOrZero(timestamp, 9, 'UTC')),
    trace_id, span_id, level, service, host, message,
    mapFromArrays(
        arrayMap(p -> p.1, flat),
        arrayMap(p -> if(startsWith(p.2, '"'), JSONExtractString(p.2), p.2), flat))
FROM
(
    SELECT *,
        arrayFlatten(arrayMap(
            kv -> if(startsWith(kv.2, '{{'),
                     arrayMap(sub -> (concat(kv.1, '.', sub.1), sub.2),
                              JSONExtractKeysAndValuesRaw(kv.2)),
                     [kv]),
            JSONExtractKeysAndValuesRaw(metadata))) AS flat
    FROM file({sql_str(corpus)}, 'JSONEachRow',
        'timestamp String, level String, service String, host String, trace_id String,
         span_id String, message String, metadata String')
)
SETTINGS input_format_json_read_numbers_as_strings = 1,
         input_format_json_read_objects_as_strings = 1,
         input_format_json_read_bools_as_strings = 1,
         input_format_skip_unknown_fields = 1,
         input_format_allow_errors_num = 100,
         input_format_allow_errors_ratio = 0.001,
         max_insert_threads = {os.cpu_count() or 1}
"""


def queries(args):
    start = args.end_ns - 3600 * 1_000_000_000
    end = args.end_ns
    # TimestampTime bounds let the primary key prune, as the OTel/Grafana queries do; the order
    # TimestampTime, Timestamp equals Timestamp order and can be read in key order.
    newest = "ORDER BY TimestampTime DESC, Timestamp DESC LIMIT 100"
    hour = (f"TimestampTime >= toDateTime({start // 1_000_000_000}, 'UTC') "
            f"AND TimestampTime <= toDateTime({-(-end // 1_000_000_000)}, 'UTC') "
            f"AND Timestamp >= fromUnixTimestamp64Nano({start}, 'UTC') "
            f"AND Timestamp <= fromUnixTimestamp64Nano({end}, 'UTC')")
    needle_one = f"hasToken(Body, {sql_str(args.needle_one)})"
    needle_21 = f"hasToken(Body, {sql_str(args.needle_21)})"
    trace = f"TraceId = {sql_str(args.trace_id)}"
    errors = (f"SeverityText = 'ERROR' AND ServiceName = 'payment-service' "
              f"AND hasToken(Body, 'timeout') AND {hour}")

    def search(where):
        return f"SELECT {HIT_COLUMNS} FROM {TABLE} WHERE {where} {newest}", where

    return [
        ("needle, 1 hit", *search(needle_one)),
        ("needle, 21 hits", *search(needle_21)),
        ("trace_id", *search(trace)),
        ("ERROR payment timeout, 1h, newest 100", *search(errors)),
        ("count per level per minute",
         f"SELECT toStartOfMinute(Timestamp) AS minute, SeverityText, count() AS n FROM {TABLE} "
         f"GROUP BY minute, SeverityText ORDER BY minute, SeverityText", None),
        ("top-10 services by ERROR count",
         f"SELECT ServiceName, count() AS n FROM {TABLE} WHERE SeverityText = 'ERROR' "
         f"GROUP BY ServiceName ORDER BY n DESC LIMIT 10", None),
    ]


def scalar(sess, sql):
    return sess.query(sql, "TSV").bytes().decode().strip()


def text_index_supported(sess):
    try:
        sess.query("CREATE TEMPORARY TABLE silt_probe (s String, INDEX i s "
                   f"{BODY_INDEXES['text']}) ENGINE = MergeTree ORDER BY tuple()")
        sess.query("DROP TEMPORARY TABLE silt_probe")
        return True
    except Exception:
        return False


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def ensure_loaded(sess, args, body_index):
    st = os.stat(args.corpus)
    want = {"schema": SCHEMA_VERSION, "corpus": os.path.realpath(args.corpus),
            "size": st.st_size, "mtime_ns": st.st_mtime_ns, "body_index": body_index}
    marker = os.path.join(args.work, MARKER)
    exists = scalar(sess, f"EXISTS TABLE {TABLE}") == "1"
    if exists and not args.reload and os.path.exists(marker):
        with open(marker) as f:
            have = json.load(f)
        if have.get("loaded") and {k: have.get(k) for k in want} == want:
            rows = int(scalar(sess, f"SELECT count() FROM {TABLE}"))
            log(f"reusing {TABLE} in {args.work}: {rows} rows (loaded in {have['load_s']:.1f} s)")
            return rows, have
    if os.path.exists(marker):
        os.remove(marker)
    sess.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
    sess.query(f"DROP TABLE IF EXISTS {TABLE} SYNC")
    sess.query(create_table_sql(body_index))
    log(f"loading {args.corpus} ({st.st_size / 2**20:.0f} MiB) ...")
    t0 = time.perf_counter()
    sess.query(insert_sql(want["corpus"]))
    t1 = time.perf_counter()
    # Merge to the steady state background merges reach; indexes are rebuilt on the merged part.
    sess.query(f"OPTIMIZE TABLE {TABLE} FINAL")
    t2 = time.perf_counter()
    rows = int(scalar(sess, f"SELECT count() FROM {TABLE}"))
    lines = count_lines(args.corpus)
    parts = scalar(sess, f"SELECT count() FROM system.parts WHERE database = '{DB}' "
                         f"AND table = 'otel_logs' AND active")
    disk = int(scalar(sess, f"SELECT sum(bytes_on_disk) FROM system.parts WHERE "
                            f"database = '{DB}' AND table = 'otel_logs' AND active"))
    log(f"loaded {rows} rows in {t2 - t0:.1f} s (insert {t1 - t0:.1f} s, merge {t2 - t1:.1f} s); "
        f"{parts} part(s), {disk / 2**20:.1f} MiB on disk")
    if rows != lines:
        log(f"warning: {lines} lines in the corpus but {rows} rows loaded "
            f"({lines - rows} malformed or blank lines skipped)")
    load = {"load_s": t2 - t0, "insert_s": t1 - t0, "merge_s": t2 - t1, "disk_bytes": disk,
            "parts": int(parts)}
    with open(marker, "w") as f:
        json.dump({**want, "loaded": True, "rows": rows, **load}, f)
    return rows, load


def drop_caches(sess):
    for cache in CACHES:
        try:
            sess.query(f"SYSTEM DROP {cache}")
        except Exception:
            pass
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def run(sess, sql):
    started = time.perf_counter()
    result = sess.query(sql, "JSONCompact")
    ms = (time.perf_counter() - started) * 1000
    # storage_bytes_read: uncompressed bytes of the columns read from the table.
    return ms, json.loads(result.bytes())["rows"], result.storage_bytes_read()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="NDJSON corpus (to_ndjson shape)")
    p.add_argument("--work", required=True, help="directory for the persistent chDB database")
    p.add_argument("--needle-one", default="xqzneedleone")
    p.add_argument("--needle-21", default="xqzneedletwentyone")
    p.add_argument("--trace-id", help="the planted trace id (32 hex digits)")
    p.add_argument("--end-ns", type=int,
                   help="end of the corpus time span in ns; the 1h query covers [end-3600s, end]")
    p.add_argument("--body-index", choices=["auto", "text", "tokenbf"], default="auto",
                   help="Body index type: ClickHouse's text index or tokenbf_v1 (default: "
                        "text when supported)")
    p.add_argument("--reload", action="store_true", help="reload even if the table is loaded")
    p.add_argument("--only", default="", help="run only the queries whose name contains this")
    p.add_argument("--load-only", action="store_true",
                   help="load (with --reload: time a fresh load) and print the load's figures "
                        "as JSON, without running the queries (ingest-bench --clickhouse)")
    args = p.parse_args()
    if not args.load_only and (args.trace_id is None or args.end_ns is None):
        p.error("--trace-id and --end-ns are required unless --load-only")

    os.makedirs(args.work, exist_ok=True)
    sess = chs.Session(os.path.join(args.work, "chdb"))
    ch_version = scalar(sess, "SELECT version()")
    engine = f"chDB {chdb.__version__} (ClickHouse {ch_version})"
    body_index = args.body_index
    if body_index == "auto":
        body_index = "text" if text_index_supported(sess) else "tokenbf"
    index_desc = f"{body_index}: {BODY_INDEXES[body_index]}"
    log(f"{engine}; Body index {index_desc}")

    rows_loaded, load = ensure_loaded(sess, args, body_index)
    if args.load_only:
        sess.close()
        print(json.dumps({"engine": engine, "body_index": index_desc, "rows_loaded": rows_loaded,
                          **{k: load.get(k) for k in
                             ("load_s", "insert_s", "merge_s", "disk_bytes", "parts")}}))
        return

    results = {}
    page_cache_dropped = True
    log(f"{'query':<40} {'warm ms':>9} {'cold ms':>9} {'warm read':>11} {'rows':>6} {'matches':>8}")
    for name, sql, where in queries(args):
        if args.only not in name:
            continue
        page_cache_dropped &= drop_caches(sess)
        cold_ms, _, _ = run(sess, sql)
        warm = sorted((run(sess, sql) for _ in range(WARM_RUNS)), key=lambda r: r[0])
        warm_ms = statistics.median(r[0] for r in warm)
        _, rows, read = warm[WARM_RUNS // 2]
        results[name] = {"warm_ms": round(warm_ms, 3), "cold_ms": round(cold_ms, 3),
                         "rows": rows, "warm_read_bytes": read}
        matches = "-"
        if where:  # a search: also count all its matches, untimed
            matches = int(scalar(sess, f"SELECT count() FROM {TABLE} WHERE {where}"))
            results[name]["matches"] = matches
        log(f"{name:<40} {warm_ms:>9.2f} {cold_ms:>9.2f} {read / 2**20:>7.1f} MiB "
            f"{rows:>6} {matches:>8}")
    if not page_cache_dropped:
        log("(cold: ClickHouse caches dropped, but not the OS page cache: no permission)")
    sess.close()

    print(json.dumps({"engine": engine, "body_index": index_desc, "rows_loaded": rows_loaded,
                      "load_s": round(load["load_s"], 2), "queries": results}))


if __name__ == "__main__":
    main()
