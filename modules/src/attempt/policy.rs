//! The version policy of an upgrade, as data: which engine -> appliance paths are supported
//! (SPEC 9.3, the releases engine-backup restores across), which data center and cluster
//! compatibility levels each target accepts, and that the backup comes from the running engine.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Supported engine -> appliance `major.minor` paths besides equal versions (SPEC 9.3).
pub const UPGRADE_PATHS: [(&str, &str); 2] = [("3.6", "4.0"), ("4.3", "4.4")];

/// Per target `major.minor`, the data center and cluster levels its engine accepts.
pub const ACCEPTED_LEVELS: [(&str, &[&str]); 3] = [
    ("4.0", &["3.6", "4.0", "4.1"]),
    ("4.4", &["4.2", "4.3", "4.4"]),
    ("4.5", &["4.2", "4.3", "4.4", "4.5"]),
];

/// The policy one upgrade is checked against (the defaults above, or the operator's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionPolicy {
    /// `[from, to]` `major.minor` pairs.
    pub upgrade_paths: Vec<(String, String)>,
    /// Target `major.minor` -> accepted compatibility levels.
    pub accepted_levels: BTreeMap<String, Vec<String>>,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        Self {
            upgrade_paths: UPGRADE_PATHS
                .iter()
                .map(|(from, to)| (from.to_string(), to.to_string()))
                .collect(),
            accepted_levels: ACCEPTED_LEVELS
                .iter()
                .map(|(target, levels)| {
                    (
                        target.to_string(),
                        levels.iter().map(|level| level.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// A data center or cluster and its compatibility level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompatLevel {
    /// `Data center` or `Cluster`.
    pub kind: String,
    /// Its name in the engine.
    pub name: String,
    /// Its compatibility version (`4.3`).
    pub version: String,
}

/// The versions one upgrade involves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeVersions {
    /// The running engine (`4.3.10.4`).
    pub engine: String,
    /// The new appliance (`4.4-20220211.1.el8`).
    pub appliance: String,
    /// The engine that wrote the backup archive.
    pub backup: String,
}

/// Why the versions of an upgrade are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A version without a numeric `major.minor`.
    #[error("the {what} version '{version}' has no numeric major.minor")]
    Unreadable { what: &'static str, version: String },
    /// Not a supported engine -> appliance path.
    #[error("Unsupported upgrade path: engine {engine} -> appliance {appliance}. Supported: {supported} (he_allowed_upgrade_pairs), and equal versions.")]
    Path {
        engine: String,
        appliance: String,
        supported: String,
    },
    /// The backup was taken on another engine version.
    #[error("The backup was taken on engine {backup} but the engine runs {engine}: take a fresh backup on the engine VM with `engine-backup --mode=backup --archive-compressor=gzip --file=engine_backup.tar.gz --log=engine_backup.log`.")]
    BackupFromAnotherEngine { backup: String, engine: String },
    /// A data center or cluster the new engine would not accept.
    #[error("{kind} {name} is at version {version}, which engine {target} does not accept ({accepted}): raise its compatibility level first.")]
    Level {
        kind: String,
        name: String,
        version: String,
        target: String,
        accepted: String,
    },
}

/// `major.minor` of a version (`4.3.10.4` -> `4.3`; `4.4-20220211.1.el8` -> `4.4`).
pub fn major_minor(what: &'static str, version: &str) -> Result<String, PolicyError> {
    let release = version.trim().split(['-', '_']).next().unwrap_or("");
    let mut fields = release.split('.').map(|field| {
        (!field.is_empty() && field.bytes().all(|b| b.is_ascii_digit())).then_some(field)
    });
    match (fields.next().flatten(), fields.next().flatten()) {
        (Some(major), Some(minor)) => Ok(format!("{major}.{minor}")),
        _ => Err(PolicyError::Unreadable {
            what,
            version: version.to_string(),
        }),
    }
}

impl VersionPolicy {
    /// The default policy with the operator's paths and levels, where given.
    pub fn with(
        upgrade_paths: Option<Vec<(String, String)>>,
        accepted_levels: Option<BTreeMap<String, Vec<String>>>,
    ) -> Self {
        let default = Self::default();
        Self {
            upgrade_paths: upgrade_paths.unwrap_or(default.upgrade_paths),
            accepted_levels: accepted_levels.unwrap_or(default.accepted_levels),
        }
    }

    /// Checks the path, the backup's origin and every level; the first refusal wins.
    pub fn check(
        &self,
        versions: &UpgradeVersions,
        levels: &[CompatLevel],
    ) -> Result<(), PolicyError> {
        let engine = major_minor("engine", &versions.engine)?;
        let appliance = major_minor("appliance", &versions.appliance)?;
        let backup = major_minor("backup", &versions.backup)?;
        let supported_path = engine == appliance
            || self
                .upgrade_paths
                .iter()
                .any(|(from, to)| *from == engine && *to == appliance);
        if !supported_path {
            return Err(PolicyError::Path {
                engine,
                appliance,
                supported: self.describe_paths(),
            });
        }
        if backup != engine {
            return Err(PolicyError::BackupFromAnotherEngine { backup, engine });
        }
        let accepted = self
            .accepted_levels
            .get(&appliance)
            .cloned()
            .unwrap_or_else(|| vec![appliance.clone()]);
        match levels
            .iter()
            .find(|level| !accepted.contains(&level.version))
        {
            Some(level) => Err(PolicyError::Level {
                kind: level.kind.clone(),
                name: level.name.clone(),
                version: level.version.clone(),
                target: appliance,
                accepted: accepted.join(", "),
            }),
            None => Ok(()),
        }
    }

    fn describe_paths(&self) -> String {
        self.upgrade_paths
            .iter()
            .map(|(from, to)| format!("{from} -> {to}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(engine: &str, appliance: &str, backup: &str) -> UpgradeVersions {
        UpgradeVersions {
            engine: engine.into(),
            appliance: appliance.into(),
            backup: backup.into(),
        }
    }

    fn level(version: &str) -> CompatLevel {
        CompatLevel {
            kind: "Cluster".into(),
            name: "Default".into(),
            version: version.into(),
        }
    }

    #[test]
    fn the_default_paths_and_equal_versions_pass() {
        let policy = VersionPolicy::default();
        for (engine, appliance) in [
            ("3.6.7.5", "4.0-20161010.1.el7"),
            ("4.3.10.4", "4.4-20220211.1.el8"),
            ("4.4.10", "4.4-20220211.1.el8"),
        ] {
            let checked = policy.check(&versions(engine, appliance, engine), &[level("4.3")]);
            let expected = if appliance.starts_with("4.0") {
                // 4.0 accepts 3.6, 4.0, 4.1 only.
                Err(())
            } else {
                Ok(())
            };
            assert_eq!(checked.map_err(|_| ()), expected, "{engine} -> {appliance}");
        }
        assert_eq!(
            policy.check(&versions("3.6.7.5", "4.0-1", "3.6.7.5"), &[level("3.6")]),
            Ok(())
        );
    }

    #[test]
    fn refusals_say_what_is_wrong_and_what_to_do() {
        let policy = VersionPolicy::default();
        let path = policy
            .check(&versions("3.6.7", "4.4-1.el8", "3.6.7"), &[])
            .unwrap_err()
            .to_string();
        assert!(path.contains("engine 3.6 -> appliance 4.4"), "{path}");
        assert!(path.contains("3.6 -> 4.0, 4.3 -> 4.4"), "{path}");
        let backup = policy
            .check(&versions("4.3.10", "4.4-1.el8", "4.2.8"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            backup.contains("taken on engine 4.2 but the engine runs 4.3"),
            "{backup}"
        );
        let low = policy
            .check(&versions("4.3.10", "4.4-1.el8", "4.3.10"), &[level("4.1")])
            .unwrap_err()
            .to_string();
        assert!(low.contains("Cluster Default is at version 4.1"), "{low}");
        assert!(low.contains("(4.2, 4.3, 4.4)"), "{low}");
        let unreadable = policy
            .check(&versions("latest", "4.4", "4.4"), &[])
            .unwrap_err();
        assert_eq!(
            unreadable,
            PolicyError::Unreadable {
                what: "engine",
                version: "latest".into()
            }
        );
    }

    #[test]
    fn an_operator_policy_replaces_the_paths() {
        let policy = VersionPolicy::with(Some(vec![("4.4".into(), "4.5".into())]), None);
        assert!(policy
            .check(&versions("4.4.10", "4.5-1", "4.4.10"), &[level("4.4")])
            .is_ok());
        assert!(policy
            .check(&versions("4.3.10", "4.4-1", "4.3.10"), &[])
            .is_err());
    }
}
