//! Chooses the time partitions a flush writes: an hour with enough rows gets its own segment;
//! sparse hours are merged into their day, sparse days into their month.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use chrono::{DateTime, Datelike, Timelike};

use crate::memtable::{FrozenHour, HOUR_NS};

/// One segment to write.
pub struct PlannedSegment {
    pub stream: String,
    /// `2026-11-21T10` (hour), `2026-11-21` (day) or `2026-11` (month).
    pub partition: String,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
}

fn hour_start(hour: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp_nanos(hour.saturating_mul(HOUR_NS))
}

pub fn hour_name(hour: i64) -> String {
    let t = hour_start(hour);
    format!(
        "{:04}-{:02}-{:02}T{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

fn day_name(hour: i64) -> String {
    let t = hour_start(hour);
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

fn month_name(hour: i64) -> String {
    let t = hour_start(hour);
    format!("{:04}-{:02}", t.year(), t.month())
}

/// Groups the memtable's hours into segments; `min_rows` is the size below which an hour
/// (then a day) is merged into the next coarser partition.
pub fn plan(hours: &BTreeMap<(String, i64), FrozenHour>, min_rows: usize) -> Vec<PlannedSegment> {
    let mut by_stream: BTreeMap<&str, Vec<(i64, &FrozenHour)>> = BTreeMap::new();
    for ((stream, hour), buffer) in hours {
        by_stream.entry(stream).or_default().push((*hour, buffer));
    }
    let mut out = Vec::new();
    for (stream, hours) in by_stream {
        let mut sparse_hours = Vec::new();
        for (hour, buffer) in hours {
            if buffer.rows >= min_rows {
                out.push(segment(stream, hour_name(hour), vec![buffer]));
            } else {
                sparse_hours.push((hour, buffer));
            }
        }
        let mut days: BTreeMap<String, Vec<(i64, &FrozenHour)>> = BTreeMap::new();
        for (hour, buffer) in sparse_hours {
            days.entry(day_name(hour)).or_default().push((hour, buffer));
        }
        let mut months: BTreeMap<String, Vec<&FrozenHour>> = BTreeMap::new();
        for (day, hours) in days {
            let rows: usize = hours.iter().map(|(_, b)| b.rows).sum();
            if rows >= min_rows {
                out.push(segment(
                    stream,
                    day,
                    hours.into_iter().map(|(_, b)| b).collect(),
                ));
            } else {
                for (hour, buffer) in hours {
                    months.entry(month_name(hour)).or_default().push(buffer);
                }
            }
        }
        for (month, buffers) in months {
            out.push(segment(stream, month, buffers));
        }
    }
    out
}

fn segment(stream: &str, partition: String, buffers: Vec<&FrozenHour>) -> PlannedSegment {
    let rows = buffers.iter().map(|b| b.rows).sum();
    let batches = buffers
        .iter()
        .flat_map(|b| b.batches.iter().cloned())
        .collect();
    PlannedSegment {
        stream: stream.to_string(),
        partition,
        batches,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::Memtable;
    use silt_storage::record::LogRecord;

    fn memtable(rows_per_hour: &[(i64, usize)]) -> Memtable {
        let mut m = Memtable::default();
        let mut seq = 0;
        for &(hour, n) in rows_per_hour {
            let records: Vec<_> = (0..n)
                .map(|_| LogRecord {
                    timestamp: Some(hour * HOUR_NS + 5),
                    ..Default::default()
                })
                .collect();
            m.insert("s", &records, seq, 0);
            seq += n as u64;
        }
        m
    }

    #[test]
    fn dense_hours_stay_sparse_hours_merge() {
        let h = 498_672; // 2026-11-21T00
        let m = memtable(&[
            (h, 50),
            (h + 1, 3),
            (h + 2, 4),
            (h + 30, 2),
            (h + 24 * 40, 1),
        ]);
        let plan = plan(&m.freeze().unwrap().hours, 10);
        let names: Vec<_> = plan
            .iter()
            .map(|p| (p.partition.as_str(), p.rows))
            .collect();
        assert_eq!(
            names,
            [("2026-11-21T00", 50), ("2026-11", 9), ("2026-12", 1)]
        );
    }

    #[test]
    fn a_year_of_sparse_lines_makes_a_dozen_segments() {
        let h = 498_672; // 2026-11-21T00
        let hours: Vec<(i64, usize)> = (0..24 * 365).step_by(3).map(|i| (h + i, 2)).collect();
        let plan = plan(&memtable(&hours).freeze().unwrap().hours, 1000);
        assert!(plan.len() <= 13, "{} segments", plan.len());
        assert_eq!(plan.iter().map(|p| p.rows).sum::<usize>(), hours.len() * 2);
    }
}
