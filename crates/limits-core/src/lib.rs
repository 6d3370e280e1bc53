//! placeholder
mod repository;
pub use repository::{MAX_REPOSITORY_NAME_LEN, RepositoryName, RepositoryNameError};
