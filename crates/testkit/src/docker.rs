//! A Docker engine of the test's own (`dockerd` from Debian's `docker.io`), and the `docker`
//! client pointed at it.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::skopeo::CommandOutput;
use crate::tools::{DOCKER, DOCKERD};

/// How long `dockerd` may take to answer `docker version` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `dockerd` may take to stop its containers and exit after `SIGTERM`.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `docker` command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// Unix socket paths are limited to 108 bytes; a longer temporary directory is not used.
const MAX_DIR_LEN: usize = 60;

/// `dockerd --storage-driver vfs --iptables=false --bridge=none` with its data root, exec root,
/// pid file, socket and configuration in a temporary directory, and the `docker` client
/// pointed at it (`DOCKER_HOST=unix://...`, an empty `DOCKER_CONFIG` of its own).
///
/// Without a bridge, containers run with `--network host` (or `none`); `127.0.0.0/8` registries
/// are pushed to over plain HTTP, as Docker allows by default. Nothing can be pulled from
/// Docker Hub here: images come from [`import`](Self::import) and
/// [`add_layer`](Self::add_layer), or from `docker build` of `FROM scratch`.
///
/// Dropping it sends the daemon `SIGTERM` (it stops its containers and its containerd; after
/// 30 s it is killed), unmounts what it left mounted in the directory (the host network
/// namespace's bind mount) and removes the directory. Needs root, as `dockerd` does.
///
/// ```no_run
/// # async fn run() {
/// let docker = testkit::DockerDaemon::start();
/// let layer = testkit::tar_file("data.bin", &testkit::pseudo_random_bytes(1 << 20, 1));
/// docker.import("127.0.0.1:5000/project-1/app:v1", &layer).await;
/// docker.run(&["push", "127.0.0.1:5000/project-1/app:v1"]).await.assert_success();
/// # }
/// ```
#[derive(Debug)]
pub struct DockerDaemon {
    client: PathBuf,
    child: Option<Child>,
    socket: PathBuf,
    client_config: PathBuf,
    log_path: PathBuf,
    // Last, so that the directory is removed after the daemon is gone.
    dir: tempfile::TempDir,
}

impl DockerDaemon {
    /// Starts the daemon and waits until `docker version` reaches it (well under a second
    /// here).
    ///
    /// # Panics
    /// When `dockerd` or `docker` is missing (naming the Debian package), or the daemon exits or
    /// does not answer within 60 s (not root, for one); the message holds its log.
    pub fn start() -> Self {
        let dockerd = DOCKERD.require();
        let client = DOCKER.require();
        let parent = std::env::temp_dir();
        let parent = if parent.as_os_str().len() > MAX_DIR_LEN {
            PathBuf::from("/tmp")
        } else {
            parent
        };
        let dir = tempfile::Builder::new()
            .prefix("testkit-docker-")
            .tempdir_in(parent)
            .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"));
        let path = dir.path();
        // The daemon's identity key, which it would otherwise write to /etc/docker/key.json.
        let config_file = path.join("daemon.json");
        let config = serde_json::json!({"deprecated-key-path": path.join("key.json")});
        write(&config_file, config.to_string().as_bytes());
        let client_config = path.join("client");
        std::fs::create_dir(&client_config)
            .unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", client_config.display()));
        // dockerd runs a containerd of its own in the exec root, unless a system containerd
        // answers on /run/containerd/containerd.sock: then namespaces of its own keep its
        // containers apart from those of other daemons.
        let namespace = path
            .file_name()
            .map(|name| name.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_else(|| "testkit-docker".to_owned());
        let socket = path.join("docker.sock");
        let log_path = path.join("dockerd.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("testkit: cannot share {}: {e}", log_path.display()));
        let child = Command::new(&dockerd)
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--iptables=false")
            .arg("--bridge=none")
            .arg("--data-root")
            .arg(path.join("data"))
            .arg("--exec-root")
            .arg(path.join("exec"))
            .arg("--pidfile")
            .arg(path.join("docker.pid"))
            .arg("--config-file")
            .arg(&config_file)
            .arg("--containerd-namespace")
            .arg(&namespace)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{namespace}-plugins"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .current_dir(path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("testkit: cannot run {}: {e}", dockerd.display()));
        let mut daemon = Self {
            client,
            child: Some(child),
            socket,
            client_config,
            log_path,
            dir,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "testkit: dockerd exited with {status} at start:\n{}",
                        self.logs()
                    );
                }
            }
            let answered = Command::new(&self.client)
                .envs(self.envs())
                .args(["version", "--format", "{{.Server.Version}}"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if answered {
                return;
            }
            if Instant::now() > deadline {
                self.stop();
                panic!(
                    "testkit: dockerd did not answer on {} within {START_TIMEOUT:?}:\n{}",
                    self.socket.display(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `unix://<dir>/docker.sock`, the `DOCKER_HOST` of its clients.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The environment that points a `docker` client at this daemon: `DOCKER_HOST`,
    /// `DOCKER_CONFIG` (an empty directory of its own, so no credentials or contexts of the
    /// machine apply) and `DOCKER_CLI_HINTS=false`.
    pub fn envs(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("DOCKER_HOST", self.host().into()),
            ("DOCKER_CONFIG", self.client_config.clone().into()),
            ("DOCKER_CLI_HINTS", "false".into()),
        ]
    }

    /// A `docker` command pointed at this daemon ([`envs`](Self::envs), and no inherited
    /// `DOCKER_CONTEXT` or TLS settings), killed when dropped.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.client);
        for name in ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
            command.env_remove(name);
        }
        command
            .envs(self.envs())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `docker <args>` and returns what it printed; fails or not, it is the caller's to
    /// check ([`CommandOutput::assert_success`]).
    ///
    /// # Panics
    /// When the client cannot be started or runs past three minutes.
    pub async fn run(&self, args: &[&str]) -> CommandOutput {
        self.run_with_input(args, &[]).await
    }

    /// Runs `docker <args>` with `input` on its standard input (`docker import -`,
    /// `docker cp - ...`).
    ///
    /// # Panics
    /// When the client cannot be started or runs past three minutes.
    pub async fn run_with_input(&self, args: &[&str], input: &[u8]) -> CommandOutput {
        let mut command = self.command();
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let run = async {
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("testkit: cannot run docker {args:?}: {e}"));
            let stdin = child.stdin.take();
            let feed = async move {
                if let Some(mut stdin) = stdin {
                    // A client that exits early closes its input; what it printed says why.
                    let _ = stdin.write_all(input).await;
                }
            };
            let ((), output) = tokio::join!(feed, child.wait_with_output());
            output
        };
        let started = std::time::Instant::now();
        let output = match tokio::time::timeout(COMMAND_TIMEOUT, run).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("testkit: docker {args:?} failed to run: {e}"),
            Err(_) => panic!("testkit: docker {args:?} ran past {COMMAND_TIMEOUT:?}"),
        };
        CommandOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// `docker import - <reference>`: a one-layer image whose layer holds the files of `tar`
    /// (see [`tar_file`](crate::tar_file)). Docker gzips the layer when it pushes it, so a
    /// layer of pseudo-random bytes is pushed a little larger than they are (0.03 %, plus the
    /// tar headers). Returns the image ID.
    ///
    /// # Panics
    /// When the import fails.
    pub async fn import(&self, reference: &str, tar: &[u8]) -> String {
        self.run_with_input(&["import", "-", reference], tar)
            .await
            .assert_success();
        self.image_id(reference).await
    }

    /// A new image `reference`: `base` plus one layer holding the files of `tar`, made as
    /// `docker commit` makes one (`docker create`, `docker cp -`, `docker commit`; nothing is
    /// run). Returns the image ID.
    ///
    /// Give the files new names: the vfs driver finds a layer's changes by size and time, not
    /// content, so a file of `base` replaced by one of the same size and time is left out.
    ///
    /// # Panics
    /// When a step fails.
    pub async fn add_layer(&self, base: &str, reference: &str, tar: &[u8]) -> String {
        let created = self.run(&["create", base, "true"]).await;
        created.assert_success();
        let container = created.stdout.trim().to_owned();
        self.run_with_input(&["cp", "-", &format!("{container}:/")], tar)
            .await
            .assert_success();
        self.run(&["commit", &container, reference])
            .await
            .assert_success();
        self.run(&["rm", &container]).await.assert_success();
        self.image_id(reference).await
    }

    /// The ID of a local image (`docker image inspect --format {{.Id}}`), its config's digest.
    ///
    /// # Panics
    /// When there is no such image.
    pub async fn image_id(&self, reference: &str) -> String {
        let inspect = self
            .run(&["image", "inspect", "--format", "{{.Id}}", reference])
            .await;
        inspect.assert_success();
        inspect.stdout.trim().to_owned()
    }

    /// Everything the daemon logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The temporary directory holding the daemon's state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the daemon: `SIGTERM` to its process (it stops its containers and its
    /// containerd), `SIGKILL` after 30 s; then unmounts what is left mounted in its directory.
    /// Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        unmount_under(self.dir.path());
    }
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Unmounts every mount point at or below `dir` (deepest first), lazily when busy, so that the
/// directory can be removed.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_point(point)))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort();
    points.dedup();
    points.sort_by_key(|point| std::cmp::Reverse(point.as_os_str().len()));
    for point in points {
        let unmounted = Command::new("umount")
            .arg(&point)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(&point)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A mount point as `/proc/self/mountinfo` escapes it (`\040` for a space, octal).
fn unescape_mount_point(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data)
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        for (field, want) in [
            ("/tmp/a/exec/netns/default", "/tmp/a/exec/netns/default"),
            ("/tmp/with\\040space", "/tmp/with space"),
            ("/tmp/tab\\011x", "/tmp/tab\tx"),
            ("/tmp/back\\134slash", "/tmp/back\\slash"),
            ("/tmp/trailing\\", "/tmp/trailing\\"),
        ] {
            assert_eq!(unescape_mount_point(field), want, "{field}");
        }
    }
}
