//! What the tag sets cost: the time of one push's tally in repositories of 10, 10,000 and
//! 100,000 tags, and the memory 100,000 tags take (in one repository, and spread over 100).
//! Ignored by default; run with
//!
//! ```text
//! cargo test -p gateway-bin --lib --config 'profile.test.package.gateway-bin.opt-level=3' \
//!     -- --ignored --nocapture --test-threads 1 inventory::tags::scale
//! ```

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use limits_core::RepositoryName;

use super::{InventoryMetrics, TagSets};

fn name(i: usize) -> RepositoryName {
    format!("team/app-{i}").parse().expect("a name")
}

/// Tags as build pipelines name them: a version and a commit.
fn tags(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("1.{}.{}-g{:07x}", i / 1000, i % 1000, i * 7919))
        .collect()
}

/// This process's resident memory, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
#[ignore = "a measurement; see the module docs"]
fn tally_cost_by_repository_size() {
    for count in [10, 10_000, 100_000] {
        let sets = TagSets::new(4, Arc::new(InventoryMetrics::new()));
        let repository = name(0);
        sets.adopt(&repository, &tags(count), &[], None);
        let exempt = HashSet::new();
        let requested = vec!["new".to_owned()];
        let calls = 10_000u32;
        let start = Instant::now();
        for _ in 0..calls {
            black_box(sets.tally(&repository, None, &exempt, &[], black_box(&requested)));
        }
        let tally = start.elapsed() / calls;
        let listing = tags(count);
        let start = Instant::now();
        for _ in 0..10 {
            black_box(limits_core::TagTally::new(
                black_box(&listing),
                &[],
                &requested,
            ));
        }
        let from_listing = start.elapsed() / 10;
        println!(
            "{count:>7} tags: tally from the set {tally:>10.2?}; from a listing already read {from_listing:>10.2?}"
        );
    }
}

#[test]
#[ignore = "a measurement; see the module docs"]
fn memory_per_100k_tags() {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let listing = tags(100_000);
    let start = resident();
    let one = TagSets::new(4, Arc::new(InventoryMetrics::new()));
    one.adopt(&name(0), &listing, &[], None);
    let single = resident();
    let spread = TagSets::new(200, Arc::new(InventoryMetrics::new()));
    for (i, chunk) in listing.chunks(1_000).enumerate() {
        spread.adopt(&name(i), chunk, &[], None);
    }
    let hundred = resident();
    black_box((&one, &spread));
    println!(
        "100000 tags of {} bytes on average: resident memory +{:.1} MiB in one repository, +{:.1} MiB over 100 repositories",
        listing.iter().map(String::len).sum::<usize>() / listing.len(),
        mib(single.saturating_sub(start)),
        mib(hundred.saturating_sub(single)),
    );
}
