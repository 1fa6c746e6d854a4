//! `vdsm-client [options] Namespace method arg=value ...` (vdsm `lib/vdsmclient/client.py`):
//! argparse errors (rc 2), server errors `vdsm-client: Command NS.method with args {..}
//! failed:\n(code=.., message=..)` (rc 1), results as `json.dumps(indent=4, sort_keys=True)`.

use crate::config::LabConfig;
use crate::shim::vdsm_storage::{self as storage_verbs, VdsmError};
use crate::shim::{ha_status, ToolOutput};
use crate::state;
use serde_json::{json, Value};

/// The top-level usage line argparse prints.
pub const USAGE: &str =
    "usage: vdsm-client [-h] [-a ADDRESS] [-p PORT] [--unsecure] [--timeout TIMEOUT]
                   [-f FILE] [--gluster-enabled] [--flow-id FLOW_ID]
                   [--schema SCHEMA]
                   namespace ...
";

/// A method name with the parameters it requires, in signature order.
type Method = (&'static str, &'static [&'static str]);

/// Namespaces and their methods.
const SCHEMA: &[(&str, &[Method])] = &[
    ("Host", &[("getHardwareInfo", &[]), ("getVMList", &[])]),
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
        ],
    ),
];

/// An argparse usage error: usage + `vdsm-client: error: ...`, rc 2.
fn usage_error(usage: &str, prog: &str, message: &str) -> ToolOutput {
    ToolOutput::fail(2, format!("{usage}{prog}: error: {message}\n"))
}

/// Python `repr` of the params dict (`{'k': 'v', ...}` in the order given).
fn python_repr(params: &[(String, String)]) -> String {
    let items: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("'{k}': {}", python_str(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Python `repr` of a str: single quotes unless it holds a single quote and no double one.
fn python_str(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\");
    if value.contains('\'') && !value.contains('"') {
        format!("\"{escaped}\"")
    } else {
        format!("'{}'", escaped.replace('\'', "\\'"))
    }
}

/// `json.dumps(result, indent=4, sort_keys=True)`.
fn pretty(value: &Value) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .expect("JSON values serialize");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Runs `vdsm-client ARGS`.
pub fn run(config: &LabConfig, args: &[String]) -> ToolOutput {
    let mut index = 0;
    let mut file: Option<String> = None;
    while index < args.len() && args[index].starts_with('-') {
        let option = args[index].as_str();
        match option {
            "-h" | "--help" => {
                return ToolOutput::ok(format!(
                    "{USAGE}\nInvoke a method with JSON arguments and print the result\n"
                ))
            }
            "--unsecure" | "--insecure" | "--gluster-enabled" => index += 1,
            "-a" | "--host" | "-p" | "--port" | "--timeout" | "--flow-id" | "--schema" | "-f"
            | "--file" => {
                let Some(value) = args.get(index + 1) else {
                    return usage_error(
                        USAGE,
                        "vdsm-client",
                        &format!("argument {option}: expected one argument"),
                    );
                };
                if option == "-f" || option == "--file" {
                    file = Some(value.clone());
                }
                index += 2;
            }
            _ if option.contains('=') && option.starts_with("--") => index += 1,
            _ => {
                return usage_error(
                    USAGE,
                    "vdsm-client",
                    &format!("unrecognized arguments: {option}"),
                )
            }
        }
    }
    let Some(namespace) = args.get(index) else {
        return usage_error(
            USAGE,
            "vdsm-client",
            "the following arguments are required: namespace",
        );
    };
    let Some((_, methods)) = SCHEMA.iter().find(|(name, _)| name == namespace) else {
        let choices: Vec<String> = SCHEMA.iter().map(|(n, _)| format!("'{n}'")).collect();
        return usage_error(
            USAGE,
            "vdsm-client",
            &format!(
                "argument namespace: invalid choice: '{namespace}' (choose from {})",
                choices.join(", ")
            ),
        );
    };
    let sub_usage = format!("usage: vdsm-client {namespace} [-h] method [arg=value] ...\n");
    let sub_prog = format!("vdsm-client {namespace}");
    let Some(method) = args.get(index + 1) else {
        return usage_error(
            &sub_usage,
            &sub_prog,
            "the following arguments are required: method",
        );
    };
    let Some((_, required)) = methods.iter().find(|(name, _)| name == method) else {
        let choices: Vec<String> = methods.iter().map(|(n, _)| format!("'{n}'")).collect();
        return usage_error(
            &sub_usage,
            &sub_prog,
            &format!(
                "argument method: invalid choice: '{method}' (choose from {})",
                choices.join(", ")
            ),
        );
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for arg in &args[index + 2..] {
        match arg.split_once('=') {
            Some((key, value)) => params.push((key.to_string(), value.to_string())),
            None => return usage_error(USAGE, "vdsm-client", &format!("Invalid param '{arg}'")),
        }
    }
    if let Some(file) = file {
        if !params.is_empty() {
            return usage_error(
                USAGE,
                "vdsm-client",
                &format!(
                    "Conflicting command line parameters: {} and file option: {file}",
                    python_repr(&params)
                ),
            );
        }
        let text = if file == "-" {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text);
            text
        } else {
            std::fs::read_to_string(&file).unwrap_or_default()
        };
        if text.trim().is_empty() {
            return usage_error(USAGE, "vdsm-client", "File is empty");
        }
        match serde_json::from_str::<serde_json::Map<String, Value>>(&text) {
            Ok(map) => {
                for (key, value) in map {
                    let value = value
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string());
                    params.push((key, value));
                }
            }
            Err(error) => return ToolOutput::fail(1, format!("vdsm-client: {error}\n")),
        }
    }
    let command = format!("{namespace}.{method}");
    let failed = |error: VdsmError| {
        ToolOutput::fail(
            1,
            format!(
                "vdsm-client: Command {command} with args {} failed:\n(code={}, message={})\n",
                python_repr(&params),
                error.code,
                error.message
            ),
        )
    };
    if let Some(missing) = required
        .iter()
        .find(|name| !params.iter().any(|(k, _)| k == *name))
    {
        return failed(VdsmError {
            code: -32603,
            message: format!("{method}() missing 1 required positional argument: '{missing}'"),
        });
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let result = match (namespace.as_str(), method.as_str()) {
        ("Host", "getHardwareInfo") => Ok(hardware_info(config)),
        ("Host", "getVMList") => Ok(vm_list(config)),
        ("VM", "getStats") => vm_stats(config, param("vmID")),
        ("Image", "prepare") => storage_verbs::prepare(
            config,
            param("storagedomainID"),
            param("imageID"),
            param("volumeID"),
        ),
        ("Image", "teardown") => Ok(Value::Null),
        ("Image", "getVolumes") | ("StorageDomain", "getVolumes") => {
            storage_verbs::get_volumes(config, param("storagedomainID"), param("imageID"))
        }
        ("StorageDomain", "getImages") => {
            storage_verbs::get_images(config, param("storagedomainID"))
        }
        ("StorageDomain", "getInfo") => {
            storage_verbs::domain_info(config, param("storagedomainID"))
        }
        ("Volume", "getInfo") => storage_verbs::volume_info(
            config,
            param("storagedomainID"),
            param("imageID"),
            param("volumeID"),
        ),
        ("Volume", "getSize") => storage_verbs::volume_size(
            config,
            param("storagedomainID"),
            param("imageID"),
            param("volumeID"),
        ),
        ("Volume", "extendSize") => storage_verbs::extend_size(
            config,
            param("storagedomainID"),
            param("imageID"),
            param("volumeID"),
            param("newSize"),
        ),
        ("Task", "getStatus") => storage_verbs::task_status(config, param("taskID")),
        _ => Err(VdsmError {
            code: -32601,
            message: format!("The method does not exist / is not available: {command}"),
        }),
    };
    match result {
        Ok(value) => ToolOutput::ok(format!("{}\n", pretty(&value))),
        Err(error) => failed(error),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_sorted_with_four_space_indent() {
        assert_eq!(
            pretty(&json!({"b": "1", "a": [], "c": {"d": null}})),
            "{\n    \"a\": [],\n    \"b\": \"1\",\n    \"c\": {\n        \"d\": null\n    }\n}"
        );
    }

    #[test]
    fn params_print_as_a_python_dict() {
        let params = vec![("vmID".to_string(), "x'y".to_string())];
        assert_eq!(python_repr(&params), "{'vmID': \"x'y\"}");
    }
}
