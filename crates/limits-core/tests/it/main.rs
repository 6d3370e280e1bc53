//! Integration tests of limits-core through its public API.

mod config_errors;
mod enforcement;
mod migration;
mod protections;
mod quotas;
mod seeds;
