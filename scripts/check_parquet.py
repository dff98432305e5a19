"""Proves Silt segments are plain Parquet: DuckDB and pyarrow read each one with the rows and
columns Silt expects. Usage: check_parquet.py EXPECTED.json

EXPECTED.json lists segments with their expected row count, time range, sum of _seq and a
sample of (_seq, message, service, attributes) rows, written by the Rust test that calls this.
A segment stores its frequent attribute keys as columns `attributes.<key>` after the log
schema's (docs/format.md, "Shredded attributes"); an attribute is in its column or in the map.
"""
import json
import sys

import duckdb
import pyarrow.parquet as pq

COLUMNS = ["timestamp", "observed_timestamp", "level", "service", "host", "trace_id",
           "span_id", "message", "attributes", "_seq", "pattern_id"]


def main(path):
    with open(path) as f:
        expected = json.load(f)
    con = duckdb.connect()
    for seg in expected["segments"]:
        file = seg["path"]
        # DuckDB
        rows, min_ts, max_ts, seq_sum = con.execute(
            "SELECT count(*), epoch_ns(min(timestamp)), epoch_ns(max(timestamp)), sum(_seq)::HUGEINT "
            "FROM read_parquet(?)", [file]).fetchone()
        assert rows == seg["rows"], (file, rows, seg["rows"])
        assert min_ts == seg["min_timestamp"], (file, min_ts, seg["min_timestamp"])
        assert max_ts == seg["max_timestamp"], (file, max_ts, seg["max_timestamp"])
        assert int(seq_sum) == seg["seq_sum"], (file, seq_sum, seg["seq_sum"])
        names = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [file]).fetchall()]
        assert names[:len(COLUMNS)] == COLUMNS, names
        shredded = names[len(COLUMNS):]
        assert all(n.startswith("attributes.") for n in shredded), names
        assert "attributes.user.id" in shredded, names
        user_id = 'coalesce("attributes.user.id", map_extract(attributes, \'user.id\')[1])'
        in_map = con.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE map_extract(attributes, 'user.id')[1] IS NOT NULL",
            [file]).fetchone()[0]
        assert in_map == 0, f"{in_map} rows keep the shredded key user.id in the map"
        # Rows are clustered by service (nulls first), then level (none, TRACE … FATAL, other
        # words), each cluster in (timestamp, _seq) order: docs/format.md, "Rows".
        misplaced = con.execute(
            "SELECT count(*) FROM (SELECT file_row_number, row_number() OVER (ORDER BY "
            "service NULLS FIRST, "
            "CASE level WHEN 'TRACE' THEN 1 WHEN 'DEBUG' THEN 2 WHEN 'INFO' THEN 3 WHEN 'WARN' THEN 4 "
            "WHEN 'ERROR' THEN 5 WHEN 'FATAL' THEN 6 ELSE (CASE WHEN level IS NULL THEN 0 ELSE 255 END) END, "
            "level, timestamp, _seq) - 1 AS position "
            "FROM read_parquet(?, file_row_number = true)) WHERE position != file_row_number",
            [file]).fetchone()[0]
        assert misplaced == 0, f"{misplaced} rows out of (service, level, timestamp, _seq) order"
        for sample in seg["sample"]:
            got = con.execute(
                f"SELECT message, service, {user_id} FROM read_parquet(?) WHERE _seq = ?",
                [file, sample["seq"]]).fetchall()
            assert got == [(sample["message"], sample["service"], sample["user_id"])], (got, sample)
        # pyarrow
        table = pq.read_table(file)
        footer = pq.ParquetFile(file).metadata.metadata
        assert footer[b"silt.row_order"] == b"service,level,timestamp,_seq", footer
        assert table.num_rows == seg["rows"]
        assert table.column_names == names, table.column_names
        by_seq = {s: i for i, s in enumerate(table.column("_seq").to_pylist())}
        messages = table.column("message")
        attributes = table.column("attributes")
        user_ids = table.column("attributes.user.id")
        for sample in seg["sample"]:
            i = by_seq[sample["seq"]]
            assert messages[i].as_py() == sample["message"]
            attrs = dict(attributes[i].as_py())
            attrs.setdefault("user.id", user_ids[i].as_py())
            assert attrs.get("user.id") == sample["user_id"], attrs
        print(f"ok {file}: {rows} rows (duckdb, pyarrow)")


if __name__ == "__main__":
    main(sys.argv[1])
