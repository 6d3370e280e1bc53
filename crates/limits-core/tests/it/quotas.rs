//! `namespace_quotas`: reading them (a list or a string holding one), their errors, which
//! quota applies to a namespace, and the decisions and messages for each kind.

use limits_core::{
    ByteSize, Enforcement, Limit, NamespaceUsage, Policy, PushDelta, QuotaHard, QuotaKind,
    Standing, WarnAt,
};

/// The issue's example, as a ConfigMap whose `namespace_quotas` is a string.
const CONFIG_MAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: registry-gateway-config
data:
  max_image_size: "100MB"
  tag_count_limit: "100"
  namespace_quotas: |
    - namespace: ^team-a$          # regular expression on the namespace name
      hard:
        repositories: "20"         # repositories holding at least one tag
        images: "200"              # distinct images in the namespace
        tags: "200"                # tags of all its repositories together
        storage: "50GB"            # distinct blobs of every manifest stored, each once
      enforcement: deny
    - namespace: ^team-
      hard: {tags: 1000}
      enforcement: warn
      warn_at: 80%
    - namespace: ^sandbox$
      hard: {}
"#;

#[test]
fn the_issue_example_loads() {
    let policy = Policy::from_yaml(CONFIG_MAP).expect("loads");
    let quotas = policy.namespace_quotas();
    assert_eq!(quotas.len(), 3);
    assert_eq!(
        quotas[0].hard,
        QuotaHard {
            repositories: Limit::Max(20),
            images: Limit::Max(200),
            tags: Limit::Max(200),
            storage: Limit::Max(ByteSize::new(50 << 30)),
        }
    );
    assert_eq!(quotas[0].enforcement, Some(Enforcement::Deny));
    assert_eq!(quotas[1].warn_at, Some(WarnAt::Percent(80)));
    assert_eq!(quotas[2].hard, QuotaHard::UNLIMITED);
    // The same as a plain list in a data-keys file, and as the files of a mounted directory.
    let list = "namespace_quotas:\n  - namespace: ^team-a$\n    hard: {repositories: 20, images: 200, tags: 200, storage: 50GB}\n    enforcement: deny\n  - namespace: ^team-\n    hard:\n      tags: \"1000\"\n    enforcement: warn\n    warn_at: \"80%\"\n  - namespace: ^sandbox$\n    hard:\n";
    assert_eq!(
        Policy::from_yaml(list).expect("loads").namespace_quotas(),
        quotas
    );
    let text = "- namespace: ^team-a$\n  hard: {repositories: \"20\", images: \"200\", tags: \"200\", storage: 50GB}\n  enforcement: deny\n- namespace: ^team-\n  hard: {tags: 1000}\n  enforcement: warn\n  warn_at: 80%\n- namespace: ^sandbox$\n  hard: {}\n";
    let entries = Policy::from_entries([("namespace_quotas", text)]).expect("entries load");
    assert_eq!(entries.namespace_quotas(), quotas);
    // Printed and read back.
    let again = Policy::from_yaml(&policy.config().to_yaml()).expect("printed config loads");
    assert_eq!(again.config(), policy.config());
}

#[test]
fn first_matching_quota_applies() {
    let policy = Policy::from_yaml(CONFIG_MAP).expect("loads");
    #[rustfmt::skip]
    let cases: &[(&str, Option<usize>)] = &[
        ("team-a/app", Some(1)),
        ("team-a/tools/app", Some(1)),
        ("team-ab/app", Some(2)),
        ("team-b/app", Some(2)),
        ("sandbox/app", Some(3)),
        ("other/app", None),
        ("team-a", None),
    ];
    for (repository, position) in cases {
        let quota = policy.quota_for(&repository.parse().expect("valid name"));
        assert_eq!(quota.map(|q| q.source.position), *position, "{repository}");
    }
}

#[test]
fn errors_name_the_quota_key_and_value() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("namespace_quotas: 3",
         "invalid namespace_quotas in the global limits: expected a list of namespace quotas, found the number 3"),
        ("namespace_quotas:\n- 3",
         "invalid namespace quota in namespace quota 1: expected a mapping with namespace and hard, found the number 3"),
        ("namespace_quotas:\n- hard: {}",
         "missing key \"namespace\" in namespace quota 1"),
        ("namespace_quotas:\n- namespace: ^a$",
         "missing key \"hard\" in namespace quota 1 (^a$): a quota gives its limits under hard (each of them optional)"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {}\n- namespace: ^b$\n  hard: {repositories: \"-1\"}",
         "invalid repositories \"-1\" in namespace quota 2 (^b$): negative"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {images: many}",
         "invalid images \"many\" in namespace quota 1 (^a$): not a whole number"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {tags: 1.5}",
         "invalid tags \"1.5\" in namespace quota 1 (^a$): not a whole number"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {storage: 5XB}",
         "invalid storage \"5XB\" in namespace quota 1 (^a$): unknown unit \"XB\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {blobs: 3}",
         "unknown key \"blobs\" in namespace quota 1 (^a$) (expected repositories, images, tags, storage)"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {}\n  limit: {}",
         "unknown key \"limit\" in namespace quota 1 (^a$) (expected namespace, hard, enforcement, warn_at)"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {}\n  enforcement: refuse",
         "invalid enforcement in namespace quota 1 (^a$): expected deny, warn or audit, found the string \"refuse\""),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: 20",
         "invalid hard in namespace quota 1 (^a$): expected a mapping, found the number 20"),
        ("namespace_quotas:\n- namespace: 7\n  hard: {}",
         "invalid namespace in namespace quota 1: expected a regular expression string, found the number 7"),
        ("namespace_quotas:\n- namespace: ^a$\n  hard: {}\n- namespace: ^team-(\n  hard: {}",
         "invalid namespace pattern \"^team-(\" in namespace quota 2: regex parse error: ^team-( ^ error: unclosed group"),
        ("max_image_size: 1GB\nnamespace_quotas: |\n  - namespace: ^a$\n    hard: {}\n  - namespace: ^b$\n    hard: {tags: 1\n",
         "invalid YAML in namespace quota 2 of namespace_quotas: did not find expected ',' or '}' at line 7 column 3, while parsing a flow mapping at line 6 column 11"),
        ("namespace_quotas: \"just text\"",
         "invalid namespace_quotas in the global limits: expected a list of namespace quotas, found the string \"just text\""),
    ];
    for (text, message) in cases {
        let err = Policy::from_yaml(text).expect_err(text);
        assert_eq!(err.to_string(), *message, "{text}");
    }
}

fn quota_config(extra: &str) -> Policy {
    Policy::from_yaml(&format!(
        "namespace_quotas:\n  - namespace: ^team-a$\n    hard: {{repositories: 20, images: 200, tags: 200, storage: 50GB}}\n{extra}"
    ))
    .expect("loads")
}

#[test]
fn messages_for_each_kind() {
    let policy = quota_config("");
    let quota = policy
        .quota_for(&"team-a/app".parse().expect("valid name"))
        .expect("applies");
    let usage = NamespaceUsage {
        repositories: 20,
        images: 199,
        tags: 200,
        storage_bytes: 50_000_000_000,
    };
    let push = PushDelta {
        new_repository: true,
        new_image: true,
        new_tags: 2,
        new_blob_bytes: 200_000_000,
    };
    let decisions = quota.check(&usage, &push);
    let got: Vec<(bool, String)> = decisions
        .iter()
        .map(|d| (d.refuses(), d.to_string()))
        .collect();
    #[rustfmt::skip]
    let want = [
        (true, "namespace team-a would hold 21 repositories, over its quota of 20 (namespace quota 1: ^team-a$): it holds 20 and this push adds 1"),
        (false, "namespace team-a would hold 200 images, within its quota of 200 (namespace quota 1: ^team-a$): it holds 199 and this push adds 1"),
        (true, "namespace team-a would hold 202 tags, over its quota of 200 (namespace quota 1: ^team-a$): it holds 200 and this push adds 2"),
        (false, "namespace team-a would store 46.8 GiB (50200000000 bytes), within its storage quota of 50 GiB (53687091200 bytes) (namespace quota 1: ^team-a$): it stores 46.6 GiB (50000000000 bytes) and this push adds 190.7 MiB (200000000 bytes) of new blobs"),
    ];
    for ((refused, message), (want_refused, want_message)) in got.iter().zip(want) {
        assert_eq!(message, want_message);
        assert_eq!(*refused, want_refused, "{message}");
    }
    let detail = serde_json::to_string(&decisions[0].detail()).expect("serialisable");
    assert_eq!(
        detail,
        r#"{"namespace":"team-a","check":"namespace_repositories","measured":21,"limit":20,"held":20,"added":1,"quota":1,"quota_namespace":"^team-a$"}"#
    );
    // Nothing added: allowed whatever the namespace holds.
    let over = NamespaceUsage {
        repositories: 99,
        images: 999,
        tags: 999,
        storage_bytes: u64::MAX,
    };
    assert!(
        quota
            .check(&over, &PushDelta::default())
            .iter()
            .all(|d| d.is_allowed() && d.standing() == Standing::Ok)
    );
}

#[test]
fn enforcement_and_warn_at() {
    let usage = NamespaceUsage {
        tags: 170,
        ..NamespaceUsage::default()
    };
    let push = PushDelta {
        new_tags: 1,
        ..PushDelta::default()
    };
    let tags = |policy: &Policy, usage: &NamespaceUsage| {
        policy
            .quota_for(&"team-a/app".parse().expect("valid name"))
            .expect("applies")
            .check_kind(QuotaKind::Tags, usage, &push)
    };
    let near = tags(&quota_config("    warn_at: 80%\n"), &usage);
    assert_eq!(
        (near.standing(), near.verdict()),
        (Standing::Near, "near_limit")
    );
    assert_eq!(
        near.warning().as_deref(),
        Some(
            "namespace team-a would hold 171 tags, 85% of its quota of 200 (namespace quota 1: ^team-a$); warnings start at 80%"
        )
    );
    let full = NamespaceUsage { tags: 200, ..usage };
    let warned = tags(&quota_config("    enforcement: warn\n"), &full);
    assert!(!warned.is_allowed() && !warned.refuses());
    assert_eq!(
        warned.warning().as_deref(),
        Some(
            "namespace team-a would hold 201 tags, over its quota of 200 (namespace quota 1: ^team-a$): it holds 200 and this push adds 1; the push was accepted because the quota is enforced in warn mode"
        )
    );
    // The global enforcement applies to a quota that gives none.
    let audited = Policy::from_yaml(
        "enforcement: audit\nnamespace_quotas:\n- namespace: ^team-a$\n  hard: {tags: 200}\n",
    )
    .expect("loads");
    let audited = tags(&audited, &full);
    assert_eq!((audited.refuses(), audited.verdict()), (false, "denied"));
    assert_eq!(audited.warning(), None);
    let denied = tags(&quota_config(""), &full);
    assert!(denied.refuses());
    assert_eq!(denied.warning(), None);
}
