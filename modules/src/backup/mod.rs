//! engine-backup archive validation: one streaming pass that checks everything the restore
//! inside the new appliance will rely on (SPEC 9.3, reference original-tool §7).
//!
//! Not here: uploading the archive (see `guest`).

mod archive;
mod error;
mod files;
mod freshness;
mod manifest;
mod member;
mod policy;
mod stream;
mod walk;

pub use archive::{check_restorable, validate, BackupFacts};
pub use error::BackupError;
pub use freshness::FreshnessOptions;
pub use policy::Hasher;
pub use stream::Compression;

/// Size and count limits, applied to the archive and to `./files` separately (module
/// options `max_members`, `max_member_bytes`, `max_total_bytes`).
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most members in one tar stream.
    pub max_members: u64,
    /// Largest single member, uncompressed.
    pub max_member_bytes: u64,
    /// Largest sum of member sizes, uncompressed.
    pub max_total_bytes: u64,
}

impl crate::ansible::OptionSet for Limits {
    fn take(
        options: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, crate::ansible::OptionError> {
        crate::ansible::take_group(options)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_members: DEFAULT_MAX_MEMBERS,
            max_member_bytes: DEFAULT_MAX_MEMBER_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

/// Default [`Limits::max_members`].
pub const DEFAULT_MAX_MEMBERS: u64 = 200_000;
/// Default [`Limits::max_member_bytes`]: 64 GiB (a large DWH dump).
pub const DEFAULT_MAX_MEMBER_BYTES: u64 = 64 << 30;
/// Default [`Limits::max_total_bytes`]: 256 GiB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 256 << 30;
