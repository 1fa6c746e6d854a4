//! The engine's view of volumes on the hosted-engine storage domain: creating and removing
//! them through the lab's storage, and listing those the database does not know.

use crate::config::LabConfig;
use crate::engine::db::EngineDb;
use crate::storage;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The `DESCRIPTION` the engine writes into a volume's `.meta`.
pub fn description_json(alias: &str, description: &str) -> String {
    serde_json::json!({"DiskAlias": alias, "DiskDescription": description}).to_string()
}

/// Creates the volume of a new disk (image id = disk id, volume id = disk image_id), with
/// the disk type vdsm of the domain's generation writes (`2` before V4, `DATA` after).
pub fn create(
    config: &LabConfig,
    disk_id: &str,
    volume_id: &str,
    capacity_bytes: u64,
    alias: &str,
    description: &str,
    preallocated: bool,
) -> anyhow::Result<PathBuf> {
    let disk_type = if storage::domain_version(config) < 4 {
        "2"
    } else {
        "DATA"
    };
    storage::create_volume(
        config,
        disk_id,
        volume_id,
        capacity_bytes,
        &description_json(alias, description),
        disk_type,
        preallocated,
    )
}

/// Removes the image (all volumes) of disk `disk_id`.
pub fn remove(config: &LabConfig, disk_id: &str) -> anyhow::Result<()> {
    storage::remove_image(config, disk_id)
}

/// One volume found on the storage domain, as its `.meta` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundVolume {
    /// Image (disk) id.
    pub image_id: String,
    /// Volume id.
    pub volume_id: String,
    /// Alias and description from the DESCRIPTION JSON (empty when absent).
    pub alias: String,
    pub description: String,
    /// Virtual size in bytes (`CAP`, or `SIZE` * 512).
    pub capacity_bytes: u64,
    /// Bytes allocated on disk.
    pub actual_bytes: u64,
    /// `raw` or `cow`.
    pub format: String,
    /// `TYPE=SPARSE`.
    pub sparse: bool,
}

/// Volume disk types that are hosted-engine or engine infrastructure, never user disks.
const SPECIAL_DISK_TYPES: &[&str] = &["HESD", "HEMD", "HECI", "OVFS", "ISOF", "MEMD", "MEMM"];

/// Descriptions of the same infrastructure volumes as older vdsm wrote them.
const SPECIAL_DESCRIPTIONS: &[&str] = &[
    "hosted-engine.metadata",
    "hosted-engine.lockspace",
    "HostedEngineConfigurationImage",
    "OVF_STORE",
];

/// Leaf volumes of user disks on the hosted-engine storage domain.
pub fn scan(config: &LabConfig) -> Vec<FoundVolume> {
    storage::list_volumes(config)
        .into_iter()
        .filter(|volume| {
            let field = |key: &str| volume.meta.get(key).map(String::as_str).unwrap_or("");
            field("VOLTYPE") == "LEAF"
                && !SPECIAL_DISK_TYPES.contains(&field("DISKTYPE"))
                && !SPECIAL_DESCRIPTIONS
                    .iter()
                    .any(|special| volume.description().contains(special))
        })
        .map(|volume| {
            let description: serde_json::Value =
                serde_json::from_str(volume.description()).unwrap_or(serde_json::Value::Null);
            let text_of = |key: &str| description[key].as_str().unwrap_or("").to_string();
            let field = |key: &str| volume.meta.get(key).cloned().unwrap_or_default();
            let actual_bytes = std::fs::metadata(&volume.path)
                .map(|m| m.blocks() * 512)
                .unwrap_or(0);
            FoundVolume {
                alias: text_of("DiskAlias"),
                description: text_of("DiskDescription"),
                capacity_bytes: volume.capacity_bytes(),
                actual_bytes,
                format: field("FORMAT").to_lowercase(),
                sparse: field("TYPE") == "SPARSE",
                image_id: volume.image_id,
                volume_id: volume.volume_id,
            }
        })
        .collect()
}

/// Volumes on the hosted-engine domain whose image the database does not know.
pub fn unregistered(config: &LabConfig, db: &EngineDb) -> Vec<FoundVolume> {
    scan(config)
        .into_iter()
        .filter(|volume| db.disk(&volume.image_id).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_json_is_what_the_engine_writes() {
        assert_eq!(
            description_json("he_virtio_disk", "Hosted-Engine disk"),
            "{\"DiskAlias\":\"he_virtio_disk\",\"DiskDescription\":\"Hosted-Engine disk\"}"
        );
    }
}
