//! `he-lab status --json` and `he-lab inspect --json`: what tests, playbooks and people need
//! to find and judge the lab (paths, URLs, VM and engine state, volumes and their hashes).

use crate::config::LabConfig;
use crate::engine::db::EngineDb;
use crate::guest::{disk::GuestDisk, engine_state};
use crate::{daemon, state, storage};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The engine version installed on the engine disk (read from its filesystem).
pub fn engine_version(config: &LabConfig) -> Option<String> {
    let path = config.volume_path(&config.engine_image_id, &config.engine_volume_id);
    let guest = GuestDisk::open(&path).ok()?;
    engine_state::installed(&guest)
        .ok()
        .flatten()
        .map(|i| i.version)
}

/// `status --json`.
pub fn status(config: &LabConfig) -> Value {
    let path = |p: &Path| p.display().to_string();
    let vm = state::vm(config);
    json!({
        "dir": path(&config.dir),
        "bin_dir": path(&config.bin_dir()),
        "inventory": path(&config.inventory_path()),
        "engine_url": config.engine_url(),
        "health_url": config.health_url(),
        "ca_file": path(&config.ca_file()),
        "admin_user": config.admin_user,
        "admin_password_file": path(&config.admin_password_file()),
        "he_conf": path(&config.he_conf_path()),
        "vm_conf": path(&config.vm_conf_path()),
        "channel": path(&config.channel_path()),
        "appliance_ova": path(&config.appliance_ova_path()),
        "appliance_desc": path(&config.appliance_desc_path()),
        "engine_backup": path(&config.engine_backup_path()),
        "vm_state": vm.summary(),
        "vm_status": vm.status,
        "engine_version": engine_version(config),
        "engine_running": vm.engine_running,
        "daemon_running": daemon::is_running(config),
        "profile": config.profile,
        "fqdn": config.fqdn,
        "vm_id": config.vm_id,
        "sd_id": config.sd_id,
        "stage_dir": path(&config.stage_dir()),
        "log_dir": path(&config.log_dir()),
        "report_path": path(&config.report_path()),
        "daemon_log": path(&config.daemon_log_path()),
        "vdsm_address": crate::vdsm::address(config),
        "vdsm_pki_dir": path(&crate::vdsm::pki_dir(config)),
        "vdsm_version": crate::profile::HostVdsm::of(&config.profile).version(),
    })
}

/// SHA-256 of a file, hex (None when unreadable).
pub fn sha256_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex::encode(hasher.finalize()))
}

/// `inspect --json`: status plus the engine disk, every volume with its hash, what the
/// engine database knows, unregistered disks and faults.
pub fn inspect(config: &LabConfig) -> Value {
    let mut report = status(config);
    let engine_path = config.volume_path(&config.engine_image_id, &config.engine_volume_id);
    report["engine_disk"] = json!({
        "sd_id": config.sd_id,
        "image_id": config.engine_image_id,
        "volume_id": config.engine_volume_id,
        "path": engine_path.display().to_string(),
        // The same volume as the host sees it, through the root-squashing mount.
        "host_path": config
            .sd_mount()
            .join(&config.sd_id)
            .join("images")
            .join(&config.engine_image_id)
            .join(&config.engine_volume_id)
            .display()
            .to_string(),
        "sha256": sha256_file(&engine_path),
        "capacity": storage::volume_info(config, &config.engine_image_id, &config.engine_volume_id)
            .map(|v| v.capacity_bytes()),
    });
    let volumes: Vec<Value> = storage::list_volumes(config)
        .iter()
        .map(|volume| {
            json!({
                "image_id": volume.image_id,
                "volume_id": volume.volume_id,
                "path": volume.path.display().to_string(),
                "sha256": sha256_file(&volume.path),
                "description": volume.description(),
                "capacity": volume.capacity_bytes(),
                "disk_type": volume.meta.get("DISKTYPE"),
            })
        })
        .collect();
    report["volumes"] = json!(volumes);
    let db = EngineDb::load(config).ok();
    report["engine_disks"] = json!(db
        .as_ref()
        .map(|db| db
            .disks
            .iter()
            .map(|d| json!({"id": d.id, "name": d.alias, "status": d.status_at(crate::engine::clock::now_ms(), config.fault("disk_create_stuck"))}))
            .collect::<Vec<_>>())
        .unwrap_or_default());
    report["unregistered"] = json!(db
        .as_ref()
        .map(|db| crate::engine::volumes::unregistered(config, db)
            .iter()
            .map(|v| json!({"id": v.image_id, "name": v.alias}))
            .collect::<Vec<_>>())
        .unwrap_or_default());
    report["engine_db_version"] = json!(db.as_ref().map(|db| db.product.full_version.clone()));
    report["global_maintenance"] = json!(crate::shim::ha_status::global_maintenance(config));
    report["faults"] = json!(config.faults());
    report
}
