//! Member names and link targets that are safe to extract: relative, no `..`, links inside.

/// Normalises a stored member name (`./db/x` -> `db/x`, `./` -> ``), refusing absolute
/// paths and `..` components.
pub fn normalize(raw: &[u8]) -> Result<String, String> {
    let name = String::from_utf8_lossy(raw);
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path contains `..`".into()),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// Checks a symbolic link `member -> target`: a relative target must resolve inside the
/// archive; an absolute one only when `allow_absolute` (the `./files` archive is restored
/// onto `/`, so its absolute links point into the restored system, reference §7).
pub fn check_symlink(member: &str, target: &[u8], allow_absolute: bool) -> Result<(), String> {
    let shown = String::from_utf8_lossy(target);
    if target.is_empty() {
        return Err("symbolic link with an empty target".into());
    }
    if target.starts_with(b"/") {
        return match allow_absolute {
            true => Ok(()),
            false => Err(format!(
                "symbolic link to absolute path {shown:?} leaves the archive"
            )),
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
            return Err(format!("symbolic link to {shown:?} leaves the archive"));
        }
    }
    Ok(())
}

/// Checks a hard link: its target names another member, so it must be a safe member name.
pub fn check_hardlink(target: &[u8]) -> Result<(), String> {
    match normalize(target) {
        Ok(name) if !name.is_empty() => Ok(()),
        _ => Err(format!(
            "hard link to {:?} leaves the archive",
            String::from_utf8_lossy(target)
        )),
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
        assert_eq!(normalize(b"/etc/passwd").unwrap_err(), "absolute path");
        assert!(normalize(b"./db/../../x").unwrap_err().contains(".."));
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
