//! What the inventory costs as a namespace grows: the time of `delta` + `usage` for one push
//! into a namespace of 10, 10,000 and 100,000 tags (against the recount from scratch of
//! [`oracle`](super::oracle)), and the memory 100,000 tags take. Ignored by default; run with
//!
//! ```text
//! cargo test -p gateway-bin --lib --config 'profile.test.package.gateway-bin.opt-level=3' \
//!     -- --ignored --nocapture --test-threads 1 inventory::scale
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use oci_manifest::Digest;

use super::oracle;
use super::{Change, ManifestFacts, NamespaceState};

/// Tags per repository, at most.
const TAGS_PER_REPOSITORY: usize = 1_000;

fn digest(kind: &str, i: usize) -> Digest {
    Digest::sha256(format!("{kind}-{i}").as_bytes())
}

/// An image of its own config and layer, and a base layer every image shares.
fn image(i: usize) -> ManifestFacts {
    ManifestFacts {
        blobs: BTreeMap::from([
            (digest("config", i), 1_500),
            (digest("layer", i), 20_000_000),
            (digest("layer", usize::MAX), 30_000_000),
        ]),
        ..ManifestFacts::default()
    }
}

fn repository(i: usize) -> String {
    format!("team/app-{}", i / TAGS_PER_REPOSITORY)
}

/// A namespace of `tags` tags, each on an image of its own, in repositories of at most
/// [`TAGS_PER_REPOSITORY`] tags.
fn namespace(tags: usize) -> NamespaceState {
    let mut state = NamespaceState::default();
    for i in 0..tags {
        state.learn(digest("manifest", i), image(i));
        state.apply(&Change::Pushed {
            repository: repository(i),
            digest: digest("manifest", i),
            tags: vec![format!("v{i}")],
        });
    }
    state
}

/// The median time of one call of `f`, from `rounds` rounds of `calls` calls.
fn median(rounds: usize, calls: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed() / calls as u32
        })
        .collect();
    times.sort();
    times[rounds / 2]
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
fn delta_and_usage_cost_by_namespace_size() {
    for tags in [10, 10_000, 100_000] {
        let mut state = namespace(tags);
        let pushed = digest("manifest", usize::MAX);
        state.learn(pushed.clone(), image(usize::MAX));
        let repository = repository(0);
        let new_tag = vec!["new".to_owned()];
        let incremental = median(51, 1_000, || {
            black_box(state.delta(&repository, black_box(&pushed), &new_tag));
            black_box(state.usage());
        });
        let recount = median(5, 1, || {
            black_box(oracle::delta(
                &state,
                &repository,
                black_box(&pushed),
                &new_tag,
            ));
            black_box(oracle::usage(&state));
        });
        let record = median(51, 100, || {
            state.apply(&Change::Pushed {
                repository: repository.clone(),
                digest: pushed.clone(),
                tags: new_tag.clone(),
            });
            state.apply(&Change::TagDeleted {
                repository: repository.clone(),
                tag: "new".to_owned(),
            });
        });
        assert_eq!(state.usage(), oracle::usage(&state));
        println!(
            "{tags:>7} tags: delta + usage {incremental:>10.2?} (recount from scratch {recount:>10.2?}); record a push and delete its tag {record:>10.2?}"
        );
    }
}

#[test]
#[ignore = "a measurement; see the module docs"]
fn memory_per_100k_tags() {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let start = resident();
    let state = namespace(100_000);
    let built = resident();
    // The same tags and facts without the counts, for comparison.
    let plain: (
        Vec<BTreeMap<String, Digest>>,
        HashMap<Digest, ManifestFacts>,
    ) = (
        state
            .repositories()
            .values()
            .map(|r| r.tags().clone())
            .collect(),
        state.manifests().clone(),
    );
    let copied = resident();
    black_box((&state, &plain));
    println!(
        "100000 tags (each on its own image of 3 blobs, one shared): resident memory +{:.1} MiB; \
         the tags and facts alone +{:.1} MiB",
        mib(built.saturating_sub(start)),
        mib(copied.saturating_sub(built)),
    );
}
