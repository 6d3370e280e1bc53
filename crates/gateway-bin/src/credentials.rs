//! An account for the registry, from a mounted Secret's directory or from a user name and
//! password: Harbor mode's `--external-*` options and `report`'s credentials options.

use std::path::Path;

use anyhow::{Context, bail};
use upstream_client::{Credentials, ReqwestUpstream};
use url::Url;

use crate::cli::RegistryAccount;

/// A client reading the registry at `url` with `account` (anonymously without one).
pub fn reader(url: &Url, account: &RegistryAccount) -> anyhow::Result<ReqwestUpstream> {
    let source = CredentialSource {
        dir: account.credentials_dir.as_deref(),
        username: account.username.as_deref(),
        password: account.password.as_deref(),
        insecure: account.insecure,
    };
    let mut builder = ReqwestUpstream::builder(url.clone())
        .connect_timeout(*account.connect_timeout)
        .request_timeout(*account.upstream_timeout)
        .insecure(account.insecure);
    match source.load()? {
        Some((credentials, insecure)) => {
            builder = builder.credentials(credentials).insecure(insecure);
        }
        None if account.username.is_some() || account.password.is_some() => {
            bail!("--username and --password go together")
        }
        None => {}
    }
    builder.build().context("invalid --upstream")
}

/// Where the account comes from; the directory wins over the user name and password.
#[derive(Debug, Clone, Copy)]
pub struct CredentialSource<'a> {
    /// A directory laid out like the Secret `registry-gateway-external-registry-secret`: files
    /// `username`, `password`, optional `insecure` (`true` or `false`).
    pub dir: Option<&'a Path>,
    /// The user name.
    pub username: Option<&'a str>,
    /// The password or robot token.
    pub password: Option<&'a str>,
    /// Skip certificate checks (also turned on by the directory's `insecure` file).
    pub insecure: bool,
}

impl CredentialSource<'_> {
    /// The credentials and whether to skip certificate checks; `None` when no account was given
    /// (no directory, and not both a user name and a password).
    pub fn load(&self) -> anyhow::Result<Option<(Credentials, bool)>> {
        if let Some(dir) = self.dir {
            let read = |name: &str| -> anyhow::Result<Option<String>> {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned())),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
                }
            };
            let username = read("username")?
                .with_context(|| format!("{} has no username file", dir.display()))?;
            let password = read("password")?
                .with_context(|| format!("{} has no password file", dir.display()))?;
            let insecure = match read("insecure")?.as_deref().map(str::trim) {
                None | Some("" | "false") => false,
                Some("true") => true,
                Some(other) => bail!(
                    "invalid insecure \"{other}\" in {} (expected true or false)",
                    dir.display()
                ),
            };
            return Ok(Some((
                Credentials::new(username, password),
                insecure || self.insecure,
            )));
        }
        match (self.username, self.password) {
            (Some(username), Some(password)) => {
                Ok(Some((Credentials::new(username, password), self.insecure)))
            }
            _ => Ok(None),
        }
    }
}
