//! placeholder
mod digest;
pub use digest::{Digest, DigestError};
