//! End-to-end tests: the real `registry-gateway` binary in front of Debian's `docker-registry`
//! (CNCF distribution 2.8), driven by `skopeo`, `docker`, `podman`, `buildah`, `curl` and raw
//! HTTP clients; and the container image, built and run by a Docker engine of the test's own.

mod cli;
mod container_image;
mod coordination;
mod deletes;
mod deployment;
mod docker;
mod inspect_usage;
mod integrity;
mod inventory;
mod listener;
mod migration;
mod operations;
mod policies;
mod proxy;
mod quotas;
mod rawhttp;
mod reads;
mod report;
mod reservations;
mod rollout;
mod shared_quotas;
mod signatures;
mod support;
mod tag_sets;
mod tls;
