//! The shipped Kubernetes Deployment (`deploy/kubernetes/base/deployment.yaml`), read as the
//! kubelet reads it: its container, started with its own arguments and environment, becomes
//! ready without Redis, and the commands the docs run in its pod (`kubectl exec
//! deploy/registry-gateway -- registry-gateway ...`) need nothing but that environment. The
//! pod's addresses are mapped to this machine: the mounted ConfigMap and Secret to directories
//! laid out like the mounts (one file per key), the registry to a real one. The TLS component's
//! patch is applied the same way, with its Secret mounted as the kubelet mounts it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_yaml::Value;
use testkit::{ManifestFormat, RawPusher, Registry, TestImage};

use crate::support::{BIN, eventually, get};
use crate::tls::{SecretMount, presented};

const BASE: &str = "deploy/kubernetes/base";
/// The patch of the component that turns TLS on.
const TLS_PATCH: &str = "deploy/kubernetes/components/tls/deployment-patch.yaml";
/// What the docs prefix a command run in the gateway's pod with.
const EXEC: &str = "deploy/registry-gateway -- registry-gateway ";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manifest(file: &str) -> Value {
    let path = repo_root().join(BASE).join(file);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The gateway's pod, its mounts and its registry on this machine.
struct Pod {
    container: Value,
    dir: tempfile::TempDir,
    registry: Registry,
}

impl Pod {
    fn new() -> Self {
        let deployment = manifest("deployment.yaml");
        let container = deployment["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .and_then(|c| c.iter().find(|c| c["name"] == "registry-gateway"))
            .expect("a container named registry-gateway")
            .clone();
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, file, field) in [
            ("config", "configmap.yaml", "data"),
            ("external", "secret.yaml", "stringData"),
        ] {
            let mount = dir.path().join(name);
            std::fs::create_dir(&mount).expect("mount directory");
            let data = manifest(file)[field].as_mapping().expect("data").clone();
            for (key, value) in data {
                std::fs::write(mount.join(text(&key)), text(&value)).expect("write key");
            }
        }
        Self {
            container,
            dir,
            registry: Registry::anonymous(),
        }
    }

    /// The pod's paths and addresses in `value`, replaced by this machine's.
    fn map(&self, value: &str) -> String {
        let registry = self.registry.base_url().to_string();
        let registry = registry.trim_end_matches('/');
        let mounts = self.dir.path().display();
        value
            .replace("/etc/registry-gateway/config", &format!("{mounts}/config"))
            .replace(
                "/etc/registry-gateway/external",
                &format!("{mounts}/external"),
            )
            .replace("http://docker-registry:5000", registry)
            .replace("https://harbor.example.com", registry)
    }

    /// The container's environment, mapped. The base takes nothing from a Secret: it needs no
    /// Redis.
    fn env(&self) -> Vec<(String, String)> {
        let env = self.container["env"].as_sequence().expect("env");
        env.iter()
            .map(|var| {
                assert!(
                    var.get("valueFrom").is_none(),
                    "the base Deployment takes {} from another object",
                    text(&var["name"])
                );
                (text(&var["name"]).to_owned(), self.map(text(&var["value"])))
            })
            .collect()
    }

    /// The binary with the container's environment and nothing else.
    fn command(&self, args: &[String]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args.iter().map(|a| self.map(a)))
            .env_clear()
            .envs(self.env());
        command
    }

    /// The port the container declares under `name`.
    fn port(&self, name: &str) -> u64 {
        let ports = self.container["ports"].as_sequence().expect("ports");
        ports
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port {name}"))
    }
}

/// Kills the process on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The base is a complete single-replica deployment: its container, started as the kubelet
/// starts it (the Deployment's arguments and environment, the listen addresses aside), passes
/// its liveness and readiness probes with no Redis anywhere.
#[tokio::test]
async fn the_base_deployment_becomes_ready_without_redis() {
    let pod = Pod::new();
    // The Deployment leaves the listen addresses to the defaults, which its ports and probes
    // name; here they are moved to free loopback ports.
    assert_eq!((pod.port("registry"), pod.port("metrics")), (5000, 9090));
    let admin = testkit::free_port();
    let args: Vec<String> = pod.container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| text(a).to_owned())
        .collect();
    assert_eq!(args, ["serve"], "the settings belong in the environment");
    let log = pod.dir.path().join("gateway.log");
    let child = pod
        .command(&args)
        .env(
            "REGISTRY_GATEWAY_LISTEN",
            format!("127.0.0.1:{}", testkit::free_port()),
        )
        .env(
            "REGISTRY_GATEWAY_ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start registry-gateway");
    let _running = Running(child);
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = text(&pod.container[probe]["httpGet"]["path"]).to_owned();
        assert_eq!(text(&pod.container[probe]["httpGet"]["port"]), "metrics");
        eventually(&format!("{probe} {path} answers 200"), || {
            get(admin, &path).map(|(status, _)| status) == Some(200)
        })
        .await;
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logs.contains("Redis"), "{logs}");
}

/// `components/tls`, applied as kustomize applies its patch (its variables and its mount added
/// to the base's container): the gateway serves the certificate of the mounted Secret on the
/// registry port, and the probes, on the metrics port, pass as before.
#[tokio::test]
async fn the_tls_component_serves_the_certificate_of_its_secret() {
    let pod = Pod::new();
    let path = repo_root().join(TLS_PATCH);
    let patch: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read patch"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = &patch["spec"]["template"]["spec"];
    let container = spec["containers"]
        .as_sequence()
        .and_then(|c| c.iter().find(|c| c["name"] == "registry-gateway"))
        .expect("the patch names the container registry-gateway");
    let mount = &container["volumeMounts"][0];
    let volume = spec["volumes"]
        .as_sequence()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .expect("the mounted volume");
    assert_eq!(
        text(&volume["secret"]["secretName"]),
        "registry-gateway-tls"
    );
    assert!(
        mount.get("subPath").is_none(),
        "a subPath mount is never updated"
    );

    // The Secret as the kubelet mounts it, holding a certificate of a test authority.
    let ca = testkit::CertificateAuthority::new("deployment-tls");
    let server = ca.issue(testkit::KeyType::EcdsaP256);
    let secret = SecretMount::new(&server);
    let mount_path = text(&mount["mountPath"]);
    let tls_env: Vec<(String, String)> = container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|var| {
            let value = text(&var["value"]);
            assert!(
                value.starts_with(mount_path),
                "{value} is outside the mount"
            );
            let value = value.replace(mount_path, &secret.path().display().to_string());
            (text(&var["name"]).to_owned(), value)
        })
        .collect();
    assert_eq!(tls_env.len(), 2, "{tls_env:?}");

    let (port, admin) = (testkit::free_port(), testkit::free_port());
    let log = pod.dir.path().join("gateway.log");
    let child = pod
        .command(&["serve".to_owned()])
        .envs(tls_env)
        .env("REGISTRY_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "REGISTRY_GATEWAY_ADMIN_LISTEN",
            format!("127.0.0.1:{admin}"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start registry-gateway");
    let _running = Running(child);
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = text(&pod.container[probe]["httpGet"]["path"]).to_owned();
        eventually(&format!("{probe} {path} answers 200"), || {
            get(admin, &path).map(|(status, _)| status) == Some(200)
        })
        .await;
    }
    assert_eq!(
        presented(port, ca.cert_path()).await,
        Ok(server.der()),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Every `kubectl exec deploy/registry-gateway -- registry-gateway ...` in README.md, docs/
/// and deploy/ runs with the Deployment's environment alone: `--config` and `--upstream` come
/// from `REGISTRY_GATEWAY_CONFIG` and `REGISTRY_GATEWAY_UPSTREAM`.
#[tokio::test]
async fn documented_pod_commands_need_only_the_deployments_environment() {
    let pod = Pod::new();
    let image = TestImage::new(&[2048], 31);
    let pushed = RawPusher::for_registry(&pod.registry, "project-1/app")
        .push_image(&image, "project-1/app", "v1", ManifestFormat::Oci, None)
        .await;
    assert_eq!(pushed.status.as_u16(), 201, "{}", pushed.text());

    let commands = documented_pod_commands();
    for subcommand in ["check-config", "explain", "report"] {
        assert!(
            commands.iter().any(|c| c.starts_with(subcommand)),
            "no documented `kubectl exec {EXEC}{subcommand}`: {commands:?}"
        );
    }
    for line in &commands {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let output = pod.command(&args).output().expect("run registry-gateway");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "`registry-gateway {line}` in the pod failed:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if line.starts_with("report") {
            assert!(stdout.contains("project-1/app"), "{line}:\n{stdout}");
        }
    }
}

/// The part after `registry-gateway` of every documented command run in the gateway's pod.
fn documented_pod_commands() -> Vec<String> {
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
    let mut commands = Vec::new();
    for file in files {
        let Ok(content) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in content.lines().filter(|l| l.contains("kubectl exec")) {
            let Some((_, command)) = line.split_once(EXEC) else {
                continue;
            };
            let command = command.split(['`', '#']).next().unwrap_or_default().trim();
            let command = command.trim_end_matches(['.', ',', ';', ':', ')']);
            if !commands.iter().any(|c| c == command) {
                commands.push(command.to_owned());
            }
        }
    }
    commands
}
