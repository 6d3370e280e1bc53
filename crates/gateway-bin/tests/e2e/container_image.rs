//! The container image: `scripts/build-image.sh` puts the binary under test into the
//! Containerfile's final stage (FROM scratch, the loader and libraries it links to, the CA
//! bundle), a Docker engine of the test's own builds it and runs it as the Kubernetes
//! Deployment does (read-only root filesystem, no capabilities, no privilege escalation), with
//! a mounted ConfigMap directory, in front of a real registry named by a host name.

use std::time::{Duration, Instant};

use testkit::{DockerDaemon, Registry, TestImage};

use crate::support::{BIN, get, upstream_tags};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/build-image.sh");
const TAG: &str = "registry-gateway:e2e";
const NAME: &str = "registry-gateway-e2e";

/// Builds the image from the binary under test (a debug build: no second, release build).
async fn build_image(docker: &DockerDaemon) {
    let output = tokio::process::Command::new("bash")
        .arg(SCRIPT)
        .args(["--binary", BIN, "--tag", TAG])
        .envs(docker.envs())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run scripts/build-image.sh");
    assert!(
        output.status.success(),
        "scripts/build-image.sh failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `Uid:`, `Gid:` or `CapEff:` line of `/proc/<pid>/status`, without its name.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(|rest| rest.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::test]
async fn the_container_image_runs_read_only_as_65532_and_enforces_the_limits() {
    let docker = DockerDaemon::start();
    build_image(&docker).await;
    let image = docker
        .run(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}",
            TAG,
        ])
        .await;
    image.assert_success();
    assert_eq!(
        image.stdout.trim(),
        r#"65532:65532 ["/usr/local/bin/registry-gateway"] ["serve"]"#
    );

    // The limits as Kubernetes mounts a ConfigMap: one file per key, where the image looks.
    let config = tempfile::tempdir().expect("temporary directory");
    std::fs::write(config.path().join("max_image_size"), "1MB").expect("write");
    std::fs::write(config.path().join("tag_count_limit"), "2").expect("write");
    let mount = format!(
        "{}:/etc/registry-gateway/config:ro",
        config.path().display()
    );

    // Another subcommand, as `kubectl exec ... registry-gateway check-config` runs it.
    let check = docker
        .run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "-v",
            &mount,
            TAG,
            "check-config",
        ])
        .await;
    check.assert_success();
    assert!(
        check
            .stdout
            .contains("configuration /etc/registry-gateway/config: valid")
            && check.stdout.contains("tag_count_limit 2"),
        "{}",
        check.stdout
    );

    // serve, in front of a registry reached through a host name of /etc/hosts.
    let registry = Registry::anonymous();
    let (port, admin_port) = (testkit::free_port(), testkit::free_port());
    let upstream = format!(
        "REGISTRY_GATEWAY_UPSTREAM=http://registry.test:{}",
        registry.port()
    );
    let listen = format!("REGISTRY_GATEWAY_LISTEN=127.0.0.1:{port}");
    let admin = format!("REGISTRY_GATEWAY_ADMIN_LISTEN=127.0.0.1:{admin_port}");
    #[rustfmt::skip]
    let run = docker
        .run(&[
            "run", "--detach", "--name", NAME,
            "--network", "host", "--add-host", "registry.test:127.0.0.1",
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-v", &mount, "-e", &upstream, "-e", &listen, "-e", &admin,
            TAG,
        ])
        .await;
    run.assert_success();

    // Ready: the configuration loaded and the registry answers through its name.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(admin_port, "/readyz").map(|(status, _)| status) != Some(200) {
        if Instant::now() > deadline {
            let state = docker
                .run(&["inspect", "--format", "{{json .State}}", NAME])
                .await;
            let logs = docker.run(&["logs", NAME]).await;
            panic!(
                "the container is not ready after 20 s: /readyz {:?}\nstate: {}\nlogs:\n{}{}",
                get(admin_port, "/readyz"),
                state.stdout,
                logs.stdout,
                logs.stderr
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The process runs as 65532, without capabilities, on a read-only root filesystem.
    let inspect = docker
        .run(&[
            "inspect",
            "--format",
            "{{.State.Pid}} {{.HostConfig.ReadonlyRootfs}}",
            NAME,
        ])
        .await;
    inspect.assert_success();
    let (pid, read_only) = inspect
        .stdout
        .trim()
        .split_once(' ')
        .expect("pid and read-only flag");
    assert_eq!(read_only, "true");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    assert!(
        status.contains("Name:\tregistry-gatewa"),
        "pid {pid} is not the gateway:\n{status}"
    );
    assert_eq!(status_field(&status, "Uid:"), "65532 65532 65532 65532");
    assert_eq!(status_field(&status, "Gid:"), "65532 65532 65532 65532");
    assert_eq!(status_field(&status, "CapEff:"), "0000000000000000");

    // It enforces the limits: an allowed push goes through, one over the size limit is refused
    // with the gateway's message.
    let host = format!("127.0.0.1:{port}");
    let allowed = TestImage::new(&[300 * 1024], 70);
    testkit::skopeo_push(&host, &allowed, "image/app", "v1", &[], None)
        .await
        .assert_success();
    let too_big = TestImage::new(&[600 * 1024, 600 * 1024], 71);
    let refused = testkit::skopeo_push(&host, &too_big, "image/app", "v2", &[], None).await;
    refused.assert_failure();
    let measured = too_big.layer_total() + too_big.config().size();
    assert!(
        refused.stderr.contains("denied: image size ")
            && refused
                .stderr
                .contains(&format!("({measured} bytes) exceeds the limit of "))
            && refused
                .stderr
                .contains("for repository image/app (global limit)"),
        "{}",
        refused.stderr
    );
    assert_eq!(upstream_tags(&registry, "image/app").await, vec!["v1"]);
    let logs = docker.run(&["logs", NAME]).await;
    assert!(
        logs.stdout.contains(r#"verdict="denied""#) || logs.stderr.contains(r#"verdict="denied""#),
        "no decision logged:\n{}{}",
        logs.stdout,
        logs.stderr
    );

    // `docker stop` sends SIGTERM to the gateway, process 1 of the container: it exits 0.
    docker.run(&["stop", NAME]).await.assert_success();
    let exit = docker
        .run(&["inspect", "--format", "{{.State.ExitCode}}", NAME])
        .await;
    assert_eq!(exit.stdout.trim(), "0", "{}", exit.stderr);
    docker.run(&["rm", NAME]).await.assert_success();
}
