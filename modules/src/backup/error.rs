//! What can be wrong with an engine-backup archive, each naming the member it is about.

use std::path::PathBuf;

/// A reason the archive is refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The backup is older than the freshness limit and was not accepted.
    #[error("the engine backup {path} was created {created}, {age} ago, longer ago than max_age ({max_age_s} s): what changed on the engine since then would be lost by the upgrade; take a fresh backup, or set accept_stale to upgrade with this one")]
    Stale {
        /// The archive.
        path: PathBuf,
        /// When it was created (RFC 3339).
        created: String,
        /// How old it is, for a reader.
        age: String,
        /// The limit.
        max_age_s: u64,
    },
    /// The archive file could not be opened or read.
    #[error("cannot read backup archive {path}: {error}")]
    Unreadable {
        /// The archive.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The archive (or its `./files` member) ends early.
    #[error("{what} is truncated: {detail}")]
    Truncated {
        /// `backup archive` or `member ./files`.
        what: String,
        /// Where it ended.
        detail: String,
    },
    /// The bytes are not a (compressed) tar archive.
    #[error("{what} is not a readable tar archive (gzip, xz, bzip2 or plain): {detail}")]
    NotAnArchive {
        /// `backup archive` or `member ./files`.
        what: String,
        /// What the reader said.
        detail: String,
    },
    /// A member that must not be extracted: absolute path, `..`, escaping link, device.
    #[error("unsafe member {member:?} in {what}: {reason}")]
    UnsafeMember {
        /// `backup archive` or `member ./files`.
        what: String,
        /// The member name as stored.
        member: String,
        /// Why it is refused.
        reason: String,
    },
    /// A size or count limit was exceeded.
    #[error("{what} exceeds the limit {option}={limit}: {detail} (raise the option if the backup is genuine)")]
    TooLarge {
        /// `backup archive` or `member ./files`.
        what: String,
        /// The option that sets the limit.
        option: &'static str,
        /// The limit.
        limit: u64,
        /// What exceeded it.
        detail: String,
    },
    /// Required members are absent.
    #[error(
        "backup archive lacks required member(s) {0}: not an engine-backup archive, or incomplete"
    )]
    MissingMembers(String),
    /// The checksum file is malformed or disagrees with the content.
    #[error("checksum check failed: {0}")]
    Checksum(String),
    /// `./version` is not an engine version.
    #[error("member ./version does not hold an engine version: {0:?}")]
    BadVersion(String),
    /// The target engine cannot restore a backup of this version.
    #[error("backup was created by engine {backup} and cannot be restored by engine {target} (option target_version): {reason}")]
    NotRestorable {
        /// The backup's engine version.
        backup: String,
        /// The target engine version.
        target: String,
        /// Which engine-backup rule refuses it.
        reason: String,
    },
}
