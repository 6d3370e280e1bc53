//! Ask the upstream OCI registry which tags a repository holds and how large a blob really is.
//!
//! The gateway codes against the [`Upstream`] trait; [`ReqwestUpstream`] implements it over
//! HTTP for any registry speaking the OCI distribution API (CNCF distribution, Harbor, zot).
//! Tests can supply their own implementation. A usage report reads more than a push needs: the
//! catalog of repositories and manifests, through the [`Inventory`] trait, which
//! [`ReqwestUpstream`] implements too.
//!
//! Every call says which credentials to use ([`Auth`]): the pushing client's own
//! `Authorization` header, nothing, or the configured account, which works with both Basic auth
//! and the Bearer token flow. Failures are [`UpstreamError`]s that say whose [`Fault`] they are
//! and whether a retry can help; they never contain a credential or a token.
//!
//! The wire-format parsers for the `Link` and `WWW-Authenticate` headers are plain sync
//! functions: [`parse_link_next`] and [`parse_www_authenticate`].
//!
//! ```no_run
//! use std::time::Duration;
//! use limits_core::RepositoryName;
//! use upstream_client::{Auth, Credentials, Fault, ReqwestUpstream, Upstream};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let upstream = ReqwestUpstream::builder("http://registry:5000".parse()?)
//!     .credentials(Credentials::new("robot$gateway", "secret"))
//!     .request_timeout(Duration::from_secs(10))
//!     .build()?;
//! upstream.ping().await?;
//!
//! let repo: RepositoryName = "project-1/app".parse()?;
//! match upstream.tags(&repo, Auth::Configured).await {
//!     Ok(tags) => println!("{repo} holds {} tags", tags.len()),
//!     Err(e) if e.fault() == Fault::Upstream && e.is_retryable() => println!("try later: {e}"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Plain http and `insecure`
//!
//! The upstream URL may be plain http even with configured credentials: the operator chose it,
//! and an in-cluster registry usually is plain http. [`ReqwestUpstreamBuilder::insecure`] turns
//! off certificate checks and also allows a plain http token realm behind an https upstream,
//! which is otherwise refused so that the password does not leave unencrypted. A `Link` to
//! another origin than the upstream's is refused, so credentials never go elsewhere.

mod auth;
mod challenge;
mod client;
mod error;
mod header_tokens;
mod inventory;
mod link;
mod listing;
mod lookup;
mod request;
mod session;
mod token;
mod upstream;

pub use auth::{Auth, AuthKind, Credentials};
pub use challenge::{Challenge, ChallengeError, parse_www_authenticate};
pub use client::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_PAGES, DEFAULT_PAGE_SIZE, DEFAULT_REQUEST_TIMEOUT,
    ReqwestUpstream, ReqwestUpstreamBuilder,
};
pub use error::{BoxError, BuildError, Fault, ResponseProblem, TokenProblem, UpstreamError};
pub use inventory::Inventory;
pub use link::{LinkError, parse_link_next};
pub use upstream::{FetchedManifest, MANIFEST_ACCEPT, Upstream};
