//! Arrow results as users read them: JSON values (timestamps RFC 3339, numbers as numbers,
//! attributes as objects), CSV, log lines and pretty tables. Shared by the CLI and HTTP.

use std::io::Write;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Value};

fn timestamp_ns(unit: &TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000_000),
        TimeUnit::Microsecond => v.saturating_mul(1_000),
        TimeUnit::Nanosecond => v,
    }
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The JSON value of one cell.
pub fn json_value(array: &ArrayRef, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => number(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => number(array.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(unit, _) => {
            let v = datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Int64)
                .ok()
                .map(|a| a.as_primitive::<Int64Type>().value(0));
            v.map_or(Value::Null, |v| {
                Value::String(crate::cli::format::timestamp(timestamp_ns(unit, v)))
            })
        }
        DataType::Map(_, _) => {
            let map = array.as_map();
            let entries = map.value(row);
            let keys = entries.column(0).clone();
            let values = entries.column(1).clone();
            let mut out = Map::new();
            for i in 0..entries.len() {
                let key = match json_value(&keys, i) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, json_value(&values, i));
            }
            Value::Object(out)
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let list = if let DataType::List(_) = array.data_type() {
                array.as_list::<i32>().value(row)
            } else {
                array.as_list::<i64>().value(row)
            };
            Value::Array((0..list.len()).map(|i| json_value(&list, i)).collect())
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), json_value(c, row)))
                    .collect(),
            )
        }
        _ => {
            let options = FormatOptions::default();
            ArrayFormatter::try_new(array.as_ref(), &options)
                .map_or(Value::Null, |f| Value::String(f.value(row).to_string()))
        }
    }
}

/// One row as a JSON object; null columns (and `pattern_id`) are left out when `skip_nulls`.
pub fn row_object(batch: &RecordBatch, row: usize, skip_nulls: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let value = json_value(column, row);
        if skip_nulls && (value.is_null() || field.name() == "pattern_id") {
            continue;
        }
        out.insert(field.name().clone(), value);
    }
    out
}

/// One row as a JSON array in column order.
pub fn row_array(batch: &RecordBatch, row: usize) -> Vec<Value> {
    batch.columns().iter().map(|c| json_value(c, row)).collect()
}

/// The `{"name", "type"}` list of a result's columns.
pub fn columns_json(schema: &datafusion::arrow::datatypes::Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect(),
    )
}

fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// CSV with a header row; timestamps RFC 3339, maps and lists as JSON text.
pub fn write_csv(
    out: &mut impl Write,
    batches: &[RecordBatch],
    schema: &datafusion::arrow::datatypes::Schema,
) -> std::io::Result<()> {
    write_csv_header(out, schema)?;
    for batch in batches {
        write_csv_rows(out, batch)?;
    }
    Ok(())
}

/// The header row of [`write_csv`].
pub fn write_csv_header(
    out: &mut impl Write,
    schema: &datafusion::arrow::datatypes::Schema,
) -> std::io::Result<()> {
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| csv_field(&Value::String(f.name().clone())))
        .collect();
    writeln!(out, "{}", header.join(","))
}

/// The rows of one batch, as [`write_csv`] writes them.
pub fn write_csv_rows(out: &mut impl Write, batch: &RecordBatch) -> std::io::Result<()> {
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = row_array(batch, row).iter().map(csv_field).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// A pretty table of the batches.
pub fn table(batches: &[RecordBatch]) -> String {
    datafusion::arrow::util::pretty::pretty_format_batches(batches)
        .map_or_else(|e| format!("cannot format: {e}"), |t| t.to_string())
}

/// Log lines: `timestamp level service [stream] message attributes`, as a terminal shows them.
pub fn log_lines(out: &mut impl Write, hits: &RecordBatch) -> std::io::Result<()> {
    for row in 0..hits.num_rows() {
        writeln!(out, "{}", log_line(&row_object(hits, row, true)))?;
    }
    Ok(())
}

/// `timestamp level service message  {attributes}` of one hit (as a JSON object).
pub fn log_line(obj: &Map<String, Value>) -> String {
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut line = format!("{} {:<5}", text("timestamp"), text("level"));
    let service = text("service");
    if !service.is_empty() {
        line.push(' ');
        line.push_str(&service);
    }
    line.push(' ');
    line.push_str(&text("message"));
    if let Some(Value::Object(attrs)) = obj.get("attributes")
        && !attrs.is_empty()
    {
        line.push_str("  ");
        line.push_str(&Value::Object(attrs.clone()).to_string());
    }
    line
}
