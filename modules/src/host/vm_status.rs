//! `hosted-engine --vm-status --json`: per-host HA state and global maintenance (host-formats §1).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The engine VM as one host's HA agent sees it (`engine-status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// `up`, `down`, `down_unexpected`, `down_missing`, `unknown`.
    pub vm: String,
    /// `good`, `bad` or `unknown`.
    pub health: String,
    /// vdsm's VM status (`Up`, `Down`, `Powering up`, ...).
    #[serde(default)]
    pub detail: String,
    /// Why health is bad, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One host of the hosted-engine cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostState {
    /// HA host id.
    pub host_id: u32,
    /// Host name as the HA agent reports it.
    pub hostname: String,
    /// HA score (0..3400).
    pub score: i64,
    /// The engine VM as seen from this host.
    pub engine_status: EngineStatus,
    /// Local maintenance.
    pub maintenance: bool,
    /// Whether the host's agent stopped cleanly.
    pub stopped: bool,
    /// Whether the host's metadata is fresh (`live-data`).
    pub live_data: bool,
}

impl HostState {
    /// Whether this host reports the engine VM running on it.
    pub fn runs_engine_vm(&self) -> bool {
        self.engine_status.vm == "up"
    }
}

/// The whole `--vm-status --json` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmStatus {
    /// Cluster-wide global maintenance.
    pub global_maintenance: bool,
    /// Every host, by ascending host id.
    pub hosts: Vec<HostState>,
}

/// Output that is not what hosted-engine prints.
#[derive(Debug, thiserror::Error)]
#[error("unexpected `hosted-engine --vm-status --json` output ({reason}): {excerpt}")]
pub struct VmStatusError {
    reason: String,
    excerpt: String,
}

#[derive(Deserialize)]
struct RawHost {
    #[serde(rename = "host-id")]
    host_id: u32,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    score: i64,
    #[serde(rename = "engine-status")]
    engine_status: EngineStatus,
    #[serde(default)]
    maintenance: bool,
    #[serde(default)]
    stopped: bool,
    #[serde(rename = "live-data", default)]
    live_data: bool,
}

impl VmStatus {
    /// Parses the one-line JSON the real tool prints.
    pub fn parse(text: &str) -> Result<Self, VmStatusError> {
        let error = |reason: String| VmStatusError {
            reason,
            excerpt: excerpt(text),
        };
        let value: Value =
            serde_json::from_str(text.trim()).map_err(|e| error(format!("not JSON: {e}")))?;
        let Value::Object(entries) = value else {
            return Err(error("not a JSON object".into()));
        };
        let mut global_maintenance = None;
        let mut hosts = Vec::new();
        for (key, entry) in entries {
            if key == "global_maintenance" {
                global_maintenance = entry.as_bool();
            } else if key.parse::<u32>().is_ok() {
                let raw: RawHost = serde_json::from_value(entry)
                    .map_err(|e| error(format!("host entry '{key}': {e}")))?;
                hosts.push(HostState {
                    host_id: raw.host_id,
                    hostname: raw.hostname,
                    score: raw.score,
                    engine_status: raw.engine_status,
                    maintenance: raw.maintenance,
                    stopped: raw.stopped,
                    live_data: raw.live_data,
                });
            }
        }
        let global_maintenance =
            global_maintenance.ok_or_else(|| error("no boolean 'global_maintenance'".into()))?;
        hosts.sort_by_key(|h| h.host_id);
        Ok(Self {
            global_maintenance,
            hosts,
        })
    }

    /// The host with HA id `host_id`.
    pub fn host(&self, host_id: u32) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.host_id == host_id)
    }

    /// The host the engine VM runs on, if any reports it up.
    pub fn engine_vm_host(&self) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.runs_engine_vm())
    }
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two hosts, the engine VM on host 1, global maintenance on (real one-line shape).
    pub const TWO_HOSTS: &str = r#"{"1": {"host-id": 1, "host-ts": 6312, "score": 3400, "engine-status": {"vm": "up", "health": "good", "detail": "Up"}, "hostname": "host1.example.com", "maintenance": false, "stopped": false, "crc32": "3b8e5a2c", "conf_on_shared_storage": true, "local_conf_timestamp": 6312, "extra": "metadata_parse_version=1\nstate=GlobalMaintenance\n", "live-data": true}, "2": {"host-id": 2, "host-ts": 6100, "score": 3400, "engine-status": {"vm": "down", "health": "bad", "detail": "unknown", "reason": "vm not running on this host"}, "hostname": "host2.example.com", "maintenance": false, "stopped": false, "crc32": "11aa22bb", "conf_on_shared_storage": true, "local_conf_timestamp": 6100, "extra": "", "live-data": true}, "global_maintenance": true}"#;

    #[test]
    fn parses_hosts_and_global_maintenance() {
        let status = VmStatus::parse(TWO_HOSTS).unwrap();
        assert!(status.global_maintenance);
        assert_eq!(status.hosts.len(), 2);
        assert_eq!(
            status.engine_vm_host().unwrap().hostname,
            "host1.example.com"
        );
        let second = status.host(2).unwrap();
        assert_eq!(
            second.engine_status.reason.as_deref(),
            Some("vm not running on this host")
        );
        assert!(second.live_data);
    }

    #[test]
    fn no_hosts_is_valid() {
        let status = VmStatus::parse(r#"{"global_maintenance": false}"#).unwrap();
        assert!(status.hosts.is_empty());
        assert!(status.engine_vm_host().is_none());
    }

    #[test]
    fn the_error_dict_repr_is_rejected_with_an_excerpt() {
        let err = VmStatus::parse("{'exception': 'Cannot connect to the HA daemon'}").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
        assert!(
            err.to_string().contains("Cannot connect to the HA daemon"),
            "{err}"
        );
    }
}
