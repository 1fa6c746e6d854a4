//! The attempt record (`STATE_DIR/upgrade-state.json`): which kind of attempt, the last phase
//! it reached, and what it learned on the way (backup disk, checksum...).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The record's file name under the state directory.
pub const RECORD_FILE: &str = "upgrade-state.json";

/// What an attempt does.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Upgrade the engine VM to the new appliance.
    #[default]
    Upgrade,
    /// Put a verified backup back onto the engine disk.
    Rollback,
}

/// The phases of an upgrade attempt, in order; the record keeps the last one reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing done yet.
    New,
    /// The backup disk's name is chosen (a re-run reuses it: never a second disk).
    BackupNamed,
    /// Preconditions passed, appliance staged, backup archive valid, backup disk created.
    Prepared,
    /// The engine VM was stopped: the downtime began.
    EngineStopped,
    /// The engine disk was copied onto the backup disk and the copy verified.
    BackedUp,
    /// The engine disk is being (or was) written: a failure from here on needs a rollback.
    EngineDiskWritten,
    /// The new engine booted, restored the backup, ran engine-setup and is healthy.
    EngineBooted,
    /// The backup disk is registered in the new engine.
    BackupRegistered,
    /// The attempt finished.
    Done,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 9] = [
        Phase::New,
        Phase::BackupNamed,
        Phase::Prepared,
        Phase::EngineStopped,
        Phase::BackedUp,
        Phase::EngineDiskWritten,
        Phase::EngineBooted,
        Phase::BackupRegistered,
        Phase::Done,
    ];
}

/// A problem with the record file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file exists but cannot be read.
    #[error("cannot read the attempt record {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a record.
    #[error(
        "the attempt record {path} is not valid ({source}): move it aside to start a new attempt"
    )]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One attempt's record. Fields this library does not use are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Upgrade or rollback.
    pub kind: Kind,
    /// The last phase reached.
    pub phase: Phase,
    /// The playbook run that wrote it last.
    pub run_id: String,
    /// The backup disk's name, once chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// The checksum of the verified engine disk backup, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_checksum: Option<String>,
    /// Everything else the playbook recorded (disks, versions, timings).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl AttemptRecord {
    /// Where the record of `state_dir` lives.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(RECORD_FILE)
    }

    /// Reads the record under `state_dir`; `None` when there is none yet.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, RecordError> {
        let path = Self::path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Unreadable { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| RecordError::Malformed { path, source })
    }

    /// Whether this record is an attempt of `kind` that stopped before the end.
    pub fn unfinished(&self, kind: Kind) -> bool {
        self.kind == kind && !matches!(self.phase, Phase::New | Phase::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_playbooks_record_and_keeps_what_it_does_not_use() {
        let dir = tempfile::tempdir().unwrap();
        assert!(AttemptRecord::load(dir.path()).unwrap().is_none());
        std::fs::write(
            AttemptRecord::path(dir.path()),
            r#"{"kind": "upgrade", "phase": "backed_up", "run_id": "upgrade-20261201T100000Z",
                "backup_name": "hosted-engine-backup-20261201100000",
                "backup_checksum": "ab12", "phases": {"new": 1, "backed_up": 9},
                "vm_id": "0b5d"}"#,
        )
        .unwrap();
        let record = AttemptRecord::load(dir.path()).unwrap().unwrap();
        assert_eq!(record.phase, Phase::BackedUp);
        assert!(record.unfinished(Kind::Upgrade));
        assert!(!record.unfinished(Kind::Rollback));
        assert_eq!(record.details["vm_id"], "0b5d");
        assert!(Phase::EngineStopped < Phase::BackedUp);
    }

    #[test]
    fn a_broken_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            AttemptRecord::path(dir.path()),
            r#"{"kind": "upgrade", "phase": "half_way", "run_id": "r"}"#,
        )
        .unwrap();
        let error = AttemptRecord::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("upgrade-state.json is not valid"), "{error}");
        assert!(error.contains("half_way"), "{error}");
    }
}
