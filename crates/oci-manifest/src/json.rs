//! A JSON tree that keeps every key of every object, and field lookups that say where they failed.
//!
//! `serde_json::Value` keeps only the last of two equal keys, and serde derive ignores a key that
//! differs from a field only in case. Go's `encoding/json`, which Docker, containerd and the
//! CNCF distribution registry use, matches keys case-insensitively (with Unicode simple folding:
//! `ſize` is `size`, the Kelvin sign `K` is `k`) and lets the last match win. A manifest with
//! `"layers"` and `"LAYERS"` would be measured by one list and pulled by the other, so the
//! lookups here refuse both duplicates and case variants of every field the crate reads.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::ManifestError;
use crate::text::truncate;

/// One JSON value.
#[derive(Debug)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON number as serde_json reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Number {
    /// A non-negative integer that fits in a `u64`.
    Unsigned(u64),
    /// A negative integer that fits in an `i64`.
    Negative(i64),
    /// Anything else: a fraction, an exponent, or an integer too large for 64 bits.
    Float(f64),
}

/// A JSON object: every entry in document order, duplicates included.
#[derive(Debug, Default)]
pub(crate) struct Object {
    entries: Vec<(String, Json)>,
}

/// Where a value sits in the manifest, printed as `layers[2].size`. Only formatted on error.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At<'a> {
    /// The manifest itself.
    Root,
    /// A field of an object.
    Key(&'a At<'a>, &'a str),
    /// An element of an array.
    Index(&'a At<'a>, usize),
}

impl<'a> At<'a> {
    /// The path of field `name` of the object at `self`.
    pub(crate) fn key(&'a self, name: &'a str) -> At<'a> {
        At::Key(self, name)
    }

    /// The path of element `index` of the array at `self`.
    pub(crate) fn index(&'a self, index: usize) -> At<'a> {
        At::Index(self, index)
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root => Ok(()),
            At::Key(At::Root, name) => f.write_str(name),
            At::Key(parent, name) => write!(f, "{parent}.{name}"),
            At::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Unsigned(n) => write!(f, "{n}"),
            Number::Negative(n) => write!(f, "{n}"),
            // Debug keeps `1.0` as `1.0` and writes `1e30` in exponent form.
            Number::Float(n) => write!(f, "{n:?}"),
        }
    }
}

impl Json {
    /// Parses a whole body. serde_json refuses invalid UTF-8, trailing bytes and nesting deeper
    /// than 128 levels.
    pub(crate) fn from_slice(body: &[u8]) -> Result<Json, ManifestError> {
        serde_json::from_slice(body).map_err(ManifestError::invalid_json)
    }

    /// The value's type, and the value itself when it is a scalar, for error messages:
    /// `string "12"`, `number -1`, `boolean true`, `null`, `an array`, `an object`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Json::Null => "null".to_owned(),
            Json::Bool(b) => format!("boolean {b}"),
            Json::Number(n) => format!("number {n}"),
            Json::String(s) => format!("string \"{}\"", truncate(s)),
            Json::Array(_) => "an array".to_owned(),
            Json::Object(_) => "an object".to_owned(),
        }
    }

    /// The value as an object, or a [`ManifestError::WrongType`] naming `at`.
    pub(crate) fn as_object(&self, at: &At<'_>) -> Result<&Object, ManifestError> {
        match self {
            Json::Object(object) => Ok(object),
            other => Err(other.wrong_type(at, "an object")),
        }
    }

    /// The value as an array, or a [`ManifestError::WrongType`] naming `at`.
    pub(crate) fn as_array(&self, at: &At<'_>) -> Result<&[Json], ManifestError> {
        match self {
            Json::Array(items) => Ok(items),
            other => Err(other.wrong_type(at, "an array")),
        }
    }

    /// The value as a string, or a [`ManifestError::WrongType`] naming `at`.
    pub(crate) fn as_str(&self, at: &At<'_>) -> Result<&str, ManifestError> {
        match self {
            Json::String(s) => Ok(s),
            other => Err(other.wrong_type(at, "a string")),
        }
    }

    /// The error for a value of the wrong type at `at`.
    pub(crate) fn wrong_type(&self, at: &At<'_>, expected: &'static str) -> ManifestError {
        ManifestError::WrongType {
            field: at.to_string(),
            expected,
            found: self.describe(),
        }
    }
}

impl Object {
    /// The value of field `name` of this object (found at `at`), or `None`. Refuses a second
    /// `name` and any key that Go would take for `name` but that is not exactly `name`.
    pub(crate) fn get(&self, name: &str, at: &At<'_>) -> Result<Option<&Json>, ManifestError> {
        let mut found = None;
        for (key, value) in &self.entries {
            if !go_folds_to(key, name) {
                continue;
            }
            if key != name {
                return Err(ManifestError::CaseVariantField {
                    field: at.key(name).to_string(),
                    key: truncate(key),
                });
            }
            if found.is_some() {
                return Err(ManifestError::DuplicateField {
                    field: at.key(name).to_string(),
                });
            }
            found = Some(value);
        }
        Ok(found)
    }

    /// Whether any key is one Go would take for `name` (itself or a letter-case variant).
    pub(crate) fn has_key_like(&self, name: &str) -> bool {
        self.entries.iter().any(|(key, _)| go_folds_to(key, name))
    }

    /// Like [`get`](Self::get), with `null` read as absent, as Go reads it.
    pub(crate) fn optional(&self, name: &str, at: &At<'_>) -> Result<Option<&Json>, ManifestError> {
        Ok(self
            .get(name, at)?
            .filter(|value| !matches!(value, Json::Null)))
    }

    /// Like [`get`](Self::get), but absence is a [`ManifestError::MissingField`].
    pub(crate) fn required(&self, name: &str, at: &At<'_>) -> Result<&Json, ManifestError> {
        self.get(name, at)?
            .ok_or_else(|| ManifestError::MissingField {
                field: at.key(name).to_string(),
            })
    }

    /// Whether field `name` is present and not `null`, with the checks of [`get`](Self::get).
    pub(crate) fn has(&self, name: &str, at: &At<'_>) -> Result<bool, ManifestError> {
        Ok(self.optional(name, at)?.is_some())
    }
}

/// Whether Go's `encoding/json` would decode key `key` into a struct field tagged `name` (an
/// ASCII name): equal under Unicode simple case folding. The only non-ASCII characters that
/// fold to ASCII letters are `ſ` (U+017F, to `s`) and the Kelvin sign (U+212A, to `k`).
fn go_folds_to(key: &str, name: &str) -> bool {
    let mut chars = key.chars();
    for expected in name.chars() {
        let folded = match chars.next() {
            None => return false,
            Some('\u{017F}') => 's',
            Some('\u{212A}') => 'k',
            Some(c) => c.to_ascii_lowercase(),
        };
        if folded != expected.to_ascii_lowercase() {
            return false;
        }
    }
    chars.next().is_none()
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] from whatever serde_json reads.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::Unsigned(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(match u64::try_from(value) {
            Ok(unsigned) => Number::Unsigned(unsigned),
            Err(_) => Number::Negative(value),
        }))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(Json::Number(Number::Float(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Json::Object(Object { entries }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_folds_to_table() {
        let cases = [
            ("layers", "layers", true),
            ("Layers", "layers", true),
            ("LAYERS", "layers", true),
            ("layer", "layers", false),
            ("layerss", "layers", false),
            ("\u{017F}ize", "size", true),
            ("\u{212A}ind", "kind", true),
            ("mediatype", "mediaType", true),
            ("media_type", "mediaType", false),
            ("", "size", false),
        ];
        for (key, name, want) in cases {
            assert_eq!(go_folds_to(key, name), want, "{key} vs {name}");
        }
    }

    #[test]
    fn lookup_table() {
        let cases = [
            (r#"{"size":1}"#, Ok(true)),
            (r#"{"other":1}"#, Ok(false)),
            (r#"{"size":null}"#, Ok(false)),
            (
                r#"{"size":1,"size":2}"#,
                Err(r#"duplicate field "layers[0].size""#),
            ),
            (
                r#"{"size":1,"Size":2}"#,
                Err(
                    r#"field "Size" differs from "layers[0].size" only in letter case (go clients would read it as "layers[0].size")"#,
                ),
            ),
            (
                "{\"\u{017F}ize\":2}",
                Err(
                    "field \"\u{017F}ize\" differs from \"layers[0].size\" only in letter case (go clients would read it as \"layers[0].size\")",
                ),
            ),
        ];
        let layers = At::Root;
        let layers = layers.key("layers");
        let at = layers.index(0);
        for (body, want) in cases {
            let json = Json::from_slice(body.as_bytes()).expect("valid json");
            let object = json.as_object(&At::Root).expect("an object");
            let got = object.has("size", &at).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{body}");
        }
    }

    #[test]
    fn describe_table() {
        let cases = [
            ("null", "null"),
            ("true", "boolean true"),
            ("12", "number 12"),
            ("-3", "number -3"),
            ("1.0", "number 1.0"),
            ("1e30", "number 1e30"),
            ("18446744073709551616", "number 1.8446744073709552e19"),
            (r#""12""#, r#"string "12""#),
            ("[1]", "an array"),
            ("{}", "an object"),
        ];
        for (body, want) in cases {
            let json = Json::from_slice(body.as_bytes()).expect("valid json");
            assert_eq!(json.describe(), want, "{body}");
        }
    }
}
