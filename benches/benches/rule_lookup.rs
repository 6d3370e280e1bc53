//! Rule lookup: the compiled policy (one `RegexSet`) side by side with an ordered scan of
//! `Regex::is_match`, the original product's documented semantics, at 1 to 10,000 rules.
//! Also size string parsing.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use limits_core::{ByteSize, Config, Limit, Limits, Policy, Protections, RepositoryName, Rule};
use regex::Regex;

fn rules(count: usize) -> Vec<Rule> {
    rules_with(count, "^")
}

/// `count` rules `<anchor>project-<i>/.*`: anchored (`^`) rules use the prefix index,
/// unanchored ones the `RegexSet`.
fn rules_with(count: usize, anchor: &str) -> Vec<Rule> {
    (0..count)
        .map(|i| Rule {
            path: format!("{anchor}project-{i}/.*"),
            limits: Limits {
                max_image_size: Limit::Max(ByteSize::new(20 << 20)),
                tag_count_limit: Limit::Max(3),
                image_count_limit: Limit::Unlimited,
            },
            protections: Protections::default(),
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("rule_lookup");
    for count in [1usize, 10, 100, 1_000, 10_000] {
        let rules = rules(count);
        let policy = Policy::new(Config {
            global: Limits::DEFAULT,
            rules: rules.clone(),
            protections: Protections::default(),
            namespace_quotas: Vec::new(),
        })
        .expect("valid rules");
        let scan: Vec<Regex> = rules
            .iter()
            .map(|r| Regex::new(&r.path).expect("valid"))
            .collect();
        // The worst case for a scan: the last rule matches.
        let name: RepositoryName = format!("project-{}/app", count - 1)
            .parse()
            .expect("valid name");
        group.bench_with_input(BenchmarkId::new("policy", count), &name, |b, name| {
            b.iter(|| black_box(policy.limits_for(black_box(name))))
        });
        group.bench_with_input(BenchmarkId::new("ordered_scan", count), &name, |b, name| {
            b.iter(|| {
                black_box(
                    scan.iter()
                        .position(|r| r.is_match(black_box(name.as_str()))),
                )
            })
        });
        let unanchored = Policy::new(Config {
            global: Limits::DEFAULT,
            rules: rules_with(count, ""),
            protections: Protections::default(),
            namespace_quotas: Vec::new(),
        })
        .expect("valid rules");
        group.bench_with_input(
            BenchmarkId::new("policy_unanchored", count),
            &name,
            |b, name| b.iter(|| black_box(unanchored.limits_for(black_box(name)))),
        );
        let miss: RepositoryName = "unmatched/app".parse().expect("valid name");
        group.bench_with_input(
            BenchmarkId::new("policy_no_match", count),
            &miss,
            |b, name| b.iter(|| black_box(policy.limits_for(black_box(name)))),
        );
        group.bench_with_input(
            BenchmarkId::new("ordered_scan_no_match", count),
            &miss,
            |b, name| {
                b.iter(|| {
                    black_box(
                        scan.iter()
                            .position(|r| r.is_match(black_box(name.as_str()))),
                    )
                })
            },
        );
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_compile");
    group.sample_size(10);
    for count in [100usize, 10_000] {
        let config = Config {
            global: Limits::DEFAULT,
            rules: rules(count),
            protections: Protections::default(),
            namespace_quotas: Vec::new(),
        };
        group.bench_with_input(BenchmarkId::from_parameter(count), &config, |b, config| {
            b.iter(|| black_box(Policy::new(config.clone()).expect("valid")))
        });
    }
    group.finish();
}

fn sizes(c: &mut Criterion) {
    let mut group = c.benchmark_group("size_parse");
    for input in ["100MB", "1.5 GiB", "18446744073709551615"] {
        group.bench_with_input(BenchmarkId::from_parameter(input), input, |b, input| {
            b.iter(|| black_box(black_box(input).parse::<ByteSize>()))
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, compile, sizes);
criterion_main!(benches);
