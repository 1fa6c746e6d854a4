//! The proof of a verified backup kept in the backup volume's own metadata, so that every
//! hosted-engine host of the site can restore it: one key added to the engine's JSON
//! description of the volume, written right after the verified copy.
//!
//! Why the volume description (the choice, with its sources):
//! - Every host reads it with vdsm `Volume.getInfo` (`description`), the engine down, as the
//!   original rollback listed its backup disks (original-tool.md section 8); a host that never
//!   ran the upgrade, or was reinstalled, sees it.
//! - It is written with vdsm `Volume.setDescription` (oVirt/vdsm `lib/vdsm/api/vdsm-api.yml`:
//!   added 3.1, deprecated 4.1 but still served, and the verb the engine itself calls for
//!   disk updates: ovirt-engine `JsonRpcIIrsServer.setVolumeDescription`). It is an SPM verb of
//!   the connected pool (`sp.py` `StoragePool.setVolumeDescription` is `@secured`: "Not SPM",
//!   code 654; `hsm.getPool` needs the real pool id: "Unknown pool id, pool not connected",
//!   code 309, so hosted-engine.conf's blank `spUUID` does not do). The upgrade runs on the
//!   SPM (SPEC 5 step 2), so the copy that verifies the backup can write it.
//! - vdsm keeps at most 210 characters and silently truncates longer ones (`constants.py`
//!   `DESCRIPTION_SIZE = 210`, `volumemetadata.py` `validate_description` only logs): a proof
//!   that would not fit whole is not written, and what was written is read back.
//! - The engine's description is JSON with `DiskAlias` and `DiskDescription` (and `Enc`),
//!   keys sorted (ovirt-engine `MetadataDiskDescriptionHandler`). Registering the disk in a new
//!   engine reads only those keys and writes nothing (`GetUnregisteredDiskQuery`
//!   `enrichDiskByJsonDescription`), so the added key survives the upgrade's registration; the
//!   engine rewrites the description, without our key, only when the disk's alias or
//!   description is edited (`UpdateDiskCommand.setVolumeDescription`). Then, as for a disk of
//!   the original tool, the operator gives the checksum or confirms (the rollback playbook).
//! - Rejected: a file in the image directory (vdsm's `fileSD.purgeImage` removes only the
//!   volume, `.meta` and `.lease` files, then `rmdir` fails: the disk could not be deleted any
//!   more); a file elsewhere on the domain (no file system on block domains, and nothing in
//!   vdsm or the engine would ever remove it with its disk).
//!
//! The proof is the digest of the copied content, its algorithm and length: the guard
//! (`safety`) re-hashes the backup against it before the engine disk is written.

use super::digest::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The key added to the engine's JSON description.
pub const PROOF_KEY: &str = "HeVerified";
/// The longest description vdsm keeps (characters).
pub const DESCRIPTION_MAX_CHARS: usize = 210;

/// A verified copy of the engine disk onto this volume: what the guard re-checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifiedProof {
    /// Digest algorithm.
    pub algorithm: Algorithm,
    /// Digest (hex) of the first `size_bytes` of the volume.
    pub checksum: String,
    /// Bytes copied (the engine disk's size at the time).
    pub size_bytes: u64,
}

/// Why a proof cannot be put into a description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The description is not the engine's JSON (descriptions before oVirt 3.5 are text).
    #[error("the volume description is not the engine's JSON ({description:?})")]
    NotJson { description: String },
    /// vdsm would truncate it.
    #[error("the volume description with the proof would be {chars} characters, more than the {DESCRIPTION_MAX_CHARS} vdsm keeps")]
    TooLong { chars: usize },
}

impl VerifiedProof {
    /// `algorithm:checksum:size`, the key's value.
    fn value(&self) -> String {
        format!(
            "{}:{}:{}",
            self.algorithm.name(),
            self.checksum,
            self.size_bytes
        )
    }

    /// The proof in a volume description, if it holds a well-formed one.
    pub fn read(description: &str) -> Option<Self> {
        let map: Map<String, Value> = serde_json::from_str(description).ok()?;
        let mut parts = map.get(PROOF_KEY)?.as_str()?.splitn(3, ':');
        let algorithm = serde_json::from_value(Value::from(parts.next()?)).ok()?;
        let checksum = parts.next()?.to_ascii_lowercase();
        let size_bytes = parts.next()?.parse().ok()?;
        let hex = !checksum.is_empty() && checksum.bytes().all(|b| b.is_ascii_hexdigit());
        (hex && algorithm != Algorithm::None).then_some(Self {
            algorithm,
            checksum,
            size_bytes,
        })
    }

    /// `description` with this proof added (or replacing an older one), as the engine writes
    /// JSON: compact, keys sorted.
    pub fn added_to(&self, description: &str) -> Result<String, ProofError> {
        let mut map: Map<String, Value> =
            serde_json::from_str(description).map_err(|_| ProofError::NotJson {
                description: description.to_string(),
            })?;
        map.insert(PROOF_KEY.to_string(), Value::from(self.value()));
        let text = Value::Object(map).to_string();
        match text.chars().count() {
            chars if chars > DESCRIPTION_MAX_CHARS => Err(ProofError::TooLong { chars }),
            _ => Ok(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINE_WRITTEN: &str = r#"{"DiskAlias":"hosted-engine-backup-20261201120000","DiskDescription":"hosted-engine-backup-20261201120000"}"#;

    fn proof() -> VerifiedProof {
        VerifiedProof {
            algorithm: Algorithm::Blake3,
            checksum: "ab".repeat(32),
            size_bytes: 53_687_091_200,
        }
    }

    #[test]
    fn the_proof_is_added_to_the_engines_json_and_read_back() {
        let described = proof().added_to(ENGINE_WRITTEN).unwrap();
        assert!(described.starts_with(ENGINE_WRITTEN.trim_end_matches('}')));
        assert!(
            described.chars().count() <= DESCRIPTION_MAX_CHARS,
            "{described}"
        );
        assert_eq!(VerifiedProof::read(&described), Some(proof()));
        let engine: Map<String, Value> = serde_json::from_str(&described).unwrap();
        assert_eq!(engine["DiskAlias"], "hosted-engine-backup-20261201120000");
        let newer = VerifiedProof {
            checksum: "cd".repeat(32),
            ..proof()
        };
        let replaced = newer.added_to(&described).unwrap();
        assert_eq!(VerifiedProof::read(&replaced), Some(newer));
    }

    #[test]
    fn what_vdsm_would_truncate_or_is_not_json_is_refused() {
        let long_name = format!(
            r#"{{"DiskAlias":"hosted-engine-backup-{0}","DiskDescription":"hosted-engine-backup-{0}"}}"#,
            "x".repeat(30)
        );
        assert!(matches!(
            proof().added_to(&long_name),
            Err(ProofError::TooLong { .. })
        ));
        assert!(matches!(
            proof().added_to("hosted-engine-backup-1"),
            Err(ProofError::NotJson { .. })
        ));
    }

    #[test]
    fn descriptions_without_a_well_formed_proof_have_none() {
        let original = r#"{"DiskAlias":"virtio-disk0","DiskDescription":"hosted-engine-backup-20160601120000"}"#;
        assert_eq!(VerifiedProof::read(original), None);
        assert_eq!(VerifiedProof::read("hosted-engine-backup-1"), None);
        for value in [
            "md5:ab:1",
            "blake3:zz:1",
            "blake3:ab",
            "none:ab:1",
            "blake3:ab:x",
        ] {
            let text = format!(r#"{{"DiskAlias":"a","HeVerified":"{value}"}}"#);
            assert_eq!(VerifiedProof::read(&text), None, "{value}");
        }
    }
}
