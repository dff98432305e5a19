//! The search language: its parser ([`parse`]) and its meaning as a DataFusion expression
//! over the `logs` table ([`to_expr`]). One language for the CLI, HTTP and SQL `search()`.

pub mod parse;

use datafusion::logical_expr::Expr;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;
use silt_storage::record::{LEVELS, normalize_level};
use silt_storage::schema::{HOST, LEVEL, MESSAGE, SERVICE, SPAN_ID, TRACE_ID};

pub use parse::{CompareOp, Field, Query, SearchError, Value, parse};

use crate::udf::match_udf;

/// The virtual column naming each row's stream.
pub const STREAM: &str = "stream";

/// Parses `text` and returns the filter expression it means.
pub fn compile(text: &str) -> Result<Expr, SearchError> {
    Ok(to_expr(&parse(text)?))
}

/// The filter a parsed query means. Words and phrases match message tokens in order
/// (`match`); keyword fields compare exactly; `level` understands aliases and `>=`.
pub fn to_expr(query: &Query) -> Expr {
    match query {
        Query::All => lit(true),
        Query::And(parts) => parts
            .iter()
            .map(to_expr)
            .reduce(Expr::and)
            .unwrap_or(lit(true)),
        Query::Or(parts) => parts
            .iter()
            .map(to_expr)
            .reduce(Expr::or)
            .unwrap_or(lit(false)),
        Query::Not(inner) => {
            // NULL fields do not match, so NOT of them does: `-service:x` keeps rows without a service.
            let inner = to_expr(inner);
            !inner.is_true()
        }
        Query::Match { field, value } => match_expr(field, value),
    }
}

/// The column (or attribute lookup) a field names.
pub fn column_of(field: &Field) -> Expr {
    match field {
        Field::Message => col(MESSAGE),
        Field::Level => col(LEVEL),
        Field::Service => col(SERVICE),
        Field::Host => col(HOST),
        Field::TraceId => col(TRACE_ID),
        Field::SpanId => col(SPAN_ID),
        Field::Stream => col(STREAM),
        Field::Attribute(key) => {
            datafusion::functions::core::expr_fn::get_field(col("attributes"), key.as_str())
        }
    }
}

/// `expr` as a number; NULL where it is not one (attribute values are text).
pub fn as_number(expr: Expr) -> Expr {
    Expr::TryCast(datafusion::logical_expr::TryCast::new(
        Box::new(expr),
        datafusion::arrow::datatypes::DataType::Float64,
    ))
}

fn text_match(column: Expr, pattern: String) -> Expr {
    match_udf().call(vec![column, lit(pattern)])
}

/// `*`/`?` wildcards as a SQL LIKE pattern (escaping LIKE's own `%`, `_` and `\`).
fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 2);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn level_rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

fn match_expr(field: &Field, value: &Value) -> Expr {
    let column = column_of(field);
    match (field, value) {
        (Field::Message, Value::Word(w) | Value::Phrase(w)) => text_match(column, w.clone()),
        (Field::Message, Value::Prefix(p)) => text_match(column, format!("{p}*")),
        (Field::Message, Value::Wildcard(w)) => text_match(column, w.clone()),
        (Field::Message, Value::Exists) => lit(true),
        (_, Value::Regex(re)) => {
            datafusion::functions::regex::expr_fn::regexp_like(column, lit(re.clone()), None)
        }
        (_, Value::Exists) => column.is_not_null(),
        (Field::Level, Value::Word(w) | Value::Phrase(w)) => {
            let level = normalize_level(w).map_or_else(|| w.to_uppercase(), str::to_string);
            column.eq(lit(level))
        }
        (Field::Level, Value::Compare(op, w)) => {
            let Some(rank) = normalize_level(w).and_then(level_rank) else {
                return lit(false);
            };
            let keep: Vec<Expr> = LEVELS
                .iter()
                .enumerate()
                .filter(|(i, _)| match op {
                    CompareOp::Lt => *i < rank,
                    CompareOp::Le => *i <= rank,
                    CompareOp::Gt => *i > rank,
                    CompareOp::Ge => *i >= rank,
                })
                .map(|(_, l)| lit(*l))
                .collect();
            if keep.is_empty() {
                lit(false)
            } else {
                column.in_list(keep, false)
            }
        }
        (_, Value::Word(w) | Value::Phrase(w)) => column.eq(lit(w.clone())),
        (Field::Level, Value::Prefix(p)) => {
            column.like(lit(like_pattern(&format!("{}*", p.to_uppercase()))))
        }
        (Field::Level, Value::Wildcard(w)) => column.like(lit(like_pattern(&w.to_uppercase()))),
        (_, Value::Prefix(p)) => column.like(lit(like_pattern(&format!("{p}*")))),
        (_, Value::Wildcard(w)) => column.like(lit(like_pattern(w))),
        (_, Value::Compare(op, operand)) => {
            // Numbers compare as numbers (attribute values are text), anything else as text.
            let (left, right) = match operand.parse::<f64>() {
                Ok(n) if n.is_finite() => (as_number(column), lit(ScalarValue::Float64(Some(n)))),
                _ => (column, lit(operand.clone())),
            };
            match op {
                CompareOp::Lt => left.lt(right),
                CompareOp::Le => left.lt_eq(right),
                CompareOp::Gt => left.gt(right),
                CompareOp::Ge => left.gt_eq(right),
            }
        }
    }
}
