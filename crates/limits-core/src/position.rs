//! Where things are in a YAML text, for error messages. The YAML parser keeps positions only in
//! its errors, so each question is a pass over the text that stops with an error where the
//! answer is: the key that repeats an earlier one of its mapping (the parser's own error names
//! the mapping instead), and where the value of a key starts (a `rules: |` string, whose errors
//! count lines from the string's start).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, Visitor};
use serde_yaml::Value;

/// A position in a text: 1-based line and column, 0-based byte index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
    /// The byte offset.
    pub index: usize,
}

impl Position {
    fn of(error: &serde_yaml::Error) -> Option<Self> {
        error.location().map(|l| Self {
            line: l.line(),
            column: l.column(),
            index: l.index(),
        })
    }
}

/// The message of the error a pass stops with where it found what it looks for.
const FOUND: &str = "registry-gateway: found";

/// The first key that repeats an earlier key of the same mapping, with its position; `None`
/// when the text does not parse or has no such key.
pub(crate) fn duplicate_key(text: &str) -> Option<(String, Position)> {
    let found = RefCell::new(None);
    let error = Walk { found: &found }
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    let key = found.into_inner()?;
    Some((key, Position::of(&error)?))
}

/// Where the value of the key at `path` (mapping keys from the top, such as `["data",
/// "rules"]`) starts: for a block scalar (`rules: |`), its indicator.
pub(crate) fn value_at(text: &str, path: &[&str]) -> Option<Position> {
    let error = Seek { path }
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    // The message starts with the path of the value when it is not the top.
    error.to_string().contains(FOUND).then_some(())?;
    Position::of(&error)
}

/// The first line and the indentation of a literal block scalar (`|`, `|-`, `|2`, ...) whose
/// indicator is at `at`: its line `n` is the text's line `first + n - 1`, its column `c` the
/// text's column `c + indent`. `None` for any other style, whose lines do not map one to one.
pub(crate) fn literal_block(text: &str, at: Position) -> Option<(usize, usize)> {
    let rest = text.get(at.index..)?;
    let header = rest.strip_prefix('|')?.lines().next().unwrap_or("");
    let indicators: String = header
        .chars()
        .take_while(|c| matches!(c, '+' | '-' | '0'..='9'))
        .collect();
    let explicit = indicators.chars().find_map(|c| c.to_digit(10));
    let lines: Vec<&str> = text.lines().collect();
    let key_line = lines.get(at.line.checked_sub(1)?)?;
    let indent = match explicit {
        Some(digit) => leading_spaces(key_line) + digit as usize,
        None => lines
            .iter()
            .skip(at.line)
            .find(|line| !line.trim().is_empty())
            .map_or(0, |line| leading_spaces(line)),
    };
    Some((at.line + 1, indent))
}

/// The 1-based position of the item of the top block sequence (`- path: ...` lines at the
/// smallest indentation) that holds the position `line`, `column`; `None` before the first
/// item, or without one. A position on an item's dash belongs to the item before: the parser
/// stops there when that one is unfinished (an unclosed `{` or `[`).
pub(crate) fn item_at(text: &str, line: usize, column: usize) -> Option<usize> {
    let starts: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let body = l.trim_start();
            body == "-" || body.starts_with("- ")
        })
        .map(|(n, l)| (n + 1, leading_spaces(l)))
        .collect();
    let indent = starts.iter().map(|(_, indent)| *indent).min()?;
    let count = starts
        .iter()
        .filter(|(n, i)| *i == indent && (*n < line || (*n == line && column > indent + 1)))
        .count();
    (count > 0).then_some(count)
}

fn leading_spaces(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Walks a whole document; stops with an error at the first key its mapping already holds,
/// which the parser places at that key.
struct Walk<'a> {
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk { found: self.found })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let seen = RefCell::new(Vec::new());
        while map
            .next_key_seed(Key {
                seen: &seen,
                found: self.found,
            })?
            .is_some()
        {
            map.next_value_seed(Walk { found: self.found })?;
        }
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the value is walked like any other.
        let (IgnoredAny, variant) = data.variant()?;
        de::VariantAccess::newtype_variant_seed(variant, Walk { found: self.found })
    }
}

/// A mapping key, checked against the keys before it.
struct Key<'a> {
    seen: &'a RefCell<Vec<Value>>,
    found: &'a RefCell<Option<String>>,
}

impl Key<'_> {
    fn check<E: de::Error>(self, key: Value) -> Result<(), E> {
        let mut seen = self.seen.borrow_mut();
        if seen.contains(&key) {
            let name = match &key {
                Value::String(text) => text.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            *self.found.borrow_mut() = Some(name);
            return Err(E::custom(FOUND));
        }
        seen.push(key);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.check(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.check(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.check(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.check(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.check(Value::from(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.check(Value::Null)
    }

    // Keys that are lists or mappings are walked, not compared.
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Walk { found: self.found }.visit_seq(seq)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Walk { found: self.found }.visit_map(map)
    }
}

/// Walks down `path`; stops with an error at the value it leads to, which the parser places
/// where that value starts.
struct Seek<'p> {
    path: &'p [&'p str],
}

impl Seek<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.here()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.here()?;
        while let Some(key) = map.next_key::<Value>()? {
            match self.path.split_first() {
                Some((first, rest)) if key.as_str() == Some(*first) => {
                    map.next_value_seed(Seek { path: rest })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text, and the key that repeats with its line and column.
    type DuplicateCase<'a> = (&'a str, Option<(&'a str, usize, usize)>);
    /// A text, a path of keys, and a line and column.
    type PathCase<'a> = (&'a str, &'a [&'a str], Option<(usize, usize)>);

    #[test]
    fn duplicate_keys_are_placed_at_the_repeated_key() {
        #[rustfmt::skip]
        let cases: &[DuplicateCase<'_>] = &[
            ("a: 1\na: 2", Some(("a", 2, 1))),
            ("a: 1\nb: 2\n", None),
            ("data:\n  x: 1\n  y: 2\n  x: 3\n", Some(("x", 4, 3))),
            ("rules:\n- path: a\n  limit: {}\n- path: b\n  path: c\n", Some(("path", 5, 3))),
            ("- {a: 1, b: 2, a: 3}", Some(("a", 1, 16))),
            ("1: x\n1: y", Some(("1", 2, 1))),
            ("a: [", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = duplicate_key(text).map(|(key, at)| (key, at.line, at.column));
            let want = want.map(|(key, line, column)| (key.to_owned(), line, column));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn values_are_found_where_they_start() {
        #[rustfmt::skip]
        let cases: &[PathCase<'_>] = &[
            ("a: 1\nrules: |\n  - x\n", &["rules"], Some((2, 8))),
            ("kind: ConfigMap\ndata:\n  rules: |-\n    - x\n", &["data", "rules"], Some((3, 10))),
            ("rules:\n  - x\n", &["rules"], Some((2, 3))),
            ("a: 1\n", &["rules"], None),
            ("a: [", &["a"], Some((1, 4))),
            ("a: 1\nb: [", &["c"], None),
        ];
        for (text, path, want) in cases {
            let got = value_at(text, path).map(|at| (at.line, at.column));
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn literal_blocks_map_lines_and_columns() {
        #[rustfmt::skip]
        let cases: &[PathCase<'_>] = &[
            ("a: 1\nrules: |\n  - x\n", &["rules"], Some((3, 2))),
            ("data:\n  rules: |-\n\n      - x\n", &["data", "rules"], Some((3, 6))),
            ("data:\n  rules: |4\n        - x\n", &["data", "rules"], Some((3, 6))),
            ("rules: \"- x\"\n", &["rules"], None),
            ("rules: >\n  - x\n", &["rules"], None),
        ];
        for (text, path, want) in cases {
            let at = value_at(text, path).expect("found");
            assert_eq!(literal_block(text, at), *want, "{text:?}");
        }
    }

    #[test]
    fn items_hold_their_lines() {
        let text = "- path: a\n  limit: {}\n- path: b\n  limit:\n    - nested\n";
        #[rustfmt::skip]
        let cases: &[((usize, usize), Option<usize>)] = &[
            ((1, 1), None),
            ((1, 3), Some(1)),
            ((2, 1), Some(1)),
            ((3, 1), Some(1)),
            ((3, 2), Some(2)),
            ((5, 5), Some(2)),
            ((9, 1), Some(2)),
        ];
        for ((line, column), want) in cases {
            assert_eq!(item_at(text, *line, *column), *want, "{line}:{column}");
        }
        assert_eq!(item_at("  - a\n  - b", 2, 3), Some(1));
        assert_eq!(item_at("a: 1\n- b", 1, 3), None);
        assert_eq!(item_at("[{path: a}]", 1, 5), None);
    }
}
