//! Every configuration error names the key, where it was, and the offending value.

use limits_core::{Config, Policy};

#[test]
fn errors_name_key_location_and_value() {
    let cases: &[(&str, &str)] = &[
        (
            "max_image_sise: 1GB",
            "unknown key \"max_image_sise\" in the global limits (expected max_image_size, tag_count_limit, image_count_limit, rules, namespace_quotas, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags)",
        ),
        (
            "max_image_size: 12XB",
            "invalid max_image_size \"12XB\" in the global limits: unknown unit \"XB\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)",
        ),
        (
            "max_image_size: \"-1GB\"",
            "invalid max_image_size \"-1GB\" in the global limits: negative size \"-1GB\"",
        ),
        (
            "max_image_size: \"\"",
            "invalid max_image_size \"\" in the global limits: empty size",
        ),
        (
            "max_image_size: 99999999TB",
            "invalid max_image_size \"99999999TB\" in the global limits: size \"99999999TB\" does not fit in 64 bits",
        ),
        (
            "max_image_size: [1]",
            "invalid max_image_size in the global limits: expected a size such as \"100MB\" or \"unlimited\", found a list",
        ),
        (
            "tag_count_limit: \"-3\"",
            "invalid tag_count_limit \"-3\" in the global limits: negative",
        ),
        (
            "tag_count_limit: -3",
            "invalid tag_count_limit \"-3\" in the global limits: negative",
        ),
        (
            "tag_count_limit: ten",
            "invalid tag_count_limit \"ten\" in the global limits: not a whole number",
        ),
        (
            "tag_count_limit: 1.5",
            "invalid tag_count_limit \"1.5\" in the global limits: not a whole number",
        ),
        (
            "tag_count_limit: \"\"",
            "invalid tag_count_limit \"\" in the global limits: empty",
        ),
        (
            "tag_count_limit: \"99999999999999999999\"",
            "invalid tag_count_limit \"99999999999999999999\" in the global limits: does not fit in 64 bits",
        ),
        (
            "tag_count_limit: true",
            "invalid tag_count_limit in the global limits: expected a whole number such as \"100\" or \"unlimited\", found the boolean true",
        ),
        (
            "image_count_limit: \"-3\"",
            "invalid image_count_limit \"-3\" in the global limits: negative",
        ),
        (
            "image_count_limit: 2.5",
            "invalid image_count_limit \"2.5\" in the global limits: not a whole number",
        ),
        (
            "image_count_limit: [1]",
            "invalid image_count_limit in the global limits: expected a whole number such as \"100\" or \"unlimited\", found a list",
        ),
        (
            "rules:\n- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1}\n- path: ^b/\n  limit: {max_image_size: 1GB, tag_count_limit: 1, image_count_limit: lots}",
            "invalid image_count_limit \"lots\" in rule 2 (^b/): not a whole number",
        ),
        (
            "rules: |\n  - path: ^a/\n    limit: {max_image_size: 1GB, tag_count_limit: 1, image_count_limit: \"99999999999999999999\"}",
            "invalid image_count_limit \"99999999999999999999\" in rule 1 (^a/): does not fit in 64 bits",
        ),
        (
            "rules: 3",
            "invalid rules in the global limits: expected a list of rules, found the number 3",
        ),
        (
            "rules: \"just text\"",
            "invalid rules in the global limits: expected a list of rules, found the string \"just text\"",
        ),
        (
            "rules:\n- 3",
            "invalid rule in rule 1: expected a mapping with path and limit, found the number 3",
        ),
        (
            "rules:\n- limit: {max_image_size: 1GB, tag_count_limit: 1}",
            "missing key \"path\" in rule 1",
        ),
        (
            "rules:\n- path: 7\n  limit: {}",
            "invalid path in rule 1: expected a regular expression string, found the number 7",
        ),
        (
            "rules:\n- path: ^a/\n",
            "missing key \"limit\" in rule 1 (^a/): each rule must give both max_image_size and tag_count_limit",
        ),
        (
            "rules:\n- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1}\n- path: ^b/\n  limit: {max_image_size: 1GB}",
            "missing key \"tag_count_limit\" in rule 2 (^b/): each rule must give both max_image_size and tag_count_limit",
        ),
        (
            "rules:\n- path: ^b/\n  limit: {tag_count_limit: 1}",
            "missing key \"max_image_size\" in rule 1 (^b/): each rule must give both max_image_size and tag_count_limit",
        ),
        (
            "rules:\n- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1}\n- path: ^project-2/.*\n  limit: {max_image_size: 12XB, tag_count_limit: 1}",
            "invalid max_image_size \"12XB\" in rule 2 (^project-2/.*): unknown unit \"XB\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)",
        ),
        (
            "rules:\n- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: x}",
            "invalid tag_count_limit \"x\" in rule 1 (^a/): not a whole number",
        ),
        (
            "rules:\n- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1, max_tags: 2}",
            "unknown key \"max_tags\" in rule 1 (^a/) (expected max_image_size, tag_count_limit, image_count_limit)",
        ),
        (
            "rules:\n- path: ^a/\n  limits: {max_image_size: 1GB, tag_count_limit: 1}",
            "unknown key \"limits\" in rule 1 (^a/) (expected path, limit, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags)",
        ),
        (
            "rules:\n- path: ^a/\n  limit: 5",
            "invalid limit in rule 1 (^a/): expected a mapping, found the number 5",
        ),
        (
            "rules: |\n  - path: ^a/\n    limit: [",
            "invalid YAML in rule 1 of rules: did not find expected node content at line 4 column 3, while parsing a flow node",
        ),
        (
            "max_image_size: 1GB\nrules: |\n  - path: ^a/\n    limit: {max_image_size: 1GB, tag_count_limit: 1}\n  - path: ^b/\n    limit: {max_image_size: 1GB, tag_count_limit: 1\n  - path: ^c/\n    limit: {}\n",
            "invalid YAML in rule 2 of rules: did not find expected ',' or '}' at line 7 column 9, while parsing a flow mapping at line 6 column 12",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  rules: |\n    - path: ^a/\n      limit:\n        max_image_size: 1GB\n       tag_count_limit: 1\n",
            "invalid YAML in rule 1 of rules: did not find expected key at line 8 column 8, while parsing a block mapping at line 5 column 7",
        ),
        (
            "rules: |\n  - path: ^a/\n    limit: {max_image_size: 1GB, tag_count_limit: 1}\n  - path: ^b/\n    path: ^c/\n    limit: {}\n",
            "invalid YAML in rule 2 of rules: duplicate entry with key \"path\" at line 5 column 5",
        ),
        (
            "rules: \"- path: ^a/\\n  limit: [\"",
            "invalid YAML in rule 1 of rules: did not find expected node content at line 3 column 1 of the string, while parsing a flow node",
        ),
        (
            "immutable_tags: |\n  - [\n",
            "invalid YAML in the global limits: did not find expected node content at line 2 column 1 of the string, while parsing a flow node",
        ),
        (
            "kind: Secret\ndata: {}",
            "expected kind ConfigMap, found \"Secret\"",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  max_image_size: 1GB\n  tag_limit: \"3\"",
            "unknown key \"tag_limit\" in the global limits (expected max_image_size, tag_count_limit, image_count_limit, rules, namespace_quotas, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags)",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nspec: {}",
            "unknown key \"spec\" in the configuration (expected apiVersion, kind, metadata, data, binaryData, immutable)",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\ndata: [1]",
            "invalid data in the configuration: expected a mapping, found a list",
        ),
        (
            "- 1",
            "invalid configuration in the configuration: expected a mapping, found a list",
        ),
        (
            "a: [",
            "invalid YAML in the configuration: did not find expected node content at line 2 column 1, while parsing a flow node",
        ),
        (
            "a: 1\na: 2",
            "invalid YAML in the configuration: duplicate entry with key \"a\" at line 2 column 1",
        ),
        (
            "max_image_size: 1GB\ntag_count_limit: 10\nmax_image_size: 2GB\n",
            "invalid YAML in the configuration: duplicate entry with key \"max_image_size\" at line 3 column 1",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  tag_count_limit: \"5\"\n  tag_count_limit: \"6\"\n",
            "invalid YAML in the configuration: duplicate entry with key \"tag_count_limit\" at line 5 column 3",
        ),
    ];
    for (text, message) in cases {
        let err = Config::from_yaml(text).expect_err(text);
        assert_eq!(err.to_string(), *message, "{text:?}");
    }
}

#[test]
fn pattern_errors_name_rule_and_path() {
    let err = Policy::from_yaml("rules:\n- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1}\n- path: \"^project-2/(\"\n  limit: {max_image_size: 1GB, tag_count_limit: 1}")
        .expect_err("bad pattern");
    assert!(
        err.to_string()
            .starts_with("invalid path \"^project-2/(\" in rule 2: regex parse error"),
        "{err}"
    );
}

#[test]
fn unlimited_is_accepted_anywhere() {
    let policy = Policy::from_yaml("max_image_size: unlimited\ntag_count_limit: UNLIMITED\nrules:\n- path: ^a/\n  limit: {max_image_size: unlimited, tag_count_limit: \"5\"}")
        .expect("unlimited loads");
    assert_eq!(
        policy.global().to_string(),
        "max_image_size unlimited, tag_count_limit unlimited"
    );
    assert_eq!(
        policy.rules()[0].limits.to_string(),
        "max_image_size unlimited, tag_count_limit 5"
    );
}

#[test]
fn errors_in_a_mounted_rules_file_give_its_lines() {
    let err = Config::from_entries([
        ("max_image_size", "1GB"),
        ("rules", "- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1}\n- path: ^b/\n  limit: [\n"),
    ])
    .expect_err("bad rules");
    assert_eq!(
        err.to_string(),
        "invalid YAML in rule 2 of rules: did not find expected node content at line 5 column 1, while parsing a flow node"
    );
}

#[test]
fn entries_refuse_unknown_files() {
    let err = Config::from_entries([("max_image_size", "1GB"), ("tag_limit", "3")])
        .expect_err("unknown key");
    assert_eq!(
        err.to_string(),
        "unknown key \"tag_limit\" in the global limits (expected max_image_size, tag_count_limit, image_count_limit, rules, namespace_quotas, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags)"
    );
}
