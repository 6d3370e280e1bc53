//! The way to the upstream registry: how a request's headers and its answer's are rewritten as
//! a reverse proxy must ([`target`]), and sending a checked request with its body streamed
//! both ways ([`forward`]).

pub mod forward;
pub mod target;
