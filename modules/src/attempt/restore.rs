//! Which verified backup a rollback restores: the backup disk (the one named, the one the
//! operator picked from the list, or the newest) and the checksum its verified copy recorded.

use crate::host::Volume;
use crate::image::safety::{self, BackupRecord};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A backup disk as `he_backup_disk` (state query) lists it, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListedDisk {
    /// `hosted-engine-backup-...`.
    pub name: String,
    /// Storage domain id.
    pub sd_id: String,
    /// Image id.
    pub image_id: String,
    /// Volume id.
    pub volume_id: String,
    /// Virtual size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Creation time, when known.
    #[serde(default)]
    pub created: Option<String>,
}

impl ListedDisk {
    /// The disk's volume.
    pub fn volume(&self) -> Volume {
        Volume {
            sd_id: self.sd_id.clone(),
            image_id: self.image_id.clone(),
            volume_id: self.volume_id.clone(),
        }
    }
}

/// Which disk the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// By name (`he_backup_name`).
    Name(String),
    /// By its 1-based place in the list shown at the prompt.
    Place(usize),
    /// Nothing asked: the newest.
    Newest,
}

impl Wanted {
    /// `he_backup_name` first, then the place picked at the prompt, else the newest.
    pub fn from_choice(name: Option<String>, place: Option<usize>) -> Self {
        match (name, place) {
            (Some(name), _) => Self::Name(name),
            (None, Some(place)) => Self::Place(place),
            (None, None) => Self::Newest,
        }
    }
}

/// What the rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restore {
    /// The backup disk.
    pub disk: ListedDisk,
    /// Its volume.
    pub volume: Volume,
    /// The checksum its verified copy recorded (or the operator gave).
    pub checksum: String,
    /// Where the checksum came from.
    pub checksum_from: String,
}

/// Why nothing can be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The storage domain holds no backup disk.
    #[error("Unable to find any backup disk (hosted-engine-backup-*) on the hosted-engine storage domain.")]
    NoDisk,
    /// No disk of that name.
    #[error("No backup disk named {name}; found: {found}.")]
    NoSuchName { name: String, found: String },
    /// The place is not in the list.
    #[error("There is no backup disk [{place}]: pick 1 to {count}.")]
    NoSuchPlace { place: usize, count: usize },
    /// No verified copy recorded the disk's checksum.
    #[error("No verified-backup record for {name} under {dir} (the upgrade runs on this host keep them there): give the checksum printed by the upgrade's report as he_backup_checksum.")]
    NoRecord { name: String, dir: PathBuf },
}

impl Restore {
    /// The rollback's plan, for the operator.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "restore {} (image {}) onto the engine disk, checksum {} from {}",
                self.disk.name, self.disk.image_id, self.checksum, self.checksum_from
            ),
            "then verify the engine disk checksum; start the engine VM afterwards by leaving global maintenance".into(),
        ]
    }
}

/// Picks the disk and its checksum: `given_checksum` when the operator gave one, else the
/// newest verified-backup record whose copy went to that disk.
pub fn choose(
    disks: &[ListedDisk],
    wanted: &Wanted,
    records: &[BackupRecord],
    given_checksum: Option<&str>,
    records_dir: &Path,
) -> Result<Restore, RestoreError> {
    let disk = match wanted {
        _ if disks.is_empty() => return Err(RestoreError::NoDisk),
        Wanted::Name(name) => disks
            .iter()
            .find(|disk| disk.name == *name)
            .ok_or_else(|| RestoreError::NoSuchName {
                name: name.clone(),
                found: disks
                    .iter()
                    .map(|disk| disk.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        Wanted::Place(place) => place
            .checked_sub(1)
            .and_then(|index| disks.get(index))
            .ok_or(RestoreError::NoSuchPlace {
                place: *place,
                count: disks.len(),
            })?,
        Wanted::Newest => &disks[0],
    };
    let (checksum, checksum_from) = match given_checksum {
        Some(checksum) => (checksum.to_string(), "he_backup_checksum".to_string()),
        None => {
            let record = records
                .iter()
                .filter(|record| {
                    record
                        .backup
                        .volume
                        .as_ref()
                        .is_some_and(|volume| volume.image_id == disk.image_id)
                })
                .max_by_key(|record| record.created_epoch_s)
                .ok_or_else(|| RestoreError::NoRecord {
                    name: disk.name.clone(),
                    dir: records_dir.to_path_buf(),
                })?;
            (
                record.checksum.clone(),
                format!("the verified copy of {}", record.created_epoch_s),
            )
        }
    };
    Ok(Restore {
        volume: disk.volume(),
        disk: disk.clone(),
        checksum,
        checksum_from,
    })
}

/// The verified-backup records kept under `state_dir` (unreadable ones are skipped, logged).
pub fn load_records(state_dir: &Path) -> (PathBuf, Vec<BackupRecord>) {
    let dir = safety::records_dir(state_dir);
    let mut records = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read_to_string(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|error| error.to_string()))
        {
            Ok(record) => records.push(record),
            Err(error) => tracing::warn!("skipping backup record {}: {error}", path.display()),
        }
    }
    (dir, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::Algorithm;
    use crate::image::safety::{Endpoint, FileIdentity};

    fn disk(name: &str, image_id: &str) -> ListedDisk {
        ListedDisk {
            name: name.into(),
            sd_id: "sd".into(),
            image_id: image_id.into(),
            volume_id: format!("{image_id}-vol"),
            size: 1,
            created: None,
        }
    }

    fn record(image_id: &str, checksum: &str, created_epoch_s: u64) -> BackupRecord {
        let identity = FileIdentity {
            device: 1,
            inode: 2,
            size_bytes: 3,
            mtime_ns: 4,
            regular_file: true,
        };
        BackupRecord {
            source: Endpoint {
                volume: None,
                path: "/engine".into(),
            },
            source_identity: identity,
            backup: Endpoint {
                volume: Some(disk("", image_id).volume()),
                path: "/backup".into(),
            },
            algorithm: Algorithm::default(),
            checksum: checksum.into(),
            size_bytes: 3,
            created_epoch_s,
        }
    }

    fn disks() -> Vec<ListedDisk> {
        vec![
            disk("hosted-engine-backup-2", "img2"),
            disk("hosted-engine-backup-1", "img1"),
        ]
    }

    fn records() -> Vec<BackupRecord> {
        vec![
            record("img1", "old1", 10),
            record("img2", "first2", 20),
            record("img2", "second2", 30),
        ]
    }

    #[test]
    fn newest_disk_with_its_newest_verified_copy() {
        let restore = choose(&disks(), &Wanted::Newest, &records(), None, Path::new("/r")).unwrap();
        assert_eq!(restore.disk.name, "hosted-engine-backup-2");
        assert_eq!(restore.checksum, "second2");
        assert_eq!(restore.volume.volume_id, "img2-vol");
    }

    #[test]
    fn by_name_by_place_or_with_the_operators_checksum() {
        let by_name = Wanted::Name("hosted-engine-backup-1".into());
        let restore = choose(&disks(), &by_name, &records(), None, Path::new("/r")).unwrap();
        assert_eq!(restore.checksum, "old1");
        let by_place = choose(
            &disks(),
            &Wanted::Place(2),
            &[],
            Some("abc"),
            Path::new("/r"),
        );
        assert_eq!(by_place.unwrap().checksum, "abc");
    }

    #[test]
    fn refusals_name_what_is_missing() {
        let dir = Path::new("/var/lib/x/engine-disk-backups");
        assert_eq!(
            choose(&[], &Wanted::Newest, &records(), None, dir),
            Err(RestoreError::NoDisk)
        );
        let unknown = choose(
            &disks(),
            &Wanted::Name("nope".into()),
            &records(),
            None,
            dir,
        );
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("found: hosted-engine-backup-2, hosted-engine-backup-1"));
        assert_eq!(
            choose(&disks(), &Wanted::Place(3), &records(), None, dir),
            Err(RestoreError::NoSuchPlace { place: 3, count: 2 })
        );
        let unrecorded = choose(&disks(), &Wanted::Newest, &[], None, dir).unwrap_err();
        assert!(unrecorded.to_string().contains("he_backup_checksum"));
    }
}
