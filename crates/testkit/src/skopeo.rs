//! Pushing images the way real clients do: `skopeo copy`.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::image::TestImage;
use crate::tools::SKOPEO;

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error (skopeo prints failures there, e.g. `denied: ...`).
    pub stderr: String,
    /// How long it ran, retries included.
    pub elapsed: Duration,
}

impl CommandOutput {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with both outputs unless it exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success(),
            "command failed with {}:\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics with both outputs unless it failed.
    pub fn assert_failure(&self) -> &Self {
        assert!(
            !self.success(),
            "command succeeded but should not:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// An OCI image layout in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct OciLayout {
    dir: tempfile::TempDir,
}

impl OciLayout {
    /// An empty layout directory.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("testkit-oci-")
            .tempdir()
            .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"));
        Self { dir }
    }

    /// A layout holding `image` tagged `tag`.
    pub fn with_image(image: &TestImage, tag: &str) -> Self {
        let layout = Self::new();
        layout.add(image, tag);
        layout
    }

    /// Adds (or re-tags) `image` as `tag`.
    pub fn add(&self, image: &TestImage, tag: &str) {
        image.write_oci_layout(self.dir.path(), tag);
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The skopeo source reference `oci:<dir>:<tag>`.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.path().display())
    }
}

impl Default for OciLayout {
    fn default() -> Self {
        Self::new()
    }
}

/// `skopeo --insecure-policy copy --dest-tls-verify=false [--dest-creds u:p] [args] SRC DEST`,
/// or with TLS verified against a directory of certificate authorities
/// ([`cert_dir`](Self::cert_dir)).
///
/// Runs with an empty auth file of its own, so credentials stored on the machine never leak in.
///
/// ```no_run
/// use testkit::{OciLayout, SkopeoCopy, TestImage};
///
/// # async fn run(registry_host: &str) {
/// let layout = OciLayout::with_image(&TestImage::new(&[1024], 1), "v1");
/// let out = SkopeoCopy::new(layout.reference("v1"), format!("docker://{registry_host}/project-1/app:v1"))
///     .dest_creds("testuser", "testpassword")
///     .args(["--format", "v2s2"])
///     .run()
///     .await;
/// out.assert_success();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SkopeoCopy {
    source: String,
    destination: String,
    creds: Option<(String, String)>,
    cert_dir: Option<PathBuf>,
    args: Vec<String>,
    timeout: Duration,
}

impl SkopeoCopy {
    /// Copies `source` (`oci:<dir>:<tag>`) to `destination` (`docker://<host>/<repo>:<tag>`).
    pub fn new(source: impl Into<String>, destination: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            destination: destination.into(),
            creds: None,
            cert_dir: None,
            args: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }

    /// Copies tag `tag` of `layout` to `docker://<host>/<repository>:<tag>`.
    pub fn to_registry(layout: &OciLayout, host: &str, repository: &str, tag: &str) -> Self {
        Self::new(
            layout.reference(tag),
            format!("docker://{host}/{repository}:{tag}"),
        )
    }

    /// `--dest-creds username:password`.
    pub fn dest_creds(mut self, username: &str, password: &str) -> Self {
        self.creds = Some((username.to_owned(), password.to_owned()));
        self
    }

    /// Verify TLS on both sides against the certificate authorities in `dir` (`ca.crt`
    /// files, as [`CertificateAuthority::cert_dir`](crate::CertificateAuthority::cert_dir)
    /// holds) and the system's: `--src-tls-verify=true --src-cert-dir DIR` and the same for
    /// `--dest-`. Without it, both sides skip TLS verification (and may speak plain HTTP).
    pub fn cert_dir(mut self, dir: &Path) -> Self {
        self.cert_dir = Some(dir.to_owned());
        self
    }

    /// One more argument for `copy`, before source and destination (e.g. `--format`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More arguments for `copy`, before source and destination (`["--format", "v2s1"]`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Kill skopeo after this long (default 120 s); the run then panics.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs skopeo and returns what it printed, whatever its exit status.
    ///
    /// # Panics
    /// When skopeo is missing, cannot be started, or runs past the timeout.
    pub async fn run(self) -> CommandOutput {
        let program = SKOPEO.require();
        let scratch = tempfile::Builder::new()
            .prefix("testkit-skopeo-")
            .tempdir()
            .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"));
        let auth_file = scratch.path().join("auth.json");
        std::fs::write(&auth_file, r#"{"auths":{}}"#)
            .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", auth_file.display()));
        let mut command = tokio::process::Command::new(program);
        command
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("TMPDIR", scratch.path())
            .kill_on_drop(true)
            .arg("--insecure-policy")
            .arg("copy");
        match &self.cert_dir {
            None => command
                .arg("--dest-tls-verify=false")
                .arg("--src-tls-verify=false"),
            Some(dir) => command
                .arg("--dest-tls-verify=true")
                .arg("--dest-cert-dir")
                .arg(dir)
                .arg("--src-tls-verify=true")
                .arg("--src-cert-dir")
                .arg(dir),
        };
        if let Some((user, password)) = &self.creds {
            command
                .arg("--dest-creds")
                .arg(format!("{user}:{password}"));
        }
        command
            .args(&self.args)
            .arg(&self.source)
            .arg(&self.destination);
        let started = Instant::now();
        let output = match tokio::time::timeout(self.timeout, command.output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("testkit: cannot run skopeo: {e}"),
            Err(_) => panic!(
                "testkit: skopeo copy {} {} ran past {:?}",
                self.source, self.destination, self.timeout
            ),
        };
        CommandOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

/// Pushes `image` as `<repository>:<tag>` to the registry (or gateway) at `host` with skopeo,
/// with `creds` as `--dest-creds` and `args` passed to `skopeo copy` (e.g.
/// `["--format", "v2s2"]`). Returns what skopeo printed.
pub async fn skopeo_push(
    host: &str,
    image: &TestImage,
    repository: &str,
    tag: &str,
    args: &[&str],
    creds: Option<&crate::TestUser>,
) -> CommandOutput {
    let layout = OciLayout::with_image(image, tag);
    let mut copy =
        SkopeoCopy::to_registry(&layout, host, repository, tag).args(args.iter().copied());
    if let Some(user) = creds {
        copy = copy.dest_creds(&user.username, &user.password);
    }
    copy.run().await
}

impl crate::Registry {
    /// Pushes `image` as `<repository>:<tag>` with skopeo and the default user's credentials,
    /// passing `args` to `skopeo copy` (e.g. `["--format", "v2s2"]`). Returns what skopeo printed.
    pub async fn skopeo_push(
        &self,
        image: &TestImage,
        repository: &str,
        tag: &str,
        args: &[&str],
    ) -> CommandOutput {
        skopeo_push(&self.host(), image, repository, tag, args, self.user()).await
    }

    /// Pushes `image` as `<repository>:<tag>` with skopeo and the default user's credentials.
    ///
    /// # Panics
    /// When skopeo fails, with what it printed.
    pub async fn push(&self, image: &TestImage, repository: &str, tag: &str) {
        self.skopeo_push(image, repository, tag, &[])
            .await
            .assert_success();
    }
}
