//! The report as a table for people, or as JSON or CSV for programs.

use std::io::{self, Write};

use limits_core::{ByteSize, Limit};
use serde::Serialize;

use super::Row;

/// One row's fields as numbers: what JSON and CSV print.
#[derive(Debug, Serialize)]
struct Record<'a> {
    status: &'static str,
    repository: &'a str,
    tags: Option<u64>,
    tag_limit: Option<u64>,
    largest_image_tag: Option<&'a str>,
    largest_image_bytes: Option<u64>,
    size_limit_bytes: Option<u64>,
    rule: Option<&'a str>,
    note: Option<&'a str>,
}

/// The CSV header: the JSON keys, in the same order.
const CSV_HEADER: [&str; 9] = [
    "status",
    "repository",
    "tags",
    "tag_limit",
    "largest_image_tag",
    "largest_image_bytes",
    "size_limit_bytes",
    "rule",
    "note",
];

/// The table's header.
const TABLE_HEADER: [&str; 9] = [
    "STATUS",
    "REPOSITORY",
    "TAGS",
    "TAG LIMIT",
    "LARGEST",
    "SIZE",
    "SIZE LIMIT",
    "RULE",
    "NOTE",
];

/// Table columns aligned to the right (numbers and sizes).
const RIGHT_ALIGNED: [usize; 4] = [2, 3, 5, 6];

impl<'a> Record<'a> {
    fn of(row: &'a Row) -> Self {
        let limits = row.applied.as_ref().map(|(limits, _)| limits);
        Self {
            status: row.status.as_str(),
            repository: &row.repository,
            tags: row.tags,
            tag_limit: limits.and_then(|l| l.tag_count_limit.max()),
            largest_image_tag: row.largest.as_ref().map(|l| l.tag.as_str()),
            largest_image_bytes: row.largest.as_ref().map(|l| l.size.bytes()),
            size_limit_bytes: limits
                .and_then(|l| l.max_image_size.max())
                .map(|s| s.bytes()),
            rule: row.applied.as_ref().map(|(_, rule)| rule.as_str()),
            note: Some(row.note.as_str()).filter(|n| !n.is_empty()),
        }
    }

    fn csv_fields(&self) -> [String; 9] {
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let text = |t: Option<&str>| t.unwrap_or_default().to_owned();
        [
            self.status.to_owned(),
            self.repository.to_owned(),
            number(self.tags),
            number(self.tag_limit),
            text(self.largest_image_tag),
            number(self.largest_image_bytes),
            number(self.size_limit_bytes),
            text(self.rule),
            text(self.note),
        ]
    }
}

/// The table's cells of a row: sizes like refusals print them (`25.0 MiB` against `20 MiB`),
/// `unlimited` for no limit, `-` for what is unknown.
fn table_cells(row: &Row) -> [String; 9] {
    let unknown = || "-".to_owned();
    let limits = row.applied.as_ref().map(|(limits, _)| limits);
    let (size, size_limit) = size_cells(
        row.largest.as_ref().map(|l| l.size),
        limits.map(|l| l.max_image_size),
    );
    [
        row.status.as_str().to_owned(),
        row.repository.clone(),
        row.tags.map_or_else(unknown, |t| t.to_string()),
        limits.map_or_else(unknown, |l| l.tag_count_limit.to_string()),
        row.largest.as_ref().map_or_else(unknown, |l| l.tag.clone()),
        size.unwrap_or_else(unknown),
        size_limit.unwrap_or_else(unknown),
        row.applied
            .as_ref()
            .map_or_else(unknown, |(_, rule)| rule.clone()),
        row.note.clone(),
    ]
}

/// The size and size limit cells: one decimal for the size (`25.0 MiB`), the compact form for
/// the limit (`20 MiB`), and the exact bytes of both when rounding would print a size that
/// differs from its limit as the limit prints (`20.0 MiB (20971521 bytes)` against
/// `20 MiB (20971520 bytes)`): an image over its limit must not read as equal to it.
pub(super) fn size_cells(
    size: Option<ByteSize>,
    limit: Option<Limit<ByteSize>>,
) -> (Option<String>, Option<String>) {
    let looks_equal = match (size, limit) {
        (Some(size), Some(Limit::Max(max))) => size != max && size.to_string() == max.to_string(),
        _ => false,
    };
    let with_bytes = |text: String, size: ByteSize| {
        if looks_equal {
            format!("{text} ({} bytes)", size.bytes())
        } else {
            text
        }
    };
    (
        size.map(|size| with_bytes(size.to_string(), size)),
        limit.map(|limit| match limit {
            Limit::Max(max) => with_bytes(limit.to_string(), max),
            Limit::Unlimited => limit.to_string(),
        }),
    )
}

/// Aligned columns separated by two spaces, the header first; no trailing blanks.
pub fn table(rows: &[Row], out: &mut impl Write) -> io::Result<()> {
    let header = TABLE_HEADER.map(str::to_owned);
    let cells: Vec<[String; 9]> = std::iter::once(header)
        .chain(rows.iter().map(table_cells))
        .collect();
    aligned(&cells, &RIGHT_ALIGNED, out)
}

/// `lines` in aligned columns separated by two spaces, the columns in `right` aligned to the
/// right; no trailing blanks.
pub(super) fn aligned<const N: usize>(
    lines: &[[String; N]],
    right: &[usize],
    out: &mut impl Write,
) -> io::Result<()> {
    let mut widths = [0usize; N];
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for line in lines {
        let mut text = String::new();
        for (column, cell) in line.iter().enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            let pad = widths[column] - cell.chars().count();
            if right.contains(&column) {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// A JSON array of objects, one per row, keys as in [`CSV_HEADER`]; `null` for unlimited or
/// unknown.
pub fn json(rows: &[Row], out: &mut impl Write) -> io::Result<()> {
    let records: Vec<Record<'_>> = rows.iter().map(Record::of).collect();
    serde_json::to_writer_pretty(&mut *out, &records)?;
    writeln!(out)
}

/// RFC 4180: a header row, then one row per repository, CRLF line ends, fields quoted when
/// they hold a comma, a quote or a line break; empty for unlimited or unknown.
pub fn csv(rows: &[Row], out: &mut impl Write) -> io::Result<()> {
    write_csv_line(out, &CSV_HEADER.map(str::to_owned))?;
    for row in rows {
        write_csv_line(out, &Record::of(row).csv_fields())?;
    }
    Ok(())
}

pub(super) fn write_csv_line(out: &mut impl Write, fields: &[String]) -> io::Result<()> {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    write!(out, "{}\r\n", line.join(","))
}

/// A field, quoted when it must be.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Largest, Status};
    use limits_core::{Limits, Standing};

    fn rows() -> Vec<Row> {
        vec![
            Row {
                repository: "p/app".to_owned(),
                applied: Some((
                    Limits {
                        max_image_size: Limit::Max(ByteSize::new(20 << 20)),
                        tag_count_limit: Limit::Max(3),
                        image_count_limit: Limit::Unlimited,
                    },
                    "rule 1: ^p/.*".to_owned(),
                )),
                tags: Some(4),
                largest: Some(Largest {
                    tag: "v2".to_owned(),
                    size: ByteSize::new(25 << 20),
                }),
                status: Status::Standing(Standing::Over),
                note: "tag count over the limit; image size over the limit".to_owned(),
                fraction: 1.33,
            },
            Row {
                repository: "other".to_owned(),
                applied: Some((
                    Limits {
                        max_image_size: Limit::Unlimited,
                        tag_count_limit: Limit::Unlimited,
                        image_count_limit: Limit::Unlimited,
                    },
                    "global".to_owned(),
                )),
                tags: Some(0),
                largest: None,
                status: Status::Standing(Standing::Ok),
                note: String::new(),
                fraction: 0.0,
            },
            Row {
                repository: "Bad".to_owned(),
                applied: None,
                tags: None,
                largest: None,
                status: Status::Error,
                note: "invalid \"name\", really".to_owned(),
                fraction: 0.0,
            },
        ]
    }

    fn text(render: fn(&[Row], &mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        render(&rows(), &mut out).expect("rendered");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn table_aligns_columns() {
        let expected = "\
STATUS  REPOSITORY  TAGS  TAG LIMIT  LARGEST      SIZE  SIZE LIMIT  RULE           NOTE
over    p/app          4          3  v2       25.0 MiB      20 MiB  rule 1: ^p/.*  tag count over the limit; image size over the limit
ok      other          0  unlimited  -               -   unlimited  global
error   Bad            -          -  -               -           -  -              invalid \"name\", really
";
        assert_eq!(text(table), expected);
    }

    #[test]
    fn sizes_that_print_as_their_limit_show_bytes() {
        let mib = |n: u64| ByteSize::new(n << 20);
        #[rustfmt::skip]
        let cases: &[(ByteSize, Limit<ByteSize>, &str, &str)] = &[
            (mib(25), Limit::Max(mib(20)), "25.0 MiB", "20 MiB"),
            (mib(20), Limit::Max(mib(20)), "20.0 MiB", "20 MiB"),
            (ByteSize::new((20 << 20) + 1), Limit::Max(mib(20)), "20.0 MiB (20971521 bytes)", "20 MiB (20971520 bytes)"),
            (ByteSize::new((20 << 20) - 1), Limit::Max(mib(20)), "20.0 MiB (20971519 bytes)", "20 MiB (20971520 bytes)"),
            (ByteSize::new((1536 << 20) + 7), Limit::Max(mib(1536)), "1.5 GiB (1610612743 bytes)", "1536 MiB (1610612736 bytes)"),
            (ByteSize::new(1_395_864_372), Limit::Max(ByteSize::new(1_395_864_371)), "1.3 GiB (1395864372 bytes)", "1.3 GiB (1395864371 bytes)"),
            (ByteSize::new((20 << 20) + 1), Limit::Unlimited, "20.0 MiB", "unlimited"),
        ];
        for (size, limit, want_size, want_limit) in cases {
            let (size_cell, limit_cell) = size_cells(Some(*size), Some(*limit));
            assert_eq!(size_cell.as_deref(), Some(*want_size), "{size:?}");
            assert_eq!(limit_cell.as_deref(), Some(*want_limit), "{size:?}");
        }
        assert_eq!(
            size_cells(None, Some(Limit::Max(mib(20)))),
            (None, Some("20 MiB".to_owned()))
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let expected = "\
status,repository,tags,tag_limit,largest_image_tag,largest_image_bytes,size_limit_bytes,rule,note\r
over,p/app,4,3,v2,26214400,20971520,rule 1: ^p/.*,tag count over the limit; image size over the limit\r
ok,other,0,,,,,global,\r
error,Bad,,,,,,,\"invalid \"\"name\"\", really\"\r
";
        assert_eq!(text(csv), expected);
    }

    #[test]
    fn json_has_numbers_and_nulls() {
        let value: serde_json::Value = serde_json::from_str(&text(json)).expect("json");
        assert_eq!(
            value,
            serde_json::json!([
                {"status": "over", "repository": "p/app", "tags": 4, "tag_limit": 3,
                 "largest_image_tag": "v2", "largest_image_bytes": 26214400u64,
                 "size_limit_bytes": 20971520u64, "rule": "rule 1: ^p/.*",
                 "note": "tag count over the limit; image size over the limit"},
                {"status": "ok", "repository": "other", "tags": 0, "tag_limit": null,
                 "largest_image_tag": null, "largest_image_bytes": null,
                 "size_limit_bytes": null, "rule": "global", "note": null},
                {"status": "error", "repository": "Bad", "tags": null, "tag_limit": null,
                 "largest_image_tag": null, "largest_image_bytes": null,
                 "size_limit_bytes": null, "rule": null, "note": "invalid \"name\", really"},
            ])
        );
    }
}
