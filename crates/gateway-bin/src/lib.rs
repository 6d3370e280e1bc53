//! `registry-gateway`: a reverse proxy in front of an OCI registry that refuses pushes
//! exceeding image size and tag count limits, as a library with a thin binary (`main.rs`).
//!
//! The request path, in short:
//!
//! 1. `server` accepts a connection (bounded by `connections`), plain or `tls`; plain reads go
//!    through the `relay` (HTTP/1, bodies spliced), everything else through hyper.
//! 2. `gateway::Gateway::handle` reads the request head once (`registry_api::RequestHead`) and hands
//!    each checked route to a handler that receives only what it uses: the registry's facts
//!    (`facts`: blob sizes, tags, digests, signature subjects), the repository's limits, the
//!    coordination, the decision log (`decision_log`) and the `options`.
//! 3. A manifest `PUT` (`manifest::ManifestPush`): body read within a budget (`manifest_body`),
//!    parsed (`oci_manifest`), blob sizes measured at the registry, signature tags resolved
//!    (`signatures`), tags counted under the repository's lease (`coordination`) from the
//!    repository's tag set kept by the `inventory` (`tag_count`) and reserved before the
//!    forward (`reservation`); images and namespace quotas counted from the
//!    namespace's `inventory` under a namespace lease (`quota`); decisions by `limits_core`.
//! 4. Blob uploads (`upload::BlobUpload`, `upload_sessions`) are guarded as they stream;
//!    manifest deletes (`delete::ManifestDelete`) are checked against immutable tags.
//! 5. Every refusal is a `refusal::Refusal`, answered in one place (`refusal::answer`): logged,
//!    counted (`metrics`) and rendered in the registry's error envelope; limit decisions are
//!    logged, counted and sent to the `webhook` by `decision_log`.
//! 6. `upstream::forward` sends what was checked to the registry and the answer back (headers
//!    rewritten by `upstream::target`); `admin` serves `/metrics`, `/healthz`, `/readyz`, and
//!    receives the registry's notifications for the `inventory` of each namespace.

mod admin;
mod app;
mod blob_sizes;
mod body;
mod cli;
mod config_source;
mod connections;
mod coordination;
mod credentials;
mod decision_log;
mod delete;
mod facts;
mod gateway;
mod hangup;
mod inspect;
mod inventory;
mod io;
mod manifest;
mod manifest_body;
mod metrics;
mod migrate;
mod options;
mod quota;
mod reference;
mod refusal;
mod relay;
mod report;
mod reservation;
mod server;
mod signatures;
mod subjects;
mod tag_count;
mod tls;
mod tracked;
mod upload;
mod upload_sessions;
mod upstream;
mod webhook;

pub use app::{init_logging, run};
pub use cli::Cli;
