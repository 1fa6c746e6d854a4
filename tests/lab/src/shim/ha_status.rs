//! The HA cluster status `hosted-engine --vm-status` prints (host-formats.md section 1):
//! one block per HA host with its engine-status, plus `global_maintenance`.

use crate::config::LabConfig;
use crate::shim::health;
use crate::state;
use serde_json::{json, Map, Value};

/// Number of HA hosts in the lab's cluster (this host plus two).
pub const HA_HOSTS: u32 = 3;

/// The engine-status object of `host_id` given where the VM runs and its status.
fn engine_status(config: &LabConfig, host_id: u32, vm_host: Option<u32>, vm_status: &str) -> Value {
    if vm_host.is_none() && host_id == config.host_id {
        let vm = state::vm(config);
        if !vm.exists() && vm.exit_code != 0 {
            // The VM died here (crash, lost daemon): the agent reports it down unexpectedly.
            return json!({"vm": "down_unexpected", "health": "bad", "detail": "Down", "reason": "bad vm status"});
        }
    }
    if vm_host != Some(host_id) {
        return json!({"vm": "down", "health": "bad", "detail": "unknown", "reason": "vm not running on this host"});
    }
    match vm_status {
        "Up" if health::is_up(config.http_port) => {
            json!({"vm": "up", "health": "good", "detail": "Up"})
        }
        "Up" => {
            json!({"vm": "up", "health": "bad", "detail": "Up", "reason": "failed liveliness check"})
        }
        "Down" => {
            json!({"vm": "down", "health": "bad", "detail": "Down", "reason": "bad vm status"})
        }
        other => json!({"vm": "up", "health": "bad", "detail": other, "reason": "bad vm status"}),
    }
}

/// CRC-32 (IEEE) as the HA agent computes it over its metadata block.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// ctime(3)-like text of an epoch time (UTC).
fn ctime(epoch_seconds: u64) -> String {
    let iso = crate::engine::clock::iso8601(epoch_seconds * 1000);
    format!("{} {}", &iso[0..10], &iso[11..19])
}

/// Where the engine VM runs: this host, another HA host (fault `vm_on_other_host`), or none.
pub fn vm_host(config: &LabConfig) -> Option<u32> {
    if config.fault("vm_on_other_host") {
        return Some(config.host_id % HA_HOSTS + 1);
    }
    state::vm(config).exists().then_some(config.host_id)
}

/// Whether the cluster reports global maintenance (fault `not_global_maintenance` hides it).
pub fn global_maintenance(config: &LabConfig) -> bool {
    state::ha(config).global_maintenance && !config.fault("not_global_maintenance")
}

/// The status dict: `{"1": {...}, "2": {...}, ..., "global_maintenance": bool}`.
pub fn status(config: &LabConfig) -> Map<String, Value> {
    let ha = state::ha(config);
    let vm = state::vm(config);
    let vm_host = vm_host(config);
    let vm_status = if vm_host == Some(config.host_id) {
        vm.status.clone()
    } else {
        "Up".into()
    };
    let global = global_maintenance(config);
    let now = crate::engine::clock::now_ms() / 1000;
    let host_ts = now % 1_000_000;
    let mut all = Map::new();
    for host_id in 1..=HA_HOSTS {
        let local = host_id == config.host_id && ha.local_maintenance;
        let score = if local { 0 } else { 3400 };
        let status = engine_status(config, host_id, vm_host, &vm_status);
        let hostname = if host_id == config.host_id {
            config.host_name.clone()
        } else {
            format!("host{host_id}.lab.local")
        };
        let state_name = if global {
            "GlobalMaintenance"
        } else if local {
            "LocalMaintenance"
        } else if vm_host == Some(host_id) {
            "EngineUp"
        } else {
            "EngineDown"
        };
        let status_text = serde_json::to_string(&status).unwrap_or_default();
        let block = format!(
            "1|1|{host_ts}|{host_id}|{score}|{status_text}|{hostname}|{}|0|00000000|1|{host_ts}",
            u8::from(local)
        );
        let extra = format!(
            "metadata_parse_version=1\nmetadata_feature_version=1\ntimestamp={host_ts} ({})\nhost-id={host_id}\nscore={score}\nvm_conf_refresh_time={host_ts} ({})\nconf_on_shared_storage=True\nmaintenance={}\nstate={state_name}\nstopped=False\n",
            ctime(now),
            ctime(now),
            if local { "True" } else { "False" }
        );
        all.insert(
            host_id.to_string(),
            json!({
                "host-id": host_id,
                "host-ts": host_ts,
                "score": score,
                "engine-status": status,
                "hostname": hostname,
                "maintenance": local,
                "stopped": false,
                "crc32": format!("{:08x}", crc32(block.as_bytes())),
                "conf_on_shared_storage": true,
                "local_conf_timestamp": host_ts,
                "extra": extra,
                "live-data": true,
            }),
        );
    }
    all.insert("global_maintenance".into(), Value::Bool(global));
    all
}

/// Renders like Python's `json.dumps` (`", "` and `": "` separators), keys in `order`.
pub fn python_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_json).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Key order of a host block as vm_status.py prints it (dict insertion order).
pub const HOST_KEY_ORDER: &[&str] = &[
    "host-id",
    "host-ts",
    "score",
    "engine-status",
    "hostname",
    "maintenance",
    "stopped",
    "crc32",
    "conf_on_shared_storage",
    "local_conf_timestamp",
    "extra",
    "live-data",
];

/// One-line JSON of the status with the real key order (hosts, then global_maintenance).
pub fn render_json(status: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    for (key, value) in status.iter().filter(|(k, _)| *k != "global_maintenance") {
        let host: Vec<String> = HOST_KEY_ORDER
            .iter()
            .filter_map(|name| {
                let v = value.get(*name)?;
                let rendered = if *name == "engine-status" {
                    render_engine_status(v)
                } else {
                    python_json(v)
                };
                Some(format!("\"{name}\": {rendered}"))
            })
            .collect();
        parts.push(format!("\"{key}\": {{{}}}", host.join(", ")));
    }
    let global = status
        .get("global_maintenance")
        .cloned()
        .unwrap_or(Value::Bool(false));
    parts.push(format!("\"global_maintenance\": {global}"));
    format!("{{{}}}", parts.join(", "))
}

/// engine-status with the agent's key order: vm, health, detail, reason.
pub fn render_engine_status(value: &Value) -> String {
    let parts: Vec<String> = ["vm", "health", "detail", "reason"]
        .iter()
        .filter_map(|key| value.get(*key).map(|v| format!("\"{key}\": {v}")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The plain-text report (`hosted-engine --vm-status` without `--json`).
pub fn render_text(status: &Map<String, Value>) -> String {
    let global = status
        .get("global_maintenance")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let banner = "\n\n!! Cluster is in GLOBAL MAINTENANCE mode !!\n";
    let mut text = String::new();
    if global {
        text.push_str(banner);
    }
    for (key, host) in status.iter().filter(|(k, _)| *k != "global_maintenance") {
        let field = |name: &str| host.get(name).cloned().unwrap_or(Value::Null);
        let hostname = field("hostname").as_str().unwrap_or_default().to_string();
        text.push_str(&format!(
            "\n\n--== Host {hostname} (id: {key}) status ==--\n\n"
        ));
        let line = |label: &str, value: String| format!("{label:35}: {value}\n");
        let plain = |v: Value| match v {
            Value::String(s) => s,
            Value::Bool(b) => {
                if b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            other => other.to_string(),
        };
        text.push_str(&line("Host ID", plain(field("host-id"))));
        text.push_str(&line("Host timestamp", plain(field("host-ts"))));
        text.push_str(&line("Score", plain(field("score"))));
        text.push_str(&line(
            "Engine status",
            render_engine_status(&field("engine-status")),
        ));
        text.push_str(&line("Hostname", hostname.clone()));
        text.push_str(&line("Local maintenance", plain(field("maintenance"))));
        text.push_str(&line("stopped", plain(field("stopped"))));
        text.push_str(&line("crc32", plain(field("crc32"))));
        text.push_str(&line(
            "conf_on_shared_storage",
            plain(field("conf_on_shared_storage")),
        ));
        text.push_str(&line(
            "local_conf_timestamp",
            plain(field("local_conf_timestamp")),
        ));
        text.push_str(&line("Status up-to-date", plain(field("live-data"))));
        text.push_str("Extra metadata (valid at timestamp):\n");
        for extra in field("extra").as_str().unwrap_or_default().lines() {
            text.push_str(&format!("\t{extra}\n"));
        }
    }
    if global {
        text.push_str(banner);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn json_has_python_separators_and_agent_key_order() {
        let mut status = Map::new();
        status.insert(
            "1".into(),
            json!({"score": 3400, "host-id": 1, "engine-status": {"reason": "r", "vm": "down", "health": "bad", "detail": "unknown"}, "extra": "a\nb"}),
        );
        status.insert("global_maintenance".into(), json!(true));
        assert_eq!(
            render_json(&status),
            "{\"1\": {\"host-id\": 1, \"score\": 3400, \"engine-status\": {\"vm\": \"down\", \"health\": \"bad\", \"detail\": \"unknown\", \"reason\": \"r\"}, \"extra\": \"a\\nb\"}, \"global_maintenance\": true}"
        );
    }
}
