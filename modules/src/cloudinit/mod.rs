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

use crate::privilege::Identity;
use error::io;
use sha2::{Digest, Sha256};
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

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

/// Refuses a `dest` that exists as something other than a regular file or cannot be looked
/// at (a looping link), or whose directory is not one and cannot be made (only the last
/// directory is created), before anything is written.
pub fn check_dest(dest: &Path) -> Result<(), SeedError> {
    let refuse = |why: String| {
        Err(SeedError::Invalid {
            option: "dest".into(),
            why,
        })
    };
    match std::fs::metadata(dest) {
        Ok(metadata) if metadata.is_file() => return Ok(()),
        Ok(_) => {
            return refuse(format!(
                "{} exists and is not a regular file",
                dest.display()
            ))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return refuse(format!("cannot inspect {}: {e}", dest.display()))
        }
        Err(_) => {}
    }
    let parent = directory_of(dest);
    match std::fs::metadata(parent) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => refuse(format!(
            "{}: {} is not a directory",
            dest.display(),
            parent.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && directory_of(parent).is_dir() => {
            Ok(())
        }
        Err(e) => refuse(format!(
            "{}: cannot use its directory {}: {e}",
            dest.display(),
            parent.display()
        )),
    }
}

/// The directory `path` is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Builds the ISO in a private directory next to `dest` and puts it in place (mode 0600,
/// owned by `reader` when given) unless `dest` already holds the same bytes. A missing parent
/// directory is created for `reader` alone (mode 0700), as the original did; every directory
/// on the way must let `reader` through, which is checked before anything is written.
pub fn write(
    dest: &Path,
    tool: IsoTool,
    documents: &Documents,
    reader: Option<&Identity>,
) -> Result<Written, SeedError> {
    check_dest(dest)?;
    let parent = directory_of(dest);
    let mut changed = false;
    if !parent.exists() {
        DirBuilder::new()
            .mode(0o700)
            .create(parent)
            .map_err(io("create the directory", parent))?;
        if let Some(reader) = reader {
            std::os::unix::fs::chown(parent, Some(reader.uid), Some(reader.gid))
                .map_err(io("change the owner of", parent))?;
        }
        changed = true;
    }
    if let Some(reader) = reader {
        check_reachable(dest, reader)?;
    }
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
    changed |= target != dest;
    let metadata = std::fs::metadata(&target).map_err(io("inspect", &target))?;
    if metadata.permissions().mode() & 0o7777 != 0o600 {
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod 0600", &target))?;
        changed = true;
    }
    if reader.is_some_and(|r| (r.uid, r.gid) != (metadata.uid(), metadata.gid())) {
        let reader = reader.expect("checked just above");
        std::os::unix::fs::chown(&target, Some(reader.uid), Some(reader.gid))
            .map_err(io("change the owner of", &target))?;
        changed = true;
    }
    if target != dest {
        std::fs::rename(&target, dest).map_err(io("move the ISO to", dest))?;
    }
    Ok(Written { changed, sha256 })
}

/// Whether `dest` would change: content, mode 0600 or ownership differ. Fails, as [`write`]
/// would, when `reader` could not reach it.
pub fn would_change(
    dest: &Path,
    documents: &Documents,
    reader: Option<&Identity>,
) -> Result<bool, SeedError> {
    check_dest(dest)?;
    if let Some(reader) = reader {
        if dest.parent().is_some_and(Path::exists) {
            check_reachable(dest, reader)?;
        }
    }
    let Ok(metadata) = std::fs::metadata(dest) else {
        return Ok(true);
    };
    Ok(existing_documents(dest).as_ref() != Some(documents)
        || metadata.permissions().mode() & 0o7777 != 0o600
        || reader.is_some_and(|r| (r.uid, r.gid) != (metadata.uid(), metadata.gid())))
}

/// Every directory on the way to `dest` must let `reader` (qemu) through.
fn check_reachable(dest: &Path, reader: &Identity) -> Result<(), SeedError> {
    let blocked = reader
        .blocked_on_the_way_to(dest)
        .map_err(io("inspect the directories leading to", dest))?;
    match blocked {
        None => Ok(()),
        Some(directory) => Err(SeedError::Unreachable {
            dest: dest.to_path_buf(),
            directory,
            reader: reader.describe(),
        }),
    }
}
