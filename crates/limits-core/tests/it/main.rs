//! Integration tests of limits-core through its public API.

mod config_errors;
mod docs;
mod protections;
mod seeds;
