//! `enforcement` and `warn_at`: optional keys, global and per rule, resolved like the other
//! per-rule keys (the first matching rule's value when it gives one, else the global one).

use limits_core::{ByteSize, Config, Enforcement, Policy, Standing, WarnAt};

const CONFIG: &str = r#"
max_image_size: 100MB
tag_count_limit: "10"
enforcement: audit
warn_at: "80%"
rules: |
  - path: ^warned/
    enforcement: warn
    warn_at: 50%
    limit: {max_image_size: 10MB, tag_count_limit: 4}
  - path: ^strict/
    enforcement: deny
    warn_at: "off"
    limit: {max_image_size: 10MB, tag_count_limit: 4}
  - path: ^inherits/
    limit: {max_image_size: 10MB, tag_count_limit: 4}
"#;

fn mb(n: u64) -> ByteSize {
    ByteSize::new(n << 20)
}

#[test]
fn first_matching_rule_or_global() {
    let policy = Policy::from_yaml(CONFIG).expect("valid");
    let cases: &[(&str, Enforcement, WarnAt)] = &[
        ("warned/app", Enforcement::Warn, WarnAt::Percent(50)),
        ("strict/app", Enforcement::Deny, WarnAt::Off),
        ("inherits/app", Enforcement::Audit, WarnAt::Percent(80)),
        ("other/app", Enforcement::Audit, WarnAt::Percent(80)),
    ];
    for (name, enforcement, warn_at) in cases {
        let applied = policy.limits_for(&name.parse().expect("name"));
        assert_eq!(
            applied.protections.enforcement.value, *enforcement,
            "{name}"
        );
        assert_eq!(applied.protections.warn_at.value, *warn_at, "{name}");
    }
}

#[test]
fn decisions_follow_the_mode() {
    let policy = Policy::from_yaml(CONFIG).expect("valid");
    let applied = |name: &str| policy.limits_for(&name.parse().expect("name"));
    // Over the limit: refused only in deny mode; told only in warn mode.
    let over = |name: &str| applied(name).check_image_size(mb(11));
    assert!(over("strict/app").refuses());
    assert_eq!(over("strict/app").warning(), None);
    assert!(!over("warned/app").refuses());
    assert!(over("warned/app").warning().is_some());
    assert!(!over("inherits/app").refuses());
    assert_eq!(over("inherits/app").warning(), None);
    for name in ["strict/app", "warned/app", "inherits/app"] {
        assert_eq!(over(name).verdict(), "denied", "{name}");
    }
    // Near: from the threshold up to the limit itself.
    assert_eq!(
        applied("warned/app").check_image_size(mb(5)).standing(),
        Standing::Near
    );
    assert_eq!(
        applied("warned/app").check_image_size(mb(10)).standing(),
        Standing::Near
    );
    assert_eq!(
        applied("warned/app")
            .check_image_size(ByteSize::new((5 << 20) - 1))
            .standing(),
        Standing::Ok
    );
    assert_eq!(
        applied("strict/app").check_image_size(mb(10)).standing(),
        Standing::Ok
    );
    // Tags: 2 held + 1 new = 3 of 4 is 75%, past warned/'s 50%; a push of no new tag never is.
    let near = applied("warned/app").check_tags(2, 1);
    assert_eq!(near.verdict(), "near_limit");
    assert_eq!(
        near.warning().as_deref(),
        Some(
            "tag count 3 is 75% of the limit of 4 for repository warned/app (rule 1: ^warned/); warnings start at 50%"
        )
    );
    assert_eq!(applied("warned/app").check_tags(4, 0).verdict(), "allowed");
    // Audit tells nothing, near or over.
    assert_eq!(
        applied("other/app").check_image_size(mb(90)).verdict(),
        "near_limit"
    );
    assert_eq!(
        applied("other/app").check_image_size(mb(90)).warning(),
        None
    );
}

#[test]
fn absent_keys_keep_todays_behaviour() {
    let policy = Policy::from_yaml("max_image_size: 10MB\ntag_count_limit: 2").expect("valid");
    let applied = policy.limits_for(&"any/app".parse().expect("name"));
    assert_eq!(applied.protections.enforcement.value, Enforcement::Deny);
    assert_eq!(applied.protections.warn_at.value, WarnAt::Off);
    let over = applied.check_image_size(mb(11));
    assert!(over.refuses());
    assert_eq!(over.verdict(), "denied");
    assert_eq!(applied.check_image_size(mb(10)).verdict(), "allowed");
    assert_eq!(applied.check_image_size(mb(10)).warning(), None);
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            "enforcement: enforce",
            "invalid enforcement in the global limits: expected deny, warn or audit, found the string \"enforce\"",
        ),
        (
            "warn_at: 0%",
            "invalid warn_at in the global limits: expected a percentage from 1% to 100% (such as 80%) or off, found the string \"0%\"",
        ),
        (
            "warn_at: 0.8",
            "invalid warn_at in the global limits: expected a percentage from 1% to 100% (such as 80%) or off, found the number 0.8",
        ),
        (
            "rules:\n- path: ^a/\n  warn_at: 120%\n  limit: {max_image_size: 1GB, tag_count_limit: 1}",
            "invalid warn_at in rule 1 (^a/): expected a percentage from 1% to 100% (such as 80%) or off, found the string \"120%\"",
        ),
    ];
    for (yaml, message) in cases {
        let err = Config::from_yaml(yaml).expect_err(yaml);
        assert_eq!(err.to_string(), *message, "{yaml}");
    }
    assert!(Config::from_yaml("warn_at: 80").is_ok());
}

#[test]
fn to_yaml_keeps_the_keys() {
    let config = Config::from_yaml(CONFIG).expect("valid");
    let again = Config::from_yaml(&config.to_yaml()).expect("reads back");
    assert_eq!(again, config);
}
