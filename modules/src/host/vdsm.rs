//! The `vdsm-client` command: `vdsm-client Namespace verb key=value ...`, JSON out (host-formats §4).

use super::command::{self, CommandError};
use super::he_conf::Volume;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PROGRAM: &str = "vdsm-client";

/// A failed vdsm call.
#[derive(Debug, thiserror::Error)]
pub enum VdsmError {
    /// vdsm-client could not run, or vdsm answered with an error.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// vdsm-client printed something that is not the expected JSON.
    #[error("unexpected answer to `vdsm-client {call}`: {reason}")]
    Unexpected { call: String, reason: String },
    /// A vdsm task ended badly or did not end in time.
    #[error("vdsm task {task_id} {what}")]
    Task { task_id: String, what: String },
}

/// Runs one vdsm verb and returns its JSON result.
pub fn call(namespace: &str, verb: &str, params: &[(&str, &str)]) -> Result<Value, VdsmError> {
    let mut args = vec![namespace.to_string(), verb.to_string()];
    args.extend(params.iter().map(|(key, value)| format!("{key}={value}")));
    let output = command::run(PROGRAM, &args)?;
    serde_json::from_str(&output.stdout).map_err(|e| VdsmError::Unexpected {
        call: format!("{namespace} {verb}"),
        reason: format!("{e}: {}", output.stdout.trim()),
    })
}

fn typed<T: for<'de> Deserialize<'de>>(
    namespace: &str,
    verb: &str,
    params: &[(&str, &str)],
) -> Result<T, VdsmError> {
    let value = call(namespace, verb, params)?;
    serde_json::from_value(value).map_err(|e| VdsmError::Unexpected {
        call: format!("{namespace} {verb}"),
        reason: e.to_string(),
    })
}

/// `Host getHardwareInfo`: the fields the modules use.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HardwareInfo {
    /// The host's hardware UUID, which the engine knows as `hardware_information/uuid`.
    #[serde(rename = "systemUUID")]
    pub system_uuid: String,
    /// Product name (e.g. `KVM`).
    #[serde(rename = "systemProductName", default)]
    pub product_name: String,
}

/// This host's hardware information.
pub fn hardware_info() -> Result<HardwareInfo, VdsmError> {
    typed("Host", "getHardwareInfo", &[])
}

fn volume_params<'a>(sp_id: &'a str, volume: &'a Volume) -> [(&'a str, &'a str); 4] {
    [
        ("storagepoolID", sp_id),
        ("storagedomainID", volume.sd_id.as_str()),
        ("imageID", volume.image_id.as_str()),
        ("volumeID", volume.volume_id.as_str()),
    ]
}

/// `Image prepare`: activates the volume and returns its path (file and block domains alike).
pub fn prepare_image(sp_id: &str, volume: &Volume) -> Result<PathBuf, VdsmError> {
    #[derive(Deserialize)]
    struct Prepared {
        path: PathBuf,
    }
    let prepared: Prepared = typed("Image", "prepare", &volume_params(sp_id, volume))?;
    Ok(prepared.path)
}

/// `StorageDomain getImages`: image ids on the domain.
pub fn storage_domain_images(sd_id: &str) -> Result<Vec<String>, VdsmError> {
    typed("StorageDomain", "getImages", &[("storagedomainID", sd_id)])
}

/// `Image getVolumes`: volume ids of an image.
pub fn image_volumes(sp_id: &str, sd_id: &str, image_id: &str) -> Result<Vec<String>, VdsmError> {
    typed(
        "Image",
        "getVolumes",
        &[
            ("imageID", image_id),
            ("storagepoolID", sp_id),
            ("storagedomainID", sd_id),
        ],
    )
}

/// `Volume getInfo`, with vdsm's string numbers parsed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Virtual size in bytes.
    pub capacity_bytes: u64,
    /// Size of the file or LV in bytes.
    pub apparent_size_bytes: u64,
    /// Allocated bytes.
    pub true_size_bytes: u64,
    /// `RAW` or `COW`.
    pub format: String,
    /// `PREALLOCATED` or `SPARSE`.
    pub allocation: String,
    /// The engine's description (JSON with `DiskAlias`/`DiskDescription` since 3.5).
    pub description: String,
    /// Creation time, seconds since the epoch.
    pub created_epoch_s: u64,
    /// `OK`, `INVALID` or `ILLEGAL`.
    pub status: String,
    /// `LEGAL`, `ILLEGAL` or `FAKE`.
    pub legality: String,
}

#[derive(Deserialize)]
struct RawVolumeInfo {
    capacity: String,
    apparentsize: String,
    #[serde(default)]
    truesize: String,
    format: String,
    #[serde(rename = "type")]
    allocation: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    ctime: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    legality: String,
}

/// `Volume getInfo` of `volume`.
pub fn volume_info(sp_id: &str, volume: &Volume) -> Result<VolumeInfo, VdsmError> {
    let raw: RawVolumeInfo = typed("Volume", "getInfo", &volume_params(sp_id, volume))?;
    let number = |field: &str, text: &str| -> Result<u64, VdsmError> {
        if text.is_empty() {
            return Ok(0);
        }
        text.parse().map_err(|_| VdsmError::Unexpected {
            call: "Volume getInfo".into(),
            reason: format!("{field} '{text}' is not a number"),
        })
    };
    Ok(VolumeInfo {
        capacity_bytes: number("capacity", &raw.capacity)?,
        apparent_size_bytes: number("apparentsize", &raw.apparentsize)?,
        true_size_bytes: number("truesize", &raw.truesize)?,
        format: raw.format,
        allocation: raw.allocation,
        description: raw.description,
        created_epoch_s: number("ctime", &raw.ctime)?,
        status: raw.status,
        legality: raw.legality,
    })
}

/// `Volume extendSize` to `new_size_bytes`, then waits for the SPM task to finish.
pub fn extend_volume(
    sp_id: &str,
    volume: &Volume,
    new_size_bytes: u64,
    timeout: Duration,
) -> Result<(), VdsmError> {
    let size = new_size_bytes.to_string();
    let mut params = volume_params(sp_id, volume).to_vec();
    params.push(("newSize", size.as_str()));
    let task_id: String = typed("Volume", "extendSize", &params)?;
    wait_for_task(&task_id, timeout)
}

#[derive(Deserialize)]
struct TaskStatus {
    #[serde(rename = "taskState")]
    state: String,
    #[serde(rename = "taskResult", default)]
    result: String,
    #[serde(default)]
    message: String,
}

/// Polls `Task getStatus` until the task is finished (success) or fails or times out.
pub fn wait_for_task(task_id: &str, timeout: Duration) -> Result<(), VdsmError> {
    let started = Instant::now();
    loop {
        let status: TaskStatus = typed("Task", "getStatus", &[("taskID", task_id)])?;
        match (status.state.as_str(), status.result.as_str()) {
            ("finished", "success") => return Ok(()),
            ("finished", _) | ("aborting", _) | ("cleaning", _) => {
                return Err(VdsmError::Task {
                    task_id: task_id.to_string(),
                    what: format!("failed: {} ({})", status.message, status.result),
                })
            }
            _ if started.elapsed() >= timeout => {
                return Err(VdsmError::Task {
                    task_id: task_id.to_string(),
                    what: format!(
                        "did not finish within {} s (last state: {})",
                        timeout.as_secs(),
                        status.state
                    ),
                })
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}
