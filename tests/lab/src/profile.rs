//! The two upgrade paths the lab can play: which engine is on the disk and which in the OVA.

use crate::config::EngineRelease;

/// The default profile: the seed's path, el6 + 3.6 (API v3 only) to el7 + 4.0.
pub const DEFAULT_PROFILE: &str = "el6-3.6:el7-4.0";

/// Every profile name `he-lab init --profile` accepts.
pub const PROFILES: &[&str] = &["el6-3.6:el7-4.0", "el7-4.3:el8-4.4"];

/// Old and new engine releases of `profile`.
pub fn releases(profile: &str) -> anyhow::Result<(EngineRelease, EngineRelease)> {
    let release = |version: &str, os_version: &str, api_versions: &[u8]| EngineRelease {
        version: version.into(),
        os_version: os_version.into(),
        api_versions: api_versions.to_vec(),
    };
    match profile {
        "el6-3.6:el7-4.0" => Ok((
            release("3.6.7.5", "el6", &[3]),
            release("4.0.6.3", "centos7", &[3, 4]),
        )),
        "el7-4.3:el8-4.4" => Ok((
            release("4.3.10.4", "centos7", &[3, 4]),
            release("4.4.10.7", "el8", &[3, 4]),
        )),
        other => anyhow::bail!(
            "unknown profile '{other}': expected one of {}",
            PROFILES.join(", ")
        ),
    }
}

/// `major.minor` of a full engine version (`3.6.7.5` -> `3.6`).
pub fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Whether engine-backup of `installed` accepts a backup made by `backup` (original-tool.md
/// section 7: equal major.minor, or a pair in VALID_BACKUP_RESTORE_PAIRS).
pub fn restore_allowed(backup: &str, installed: &str) -> bool {
    let (from, to) = (major_minor(backup), major_minor(installed));
    from == to
        || matches!(
            (from.as_str(), to.as_str()),
            ("3.6", "4.0") | ("4.3", "4.4")
        )
}

/// vdsm storage domain format version the data center of `release` uses.
pub fn domain_version(release: &EngineRelease) -> u32 {
    match major_minor(&release.version).as_str() {
        "3.6" | "4.0" => 3,
        "4.1" | "4.2" => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_pairs() {
        assert!(restore_allowed("3.6.7.5", "4.0.6.3"));
        assert!(restore_allowed("4.3.10.4", "4.4.10.7"));
        assert!(restore_allowed("4.0.1", "4.0.6.3"));
        assert!(!restore_allowed("3.5.6", "4.0.6.3"));
        assert!(!restore_allowed("4.0.6.3", "3.6.7.5"));
    }

    #[test]
    fn unknown_profile_is_named() {
        let error = releases("el5-3.0:el6-3.6").unwrap_err().to_string();
        assert!(error.contains("el5-3.0:el6-3.6") && error.contains(DEFAULT_PROFILE));
    }
}
