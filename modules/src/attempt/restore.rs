//! Which verified backup a rollback restores: the backup disk (the one named, the one the
//! operator picked from the list, or the newest) and what proves it: this host's record of
//! its verified copy, the proof kept in its metadata (any host), the operator's checksum, or
//! nothing (a disk of the original tool: restored only once confirmed, its checksum shown).

use crate::host::Volume;
use crate::image::digest::Algorithm;
use crate::image::proof::VerifiedProof;
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
    /// The proof of its verified copy kept in its metadata, when there is one.
    #[serde(default)]
    pub verified: Option<VerifiedProof>,
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

/// What proves that the backup disk holds a verified copy of the engine disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreProof {
    /// A verified-backup record of this host (`he_state_dir`).
    Local,
    /// The proof its verified copy kept in its volume metadata (readable from any host).
    VolumeMetadata,
    /// The checksum the operator gave (`he_backup_checksum`), with no record of it: the disk
    /// is hashed and compared before anything is written.
    Operator,
    /// Nothing (a disk of the original tool, or a lost proof): its checksum is computed and
    /// shown, and it is restored only once the operator confirms.
    Unverified,
}

/// What the rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restore {
    /// The backup disk.
    pub disk: ListedDisk,
    /// Its volume.
    pub volume: Volume,
    /// What proves it.
    pub proof: RestoreProof,
    /// The checksum its verified copy recorded or the operator gave (none when unverified).
    pub checksum: Option<String>,
    /// The checksum's algorithm, when the proof says (else the run's `he_checksum`).
    pub algorithm: Option<Algorithm>,
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
    /// No proof, no checksum, and the operator declined restoring it unverified.
    #[error("Backup disk {name} has no verified-backup record (not under {dir}, not in its metadata) and he_confirm_unverified_backup is false: give the checksum printed by the upgrade's report as he_backup_checksum, or confirm restoring it unverified.")]
    Declined { name: String, dir: PathBuf },
}

impl Restore {
    /// The rollback's plan, for the operator.
    pub fn lines(&self) -> Vec<String> {
        let (name, image) = (&self.disk.name, &self.disk.image_id);
        let first = match (&self.checksum, self.proof) {
            (Some(checksum), RestoreProof::Operator) => format!(
                "restore {name} (image {image}) onto the engine disk: it has no verified-backup record for checksum {checksum} (he_backup_checksum), so it is hashed and compared before anything is written"
            ),
            (Some(checksum), _) => format!(
                "restore {name} (image {image}) onto the engine disk, checksum {checksum} from {}",
                self.checksum_from
            ),
            (None, _) => format!(
                "restore {name} (image {image}) onto the engine disk: it has no verified-backup record ({}; a disk of the original tool?), so its checksum is computed and shown, and it is restored only once you confirm (he_confirm_unverified_backup=true for unattended runs)",
                self.checksum_from
            ),
        };
        vec![
            first,
            "then verify the engine disk checksum; start the engine VM afterwards by leaving global maintenance".into(),
        ]
    }
}

/// Picks the disk and what proves it: with `given_checksum`, this host's record or the
/// disk's metadata proof when either has that checksum, else the operator's word; without,
/// the newest record of this host for the disk, else its metadata proof, else nothing (to be
/// confirmed, unless `confirm_unverified` already declined).
pub fn choose(
    disks: &[ListedDisk],
    wanted: &Wanted,
    records: &[BackupRecord],
    given_checksum: Option<&str>,
    confirm_unverified: Option<bool>,
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
    let given = given_checksum.map(safety::normalized);
    let recorded = records
        .iter()
        .filter(|record| {
            (record.backup.volume.as_ref()).is_some_and(|volume| volume.image_id == disk.image_id)
        })
        .filter(|record| given.as_ref().is_none_or(|given| *given == record.checksum))
        .max_by_key(|record| record.created_epoch_s);
    let in_metadata = (disk.verified.as_ref())
        .filter(|proof| given.as_ref().is_none_or(|given| *given == proof.checksum));
    let restore = |proof, checksum: Option<String>, algorithm, checksum_from: String| Restore {
        volume: disk.volume(),
        disk: disk.clone(),
        proof,
        checksum,
        algorithm,
        checksum_from,
    };
    Ok(match (recorded, in_metadata, given) {
        (Some(record), ..) => restore(
            RestoreProof::Local,
            Some(record.checksum.clone()),
            Some(record.algorithm),
            format!(
                "the verified copy of {} recorded under {}",
                record.created_epoch_s,
                records_dir.display()
            ),
        ),
        (None, Some(proof), _) => restore(
            RestoreProof::VolumeMetadata,
            Some(proof.checksum.clone()),
            Some(proof.algorithm),
            "the proof of its verified copy in its volume metadata".into(),
        ),
        (None, None, Some(given)) => restore(
            RestoreProof::Operator,
            Some(given),
            None,
            "he_backup_checksum".into(),
        ),
        (None, None, None) if confirm_unverified == Some(false) => {
            return Err(RestoreError::Declined {
                name: disk.name.clone(),
                dir: records_dir.to_path_buf(),
            })
        }
        (None, None, None) => restore(
            RestoreProof::Unverified,
            None,
            None,
            format!("none under {} nor in its metadata", records_dir.display()),
        ),
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
            verified: None,
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
        let restore = choose(
            &disks(),
            &Wanted::Newest,
            &records(),
            None,
            None,
            Path::new("/r"),
        )
        .unwrap();
        assert_eq!(restore.disk.name, "hosted-engine-backup-2");
        assert_eq!(restore.checksum.as_deref(), Some("second2"));
        assert_eq!(restore.proof, RestoreProof::Local);
        assert_eq!(restore.volume.volume_id, "img2-vol");
    }

    #[test]
    fn by_name_by_place_or_with_the_operators_checksum() {
        let by_name = Wanted::Name("hosted-engine-backup-1".into());
        let restore = choose(&disks(), &by_name, &records(), None, None, Path::new("/r")).unwrap();
        assert_eq!(restore.checksum.as_deref(), Some("old1"));
        let by_place = choose(
            &disks(),
            &Wanted::Place(2),
            &[],
            Some("abc"),
            None,
            Path::new("/r"),
        )
        .unwrap();
        assert_eq!(by_place.checksum.as_deref(), Some("abc"));
        assert_eq!(by_place.proof, RestoreProof::Operator);
    }

    #[test]
    fn refusals_name_what_is_missing() {
        let dir = Path::new("/var/lib/x/engine-disk-backups");
        assert_eq!(
            choose(&[], &Wanted::Newest, &records(), None, None, dir),
            Err(RestoreError::NoDisk)
        );
        let unknown = choose(
            &disks(),
            &Wanted::Name("nope".into()),
            &records(),
            None,
            None,
            dir,
        );
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("found: hosted-engine-backup-2, hosted-engine-backup-1"));
        assert_eq!(
            choose(&disks(), &Wanted::Place(3), &records(), None, None, dir),
            Err(RestoreError::NoSuchPlace { place: 3, count: 2 })
        );
        let declined = choose(&disks(), &Wanted::Newest, &[], None, Some(false), dir);
        let declined = declined.unwrap_err().to_string();
        assert!(declined.contains("he_backup_checksum"), "{declined}");
        assert!(
            declined.contains("he_confirm_unverified_backup"),
            "{declined}"
        );
    }

    fn proven(disk: ListedDisk, checksum: &str) -> ListedDisk {
        ListedDisk {
            verified: Some(VerifiedProof {
                algorithm: Algorithm::Sha256,
                checksum: checksum.into(),
                size_bytes: 1,
            }),
            ..disk
        }
    }

    #[test]
    fn with_no_record_on_this_host_the_proof_in_the_metadata_is_used() {
        let disks = vec![proven(disk("hosted-engine-backup-2", "img2"), "meta2")];
        let dir = Path::new("/emptied");
        let restore = choose(&disks, &Wanted::Newest, &[], None, None, dir).unwrap();
        assert_eq!(restore.proof, RestoreProof::VolumeMetadata);
        assert_eq!(restore.checksum.as_deref(), Some("meta2"));
        assert_eq!(restore.algorithm, Some(Algorithm::Sha256));
        let given = choose(&disks, &Wanted::Newest, &[], Some(" META2 "), None, dir).unwrap();
        assert_eq!(given.proof, RestoreProof::VolumeMetadata);
        // This host's record wins over the metadata when both exist.
        let local = choose(&disks, &Wanted::Newest, &records(), None, None, dir).unwrap();
        assert_eq!(local.proof, RestoreProof::Local);
        assert_eq!(local.checksum.as_deref(), Some("second2"));
    }

    #[test]
    fn a_checksum_nothing_recorded_is_the_operators_word() {
        let disks = vec![proven(disk("hosted-engine-backup-2", "img2"), "meta2")];
        let dir = Path::new("/emptied");
        let restore = choose(&disks, &Wanted::Newest, &records(), Some("Beef"), None, dir);
        let restore = restore.unwrap();
        assert_eq!(restore.proof, RestoreProof::Operator);
        assert_eq!(restore.checksum.as_deref(), Some("beef"));
        assert_eq!(restore.algorithm, None);
        assert!(
            restore.lines()[0].contains("hashed and compared"),
            "{:?}",
            restore.lines()
        );
    }

    #[test]
    fn a_disk_without_any_proof_is_restored_only_once_confirmed() {
        let original = vec![disk("hosted-engine-backup-20160601120000", "orig")];
        let dir = Path::new("/var/lib/x/engine-disk-backups");
        for confirm in [None, Some(true)] {
            let restore = choose(&original, &Wanted::Newest, &[], None, confirm, dir).unwrap();
            assert_eq!(restore.proof, RestoreProof::Unverified);
            assert_eq!(restore.checksum, None);
            assert!(
                restore.lines()[0].contains("he_confirm_unverified_backup"),
                "{:?}",
                restore.lines()
            );
        }
        assert!(matches!(
            choose(&original, &Wanted::Newest, &[], None, Some(false), dir),
            Err(RestoreError::Declined { .. })
        ));
    }
}
