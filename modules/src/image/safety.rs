//! The engine-disk write guard (SPEC 6.1): backup records written by verified copies of the
//! engine disk, and the checks that must pass before the engine disk may be overwritten.
//!
//! A record is written only after a copy FROM the engine disk was re-read and matched
//! (`verify: true`). Writing the engine disk needs `backup_checksum` naming such a record,
//! and then, at the time of the write:
//! - the record's source is this engine disk,
//! - the backup it names still hashes to the checksum (re-read: that is the proof), and
//! - the engine disk still holds that content (unchanged file identity and mtime, or
//!   re-hashed), or the copy's source is that very backup (rollback: restoring it), or the
//!   only writes since the backup were this module's under the same backup: one that was
//!   interrupted (kill -9: redo it) or one that finished and whose result is still there
//!   (a re-run; refused once anything else, such as the new engine running, changed it).
//!
//! A caller cannot satisfy this by inventing a value: an invented record still needs a real
//! backup whose content hashes to it and equals the engine disk.
//!
//! The record is this host's (written by the verified copy made here), else the proof kept
//! in the backup volume's metadata by a verified copy on any host (`proof`), else, for a
//! backup disk without either, the operator's word for its checksum. The last two authorise
//! only a restore of that very backup, after it hashed to the checksum.

use super::copy::{self, CopyError};
use super::digest::Algorithm;
use crate::ansible::progress::Reporter;
use crate::host::Volume;
use crate::privilege::Access;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Default `state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ovirt-hosted-engine-upgrade";
const RECORDS_DIR: &str = "engine-disk-backups";

/// [`DEFAULT_STATE_DIR`] as the modules' `state_dir` option default.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

/// One side of a copy: a vdsm volume (when named that way) and the path it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The volume, when the copy named one.
    pub volume: Option<Volume>,
    /// The path (resolved with `Image prepare` for volumes).
    pub path: PathBuf,
}

/// Which file a path is, and whether it changed: device, inode, size, mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Device of the file system holding it.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Size in bytes (0 for block devices).
    pub size_bytes: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i128,
    /// True for regular files (mtime tracks writes); false for block devices.
    pub regular_file: bool,
}

impl FileIdentity {
    /// The identity of a file never looked at (a proof made on another host): equal to no
    /// real file's, so only a re-hash can speak for its content.
    pub const UNKNOWN: Self = Self {
        device: 0,
        inode: 0,
        size_bytes: 0,
        mtime_ns: 0,
        regular_file: false,
    };

    /// The identity of `path` now (symlinks followed).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size_bytes: metadata.size(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            regular_file: metadata.is_file(),
        })
    }

    /// True when both name the same file (or device node target).
    pub fn same_file(&self, other: &Self) -> bool {
        self.device == other.device && self.inode == other.inode
    }
}

/// A verified backup of the engine disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The engine disk that was copied.
    pub source: Endpoint,
    /// Its identity when the copy ran.
    pub source_identity: FileIdentity,
    /// Where the copy went.
    pub backup: Endpoint,
    /// Digest algorithm.
    pub algorithm: Algorithm,
    /// Digest of the copied content, equal on both sides after the re-read.
    pub checksum: String,
    /// Bytes copied (the engine disk's size).
    pub size_bytes: u64,
    /// When the record was written, seconds since the epoch.
    pub created_epoch_s: u64,
}

/// Where the backup record that authorises a write comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    /// A record in this host's state directory, written by the verified copy made here.
    Local,
    /// The proof in the backup volume's metadata, written by a verified copy on any host.
    VolumeMetadata,
    /// The operator's word for a backup disk without a record (`unrecorded_backup`): its
    /// checksum given, or computed, shown and confirmed.
    Operator,
}

/// Why the guard refuses to write the engine disk: a verdict of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `backup_checksum` was given.
    #[error("refusing to write the engine disk {disk}: give backup_checksum, the checksum returned by a verified copy (verify: true) of the engine disk to a backup")]
    NoChecksum { disk: String },
    /// The value is not a hex digest.
    #[error("option 'backup_checksum': '{value}' is not a hex checksum")]
    Malformed { value: String },
    /// No verified backup has that checksum.
    #[error("refusing to write the engine disk {disk}: no verified backup with checksum {checksum} is recorded under {dir} or in the source volume's metadata; copy the engine disk to a backup with verify: true first (to restore a backup disk without a record, give unrecorded_backup: true)")]
    NoRecord {
        disk: String,
        checksum: String,
        dir: PathBuf,
    },
    /// The record is about another disk.
    #[error("refusing to write the engine disk {disk}: the backup with checksum {checksum} is a copy of {other}, not of the engine disk")]
    OtherDisk {
        disk: String,
        checksum: String,
        other: String,
    },
    /// The backup no longer holds that content.
    #[error("refusing to write the engine disk: the backup {backup} no longer matches checksum {checksum} (now {actual}); make a new backup")]
    BackupChanged {
        backup: String,
        checksum: String,
        actual: String,
    },
    /// A backup disk without a record does not hash to the checksum the operator gave.
    #[error("refusing to write the engine disk: the backup {backup} hashes to {actual}, not to the given checksum {checksum}; nothing was written")]
    ChecksumMismatch {
        backup: String,
        checksum: String,
        actual: String,
    },
    /// A proof kept elsewhere than on this host authorises only restoring that backup.
    #[error("refusing to write the engine disk {disk}: the backup with checksum {checksum} is proven by {proof:?}, which authorises only restoring that backup onto the engine disk, not another write")]
    NotARestore {
        disk: String,
        checksum: String,
        proof: Proof,
    },
    /// The engine disk changed after the backup (and not only by writes of this module).
    #[error("refusing to write the engine disk {disk}: its content changed since the backup with checksum {checksum} (now {actual}) other than by he_image_copy writes under that backup (was the engine VM started from it?); back up the current content first, or restore that backup")]
    DiskChanged {
        disk: String,
        checksum: String,
        actual: String,
    },
}

/// Why the engine disk may not be written (or a record could not be kept).
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The evidence says no.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A record file or a disk could not be read or written.
    #[error("engine disk guard: {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Re-reading a disk failed.
    #[error("engine disk guard: {0}")]
    Reread(#[from] CopyError),
    /// The `state_dir` option names something that cannot hold the records.
    #[error("option 'state_dir': {path} {problem}")]
    StateDir { path: PathBuf, problem: String },
}

/// Refuses a `state_dir` that exists as something other than a directory or cannot be looked
/// at (a looping link); a missing one is created when the first record is written.
pub fn check_state_dir(state_dir: &Path) -> Result<(), GuardError> {
    let problem = match std::fs::metadata(state_dir) {
        Ok(metadata) if metadata.is_dir() => return Ok(()),
        Ok(_) => "is not a directory".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => format!("cannot be used: {e}"),
    };
    Err(GuardError::StateDir {
        path: state_dir.to_path_buf(),
        problem,
    })
}

/// Why a write of the engine disk was allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// The engine disk still equals its verified backup.
    BackedUp { backup: PathBuf },
    /// The copy restores the verified backup itself.
    Restore { backup: PathBuf },
    /// A write under this backup was interrupted (kill -9, crash): it may be redone.
    Resume { backup: PathBuf },
    /// The engine disk still holds exactly what a finished write under this backup put
    /// there (nothing has run from it since): it may be written again.
    Rewrite { backup: PathBuf },
}

/// A write of the engine disk authorised by a backup: begun, and finished when `finished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// The backup that authorised it.
    pub backup_checksum: String,
    /// What was copied onto the engine disk.
    pub source: PathBuf,
    /// Set once the copy completed.
    pub finished: Option<FinishedWrite>,
}

/// What a finished write left on the engine disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedWrite {
    /// Digest algorithm of `checksum`.
    pub algorithm: Algorithm,
    /// Digest of the written content (`None` with checksum none).
    pub checksum: Option<String>,
    /// Bytes written.
    pub length_bytes: u64,
    /// The engine disk's identity right after the write.
    pub identity: FileIdentity,
}

/// Where the records of `state_dir` live.
pub fn records_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(RECORDS_DIR)
}

/// Where the record for `checksum` lives.
pub fn record_path(state_dir: &Path, checksum: &str) -> PathBuf {
    records_dir(state_dir).join(format!("{checksum}.json"))
}

/// Writes `record` under `state_dir` (directories 0700, file 0600, atomically).
pub fn save(state_dir: &Path, record: &BackupRecord) -> Result<PathBuf, GuardError> {
    let path = record_path(state_dir, &record.checksum);
    save_json(&path, record)?;
    Ok(path)
}

fn save_json(path: &Path, value: &impl Serialize) -> Result<(), GuardError> {
    use std::io::Write;
    let io = |what, source| GuardError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("cannot create the directory of", e))?;
    }
    let temporary = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(value).expect("records are plain data");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|_| std::fs::rename(&temporary, path))
        .map_err(|e| io("cannot write record", e))
}

/// Reads the record for `checksum`, if any.
pub fn load(state_dir: &Path, checksum: &str) -> Result<Option<BackupRecord>, GuardError> {
    load_json(&record_path(state_dir, checksum))
}

fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, GuardError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(GuardError::Io {
                what: "cannot read record",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| GuardError::Io {
            what: "malformed record",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
}

/// A checksum as records name it: trimmed, lowercase.
pub fn normalized(checksum: &str) -> String {
    checksum.trim().to_ascii_lowercase()
}

fn write_record_path(state_dir: &Path, checksum: &str) -> PathBuf {
    state_dir
        .join(RECORDS_DIR)
        .join(format!("{checksum}.engine-disk-write.json"))
}

/// Notes, before the first byte, that the engine disk is being written under the backup
/// `checksum` (so a re-run after an interruption may redo it).
pub fn begin_write(state_dir: &Path, checksum: &str, source: &Path) -> Result<(), GuardError> {
    let record = WriteRecord {
        backup_checksum: checksum.to_string(),
        source: source.to_path_buf(),
        finished: None,
    };
    save_json(&write_record_path(state_dir, checksum), &record)
}

/// Notes that the write under `checksum` completed, and what it left.
pub fn finish_write(
    state_dir: &Path,
    checksum: &str,
    source: &Path,
    finished: FinishedWrite,
) -> Result<(), GuardError> {
    let record = WriteRecord {
        backup_checksum: checksum.to_string(),
        source: source.to_path_buf(),
        finished: Some(finished),
    };
    save_json(&write_record_path(state_dir, checksum), &record)
}

fn load_write(state_dir: &Path, checksum: &str) -> Result<Option<WriteRecord>, GuardError> {
    load_json(&write_record_path(state_dir, checksum))
}

/// The checks before a write onto `engine_disk` from `copy_source`: the evidence is
/// gathered as [`decide`] asks for it (hashes only when the cheap facts do not settle it);
/// `resolve` turns a recorded backup endpoint into its current path (volumes are prepared
/// again); `access` says who reads an endpoint (vdsm:kvm for volumes when run as root).
/// Without a record of this host for the checksum, the first of `other_proofs` with that
/// checksum is the record.
#[allow(clippy::too_many_arguments)]
pub fn authorize(
    state_dir: &Path,
    backup_checksum: Option<&str>,
    engine_disk: &Endpoint,
    copy_source: &Path,
    other_proofs: &[(Proof, BackupRecord)],
    resolve: impl Fn(&Endpoint) -> anyhow::Result<PathBuf>,
    access: impl Fn(&Endpoint) -> Access,
    progress: &Reporter,
) -> Result<Allowed, GuardError> {
    let checksum = given_checksum(backup_checksum, engine_disk)?;
    let (proof, record) = match load(state_dir, &checksum)? {
        Some(record) => (Proof::Local, Some(record)),
        None => other_proofs
            .iter()
            .find(|(_, record)| normalized(&record.checksum) == checksum)
            .map_or((Proof::Local, None), |(proof, record)| {
                (*proof, Some(record.clone()))
            }),
    };
    let mut evidence = Evidence {
        disk: describe(engine_disk),
        records_dir: state_dir.join(RECORDS_DIR),
        record,
        proof,
        engine_disk: engine_disk.clone(),
        engine_identity: identity(&engine_disk.path)?,
        write: load_write(state_dir, &checksum)?,
        backup: None,
        engine_content: None,
        written_content: None,
        checksum,
    };
    loop {
        match decide(&evidence) {
            Decision::Allow(allowed) => return Ok(allowed),
            Decision::Refuse(refusal) => return Err(refusal.into()),
            Decision::Read(need) => {
                evidence.read(need, copy_source, &resolve, &access, progress)?
            }
        }
    }
}

/// The `backup_checksum` option, normalized, or why it cannot name a record.
pub fn given_checksum(given: Option<&str>, engine_disk: &Endpoint) -> Result<String, Refusal> {
    let given = given.ok_or_else(|| Refusal::NoChecksum {
        disk: describe(engine_disk),
    })?;
    let checksum = normalized(given);
    match !checksum.is_empty() && checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(checksum),
        false => Err(Refusal::Malformed { value: checksum }),
    }
}

/// What the guard knows about the engine disk and its backup: the records and identities
/// read at once, the re-read contents filled in when [`decide`] asks for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The engine disk as messages name it.
    pub disk: String,
    /// The given `backup_checksum`, normalized.
    pub checksum: String,
    /// Where the records live.
    pub records_dir: PathBuf,
    /// The backup record for `checksum`, when there is one.
    pub record: Option<BackupRecord>,
    /// Where the record comes from.
    pub proof: Proof,
    /// The engine disk.
    pub engine_disk: Endpoint,
    /// Its identity now.
    pub engine_identity: FileIdentity,
    /// The last write of the engine disk under `checksum`, when there was one.
    pub write: Option<WriteRecord>,
    /// The backup re-read ([`Need::Backup`]).
    pub backup: Option<BackupNow>,
    /// The engine disk's content over the backup's length ([`Need::EngineContent`]).
    pub engine_content: Option<Content>,
    /// The engine disk's content over the last write's length ([`Need::WrittenContent`]).
    pub written_content: Option<Content>,
}

/// The recorded backup as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupNow {
    /// Its current path.
    pub path: PathBuf,
    /// Digest of its first `size_bytes` (the record's length and algorithm).
    pub checksum: String,
    /// The copy's source is this very backup (a restore).
    pub is_copy_source: bool,
}

/// A stretch of the engine disk, re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Its digest.
    Hashed(String),
    /// The disk is shorter than the stretch.
    Shorter { size_bytes: u64 },
}

/// A re-read that [`decide`] needs before it can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Resolve and hash the recorded backup.
    Backup,
    /// Hash the engine disk over the backup's length.
    EngineContent,
    /// Hash the engine disk over the last finished write's length.
    WrittenContent,
}

/// The guard's verdict on the evidence so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The write may go ahead.
    Allow(Allowed),
    /// The write is refused.
    Refuse(Refusal),
    /// More evidence is needed.
    Read(Need),
}

/// Whether the evidence allows writing the engine disk (SPEC 6.1); pure.
pub fn decide(evidence: &Evidence) -> Decision {
    let checksum = evidence.checksum.clone();
    let Some(record) = &evidence.record else {
        return Decision::Refuse(Refusal::NoRecord {
            disk: evidence.disk.clone(),
            checksum,
            dir: evidence.records_dir.clone(),
        });
    };
    if !is_same_disk(record, &evidence.engine_disk, &evidence.engine_identity) {
        return Decision::Refuse(Refusal::OtherDisk {
            disk: evidence.disk.clone(),
            checksum,
            other: describe(&record.source),
        });
    }
    let Some(backup) = &evidence.backup else {
        return Decision::Read(Need::Backup);
    };
    if backup.checksum != record.checksum && evidence.proof == Proof::Operator {
        return Decision::Refuse(Refusal::ChecksumMismatch {
            backup: backup.path.display().to_string(),
            checksum,
            actual: backup.checksum.clone(),
        });
    }
    if backup.checksum != record.checksum {
        return Decision::Refuse(Refusal::BackupChanged {
            backup: backup.path.display().to_string(),
            checksum,
            actual: backup.checksum.clone(),
        });
    }
    let backup_path = backup.path.clone();
    if backup.is_copy_source {
        return Decision::Allow(Allowed::Restore {
            backup: backup_path,
        });
    }
    if evidence.proof != Proof::Local {
        return Decision::Refuse(Refusal::NotARestore {
            disk: evidence.disk.clone(),
            checksum,
            proof: evidence.proof,
        });
    }
    let engine = &evidence.engine_identity;
    if engine.regular_file && *engine == record.source_identity {
        return Decision::Allow(Allowed::BackedUp {
            backup: backup_path,
        });
    }
    let finished = match &evidence.write {
        Some(WriteRecord { finished: None, .. }) => {
            return Decision::Allow(Allowed::Resume {
                backup: backup_path,
            })
        }
        Some(WriteRecord { finished, .. }) => finished.as_ref(),
        None => None,
    };
    if finished.is_some_and(|done| engine.regular_file && *engine == done.identity) {
        return Decision::Allow(Allowed::Rewrite {
            backup: backup_path,
        });
    }
    let Some(content) = &evidence.engine_content else {
        return Decision::Read(Need::EngineContent);
    };
    if *content == Content::Hashed(record.checksum.clone()) {
        return Decision::Allow(Allowed::BackedUp {
            backup: backup_path,
        });
    }
    if let Some(done) = finished.filter(|done| done.checksum.is_some()) {
        match &evidence.written_content {
            None => return Decision::Read(Need::WrittenContent),
            Some(Content::Hashed(now)) if done.checksum.as_ref() == Some(now) => {
                return Decision::Allow(Allowed::Rewrite {
                    backup: backup_path,
                })
            }
            Some(_) => {}
        }
    }
    Decision::Refuse(Refusal::DiskChanged {
        disk: evidence.disk.clone(),
        checksum,
        actual: match content {
            Content::Hashed(actual) => actual.clone(),
            Content::Shorter { size_bytes } => {
                format!("{size_bytes} bytes instead of {}", record.size_bytes)
            }
        },
    })
}

impl Evidence {
    /// Re-reads what `need` names (hashing a backup or the engine disk).
    fn read(
        &mut self,
        need: Need,
        copy_source: &Path,
        resolve: &impl Fn(&Endpoint) -> anyhow::Result<PathBuf>,
        access: &impl Fn(&Endpoint) -> Access,
        progress: &Reporter,
    ) -> Result<(), GuardError> {
        let record = self
            .record
            .as_ref()
            .expect("decide reads only with a record");
        match need {
            Need::Backup => {
                let path = resolve(&record.backup).map_err(|e| GuardError::Io {
                    what: "cannot resolve the backup",
                    path: record.backup.path.clone(),
                    source: std::io::Error::other(format!("{e:#}")),
                })?;
                let backup_access = access(&record.backup);
                let hashed = copy::hash(
                    &path,
                    &backup_access,
                    record.size_bytes,
                    record.algorithm,
                    progress,
                )?;
                let checksum = hashed.checksum.unwrap_or_default();
                let is_copy_source = identity(copy_source)?.same_file(&identity(&path)?);
                self.backup = Some(BackupNow {
                    path,
                    checksum,
                    is_copy_source,
                });
            }
            Need::EngineContent => {
                let path = &self.engine_disk.path;
                let engine_access = access(&self.engine_disk);
                let (length, algorithm) = (record.size_bytes, record.algorithm);
                let content = content(path, &engine_access, length, algorithm, progress)?;
                self.engine_content = Some(content);
            }
            Need::WrittenContent => {
                let done = (self.write.as_ref())
                    .and_then(|write| write.finished.as_ref())
                    .expect("decide asks for the written content only after a finished write");
                let path = &self.engine_disk.path;
                let engine_access = access(&self.engine_disk);
                let (length, algorithm) = (done.length_bytes, done.algorithm);
                let content = content(path, &engine_access, length, algorithm, progress)?;
                self.written_content = Some(content);
            }
        }
        Ok(())
    }
}

/// The digest of the first `length_bytes` of `path`, or its size when it is shorter.
fn content(
    path: &Path,
    access: &Access,
    length_bytes: u64,
    algorithm: Algorithm,
    progress: &Reporter,
) -> Result<Content, GuardError> {
    let size_bytes = super::target::size_of(path, access).map_err(|source| GuardError::Io {
        what: "cannot read the size of",
        path: path.to_path_buf(),
        source,
    })?;
    if size_bytes < length_bytes {
        return Ok(Content::Shorter { size_bytes });
    }
    let hashed = copy::hash(path, access, length_bytes, algorithm, progress)?;
    Ok(Content::Hashed(hashed.checksum.unwrap_or_default()))
}

fn identity(path: &Path) -> Result<FileIdentity, GuardError> {
    FileIdentity::of(path).map_err(|source| GuardError::Io {
        what: "cannot inspect",
        path: path.to_path_buf(),
        source,
    })
}

fn is_same_disk(record: &BackupRecord, engine_disk: &Endpoint, now: &FileIdentity) -> bool {
    match (&record.source.volume, &engine_disk.volume) {
        (Some(recorded), Some(current)) => recorded == current,
        _ => record.source_identity.same_file(now),
    }
}

fn describe(endpoint: &Endpoint) -> String {
    match &endpoint.volume {
        Some(volume) => format!(
            "{}/{}/{} ({})",
            volume.sd_id,
            volume.image_id,
            volume.volume_id,
            endpoint.path.display()
        ),
        None => endpoint.path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        engine: Endpoint,
        backup: Endpoint,
        checksum: String,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let engine_path = dir.path().join("engine.raw");
        let backup_path = dir.path().join("backup.raw");
        let content = vec![7u8; 100_000];
        std::fs::write(&engine_path, &content).unwrap();
        std::fs::write(&backup_path, &content).unwrap();
        let checksum = copy::hash_bytes(&content, Algorithm::Blake3).unwrap();
        let engine = Endpoint {
            volume: None,
            path: engine_path.clone(),
        };
        let backup = Endpoint {
            volume: None,
            path: backup_path,
        };
        let record = BackupRecord {
            source: engine.clone(),
            source_identity: FileIdentity::of(&engine_path).unwrap(),
            backup: backup.clone(),
            algorithm: Algorithm::Blake3,
            checksum: checksum.clone(),
            size_bytes: content.len() as u64,
            created_epoch_s: 1,
        };
        save(&dir.path().join("state"), &record).unwrap();
        Fixture {
            dir,
            engine,
            backup,
            checksum,
        }
    }

    fn check(f: &Fixture, checksum: Option<&str>, source: &Path) -> Result<Allowed, GuardError> {
        authorize(
            &f.dir.path().join("state"),
            checksum,
            &f.engine,
            source,
            &[],
            |endpoint| Ok(endpoint.path.clone()),
            |_| Access::Own,
            &Reporter::none(),
        )
    }

    #[test]
    fn allows_a_write_when_the_engine_disk_equals_its_verified_backup() {
        let f = fixture();
        let new_image = f.dir.path().join("new.raw");
        std::fs::write(&new_image, b"new").unwrap();
        let allowed = check(&f, Some(&f.checksum.to_uppercase()), &new_image).unwrap();
        assert_eq!(
            allowed,
            Allowed::BackedUp {
                backup: f.backup.path.clone()
            }
        );
        let mode = std::fs::metadata(record_path(&f.dir.path().join("state"), &f.checksum))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn refuses_without_checksum_or_with_an_invented_one() {
        let f = fixture();
        let new_image = f.dir.path().join("new.raw");
        std::fs::write(&new_image, b"new").unwrap();
        let none = check(&f, None, &new_image).unwrap_err().to_string();
        assert!(none.contains("give backup_checksum"), "{none}");
        let invented = check(&f, Some(&"ab".repeat(32)), &new_image)
            .unwrap_err()
            .to_string();
        assert!(
            invented.contains("no verified backup with checksum"),
            "{invented}"
        );
        let traversal = check(&f, Some("../../etc/passwd"), &new_image)
            .unwrap_err()
            .to_string();
        assert!(traversal.contains("is not a hex checksum"), "{traversal}");
    }

    #[test]
    fn refuses_when_the_backup_or_the_engine_disk_changed() {
        let f = fixture();
        let new_image = f.dir.path().join("new.raw");
        std::fs::write(&new_image, b"new").unwrap();
        std::fs::write(&f.engine.path, vec![8u8; 100_000]).unwrap();
        let changed = check(&f, Some(&f.checksum), &new_image)
            .unwrap_err()
            .to_string();
        assert!(
            changed.contains("its content changed since the backup"),
            "{changed}"
        );
        // A restore from the intact backup is still allowed.
        let restore = check(&f, Some(&f.checksum), &f.backup.path).unwrap();
        assert_eq!(
            restore,
            Allowed::Restore {
                backup: f.backup.path.clone()
            }
        );
        std::fs::write(&f.backup.path, vec![9u8; 100_000]).unwrap();
        let broken = check(&f, Some(&f.checksum), &f.backup.path)
            .unwrap_err()
            .to_string();
        assert!(broken.contains("no longer matches"), "{broken}");
    }

    #[test]
    fn an_interrupted_or_finished_write_under_the_backup_may_be_redone() {
        let f = fixture();
        let state = f.dir.path().join("state");
        let new_image = f.dir.path().join("new.raw");
        std::fs::write(&new_image, vec![5u8; 50_000]).unwrap();
        // Interrupted: begun, half written, never finished.
        begin_write(&state, &f.checksum, &new_image).unwrap();
        std::fs::write(&f.engine.path, vec![5u8; 100_000]).unwrap();
        let resumed = check(&f, Some(&f.checksum), &new_image).unwrap();
        assert!(matches!(resumed, Allowed::Resume { .. }), "{resumed:?}");
        // Finished: the engine disk holds what was written.
        let written = vec![5u8; 50_000];
        std::fs::write(&f.engine.path, &written).unwrap();
        let finished = FinishedWrite {
            algorithm: Algorithm::Sha256,
            checksum: copy::hash_bytes(&written, Algorithm::Sha256),
            length_bytes: written.len() as u64,
            identity: FileIdentity::of(&f.engine.path).unwrap(),
        };
        finish_write(&state, &f.checksum, &new_image, finished).unwrap();
        let rewrite = check(&f, Some(&f.checksum), &new_image).unwrap();
        assert!(matches!(rewrite, Allowed::Rewrite { .. }), "{rewrite:?}");
        // Rewritten with the same bytes (new mtime): still what the write left.
        std::fs::write(&f.engine.path, &written).unwrap();
        let rewrite = check(&f, Some(&f.checksum), &new_image).unwrap();
        assert!(matches!(rewrite, Allowed::Rewrite { .. }), "{rewrite:?}");
        // Changed by something else (the engine ran): refused.
        std::fs::write(&f.engine.path, vec![6u8; 50_000]).unwrap();
        let error = check(&f, Some(&f.checksum), &new_image)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("other than by he_image_copy writes"),
            "{error}"
        );
    }

    /// Evidence about an engine disk file whose record says it was backed up as identity
    /// `ENGINE` with checksum `aa`, before any re-read.
    fn evidence() -> Evidence {
        let engine = Endpoint {
            volume: None,
            path: PathBuf::from("/sd/engine"),
        };
        Evidence {
            disk: "/sd/engine".into(),
            checksum: "aa".into(),
            records_dir: PathBuf::from("/state/engine-disk-backups"),
            record: Some(BackupRecord {
                source: engine.clone(),
                source_identity: ENGINE,
                backup: Endpoint {
                    volume: None,
                    path: PathBuf::from("/sd/backup"),
                },
                algorithm: Algorithm::Blake3,
                checksum: "aa".into(),
                size_bytes: 100,
                created_epoch_s: 1,
            }),
            proof: Proof::Local,
            engine_disk: engine,
            engine_identity: ENGINE,
            write: None,
            backup: None,
            engine_content: None,
            written_content: None,
        }
    }

    const ENGINE: FileIdentity = FileIdentity {
        device: 1,
        inode: 10,
        size_bytes: 100,
        mtime_ns: 1_000,
        regular_file: true,
    };

    /// The engine disk file after some write (same file, new mtime).
    const WRITTEN: FileIdentity = FileIdentity {
        mtime_ns: 2_000,
        ..ENGINE
    };

    fn backup_read(checksum: &str, is_copy_source: bool) -> Option<BackupNow> {
        Some(BackupNow {
            path: PathBuf::from("/sd/backup"),
            checksum: checksum.into(),
            is_copy_source,
        })
    }

    fn write_under_backup(finished: Option<(Option<&str>, FileIdentity)>) -> Option<WriteRecord> {
        Some(WriteRecord {
            backup_checksum: "aa".into(),
            source: PathBuf::from("/stage/new.raw"),
            finished: finished.map(|(checksum, identity)| FinishedWrite {
                algorithm: Algorithm::Sha256,
                checksum: checksum.map(String::from),
                length_bytes: 50,
                identity,
            }),
        })
    }

    fn hashed(checksum: &str) -> Option<Content> {
        Some(Content::Hashed(checksum.into()))
    }

    #[test]
    fn decide_as_a_table() {
        let backup = PathBuf::from("/sd/backup");
        let allow_backed_up = Decision::Allow(Allowed::BackedUp {
            backup: backup.clone(),
        });
        let allow_rewrite = Decision::Allow(Allowed::Rewrite {
            backup: backup.clone(),
        });
        let changed = |actual: &str| {
            Decision::Refuse(Refusal::DiskChanged {
                disk: "/sd/engine".into(),
                checksum: "aa".into(),
                actual: actual.into(),
            })
        };
        let read = evidence;
        let checked = || Evidence {
            backup: backup_read("aa", false),
            ..read()
        };
        let moved = || Evidence {
            engine_identity: WRITTEN,
            ..checked()
        };
        let other_file = FileIdentity {
            inode: 11,
            ..ENGINE
        };
        let block_device = FileIdentity {
            regular_file: false,
            size_bytes: 0,
            ..ENGINE
        };
        let volume = Volume {
            sd_id: "sd".into(),
            image_id: "img".into(),
            volume_id: "vol".into(),
        };
        let rows: Vec<(&str, Evidence, Decision)> = vec![
            (
                "no record with that checksum",
                Evidence {
                    record: None,
                    ..read()
                },
                Decision::Refuse(Refusal::NoRecord {
                    disk: "/sd/engine".into(),
                    checksum: "aa".into(),
                    dir: PathBuf::from("/state/engine-disk-backups"),
                }),
            ),
            (
                "a record of another file",
                Evidence {
                    engine_identity: other_file,
                    ..read()
                },
                Decision::Refuse(Refusal::OtherDisk {
                    disk: "/sd/engine".into(),
                    checksum: "aa".into(),
                    other: "/sd/engine".into(),
                }),
            ),
            (
                "a record of the same volume, now another file: re-read the backup",
                {
                    let mut evidence = Evidence {
                        engine_identity: other_file,
                        ..read()
                    };
                    evidence.engine_disk.volume = Some(volume.clone());
                    evidence.record.as_mut().unwrap().source.volume = Some(volume);
                    evidence
                },
                Decision::Read(Need::Backup),
            ),
            (
                "the backup not re-read yet",
                read(),
                Decision::Read(Need::Backup),
            ),
            (
                "the backup changed",
                Evidence {
                    backup: backup_read("bb", false),
                    ..read()
                },
                Decision::Refuse(Refusal::BackupChanged {
                    backup: "/sd/backup".into(),
                    checksum: "aa".into(),
                    actual: "bb".into(),
                }),
            ),
            (
                "restoring the backup itself",
                Evidence {
                    backup: backup_read("aa", true),
                    engine_identity: WRITTEN,
                    ..read()
                },
                Decision::Allow(Allowed::Restore {
                    backup: backup.clone(),
                }),
            ),
            (
                "the engine disk file untouched",
                checked(),
                allow_backed_up.clone(),
            ),
            (
                "a block device: its identity proves nothing, hash it",
                Evidence {
                    engine_identity: block_device,
                    record: Some(BackupRecord {
                        source_identity: block_device,
                        ..read().record.unwrap()
                    }),
                    ..checked()
                },
                Decision::Read(Need::EngineContent),
            ),
            (
                "an interrupted write under the backup",
                Evidence {
                    write: write_under_backup(None),
                    ..moved()
                },
                Decision::Allow(Allowed::Resume {
                    backup: backup.clone(),
                }),
            ),
            (
                "a finished write, nothing since",
                Evidence {
                    write: write_under_backup(Some((Some("cc"), WRITTEN))),
                    ..moved()
                },
                allow_rewrite.clone(),
            ),
            (
                "touched: hash it",
                moved(),
                Decision::Read(Need::EngineContent),
            ),
            (
                "touched, same content",
                Evidence {
                    engine_content: hashed("aa"),
                    ..moved()
                },
                allow_backed_up,
            ),
            (
                "touched, other content",
                Evidence {
                    engine_content: hashed("dd"),
                    ..moved()
                },
                changed("dd"),
            ),
            (
                "shorter than the backup",
                Evidence {
                    engine_content: Some(Content::Shorter { size_bytes: 10 }),
                    ..moved()
                },
                changed("10 bytes instead of 100"),
            ),
            (
                "other content after a finished write: hash what it wrote",
                Evidence {
                    engine_content: hashed("dd"),
                    write: write_under_backup(Some((Some("cc"), ENGINE))),
                    ..moved()
                },
                Decision::Read(Need::WrittenContent),
            ),
            (
                "still what the finished write left",
                Evidence {
                    engine_content: hashed("dd"),
                    write: write_under_backup(Some((Some("cc"), ENGINE))),
                    written_content: hashed("cc"),
                    ..moved()
                },
                allow_rewrite,
            ),
            (
                "changed since the finished write",
                Evidence {
                    engine_content: hashed("dd"),
                    write: write_under_backup(Some((Some("cc"), ENGINE))),
                    written_content: hashed("ee"),
                    ..moved()
                },
                changed("dd"),
            ),
            (
                "a finished write without checksum proves nothing",
                Evidence {
                    engine_content: hashed("dd"),
                    write: write_under_backup(Some((None, ENGINE))),
                    ..moved()
                },
                changed("dd"),
            ),
        ];
        for (case, evidence, expected) in rows {
            assert_eq!(decide(&evidence), expected, "{case}");
        }
    }

    #[test]
    fn the_checksum_must_be_given_and_hex() {
        let engine = evidence().engine_disk;
        assert_eq!(given_checksum(Some(" AB01 "), &engine), Ok("ab01".into()));
        assert_eq!(
            given_checksum(None, &engine),
            Err(Refusal::NoChecksum {
                disk: "/sd/engine".into()
            })
        );
        for bad in ["", "../x", "abz"] {
            assert!(
                matches!(
                    given_checksum(Some(bad), &engine),
                    Err(Refusal::Malformed { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_a_record_of_another_disk() {
        let f = fixture();
        let other = Endpoint {
            volume: None,
            path: f.backup.path.clone(),
        };
        let error = authorize(
            &f.dir.path().join("state"),
            Some(&f.checksum),
            &other,
            &f.engine.path,
            &[],
            |endpoint| Ok(endpoint.path.clone()),
            |_| Access::Own,
            &Reporter::none(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("is a copy of"), "{error}");
    }

    /// Evidence whose record is proven elsewhere than on this host.
    fn proven_by(proof: Proof) -> Evidence {
        Evidence {
            proof,
            ..evidence()
        }
    }

    #[test]
    fn a_proof_from_elsewhere_authorises_only_restoring_that_very_backup() {
        for proof in [Proof::VolumeMetadata, Proof::Operator] {
            assert_eq!(
                decide(&proven_by(proof)),
                Decision::Read(Need::Backup),
                "{proof:?}: the backup is re-hashed first"
            );
            let restoring = Evidence {
                backup: backup_read("aa", true),
                ..proven_by(proof)
            };
            assert!(
                matches!(decide(&restoring), Decision::Allow(Allowed::Restore { .. })),
                "{proof:?}"
            );
            // Even an engine disk unchanged since the backup is not written from elsewhere.
            let other_write = Evidence {
                backup: backup_read("aa", false),
                ..proven_by(proof)
            };
            assert_eq!(
                decide(&other_write),
                Decision::Refuse(Refusal::NotARestore {
                    disk: "/sd/engine".into(),
                    checksum: "aa".into(),
                    proof,
                }),
            );
        }
        let wrong_checksum = Evidence {
            backup: backup_read("bb", true),
            ..proven_by(Proof::Operator)
        };
        assert_eq!(
            decide(&wrong_checksum),
            Decision::Refuse(Refusal::ChecksumMismatch {
                backup: "/sd/backup".into(),
                checksum: "aa".into(),
                actual: "bb".into(),
            })
        );
        let changed_backup = Evidence {
            backup: backup_read("bb", true),
            ..proven_by(Proof::VolumeMetadata)
        };
        assert!(matches!(
            decide(&changed_backup),
            Decision::Refuse(Refusal::BackupChanged { .. })
        ));
    }

    #[test]
    fn without_a_local_record_the_proof_with_the_checksum_is_used() {
        let f = fixture();
        let empty_state = f.dir.path().join("reinstalled");
        let record = load(&f.dir.path().join("state"), &f.checksum)
            .unwrap()
            .unwrap();
        let restore = |proofs: &[(Proof, BackupRecord)]| {
            authorize(
                &empty_state,
                Some(&f.checksum),
                &f.engine,
                &f.backup.path,
                proofs,
                |endpoint| Ok(endpoint.path.clone()),
                |_| Access::Own,
                &Reporter::none(),
            )
        };
        let no_proof = restore(&[]).unwrap_err().to_string();
        assert!(no_proof.contains("unrecorded_backup"), "{no_proof}");
        let other_checksum = BackupRecord {
            checksum: "00".into(),
            ..record.clone()
        };
        assert!(restore(&[(Proof::VolumeMetadata, other_checksum)]).is_err());
        let allowed = restore(&[(Proof::VolumeMetadata, record.clone())]).unwrap();
        assert!(matches!(allowed, Allowed::Restore { .. }), "{allowed:?}");
        let new_image = f.dir.path().join("new.raw");
        std::fs::write(&new_image, b"new").unwrap();
        let upgrade = authorize(
            &empty_state,
            Some(&f.checksum),
            &f.engine,
            &new_image,
            &[(Proof::Operator, record)],
            |endpoint| Ok(endpoint.path.clone()),
            |_| Access::Own,
            &Reporter::none(),
        );
        assert!(
            upgrade.unwrap_err().to_string().contains("only restoring"),
            "an operator's checksum never authorises writing something else"
        );
    }
}
