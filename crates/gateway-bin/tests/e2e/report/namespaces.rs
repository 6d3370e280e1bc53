//! `registry-gateway report --namespaces` against Debian's `docker-registry` filled with
//! skopeo: each namespace's usage, counted as the gateway's inventory counts it, against its
//! namespace quota and its repositories' `image_count_limit`, in each output format; and the
//! same numbers on a gateway's `/metrics` with `--namespace-usage-metrics`.

use serde_json::{Value, json};
use testkit::{FakeServer, Registry, Reply, TestImage};

use super::report;
use crate::inventory::{stored, usage};
use crate::support::Gateway;

const KB: u64 = 1024;

const CONFIG: &str = r#"
rules: |
  - path: ^team-c/
    limit:
      max_image_size: "1GB"
      tag_count_limit: "100"
      image_count_limit: "1"
namespace_quotas: |
  - namespace: ^team-a$
    hard: {repositories: "2", images: "10", tags: "10", storage: "1MB"}
  - namespace: ^team-b$
    hard: {tags: "4"}
  - namespace: ^team-d$
    hard: {storage: "100KB"}
"#;

/// One expected JSON entry: status, namespace, (held, limit) of repositories, images, tags and
/// storage, the quota and the note.
fn entry(
    status: &str,
    namespace: &str,
    held: [u64; 4],
    limits: [Option<u64>; 4],
    quota: Option<&str>,
    note: Option<&str>,
) -> Value {
    json!({
        "status": status,
        "namespace": namespace,
        "repositories": held[0],
        "repository_limit": limits[0],
        "images": held[1],
        "image_limit": limits[1],
        "tags": held[2],
        "tag_limit": limits[2],
        "storage_bytes": held[3],
        "storage_limit_bytes": limits[3],
        "quota": quota,
        "note": note,
    })
}

#[tokio::test]
async fn report_namespaces_counts_as_the_inventory_against_the_quotas() {
    let registry = Registry::anonymous();
    let a = TestImage::new(&[4 * KB, 8 * KB], 901);
    let b = TestImage::new(&[6 * KB], 902);
    let c = TestImage::new(&[5 * KB], 903);
    let d = TestImage::new(&[3 * KB], 904);
    let e = TestImage::new(&[2 * KB], 905);
    let f = TestImage::new(&[2 * KB], 906);
    let big = TestImage::new(&[93 * KB], 907);
    // team-a: three repositories (one over its quota of 2), image a stored once for two.
    registry.push(&a, "team-a/app", "v1").await;
    registry.push(&b, "team-a/app", "v2").await;
    registry.push(&a, "team-a/tools/app", "v1").await;
    registry.push(&c, "team-a/web", "v1").await;
    // team-b: four tags of its quota of 4.
    for tag in ["v1", "v2", "v3", "v4"] {
        registry.push(&d, "team-b/app", tag).await;
    }
    // team-c: no quota, but two images in a repository limited to one.
    registry.push(&e, "team-c/app", "v1").await;
    registry.push(&f, "team-c/app", "v2").await;
    // team-d: storage near its 100 KiB.
    registry.push(&big, "team-d/app", "v1").await;
    // other: no quota; ubuntu: no namespace, not listed.
    registry.push(&a, "other/app", "v1").await;
    registry.push(&a, "ubuntu", "latest").await;

    let team_a_storage = stored(&a) + stored(&b) + stored(&c);
    let team_d_percent = stored(&big) * 100 / (100 * KB);
    assert!((90..100).contains(&team_d_percent), "{team_d_percent}");
    let team_d_note = format!("storage at {team_d_percent}% of the quota");
    #[rustfmt::skip]
    let expected = json!([
        entry("over", "team-c", [1, 2, 2, stored(&e) + stored(&f)], [None; 4], None,
              Some("team-c/app: 2 images over its image_count_limit of 1 (rule 1: ^team-c/)")),
        entry("over", "team-a", [3, 4, 4, team_a_storage], [Some(2), Some(10), Some(10), Some(1 << 20)],
              Some("namespace quota 1: ^team-a$"), Some("repositories over the quota")),
        entry("near", "team-b", [1, 1, 4, stored(&d)], [None, None, Some(4), None],
              Some("namespace quota 2: ^team-b$"), Some("tags at 100% of the quota")),
        entry("near", "team-d", [1, 1, 1, stored(&big)], [None, None, None, Some(100 * KB)],
              Some("namespace quota 3: ^team-d$"), Some(&team_d_note)),
        entry("ok", "other", [1, 1, 1, stored(&a)], [None; 4], None, None),
    ]);

    let upstream = registry.base_url();
    let (code, out, err) = report(
        CONFIG,
        &upstream,
        &["--namespaces", "--format", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "nothing on stderr when it is not a terminal");
    let got: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(got, expected, "{out}");

    // CSV: the same rows with the JSON keys as header.
    let (code, out, err) = report(CONFIG, &upstream, &["--namespaces", "--format", "csv"], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "status,namespace,repositories,repository_limit,images,image_limit,tags,tag_limit,storage_bytes,storage_limit_bytes,quota,note"
    );
    assert_eq!(lines.len(), 5 + 2, "{out:?}");
    assert_eq!(
        lines[2],
        format!(
            "over,team-a,3,2,4,10,4,10,{team_a_storage},1048576,namespace quota 1: ^team-a$,repositories over the quota"
        )
    );

    // Table: columns aligned, limits as the configuration reads.
    let (code, out, err) = report(CONFIG, &upstream, &["--namespaces"], &[]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        [
            "STATUS",
            "NAMESPACE",
            "REPOS",
            "REPO LIMIT",
            "IMAGES",
            "IMAGE LIMIT",
            "TAGS",
            "TAG LIMIT",
            "STORAGE",
            "STORAGE LIMIT",
            "QUOTA",
            "NOTE"
        ]
    );
    let storage = limits_core::ByteSize::new(team_a_storage).to_string();
    assert_eq!(
        rows[2],
        [
            "over",
            "team-a",
            "3",
            "2",
            "4",
            "10",
            "4",
            "10",
            &storage,
            "1 MiB",
            "namespace quota 1: ^team-a$",
            "repositories over the quota"
        ]
    );
    let names: Vec<&str> = rows[1..].iter().map(|r| r[1]).collect();
    assert_eq!(names, ["team-c", "team-a", "team-b", "team-d", "other"]);

    // --near 100: only what is at a limit stays near; --fail-on as for repositories.
    let (_, out, _) = report(
        CONFIG,
        &upstream,
        &["--namespaces", "--format", "json", "--near", "100"],
        &[],
    );
    let got: Value = serde_json::from_str(&out).expect("JSON output");
    let near: Vec<&str> = got
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["status"] == "near")
        .map(|e| e["namespace"].as_str().expect("name"))
        .collect();
    assert_eq!(near, ["team-b"]);
    let (code, _, _) = report(
        CONFIG,
        &upstream,
        &["--namespaces", "--fail-on", "over"],
        &[],
    );
    assert_eq!(code, 3);
    let relaxed = "namespace_quotas:\n- namespace: ^team-b$\n  hard: {tags: \"5\"}\n";
    let (code, _, err) = report(
        relaxed,
        &upstream,
        &["--namespaces", "--fail-on", "near"],
        &[],
    );
    assert_eq!(code, 0, "team-b holds 4 of 5 tags, 80% < 90%: {err}");
    let (code, _, _) = report(
        relaxed,
        &upstream,
        &["--namespaces", "--fail-on", "near", "--near", "80"],
        &[],
    );
    assert_eq!(code, 3);

    // A gateway in front of the same registry counts alike, and exports it on /metrics.
    let gateway = Gateway::builder(registry.base_url())
        .config(CONFIG)
        .arg("--namespace-usage-metrics")
        .start();
    assert_eq!(usage(&gateway, "team-a"), (3, 4, 4, team_a_storage));
    assert_eq!(usage(&gateway, "team-c").1, 2);
    // A namespace the registry does not hold adds no series.
    assert_eq!(usage(&gateway, "ghost"), (0, 0, 0, 0));
    let metrics = gateway.metrics();
    let mut samples: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("registry_gateway_namespace_"))
        .collect();
    samples.sort_unstable();
    let team_c_storage = stored(&e) + stored(&f);
    assert_eq!(
        samples,
        [
            "registry_gateway_namespace_quota{namespace=\"team-a\",kind=\"images\"} 10".to_owned(),
            "registry_gateway_namespace_quota{namespace=\"team-a\",kind=\"repositories\"} 2"
                .to_owned(),
            "registry_gateway_namespace_quota{namespace=\"team-a\",kind=\"storage\"} 1048576"
                .to_owned(),
            "registry_gateway_namespace_quota{namespace=\"team-a\",kind=\"tags\"} 10".to_owned(),
            "registry_gateway_namespace_usage{namespace=\"team-a\",kind=\"images\"} 4".to_owned(),
            "registry_gateway_namespace_usage{namespace=\"team-a\",kind=\"repositories\"} 3"
                .to_owned(),
            format!(
                "registry_gateway_namespace_usage{{namespace=\"team-a\",kind=\"storage\"}} {team_a_storage}"
            ),
            "registry_gateway_namespace_usage{namespace=\"team-a\",kind=\"tags\"} 4".to_owned(),
            "registry_gateway_namespace_usage{namespace=\"team-c\",kind=\"images\"} 2".to_owned(),
            "registry_gateway_namespace_usage{namespace=\"team-c\",kind=\"repositories\"} 1"
                .to_owned(),
            format!(
                "registry_gateway_namespace_usage{{namespace=\"team-c\",kind=\"storage\"}} {team_c_storage}"
            ),
            "registry_gateway_namespace_usage{namespace=\"team-c\",kind=\"tags\"} 2".to_owned(),
        ],
        "{metrics}"
    );

    // Off by default.
    let plain = Gateway::builder(registry.base_url()).config(CONFIG).start();
    assert_eq!(usage(&plain, "team-a"), (3, 4, 4, team_a_storage));
    let metrics = plain.metrics();
    assert!(
        !metrics.contains("registry_gateway_namespace_"),
        "{metrics}"
    );
    assert!(
        metrics.contains("registry_gateway_inventory_repositories 3"),
        "{metrics}"
    );
}

/// What a real registry will not do on demand: a tag list that fails with 500. The namespace is
/// an error row with the registry's answer; the others are still read; exit 0.
#[test]
fn a_namespace_that_cannot_be_read_is_an_error_row() {
    let server = FakeServer::start(|request, _| match request.path() {
        "/v2/_catalog" => Reply::json(
            200,
            r#"{"repositories": ["team-a/empty", "team-b/broken", "lonely"]}"#,
        ),
        "/v2/team-a/empty/tags/list" => Reply::json(200, r#"{"name": "team-a/empty", "tags": []}"#),
        "/v2/team-b/broken/tags/list" => Reply::error(500, "UNKNOWN", "disk on fire"),
        _ => Reply::status(404),
    });
    let (code, out, err) = report(
        CONFIG,
        &server.url(),
        &["--namespaces", "--format", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(got.as_array().map(Vec::len), Some(2), "{out}");
    assert_eq!(got[0]["namespace"], "team-b");
    assert_eq!(got[0]["status"], "error");
    assert_eq!(got[0]["tags"], Value::Null);
    assert_eq!(got[0]["quota"], "namespace quota 2: ^team-b$");
    let note = got[0]["note"].as_str().expect("note");
    assert!(
        note.contains("500") && note.contains("team-b/broken"),
        "{note}"
    );
    assert_eq!(
        got[1],
        entry(
            "ok",
            "team-a",
            [0, 0, 0, 0],
            [Some(2), Some(10), Some(10), Some(1 << 20)],
            Some("namespace quota 1: ^team-a$"),
            None
        )
    );

    // A catalog that fails is an error of the whole command.
    let server = FakeServer::start(|_, _| Reply::error(503, "UNAVAILABLE", "maintenance"));
    let (code, out, err) = report(CONFIG, &server.url(), &["--namespaces"], &[]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("cannot read the catalog") && err.contains("503"),
        "{err}"
    );
}
