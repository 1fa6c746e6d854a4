//! `/etc/ovirt-hosted-engine/hosted-engine.conf`: `key=value` lines (reference host-formats §2).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Default location of hosted-engine.conf on a host.
pub const DEFAULT_HE_CONF: &str = "/etc/ovirt-hosted-engine/hosted-engine.conf";

/// The `he_conf` option's default: [`DEFAULT_HE_CONF`].
pub fn default_path() -> PathBuf {
    PathBuf::from(DEFAULT_HE_CONF)
}

/// The blank pool id hosted-engine uses with vdsm (reference original-tool §2).
pub const BLANK_UUID: &str = "00000000-0000-0000-0000-000000000000";

/// A volume on a storage domain: what the modules copy from and to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Storage domain id.
    pub sd_id: String,
    /// Image (engine disk) id.
    pub image_id: String,
    /// Volume id.
    pub volume_id: String,
}

/// A problem with hosted-engine.conf.
#[derive(Debug, thiserror::Error)]
pub enum HeConfError {
    /// The file could not be read.
    #[error("cannot read hosted-engine configuration {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key the modules need is missing or empty.
    #[error("hosted-engine configuration {path} has no value for '{key}': is hosted-engine deployed on this host?")]
    Missing { path: PathBuf, key: String },
    /// A key has a value of the wrong form.
    #[error("hosted-engine configuration {path}: '{key}={value}' is not {expected}")]
    Invalid {
        path: PathBuf,
        key: String,
        value: String,
        expected: String,
    },
}

/// The parsed file; typed accessors for the keys the modules use.
#[derive(Debug, Clone)]
pub struct HeConf {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

impl HeConf {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, HeConfError> {
        let text = std::fs::read_to_string(path).map_err(|source| HeConfError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(path, &text))
    }

    /// Parses the text of a hosted-engine.conf read from `path`.
    pub fn parse(path: &Path, text: &str) -> Self {
        let values = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_string(), unquote(value.trim()).to_string()))
            .collect();
        Self {
            path: path.to_path_buf(),
            values,
        }
    }

    /// The value of `key`, if present and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `key`, or an error naming the file and the key.
    pub fn require(&self, key: &str) -> Result<&str, HeConfError> {
        self.get(key).ok_or_else(|| HeConfError::Missing {
            path: self.path.clone(),
            key: key.to_string(),
        })
    }

    /// A required key that must be a UUID.
    pub fn uuid(&self, key: &str) -> Result<&str, HeConfError> {
        let value = self.require(key)?;
        if is_uuid(value) {
            Ok(value)
        } else {
            Err(self.invalid(key, value, "a UUID"))
        }
    }

    /// Engine VM id (`vmid`).
    pub fn vm_id(&self) -> Result<&str, HeConfError> {
        self.uuid("vmid")
    }

    /// Hosted-engine storage domain id (`sdUUID`).
    pub fn sd_id(&self) -> Result<&str, HeConfError> {
        self.uuid("sdUUID")
    }

    /// The storage domain an option names, else this file's `sdUUID`.
    pub fn sd_id_or(&self, given: Option<&str>) -> Result<String, HeConfError> {
        match given {
            Some(id) => Ok(id.to_string()),
            None => self.sd_id().map(str::to_string),
        }
    }

    /// Storage pool id (`spUUID`; the blank UUID on modern deployments).
    pub fn sp_id(&self) -> &str {
        self.get("spUUID").unwrap_or(BLANK_UUID)
    }

    /// This host's HA id (`host_id`).
    pub fn host_id(&self) -> Result<u32, HeConfError> {
        let value = self.require("host_id")?;
        value
            .parse()
            .map_err(|_| self.invalid("host_id", value, "a host number"))
    }

    /// Engine VM FQDN (`fqdn`).
    pub fn fqdn(&self) -> Result<&str, HeConfError> {
        self.require("fqdn")
    }

    /// The engine VM disk: `sdUUID`, `vm_disk_id` (image), `vm_disk_vol_id` (volume).
    pub fn engine_disk(&self) -> Result<Volume, HeConfError> {
        Ok(Volume {
            sd_id: self.sd_id()?.to_string(),
            image_id: self.uuid("vm_disk_id")?.to_string(),
            volume_id: self.uuid("vm_disk_vol_id")?.to_string(),
        })
    }

    /// The configuration volume (`conf_image_UUID`, `conf_volume_UUID`); None on hosts
    /// deployed before 3.6, which kept their configuration in local files.
    pub fn conf_volume(&self) -> Result<Option<Volume>, HeConfError> {
        if self.get("conf_image_UUID").is_none() && self.get("conf_volume_UUID").is_none() {
            return Ok(None);
        }
        Ok(Some(Volume {
            sd_id: self.sd_id()?.to_string(),
            image_id: self.uuid("conf_image_UUID")?.to_string(),
            volume_id: self.uuid("conf_volume_UUID")?.to_string(),
        }))
    }

    /// The management bridge (`bridge`, default `ovirtmgmt`).
    pub fn bridge(&self) -> &str {
        self.get("bridge").unwrap_or("ovirtmgmt")
    }

    /// The local vm.conf path (`conf`).
    pub fn vm_conf(&self) -> Option<&str> {
        self.get("conf")
    }

    fn invalid(&self, key: &str, value: &str, expected: &str) -> HeConfError {
        HeConfError::Invalid {
            path: self.path.clone(),
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Whether `text` has the 8-4-4-4-12 hex form of a UUID.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "fqdn=engine.example.com
vm_disk_id=2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e
vm_disk_vol_id=7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b
vmid=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3
storage=nfs.example.com:/exports/hosted_engine
conf=/var/run/ovirt-hosted-engine-ha/vm.conf
host_id=1
spUUID=00000000-0000-0000-0000-000000000000
sdUUID=9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d
ca_subject=\"C=EN, L=Test, O=Test, CN=Test\"

# The following are used only for iSCSI storage
iqn=
portal=
";

    fn sample() -> HeConf {
        HeConf::parse(Path::new("/etc/he.conf"), SAMPLE)
    }

    #[test]
    fn reads_the_keys_the_modules_use() {
        let conf = sample();
        assert_eq!(conf.fqdn().unwrap(), "engine.example.com");
        assert_eq!(conf.host_id().unwrap(), 1);
        assert_eq!(
            conf.vm_id().unwrap(),
            "4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3"
        );
        assert_eq!(conf.sp_id(), BLANK_UUID);
        assert_eq!(
            conf.get("ca_subject"),
            Some("C=EN, L=Test, O=Test, CN=Test")
        );
        assert_eq!(
            conf.engine_disk().unwrap(),
            Volume {
                sd_id: "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d".into(),
                image_id: "2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e".into(),
                volume_id: "7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b".into(),
            }
        );
    }

    #[test]
    fn empty_values_count_as_missing_and_name_the_key() {
        let err = sample().require("iqn").unwrap_err();
        assert!(err.to_string().contains("no value for 'iqn'"), "{err}");
    }

    #[test]
    fn rejects_a_malformed_uuid() {
        let conf = HeConf::parse(Path::new("/x"), "vmid=not-a-uuid\n");
        assert!(conf
            .vm_id()
            .unwrap_err()
            .to_string()
            .contains("'vmid=not-a-uuid' is not a UUID"));
    }
}
