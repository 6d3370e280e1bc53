//! Every configuration example of the product registry-gateway replaces loads unchanged and
//! gives the limits that document states.

use limits_core::{ByteSize, Limit, LimitSource, Policy};

const GLOBAL: &str = include_str!("seeds/global-limits.yaml");
const PATH_RULES: &str = include_str!("seeds/path-rules.yaml");
const ADDITIONAL: &str = include_str!("seeds/additional-examples.yaml");

const MB: u64 = 1 << 20;
const GB: u64 = 1 << 30;

/// (repository, max image size in bytes, tag count limit, rule position or None for global)
type Case = (&'static str, u64, u64, Option<usize>);

fn check(policy: &Policy, cases: &[Case]) {
    for (name, size, tags, rule) in cases {
        let applied = policy.limits_for(&name.parse().expect("valid name"));
        assert_eq!(
            applied.limits.max_image_size,
            Limit::Max(ByteSize::new(*size)),
            "{name}"
        );
        assert_eq!(applied.limits.tag_count_limit, Limit::Max(*tags), "{name}");
        let position = match applied.source {
            LimitSource::Global => None,
            LimitSource::Rule { position, .. } => Some(position),
        };
        assert_eq!(position, *rule, "{name}");
    }
}

#[test]
fn global_limits_example() {
    let policy = Policy::from_yaml(GLOBAL).expect("the seed's global example loads");
    assert!(policy.rules().is_empty());
    check(
        &policy,
        &[
            ("library/ubuntu", 100 * MB, 100, None),
            ("project-1/app", 100 * MB, 100, None),
        ],
    );
}

#[test]
fn path_rules_example() {
    let policy = Policy::from_yaml(PATH_RULES).expect("the seed's path rules example loads");
    check(
        &policy,
        &[
            ("project-1/app", 20 * MB, 3, Some(1)),
            ("project-1/team/web", 20 * MB, 3, Some(1)),
            ("project-2/app", 50 * MB, 10, Some(2)),
            ("project-3/app", 100 * MB, 100, None),
            ("project-1", 100 * MB, 100, None),
        ],
    );
}

#[test]
fn additional_example() {
    let policy = Policy::from_yaml(ADDITIONAL).expect("the seed's additional example loads");
    check(
        &policy,
        &[
            ("project-1/app", 20 * MB, 3, Some(1)),
            ("project-2/big-image/base", 5 * GB, 200, Some(2)),
            ("project-2/big-image", 50 * MB, 10, Some(3)),
            ("project-2/app", 50 * MB, 10, Some(3)),
            ("other/app", 100 * MB, 100, None),
        ],
    );
}

#[test]
fn defaults_without_keys() {
    let policy = Policy::from_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: registry-gateway-config\n",
    )
    .expect("a ConfigMap without data loads");
    check(&policy, &[("any/repo", GB, 1000, None)]);
    let policy = Policy::from_yaml("").expect("an empty file loads");
    check(&policy, &[("any/repo", GB, 1000, None)]);
}

/// The `data` keys of the seed example, as the files of a mounted ConfigMap directory.
#[test]
fn mounted_directory_entries() {
    let rules = "- path: ^project-1/.*\n  limit:\n    max_image_size: \"20MB\"\n    tag_count_limit: \"3\"\n- path: ^project-2/.*\n  limit:\n    max_image_size: \"50MB\"\n    tag_count_limit: \"10\"\n";
    let policy = Policy::from_entries([
        ("max_image_size", "100MB"),
        ("tag_count_limit", "100\n"),
        ("rules", rules),
    ])
    .expect("entries load");
    let from_manifest = Policy::from_yaml(PATH_RULES).expect("loads");
    assert_eq!(policy.config(), from_manifest.config());
}

/// The data keys alone (not wrapped in a ConfigMap), with `rules` as a plain YAML list and
/// integer counts.
#[test]
fn data_keys_file() {
    let text = "max_image_size: 100MB\ntag_count_limit: 100\nrules:\n  - path: ^project-1/.*\n    limit:\n      max_image_size: 20MB\n      tag_count_limit: 3\n  - path: ^project-2/.*\n    limit: {max_image_size: \"50MB\", tag_count_limit: \"10\"}\n";
    let policy = Policy::from_yaml(text).expect("data keys load");
    let from_manifest = Policy::from_yaml(PATH_RULES).expect("loads");
    assert_eq!(policy.config(), from_manifest.config());
}

#[test]
fn to_yaml_reads_back() {
    for text in [GLOBAL, PATH_RULES, ADDITIONAL] {
        let config = Policy::from_yaml(text).expect("loads").config().clone();
        let again = Policy::from_yaml(&config.to_yaml()).expect("printed config loads");
        assert_eq!(again.config(), &config);
    }
}

/// `image_count_limit` is optional, globally and in a rule's `limit`; absent, it is unlimited
/// (a rule without it is unlimited too: a rule's limits replace the global ones). The seed's
/// examples have none, so their image counts are unlimited.
#[test]
fn image_count_limit_is_optional() {
    for text in [GLOBAL, PATH_RULES, ADDITIONAL] {
        let policy = Policy::from_yaml(text).expect("loads");
        assert_eq!(policy.global().image_count_limit, Limit::Unlimited);
        assert!(
            policy
                .rules()
                .iter()
                .all(|r| r.limits.image_count_limit == Limit::Unlimited)
        );
    }
    let text = "image_count_limit: 50\nrules: |\n  - path: ^a/\n    limit: {max_image_size: 1GB, tag_count_limit: \"3\", image_count_limit: \"7\"}\n  - path: ^b/\n    limit: {max_image_size: 1GB, tag_count_limit: 3, image_count_limit: unlimited}\n  - path: ^c/\n    limit: {max_image_size: 1GB, tag_count_limit: 3}\n";
    let policy = Policy::from_yaml(text).expect("loads");
    let images = |name: &str| {
        policy
            .limits_for(&name.parse().expect("valid name"))
            .limits
            .image_count_limit
    };
    assert_eq!(images("a/app"), Limit::Max(7));
    assert_eq!(images("b/app"), Limit::Unlimited);
    assert_eq!(images("c/app"), Limit::Unlimited);
    assert_eq!(images("d/app"), Limit::Max(50));
    assert_eq!(
        policy.rules()[0].limits.to_string(),
        "max_image_size 1 GiB, tag_count_limit 3, image_count_limit 7"
    );
    let again = Policy::from_yaml(&policy.config().to_yaml()).expect("printed config loads");
    assert_eq!(again.config(), policy.config());
    let entries = Policy::from_entries([("image_count_limit", "50\n")]).expect("entries load");
    assert_eq!(entries.global().image_count_limit, Limit::Max(50));
}
