//! End-to-end tests: the real `registry-gateway` binary in front of Debian's `docker-registry`
//! (CNCF distribution 2.8), driven by `skopeo`, `podman`, `curl` and raw HTTP clients.

mod cli;
mod coordination;
mod deletes;
mod deployment;
mod integrity;
mod listener;
mod migration;
mod operations;
mod policies;
mod proxy;
mod rawhttp;
mod reads;
mod report;
mod reservations;
mod rollout;
mod signatures;
mod support;
mod tls;
