//! What the hosts' HA agents report to the engine: maintenance modes, read per request from
//! the lab's `state/ha.json` (`{"global_maintenance": bool, "local_maintenance": bool}`).

use crate::config::LabConfig;

/// Maintenance modes as the engine shows them under `<hosted_engine>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HaReport {
    /// Cluster-wide global maintenance.
    pub global_maintenance: bool,
    /// This host's local maintenance.
    pub local_maintenance: bool,
}

/// Reads `state/ha.json`; no file means no maintenance.
pub fn read(config: &LabConfig) -> HaReport {
    let value: serde_json::Value = std::fs::read_to_string(config.state_dir().join("ha.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    HaReport {
        global_maintenance: value["global_maintenance"].as_bool().unwrap_or(false),
        local_maintenance: value["local_maintenance"].as_bool().unwrap_or(false),
    }
}
