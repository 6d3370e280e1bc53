//! Export to Registry v2 `LimitRange`s and import back: every example of the seed and of
//! docs/configuration-examples.md exports to well-formed objects, and imports back to the
//! limits each namespace had wherever the export was exact.

use limits_core::{Policy, import_registry_v2};
use serde_yaml::Value;

const SEEDS: [&str; 3] = [
    include_str!("seeds/global-limits.yaml"),
    include_str!("seeds/path-rules.yaml"),
    include_str!("seeds/additional-examples.yaml"),
];
const EXAMPLES: &str = include_str!("../../../../docs/configuration-examples.md");

/// The ```yaml blocks of a Markdown text that are gateway configurations.
fn examples() -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in EXAMPLES.lines() {
        match (&mut current, line.trim()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks.extend(SEEDS.iter().map(|s| (*s).to_owned()));
    blocks
}

/// Checks the shape Kubernetes requires of a LimitRange with the Registry v2 types.
fn assert_well_formed(document: &Value, text: &str) {
    assert_eq!(document["apiVersion"].as_str(), Some("v1"), "{text}");
    assert_eq!(document["kind"].as_str(), Some("LimitRange"), "{text}");
    assert_eq!(
        document["metadata"]["name"].as_str(),
        Some("image-registry-limits")
    );
    let namespace = document["metadata"]["namespace"]
        .as_str()
        .expect("namespace");
    assert!(
        !namespace.is_empty()
            && namespace.len() <= 63
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "{namespace}"
    );
    let limits = document["spec"]["limits"]
        .as_sequence()
        .expect("spec.limits");
    assert!(!limits.is_empty(), "{text}");
    for limit in limits {
        let kind = limit["type"].as_str().expect("type");
        assert!(
            ["alauda.io/Image", "alauda.io/ImageStream"].contains(&kind),
            "{kind}"
        );
        let max = limit["max"].as_mapping().expect("max");
        for (key, value) in max {
            assert!(key.is_string(), "{text}");
            // Quantities are strings in the API; a YAML number would be re-typed by kubectl.
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("string quantity in {text}"));
            limits_core::parse_quantity(value).expect("a quantity");
        }
    }
}

#[test]
fn every_example_exports_and_imports_back() {
    let mut exported_objects = 0;
    for example in examples() {
        let policy = Policy::from_yaml(&example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        let mut namespaces = policy.rule_namespaces();
        namespaces.push("unmatched-team".to_owned());
        let text = policy.export_registry_v2(&namespaces);
        for part in serde_yaml::Deserializer::from_str(&text) {
            let document: Value = serde::Deserialize::deserialize(part).expect("YAML");
            if !document.is_null() {
                assert_well_formed(&document, &text);
                exported_objects += 1;
            }
        }
        let imported = import_registry_v2([text.as_str()]).expect("imports");
        assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
        let back = Policy::new(imported.config).expect("compiles");
        for namespace in &namespaces {
            let exported = policy.namespace_limits(namespace);
            for repository in [format!("{namespace}/app"), format!("{namespace}/a/b")] {
                let name = repository.parse().expect("valid name");
                let got = back.limits_for(&name).limits;
                assert_eq!(got, exported.limits, "{repository}\n{text}");
                if exported.inexact.is_empty() {
                    assert_eq!(got, policy.limits_for(&name).limits, "{repository}\n{text}");
                } else {
                    assert!(text.contains("# INEXACT: rule"), "{text}");
                }
            }
        }
    }
    assert!(exported_objects >= 20, "{exported_objects}");
}

#[test]
fn seed_example_exports_as_documented() {
    let policy = Policy::from_yaml(SEEDS[2]).expect("loads");
    let text = policy.export_registry_v2(&["project-2".to_owned()]);
    let expected = "---
# namespace project-2: rule 3: ^project-2/.*
# INEXACT: rule 2 (^project-2/big-image/.*) gives some repositories of namespace project-2 max_image_size 5 GiB, tag_count_limit 200; a LimitRange applies to the whole namespace and cannot express it
apiVersion: v1
kind: LimitRange
metadata:
  name: image-registry-limits
  namespace: \"project-2\"
spec:
  limits:
    - type: alauda.io/Image
      max:
        storage: 50Mi
    - type: alauda.io/ImageStream
      max:
        alauda.io/image-tags: \"10\"
";
    assert!(text.ends_with(expected), "{text}");
    assert_eq!(policy.rule_namespaces(), ["project-1", "project-2"]);
}

/// The two example objects of the successor's documentation ("Configure Image Limits").
const SEED_002: &str = r#"
apiVersion: v1
kind: ResourceQuota
metadata:
  name: image-registry-quota
  namespace: team-a
spec:
  hard:
    alauda.io/imagestreams: "20"
    alauda.io/images: "200"
    alauda.io/image-tags: "200"
---
apiVersion: v1
kind: LimitRange
metadata:
  name: image-registry-limits
  namespace: team-a
spec:
  limits:
    - type: alauda.io/Image
      max:
        storage: 1Gi
    - type: alauda.io/ImageStream
      max:
        alauda.io/images: "100"
        alauda.io/image-tags: "100"
"#;

/// The objects of a YAML stream, in a stable order.
fn objects(text: &str) -> Vec<Value> {
    let mut objects: Vec<Value> = serde_yaml::Deserializer::from_str(text)
        .map(|part| serde::Deserialize::deserialize(part).expect("YAML"))
        .filter(|value: &Value| !value.is_null())
        .collect();
    objects.sort_by_key(|value| serde_yaml::to_string(value).expect("printable"));
    objects
}

#[test]
fn the_successor_examples_round_trip_exactly() {
    let imported = import_registry_v2([SEED_002]).expect("imports");
    assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
    assert_eq!(
        imported.config.to_yaml(),
        "max_image_size: \"unlimited\"\ntag_count_limit: \"unlimited\"\nrules:\n  - path: \"^team-a/\"\n    limit:\n      max_image_size: \"1GB\"\n      tag_count_limit: \"100\"\n      image_count_limit: \"100\"\nnamespace_quotas:\n  - namespace: \"^team-a$\"\n    hard:\n      repositories: \"20\"\n      images: \"200\"\n      tags: \"200\"\n"
    );
    // Through the printed configuration, as `import` then `export` on the command line do.
    let policy = Policy::from_yaml(&imported.config.to_yaml()).expect("printed config loads");
    assert_eq!(policy.rule_namespaces(), ["team-a"]);
    let exported = policy.export_registry_v2(&policy.rule_namespaces());
    assert_eq!(objects(&exported), objects(SEED_002), "{exported}");
}

#[test]
fn export_writes_quotas_and_says_what_storage_maps_to() {
    let policy = Policy::from_yaml(
        r#"
image_count_limit: 30
namespace_quotas: |
  - namespace: ^team-a$
    hard: {repositories: "20", tags: "200", storage: 50GB}
    enforcement: warn
  - namespace: ^team-
    hard: {storage: 1TB}
"#,
    )
    .expect("loads");
    let text = policy.export_registry_v2(&["team-a".to_owned(), "team-b".to_owned()]);
    let expected_a = "---
# namespace team-a: namespace quota 1: ^team-a$ (repositories 20, tags 200, storage 50 GiB)
# INEXACT: the gateway enforces this quota in warn mode (pushes over it go through); a ResourceQuota always refuses them
# Not exported, Registry v2 has no equivalent: storage 50 GiB (53687091200 bytes) of namespace quota 1: ^team-a$; no ResourceQuota resource counts the storage of a namespace's images
apiVersion: v1
kind: ResourceQuota
metadata:
  name: image-registry-quota
  namespace: \"team-a\"
spec:
  hard:
    alauda.io/imagestreams: \"20\"
    alauda.io/image-tags: \"200\"
";
    assert!(text.contains(expected_a), "{text}");
    let expected_b = "---
# namespace team-b: namespace quota 2: ^team- (storage 1 TiB)
# Not exported, Registry v2 has no equivalent: storage 1 TiB (1099511627776 bytes) of namespace quota 2: ^team-; no ResourceQuota resource counts the storage of a namespace's images
# repositories, images and tags are unlimited: no ResourceQuota for namespace team-b
";
    assert!(text.ends_with(expected_b), "{text}");
    // The global image count limit goes into each namespace's image stream limits.
    assert!(
        text.contains("    - type: alauda.io/ImageStream\n      max:\n        alauda.io/images: \"30\"\n        alauda.io/image-tags: \"1000\"\n"),
        "{text}"
    );
    let back = import_registry_v2([text.as_str()]).expect("imports");
    assert!(back.skipped.is_empty(), "{:?}", back.skipped);
    let back = Policy::new(back.config).expect("compiles");
    let quota = back.quota_for_namespace("team-a").expect("imported");
    assert_eq!(quota.hard.to_string(), "repositories 20, tags 200");
    assert!(back.quota_for_namespace("team-b").is_none());
    let limits = back
        .limits_for(&"team-b/app".parse().expect("valid name"))
        .limits;
    assert_eq!(
        limits,
        policy
            .limits_for(&"team-b/app".parse().expect("valid name"))
            .limits
    );
}

#[test]
fn import_lists_what_it_skips() {
    let text = r#"
apiVersion: v1
kind: ResourceQuota
metadata:
  name: image-registry-quota
  namespace: team-a
spec:
  hard:
    alauda.io/images: "200"
    requests.storage: 1Ti
  scopes: [BestEffort]
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: stricter
  namespace: team-a
spec:
  hard:
    alauda.io/images: "150"
---
apiVersion: v1
kind: LimitRange
metadata:
  name: image-registry-limits
  namespace: team-a
spec:
  limits:
    - type: alauda.io/Image
      max:
        storage: 1Gi
      min:
        storage: 1Ki
    - type: alauda.io/ImageStream
      max:
        alauda.io/image-tags: "100"
---
kind: ConfigMap
metadata: {name: other}
"#;
    let imported = import_registry_v2([text]).expect("imports");
    assert_eq!(
        imported.config.to_yaml(),
        "max_image_size: \"unlimited\"\ntag_count_limit: \"unlimited\"\nrules:\n  - path: \"^team-a/\"\n    limit:\n      max_image_size: \"1GB\"\n      tag_count_limit: \"100\"\nnamespace_quotas:\n  - namespace: \"^team-a$\"\n    hard:\n      images: \"150\"\n"
    );
    assert_eq!(
        imported.skipped,
        [
            "hard requests.storage in the ResourceQuota of namespace team-a: no legacy equivalent",
            "scopes in the ResourceQuota of namespace team-a: no legacy equivalent (the quota was imported for the whole namespace)",
            "alauda.io/Image min in the LimitRange of namespace team-a: no legacy equivalent",
            "ConfigMap other (document 4): only LimitRange and ResourceQuota objects have a legacy equivalent",
        ]
    );
    #[rustfmt::skip]
    let errors: &[(&str, &str)] = &[
        ("kind: LimitRange\nmetadata: {name: x}\n",
         "LimitRange x in document 1 has no metadata.namespace"),
        ("kind: ResourceQuota\nmetadata: {name: q}\n",
         "ResourceQuota q in document 1 has no metadata.namespace"),
        ("kind: ResourceQuota\nmetadata: {name: q, namespace: a}\nspec:\n  hard: {alauda.io/images: \"1.5\"}\n",
         "invalid alauda.io/images \"1.5\" in the ResourceQuota of namespace a: expected a whole number"),
        ("kind: LimitRange\nmetadata: {name: x, namespace: a}\nspec:\n  limits:\n  - type: alauda.io/ImageStream\n    max: {alauda.io/images: many}\n",
         "invalid alauda.io/images \"many\" in the LimitRange of namespace a: expected a whole number"),
    ];
    for (text, message) in errors {
        let err = import_registry_v2([*text]).expect_err(text);
        assert_eq!(err.to_string(), *message);
    }
    let err = import_registry_v2([
        "kind: LimitRange\nmetadata: {name: x, namespace: a}\nspec:\n  limits:\n  - type: alauda.io/Image\n    max: {storage: 1.5Gi}\n",
    ])
    .expect_err("fraction");
    assert!(
        err.to_string()
            .starts_with("invalid storage \"1.5Gi\" in the LimitRange of namespace a: "),
        "{err}"
    );
}
