//! The vdsm verbs the lab answers (vdsm-api.yml names and parameters), with vdsm's results
//! and error objects; storage verbs read the storage domain's files (`shim::vdsm_storage`).

use crate::config::LabConfig;
use crate::shim::ha_status;
use crate::shim::vdsm_storage::{self as storage_verbs, VdsmError};
use crate::state;
use serde_json::{json, Map, Value};

/// A method name with the parameters it requires, in signature order.
pub type Method = (&'static str, &'static [&'static str]);

/// Namespaces and their methods (vdsm-api.yml, the verbs the modules and the lab use).
pub const SCHEMA: &[(&str, &[Method])] = &[
    (
        "Host",
        &[
            ("getCapabilities", &[]),
            ("getHardwareInfo", &[]),
            ("getVMList", &[]),
        ],
    ),
    (
        "Image",
        &[
            (
                "getVolumes",
                &["storagepoolID", "storagedomainID", "imageID"],
            ),
            (
                "prepare",
                &["storagepoolID", "storagedomainID", "imageID", "volumeID"],
            ),
            ("teardown", &["storagepoolID", "storagedomainID", "imageID"]),
        ],
    ),
    (
        "StorageDomain",
        &[
            ("getImages", &["storagedomainID"]),
            ("getInfo", &["storagedomainID"]),
            (
                "getVolumes",
                &["storagedomainID", "storagepoolID", "imageID"],
            ),
        ],
    ),
    ("Task", &[("getStatus", &["taskID"])]),
    ("VM", &[("getStats", &["vmID"])]),
    (
        "Volume",
        &[
            (
                "extendSize",
                &[
                    "storagepoolID",
                    "storagedomainID",
                    "imageID",
                    "volumeID",
                    "newSize",
                ],
            ),
            (
                "getInfo",
                &["storagepoolID", "storagedomainID", "imageID", "volumeID"],
            ),
            (
                "getSize",
                &["storagepoolID", "storagedomainID", "imageID", "volumeID"],
            ),
            (
                "setDescription",
                &[
                    "storagepoolID",
                    "storagedomainID",
                    "imageID",
                    "volumeID",
                    "description",
                ],
            ),
        ],
    ),
];

/// The required parameters of `Namespace.verb`, None when vdsm has no such method.
pub fn required_params(method: &str) -> Option<&'static [&'static str]> {
    let (namespace, verb) = method.split_once('.')?;
    SCHEMA
        .iter()
        .find(|(name, _)| *name == namespace)?
        .1
        .iter()
        .find(|(name, _)| *name == verb)
        .map(|(_, required)| *required)
}

/// Runs `method` ("Namespace.verb") with JSON-RPC `params` as vdsm's bridge does.
pub fn call(
    config: &LabConfig,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, VdsmError> {
    let Some(required) = required_params(method) else {
        return Err(VdsmError {
            code: -32601,
            message: format!(
                "The method does not exist or is not available: {{'method': '{method}'}}"
            ),
        });
    };
    let verb = method
        .split_once('.')
        .map(|(_, verb)| verb)
        .unwrap_or(method);
    if let Some(missing) = required.iter().find(|name| !params.contains_key(**name)) {
        return Err(VdsmError {
            code: -32603,
            message: format!("{verb}() missing 1 required positional argument: '{missing}'"),
        });
    }
    let text: Vec<String> = required
        .iter()
        .map(|name| match &params[*name] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    let param = |index: usize| text[index].as_str();
    match method {
        "Host.getCapabilities" => Ok(capabilities(config)),
        "Host.getHardwareInfo" => Ok(hardware_info(config)),
        "Host.getVMList" => Ok(vm_list(config)),
        "VM.getStats" => vm_stats(config, param(0)),
        "Image.prepare" => storage_verbs::prepare(config, param(1), param(2), param(3)),
        "Image.teardown" => Ok(Value::Null),
        "Image.getVolumes" => storage_verbs::get_volumes(config, param(1), param(2)),
        "StorageDomain.getVolumes" => storage_verbs::get_volumes(config, param(0), param(2)),
        "StorageDomain.getImages" => storage_verbs::get_images(config, param(0)),
        "StorageDomain.getInfo" => storage_verbs::domain_info(config, param(0)),
        "Volume.getInfo" => storage_verbs::volume_info(config, param(1), param(2), param(3)),
        "Volume.getSize" => storage_verbs::volume_size(config, param(1), param(2), param(3)),
        "Volume.extendSize" => {
            storage_verbs::extend_size(config, param(0), param(1), param(2), param(3), param(4))
        }
        "Volume.setDescription" => {
            storage_verbs::set_description(config, param(0), param(1), param(2), param(3), param(4))
        }
        "Task.getStatus" => storage_verbs::task_status(config, param(0)),
        _ => unreachable!("every method of SCHEMA is dispatched"),
    }
}

/// `Host getCapabilities` (the bridge's `info`): the host's software and its management
/// network as vdsm's netinfo reports it (`addr`/`netmask` since 3.x, `ipv4addrs` since 4.17).
fn capabilities(config: &LabConfig) -> Value {
    let site = &config.site_network;
    let vdsm = crate::profile::HostVdsm::of(&config.profile);
    json!({
        "software_version": vdsm.version(),
        "software_revision": "1",
        "networks": {
            "ovirtmgmt": {
                "iface": "ovirtmgmt",
                "bridged": true,
                "ports": ["eth0"],
                "addr": site.host_ip.to_string(),
                "netmask": site.netmask().to_string(),
                "ipv4addrs": [format!("{}/{}", site.host_ip, site.prefix)],
                "gateway": site.gateway.to_string(),
                "ipv4defaultroute": true,
                "ipv6addrs": [],
                "ipv6gateway": "::",
                "dhcpv4": false,
                "dhcpv6": false,
                "mtu": "1500",
                "stp": "off",
                "switch": "legacy",
            }
        },
        "nics": {"eth0": {"hwaddr": "52:54:00:12:34:56", "speed": 1000, "mtu": "1500"}},
    })
}

/// `Host getHardwareInfo` (dmidecode of the host).
fn hardware_info(config: &LabConfig) -> Value {
    json!({
        "systemFamily": "Virtual Machine",
        "systemManufacturer": "Red Hat",
        "systemProductName": "KVM",
        "systemSerialNumber": format!("LAB-{:08X}", config.seed & 0xffff_ffff),
        "systemUUID": config.host_uuid,
        "systemVersion": "RHEL 7.6.0 PC (i440FX + PIIX, 1996)",
    })
}

/// The engine VM's stats dict, or None when it does not run here.
fn stats(config: &LabConfig) -> Option<Value> {
    if ha_status::vm_host(config) != Some(config.host_id) {
        return None;
    }
    let vm = state::vm(config);
    if !vm.exists() {
        return None;
    }
    let now = crate::engine::clock::now_ms();
    let elapsed = vm
        .started_at_ms
        .map(|t| now.saturating_sub(t) / 1000)
        .unwrap_or(0);
    Some(json!({
        "vmId": config.vm_id,
        "vmName": "HostedEngine",
        "status": vm.status,
        "elapsedTime": elapsed.to_string(),
        "statusTime": (vm.status_time_ms % 10_000_000_000).to_string(),
        "monitorResponse": "0",
        "vmType": "kvm",
        "kvmEnable": "true",
        "acpiEnable": "true",
        "guestFQDN": if vm.status == "Up" { config.fqdn.clone() } else { String::new() },
        "vmJobs": {},
    }))
}

/// `Host getVMList`.
fn vm_list(config: &LabConfig) -> Value {
    match stats(config) {
        Some(stats) => json!([stats]),
        None => json!([]),
    }
}

/// `VM getStats vmID=`.
fn vm_stats(config: &LabConfig, vm_id: &str) -> Result<Value, VdsmError> {
    match stats(config) {
        Some(stats) if vm_id == config.vm_id => Ok(json!([stats])),
        _ => Err(VdsmError {
            code: 1,
            message: format!("Virtual machine does not exist: {{'vmId': u'{vm_id}'}}"),
        }),
    }
}
