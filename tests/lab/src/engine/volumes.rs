//! The engine's view of volumes on the hosted-engine storage domain: creating and removing
//! them through the lab's storage, and listing those the database does not know.

use crate::config::LabConfig;
use crate::engine::db::EngineDb;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `DESCRIPTION` the engine writes into a volume's `.meta`.
pub fn description_json(alias: &str, description: &str) -> String {
    serde_json::json!({"DiskAlias": alias, "DiskDescription": description}).to_string()
}

/// Creates the volume of a new disk (image id = disk id, volume id = disk image_id).
// TODO(storage): switch to `crate::storage::create_volume` once the lab's storage module lands.
pub fn create(
    config: &LabConfig,
    disk_id: &str,
    volume_id: &str,
    capacity_bytes: u64,
    alias: &str,
    description: &str,
    preallocated: bool,
) -> anyhow::Result<PathBuf> {
    let image_dir = config.sd_dir().join("images").join(disk_id);
    std::fs::create_dir_all(&image_dir)?;
    let path = image_dir.join(volume_id);
    // Both kinds are sparse files here; TYPE in the .meta carries the allocation policy.
    std::fs::File::create(&path)?.set_len(capacity_bytes)?;
    std::fs::File::create(image_dir.join(format!("{volume_id}.lease")))?;
    let domain_version = std::fs::read_to_string(config.sd_dir().join("dom_md/metadata"))
        .ok()
        .and_then(|text| {
            parse_meta(&text)
                .get("VERSION")
                .and_then(|v| v.parse::<u32>().ok())
        })
        .unwrap_or(5);
    let mut meta = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        meta.insert(key.to_string(), value);
    };
    put("CTIME", (crate::engine::clock::now_ms() / 1000).to_string());
    put("DESCRIPTION", description_json(alias, description));
    put("DISKTYPE", "DATA".into());
    put("DOMAIN", config.sd_id.clone());
    put("FORMAT", "RAW".into());
    put("GEN", "0".into());
    put("IMAGE", disk_id.to_string());
    put("LEGALITY", "LEGAL".into());
    put("PUUID", "00000000-0000-0000-0000-000000000000".into());
    put(
        "TYPE",
        if preallocated {
            "PREALLOCATED"
        } else {
            "SPARSE"
        }
        .into(),
    );
    put("VOLTYPE", "LEAF".into());
    if domain_version < 5 {
        put("MTIME", "0".into());
        put("SIZE", (capacity_bytes / 512).to_string());
    } else {
        put("CAP", capacity_bytes.to_string());
        put("SEQ", "0".into());
    }
    let mut text: String = meta.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    text.push_str("EOF\n");
    std::fs::write(image_dir.join(format!("{volume_id}.meta")), text)?;
    Ok(path)
}

/// Removes the image (all volumes) of disk `disk_id`.
pub fn remove(config: &LabConfig, disk_id: &str) -> anyhow::Result<()> {
    let image_dir = config.sd_dir().join("images").join(disk_id);
    if image_dir.exists() {
        std::fs::remove_dir_all(image_dir)?;
    }
    Ok(())
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

/// Parses a vdsm `.meta` (`KEY=value` lines up to `EOF`).
pub fn parse_meta(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .take_while(|line| !line.starts_with("EOF"))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Leaf volumes of user disks on the hosted-engine storage domain.
pub fn scan(config: &LabConfig) -> Vec<FoundVolume> {
    let mut found = Vec::new();
    let Ok(images) = std::fs::read_dir(config.sd_dir().join("images")) else {
        return found;
    };
    for image in images.flatten() {
        let Ok(entries) = std::fs::read_dir(image.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("meta") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let meta = parse_meta(&text);
            let field = |key: &str| meta.get(key).cloned().unwrap_or_default();
            let description_text = field("DESCRIPTION");
            if field("VOLTYPE") != "LEAF"
                || SPECIAL_DISK_TYPES.contains(&field("DISKTYPE").as_str())
                || SPECIAL_DESCRIPTIONS
                    .iter()
                    .any(|special| description_text.contains(special))
            {
                continue;
            }
            let description: serde_json::Value =
                serde_json::from_str(&description_text).unwrap_or(serde_json::Value::Null);
            let text_of = |key: &str| description[key].as_str().unwrap_or("").to_string();
            let capacity_bytes = match meta.get("CAP").and_then(|v| v.parse::<u64>().ok()) {
                Some(capacity) => capacity,
                None => meta
                    .get("SIZE")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
                    .saturating_mul(512),
            };
            let volume_path = path.with_extension("");
            let actual_bytes = std::fs::metadata(&volume_path)
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    m.blocks() * 512
                })
                .unwrap_or(0);
            found.push(FoundVolume {
                image_id: image.file_name().to_string_lossy().into_owned(),
                volume_id: volume_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                alias: text_of("DiskAlias"),
                description: text_of("DiskDescription"),
                capacity_bytes,
                actual_bytes,
                format: field("FORMAT").to_lowercase(),
                sparse: field("TYPE") == "SPARSE",
            });
        }
    }
    found.sort_by(|a, b| a.image_id.cmp(&b.image_id));
    found
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
    fn parses_meta_up_to_eof() {
        let meta = parse_meta("CAP=1024\nDESCRIPTION={\"DiskAlias\":\"a=b\"}\nEOF\nJUNK=1\n");
        assert_eq!(meta.get("CAP").map(String::as_str), Some("1024"));
        assert_eq!(
            meta.get("DESCRIPTION").map(String::as_str),
            Some("{\"DiskAlias\":\"a=b\"}")
        );
        assert!(!meta.contains_key("JUNK"));
    }

    #[test]
    fn description_json_is_what_the_engine_writes() {
        assert_eq!(
            description_json("he_virtio_disk", "Hosted-Engine disk"),
            "{\"DiskAlias\":\"he_virtio_disk\",\"DiskDescription\":\"Hosted-Engine disk\"}"
        );
    }
}
