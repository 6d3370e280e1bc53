//! `export registry-v2` and `import registry-v2`: the seed's examples round-trip through the
//! binary, and the namespaces in use come from a real registry's catalog.

use std::path::{Path, PathBuf};

use testkit::{Registry, TestImage};

use crate::support::run;

fn seed(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/limits-core/tests/it/seeds")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn seed_example_exports_and_imports_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, exported, err) = run(&[
        "export",
        "registry-v2",
        "--config",
        &seed("additional-examples.yaml"),
        "--namespaces",
        "project-1,project-2,other,project-1",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        exported.matches("# namespace project-1:").count(),
        1,
        "a namespace given twice is exported once:\n{exported}"
    );
    for line in [
        "# Namespaces: given with --namespaces.",
        "# namespace project-1: rule 1: ^project-1/.*",
        "# INEXACT: rule 2 (^project-2/big-image/.*) gives some repositories of namespace project-2",
        "# namespace other: global limit",
        "        storage: 20Mi",
        "        storage: 100Mi",
        "        alauda.io/image-tags: \"3\"",
    ] {
        assert!(exported.contains(line), "missing {line:?} in:\n{exported}");
    }
    let file = write(dir.path(), "limitranges.yaml", &exported);
    let (ok, imported, err) = run(&["import", "registry-v2", &file.to_string_lossy()]);
    assert!(ok, "{err}");
    let config = write(dir.path(), "imported.yaml", &imported);
    let config = config.to_string_lossy();
    let (ok, out, err) = run(&["check-config", &config]);
    assert!(ok, "{err}\n{imported}");
    assert!(
        out.contains("global limits: max_image_size unlimited, tag_count_limit unlimited"),
        "{out}"
    );
    for (repository, size, tags) in [
        ("project-1/app", "20 MiB (20971520 bytes)", "3"),
        ("project-2/app", "50 MiB (52428800 bytes)", "10"),
        ("other/app", "100 MiB (104857600 bytes)", "100"),
    ] {
        let (ok, out, err) = run(&["explain", "--config", &config, repository]);
        assert!(ok, "{err}");
        assert!(
            out.contains(&format!("max_image_size: {size}")),
            "{repository}: {out}"
        );
        assert!(
            out.contains(&format!("tag_count_limit: {tags}\n")),
            "{repository}: {out}"
        );
    }
    let (ok, _, err) = run(&["import", "registry-v2", "/nonexistent/limits.yaml"]);
    assert!(!ok);
    assert!(
        err.contains("cannot read /nonexistent/limits.yaml"),
        "{err}"
    );
}

#[tokio::test]
async fn namespaces_come_from_the_registry_catalog() {
    let registry = Registry::anonymous();
    let image = TestImage::new(&[64], 61);
    for repository in ["project-1/app", "team-a/web", "team-a/api", "bare"] {
        registry.push(&image, repository, "v1").await;
    }
    let url = registry.base_url().to_string();
    let (ok, out, err) = run(&[
        "export",
        "registry-v2",
        "--config",
        &seed("path-rules.yaml"),
        "--upstream",
        &url,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("(4 repositories)"), "{out}");
    assert!(
        out.contains("INEXACT: repositories without a namespace get no LimitRange: bare"),
        "{out}"
    );
    assert!(
        out.contains("# namespace project-1: rule 1: ^project-1/.*"),
        "{out}"
    );
    assert!(out.contains("# namespace team-a: global limit"), "{out}");
    assert_eq!(out.matches("kind: LimitRange").count(), 2, "{out}");
}
