//! Integration tests: the reqwest client against real registries (`real`) and against fake
//! servers for what a real registry will not do (`fake`).

#![allow(clippy::unwrap_used)]

mod fake;
mod inventory;
mod real;

use std::time::Duration;

use limits_core::RepositoryName;
use oci_manifest::Digest;
use upstream_client::{Credentials, ReqwestUpstream};
use url::Url;

/// A client with short timeouts, and credentials when given.
pub fn client(base: Url, credentials: Option<(&str, &str)>) -> ReqwestUpstream {
    let mut builder = ReqwestUpstream::builder(base)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(10));
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user, password));
    }
    builder.build().expect("client builds")
}

pub fn repo(name: &str) -> RepositoryName {
    name.parse().expect("valid repository name")
}

pub fn digest(text: &str) -> Digest {
    text.parse().expect("valid digest")
}

/// Sorted, for comparing tag lists.
pub fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags
}
