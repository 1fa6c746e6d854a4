//! Member names and link targets that are safe to extract: relative, no `..`, links inside.

/// Why a member may not be extracted: its name, link target or type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    /// A device node or fifo.
    #[error("device or fifo member")]
    Device,
    /// A tar entry type engine-backup never writes.
    #[error("unsupported member type {kind}")]
    UnsupportedType { kind: String },
    /// A member name starting at `/`.
    #[error("absolute path")]
    Absolute,
    /// A `..` component.
    #[error("path contains `..`")]
    ParentComponent,
    /// A symbolic link to nothing.
    #[error("symbolic link with an empty target")]
    EmptyLink,
    /// A symbolic link to an absolute path where those are not allowed.
    #[error("symbolic link to absolute path {target:?} leaves the archive")]
    AbsoluteLink { target: String },
    /// A symbolic link whose `..` climb out of the archive.
    #[error("symbolic link to {target:?} leaves the archive")]
    LinkLeaves { target: String },
    /// A hard link to something that is not a member.
    #[error("hard link to {target:?} leaves the archive")]
    HardLinkLeaves { target: String },
}

/// Normalises a stored member name (`./db/x` -> `db/x`, `./` -> ``), refusing absolute
/// paths and `..` components.
pub fn normalize(raw: &[u8]) -> Result<String, Unsafe> {
    let name = String::from_utf8_lossy(raw);
    if name.starts_with('/') {
        return Err(Unsafe::Absolute);
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Unsafe::ParentComponent),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// Checks a symbolic link `member -> target`: a relative target must resolve inside the
/// archive; an absolute one only when `allow_absolute` (the `./files` archive is restored
/// onto `/`, so its absolute links point into the restored system, reference §7).
pub fn check_symlink(member: &str, target: &[u8], allow_absolute: bool) -> Result<(), Unsafe> {
    let shown = String::from_utf8_lossy(target);
    if target.is_empty() {
        return Err(Unsafe::EmptyLink);
    }
    if target.starts_with(b"/") {
        return match allow_absolute {
            true => Ok(()),
            false => Err(Unsafe::AbsoluteLink {
                target: shown.into_owned(),
            }),
        };
    }
    let mut depth = member.split('/').filter(|p| !p.is_empty()).count() as i64 - 1;
    for part in shown.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return Err(Unsafe::LinkLeaves {
                target: shown.into_owned(),
            });
        }
    }
    Ok(())
}

/// Checks a hard link: its target names another member, so it must be a safe member name.
pub fn check_hardlink(target: &[u8]) -> Result<(), Unsafe> {
    match normalize(target) {
        Ok(name) if !name.is_empty() => Ok(()),
        _ => Err(Unsafe::HardLinkLeaves {
            target: String::from_utf8_lossy(target).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_engine_backup_names() {
        assert_eq!(
            normalize(b"./db/engine_backup.db").unwrap(),
            "db/engine_backup.db"
        );
        assert_eq!(normalize(b"./").unwrap(), "");
        assert_eq!(normalize(b"etc/ovirt-engine/").unwrap(), "etc/ovirt-engine");
    }

    #[test]
    fn refuses_absolute_and_parent_paths() {
        assert_eq!(normalize(b"/etc/passwd"), Err(Unsafe::Absolute));
        assert_eq!(
            normalize(b"./db/../../x").unwrap_err().to_string(),
            "path contains `..`"
        );
        assert!(normalize(b"..").is_err());
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(check_symlink("etc/pki/a.pem", b"ca.pem", false).is_ok());
        assert!(check_symlink("etc/pki/a.pem", b"../../x", false).is_ok());
        assert!(check_symlink("etc/pki/a.pem", b"../../../x", false).is_err());
        assert!(check_symlink("link", b"/etc/shadow", false).is_err());
        assert!(check_symlink("link", b"/etc/shadow", true).is_ok());
        assert!(check_symlink("a/b", b"c/../../..", false).is_err());
        assert!(check_symlink("a", b"", true).is_err());
    }

    #[test]
    fn hardlinks_name_members() {
        assert!(check_hardlink(b"./db/engine_backup.db").is_ok());
        assert!(check_hardlink(b"/etc/shadow").is_err());
        assert!(check_hardlink(b"../outside").is_err());
    }
}
