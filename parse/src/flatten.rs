//! Flattening one JSON object into dotted-key leaves in document order, streamed from serde_json
//! without building a DOM; repeated keys resolved last-wins.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::aliases::{Alias, alias_of};

/// Fields reserved for one line before parsing it.
const FIELDS_RESERVED: usize = 16;
/// Bytes reserved for the dotted key being built.
const KEY_RESERVED: usize = 64;

/// Above this many items, repeated keys are found with a hash map instead of pairwise compares.
const MAX_FIELDS_FOR_LINEAR_DEDUP: usize = 32;

/// Parses `text` as one JSON value; the fields of an object, or `None` when it is another value.
///
/// Nested objects become dotted keys, an empty nested object the leaf `{}`, arrays one leaf with
/// their JSON text; `null` values are dropped. A repeated key keeps its last value.
pub(super) fn flatten_json_object(text: &str) -> Result<Option<Vec<Field>>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // Reserved once: grown by doubling from empty, the fields of a typical line cost four
    // reallocations and copies (a quarter of the parser thread's time on the benchmark corpus).
    let mut fields = Vec::with_capacity(FIELDS_RESERVED);
    let is_object = TopLevel {
        fields: &mut fields,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    if !is_object {
        return Ok(None);
    }
    keep_last_of_each_key(&mut fields, |field| field.key.as_str());
    Ok(Some(fields))
}

/// A flattened leaf value.
#[derive(Debug)]
pub(super) enum JsonValue {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// JSON text kept as is: arrays and empty objects.
    Raw(String),
}

impl JsonValue {
    pub(super) fn into_text(self) -> String {
        match self {
            JsonValue::Str(s) | JsonValue::Raw(s) => s,
            JsonValue::Int(n) => n.to_string(),
            JsonValue::UInt(n) => n.to_string(),
            JsonValue::Float(f) => {
                serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string())
            }
            JsonValue::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Field {
    pub(super) key: FieldKey,
    pub(super) value: JsonValue,
}

/// A flattened key: aliases point into the alias table so that they cost no allocation, unless
/// the key is spelled in another case than the alias (`TraceId`), which is then kept as written.
#[derive(Debug)]
pub(super) enum FieldKey {
    Alias(&'static Alias, Option<String>),
    Other(String),
}

impl FieldKey {
    pub(super) fn as_str(&self) -> &str {
        match self {
            FieldKey::Alias(alias, spelled) => spelled.as_deref().unwrap_or(alias.key),
            FieldKey::Other(key) => key,
        }
    }

    pub(super) fn into_string(self) -> String {
        match self {
            FieldKey::Alias(alias, spelled) => spelled.unwrap_or_else(|| alias.key.to_owned()),
            FieldKey::Other(key) => key,
        }
    }
}

/// Keeps only the last item of each key, in the position of that last occurrence: how every
/// parser resolves a repeated field or attribute.
pub(crate) fn keep_last_of_each_key<T>(items: &mut Vec<T>, key: impl Fn(&T) -> &str) {
    let len = items.len();
    let keep: Vec<bool> = if len <= MAX_FIELDS_FOR_LINEAR_DEDUP {
        // Keys are compared pairwise by a cheap summary first: dotted keys share long prefixes
        // (`metadata.http.…`), so comparing their bytes is what cost the time.
        let mut summaries = [0u64; MAX_FIELDS_FOR_LINEAR_DEDUP];
        for (summary, item) in summaries.iter_mut().zip(items.iter()) {
            *summary = key_summary(key(item).as_bytes());
        }
        let is_repeated = |i: usize| {
            (i + 1..len).any(|j| summaries[j] == summaries[i] && key(&items[j]) == key(&items[i]))
        };
        if !(0..len).any(is_repeated) {
            return;
        }
        (0..len).map(|i| !is_repeated(i)).collect()
    } else {
        let mut last_index: HashMap<&str, usize> = HashMap::with_capacity(len);
        for (index, item) in items.iter().enumerate() {
            last_index.insert(key(item), index);
        }
        if last_index.len() == len {
            return;
        }
        items
            .iter()
            .enumerate()
            .map(|(index, item)| last_index[key(item)] == index)
            .collect()
    };
    let mut index = 0;
    items.retain(|_| {
        index += 1;
        keep[index - 1]
    });
}

/// A key's length and its first and last (up to) eight bytes, mixed: equal keys have equal
/// summaries, and keys that differ mostly differ in one of these.
fn key_summary(key: &[u8]) -> u64 {
    let word = |bytes: &[u8]| {
        let mut buf = [0u8; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(buf)
    };
    let head = word(&key[..key.len().min(8)]);
    let tail = word(&key[key.len().saturating_sub(8)..]);
    (head.rotate_left(29) ^ tail).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.len() as u64
}

/// Accepts any JSON value; flattens an object into `fields` and reports whether it was one.
struct TopLevel<'a> {
    fields: &'a mut Vec<Field>,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        let mut prefix = String::with_capacity(KEY_RESERVED);
        Flattener {
            prefix: &mut prefix,
            fields: self.fields,
        }
        .visit_map(map)?;
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Flattens one JSON value found under the key in `prefix` into `fields`.
struct Flattener<'a> {
    prefix: &'a mut String,
    fields: &'a mut Vec<Field>,
}

impl Flattener<'_> {
    fn push(self, value: JsonValue) {
        let key = match alias_of(self.prefix) {
            Some(alias) => {
                let spelled = (alias.key != self.prefix.as_str()).then(|| self.prefix.clone());
                FieldKey::Alias(alias, spelled)
            }
            None => FieldKey::Other(self.prefix.clone()),
        };
        self.fields.push(Field { key, value });
    }
}

impl<'de> DeserializeSeed<'de> for Flattener<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flattener<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let base_len = self.prefix.len();
        let mut is_empty = true;
        while map
            .next_key_seed(KeyAppender {
                prefix: self.prefix,
                base_len,
            })?
            .is_some()
        {
            is_empty = false;
            map.next_value_seed(Flattener {
                prefix: self.prefix,
                fields: self.fields,
            })?;
        }
        self.prefix.truncate(base_len);
        if is_empty && base_len > 0 {
            self.push(JsonValue::Raw("{}".to_owned()));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            items.push(item);
        }
        self.push(JsonValue::Raw(serde_json::Value::Array(items).to_string()));
        Ok(())
    }
    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.push(JsonValue::Str(value.to_owned()));
        Ok(())
    }
    fn visit_string<E>(self, value: String) -> Result<(), E> {
        self.push(JsonValue::Str(value));
        Ok(())
    }
    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.push(JsonValue::Int(value));
        Ok(())
    }
    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.push(JsonValue::UInt(value));
        Ok(())
    }
    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        self.push(JsonValue::Float(value));
        Ok(())
    }
    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.push(JsonValue::Bool(value));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Sets `prefix` to the dotted key of the next map entry: its first `base_len` bytes, a `.` when
/// they are not empty, and the entry's own key.
struct KeyAppender<'a> {
    prefix: &'a mut String,
    base_len: usize,
}

impl<'de> DeserializeSeed<'de> for KeyAppender<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyAppender<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        self.prefix.truncate(self.base_len);
        if self.base_len > 0 {
            self.prefix.push('.');
        }
        self.prefix.push_str(key);
        Ok(())
    }
}
