//! Silt's SQL functions: `match(column, 'text')` (token match, index-backed) and the
//! `search('query')` marker that the analyzer rule rewrites before planning.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::text_match::{MatchPattern, MatchScratch};

pub const MATCH: &str = "match";
pub const SEARCH: &str = "search";

/// `match(text, pattern) → boolean`: the pattern's tokens occur in `text` adjacent and in
/// order, case-insensitively (see [`MatchPattern`]). NULL text does not match.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MatchUdf {
    signature: Signature,
}

impl Default for MatchUdf {
    fn default() -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8],
                Volatility::Immutable,
            ),
        }
    }
}

impl MatchUdf {
    fn pattern(arg: &ColumnarValue) -> Result<MatchPattern> {
        match arg {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(p))
                | ScalarValue::LargeUtf8(Some(p))
                | ScalarValue::Utf8View(Some(p)),
            ) => Ok(MatchPattern::parse(p)),
            _ => exec_err!("match(column, pattern): the pattern must be a string literal"),
        }
    }
}

impl ScalarUDFImpl for MatchUdf {
    fn name(&self) -> &str {
        MATCH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let pattern = Self::pattern(&args.args[1])?;
        let mut scratch = MatchScratch::default();
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let out = match s {
                    ScalarValue::Utf8(Some(t)) => Some(pattern.matches(t, &mut scratch)),
                    _ => None,
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(out)))
            }
            ColumnarValue::Array(array) => {
                let text = array.as_string::<i32>();
                let out: BooleanArray = text
                    .iter()
                    .map(|t| t.map(|t| pattern.matches(t, &mut scratch)))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }
        }
    }
}

/// `search('query')`: only valid in a WHERE clause over `logs`, where the analyzer rule
/// replaces it; reaching execution means it was used somewhere the rule cannot rewrite.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SearchUdf {
    signature: Signature,
}

impl Default for SearchUdf {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SearchUdf {
    fn name(&self) -> &str {
        SEARCH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        plan_err!("search('…') can only be used in the WHERE clause of a query over logs")
    }
}

pub fn match_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MatchUdf::default()))
}

pub fn search_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(SearchUdf::default()))
}
