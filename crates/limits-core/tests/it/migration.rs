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

#[test]
fn import_reads_the_seed_limit_range_and_lists_what_it_skips() {
    let text = r#"
apiVersion: v1
kind: ResourceQuota
metadata:
  name: image-registry-quota
  namespace: team-a
spec:
  hard:
    alauda.io/images: "200"
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
    let imported = import_registry_v2([text]).expect("imports");
    assert_eq!(
        imported.config.to_yaml(),
        "max_image_size: \"unlimited\"\ntag_count_limit: \"unlimited\"\nrules:\n  - path: \"^team-a/\"\n    limit:\n      max_image_size: \"1GB\"\n      tag_count_limit: \"100\"\n"
    );
    assert_eq!(imported.skipped.len(), 2, "{:?}", imported.skipped);
    assert!(imported.skipped[0].starts_with("ResourceQuota image-registry-quota"));
    assert!(imported.skipped[1].contains("alauda.io/images"));
    let err = import_registry_v2(["kind: LimitRange\nmetadata: {name: x}\n"]).expect_err("no ns");
    assert_eq!(
        err.to_string(),
        "LimitRange x in document 1 has no metadata.namespace"
    );
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
