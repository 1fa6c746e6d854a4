//! Hosted-engine backup disks: their names, the free-space rule, and finding them in the
//! engine's volume metadata through vdsm when the engine itself is down (SPEC 4.3).
//!
//! The engine writes each volume's description as JSON (`{"DiskAlias": .., "DiskDescription": ..}`,
//! host-formats §3); a backup disk is one whose alias or description starts with
//! [`BACKUP_PREFIX`] (the original tool put the label in the description, SPEC 9.2).

use super::disks::Disk;
use super::storage_domains::StorageDomain;
use crate::host::vdsm::{Vdsm, VdsmError};
use crate::host::Volume;
use crate::image::proof::VerifiedProof;
use serde::{Deserialize, Deserializer, Serialize};

/// Name prefix of every backup disk.
pub const BACKUP_PREFIX: &str = "hosted-engine-backup-";

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A backup disk, as every state of `he_backup_disk` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupDisk {
    /// Disk id (= image id).
    pub id: String,
    /// Name (the `hosted-engine-backup-...` label).
    pub name: String,
    /// Image id (same as `id`: the engine's disk id is vdsm's image id).
    pub image_id: String,
    /// Volume id.
    pub volume_id: String,
    /// Virtual size in bytes.
    pub size: u64,
    /// Storage domain id.
    pub sd_id: String,
    /// Creation time (UTC, RFC 3339), when known.
    pub created: Option<String>,
    /// Engine disk status (`ok`, `locked`) or vdsm volume status (`OK`, `ILLEGAL`).
    pub status: String,
    /// The proof of its verified copy kept in its volume metadata (vdsm listing only).
    pub verified: Option<VerifiedProof>,
}

impl BackupDisk {
    /// From the engine's view of the disk.
    pub fn from_engine(disk: &Disk, created: Option<String>) -> BackupDisk {
        BackupDisk {
            id: disk.id.clone(),
            name: backup_label(&disk.name, &disk.description)
                .unwrap_or(&disk.name)
                .to_string(),
            image_id: disk.id.clone(),
            volume_id: disk.volume_id.clone(),
            size: disk.size_bytes,
            sd_id: disk.sd_id.clone(),
            created,
            status: disk.status.clone(),
            verified: None,
        }
    }

    /// The volume to copy to or from.
    pub fn volume(&self) -> Volume {
        Volume {
            sd_id: self.sd_id.clone(),
            image_id: self.image_id.clone(),
            volume_id: self.volume_id.clone(),
        }
    }
}

/// The default name: prefix + local time `YYYYMMDDHHMMSS` (as the original, SPEC 9.2).
pub fn default_name() -> String {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("{BACKUP_PREFIX}{stamp}")
}

/// Whichever of alias and description is a backup label.
pub fn backup_label<'a>(alias: &'a str, description: &'a str) -> Option<&'a str> {
    [alias, description]
        .into_iter()
        .find(|text| text.starts_with(BACKUP_PREFIX))
}

/// Not enough room for the backup disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not enough free space on storage domain {sd_name} ({sd_id}) for the backup disk: it needs {} ({needed_bytes} bytes) but only {} ({available_bytes} bytes) are available; extend the storage domain by at least {} ({} bytes) and run again", gib(*.needed_bytes), gib(*.available_bytes), gib(.needed_bytes - .available_bytes), .needed_bytes - .available_bytes)]
pub struct NoSpace {
    /// Storage domain name.
    pub sd_name: String,
    /// Storage domain id.
    pub sd_id: String,
    /// Size of the disk to create.
    pub needed_bytes: u64,
    /// Free bytes on the domain.
    pub available_bytes: u64,
}

/// Fails unless `sd` has room for a disk of `size_bytes`.
pub fn check_space(sd: &StorageDomain, size_bytes: u64) -> Result<(), NoSpace> {
    if sd.available >= size_bytes {
        return Ok(());
    }
    Err(NoSpace {
        sd_name: sd.name.clone(),
        sd_id: sd.id.clone(),
        needed_bytes: size_bytes,
        available_bytes: sd.available,
    })
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB)
}

/// A `size` that is not a usable size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No leading number.
    #[error("'{text}' is not a size (bytes, or a number with K/M/G/T or KiB/MiB/GiB/TiB)")]
    NotASize { text: String },
    /// A unit other than K, M, G, T.
    #[error("'{text}' has an unknown unit '{unit}'; use K, M, G or T (binary)")]
    UnknownUnit { text: String, unit: String },
    /// Zero, or more bytes than fit.
    #[error("'{text}' is not a usable size")]
    Unusable { text: String },
}

/// A size option: bytes as a number, or a string with an optional binary unit (`50GiB`, `512M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    /// Parses `1073741824`, `1024M`, `1GiB`, `2 TiB`.
    pub fn parse(text: &str) -> Result<Size, SizeError> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits.parse().map_err(|_| SizeError::NotASize {
            text: text.to_string(),
        })?;
        let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
            "" => 0,
            "K" | "k" => 10,
            "M" | "m" => 20,
            "G" | "g" => 30,
            "T" | "t" => 40,
            other => {
                return Err(SizeError::UnknownUnit {
                    text: text.to_string(),
                    unit: other.to_string(),
                })
            }
        };
        number
            .checked_mul(1u64 << shift)
            .filter(|bytes| *bytes > 0)
            .map(Size)
            .ok_or_else(|| SizeError::Unusable {
                text: text.to_string(),
            })
    }
}

/// Documented as Ansible's `raw`: a number of bytes or a string with a unit.
impl schemars::JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["integer", "string"] })
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(0) => Err(serde::de::Error::custom("a size must be more than 0 bytes")),
            Raw::Number(bytes) => Ok(Size(bytes)),
            Raw::Text(text) => Size::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// The label stored in a volume's description, if it names a backup disk.
pub fn label_of_description(description: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Described {
        #[serde(rename = "DiskAlias", default)]
        alias: String,
        #[serde(rename = "DiskDescription", default)]
        description: String,
    }
    match serde_json::from_str::<Described>(description) {
        Ok(described) => backup_label(&described.alias, &described.description).map(str::to_string),
        // Descriptions before 3.5 are plain text.
        Err(_) => backup_label(description, "").map(str::to_string),
    }
}

/// Every backup disk on storage domain `sd_id`, from vdsm alone (works with the engine
/// down), newest first, each with the proof of its verified copy when its metadata holds one.
pub fn list_from_vdsm(vdsm: &Vdsm, sp_id: &str, sd_id: &str) -> Result<Vec<BackupDisk>, VdsmError> {
    let mut found = Vec::new();
    for image_id in vdsm.storage_domain_images(sd_id)? {
        for volume_id in vdsm.image_volumes(sp_id, sd_id, &image_id)? {
            let volume = Volume {
                sd_id: sd_id.to_string(),
                image_id: image_id.clone(),
                volume_id,
            };
            let info = vdsm.volume_info(sp_id, &volume)?;
            let Some(name) = label_of_description(&info.description) else {
                continue;
            };
            found.push((
                info.created_epoch_s,
                BackupDisk {
                    id: image_id.clone(),
                    name,
                    image_id: image_id.clone(),
                    volume_id: volume.volume_id,
                    size: info.capacity_bytes,
                    sd_id: sd_id.to_string(),
                    created: rfc3339(info.created_epoch_s),
                    verified: VerifiedProof::read(&info.description),
                    status: info.status,
                },
            ));
        }
    }
    found.sort_by(|(a_time, a), (b_time, b)| b_time.cmp(a_time).then_with(|| b.name.cmp(&a.name)));
    Ok(found.into_iter().map(|(_, disk)| disk).collect())
}

/// Creation time of a volume from vdsm's metadata; best effort (the engine does not report it).
pub fn creation_time(vdsm: &Vdsm, sp_id: &str, volume: &Volume) -> Option<String> {
    match vdsm.volume_info(sp_id, volume) {
        Ok(info) => rfc3339(info.created_epoch_s),
        Err(error) => {
            tracing::debug!("no creation time for {}: {error}", volume.image_id);
            None
        }
    }
}

/// Why a disk may not be deleted as a backup disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undeletable {
    /// It is the engine VM's own disk.
    #[error("disk {name} ({id}) is the hosted-engine VM disk: refusing to delete it")]
    EngineDisk { name: String, id: String },
    /// It carries no backup label.
    #[error("disk {name} ({id}) is not a backup disk (neither its name nor its description starts with {prefix}): refusing to delete it", prefix = BACKUP_PREFIX)]
    NotABackup { name: String, id: String },
}

/// Refuses to delete the hosted-engine VM disk, or any disk that is not a backup disk.
pub fn check_deletable(disk: &Disk, engine_image_id: &str) -> Result<(), Undeletable> {
    let (name, id) = (disk.name.clone(), disk.id.clone());
    if disk.id == engine_image_id {
        return Err(Undeletable::EngineDisk { name, id });
    }
    if backup_label(&disk.name, &disk.description).is_none() {
        return Err(Undeletable::NotABackup { name, id });
    }
    Ok(())
}

/// Seconds since the epoch as RFC 3339 UTC (`None` for 0, vdsm's "unknown").
pub fn rfc3339(epoch_s: u64) -> Option<String> {
    if epoch_s == 0 {
        return None;
    }
    let time = time::OffsetDateTime::from_unix_timestamp(i64::try_from(epoch_s).ok()?).ok()?;
    time.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(available: u64) -> StorageDomain {
        StorageDomain {
            id: "SD".into(),
            name: "hosted_storage".into(),
            available,
            used: 0,
            committed: 0,
            data_center_ids: vec![],
        }
    }

    #[test]
    fn space_check_says_how_much_to_extend() {
        assert!(check_space(&sd(50 << 30), 50 << 30).is_ok());
        let error = check_space(&sd(4 << 30), 50 << 30).unwrap_err().to_string();
        assert!(
            error.contains("needs 50.0 GiB (53687091200 bytes)"),
            "{error}"
        );
        assert!(error.contains("only 4.0 GiB (4294967296 bytes)"), "{error}");
        assert!(
            error.contains("extend the storage domain by at least 46.0 GiB (49392123904 bytes)"),
            "{error}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("1073741824"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("1GiB"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("512M"), Ok(Size(512 << 20)));
        assert_eq!(Size::parse("2 TiB"), Ok(Size(2 << 40)));
        assert!(matches!(
            Size::parse("1PB"),
            Err(SizeError::UnknownUnit { unit, .. }) if unit == "P"
        ));
        assert!(Size::parse("lots")
            .unwrap_err()
            .to_string()
            .contains("is not a size"));
        assert!(Size::parse("0").is_err());
        let from_json: Size = serde_json::from_value(serde_json::json!(4096)).unwrap();
        assert_eq!(from_json, Size(4096));
    }

    #[test]
    fn labels_from_volume_descriptions() {
        let ours = r#"{"DiskAlias":"hosted-engine-backup-20240101120000","DiskDescription":"hosted-engine-backup-20240101120000"}"#;
        assert_eq!(
            label_of_description(ours).as_deref(),
            Some("hosted-engine-backup-20240101120000")
        );
        let original = r#"{"DiskAlias":"virtio-disk0","DiskDescription":"hosted-engine-backup-20160601120000"}"#;
        assert_eq!(
            label_of_description(original).as_deref(),
            Some("hosted-engine-backup-20160601120000")
        );
        let engine_disk =
            r#"{"DiskAlias":"he_virtio_disk","DiskDescription":"Hosted-Engine disk"}"#;
        assert_eq!(label_of_description(engine_disk), None);
        assert_eq!(
            label_of_description("hosted-engine-backup-1").as_deref(),
            Some("hosted-engine-backup-1")
        );
        assert_eq!(label_of_description(""), None);
    }

    #[test]
    fn default_name_has_the_original_form() {
        let name = default_name();
        let stamp = name.strip_prefix(BACKUP_PREFIX).unwrap();
        assert_eq!(stamp.len(), 14, "{name}");
        assert!(stamp.chars().all(|c| c.is_ascii_digit()), "{name}");
    }

    #[test]
    fn only_backup_disks_may_be_deleted() {
        let disk = |id: &str, name: &str, description: &str| Disk {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            volume_id: "V".into(),
            size_bytes: 1,
            status: "ok".into(),
            sd_id: "SD".into(),
        };
        assert!(check_deletable(&disk("B", "hosted-engine-backup-1", ""), "E").is_ok());
        assert!(check_deletable(&disk("B", "virtio-disk0", "hosted-engine-backup-1"), "E").is_ok());
        let engine = check_deletable(&disk("E", "hosted-engine-backup-1", ""), "E").unwrap_err();
        assert!(
            engine.to_string().contains("is the hosted-engine VM disk"),
            "{engine}"
        );
        let other = check_deletable(&disk("X", "data", "my disk"), "E").unwrap_err();
        assert!(matches!(other, Undeletable::NotABackup { .. }), "{other}");
    }

    #[test]
    fn creation_times() {
        assert_eq!(rfc3339(1700000000).as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(rfc3339(0), None);
    }
}
