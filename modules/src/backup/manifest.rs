//! The small text members: `./md5sum` lines and `./version` (reference §7).

/// One `./md5sum` line: `<md5>  <relative path>` (`md5sum` text or `*` binary mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Md5Line {
    /// The member, normalised (`db/engine_backup.db`).
    pub member: String,
    /// Lower-case hex MD5.
    pub md5: String,
}

/// Parses `./md5sum`; a malformed or unsafe line is an error naming its number.
pub fn parse_md5sum(text: &str) -> Result<Vec<Md5Line>, String> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| format!("./md5sum line {}: {why}: {line:?}", index + 1);
        let (md5, rest) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected `<md5>  <path>`"))?;
        let path = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(|| bad("expected two spaces between checksum and path"))?;
        if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("not an MD5 checksum"));
        }
        let member =
            super::member::normalize(path.as_bytes()).map_err(|why| bad(&why.to_string()))?;
        lines.push(Md5Line {
            member,
            md5: md5.to_ascii_lowercase(),
        });
    }
    Ok(lines)
}

/// The engine version written by engine-backup (`4.1.9.1`), checked to start with
/// `major.minor`.
pub fn parse_version(text: &str) -> Option<String> {
    let version = text.lines().next().unwrap_or("").trim();
    let mut parts = version.split(['.', '-', '_']);
    let numeric = |part: Option<&str>| {
        part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    (numeric(parts.next()) && numeric(parts.next())).then(|| version.to_string())
}

/// `major.minor` of a version (`4.1.9.1` -> `4.1`).
pub fn major_minor(version: &str) -> String {
    version
        .split(['.', '-', '_'])
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether engine-backup of `target` restores a backup made by `backup`: equal major.minor,
/// or a `FROM:TO` pair in `allowed_upgrades` (engine-backup's VALID_BACKUP_RESTORE_PAIRS,
/// reference §7).
pub fn restorable(backup: &str, target: &str, allowed_upgrades: &[String]) -> bool {
    let (from, to) = (major_minor(backup), major_minor(target));
    from == to
        || allowed_upgrades
            .iter()
            .any(|pair| pair.trim() == format!("{from}:{to}"))
}

/// [`restorable`], as an error naming the versions and the allowed pairs.
pub fn check_restorable(
    backup: &str,
    target: &str,
    allowed_upgrades: &[String],
) -> Result<(), super::BackupError> {
    match restorable(backup, target, allowed_upgrades) {
        true => Ok(()),
        false => Err(super::BackupError::NotRestorable {
            backup: backup.to_string(),
            target: target.to_string(),
            allowed: allowed_upgrades.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_restorable_version_pairs() {
        let allowed = ["3.6:4.0".to_string(), "4.3:4.4".to_string()];
        assert!(restorable("3.6.7.5", "4.0", &allowed));
        assert!(restorable("4.3.10.4", "4.4.10", &allowed));
        assert!(restorable("4.1.9", "4.1", &allowed));
        assert!(!restorable("3.6.7.5", "4.4", &allowed));
        assert!(!restorable("4.0.6", "4.3", &allowed));
    }

    #[test]
    fn parses_engine_backup_md5sum() {
        let text = "d41d8cd98f00b204e9800998ecf8427e  db/engine_backup.db\n\
                    0CC175B9C0F1B6A831C399E269772661 *files\n";
        let lines = parse_md5sum(text).unwrap();
        assert_eq!(lines[0].member, "db/engine_backup.db");
        assert_eq!(
            lines[1],
            Md5Line {
                member: "files".into(),
                md5: "0cc175b9c0f1b6a831c399e269772661".into()
            }
        );
    }

    #[test]
    fn names_the_bad_line() {
        let error =
            parse_md5sum("d41d8cd98f00b204e9800998ecf8427e  version\nzz  config\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        let error = parse_md5sum("d41d8cd98f00b204e9800998ecf8427e  ../x\n").unwrap_err();
        assert!(error.contains(".."), "{error}");
    }

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("4.1.9.1\n").as_deref(), Some("4.1.9.1"));
        assert_eq!(
            parse_version("3.6.7.5-1.el6").as_deref(),
            Some("3.6.7.5-1.el6")
        );
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version(""), None);
    }
}
