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
