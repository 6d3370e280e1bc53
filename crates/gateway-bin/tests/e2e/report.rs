//! `registry-gateway report` against Debian's `docker-registry` filled by the test directly:
//! repositories over, near and under their limits, in each output format; with Basic and token
//! credentials; and what a real registry will not do (a failing tag list) from a fake server.

use std::process::Command;

use limits_core::ByteSize;
use serde_json::{Value, json};
use testkit::{FakeServer, ManifestFormat, OCI_MANIFEST, RawPusher, Registry, Reply, TestImage};

use crate::support::BIN;

mod namespaces;

/// 100 KiB and 5 tags under `team-a/`, 1 MiB and 10 tags elsewhere.
const CONFIG: &str = r#"
max_image_size: "1MB"
tag_count_limit: "10"
rules: |
  - path: ^team-a/.*
    limit:
      max_image_size: "100KB"
      tag_count_limit: "5"
"#;
const RULE: &str = "rule 1: ^team-a/.*";
const TEAM_SIZE: u64 = 100 << 10;
const GLOBAL_SIZE: u64 = 1 << 20;

/// An image's size as the report counts it: config and layers.
fn size(image: &TestImage) -> u64 {
    image.config().size() + image.layer_total()
}

/// Pushes `image` under every tag: blobs and manifest once, then the same manifest again.
async fn push(registry: &Registry, repository: &str, image: &TestImage, tags: &[&str]) {
    let pusher = RawPusher::for_registry(registry, repository);
    let answer = pusher
        .push_image(image, repository, tags[0], ManifestFormat::Oci, None)
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    for tag in &tags[1..] {
        let answer = pusher
            .put_manifest(repository, tag, OCI_MANIFEST, &image.manifest().data)
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    }
}

/// Pushes an OCI index of `children` (each pushed by digest first) as `tag`.
async fn push_index(registry: &Registry, repository: &str, children: &[TestImage], tag: &str) {
    let pusher = RawPusher::for_registry(registry, repository);
    let mut manifests = Vec::new();
    for (i, child) in children.iter().enumerate() {
        let digest = &child.manifest().digest;
        let answer = pusher
            .push_image(child, repository, digest, ManifestFormat::Oci, None)
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
        let architecture = ["amd64", "arm64"][i % 2];
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": child.manifest().size(),
            "platform": {"architecture": architecture, "os": "linux"},
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let answer = pusher
        .put_manifest(
            repository,
            tag,
            "application/vnd.oci.image.index.v1+json",
            index.to_string().as_bytes(),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
}

fn tags(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("v{i}")).collect()
}

/// Runs `report` with `args` after `--config <file> --upstream <url>`; exit code, stdout,
/// stderr.
fn report(
    config: &str,
    upstream: &url::Url,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("limits.yaml");
    std::fs::write(&path, config).expect("write config");
    let output = Command::new(BIN)
        .arg("report")
        .arg("--config")
        .arg(&path)
        .arg("--upstream")
        .arg(upstream.as_str())
        .args(args)
        .env_remove("REGISTRY_GATEWAY_REPORT_USERNAME")
        .env_remove("REGISTRY_GATEWAY_REPORT_PASSWORD")
        .envs(envs.iter().copied())
        .output()
        .expect("run registry-gateway report");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One expected JSON entry.
#[allow(clippy::too_many_arguments)]
fn entry(
    status: &str,
    repository: &str,
    tags: u64,
    tag_limit: u64,
    largest: Option<(&str, u64)>,
    size_limit: u64,
    rule: &str,
    note: Option<&str>,
) -> Value {
    json!({
        "status": status,
        "repository": repository,
        "tags": tags,
        "tag_limit": tag_limit,
        "largest_image_tag": largest.map(|(tag, _)| tag),
        "largest_image_bytes": largest.map(|(_, bytes)| bytes),
        "size_limit_bytes": size_limit,
        "rule": rule,
        "note": note,
    })
}

#[tokio::test]
async fn report_lists_repositories_over_near_and_under_their_limits() {
    let registry = Registry::anonymous();
    let small = TestImage::new(&[1000], 1);
    let big = TestImage::new(&[130_000], 2);
    let near_size = TestImage::new(&[90_000], 3);
    let children = [TestImage::new(&[50_000], 4), TestImage::new(&[200_000], 5)];

    let six = tags(6);
    let six: Vec<&str> = six.iter().map(String::as_str).collect();
    push(&registry, "team-a/over-tags", &small, &six).await;
    push(&registry, "team-a/near-tags", &small, &six[..4]).await;
    push(&registry, "team-a/ok", &small, &six[..1]).await;
    push(&registry, "team-a/big", &small, &["small"]).await;
    push(&registry, "team-a/big", &big, &["large"]).await;
    push(&registry, "team-a/near-size", &near_size, &["v1"]).await;
    let ten = tags(10);
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    push(&registry, "other/full", &small, &ten).await;
    push(&registry, "other/few", &small, &ten[..3]).await;
    push_index(&registry, "other/multi", &children, "latest").await;

    let near_percent = size(&near_size) * 100 / TEAM_SIZE;
    assert!((80..100).contains(&near_percent), "{near_percent}");
    let near_note = format!("image size at {near_percent}% of the limit");
    let small_size = size(&small);
    #[rustfmt::skip]
    let expected = json!([
        entry("over", "team-a/big", 2, 5, Some(("large", size(&big))), TEAM_SIZE, RULE, Some("image size over the limit")),
        entry("over", "team-a/over-tags", 6, 5, Some(("v1", small_size)), TEAM_SIZE, RULE, Some("tag count over the limit")),
        entry("near", "other/full", 10, 10, Some(("v1", small_size)), GLOBAL_SIZE, "global", Some("tag count at 100% of the limit")),
        entry("near", "team-a/near-size", 1, 5, Some(("v1", size(&near_size))), TEAM_SIZE, RULE, Some(&near_note)),
        entry("near", "team-a/near-tags", 4, 5, Some(("v1", small_size)), TEAM_SIZE, RULE, Some("tag count at 80% of the limit")),
        entry("ok", "other/few", 3, 10, Some(("v1", small_size)), GLOBAL_SIZE, "global", None),
        entry("ok", "team-a/ok", 1, 5, Some(("v1", small_size)), TEAM_SIZE, RULE, None),
        entry("ok", "other/multi", 1, 10, Some(("latest", size(&children[1]))), GLOBAL_SIZE, "global", None),
    ]);
    // Within a group, by fraction: team-a/ok holds 20% of its tags, other/multi 19% of its size.
    // The index is the largest of its children; the big image beats the small one.
    assert!(size(&big) > TEAM_SIZE && size(&children[1]) > size(&children[0]));

    let upstream = registry.base_url();
    let (code, out, err) = report(CONFIG, &upstream, &["--format", "json"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "nothing on stderr when it is not a terminal");
    let got: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(got, expected, "{out}");

    // CSV: the same rows, in the same order, with the JSON keys as header.
    let (code, out, err) = report(
        CONFIG,
        &upstream,
        &["--format", "csv", "--concurrency", "1"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "status,repository,tags,tag_limit,largest_image_tag,largest_image_bytes,size_limit_bytes,rule,note"
    );
    assert_eq!(
        lines.len(),
        8 + 2,
        "header, 8 rows, empty after the last CRLF: {out:?}"
    );
    assert_eq!(lines[9], "");
    for (line, entry) in lines[1..9].iter().zip(expected.as_array().expect("array")) {
        let field = |key: &str| match &entry[key] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let want = [
            "status",
            "repository",
            "tags",
            "tag_limit",
            "largest_image_tag",
            "largest_image_bytes",
            "size_limit_bytes",
            "rule",
            "note",
        ]
        .map(field)
        .join(",");
        assert_eq!(*line, want);
    }

    // Table: header and columns; sizes as the refusals print them.
    let (code, out, err) = report(CONFIG, &upstream, &[], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        lines[0],
        [
            "STATUS",
            "REPOSITORY",
            "TAGS",
            "TAG LIMIT",
            "LARGEST",
            "SIZE",
            "SIZE LIMIT",
            "RULE",
            "NOTE"
        ]
    );
    let big_size = ByteSize::new(size(&big)).to_string();
    assert_eq!(
        lines[1],
        [
            "over",
            "team-a/big",
            "2",
            "5",
            "large",
            &big_size,
            "100 KiB",
            RULE,
            "image size over the limit"
        ]
    );
    let multi = ByteSize::new(size(&children[1])).to_string();
    assert_eq!(
        lines[8],
        [
            "ok",
            "other/multi",
            "1",
            "10",
            "latest",
            &multi,
            "1 MiB",
            "global"
        ]
    );
    let names: Vec<&str> = lines[1..].iter().map(|l| l[1]).collect();
    let expected_names: Vec<&str> = expected
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["repository"].as_str().expect("name"))
        .collect();
    assert_eq!(names, expected_names);
    let header = out.lines().next().expect("header");
    let first = out.lines().nth(1).expect("first row");
    assert_eq!(
        header.find("REPOSITORY"),
        first.find("team-a/big"),
        "columns aligned:\n{out}"
    );

    // --near 100: only a repository at a limit stays near.
    let (_, out, _) = report(
        CONFIG,
        &upstream,
        &["--format", "json", "--near", "100"],
        &[],
    );
    let got: Value = serde_json::from_str(&out).expect("JSON output");
    let near: Vec<&str> = got
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["status"] == "near")
        .map(|e| e["repository"].as_str().expect("name"))
        .collect();
    assert_eq!(near, ["other/full"]);

    // --fail-on: 3 when a repository is over (or near); 0 when none is.
    let (code, _, _) = report(
        CONFIG,
        &upstream,
        &["--format", "csv", "--fail-on", "over"],
        &[],
    );
    assert_eq!(code, 3);
    let relaxed = "max_image_size: \"1GB\"\ntag_count_limit: \"20\"\n";
    let (code, _, err) = report(relaxed, &upstream, &["--fail-on", "over"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = report(relaxed, &upstream, &["--fail-on", "near"], &[]);
    assert_eq!(code, 0);
    let tight = "max_image_size: \"1GB\"\ntag_count_limit: \"12\"\n";
    let (code, _, _) = report(tight, &upstream, &["--fail-on", "near"], &[]);
    assert_eq!(code, 3, "other/full holds 10 of 12 tags");
}

/// Two repositories, one over its tag limit, read with the registry's credentials.
async fn check_with_credentials(registry: &Registry) {
    let small = TestImage::new(&[1000], 7);
    push(
        registry,
        "team-a/app",
        &small,
        &["v1", "v2", "v3", "v4", "v5", "v6"],
    )
    .await;
    push(registry, "other/app", &small, &["v1"]).await;
    let user = registry.user().expect("a user");
    let upstream = registry.base_url();
    #[rustfmt::skip]
    let expected = json!([
        entry("over", "team-a/app", 6, 5, Some(("v1", size(&small))), TEAM_SIZE, RULE, Some("tag count over the limit")),
        entry("ok", "other/app", 1, 10, Some(("v1", size(&small))), GLOBAL_SIZE, "global", None),
    ]);

    // From the environment.
    let envs = [
        ("REGISTRY_GATEWAY_REPORT_USERNAME", user.username.as_str()),
        ("REGISTRY_GATEWAY_REPORT_PASSWORD", user.password.as_str()),
    ];
    let (code, out, err) = report(CONFIG, &upstream, &["--format", "json"], &envs);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("JSON"), expected);

    // From a directory laid out like the Secret.
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("username"), format!("{}\n", user.username)).expect("write");
    std::fs::write(dir.path().join("password"), format!("{}\n", user.password)).expect("write");
    let credentials_dir = dir.path().to_string_lossy().into_owned();
    let (code, out, err) = report(
        CONFIG,
        &upstream,
        &["--format", "json", "--credentials-dir", &credentials_dir],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("JSON"), expected);

    // Without credentials, or with a wrong password, the catalog cannot be read: exit 1.
    let wrong = [
        ("REGISTRY_GATEWAY_REPORT_USERNAME", user.username.as_str()),
        ("REGISTRY_GATEWAY_REPORT_PASSWORD", "wrong-password"),
    ];
    for envs in [&[][..], &wrong[..]] {
        let (code, out, err) = report(CONFIG, &upstream, &[], envs);
        assert_eq!(code, 1, "{out}");
        assert_eq!(out, "");
        assert!(
            err.starts_with("error: cannot read the catalog of ") && err.contains("refused"),
            "{err}"
        );
        assert!(!err.contains("wrong-password"), "{err}");
    }
}

#[tokio::test]
async fn report_with_basic_credentials() {
    check_with_credentials(&Registry::basic()).await;
}

#[tokio::test]
async fn report_with_token_credentials() {
    check_with_credentials(&Registry::token()).await;
}

/// What a real registry will not do on demand: a tag list that fails with 500. The repository
/// is reported as an error and the others are still read; exit 0.
#[test]
fn a_repository_that_cannot_be_read_is_an_error_row() {
    let server = FakeServer::start(|request, _| match request.path() {
        "/v2/_catalog" => Reply::json(200, r#"{"repositories": ["other/empty", "other/broken"]}"#),
        "/v2/other/empty/tags/list" => Reply::json(200, r#"{"name": "other/empty", "tags": []}"#),
        "/v2/other/broken/tags/list" => Reply::error(500, "UNKNOWN", "disk on fire"),
        _ => Reply::status(404),
    });
    let (code, out, err) = report(CONFIG, &server.url(), &["--format", "json"], &[]);
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(got[0]["repository"], "other/broken");
    assert_eq!(got[0]["status"], "error");
    assert_eq!(got[0]["tags"], Value::Null);
    assert_eq!(got[0]["rule"], "global");
    let note = got[0]["note"].as_str().expect("note");
    assert!(
        note.contains("500") && note.contains("other/broken"),
        "{note}"
    );
    assert_eq!(
        got[1],
        entry(
            "ok",
            "other/empty",
            0,
            10,
            None,
            GLOBAL_SIZE,
            "global",
            None
        )
    );

    // A catalog that fails is an error of the whole command.
    let server = FakeServer::start(|_, _| Reply::error(503, "UNAVAILABLE", "maintenance"));
    let (code, out, err) = report(CONFIG, &server.url(), &[], &[]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("cannot read the catalog") && err.contains("503"),
        "{err}"
    );
}

#[test]
fn every_report_flag_has_an_environment_variable() {
    let (flags, envs, out) = crate::support::flags_and_variables("report");
    assert!(flags >= 12, "{out}");
    assert_eq!(flags, envs, "{out}");
}
