//! `he_backup_disk`'s options and its states against the engine: present (find or create a
//! backup disk and wait until it is ok) and absent (delete a backup disk, never the engine
//! VM's own disk).

use super::backup_disks::Size;
use super::backup_disks::{self, BackupDisk};
use super::disks::{self, NewDisk};
use super::{storage_domains, wait, Connection};
use crate::ansible::{at_most_one_of, take_rest, OptionError, OptionSet, Seconds};
use crate::host::vdsm::Vdsm;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The options of `he_backup_disk`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupDiskOptions {
    /// What to do.
    #[serde(default)]
    pub state: State,
    /// The backup disk's name (present, query, absent).
    pub name: Option<String>,
    /// The disk to delete, by id (absent).
    pub disk_id: Option<String>,
    /// Its size (present; default: the engine disk's).
    pub size: Option<Size>,
    /// Its storage domain (default: the hosted-engine one).
    pub storage_domain: Option<String>,
    /// hosted-engine.conf.
    #[serde(default = "crate::host::he_conf::default_path")]
    pub he_conf: PathBuf,
    /// Longest wait for a new disk to be ok.
    #[serde(default = "Seconds::of::<3600>")]
    pub wait_timeout: Seconds,
}

/// The `state` option.
#[derive(Debug, Default, Deserialize, serde::Serialize, PartialEq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Find or create the disk.
    #[default]
    Present,
    /// List backup disks from vdsm (the engine may be down).
    Query,
    /// Delete the disk.
    Absent,
}

impl OptionSet for BackupDiskOptions {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let options: Self = take_rest(options)?;
        at_most_one_of(&[
            ("name", options.name.is_some()),
            ("disk_id", options.disk_id.is_some()),
        ])?;
        if options.disk_id.is_some() && options.state != State::Absent {
            return Err(OptionError(
                "option 'disk_id' is only used with state=absent".into(),
            ));
        }
        if options.state == State::Absent && options.name.is_none() && options.disk_id.is_none() {
            return Err(OptionError("state=absent needs 'name' or 'disk_id'".into()));
        }
        Ok(options)
    }
}

/// What `state: present` found or did.
#[derive(Debug)]
pub enum Present {
    /// A disk of that name exists (waited for until ok, except in check mode).
    Exists(BackupDisk),
    /// Check mode: it would be created on the storage domain named `sd_name`.
    WouldCreate { planned: NewDisk, sd_name: String },
    /// It was created and is ok.
    Created(BackupDisk),
}

impl Present {
    /// Whether the run changed (or would change) anything.
    pub fn changed(&self) -> bool {
        !matches!(self, Present::Exists(_))
    }

    /// One line for the operator about the disk `name` of `size_bytes`.
    pub fn summary(&self, name: &str, size_bytes: u64) -> String {
        match self {
            Present::Exists(disk) => format!("backup disk {name} already exists ({})", disk.id),
            Present::WouldCreate { sd_name, .. } => {
                format!("would create backup disk {name} of {size_bytes} bytes on {sd_name}")
            }
            Present::Created(disk) => {
                format!(
                    "created backup disk {name} ({}, {size_bytes} bytes)",
                    disk.id
                )
            }
        }
    }

    /// The `disk` return key: the disk, or what would be created.
    pub fn disk(&self) -> Value {
        match self {
            Present::Exists(disk) | Present::Created(disk) => json!(disk),
            Present::WouldCreate { planned, .. } => {
                json!({ "name": planned.name, "size": planned.size_bytes, "sd_id": planned.sd_id })
            }
        }
    }

    /// The diff: the disk before and after.
    pub fn diff(&self) -> (Value, Value) {
        match self {
            Present::Exists(disk) => (json!(disk), json!(disk)),
            Present::WouldCreate { planned, .. } => (Value::Null, json!(planned)),
            Present::Created(disk) => (Value::Null, json!(disk)),
        }
    }
}

/// Finds the disk `planned.name` or, when there is none, checks the free space and (unless
/// `check_mode`) creates it and waits up to `timeout` for it to be ok.
pub fn present(
    engine: &mut Connection,
    vdsm: &Vdsm,
    planned: NewDisk,
    sp_id: &str,
    timeout: Duration,
    check_mode: bool,
) -> anyhow::Result<Present> {
    if let Some(existing) = disks::find_one_by_name(engine, &planned.name)? {
        let disk = match (existing.status.as_str(), check_mode) {
            ("ok", _) | (_, true) => existing,
            _ => disks::wait_until_ok(engine, &existing.id, timeout)?,
        };
        return Ok(Present::Exists(reported(vdsm, &disk, sp_id)));
    }
    let sd = storage_domains::get(engine, &planned.sd_id)?;
    backup_disks::check_space(&sd, planned.size_bytes)?;
    if check_mode {
        return Ok(Present::WouldCreate {
            planned,
            sd_name: sd.name,
        });
    }
    let creating = disks::create(engine, &planned)?;
    let name = &planned.name;
    tracing::info!(disk_id = %creating.id, "backup disk {name} created; waiting for it to be ok");
    let disk = disks::wait_until_ok(engine, &creating.id, timeout).map_err(|error| {
        wait::failed_after_change(
            error,
            "disk",
            json!(BackupDisk::from_engine(&creating, None)),
        )
    })?;
    Ok(Present::Created(reported(vdsm, &disk, sp_id)))
}

/// Which disk `state: absent` deletes.
#[derive(Debug, Clone)]
pub enum DiskToDelete {
    /// By id.
    Id(String),
    /// By name.
    Name(String),
}

/// Deletes the backup disk (unless `check_mode`) after checking it is one and not the engine
/// VM's disk (image `engine_image_id`); the disk (to be) deleted, `None` when there is none.
pub fn absent(
    engine: &mut Connection,
    which: &DiskToDelete,
    engine_image_id: &str,
    check_mode: bool,
) -> anyhow::Result<Option<BackupDisk>> {
    let found = match which {
        DiskToDelete::Id(id) => disks::get(engine, id)?,
        DiskToDelete::Name(name) => disks::find_one_by_name(engine, name)?,
    };
    let Some(disk) = found else {
        return Ok(None);
    };
    backup_disks::check_deletable(&disk, engine_image_id)?;
    if !check_mode {
        disks::delete(engine, &disk.id)?;
    }
    Ok(Some(BackupDisk::from_engine(&disk, None)))
}

/// The engine's disk as `he_backup_disk` reports it, with vdsm's creation time.
fn reported(vdsm: &Vdsm, disk: &disks::Disk, sp_id: &str) -> BackupDisk {
    let mut report = BackupDisk::from_engine(disk, None);
    report.created = backup_disks::creation_time(vdsm, sp_id, &report.volume());
    report
}
