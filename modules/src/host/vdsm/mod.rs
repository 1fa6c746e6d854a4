//! vdsm's JSON-RPC API over STOMP on its TLS port, as every vdsm from 4.17 (oVirt 3.6) to 4.50
//! (oVirt 4.5) serves it (host-formats §4): the calls the modules make, typed.
//!
//! One [`Vdsm`] holds one connection for a whole module run, opened at the first call.

pub mod jsonrpc;
pub mod options;
pub mod session;
pub mod stomp;
pub mod tls;

use super::he_conf::Volume;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use session::{Endpoint, Session};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failed vdsm call; every message names the call.
#[derive(Debug, thiserror::Error)]
pub enum VdsmError {
    /// The vdsm key, certificate or CA cannot be used.
    #[error(transparent)]
    Pki(#[from] tls::PkiError),
    /// vdsm cannot be reached or refused the session.
    #[error("cannot talk to vdsm at {address}: {reason} (is vdsmd running and listening there?)")]
    Connect { address: String, reason: String },
    /// vdsm did not answer a call in time.
    #[error("vdsm did not answer {call} within {timeout_s} s")]
    Timeout { call: String, timeout_s: f64 },
    /// vdsm answered with a STOMP ERROR frame.
    #[error("vdsm refused {call}: {message}")]
    Stomp { call: String, message: String },
    /// The connection broke or carried something that is not vdsm's protocol.
    #[error("vdsm call {call} failed: {reason}")]
    Protocol { call: String, reason: String },
    /// vdsm ran the call and returned its error object.
    #[error("vdsm call {call} failed: (code={code}, message={message})")]
    Remote {
        call: String,
        code: i64,
        message: String,
    },
    /// vdsm answered something that is not the expected shape.
    #[error("unexpected answer to vdsm call {call}: {reason}")]
    Unexpected { call: String, reason: String },
    /// A vdsm task ended badly or did not end in time.
    #[error("vdsm task {task_id} {what}")]
    Task { task_id: String, what: String },
}

/// A client of the local vdsm: one connection per module run, opened at the first call.
pub struct Vdsm {
    endpoint: Endpoint,
    session: Mutex<Option<Session>>,
}

impl Vdsm {
    /// A client of `endpoint`; nothing is connected yet.
    pub fn new(endpoint: Endpoint) -> Self {
        Vdsm {
            endpoint,
            session: Mutex::new(None),
        }
    }

    /// Where this client connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Runs `Namespace.verb` with string `params` and returns its JSON result. A failed
    /// session is dropped, so the next call connects again.
    pub fn call(&self, method: &str, params: &[(&str, &str)]) -> Result<Value, VdsmError> {
        let call = describe_call(method, params);
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(Session::open(&self.endpoint)?);
        }
        let session = guard.as_mut().expect("opened above");
        let result = session.call(&call, method, params);
        if matches!(
            result,
            Err(VdsmError::Timeout { .. } | VdsmError::Protocol { .. } | VdsmError::Stomp { .. })
        ) {
            *guard = None;
        }
        result
    }

    fn typed<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        params: &[(&str, &str)],
    ) -> Result<T, VdsmError> {
        let value = self.call(method, params)?;
        serde_json::from_value(value).map_err(|e| VdsmError::Unexpected {
            call: describe_call(method, params),
            reason: e.to_string(),
        })
    }
}

/// `Namespace.verb(name=value, ...)`, how errors name a call.
fn describe_call(method: &str, params: &[(&str, &str)]) -> String {
    let arguments: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("{method}({})", arguments.join(", "))
}

/// `Host getHardwareInfo`: the one field the modules use.
#[derive(Debug, Deserialize)]
struct HardwareInfo {
    /// The host's hardware UUID, which the engine knows as `hardware_information/uuid`.
    #[serde(rename = "systemUUID")]
    system_uuid: String,
}

impl Vdsm {
    /// This host's hardware UUID (`Host.getHardwareInfo` `systemUUID`): how the engine tells
    /// this host from the others (`hardware_information/uuid`).
    pub fn hardware_uuid(&self) -> Result<String, VdsmError> {
        let info: HardwareInfo = self.typed("Host.getHardwareInfo", &[])?;
        Ok(info.system_uuid)
    }

    /// This host's IPv4 address and prefix length on the network `name` (`Host.getCapabilities`
    /// `networks.<name>.addr` and `.netmask`, vdsm's netinfo since 3.x); None when the
    /// network has no IPv4 address.
    pub fn network_address(&self, name: &str) -> Result<Option<(Ipv4Addr, u8)>, VdsmError> {
        #[derive(Deserialize)]
        struct Network {
            #[serde(default)]
            addr: String,
            #[serde(default)]
            netmask: String,
        }
        #[derive(Deserialize)]
        struct Capabilities {
            #[serde(default)]
            networks: std::collections::BTreeMap<String, Network>,
        }
        let call = "Host.getCapabilities()";
        let capabilities: Capabilities = self.typed("Host.getCapabilities", &[])?;
        let network = capabilities
            .networks
            .get(name)
            .ok_or_else(|| VdsmError::Unexpected {
                call: call.into(),
                reason: format!("this host has no network '{name}' (hosted-engine.conf bridge)"),
            })?;
        if network.addr.is_empty() {
            return Ok(None);
        }
        let unexpected = |what: &str, value: &str| VdsmError::Unexpected {
            call: call.into(),
            reason: format!("network '{name}' has {what} {value:?}"),
        };
        let address: Ipv4Addr = network
            .addr
            .parse()
            .map_err(|_| unexpected("the address", &network.addr))?;
        let mask: Ipv4Addr = network
            .netmask
            .parse()
            .map_err(|_| unexpected("the netmask", &network.netmask))?;
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            return Err(unexpected("the netmask", &network.netmask));
        }
        Ok(Some((address, bits.leading_ones() as u8)))
    }

    /// `Image.prepare`: activates the volume and returns its path (file and block domains).
    pub fn prepare_image(&self, sp_id: &str, volume: &Volume) -> Result<PathBuf, VdsmError> {
        #[derive(Deserialize)]
        struct Prepared {
            path: PathBuf,
        }
        let prepared: Prepared = self.typed("Image.prepare", &volume_params(sp_id, volume))?;
        Ok(prepared.path)
    }

    /// `StorageDomain.getImages`: image ids on the domain.
    pub fn storage_domain_images(&self, sd_id: &str) -> Result<Vec<String>, VdsmError> {
        self.typed("StorageDomain.getImages", &[("storagedomainID", sd_id)])
    }

    /// `Image.getVolumes`: volume ids of an image.
    pub fn image_volumes(
        &self,
        sp_id: &str,
        sd_id: &str,
        image_id: &str,
    ) -> Result<Vec<String>, VdsmError> {
        self.typed(
            "Image.getVolumes",
            &[
                ("imageID", image_id),
                ("storagepoolID", sp_id),
                ("storagedomainID", sd_id),
            ],
        )
    }

    /// `Volume.getInfo` of `volume`, with vdsm's string numbers parsed.
    pub fn volume_info(&self, sp_id: &str, volume: &Volume) -> Result<VolumeInfo, VdsmError> {
        let params = volume_params(sp_id, volume);
        let raw: RawVolumeInfo = self.typed("Volume.getInfo", &params)?;
        raw.parse(&describe_call("Volume.getInfo", &params))
    }

    /// `Volume.setDescription` (an SPM verb of the connected pool `sp_id`; vdsm truncates
    /// past 210 characters without an error).
    pub fn set_volume_description(
        &self,
        sp_id: &str,
        volume: &Volume,
        description: &str,
    ) -> Result<(), VdsmError> {
        let mut params = volume_params(sp_id, volume).to_vec();
        params.push(("description", description));
        self.call("Volume.setDescription", &params).map(|_| ())
    }

    /// The pool a storage domain is attached to (`StorageDomain.getInfo` `pool`), if any.
    pub fn storage_domain_pool(&self, sd_id: &str) -> Result<Option<String>, VdsmError> {
        #[derive(Deserialize)]
        struct DomainInfo {
            #[serde(default)]
            pool: Vec<String>,
        }
        let info: DomainInfo =
            self.typed("StorageDomain.getInfo", &[("storagedomainID", sd_id)])?;
        Ok(info
            .pool
            .into_iter()
            .find(|pool| !pool.is_empty() && pool != super::BLANK_UUID))
    }

    /// `Volume.extendSize` to `new_size_bytes` (vdsm takes it as a string), then waits for
    /// the SPM task to finish.
    pub fn extend_volume(
        &self,
        sp_id: &str,
        volume: &Volume,
        new_size_bytes: u64,
        timeout: Duration,
    ) -> Result<(), VdsmError> {
        let size = new_size_bytes.to_string();
        let mut params = volume_params(sp_id, volume).to_vec();
        params.push(("newSize", size.as_str()));
        let task_id: String = self.typed("Volume.extendSize", &params)?;
        self.wait_for_task(&task_id, timeout)
    }

    /// Polls `Task.getStatus` until the task is finished (success), fails or times out.
    pub fn wait_for_task(&self, task_id: &str, timeout: Duration) -> Result<(), VdsmError> {
        let started = Instant::now();
        loop {
            let status: TaskStatus = self.typed("Task.getStatus", &[("taskID", task_id)])?;
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
}

fn volume_params<'a>(sp_id: &'a str, volume: &'a Volume) -> [(&'a str, &'a str); 4] {
    [
        ("storagepoolID", sp_id),
        ("storagedomainID", volume.sd_id.as_str()),
        ("imageID", volume.image_id.as_str()),
        ("volumeID", volume.volume_id.as_str()),
    ]
}

/// `Volume.getInfo`, with vdsm's string numbers parsed.
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

impl RawVolumeInfo {
    fn parse(self, call: &str) -> Result<VolumeInfo, VdsmError> {
        let number = |field: &str, text: &str| -> Result<u64, VdsmError> {
            if text.is_empty() {
                return Ok(0);
            }
            text.parse().map_err(|_| VdsmError::Unexpected {
                call: call.to_string(),
                reason: format!("{field} '{text}' is not a number"),
            })
        };
        Ok(VolumeInfo {
            capacity_bytes: number("capacity", &self.capacity)?,
            apparent_size_bytes: number("apparentsize", &self.apparentsize)?,
            true_size_bytes: number("truesize", &self.truesize)?,
            created_epoch_s: number("ctime", &self.ctime)?,
            format: self.format,
            allocation: self.allocation,
            description: self.description,
            status: self.status,
            legality: self.legality,
        })
    }
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
