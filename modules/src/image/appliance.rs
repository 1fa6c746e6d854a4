//! Appliance description files (`/etc/ovirt-hosted-engine/*-appliance.conf`): which OVA and
//! its SHA-1 (host-formats §6: keys `description`, `version`, `path`, `sha1sum`).

use serde::Serialize;
use std::path::{Path, PathBuf};

/// A problem with a description file.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The file could not be read.
    #[error("cannot read appliance description {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A required key is missing or empty.
    #[error("appliance description {path} has no '{key}=' line (needs description, version, path, sha1sum)")]
    Missing { path: PathBuf, key: &'static str },
    /// A value has the wrong form.
    #[error("appliance description {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// One appliance as its description file names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appliance {
    /// Human description.
    pub description: String,
    /// Appliance version (`4.5-20220419.1.el8`).
    pub version: String,
    /// The OVA.
    pub path: PathBuf,
    /// SHA-1 of the OVA, lowercase hex.
    pub sha1sum: String,
}

/// Parses the text of a description file read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Appliance, DescriptionError> {
    let value = |key: &'static str| -> Result<String, DescriptionError> {
        text.lines()
            .filter_map(|line| line.trim().split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or(DescriptionError::Missing {
                path: path.to_path_buf(),
                key,
            })
    };
    let sha1sum = value("sha1sum")?.to_ascii_lowercase();
    if sha1sum.len() != 40 || !sha1sum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DescriptionError::Invalid {
            path: path.to_path_buf(),
            reason: format!("sha1sum '{sha1sum}' is not 40 hex digits"),
        });
    }
    let ova = PathBuf::from(value("path")?);
    if ova.extension().and_then(|e| e.to_str()) != Some("ova") {
        return Err(DescriptionError::Invalid {
            path: path.to_path_buf(),
            reason: format!("path '{}' is not an .ova appliance", ova.display()),
        });
    }
    Ok(Appliance {
        description: value("description")?,
        version: value("version")?,
        path: ova,
        sha1sum,
    })
}

/// Reads and parses a description file.
pub fn load(path: &Path) -> Result<Appliance, DescriptionError> {
    let text = std::fs::read_to_string(path).map_err(|source| DescriptionError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim shape of ovirt-engine-appliance.spec.in's 10-appliance.conf (host-formats §6).
    const SAMPLE: &str = "description=The oVirt Engine Appliance image (OVA)
version=4.5-20220419.1.el8
path=/usr/share/ovirt-engine-appliance/ovirt-engine-appliance-4.5-20220419.1.el8.ova
sha1sum=3F786850E387550FDAB836ED7E6DC881DE23001B
";

    #[test]
    fn parses_the_four_keys() {
        let appliance = parse(Path::new("10-appliance.conf"), SAMPLE).unwrap();
        assert_eq!(appliance.version, "4.5-20220419.1.el8");
        assert_eq!(
            appliance.sha1sum,
            "3f786850e387550fdab836ed7e6dc881de23001b"
        );
        assert!(appliance
            .path
            .ends_with("ovirt-engine-appliance-4.5-20220419.1.el8.ova"));
    }

    #[test]
    fn names_a_missing_key_or_a_bad_value() {
        let missing = parse(
            Path::new("a.conf"),
            &SAMPLE.replace("version=", "# version="),
        );
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("no 'version=' line"));
        let short = parse(Path::new("a.conf"), &SAMPLE.replace("3F786850", "3F"));
        assert!(short.unwrap_err().to_string().contains("not 40 hex digits"));
        let qcow2 = parse(
            Path::new("a.conf"),
            &SAMPLE.replace(".el8.ova", ".el8.qcow2"),
        );
        assert!(qcow2.unwrap_err().to_string().contains("is not an .ova"));
    }
}
