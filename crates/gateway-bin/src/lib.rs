//! `registry-gateway`: a reverse proxy in front of an OCI registry that refuses pushes
//! exceeding image size and tag count limits, as a library with a thin binary (`main.rs`).
//!
//! The request path, in short:
//!
//! 1. `server` accepts a connection (bounded by `connections`), plain or `tls`; plain reads go
//!    through the `relay` (HTTP/1, bodies spliced), everything else through hyper.
//! 2. `gateway::Gateway::handle` reads the request once (`registry_api::ApiRequest`) and routes it.
//! 3. A manifest `PUT` (`manifest`): body read within a budget (`manifest_body`), parsed
//!    (`oci_manifest`), blob sizes measured at the registry (`blob_sizes`), signature tags
//!    resolved (`signatures`), tags counted under the repository's lease (`coordination`) and
//!    reserved before the forward (`reservation`); decisions by `limits_core`.
//! 4. Blob uploads (`upload`, `upload_sessions`) are guarded as they stream; manifest deletes
//!    (`delete`) are checked against immutable tags.
//! 5. Refusals are answered in the registry's error envelope (`answer`); decisions are logged,
//!    counted (`metrics`) and sent to the `webhook`.
//! 6. `forward` sends what was checked to the registry and the answer back; `admin` serves
//!    `/metrics`, `/healthz`, `/readyz`, and receives the registry's notifications for the
//!    `inventory` of each namespace (not consulted by push decisions yet).

mod admin;
mod answer;
mod app;
mod blob_sizes;
mod body;
mod cli;
mod config_source;
mod connections;
mod coordination;
mod credentials;
mod delete;
mod forward;
mod gateway;
mod hangup;
mod inspect;
mod inventory;
mod io;
mod manifest;
mod manifest_body;
mod metrics;
mod migrate;
mod reference;
mod relay;
mod report;
mod request_head;
mod reservation;
mod server;
mod signatures;
mod subjects;
mod tags;
mod tls;
mod tracked;
mod upload;
mod upload_sessions;
mod webhook;

pub use app::{init_logging, run};
pub use cli::Cli;
