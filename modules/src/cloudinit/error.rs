//! What can go wrong making the seed ISO.

use std::path::PathBuf;

/// A he_cloudinit problem.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// An input that cannot go into the seed.
    #[error("option '{option}': {why}")]
    Invalid {
        /// The option.
        option: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file operation failed.
    #[error("cannot {action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The ISO writer could not run or failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// `xorriso` or `genisoimage`.
        tool: &'static str,
        /// Exit status and stderr, or why it could not start.
        detail: String,
    },
}

/// Wraps an io error with what was being done to which path.
pub fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> SeedError {
    let path = path.into();
    move |error| SeedError::Io {
        action,
        path,
        error,
    }
}
