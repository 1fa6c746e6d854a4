//! Which appliance an upgrade installs: the OVA the operator named, or the newest one the
//! host's appliance description files (`*appliance*.conf`, host-formats §6) describe.

use crate::image::appliance::{self, Appliance, DescriptionError};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The appliance chosen, and where its description came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChosenAppliance {
    /// The OVA, its SHA-1 and version.
    #[serde(flatten)]
    pub appliance: Appliance,
    /// The description file it was chosen from (none when the operator named the OVA).
    pub description_file: Option<PathBuf>,
}

/// Why no appliance could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    /// The directory cannot be listed.
    #[error(
        "option 'appliance_desc_dir': cannot list the appliance descriptions in {dir}: {source}"
    )]
    Unlistable {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// No description file there.
    #[error("no appliance description (*appliance*.conf) in {dir}: install the new engine appliance package (ovirt-engine-appliance) or give he_appliance_ova and he_appliance_sha1")]
    NoDescription { dir: PathBuf },
    /// A description file is broken.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// The OVA the operator named is missing, unreadable or not a file.
    #[error("option 'appliance_ova': {path} {problem}")]
    GivenOva { path: PathBuf, problem: String },
}

/// An OVA the operator named (`he_appliance_ova`), with its SHA-1 and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenOva {
    /// The OVA on the host.
    pub path: PathBuf,
    /// Its SHA-1.
    pub sha1: String,
    /// Its version (`4.4-20220211.1.el8`).
    pub version: String,
}

/// The operator's OVA when given, else the newest appliance described in `desc_dir`.
pub fn choose(given: Option<GivenOva>, desc_dir: &Path) -> Result<ChosenAppliance, ChoiceError> {
    match given {
        Some(ova) => Ok(ChosenAppliance {
            // Checked here, before the downtime starts, not when the copy opens it.
            appliance: Appliance {
                description: "he_appliance_ova".into(),
                version: ova.version,
                sha1sum: ova.sha1.to_ascii_lowercase(),
                path: check_given(ova.path)?,
            },
            description_file: None,
        }),
        None => newest_described(desc_dir),
    }
}

/// The operator's OVA must be a regular file that can be looked at.
fn check_given(path: PathBuf) -> Result<PathBuf, ChoiceError> {
    let problem = match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_file() => return Ok(path),
        Ok(_) => "is not a regular file".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(ChoiceError::GivenOva { path, problem })
}

/// The newest appliance described in `dir` (by version; the last file name on a tie).
pub fn newest_described(dir: &Path) -> Result<ChosenAppliance, ChoiceError> {
    let unlistable = |source| ChoiceError::Unlistable {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unlistable)? {
        let path = entry.map_err(unlistable)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.contains("appliance") && name.ends_with(".conf") {
            files.push(path);
        }
    }
    files.sort();
    let mut chosen: Option<ChosenAppliance> = None;
    for file in files {
        let appliance = appliance::load(&file)?;
        let newer = chosen.as_ref().is_none_or(|best| {
            version_key(&appliance.version) >= version_key(&best.appliance.version)
        });
        if newer {
            chosen = Some(ChosenAppliance {
                appliance,
                description_file: Some(file),
            });
        }
    }
    chosen.ok_or_else(|| ChoiceError::NoDescription {
        dir: dir.to_path_buf(),
    })
}

/// The numbers of a version in order (`4.5-20220419.1.el8` -> 4, 5, 20220419, 1, 8), so that
/// 4.10 sorts after 4.9.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap_or(u64::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(dir: &Path, file: &str, version: &str) {
        std::fs::write(
            dir.join(file),
            format!(
                "description=The oVirt Engine Appliance image (OVA)\nversion={version}\n\
                 path=/usr/share/ovirt-engine-appliance/ovirt-engine-appliance-{version}.ova\n\
                 sha1sum=3F786850E387550FDAB836ED7E6DC881DE23001B\n"
            ),
        )
        .unwrap();
    }

    #[test]
    fn the_newest_version_wins_not_the_last_file_name() {
        let dir = tempfile::tempdir().unwrap();
        describe(dir.path(), "10-appliance.conf", "4.10-20230101.1.el9");
        describe(dir.path(), "20-appliance.conf", "4.9-20220419.1.el8");
        std::fs::write(dir.path().join("hosted-engine.conf"), "fqdn=x\n").unwrap();
        let chosen = newest_described(dir.path()).unwrap();
        assert_eq!(chosen.appliance.version, "4.10-20230101.1.el9");
        assert_eq!(
            chosen.description_file.unwrap(),
            dir.path().join("10-appliance.conf")
        );
    }

    #[test]
    fn no_or_a_broken_description_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let none = newest_described(dir.path()).unwrap_err().to_string();
        assert!(none.contains("no appliance description"), "{none}");
        std::fs::write(dir.path().join("10-appliance.conf"), "version=4.4\n").unwrap();
        let broken = newest_described(dir.path()).unwrap_err().to_string();
        assert!(broken.contains("10-appliance.conf"), "{broken}");
    }
}
