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
            release("3.6.7.5", "centos6", &[3]),
            release("4.0.6.3", "centos7", &[3, 4]),
        )),
        "el7-4.3:el8-4.4" => Ok((
            release("4.3.10.4", "centos7", &[3, 4]),
            release("4.4.10.7", "centos8", &[3, 4]),
        )),
        other => anyhow::bail!(
            "unknown profile '{other}': expected one of {}",
            PROFILES.join(", ")
        ),
    }
}

/// The vdsm of the host a profile plays (where the playbooks run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVdsm {
    /// vdsm 4.18 (oVirt 4.0, el7): Python 2, no `vdsm-client` (it came with 4.19), still
    /// answers the 3.5-era `/queue/_local/vdsm/requests`.
    V4_18,
    /// vdsm 4.40 (oVirt 4.4, el8): Python 3, `vdsm-client`, request queues matched by prefix.
    V4_40,
}

impl HostVdsm {
    /// The host vdsm of `profile` (profiles are validated at init).
    pub fn of(profile: &str) -> Self {
        if profile == "el6-3.6:el7-4.0" {
            HostVdsm::V4_18
        } else {
            HostVdsm::V4_40
        }
    }

    /// The vdsm package version.
    pub fn version(self) -> &'static str {
        match self {
            HostVdsm::V4_18 => "4.18.21",
            HostVdsm::V4_40 => "4.40.90",
        }
    }

    /// Whether the host has `vdsm-client` (vdsm 4.19 and later, oVirt/vdsm d5a4fa98b).
    pub fn has_vdsm_client(self) -> bool {
        self != HostVdsm::V4_18
    }
}

/// `major.minor` of a full engine version (`3.6.7.5` -> `3.6`).
pub fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The numeric fields of a version (`4.3.10.4` -> `[4, 3, 10, 4]`), up to a `-` or `_`.
fn fields(version: &str) -> Vec<u64> {
    version
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|field| field.parse().ok())
        .collect()
}

/// Whether `version` is `since` or later.
fn at_least(version: &str, since: &str) -> bool {
    fields(version) >= fields(since)
}

/// The checksum file engine-backup of `version` writes: `sha256sum` from 4.3.3.2 on
/// (oVirt/ovirt-engine 261fc558eca), `md5sum` before.
pub fn checksum_file(version: &str) -> &'static str {
    match at_least(version, "4.3.3.2") {
        true => "sha256sum",
        false => "md5sum",
    }
}

/// The checksum files engine-backup of `installed` looks for on restore, in its order
/// (`AVAILABLE_HASHERS`); before 4.3.3.2 only `md5sum`.
pub fn restore_checksum_files(installed: &str) -> &'static [&'static str] {
    match at_least(installed, "4.3.3.2") {
        true => &["sha256sum", "md5sum"],
        false => &["md5sum"],
    }
}

/// The databases whose `<DB>_DUMP_FORMAT` and `<DB>_DUMP_COMPRESSOR` engine-backup of
/// `version` writes into `./config` (its `dump_config_for_restore`).
pub fn config_databases(version: &str) -> &'static [&'static str] {
    if at_least(version, "4.4") {
        &["DB", "DWH_DB", "CINDERLIB_DB"]
    } else if at_least(version, "4.3.10") {
        &["DB", "DWH_DB", "REPORTS_DB", "CINDERLIB_DB"]
    } else {
        &["DB", "DWH_DB", "REPORTS_DB"]
    }
}

/// Why engine-backup of `installed` refuses a backup made by `backup` (its verifyVersion,
/// original-tool.md section 7), or None when it accepts it: equal major.minor (from 4.4.7 not
/// newer than `installed`) or a pair of VALID_BACKUP_RESTORE_PAIRS; from 4.4.3.4 no 4.3
/// backup older than 4.3.10.
pub fn restore_refusal(backup: &str, installed: &str) -> Option<String> {
    let (from, to) = (major_minor(backup), major_minor(installed));
    // Until 4.4.3.3 the message names major.minor, from 4.4.3.4 on the full versions.
    let (named_backup, named_installed) = match at_least(installed, "4.4.3.4") {
        true => (backup.to_string(), installed.to_string()),
        false => (from.clone(), to.clone()),
    };
    let refused = || {
        Some(format!(
            "Backup was created by version '{named_backup}' and can not be restored using the installed version {named_installed}"
        ))
    };
    let paired = matches!(
        (from.as_str(), to.as_str()),
        ("3.6", "4.0") | ("4.3", "4.4")
    );
    if from != to && !paired {
        return refused();
    }
    if from == to && at_least(installed, "4.4.7") && !at_least(installed, backup) {
        return refused();
    }
    if from == "4.3" && at_least(installed, "4.4.3.4") && !at_least(backup, "4.3.10") {
        return refused();
    }
    None
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
    fn restore_rules_follow_engine_backup() {
        assert_eq!(restore_refusal("3.6.7.5", "4.0.6.3"), None);
        assert_eq!(restore_refusal("4.3.10.4", "4.4.10.7"), None);
        assert_eq!(restore_refusal("4.0.1", "4.0.6.3"), None);
        assert!(restore_refusal("3.5.6", "4.0.6.3").is_some());
        assert!(restore_refusal("4.0.6.3", "3.6.7.5").is_some());
        assert!(restore_refusal("4.3.9", "4.4.10.7").is_some());
        assert_eq!(restore_refusal("4.3.9", "4.4.3.3"), None);
        assert!(restore_refusal("4.4.10.7", "4.4.8").is_some());
        assert_eq!(
            restore_refusal("3.5.6", "4.0.6.3").unwrap(),
            "Backup was created by version '3.5' and can not be restored using the installed version 4.0"
        );
        assert!(restore_refusal("4.3.9", "4.4.10.7")
            .unwrap()
            .contains("'4.3.9' and can not be restored using the installed version 4.4.10.7"));
    }

    #[test]
    fn checksum_files_and_config_follow_the_version() {
        assert_eq!(checksum_file("3.6.7.5"), "md5sum");
        assert_eq!(checksum_file("4.3.2"), "md5sum");
        assert_eq!(checksum_file("4.3.10.4"), "sha256sum");
        assert_eq!(restore_checksum_files("4.0.6.3"), ["md5sum"]);
        assert_eq!(restore_checksum_files("4.4.10.7"), ["sha256sum", "md5sum"]);
        assert_eq!(config_databases("3.6.7.5").len(), 3);
        assert!(config_databases("4.3.10.4").contains(&"CINDERLIB_DB"));
    }

    #[test]
    fn unknown_profile_is_named() {
        let error = releases("el5-3.0:el6-3.6").unwrap_err().to_string();
        assert!(error.contains("el5-3.0:el6-3.6") && error.contains(DEFAULT_PROFILE));
    }
}
