//! `he_backup_disk`'s states against the engine: present (find or create a backup disk and
//! wait until it is ok) and absent (delete a backup disk, never the engine VM's own disk).

use super::backup_disks::{self, BackupDisk};
use super::disks::{self, NewDisk};
use super::{storage_domains, wait, Connection};
use serde_json::json;
use std::time::Duration;

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

/// Finds the disk `planned.name` or, when there is none, checks the free space and (unless
/// `check_mode`) creates it and waits up to `timeout` for it to be ok.
pub fn present(
    engine: &mut Connection,
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
        return Ok(Present::Exists(reported(&disk, sp_id)));
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
    Ok(Present::Created(reported(&disk, sp_id)))
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
fn reported(disk: &disks::Disk, sp_id: &str) -> BackupDisk {
    let mut report = BackupDisk::from_engine(disk, None);
    report.created = backup_disks::creation_time(sp_id, &report.volume());
    report
}
