//! `check-config`, `explain`, start-up on an invalid configuration, and every configuration
//! example in the docs.

use std::path::{Path, PathBuf};

use crate::support::run;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed examples of the product this gateway replaces.
fn seed(name: &str) -> String {
    repo_root()
        .join("crates/limits-core/tests/it/seeds")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn check_config_prints_the_effective_limits() {
    let (ok, out, err) = run(&["check-config", &seed("additional-examples.yaml")]);
    assert!(ok, "{err}");
    let expected = [
        "global limits: max_image_size 100 MiB (104857600 bytes), tag_count_limit 100",
        "rules (first match wins):",
        "  1. ^project-1/.*  max_image_size 20 MiB (20971520 bytes), tag_count_limit 3",
        "  2. ^project-2/big-image/.*  max_image_size 5 GiB (5368709120 bytes), tag_count_limit 200",
        "  3. ^project-2/.*  max_image_size 50 MiB (52428800 bytes), tag_count_limit 10",
    ];
    for line in expected {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    for name in ["global-limits.yaml", "path-rules.yaml"] {
        let (ok, _, err) = run(&["check-config", &seed(name)]);
        assert!(ok, "{name}: {err}");
    }
}

#[test]
fn check_config_and_explain_show_protections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("limits.yaml");
    std::fs::write(
        &path,
        "read_only: \"false\"\nimmutable_tags: ['^v[0-9]+\\.']\nrules:\n  - path: ^frozen/\n    read_only: true\n    exempt_signature_tags: false\n    limit: {max_image_size: 1GB, tag_count_limit: 10}\n",
    )
    .expect("write config");
    let path = path.to_string_lossy().into_owned();
    let (ok, out, err) = run(&["check-config", &path]);
    assert!(ok, "{err}");
    for line in [
        "global protections: read_only false, immutable_tags [^v[0-9]+\\.]",
        "     read_only true, exempt_signature_tags false",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let (ok, out, err) = run(&["explain", "--config", &path, "frozen/app"]);
    assert!(ok, "{err}");
    for line in [
        "read_only: true (rule 1: ^frozen/)",
        "immutable_tags: ^v[0-9]+\\. (global)",
        "exempt_signature_tags: false (rule 1: ^frozen/)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let (ok, out, _) = run(&["explain", "--config", &path, "other/app"]);
    assert!(ok);
    assert!(out.contains("read_only: false (global)"), "{out}");
    assert!(
        out.contains("exempt_signature_tags: true (global)"),
        "{out}"
    );
}

/// `image_count_limit` and `namespace_quotas` are shown, with the namespace a repository
/// falls in, by `check-config` and `explain`. (They once came with a note that they were not
/// enforced yet, then that they were enforced per process only; both notes went when the
/// enforcement they announced arrived, the second with the inventory shared through Redis.)
#[test]
fn check_config_and_explain_show_image_counts_and_namespace_quotas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("limits.yaml");
    std::fs::write(
        &path,
        "max_image_size: 1GB\ntag_count_limit: \"10\"\nrules:\n  - path: ^team-a/\n    limit: {max_image_size: 1GB, tag_count_limit: 10, image_count_limit: 5}\nnamespace_quotas: |\n  - namespace: ^team-a$\n    hard: {repositories: \"20\", storage: 50GB}\n",
    )
    .expect("write config");
    let path = path.to_string_lossy().into_owned();
    let (ok, out, err) = run(&["check-config", &path]);
    assert!(ok, "{err}");
    for line in [
        "  1. ^team-a/  max_image_size 1 GiB (1073741824 bytes), tag_count_limit 10, image_count_limit 5",
        "  1. ^team-a$  repositories 20, storage 50 GiB",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let (ok, out, err) = run(&["explain", "--config", &path, "team-a/tools/app"]);
    assert!(ok, "{err}");
    for line in [
        "image_count_limit: 5",
        "namespace quota: repositories 20, storage 50 GiB for namespace team-a (namespace quota 1: ^team-a$; enforcement deny)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(!out.contains("note:"), "{out}");
    let (ok, out, _) = run(&["explain", "--config", &path, "app"]);
    assert!(ok);
    assert!(out.contains("image_count_limit: unlimited"), "{out}");
    assert!(
        out.contains("namespace quota: none (app has no namespace: no `/` in its name)"),
        "{out}"
    );
    let (ok, out, _) = run(&["explain", "--config", &path, "team-b/app"]);
    assert!(ok);
    assert!(
        out.contains("namespace quota: none (no entry of namespace_quotas matches team-b)"),
        "{out}"
    );
    // A repository outside any namespace has its images counted all the same.
    std::fs::write(
        dir.path().join("global.yaml"),
        "max_image_size: 1GB\ntag_count_limit: \"1\"\nimage_count_limit: \"3\"\n",
    )
    .expect("write config");
    let global = dir
        .path()
        .join("global.yaml")
        .to_string_lossy()
        .into_owned();
    let (ok, out, _) = run(&["explain", "--config", &global, "app"]);
    assert!(ok);
    assert!(out.contains("image_count_limit: 3\n"), "{out}");
    assert!(!out.contains("not counted"), "{out}");
    let (ok, out, _) = run(&["explain", "--config", &global, "team/app"]);
    assert!(ok);
    assert!(out.contains("image_count_limit: 3\n"), "{out}");
}

#[test]
fn check_config_and_explain_show_the_delete_opt_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("limits.yaml");
    std::fs::write(
        &path,
        "immutable_tags: ['^v[0-9]+\\.']\nrules:\n  - path: ^open/\n    allow_deleting_immutable_tags: true\n    limit: {max_image_size: 1GB, tag_count_limit: 10}\n",
    )
    .expect("write config");
    let path = path.to_string_lossy().into_owned();
    let (ok, out, err) = run(&["check-config", &path]);
    assert!(ok, "{err}");
    assert!(
        out.contains("     allow_deleting_immutable_tags true"),
        "missing the rule's key in:\n{out}"
    );
    for (repository, line) in [
        (
            "open/app",
            "allow_deleting_immutable_tags: true (rule 1: ^open/)",
        ),
        ("other/app", "allow_deleting_immutable_tags: false (global)"),
    ] {
        let (ok, out, err) = run(&["explain", "--config", &path, repository]);
        assert!(ok, "{err}");
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    std::fs::write(
        dir.path().join("bad.yaml"),
        "allow_deleting_immutable_tags: maybe\n",
    )
    .expect("write config");
    let bad = dir.path().join("bad.yaml").to_string_lossy().into_owned();
    let (ok, _, err) = run(&["check-config", &bad]);
    assert!(!ok);
    assert!(
        err.contains("invalid allow_deleting_immutable_tags in the global limits: expected true or false, found the string \"maybe\""),
        "{err}"
    );
}

#[test]
fn explain_names_the_rule() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "project-1/app",
            "matched by: rule 1: ^project-1/.* (first match)",
            "max_image_size: 20 MiB (20971520 bytes)",
        ),
        (
            "project-2/big-image/base",
            "matched by: rule 2: ^project-2/big-image/.* (first match)",
            "tag_count_limit: 200",
        ),
        (
            "project-2/app",
            "matched by: rule 3: ^project-2/.* (first match)",
            "tag_count_limit: 10",
        ),
        (
            "other/app",
            "matched by: no rule; the global limits apply",
            "max_image_size: 100 MiB (104857600 bytes)",
        ),
    ];
    for (repository, rule, limit) in cases {
        let (ok, out, err) = run(&[
            "explain",
            "--config",
            &seed("additional-examples.yaml"),
            repository,
        ]);
        assert!(ok, "{err}");
        assert!(
            out.contains(rule) && out.contains(limit),
            "{repository}:\n{out}"
        );
    }
    let (ok, _, err) = run(&["explain", "--config", &seed("path-rules.yaml"), "Bad/Name"]);
    assert!(!ok);
    assert!(
        err.contains("invalid repository name \"Bad/Name\""),
        "{err}"
    );
}

#[test]
fn invalid_configuration_is_refused_at_start_and_by_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "max_image_size: 100MB\nrules:\n- path: ^a/\n  limit: {max_image_size: 1GB}\n",
    )
    .expect("write");
    let path = path.to_string_lossy().into_owned();
    let message = "missing key \"tag_count_limit\" in rule 1 (^a/): each rule must give both max_image_size and tag_count_limit";
    let (ok, _, err) = run(&["check-config", &path]);
    assert!(!ok);
    assert!(err.contains(message), "{err}");
    let (ok, _, err) = run(&[
        "serve",
        "--config",
        &path,
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(err.contains(message), "{err}");
}

/// `explain` takes an image reference as clients take it and says what it left out; a bare
/// repository name reads as itself.
#[test]
fn explain_reads_image_references() {
    let config = seed("additional-examples.yaml");
    let digest = format!("sha256:{}", "0".repeat(64));
    let by_digest = format!("registry.example.com/project-2/app@{digest}");
    let by_digest_line = format!(
        "repository: project-2/app (read from {by_digest}: host registry.example.com and digest {digest} left out)\n"
    );
    let cases = [
        (
            "localhost:5000/project-1/app:v1",
            "repository: project-1/app (read from localhost:5000/project-1/app:v1: host localhost:5000 and tag v1 left out)\n",
            "matched by: rule 1: ^project-1/.* (first match)",
        ),
        (
            "project-1/app:v1",
            "repository: project-1/app (read from project-1/app:v1: tag v1 left out)\n",
            "matched by: rule 1: ^project-1/.* (first match)",
        ),
        (
            &by_digest,
            &by_digest_line,
            "matched by: rule 3: ^project-2/.* (first match)",
        ),
        (
            "project-1/app",
            "repository: project-1/app\n",
            "matched by: rule 1: ^project-1/.* (first match)",
        ),
    ];
    for (reference, first, rule) in cases {
        let (ok, out, err) = run(&["explain", "--config", &config, reference]);
        assert!(ok, "{reference}: {err}");
        assert!(out.starts_with(first), "{reference}:\n{out}");
        assert!(out.contains(rule), "{reference}:\n{out}");
    }
    let (ok, _, err) = run(&[
        "explain",
        "--config",
        &config,
        "localhost:5000/Project-1/app:v1",
    ]);
    assert!(!ok);
    assert!(
        err.contains("localhost:5000/Project-1/app:v1 read as repository Project-1/app (host localhost:5000 and tag v1 left out): invalid repository name \"Project-1/app\""),
        "{err}"
    );
}

/// Every URL flag refuses a value without a scheme with the hint to add one, from the command
/// line or the environment.
#[test]
fn url_flags_without_a_scheme_say_to_add_one() {
    let config = seed("additional-examples.yaml");
    let serve = |flag: &'static str, value: &'static str| {
        let mut args = vec![
            "serve",
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ];
        if flag != "--upstream" {
            args.extend(["--upstream", "http://127.0.0.1:9"]);
        }
        args.extend([flag, value]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            owned(&[
                "report",
                "--config",
                &config,
                "--upstream",
                "127.0.0.1:5102",
            ]),
            "--upstream",
            "127.0.0.1:5102",
        ),
        (
            owned(&[
                "export",
                "registry-v2",
                "--config",
                &config,
                "--upstream",
                "registry.example.com",
            ]),
            "--upstream",
            "registry.example.com",
        ),
        (
            serve("--upstream", "localhost:5001"),
            "--upstream",
            "localhost:5001",
        ),
        (
            serve("--external-url", "harbor.example.com"),
            "--external-url",
            "harbor.example.com",
        ),
        (
            serve("--webhook-url", "127.0.0.1:8080/events"),
            "--webhook-url",
            "127.0.0.1:8080/events",
        ),
    ];
    for (args, flag, value) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = run(&args);
        assert!(!ok, "{args:?}");
        let hint = format!(
            "no scheme: add http:// or https:// (http://{value} for a plain-HTTP registry, https://{value} for TLS)"
        );
        assert!(err.contains(flag) && err.contains(&hint), "{args:?}: {err}");
        assert!(!err.contains("relative URL without a base"), "{err}");
    }
    let output = std::process::Command::new(crate::support::BIN)
        .args(["report", "--config", &config])
        .env("REGISTRY_GATEWAY_UPSTREAM", "127.0.0.1:5102")
        .output()
        .expect("run registry-gateway");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("no scheme: add http:// or https:// (http://127.0.0.1:5102"),
        "{err}"
    );
}

/// YAML errors give lines of the file: inside the ConfigMap's `rules: |` string (with the rule
/// they are in), for a repeated key, and in a mounted directory's `rules` file.
#[test]
fn configuration_errors_give_the_line_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let configmap = dir.path().join("configmap.yaml");
    std::fs::write(
        &configmap,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: registry-gateway-config\ndata:\n  max_image_size: \"100MB\"\n  rules: |\n    - path: ^project-1/.*\n      limit:\n        max_image_size: \"20MB\"\n        tag_count_limit: \"3\"\n    - path: ^project-2/.*\n      limit: {max_image_size: \"50MB\", tag_count_limit: \"10\"\n    - path: ^project-3/.*\n      limit: {max_image_size: \"50MB\", tag_count_limit: \"10\"}\n",
    )
    .expect("write");
    let twice = dir.path().join("twice.yaml");
    std::fs::write(
        &twice,
        "max_image_size: 100MB\ntag_count_limit: \"100\"\nmax_image_size: 1GB\n",
    )
    .expect("write");
    let mounted = dir.path().join("mounted");
    std::fs::create_dir(&mounted).expect("mkdir");
    std::fs::write(mounted.join("max_image_size"), "100MB").expect("write");
    std::fs::write(
        mounted.join("rules"),
        "- path: ^a/\n  limit: {max_image_size: 1GB, tag_count_limit: 1}\n- path: ^b/\n  path: ^c/\n",
    )
    .expect("write");
    let cases = [
        (
            configmap,
            "invalid YAML in rule 2 of rules: did not find expected ',' or '}' at line 14 column 5, while parsing a flow mapping at line 13 column 14",
        ),
        (
            twice,
            "invalid YAML in the configuration: duplicate entry with key \"max_image_size\" at line 3 column 1",
        ),
        (
            mounted,
            "invalid YAML in rule 2 of rules: duplicate entry with key \"path\" at line 4 column 3",
        ),
    ];
    for (path, message) in cases {
        let (ok, _, err) = run(&["check-config", &path.to_string_lossy()]);
        assert!(!ok, "{}", path.display());
        assert!(err.contains(message), "{}: {err}", path.display());
    }
}

/// A reserved tag must outlive any push that could still create it.
#[test]
fn a_reservation_window_shorter_than_a_push_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("limits.yaml");
    std::fs::write(&path, "tag_count_limit: 3\n").expect("write");
    let path = path.to_string_lossy().into_owned();
    let (ok, _, err) = run(&[
        "serve",
        "--config",
        &path,
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--recent-tag-window",
        "50s",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--recent-tag-window (50s) must be longer than --upstream-timeout (30s) plus --lease-wait (30s)"),
        "{err}"
    );
}

#[test]
fn every_flag_has_an_environment_variable() {
    let (flags, envs, out) = crate::support::flags_and_variables("serve");
    assert!(flags > 10, "{out}");
    assert_eq!(flags, envs, "{out}");
}

/// Every gateway configuration shown in the README, docs/ and deploy/ loads with
/// `check-config`, so the documents cannot drift from the code.
#[test]
fn documented_configurations_load() {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs"), root.join("deploy")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let blocks: Vec<String> = match file.extension().and_then(|e| e.to_str()) {
            Some("md") => yaml_blocks(&text),
            Some("yaml" | "yml") => text.split("\n---").map(str::to_owned).collect(),
            _ => continue,
        };
        for block in blocks.iter().filter(|b| is_gateway_config(b)) {
            let path = scratch.path().join(format!("example-{checked}.yaml"));
            std::fs::write(&path, block).expect("write example");
            let (ok, _, err) = run(&["check-config", &path.to_string_lossy()]);
            assert!(
                ok,
                "{} holds a configuration that does not load:\n{block}\n{err}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 1 || !root.join("docs").exists(),
        "no configuration examples found"
    );
}

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// A gateway configuration: the data keys, or the `registry-gateway-config` ConfigMap.
fn is_gateway_config(block: &str) -> bool {
    let is_configmap = block.contains("kind: ConfigMap");
    if is_configmap {
        return block.contains("registry-gateway-config");
    }
    !block.contains("kind:")
        && (block.contains("max_image_size:") || block.contains("tag_count_limit:"))
}
