//! The vdsm verbs on the file storage domain (images, volumes, extend tasks), answered from
//! the domain's files as vdsm does; they work whether or not the lab daemon runs.

use crate::config::LabConfig;
use crate::storage::{self, BLANK_UUID};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt as _;

/// A vdsm error: code and message (`(code=.., message=..)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdsmError {
    /// vdsm error code.
    pub code: i32,
    /// vdsm message.
    pub message: String,
}

impl VdsmError {
    fn new(code: i32, message: impl Into<String>) -> Self {
        VdsmError {
            code,
            message: message.into(),
        }
    }
}

fn check_domain(config: &LabConfig, sd_id: &str) -> Result<(), VdsmError> {
    if sd_id == config.sd_id && config.sd_dir().is_dir() {
        Ok(())
    } else {
        Err(VdsmError::new(
            358,
            format!("Storage domain does not exist: ('{sd_id}',)"),
        ))
    }
}

fn check_image(config: &LabConfig, image_id: &str) -> Result<(), VdsmError> {
    if config.sd_dir().join("images").join(image_id).is_dir() {
        Ok(())
    } else {
        Err(VdsmError::new(
            268,
            format!(
                "Image does not exist in domain: 'image={image_id}, domain={}'",
                config.sd_id
            ),
        ))
    }
}

fn volume(
    config: &LabConfig,
    image_id: &str,
    volume_id: &str,
) -> Result<storage::VolumeInfo, VdsmError> {
    storage::volume_info(config, image_id, volume_id)
        .ok_or_else(|| VdsmError::new(201, format!("Volume does not exist: ('{volume_id}',)")))
}

/// `StorageDomain getImages storagedomainID=`.
pub fn get_images(config: &LabConfig, sd_id: &str) -> Result<Value, VdsmError> {
    check_domain(config, sd_id)?;
    Ok(json!(storage::list_images(config)))
}

/// `StorageDomain getInfo storagedomainID=`.
pub fn domain_info(config: &LabConfig, sd_id: &str) -> Result<Value, VdsmError> {
    check_domain(config, sd_id)?;
    let text = std::fs::read_to_string(config.sd_dir().join("dom_md/metadata")).unwrap_or_default();
    let meta = storage::parse_meta(&text);
    let field = |key: &str| meta.get(key).cloned().unwrap_or_default();
    Ok(json!({
        "uuid": sd_id,
        "type": field("TYPE"),
        "class": field("CLASS"),
        "name": field("DESCRIPTION"),
        "role": field("ROLE"),
        "remotePath": field("REMOTE_PATH"),
        "version": field("VERSION"),
        "pool": [field("POOL_UUID")],
        "lver": -1,
        "spm_id": -1,
        "master_ver": 0,
        "block_size": 512,
        "alignment": 1048576,
        "metadataDevice": "",
        "vguuid": "",
    }))
}

/// `Image getVolumes imageID= storagepoolID= storagedomainID=`.
pub fn get_volumes(config: &LabConfig, sd_id: &str, image_id: &str) -> Result<Value, VdsmError> {
    check_domain(config, sd_id)?;
    check_image(config, image_id)?;
    Ok(json!(storage::list_image_volumes(config, image_id)))
}

/// `Image prepare ...`: `{"path": ...}` only (the JSON-RPC bridge strips the rest).
pub fn prepare(
    config: &LabConfig,
    sd_id: &str,
    image_id: &str,
    volume_id: &str,
) -> Result<Value, VdsmError> {
    check_domain(config, sd_id)?;
    check_image(config, image_id)?;
    let info = volume(config, image_id, volume_id)?;
    Ok(json!({"path": config.on_host(&info.path).display().to_string()}))
}

/// `Volume getInfo ...` (volume.py metadata2info: sizes and ctime as strings).
pub fn volume_info(
    config: &LabConfig,
    sd_id: &str,
    image_id: &str,
    volume_id: &str,
) -> Result<Value, VdsmError> {
    check_domain(config, sd_id)?;
    let info = volume(config, image_id, volume_id)?;
    let field = |key: &str| info.meta.get(key).cloned().unwrap_or_default();
    let metadata = std::fs::metadata(&info.path)
        .map_err(|e| VdsmError::new(201, format!("Volume does not exist: ('{volume_id}',) {e}")))?;
    let legality = field("LEGALITY");
    let mut value = json!({
        "apparentsize": metadata.len().to_string(),
        "capacity": info.capacity_bytes().to_string(),
        "children": [],
        "ctime": field("CTIME"),
        "description": field("DESCRIPTION"),
        "disktype": field("DISKTYPE"),
        "domain": field("DOMAIN"),
        "format": field("FORMAT"),
        "generation": field("GEN").parse::<i64>().unwrap_or(0),
        "image": image_id,
        "legality": legality,
        "mtime": "0",
        "parent": info.meta.get("PUUID").cloned().unwrap_or_else(|| BLANK_UUID.into()),
        "pool": "",
        "status": if legality == "ILLEGAL" { "ILLEGAL" } else { "OK" },
        "truesize": (metadata.blocks() * 512).to_string(),
        "type": field("TYPE"),
        "uuid": volume_id,
        "voltype": field("VOLTYPE"),
        "lease": {
            "path": format!("{}.lease", config.on_host(&info.path).display()),
            "offset": 0,
            "owners": [],
            "version": null,
        },
    });
    if let Some(sequence) = info.meta.get("SEQ").and_then(|s| s.parse::<i64>().ok()) {
        value["sequence"] = json!(sequence);
    }
    Ok(value)
}

/// `Volume getSize ...`.
pub fn volume_size(
    config: &LabConfig,
    sd_id: &str,
    image_id: &str,
    volume_id: &str,
) -> Result<Value, VdsmError> {
    check_domain(config, sd_id)?;
    let info = volume(config, image_id, volume_id)?;
    let metadata = std::fs::metadata(&info.path).map_err(|e| VdsmError::new(201, e.to_string()))?;
    Ok(json!({
        "apparentsize": metadata.len().to_string(),
        "truesize": (metadata.blocks() * 512).to_string(),
    }))
}

/// `Volume extendSize ... newSize=`: an SPM task that grows the raw volume; returns its id.
pub fn extend_size(
    config: &LabConfig,
    sp_id: &str,
    sd_id: &str,
    image_id: &str,
    volume_id: &str,
    new_size: &str,
) -> Result<Value, VdsmError> {
    // An SPM verb: HSM.extendVolumeSize starts with getPool(spUUID), so the blank pool id of
    // hosted-engine.conf is refused as it is for setDescription.
    check_spm_verb(config, sp_id)?;
    check_domain(config, sd_id)?;
    let info = volume(config, image_id, volume_id)?;
    let new_size: u64 = new_size
        .parse()
        .map_err(|_| VdsmError::new(1000, format!("Invalid parameter: 'newSize={new_size}'")))?;
    // vdsm refuses to shrink a volume (se.VolumeResizeValueError).
    if new_size < info.capacity_bytes() {
        return Err(VdsmError::new(
            232,
            format!("Incorrect size value for volume resize: ('{new_size}',)"),
        ));
    }
    let task_id = crate::engine::db::derived_uuid(
        crate::engine::clock::now_ms(),
        &format!("task/{volume_id}"),
    );
    if new_size > info.capacity_bytes() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&info.path)
            .and_then(|f| f.set_len(new_size))
            .map_err(|e| VdsmError::new(100, format!("General Exception: ({e})")));
        file?;
        let mut meta = info.meta.clone();
        if meta.contains_key("CAP") {
            meta.insert("CAP".into(), new_size.to_string());
        } else {
            meta.insert("SIZE".into(), new_size.div_ceil(512).to_string());
        }
        storage::write_meta(&info.path, &meta)
            .map_err(|e| VdsmError::new(100, format!("General Exception: ({e:#})")))?;
    }
    let task = json!({
        "taskID": task_id,
        "ready_at_ms": crate::engine::clock::now_ms() + 500,
    });
    let _ = std::fs::create_dir_all(config.tasks_dir());
    std::fs::write(
        config.tasks_dir().join(format!("{task_id}.json")),
        task.to_string(),
    )
    .map_err(|e| VdsmError::new(100, format!("General Exception: ({e})")))?;
    Ok(json!(task_id))
}

/// What vdsm checks first for a verb the SPM runs: `HSM.getPool` needs the pool this host is
/// connected to (the domain's `POOL_UUID`; any other id, the blank one included, is
/// `StoragePoolUnknown` 309), then the pool's `@secured` methods need this host to be the SPM
/// (654 "Not SPM").
fn check_spm_verb(config: &LabConfig, sp_id: &str) -> Result<(), VdsmError> {
    let text = std::fs::read_to_string(config.sd_dir().join("dom_md/metadata")).unwrap_or_default();
    let pool = storage::parse_meta(&text)
        .get("POOL_UUID")
        .cloned()
        .unwrap_or_default();
    if pool.is_empty() || sp_id != pool {
        return Err(VdsmError::new(
            309,
            format!("Unknown pool id, pool not connected: ('{sp_id}',)"),
        ));
    }
    if config.fault("not_spm") {
        return Err(VdsmError::new(654, "Not SPM: ()"));
    }
    Ok(())
}

/// `Volume setDescription storagepoolID= storagedomainID= imageID= volumeID= description=`:
/// as vdsm, an SPM verb of the connected pool ([`check_spm_verb`]) that keeps at most 210
/// characters without an error (`volumemetadata.validate_description` only logs a warning);
/// returns nothing.
pub fn set_description(
    config: &LabConfig,
    sp_id: &str,
    sd_id: &str,
    image_id: &str,
    volume_id: &str,
    description: &str,
) -> Result<Value, VdsmError> {
    check_spm_verb(config, sp_id)?;
    check_domain(config, sd_id)?;
    check_image(config, image_id)?;
    let info = volume(config, image_id, volume_id)?;
    let mut meta = info.meta.clone();
    let kept: String = description
        .chars()
        .take(storage::DESCRIPTION_MAX_CHARS)
        .collect();
    meta.insert("DESCRIPTION".into(), kept);
    storage::write_meta(&info.path, &meta)
        .map_err(|e| VdsmError::new(100, format!("General Exception: ({e:#})")))?;
    Ok(Value::Null)
}

/// `Task getStatus taskID=`.
pub fn task_status(config: &LabConfig, task_id: &str) -> Result<Value, VdsmError> {
    let text = std::fs::read_to_string(config.tasks_dir().join(format!("{task_id}.json")))
        .map_err(|_| VdsmError::new(401, format!("Task id unknown: ('{task_id}',)")))?;
    let task: Value = serde_json::from_str(&text).unwrap_or_default();
    let ready = task["ready_at_ms"].as_u64().unwrap_or(0) <= crate::engine::clock::now_ms();
    Ok(if ready {
        json!({"code": 0, "message": "1 jobs completed successfully", "taskID": task_id, "taskResult": "success", "taskState": "finished"})
    } else {
        json!({"code": 0, "message": "running job 1 of 1", "taskID": task_id, "taskResult": "", "taskState": "running"})
    })
}
