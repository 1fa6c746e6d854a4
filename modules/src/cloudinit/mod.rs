//! The cloud-init NoCloud seed for the new appliance's first boot: documents (pure, from
//! the inputs), the root password hash, and the ISO written, compared and replaced.
//!
//! Not here: attaching the ISO to the VM or reading the markers (he_boot_and_wait).

mod error;
mod iso;
mod password;
mod seed;

pub use error::SeedError;
pub use iso::{read_root_files, IsoTool};
pub use password::sha512_crypt;
pub use seed::{
    answers, check, mask_hashes, render, Documents, Restore, Seed, StaticNetwork, CHANNEL_PORT,
    HASH_MASK,
};

use error::io;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Who should own the ISO (the qemu user must read it when libvirt does not relabel).
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// User name.
    pub owner: Option<String>,
    /// Group name.
    pub group: Option<String>,
}

/// The ISO at the destination before and after.
#[derive(Debug, Clone)]
pub struct Written {
    /// Whether the file was created, replaced, or had its mode/owner fixed.
    pub changed: bool,
    /// SHA-256 of the ISO now at the destination.
    pub sha256: String,
}

/// The documents an existing ISO holds (`meta-data`, `user-data`), if it is readable.
pub fn existing_documents(dest: &Path) -> Option<Documents> {
    let image = std::fs::read(dest).ok()?;
    let mut files = read_root_files(&image)?;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).ok();
    Some(Documents {
        meta_data: text(files.remove("meta-data")?)?,
        user_data: text(files.remove("user-data")?)?,
    })
}

/// Builds the ISO in a private directory next to `dest` and puts it in place (mode 0600)
/// unless `dest` already holds the same bytes.
pub fn write(
    dest: &Path,
    tool: IsoTool,
    documents: &Documents,
    ownership: &Ownership,
) -> Result<Written, SeedError> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (uid, gid) = resolve(ownership)?;
    let private = iso::PrivateDir::new(parent)?;
    let files = [
        ("meta-data", documents.meta_data.as_str()),
        ("user-data", documents.user_data.as_str()),
    ];
    let built = iso::build(tool, &private, &files)?;
    let bytes = std::fs::read(&built).map_err(io("read", &built))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let target = match std::fs::read(dest) {
        Ok(existing) if existing == bytes => dest.to_path_buf(),
        _ => built,
    };
    let mut changed = target != dest;
    let metadata = std::fs::metadata(&target).map_err(io("inspect", &target))?;
    if metadata.permissions().mode() & 0o7777 != 0o600 {
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod 0600", &target))?;
        changed = true;
    }
    use std::os::unix::fs::MetadataExt;
    if uid.is_some_and(|u| u != metadata.uid()) || gid.is_some_and(|g| g != metadata.gid()) {
        std::os::unix::fs::chown(&target, uid, gid).map_err(io("change the owner of", &target))?;
        changed = true;
    }
    if target != dest {
        std::fs::rename(&target, dest).map_err(io("move the ISO to", dest))?;
    }
    Ok(Written { changed, sha256 })
}

/// Whether `dest` would change: content, mode 0600 or ownership differ.
pub fn would_change(
    dest: &Path,
    documents: &Documents,
    ownership: &Ownership,
) -> Result<bool, SeedError> {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = resolve(ownership)?;
    let Ok(metadata) = std::fs::metadata(dest) else {
        return Ok(true);
    };
    Ok(existing_documents(dest).as_ref() != Some(documents)
        || metadata.permissions().mode() & 0o7777 != 0o600
        || uid.is_some_and(|u| u != metadata.uid())
        || gid.is_some_and(|g| g != metadata.gid()))
}

fn resolve(ownership: &Ownership) -> Result<(Option<u32>, Option<u32>), SeedError> {
    let unknown = |option: &str, name: &str| SeedError::Invalid {
        option: option.into(),
        why: format!("no such {option} {name:?} on this host"),
    };
    let uid = match &ownership.owner {
        None => None,
        Some(name) => Some(
            nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| unknown("owner", name))?
                .uid
                .as_raw(),
        ),
    };
    let gid = match &ownership.group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| unknown("group", name))?
                .gid
                .as_raw(),
        ),
    };
    Ok((uid, gid))
}
