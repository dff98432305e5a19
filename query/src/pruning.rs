//! What the term index and the timestamp statistics can rule out: filter expressions turned
//! into an [`IndexPredicate`] and a [`TimeRange`], evaluated per segment into posting blocks.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use roaring::RoaringBitmap;
use silt_storage::StorageError;
use silt_storage::index::{MESSAGE_FIELD, Term};
use silt_storage::schema::{KEYWORD_COLUMNS, MESSAGE, TIMESTAMP};
use silt_storage::segment::SegmentReader;
use silt_storage::tokenizer::{self, normalize_keyword};

use crate::text_match::{MatchPattern, TokenPattern, glob_may_match_indexed};
use crate::udf::MATCH;

/// A condition on posting blocks that every matching row's block satisfies. `All` rules
/// nothing out; the scan always re-applies the real filter.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexPredicate {
    All,
    Term(Term),
    /// Any term of the field starting with the value bytes.
    Prefix(Term),
    /// Any term of `field` matching the glob.
    Glob {
        field: String,
        glob: String,
    },
    And(Vec<IndexPredicate>),
    Or(Vec<IndexPredicate>),
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s),
        Expr::Literal(ScalarValue::Dictionary(_, value), _) => match value.as_ref() {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(s),
            _ => None,
        },
        Expr::Cast(c) => string_literal(&c.expr),
        _ => None,
    }
}

/// The index field an expression reads: a keyword column, or `attributes.<key>`.
fn keyword_field(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) if KEYWORD_COLUMNS.contains(&c.name.as_str()) => Some(c.name.clone()),
        Expr::ScalarFunction(f) if f.name() == "get_field" && f.args.len() == 2 => {
            match (&f.args[0], string_literal(&f.args[1])) {
                (Expr::Column(c), Some(key)) if c.name == "attributes" => {
                    Some(format!("attributes.{key}"))
                }
                _ => None,
            }
        }
        Expr::Cast(c) => keyword_field(&c.expr),
        _ => None,
    }
}

fn is_message(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == MESSAGE)
}

fn keyword_term(field: &str, value: &str) -> Term {
    Term::from_parts(field, &normalize_keyword(value))
}

fn and(parts: Vec<IndexPredicate>) -> IndexPredicate {
    let mut parts: Vec<_> = parts
        .into_iter()
        .filter(|p| *p != IndexPredicate::All)
        .collect();
    match parts.len() {
        0 => IndexPredicate::All,
        1 => parts.pop().expect("one"),
        _ => IndexPredicate::And(parts),
    }
}

fn or(parts: Vec<IndexPredicate>) -> IndexPredicate {
    if parts.is_empty() || parts.contains(&IndexPredicate::All) {
        return IndexPredicate::All;
    }
    IndexPredicate::Or(parts)
}

/// The index condition of a message token pattern: every token must be in the row's block.
pub fn match_predicate(pattern: &MatchPattern) -> IndexPredicate {
    and(pattern
        .tokens
        .iter()
        .map(|t| match t {
            TokenPattern::Exact(t) => IndexPredicate::Term(Term::from_parts(
                MESSAGE_FIELD,
                tokenizer::cut(t.as_bytes()),
            )),
            TokenPattern::Prefix(p) => IndexPredicate::Prefix(Term::from_parts(
                MESSAGE_FIELD,
                tokenizer::cut(p.as_bytes()),
            )),
            TokenPattern::Glob(g) if g.chars().all(|c| c == '*' || c == '?') => IndexPredicate::All,
            TokenPattern::Glob(g) => IndexPredicate::Glob {
                field: MESSAGE_FIELD.to_string(),
                glob: g.clone(),
            },
        })
        .collect())
}

impl IndexPredicate {
    /// What the index can check of `expr` (a filter that must be true for a row to match).
    pub fn from_expr(expr: &Expr) -> Self {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => and(vec![Self::from_expr(left), Self::from_expr(right)]),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => or(vec![Self::from_expr(left), Self::from_expr(right)]),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                let (column, value) = match (string_literal(left), string_literal(right)) {
                    (None, Some(v)) => (left.as_ref(), v),
                    (Some(v), None) => (right.as_ref(), v),
                    _ => return IndexPredicate::All,
                };
                if let Some(field) = keyword_field(column) {
                    IndexPredicate::Term(keyword_term(&field, value))
                } else if is_message(column) {
                    // Every token of an equal message is among the row's tokens.
                    and(silt_storage::tokenizer::tokens(value)
                        .iter()
                        .map(|t| {
                            IndexPredicate::Term(Term::from_parts(MESSAGE_FIELD, t.as_bytes()))
                        })
                        .collect())
                } else {
                    IndexPredicate::All
                }
            }
            Expr::InList(list) if !list.negated => match keyword_field(&list.expr) {
                Some(field) => or(list
                    .list
                    .iter()
                    .map(|v| {
                        string_literal(v).map_or(IndexPredicate::All, |v| {
                            IndexPredicate::Term(keyword_term(&field, v))
                        })
                    })
                    .collect()),
                None => IndexPredicate::All,
            },
            Expr::Like(like)
                if !like.negated && !like.case_insensitive && like.escape_char.is_none() =>
            {
                let (Some(field), Some(pattern)) =
                    (keyword_field(&like.expr), string_literal(&like.pattern))
                else {
                    return IndexPredicate::All;
                };
                // Only a plain prefix: `abc%` with no other wildcard or escape.
                match pattern.strip_suffix('%') {
                    Some(prefix) if !prefix.contains(['%', '_', '\\']) => {
                        IndexPredicate::Prefix(Term::from_parts(&field, &normalize_keyword(prefix)))
                    }
                    _ => IndexPredicate::All,
                }
            }
            Expr::ScalarFunction(f)
                if f.name() == MATCH && f.args.len() == 2 && is_message(&f.args[0]) =>
            {
                match string_literal(&f.args[1]) {
                    Some(pattern) => match_predicate(&MatchPattern::parse(pattern)),
                    None => IndexPredicate::All,
                }
            }
            Expr::Alias(a) => Self::from_expr(&a.expr),
            _ => IndexPredicate::All,
        }
    }

    /// The conjunction of several filters' conditions.
    pub fn from_filters(filters: &[Expr]) -> Self {
        and(filters.iter().map(Self::from_expr).collect())
    }

    pub fn is_all(&self) -> bool {
        *self == IndexPredicate::All
    }

    /// Candidate posting blocks of `reader`'s segment; `None` means every block.
    pub async fn blocks(
        &self,
        reader: &SegmentReader,
    ) -> Result<Option<RoaringBitmap>, StorageError> {
        Box::pin(async move {
            Ok(match self {
                IndexPredicate::All => None,
                IndexPredicate::Term(term) => Some(reader.lookup(term).await?),
                IndexPredicate::Prefix(term) => Some(reader.lookup_prefix(term).await?),
                IndexPredicate::Glob { field, glob } => Some(
                    reader
                        .lookup_matching(field, |v| glob_may_match_indexed(glob, v))
                        .await?,
                ),
                IndexPredicate::And(parts) => {
                    let mut acc: Option<RoaringBitmap> = None;
                    for p in parts {
                        if let Some(b) = p.blocks(reader).await? {
                            let next = match acc {
                                Some(a) => a & b,
                                None => b,
                            };
                            if next.is_empty() {
                                return Ok(Some(next));
                            }
                            acc = Some(next);
                        }
                    }
                    acc
                }
                IndexPredicate::Or(parts) => {
                    let mut acc = RoaringBitmap::new();
                    for p in parts {
                        match p.blocks(reader).await? {
                            Some(b) => acc |= b,
                            None => return Ok(None),
                        }
                    }
                    Some(acc)
                }
            })
        })
        .await
    }
}

/// A timestamp interval in nanoseconds, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        min: i64::MIN,
        max: i64::MAX,
    };

    /// `[from, to)` as an inclusive range; `None` ends are open.
    pub fn from_bounds(from: Option<i64>, to: Option<i64>) -> Self {
        TimeRange {
            min: from.unwrap_or(i64::MIN),
            max: to.map_or(i64::MAX, |t| t.saturating_sub(1)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        !self.is_empty() && min <= self.max && max >= self.min
    }

    fn intersect(self, other: TimeRange) -> TimeRange {
        TimeRange {
            min: self.min.max(other.min),
            max: self.max.min(other.max),
        }
    }

    /// The timestamps the conjunction of `filters` allows, from comparisons of `timestamp`
    /// with literals (anything else allows every time).
    pub fn from_filters(filters: &[Expr]) -> Self {
        filters
            .iter()
            .fold(TimeRange::ALL, |acc, f| acc.intersect(Self::from_expr(f)))
    }

    fn from_expr(expr: &Expr) -> Self {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => Self::from_expr(left).intersect(Self::from_expr(right)),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, value) = match (
                    is_timestamp(left),
                    timestamp_literal(right),
                    is_timestamp(right),
                    timestamp_literal(left),
                ) {
                    (true, Some(v), _, _) => (*op, v),
                    (_, _, true, Some(v)) => match op.swap() {
                        Some(op) => (op, v),
                        None => return TimeRange::ALL,
                    },
                    _ => return TimeRange::ALL,
                };
                match op {
                    Operator::Eq => TimeRange {
                        min: value,
                        max: value,
                    },
                    Operator::Gt => TimeRange {
                        min: value.saturating_add(1),
                        max: i64::MAX,
                    },
                    Operator::GtEq => TimeRange {
                        min: value,
                        max: i64::MAX,
                    },
                    Operator::Lt => TimeRange {
                        min: i64::MIN,
                        max: value.saturating_sub(1),
                    },
                    Operator::LtEq => TimeRange {
                        min: i64::MIN,
                        max: value,
                    },
                    _ => TimeRange::ALL,
                }
            }
            Expr::Between(b) if !b.negated && is_timestamp(&b.expr) => {
                match (timestamp_literal(&b.low), timestamp_literal(&b.high)) {
                    (Some(low), Some(high)) => TimeRange {
                        min: low,
                        max: high,
                    },
                    _ => TimeRange::ALL,
                }
            }
            _ => TimeRange::ALL,
        }
    }
}

fn is_timestamp(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == TIMESTAMP)
}

fn timestamp_literal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
            ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
            _ => None,
        },
        _ => None,
    }
}

/// Posting blocks of `reader`'s segment that may hold rows in `range`, from the timestamp
/// column's page statistics; `None` when every block may.
pub fn time_blocks(reader: &SegmentReader, range: TimeRange) -> Option<RoaringBitmap> {
    if range == TimeRange::ALL {
        return None;
    }
    let metadata = reader.metadata();
    let (column_index, offset_index) = (metadata.column_index()?, metadata.offset_index()?);
    let block_rows = u64::from(reader.directory().block_rows);
    let mut out = RoaringBitmap::new();
    let mut rg_first = 0u64;
    for (rg, meta) in metadata.row_groups().iter().enumerate() {
        let rg_rows = meta.num_rows() as u64;
        let ColumnIndexMetaData::INT64(index) = column_index.get(rg)?.first()? else {
            return None;
        };
        let pages = offset_index.get(rg)?.first()?.page_locations();
        for (i, page) in pages.iter().enumerate() {
            let (Some(&min), Some(&max)) = (index.min_value(i), index.max_value(i)) else {
                return None;
            };
            if !range.overlaps(min, max) {
                continue;
            }
            let start = rg_first + page.first_row_index as u64;
            let end = pages
                .get(i + 1)
                .map_or(rg_first + rg_rows, |p| rg_first + p.first_row_index as u64);
            if end > start {
                out.insert_range((start / block_rows) as u32..=((end - 1) / block_rows) as u32);
            }
        }
        rg_first += rg_rows;
    }
    Some(out)
}

/// Candidate posting blocks of `reader`'s segment for a scan: those the index allows, within
/// the time range; `None` means every block.
pub async fn candidate_blocks(
    reader: &SegmentReader,
    index: &IndexPredicate,
    time: TimeRange,
) -> Result<Option<RoaringBitmap>, StorageError> {
    let blocks = index.blocks(reader).await?;
    Ok(match (blocks, time_blocks(reader, time)) {
        (Some(b), Some(t)) => Some(b & t),
        (b, None) => b,
        (None, t) => t,
    })
}
