//! `podman` and `buildah`, the daemonless clients users push with: each run gets storage of
//! its own (`--storage-driver vfs` in a temporary root) and an empty auth file.

use std::path::Path;
use std::time::Duration;

use crate::skopeo::CommandOutput;
use crate::tools::Tool;

/// Pulls `source` (`host:port/repository:tag`) and pushes it to `destination` (the same form)
/// with `tool` (`PODMAN` or `BUILDAH`), both without TLS. Returns what the push printed, and
/// how long it took.
///
/// # Panics
/// When the tool is missing, cannot be started, its pull fails, or a step runs past two
/// minutes.
pub async fn pull_and_push(tool: Tool, source: &str, destination: &str) -> CommandOutput {
    push(tool, source, destination, None).await
}

/// Like [`pull_and_push`], pushing over TLS that is verified against the certificate
/// authorities in `cert_dir` (`--tls-verify=true --cert-dir`; `ca.crt` files, as
/// [`CertificateAuthority::cert_dir`](crate::CertificateAuthority::cert_dir) holds). The pull
/// is still without TLS.
pub async fn pull_and_push_verified(
    tool: Tool,
    source: &str,
    destination: &str,
    cert_dir: &Path,
) -> CommandOutput {
    push(tool, source, destination, Some(cert_dir)).await
}

async fn push(
    tool: Tool,
    source: &str,
    destination: &str,
    cert_dir: Option<&Path>,
) -> CommandOutput {
    let program = tool.require();
    let scratch = tempfile::Builder::new()
        .prefix("testkit-containers-")
        .tempdir()
        .unwrap_or_else(|e| panic!("testkit: cannot create a temporary directory: {e}"));
    let auth_file = scratch.path().join("auth.json");
    std::fs::write(&auth_file, r#"{"auths":{}}"#)
        .unwrap_or_else(|e| panic!("testkit: cannot write {}: {e}", auth_file.display()));
    let run = |args: Vec<String>| {
        let mut command = tokio::process::Command::new(&program);
        command
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env("TMPDIR", scratch.path())
            .kill_on_drop(true)
            .arg("--root")
            .arg(scratch.path().join("root"))
            .arg("--runroot")
            .arg(scratch.path().join("runroot"))
            .arg("--storage-driver")
            .arg("vfs")
            .args(args);
        async move {
            let started = std::time::Instant::now();
            let output =
                match tokio::time::timeout(Duration::from_secs(120), command.output()).await {
                    Ok(Ok(output)) => output,
                    Ok(Err(e)) => panic!("testkit: cannot run {}: {e}", tool.program),
                    Err(_) => panic!("testkit: {} ran past two minutes", tool.program),
                };
            CommandOutput {
                status: output.status,
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                elapsed: started.elapsed(),
            }
        }
    };
    let pull = run(vec![
        "pull".into(),
        "--tls-verify=false".into(),
        source.to_owned(),
    ])
    .await;
    pull.assert_success();
    let mut push = vec!["push".to_owned()];
    match cert_dir {
        None => push.push("--tls-verify=false".into()),
        Some(dir) => push.extend([
            "--tls-verify=true".into(),
            "--cert-dir".into(),
            dir.display().to_string(),
        ]),
    }
    push.extend([source.to_owned(), format!("docker://{destination}")]);
    run(push).await
}
