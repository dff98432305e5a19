//! Turns term-index postings into a `ParquetAccessPlan`, so DataFusion's Parquet scan reads only
//! the row groups and pages holding candidate rows.

use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use roaring::RoaringBitmap;
use silt_storage::segment::SegmentReader;

/// The access plan that scans exactly the rows of posting `blocks` in `reader`'s segment.
///
/// Inexact: postings name blocks of rows, not rows, so the scan must still apply the predicate.
pub fn segment_access_plan(reader: &SegmentReader, blocks: &RoaringBitmap) -> ParquetAccessPlan {
    let row_groups = reader.metadata().row_groups();
    let mut plan = ParquetAccessPlan::new_none(row_groups.len());
    for (rg, ranges) in reader.row_group_ranges(blocks) {
        let rows = row_groups[rg].num_rows() as usize;
        // `set`, not `scan_selection`: the latter intersects with the current access, and every
        // row group starts as Skip here.
        if ranges.len() == 1 && ranges[0] == (0..rows) {
            plan.scan(rg);
        } else {
            plan.set(
                rg,
                RowGroupAccess::Selection(RowSelection::from_consecutive_ranges(
                    ranges.into_iter(),
                    rows,
                )),
            );
        }
    }
    plan
}
