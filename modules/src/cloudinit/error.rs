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
    /// The VM's user could not open the ISO where it is asked for.
    #[error("qemu ({reader}) could not open {dest}: it cannot enter {directory}; write the ISO under directories qemu may enter (or set qemu_uid, qemu_gid, kvm_gid to this host's ids)")]
    Unreachable {
        /// The ISO path.
        dest: PathBuf,
        /// The first directory on the way that does not let qemu through.
        directory: PathBuf,
        /// qemu's ids.
        reader: String,
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
