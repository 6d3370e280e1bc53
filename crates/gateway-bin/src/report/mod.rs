//! `registry-gateway report`: what every repository of the registry already holds, measured
//! against the limits that apply to it, before `deny` is switched on.
//!
//! [`collect`] reads the registry (catalog, tag lists, manifests) with bounded concurrency;
//! the standing of each repository is decided by `limits_core::Usage`; [`render`] prints the
//! rows as a table, JSON or CSV. With `--namespaces`, [`namespaces`] reports each namespace
//! instead, counted by the gateway's inventory against its namespace quota.

mod collect;
pub mod namespaces;
mod progress;
mod render;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use limits_core::{ByteSize, Limit, Limits, Standing, Usage};
use upstream_client::Inventory as _;

use crate::cli::{FailOn, ReportArgs, ReportFormat};
use crate::config_source;
use crate::credentials;

/// The exit status when `--fail-on` finds what it looks for.
const FAIL_ON_STATUS: u8 = 3;

/// The threshold of `near` for repositories when `--near` is not given.
const DEFAULT_NEAR: u8 = 80;

/// One repository's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The name as the catalog listed it.
    pub repository: String,
    /// The limits that apply and the rule that gave them (`rule N: <pattern>` or `global`);
    /// `None` when the name is not a valid repository name.
    pub applied: Option<(Limits, String)>,
    /// Tags listed; `None` when the tag list could not be read.
    pub tags: Option<u64>,
    /// The largest image and a tag that points at it (the first in name order).
    pub largest: Option<Largest>,
    /// The standing, or why the repository could not be read.
    pub status: Status,
    /// Which limits the standing is about, or the error message.
    pub note: String,
    /// How close the repository is to its nearest limit (1.0 = at the limit), for sorting.
    pub fraction: f64,
}

/// A repository's largest image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Largest {
    /// A tag pointing at it (at an index holding it, for a multi-platform image).
    pub tag: String,
    /// Its size: config and layers as the manifest declares them.
    pub size: ByteSize,
}

/// A repository's standing, or a failure to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Read completely and measured.
    Standing(Standing),
    /// Its name, tag list or a manifest could not be read.
    Error,
}

impl Status {
    /// `over`, `near`, `ok` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Standing(standing) => standing.as_str(),
            Status::Error => "error",
        }
    }

    /// Sort rank: over, near, error, ok: everything that needs a look before what does not.
    fn rank(self) -> u8 {
        match self {
            Status::Standing(Standing::Over) => 0,
            Status::Standing(Standing::Near) => 1,
            Status::Error => 2,
            Status::Standing(Standing::Ok) => 3,
        }
    }
}

impl Row {
    /// A measured repository.
    fn measured(
        repository: String,
        limits: Limits,
        rule: String,
        tags: u64,
        largest: Option<Largest>,
        near: u8,
    ) -> Row {
        let usage = Usage::new(limits, tags, largest.as_ref().map(|l| l.size));
        let standing = usage.standing(near);
        Row {
            repository,
            applied: Some((limits, rule)),
            tags: Some(tags),
            largest,
            status: Status::Standing(standing),
            note: note(&usage, standing, near),
            fraction: usage.fraction(),
        }
    }
}

/// Which limits a standing is about: `tag count over the limit`, `image size at 85% of the
/// limit`, joined with `; `; empty when ok.
fn note(usage: &Usage, standing: Standing, near: u8) -> String {
    let mut parts = Vec::new();
    match standing {
        Standing::Over => {
            if usage.tags_over() {
                parts.push("tag count over the limit".to_owned());
            }
            if usage.size_over() {
                parts.push("image size over the limit".to_owned());
            }
        }
        Standing::Near => {
            if usage.tags_near(near) {
                let p = percent(usage.tags, usage.limits.tag_count_limit);
                parts.push(format!("tag count at {p}% of the limit"));
            }
            if usage.size_near(near) {
                let size = usage.largest_image.map_or(0, ByteSize::bytes);
                let p = percent(size, usage.limits.max_image_size.map(ByteSize::bytes));
                parts.push(format!("image size at {p}% of the limit"));
            }
        }
        Standing::Ok => {}
    }
    parts.join("; ")
}

/// `value` in whole percent of `limit`, rounded down; 0 without a bound.
fn percent(value: u64, limit: Limit<u64>) -> u128 {
    match limit {
        Limit::Max(max) if max > 0 => u128::from(value) * 100 / u128::from(max),
        _ => 0,
    }
}

/// Over first, then near, errors, ok; within a group the highest fraction first, then by name.
pub fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        a.status
            .rank()
            .cmp(&b.status.rank())
            .then_with(|| b.fraction.total_cmp(&a.fraction))
            .then_with(|| a.repository.cmp(&b.repository))
    });
}

/// Runs `report`: exit 0, or 3 when `--fail-on` finds what it looks for; an error (exit 1)
/// when the configuration, the credentials or the catalog cannot be read.
#[tokio::main]
pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let policy = config_source::load(&args.config)?;
    let upstream = credentials::reader(&args.upstream, &args.account)?;
    let terminal = std::io::stderr().is_terminal();
    let concurrency = usize::from(args.concurrency);
    let catalog_error = || format!("cannot read the catalog of {}", args.upstream);
    let mut out = Vec::new();
    let statuses: Vec<Status> = if args.namespaces {
        let names = upstream
            .catalog(upstream_client::Auth::Configured)
            .await
            .with_context(catalog_error)?;
        let progress = progress::Progress::counting(terminal, "namespaces");
        let mut rows =
            namespaces::rows(upstream, &policy, &names, concurrency, args.near, &progress).await;
        namespaces::sort(&mut rows);
        match args.format {
            ReportFormat::Table => namespaces::render::table(&rows, &mut out),
            ReportFormat::Json => namespaces::render::json(&rows, &mut out),
            ReportFormat::Csv => namespaces::render::csv(&rows, &mut out),
        }
        .context("cannot write the report")?;
        rows.iter().map(|row| row.status).collect()
    } else {
        let progress = progress::Progress::new(terminal);
        let near = args.near.unwrap_or(DEFAULT_NEAR);
        let reader = collect::Reader::new(upstream, policy, concurrency, near, progress);
        let names = reader.catalog().await.with_context(catalog_error)?;
        let mut rows = reader.rows(names).await;
        sort(&mut rows);
        match args.format {
            ReportFormat::Table => render::table(&rows, &mut out),
            ReportFormat::Json => render::json(&rows, &mut out),
            ReportFormat::Csv => render::csv(&rows, &mut out),
        }
        .context("cannot write the report")?;
        rows.iter().map(|row| row.status).collect()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("cannot write the report")?;
    Ok(if fails(args.fail_on, &statuses) {
        ExitCode::from(FAIL_ON_STATUS)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether `--fail-on` finds what it looks for among `statuses`.
fn fails(fail_on: Option<FailOn>, statuses: &[Status]) -> bool {
    fail_on.is_some_and(|fail_on| {
        statuses.iter().any(|status| {
            matches!(
                (fail_on, status),
                (_, Status::Standing(Standing::Over))
                    | (FailOn::Near, Status::Standing(Standing::Near))
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(size: u64, tags: u64) -> Limits {
        Limits {
            max_image_size: Limit::Max(ByteSize::new(size)),
            tag_count_limit: Limit::Max(tags),
            image_count_limit: Limit::Unlimited,
        }
    }

    fn row(name: &str, tags: u64, size: Option<u64>) -> Row {
        let largest = size.map(|size| Largest {
            tag: "v1".to_owned(),
            size: ByteSize::new(size),
        });
        Row::measured(
            name.to_owned(),
            limits(100, 10),
            "global".to_owned(),
            tags,
            largest,
            80,
        )
    }

    fn error(name: &str) -> Row {
        Row {
            repository: name.to_owned(),
            applied: None,
            tags: None,
            largest: None,
            status: Status::Error,
            note: "boom".to_owned(),
            fraction: 0.0,
        }
    }

    #[test]
    fn sorted_over_near_error_ok_then_by_fraction_then_name() {
        let mut rows = vec![
            row("ok-low", 1, None),
            row("near-tags", 9, None),
            error("broken"),
            row("over-size", 1, Some(150)),
            row("ok-high", 7, Some(50)),
            row("over-tags", 11, None),
            row("near-size", 1, Some(85)),
            row("b-ok-same", 7, None),
            row("a-ok-same", 7, None),
        ];
        sort(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.repository.as_str()).collect();
        assert_eq!(
            names,
            [
                "over-size",
                "over-tags",
                "near-tags",
                "near-size",
                "broken",
                "a-ok-same",
                "b-ok-same",
                "ok-high",
                "ok-low",
            ]
        );
    }

    #[test]
    fn notes() {
        #[rustfmt::skip]
        let cases: &[(u64, Option<u64>, &str)] = &[
            (11, Some(150), "tag count over the limit; image size over the limit"),
            (11, Some(85), "tag count over the limit"),
            (10, Some(85), "tag count at 100% of the limit; image size at 85% of the limit"),
            (1, Some(80), "image size at 80% of the limit"),
            (7, Some(79), ""),
        ];
        for (tags, size, want) in cases {
            assert_eq!(row("r", *tags, *size).note, *want, "{tags} {size:?}");
        }
    }
}
