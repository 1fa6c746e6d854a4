//! Which engine-backup restores which backup, and which checksum file each version writes:
//! engine-backup's own rules, as data, by the release that brought each one in.

use std::cmp::Ordering;
use std::fmt;

/// `VALID_BACKUP_RESTORE_PAIRS` (`backup target` major.minor): 3.6 -> 4.0 in engine-backup
/// 4.0 to 4.3, 4.3 -> 4.4 from 4.4.0 on. Equal major.minor is always allowed.
const RESTORE_PAIRS: [(&str, &str); 2] = [("3.6", "4.0"), ("4.3", "4.4")];

/// Minimum backup versions a target refuses to go below (verifyVersion).
struct MinimumBackup {
    /// First engine-backup release with the rule.
    target_since: &'static str,
    /// The backup line it applies to.
    backup_line: &'static str,
    /// The oldest backup of that line accepted.
    backup_at_least: &'static str,
    /// engine-backup's reason.
    why: &'static str,
}

/// Since 4.4.3.4: "Prevent upgrading from < 4.3.10" (cinderlib backup came in 4.3.10).
const MINIMUM_BACKUPS: [MinimumBackup; 1] = [MinimumBackup {
    target_since: "4.4.3.4",
    backup_line: "4.3",
    backup_at_least: "4.3.10",
    why: "upgrade the engine to the latest 4.3 and take a new backup",
}];

/// Since 4.4.7 a backup of the same major.minor must not be newer than the installed engine
/// (`looseVersion_le BACKUP_VERSION INSTALLED_VERSION`).
const NOT_NEWER_SINCE: &str = "4.4.7";

/// Since 4.3.3.2 (commit 261fc558eca, BZ 1613833) engine-backup writes `./sha256sum` and
/// verifies with whichever of `./sha256sum`, `./md5sum` it finds first; before, it writes
/// and verifies `./md5sum` only.
const SHA256SUM_SINCE: &str = "4.3.3.2";

/// A checksum file engine-backup writes and verifies with `<hasher> -c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hasher {
    /// `./sha256sum`.
    Sha256sum,
    /// `./md5sum`.
    Md5sum,
}

impl Hasher {
    /// The member name, which is also the tool's.
    pub fn member(self) -> &'static str {
        match self {
            Self::Sha256sum => "sha256sum",
            Self::Md5sum => "md5sum",
        }
    }
}

/// engine-backup's `AVAILABLE_HASHERS`, in its search order.
pub const AVAILABLE_HASHERS: [Hasher; 2] = [Hasher::Sha256sum, Hasher::Md5sum];

/// The checksum file engine-backup of `version` writes.
pub fn written_hasher(version: &EngineVersion) -> Hasher {
    if version.at_least(&EngineVersion::parse(SHA256SUM_SINCE).expect("constant")) {
        Hasher::Sha256sum
    } else {
        Hasher::Md5sum
    }
}

/// The checksum files engine-backup of `version` looks for on restore, in order.
pub fn read_hashers(version: &EngineVersion) -> &'static [Hasher] {
    match written_hasher(version) {
        Hasher::Sha256sum => &AVAILABLE_HASHERS,
        Hasher::Md5sum => &AVAILABLE_HASHERS[1..],
    }
}

/// An engine version as engine-backup compares them: the numeric dot-separated fields
/// before any `-` or `_` (`4.3.11.4`, `3.6.13.5-1.el6`, the appliance's `4.4-20220211.1.el8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    text: String,
    fields: Vec<u64>,
}

impl EngineVersion {
    /// Parses a version; at least `major.minor` must be numeric.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let release = text.split(['-', '_']).next().unwrap_or("");
        let mut fields = Vec::new();
        for field in release.split('.') {
            match field.parse() {
                Ok(number) => fields.push(number),
                Err(_) => break,
            }
        }
        (fields.len() >= 2).then(|| Self {
            text: text.to_string(),
            fields,
        })
    }

    /// `major.minor` (`4.3`).
    pub fn line(&self) -> String {
        format!("{}.{}", self.fields[0], self.fields[1])
    }

    /// Whether this version is `other` or later. A version given with fewer fields
    /// (an appliance's `4.4`) stands for the newest release of what it names, so every rule
    /// of its line applies.
    pub fn at_least(&self, other: &Self) -> bool {
        for (mine, theirs) in self.fields.iter().zip(&other.fields) {
            match mine.cmp(theirs) {
                Ordering::Greater => return true,
                Ordering::Less => return false,
                Ordering::Equal => {}
            }
        }
        true
    }
}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why engine-backup of the target refuses a backup, in engine-backup's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither the same major.minor nor an allowed upgrade pair.
    #[error("engine-backup restores only the same major.minor or the upgrades {pairs}")]
    NotPaired {
        /// The allowed pairs, `from -> to`, comma-separated.
        pairs: String,
    },
    /// A backup newer than the installed engine of the same line.
    #[error("engine-backup {since} and later refuse a backup newer than the installed engine")]
    NewerThanTarget {
        /// The engine-backup release that brought the rule in.
        since: &'static str,
    },
    /// A backup older than the minimum the target accepts from its line.
    #[error(
        "engine-backup {target_since} and later refuse backups of {backup_line} older than {backup_at_least}: {why}"
    )]
    TooOld {
        /// The engine-backup release that brought the rule in.
        target_since: &'static str,
        /// The backup's major.minor.
        backup_line: &'static str,
        /// The oldest backup version accepted.
        backup_at_least: &'static str,
        /// Why the rule exists.
        why: &'static str,
    },
    /// The archive lacks every checksum file the target verifies.
    #[error("its engine-backup verifies only ./{readable}, which the archive lacks")]
    NoReadableChecksum {
        /// The checksum files the target reads, `, ./`-separated.
        readable: String,
    },
}

/// Whether engine-backup of `target` restores a backup made by `backup` and holding the
/// checksum files `hashers`; the error is why not.
pub fn check_restorable(
    backup: &EngineVersion,
    target: &EngineVersion,
    hashers: &[Hasher],
) -> Result<(), Refusal> {
    let version = |text| EngineVersion::parse(text).expect("constant");
    let same_line = backup.line() == target.line();
    let paired = RESTORE_PAIRS
        .iter()
        .any(|(from, to)| backup.line() == *from && target.line() == *to);
    if !same_line && !paired {
        let pairs: Vec<String> = RESTORE_PAIRS
            .iter()
            .map(|(from, to)| format!("{from} -> {to}"))
            .collect();
        return Err(Refusal::NotPaired {
            pairs: pairs.join(", "),
        });
    }
    if same_line && target.at_least(&version(NOT_NEWER_SINCE)) && !target.at_least(backup) {
        return Err(Refusal::NewerThanTarget {
            since: NOT_NEWER_SINCE,
        });
    }
    for rule in &MINIMUM_BACKUPS {
        if target.at_least(&version(rule.target_since))
            && backup.line() == rule.backup_line
            && !backup.at_least(&version(rule.backup_at_least))
        {
            return Err(Refusal::TooOld {
                target_since: rule.target_since,
                backup_line: rule.backup_line,
                backup_at_least: rule.backup_at_least,
                why: rule.why,
            });
        }
    }
    let readable = read_hashers(target);
    if !hashers.iter().any(|h| readable.contains(h)) {
        let names: Vec<&str> = readable.iter().map(|h| h.member()).collect();
        return Err(Refusal::NoReadableChecksum {
            readable: names.join(", ./"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> EngineVersion {
        EngineVersion::parse(text).unwrap()
    }

    fn restorable(backup: &str, target: &str) -> Result<(), String> {
        check_restorable(&v(backup), &v(target), &[written_hasher(&v(backup))])
            .map_err(|refusal| refusal.to_string())
    }

    #[test]
    fn parses_engine_appliance_and_package_versions() {
        assert_eq!(v("4.3.11.4").fields, [4, 3, 11, 4]);
        assert_eq!(v("3.6.13.5-1.el6").fields, [3, 6, 13, 5]);
        assert_eq!(v("4.4-20220211.1.el8").fields, [4, 4]);
        assert_eq!(v("4.4.0_beta1").line(), "4.4");
        assert_eq!(EngineVersion::parse("garbage"), None);
        assert_eq!(EngineVersion::parse("4"), None);
    }

    #[test]
    fn the_checksum_file_follows_the_version_that_writes_it() {
        assert_eq!(written_hasher(&v("3.6.13.5")), Hasher::Md5sum);
        assert_eq!(written_hasher(&v("4.3.2")), Hasher::Md5sum);
        assert_eq!(written_hasher(&v("4.3.3.1")), Hasher::Md5sum);
        assert_eq!(written_hasher(&v("4.3.3.2")), Hasher::Sha256sum);
        assert_eq!(written_hasher(&v("4.3.11.4")), Hasher::Sha256sum);
        assert_eq!(read_hashers(&v("4.0.7")), [Hasher::Md5sum]);
        assert_eq!(read_hashers(&v("4.4")), AVAILABLE_HASHERS);
    }

    /// engine-backup's verifyVersion, target by target (oVirt/ovirt-engine tags).
    #[test]
    fn follows_engine_backup_version_rules() {
        let table = [
            ("3.6.13.5", "4.0.7.4", true),
            ("3.6.7.5", "4.0", true),
            ("3.6.13.5", "4.4.10", false),
            ("4.0.6", "4.3", false),
            ("4.1.9", "4.1.2", true),
            ("4.3.2", "4.4.3.3", true),
            ("4.3.2", "4.4.3.4", false),
            ("4.3.9", "4.4.10.7", false),
            ("4.3.10.4", "4.4.10.7", true),
            ("4.3.11.4", "4.4", true),
            ("4.3.9", "4.4-20220211.1.el8", false),
            ("4.4.10.7", "4.4.6", true),
            ("4.4.10.7", "4.4.7", false),
            ("4.4.5", "4.4.10.7", true),
        ];
        for (backup, target, expected) in table {
            assert_eq!(
                restorable(backup, target).is_ok(),
                expected,
                "{backup} -> {target}: {:?}",
                restorable(backup, target)
            );
        }
        let error = restorable("4.3.9", "4.4.10").unwrap_err();
        assert!(error.contains("older than 4.3.10"), "{error}");
    }

    #[test]
    fn an_older_target_needs_the_md5sum_it_knows() {
        let error = check_restorable(&v("4.3.3.2"), &v("4.3.2"), &[Hasher::Sha256sum])
            .unwrap_err()
            .to_string();
        assert!(error.contains("only ./md5sum"), "{error}");
        assert!(check_restorable(&v("4.3.2"), &v("4.4.2"), &[Hasher::Md5sum]).is_ok());
    }
}
