//! Test support for registry-gateway: real registries, real pushes, and fake servers.
//!
//! * [`Registry`]: Debian's `docker-registry` (CNCF distribution 2.8) started on a free loopback
//!   port with filesystem storage in a temporary directory, in three set-ups:
//!   [`Registry::anonymous`], [`Registry::basic`] (bcrypt `htpasswd` file) and
//!   [`Registry::token`] (`auth: token` with the kit's own [`TokenIssuer`], which signs ES256
//!   JWTs with a key whose self-signed certificate the registry trusts). It can be stopped and
//!   started again on the same port. Dropping it kills the process, also when a test panics.
//! * [`TestImage`]: an image of pseudo-random layers of exact sizes, written as an OCI image
//!   layout ([`OciLayout`]) and pushed with [`SkopeoCopy`] (`skopeo copy`), or pushed with raw
//!   HTTP requests by [`RawPusher`], which can also send a manifest that lies about its layer
//!   sizes.
//! * [`RedisServer`]: Debian's `redis-server`, in memory, on a free loopback port; stopped and
//!   started again to test outages.
//! * [`DockerDaemon`]: Debian's `dockerd` (`docker.io`) with all its state in a temporary
//!   directory (vfs storage, no bridge, no iptables rules), and the `docker` client pointed at
//!   it; images come from tarballs ([`tar_file`], `docker import`), since nothing can be
//!   pulled. Needs root.
//! * [`FakeServer`]: a scripted HTTP server for what a real registry will not do (malformed
//!   headers, endless pagination, 500s, hangs).
//! * [`CertificateAuthority`]: a test CA made with `openssl`, its intermediates, and server
//!   certificates for `127.0.0.1` and `localhost` with keys of every PEM form
//!   ([`KeyType`]), for TLS clients that verify (skopeo's `--dest-cert-dir`, podman's
//!   `--cert-dir`, curl's `--cacert`).
//!
//! A missing tool (`docker-registry`, `skopeo`, `htpasswd`, `openssl`, `curl`, `dockerd`, ...)
//! panics with the Debian package to install; tests never skip silently.
//!
//! ```no_run
//! use testkit::{Registry, TestImage};
//!
//! # async fn run() {
//! let registry = Registry::basic();
//! for (seed, tag) in ["v1", "v2", "v3"].into_iter().enumerate() {
//!     registry.push(&TestImage::new(&[1024, 2048], seed as u64), "project-1/app", tag).await;
//! }
//! let user = registry.user().expect("basic registries have a user");
//! println!("{} as {}:{}", registry.base_url(), user.username, user.password);
//! // Registry stopped and its directory removed when `registry` is dropped.
//! # }
//! ```
//!
//! Servers started by the kit run on threads of their own, so they answer from any test
//! runtime. Registry start-up blocks the calling thread until `GET /v2/` answers (well under a
//! second); pushes are `async` (they may go through a gateway served by the test's runtime).

mod containers;
mod docker;
mod fake;
mod image;
mod issuer;
mod push;
mod redis;
mod registry;
mod server;
mod skopeo;
mod tar;
mod tls;
mod tools;

pub use containers::{pull_and_push, pull_and_push_verified};
pub use docker::DockerDaemon;
pub use fake::{FakeRequest, FakeServer, Reply};
pub use image::{
    Blob, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, MIN_LAYER_SIZE, ManifestFormat,
    OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, TestImage, pseudo_random_bytes, sha256_digest,
};
pub use issuer::{ISSUER, SERVICE, TokenIssuer};
pub use push::{RawPusher, RawResponse};
pub use redis::RedisServer;
pub use registry::{
    Registry, RegistryAuth, RegistryBuilder, TestUser, basic_authorization, free_port,
};
pub use skopeo::{CommandOutput, OciLayout, SkopeoCopy, skopeo_push};
pub use tar::tar_file;
pub use tls::{CertificateAuthority, KeyType, ServerCertificate, pem_blocks};
pub use tools::{
    BUILDAH, CURL, DOCKER, DOCKER_REGISTRY, DOCKERD, HTPASSWD, OPENSSL, PODMAN, REDIS_SERVER,
    SKOPEO, Tool,
};
