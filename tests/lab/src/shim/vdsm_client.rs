//! `vdsm-client [options] Namespace method arg=value ...` (vdsm `lib/vdsmclient/client.py`,
//! vdsm 4.19 and later): argparse errors (rc 2), a client of the lab's vdsm endpoint
//! (`vdsm::client`), server errors `vdsm-client: Command NS.method with args {..}
//! failed:\n(code=.., message=..)` (rc 1), results as `json.dumps(indent=4, sort_keys=True)`.

use crate::config::LabConfig;
use crate::shim::ToolOutput;
use crate::vdsm::api::SCHEMA;
use crate::vdsm::client::{self, ServerError};
use serde_json::Value;
use std::time::Duration;

/// The top-level usage line argparse prints.
pub const USAGE: &str =
    "usage: vdsm-client [-h] [-a ADDRESS] [-p PORT] [--unsecure] [--timeout TIMEOUT]
                   [-f FILE] [--gluster-enabled] [--flow-id FLOW_ID]
                   [--schema SCHEMA]
                   namespace ...
";

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
    let host = crate::profile::HostVdsm::of(&config.profile);
    if !host.has_vdsm_client() {
        return ToolOutput::fail(
            127,
            format!(
                "vdsm-client: command not found (vdsm {} has no vdsm-client)\n",
                host.version()
            ),
        );
    }
    let mut index = 0;
    let mut file: Option<String> = None;
    let mut host: Option<String> = None;
    let mut port: Option<String> = None;
    let mut timeout_s: f64 = 60.0;
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
                match option {
                    "-f" | "--file" => file = Some(value.clone()),
                    "-a" | "--host" => host = Some(value.clone()),
                    "-p" | "--port" => port = Some(value.clone()),
                    "--timeout" => match value.parse::<f64>() {
                        Ok(seconds) if seconds > 0.0 => timeout_s = seconds,
                        _ => {
                            return usage_error(
                                USAGE,
                                "vdsm-client",
                                &format!("argument --timeout: invalid int value: '{value}'"),
                            )
                        }
                    },
                    _ => {}
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
    if !methods.iter().any(|(name, _)| name == method) {
        let choices: Vec<String> = methods.iter().map(|(n, _)| format!("'{n}'")).collect();
        return usage_error(
            &sub_usage,
            &sub_prog,
            &format!(
                "argument method: invalid choice: '{method}' (choose from {})",
                choices.join(", ")
            ),
        );
    }
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
    // The lab's vdsm-client talks to the lab's vdsm unless told otherwise.
    let recorded = crate::vdsm::address(config).unwrap_or_else(|| "localhost:54321".into());
    let (recorded_host, recorded_port) =
        recorded.rsplit_once(':').unwrap_or(("localhost", "54321"));
    let host = host.unwrap_or_else(|| recorded_host.to_string());
    let port = port.unwrap_or_else(|| recorded_port.to_string());
    let json_params: serde_json::Map<String, Value> = params
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    let timeout = Duration::from_secs_f64(timeout_s);
    match client::call(config, &format!("{host}:{port}"), &command, &json_params, timeout) {
        Ok(Ok(value)) => ToolOutput::ok(format!("{}\n", pretty(&value))),
        Ok(Err(ServerError { code, message })) => ToolOutput::fail(
            1,
            format!(
                "vdsm-client: Command {command} with args {} failed:\n(code={code}, message={message})\n",
                python_repr(&params)
            ),
        ),
        Err(reason) if reason.starts_with("[Errno") => ToolOutput::fail(
            1,
            format!(
                "vdsm-client: Connection to {host}:{port} with use_tls=True, timeout={} failed: {reason}\n",
                timeout_s as u64
            ),
        ),
        Err(reason) => ToolOutput::fail(1, format!("vdsm-client: {reason}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
