//! The namespace report as a table for people, or as JSON or CSV for programs, in the shapes
//! of the repository report.

use std::io::{self, Write};

use limits_core::{ByteSize, Limit, QuotaHard, QuotaKind};
use serde::Serialize;

use super::NamespaceRow;
use crate::report::render::{aligned, size_cells, write_csv_line};

/// One row's fields as numbers: what JSON and CSV print.
#[derive(Debug, Serialize)]
struct Record<'a> {
    status: &'static str,
    namespace: &'a str,
    repositories: Option<u64>,
    repository_limit: Option<u64>,
    images: Option<u64>,
    image_limit: Option<u64>,
    tags: Option<u64>,
    tag_limit: Option<u64>,
    storage_bytes: Option<u64>,
    storage_limit_bytes: Option<u64>,
    quota: Option<String>,
    note: Option<&'a str>,
}

/// The CSV header: the JSON keys, in the same order.
const CSV_HEADER: [&str; 12] = [
    "status",
    "namespace",
    "repositories",
    "repository_limit",
    "images",
    "image_limit",
    "tags",
    "tag_limit",
    "storage_bytes",
    "storage_limit_bytes",
    "quota",
    "note",
];

/// The table's header.
const TABLE_HEADER: [&str; 12] = [
    "STATUS",
    "NAMESPACE",
    "REPOS",
    "REPO LIMIT",
    "IMAGES",
    "IMAGE LIMIT",
    "TAGS",
    "TAG LIMIT",
    "STORAGE",
    "STORAGE LIMIT",
    "QUOTA",
    "NOTE",
];

/// Table columns aligned to the right (counts and sizes).
const RIGHT_ALIGNED: [usize; 8] = [2, 3, 4, 5, 6, 7, 8, 9];

/// The limits of a row: its quota's, or none at all.
fn hard(row: &NamespaceRow) -> QuotaHard {
    row.quota.as_ref().map_or(QuotaHard::UNLIMITED, |q| q.hard)
}

impl<'a> Record<'a> {
    fn of(row: &'a NamespaceRow) -> Self {
        let hard = hard(row);
        let held = |kind| row.usage.map(|u| u.held(kind));
        Self {
            status: row.status.as_str(),
            namespace: &row.namespace,
            repositories: held(QuotaKind::Repositories),
            repository_limit: hard.repositories.max(),
            images: held(QuotaKind::Images),
            image_limit: hard.images.max(),
            tags: held(QuotaKind::Tags),
            tag_limit: hard.tags.max(),
            storage_bytes: held(QuotaKind::Storage),
            storage_limit_bytes: hard.storage.max().map(ByteSize::bytes),
            quota: row.quota.as_ref().map(|q| q.source.to_string()),
            note: Some(row.note.as_str()).filter(|n| !n.is_empty()),
        }
    }

    fn csv_fields(&self) -> [String; 12] {
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        [
            self.status.to_owned(),
            self.namespace.to_owned(),
            number(self.repositories),
            number(self.repository_limit),
            number(self.images),
            number(self.image_limit),
            number(self.tags),
            number(self.tag_limit),
            number(self.storage_bytes),
            number(self.storage_limit_bytes),
            self.quota.clone().unwrap_or_default(),
            self.note.unwrap_or_default().to_owned(),
        ]
    }
}

/// The table's cells of a row: storage as refusals print sizes (`1.2 MiB` against `1 MiB`,
/// with exact bytes where rounding would make them read alike), `unlimited` for no limit, `-`
/// for what is unknown or no quota.
fn table_cells(row: &NamespaceRow) -> [String; 12] {
    let unknown = || "-".to_owned();
    let hard = hard(row);
    let held = |kind| row.usage.map_or_else(unknown, |u| u.held(kind).to_string());
    let limit = |limit: Limit<u64>| limit.to_string();
    let (storage, storage_limit) = size_cells(
        row.usage.map(|u| ByteSize::new(u.storage_bytes)),
        Some(hard.storage),
    );
    [
        row.status.as_str().to_owned(),
        row.namespace.clone(),
        held(QuotaKind::Repositories),
        limit(hard.repositories),
        held(QuotaKind::Images),
        limit(hard.images),
        held(QuotaKind::Tags),
        limit(hard.tags),
        storage.unwrap_or_else(unknown),
        storage_limit.unwrap_or_else(unknown),
        row.quota
            .as_ref()
            .map_or_else(unknown, |q| q.source.to_string()),
        row.note.clone(),
    ]
}

/// Aligned columns separated by two spaces, the header first; no trailing blanks.
pub fn table(rows: &[NamespaceRow], out: &mut impl Write) -> io::Result<()> {
    let cells: Vec<[String; 12]> = std::iter::once(TABLE_HEADER.map(str::to_owned))
        .chain(rows.iter().map(table_cells))
        .collect();
    aligned(&cells, &RIGHT_ALIGNED, out)
}

/// A JSON array of objects, one per row, keys as in [`CSV_HEADER`]; `null` for unlimited or
/// unknown.
pub fn json(rows: &[NamespaceRow], out: &mut impl Write) -> io::Result<()> {
    let records: Vec<Record<'_>> = rows.iter().map(Record::of).collect();
    serde_json::to_writer_pretty(&mut *out, &records)?;
    writeln!(out)
}

/// RFC 4180: a header row, then one row per namespace, CRLF line ends; empty for unlimited or
/// unknown.
pub fn csv(rows: &[NamespaceRow], out: &mut impl Write) -> io::Result<()> {
    write_csv_line(out, &CSV_HEADER.map(str::to_owned))?;
    for row in rows {
        write_csv_line(out, &Record::of(row).csv_fields())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::RepositoryCounts;
    use limits_core::{NamespaceUsage, Policy};

    fn rows() -> Vec<NamespaceRow> {
        let policy = Policy::from_yaml(
            "namespace_quotas:\n- namespace: ^team-a$\n  hard: {repositories: \"2\", storage: 20MiB}\n",
        )
        .expect("valid policy");
        let usage = |repositories, storage_bytes| NamespaceUsage {
            repositories,
            images: 4,
            tags: 7,
            storage_bytes,
        };
        let counts = [("x/app".to_owned(), RepositoryCounts { images: 4, tags: 7 })];
        vec![
            NamespaceRow::measured("team-a".into(), usage(3, 25 << 20), &counts, &policy, None),
            NamespaceRow::measured("other".into(), usage(1, 1536), &counts, &policy, None),
            NamespaceRow {
                namespace: "Bad".to_owned(),
                usage: None,
                quota: None,
                status: crate::report::Status::Error,
                note: "invalid \"name\", really".to_owned(),
                fraction: 0.0,
            },
        ]
    }

    fn text(render: fn(&[NamespaceRow], &mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        render(&rows(), &mut out).expect("rendered");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn table_aligns_columns() {
        let expected = "\
STATUS  NAMESPACE  REPOS  REPO LIMIT  IMAGES  IMAGE LIMIT  TAGS  TAG LIMIT   STORAGE  STORAGE LIMIT  QUOTA                        NOTE
over    team-a         3           2       4    unlimited     7  unlimited  25.0 MiB         20 MiB  namespace quota 1: ^team-a$  repositories over the quota; storage over the quota
ok      other          1   unlimited       4    unlimited     7  unlimited   1.5 KiB      unlimited  -
error   Bad            -   unlimited       -    unlimited     -  unlimited         -      unlimited  -                            invalid \"name\", really
";
        assert_eq!(text(table), expected);
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let expected = "\
status,namespace,repositories,repository_limit,images,image_limit,tags,tag_limit,storage_bytes,storage_limit_bytes,quota,note\r
over,team-a,3,2,4,,7,,26214400,20971520,namespace quota 1: ^team-a$,repositories over the quota; storage over the quota\r
ok,other,1,,4,,7,,1536,,,\r
error,Bad,,,,,,,,,,\"invalid \"\"name\"\", really\"\r
";
        assert_eq!(text(csv), expected);
    }

    #[test]
    fn json_has_numbers_and_nulls() {
        let value: serde_json::Value = serde_json::from_str(&text(json)).expect("json");
        assert_eq!(
            value,
            serde_json::json!([
                {"status": "over", "namespace": "team-a", "repositories": 3, "repository_limit": 2,
                 "images": 4, "image_limit": null, "tags": 7, "tag_limit": null,
                 "storage_bytes": 26214400u64, "storage_limit_bytes": 20971520u64,
                 "quota": "namespace quota 1: ^team-a$",
                 "note": "repositories over the quota; storage over the quota"},
                {"status": "ok", "namespace": "other", "repositories": 1, "repository_limit": null,
                 "images": 4, "image_limit": null, "tags": 7, "tag_limit": null,
                 "storage_bytes": 1536, "storage_limit_bytes": null, "quota": null, "note": null},
                {"status": "error", "namespace": "Bad", "repositories": null, "repository_limit": null,
                 "images": null, "image_limit": null, "tags": null, "tag_limit": null,
                 "storage_bytes": null, "storage_limit_bytes": null, "quota": null,
                 "note": "invalid \"name\", really"},
            ])
        );
    }
}
