//! The optional protection keys: read-only, immutable tags, signature tags. Each is given
//! globally or per rule; the first matching rule's value wins, else the global one.

use limits_core::{Config, Content, LimitSource, Policy, Subject};

const CONFIG: &str = r#"
read_only: "false"
immutable_tags: ["^v[0-9]+\\."]
rules:
  - path: ^frozen/
    read_only: true
    limit: {max_image_size: 1GB, tag_count_limit: 10}
  - path: ^open/
    immutable_tags: []
    exempt_signature_tags: false
    limit: {max_image_size: 1GB, tag_count_limit: 10}
  - path: ^strict/
    immutable_tags: |
      - ^release-
    limit: {max_image_size: 1GB, tag_count_limit: 10}
  - path: ^plain/
    limit: {max_image_size: 1GB, tag_count_limit: 10}
"#;

fn rule(position: usize) -> Option<usize> {
    Some(position)
}

fn position(source: &LimitSource) -> Option<usize> {
    match source {
        LimitSource::Global => None,
        LimitSource::Rule { position, .. } => Some(*position),
    }
}

#[test]
fn first_matching_rule_or_global() {
    let policy = Policy::from_yaml(CONFIG).expect("loads");
    let sig = format!("sha256-{}.sig", "0".repeat(64));
    // (repository, read-only and its source, tag, immutable pattern and its source, counted)
    type Case<'a> = (
        &'a str,
        bool,
        Option<usize>,
        &'a str,
        Option<&'a str>,
        Option<usize>,
    );
    let cases: &[Case<'_>] = &[
        (
            "frozen/app",
            true,
            rule(1),
            "v1.0",
            Some("^v[0-9]+\\."),
            None,
        ),
        ("open/app", false, None, "v1.0", None, rule(2)),
        ("strict/app", false, None, "v1.0", None, rule(3)),
        (
            "strict/app",
            false,
            None,
            "release-1",
            Some("^release-"),
            rule(3),
        ),
        ("plain/app", false, None, "v2.1", Some("^v[0-9]+\\."), None),
        ("other/app", false, None, "v3.", Some("^v[0-9]+\\."), None),
        ("other/app", false, None, "latest", None, None),
    ];
    for (name, read_only, read_only_rule, tag, pattern, pattern_rule) in cases {
        let applied = policy.limits_for(&name.parse().expect("valid name"));
        let p = &applied.protections;
        assert_eq!(p.read_only.value, *read_only, "{name}");
        assert_eq!(position(&p.read_only.source), *read_only_rule, "{name}");
        assert_eq!(applied.check_write().is_err(), *read_only, "{name}");
        assert_eq!(p.immutable_pattern(tag), *pattern, "{name} {tag}");
        assert_eq!(position(&p.immutable_tags.source), *pattern_rule, "{name}");
    }
    // Signature tags may be exempt by default (when what they are says so), and are ordinary
    // tags under `exempt_signature_tags: false`.
    let exempt = policy.limits_for(&"plain/app".parse().expect("valid name"));
    let candidate = exempt
        .protections
        .signature_candidate(&sig)
        .expect("candidate");
    assert!(
        exempt
            .protections
            .is_exempt(&candidate, Subject::Image, Content::Pushed(Some("sig")))
    );
    assert!(exempt.protections.signature_candidate("v1.0").is_none());
    let counted = policy.limits_for(&"open/app".parse().expect("valid name"));
    assert!(counted.protections.signature_candidate(&sig).is_none());
    assert!(!counted.protections.is_exempt(
        &candidate,
        Subject::Image,
        Content::Pushed(Some("sig"))
    ));
}

/// A signature tag's name alone exempts it from nothing: the pattern applies to it like to any
/// tag, and only a tag that [`AppliedProtections::is_exempt`] is left out by the caller.
#[test]
fn signature_tags_are_immutable_unless_exempt() {
    let policy = Policy::from_yaml(
        "immutable_tags: ['.']\nrules:\n  - path: ^strict/\n    exempt_signature_tags: false\n    limit: {max_image_size: 1GB, tag_count_limit: 10}\n",
    )
    .expect("loads");
    let sig = format!("sha256-{}.att", "b".repeat(64));
    let exempt = policy.limits_for(&"a/b".parse().expect("valid name"));
    assert_eq!(exempt.protections.immutable_pattern(&sig), Some("."));
    let candidate = exempt
        .protections
        .signature_candidate(&sig)
        .expect("candidate");
    assert!(
        exempt
            .protections
            .is_exempt(&candidate, Subject::Image, Content::Pushed(Some("att")))
    );
    assert!(!exempt.protections.is_exempt(
        &candidate,
        Subject::Absent,
        Content::Pushed(Some("att"))
    ));
    assert_eq!(exempt.protections.immutable_pattern("latest"), Some("."));
    let strict = policy.limits_for(&"strict/b".parse().expect("valid name"));
    assert_eq!(strict.protections.signature_candidate(&sig), None);
    assert!(
        strict
            .check_tag_move(&sig, Some("sha256:a"), "sha256:b")
            .is_err()
    );
}

#[test]
fn messages_name_the_rule() {
    let policy = Policy::from_yaml(CONFIG).expect("loads");
    let frozen = policy.limits_for(&"frozen/app".parse().expect("valid name"));
    assert_eq!(
        frozen.check_write().expect_err("read-only").to_string(),
        "repository frozen/app is read-only for maintenance (rule 1: ^frozen/): writes are refused until read_only is turned off"
    );
    let strict = policy.limits_for(&"strict/app".parse().expect("valid name"));
    let refused = strict
        .check_tag_move("release-1", Some("sha256:aa"), "sha256:bb")
        .expect_err("immutable");
    assert_eq!(
        refused.to_string(),
        "tag release-1 of repository strict/app is immutable (pattern ^release- of rule 3: ^strict/): it points to sha256:aa and cannot be moved to sha256:bb; push a new tag instead"
    );
    assert_eq!(
        serde_json::to_string(&refused.detail()).expect("serialisable"),
        r#"{"repository":"strict/app","check":"immutable_tag","tag":"release-1","current_digest":"sha256:aa","pushed_digest":"sha256:bb","pattern":"^release-","rule":3,"rule_path":"^strict/"}"#
    );
    let global = Policy::from_yaml("read_only: true").expect("loads");
    assert_eq!(
        global.any_read_only().expect("read-only").to_string(),
        "the registry is read-only for maintenance (global read_only) and this write names no repository the gateway can read"
    );
    assert!(policy.any_read_only().is_some());
    assert!(
        Policy::from_yaml("read_only: false")
            .expect("loads")
            .any_read_only()
            .is_none()
    );
}

#[test]
fn absent_keys_mean_what_they_always_meant() {
    let policy = Policy::from_yaml("max_image_size: 1GB").expect("loads");
    let applied = policy.limits_for(&"a/b".parse().expect("valid name"));
    assert!(applied.check_write().is_ok());
    assert!(
        applied
            .check_tag_move("v1.0", Some("sha256:a"), "sha256:b")
            .is_ok()
    );
    assert!(
        applied
            .protections
            .signature_candidate(&format!("sha256-{}.att", "f".repeat(64)))
            .is_some()
    );
    assert!(policy.config().protections.is_empty());
}

#[test]
fn mounted_directory_and_configmap_forms() {
    let entries = Policy::from_entries([
        ("read_only", "true\n"),
        ("immutable_tags", "- ^v[0-9]+\\.\n- ^stable$\n"),
        ("exempt_signature_tags", "false"),
    ])
    .expect("entries load");
    let yaml = Policy::from_yaml(
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  read_only: \"true\"\n  exempt_signature_tags: \"false\"\n  immutable_tags: |\n    - ^v[0-9]+\\.\n    - ^stable$\n",
    )
    .expect("ConfigMap loads");
    assert_eq!(entries.config(), yaml.config());
    assert_eq!(entries.config().protections.read_only, Some(true));
}

#[test]
fn to_yaml_keeps_protections() {
    let config = Policy::from_yaml(CONFIG).expect("loads").config().clone();
    let again = Config::from_yaml(&config.to_yaml()).expect("printed config loads");
    assert_eq!(again, config);
}

#[test]
fn bad_values_name_key_and_location() {
    let cases: &[(&str, &str)] = &[
        (
            "read_only: yes",
            "invalid read_only in the global limits: expected true or false, found the string \"yes\"",
        ),
        (
            "read_only: 1",
            "invalid read_only in the global limits: expected true or false, found the number 1",
        ),
        (
            "rules:\n- path: ^a/\n  exempt_signature_tags: \"no\"\n  limit: {max_image_size: 1GB, tag_count_limit: 1}",
            "invalid exempt_signature_tags in rule 1 (^a/): expected true or false, found the string \"no\"",
        ),
        (
            "immutable_tags: ^v1",
            "invalid immutable_tags in the global limits: expected a list of regular expressions, found the string \"^v1\"",
        ),
        (
            "immutable_tags: [1]",
            "invalid immutable_tags in the global limits: expected a list of regular expressions, found the number 1",
        ),
        (
            "rules:\n- path: ^a/\n  read_onyl: true\n  limit: {max_image_size: 1GB, tag_count_limit: 1}",
            "unknown key \"read_onyl\" in rule 1 (^a/) (expected path, limit, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags)",
        ),
    ];
    for (text, message) in cases {
        let err = Config::from_yaml(text).expect_err(text);
        assert_eq!(err.to_string(), *message, "{text:?}");
    }
    let err = Policy::from_yaml(
        "rules:\n- path: ^a/\n  immutable_tags: [\"^v(\"]\n  limit: {max_image_size: 1GB, tag_count_limit: 1}",
    )
    .expect_err("bad pattern");
    assert!(
        err.to_string().starts_with(
            "invalid immutable_tags pattern \"^v(\" in rule 1 (^a/): regex parse error"
        ),
        "{err}"
    );
}

#[test]
fn delete_opt_out_resolves_first_match_and_parses_strictly() {
    let policy = Policy::from_yaml(
        "immutable_tags: ['^v']\nallow_deleting_immutable_tags: \"true\"\nrules:\n  - path: ^guarded/\n    allow_deleting_immutable_tags: false\n    limit: {max_image_size: 1GB, tag_count_limit: 10}\n  - path: ^plain/\n    limit: {max_image_size: 1GB, tag_count_limit: 10}\n",
    )
    .expect("loads");
    // (repository, opt-out, its rule, whether deletes are checked)
    let cases: &[(&str, bool, Option<usize>, bool)] = &[
        ("guarded/app", false, rule(1), true),
        ("plain/app", true, None, false),
        ("other/app", true, None, false),
    ];
    for (name, allow, allow_rule, guarded) in cases {
        let applied = policy.limits_for(&name.parse().expect("valid name"));
        let p = &applied.protections;
        assert_eq!(p.allow_deleting_immutable_tags.value, *allow, "{name}");
        assert_eq!(
            position(&p.allow_deleting_immutable_tags.source),
            *allow_rule,
            "{name}"
        );
        assert_eq!(p.guards_deletes(), *guarded, "{name}");
    }
    // Without patterns there is nothing to guard, whatever the key says.
    let none = Policy::from_yaml("allow_deleting_immutable_tags: false").expect("loads");
    let applied = none.limits_for(&"a/b".parse().expect("valid name"));
    assert!(!applied.protections.guards_deletes());
    assert!(!applied.protections.allow_deleting_immutable_tags.value);
    // Printed back, the key reads the same.
    let again = Config::from_yaml(&policy.config().to_yaml()).expect("printed config loads");
    assert_eq!(&again, policy.config());
    assert_eq!(
        Policy::from_entries([("allow_deleting_immutable_tags", "true\n")])
            .expect("entries load")
            .config()
            .protections
            .allow_deleting_immutable_tags,
        Some(true)
    );
    let cases: &[(&str, &str)] = &[
        (
            "allow_deleting_immutable_tags: yes",
            "invalid allow_deleting_immutable_tags in the global limits: expected true or false, found the string \"yes\"",
        ),
        (
            "rules:\n- path: ^a/\n  allow_deleting_immutable_tags: [true]\n  limit: {max_image_size: 1GB, tag_count_limit: 1}",
            "invalid allow_deleting_immutable_tags in rule 1 (^a/): expected true or false, found a list",
        ),
        (
            "allow_deleting_immutable_tag: true",
            "unknown key \"allow_deleting_immutable_tag\" in the global limits (expected max_image_size, tag_count_limit, image_count_limit, rules, namespace_quotas, read_only, immutable_tags, exempt_signature_tags, enforcement, warn_at, allow_deleting_immutable_tags)",
        ),
    ];
    for (text, message) in cases {
        let err = Config::from_yaml(text).expect_err(text);
        assert_eq!(err.to_string(), *message, "{text:?}");
    }
}
