//! `check-config --upstream` and `explain --upstream` against Debian's `docker-registry` filled
//! with skopeo: what a repository and its namespace hold, counted as the gateway's inventory
//! counts them, against the limits and the quota that apply.

use testkit::{Registry, RegistryAuth, TestImage};

use crate::inventory::stored;
use crate::support::run;

const KB: u64 = 1024;

const CONFIG: &str = r#"max_image_size: 1GB
tag_count_limit: "100"
rules:
  - path: ^team-a/
    limit: {max_image_size: 1GB, tag_count_limit: "10", image_count_limit: 5}
  - path: ^lone$
    limit: {max_image_size: 1GB, tag_count_limit: "100", image_count_limit: 3}
namespace_quotas: |
  - namespace: ^team-a$
    hard: {repositories: "20", storage: 50GB}
"#;

#[tokio::test]
async fn explain_and_check_config_read_the_usage_from_the_registry() {
    let registry = Registry::builder(RegistryAuth::Anonymous).start();
    let host = registry.host();
    let first = TestImage::new(&[8 * KB], 870);
    let second = TestImage::new(&[16 * KB], 871);
    for (image, repository, tag) in [
        (&first, "team-a/app", "v1"),
        (&second, "team-a/app", "v2"),
        (&first, "team-a/tools", "v1"),
        (&first, "lone", "v1"),
        (&second, "team-b/app", "v1"),
    ] {
        testkit::skopeo_push(&host, image, repository, tag, &[], None)
            .await
            .assert_success();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("limits.yaml");
    std::fs::write(&config, CONFIG).expect("write config");
    let config = config.to_string_lossy().into_owned();
    let url = registry.base_url().to_string();
    let bytes = stored(&first) + stored(&second);

    let explain = |repository: &str| {
        let (ok, out, err) = run(&[
            "explain",
            "--config",
            &config,
            "--upstream",
            &url,
            repository,
        ]);
        assert!(ok, "{err}");
        out
    };
    let out = explain("team-a/app");
    for line in [
        format!("repository usage: images 2 of 5, tags 2 of 10 (read from {url})"),
        format!(
            "namespace usage: repositories 2 of 20, images 3, tags 3, storage {} ({bytes} bytes) of 50 GiB",
            limits_core::ByteSize::new(bytes)
        ),
    ] {
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    // A repository without a namespace: its own counts, no namespace line.
    let out = explain("lone");
    assert!(
        out.contains(&format!(
            "repository usage: images 1 of 3, tags 1 of 100 (read from {url})"
        )),
        "{out}"
    );
    assert!(!out.contains("namespace usage"), "{out}");

    let (ok, out, err) = run(&["check-config", &config, "--upstream", &url]);
    assert!(ok, "{err}");
    let line = format!(
        "  team-a: repositories 2 of 20, images 3, tags 3, storage {} ({bytes} bytes) of 50 GiB (namespace quota 1: ^team-a$)",
        limits_core::ByteSize::new(bytes)
    );
    assert!(
        out.contains(&format!("namespace usage (read from {url}):\n{line}\n")),
        "{out}"
    );
    // team-b has no quota: not listed.
    assert!(!out.contains("team-b"), "{out}");

    // A registry that does not answer is an error, not a usage of zero.
    let (ok, _, err) = run(&[
        "explain",
        "--config",
        &config,
        "--upstream",
        "http://127.0.0.1:9",
        "team-a/app",
    ]);
    assert!(!ok);
    assert!(
        err.contains("cannot read team-a/app from http://127.0.0.1:9/"),
        "{err}"
    );
}
