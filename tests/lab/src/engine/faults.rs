//! Engine-side faults (`state/faults.json`, read per request) and what each one changes.

use crate::config::LabConfig;
use crate::engine::db::EngineDb;
use std::time::Duration;

/// Every `api_flaky` period-th API call fails.
pub const FLAKY_PERIOD: u64 = 3;

/// The engine faults switched on for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveFaults {
    /// Some API calls answer 503 or drop the connection.
    pub api_flaky: bool,
    /// Each API call is delayed.
    pub api_slow: bool,
    /// New disks stay `locked`.
    pub disk_create_stuck: bool,
    /// The hosted-engine storage domain has (almost) no free space.
    pub sd_low_space: bool,
    /// Another host is the SPM.
    pub not_spm: bool,
    /// After a restore, the DC and this host are down for a while.
    pub dc_down_after_restore: bool,
    /// Health never reports the database up.
    pub never_healthy: bool,
}

impl ActiveFaults {
    /// Reads the lab's fault switches now.
    pub fn read(config: &LabConfig) -> ActiveFaults {
        let names = config.faults();
        let on = |name: &str| names.iter().any(|fault| fault == name);
        ActiveFaults {
            api_flaky: on("api_flaky"),
            api_slow: on("api_slow"),
            disk_create_stuck: on("disk_create_stuck"),
            sd_low_space: on("sd_low_space"),
            not_spm: on("not_spm"),
            dc_down_after_restore: on("dc_down_after_restore"),
            never_healthy: on("never_healthy"),
        }
    }
}

/// What a flaky API call does instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlakyFailure {
    /// 503 Service Unavailable from the proxy.
    Unavailable,
    /// The connection is dropped.
    Reset,
}

/// The failure, if any, for the API call numbered `call` (1-based): every third call fails,
/// alternating 503 and connection reset.
pub fn flaky_failure(call: u64) -> Option<FlakyFailure> {
    if call.checked_rem(FLAKY_PERIOD) != Some(0) {
        return None;
    }
    if (call / FLAKY_PERIOD) % 2 == 1 {
        Some(FlakyFailure::Unavailable)
    } else {
        Some(FlakyFailure::Reset)
    }
}

/// Delay of every API call under `api_slow` (`HE_LAB_API_SLOW_SECONDS`, default 3 s).
pub fn slow_delay() -> Duration {
    seconds_from_env("HE_LAB_API_SLOW_SECONDS", 3.0)
}

/// How long the DC stays down after a restore (`HE_LAB_DC_DOWN_SECONDS`, default 20 s).
pub fn dc_down_window() -> Duration {
    seconds_from_env("HE_LAB_DC_DOWN_SECONDS", 20.0)
}

/// How long a new disk stays locked: `HE_LAB_DISK_CREATE_SECONDS`, else the database setting.
pub fn disk_create_delay(db: &EngineDb) -> Duration {
    seconds_from_env("HE_LAB_DISK_CREATE_SECONDS", db.disk_create_seconds)
}

fn seconds_from_env(name: &str, default: f64) -> Duration {
    let seconds = std::env::var(name)
        .ok()
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|value| value.is_finite() && *value >= 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(seconds.max(0.0))
}

/// The database as clients must see it under the faults: SPM moved to another host,
/// DC / host / storage down during the post-restore window. Disk locks are handled by
/// [`crate::engine::db::Disk::status_at`]; free space by the storage domain view.
pub fn apply_to_view(db: &mut EngineDb, config: &LabConfig, faults: &ActiveFaults, now_ms: u64) {
    if faults.not_spm {
        let mut moved = false;
        for host in &mut db.hosts {
            if host.hardware_uuid == config.host_uuid {
                host.spm_status = "none".into();
            } else if !moved {
                host.spm_status = "spm".into();
                moved = true;
            } else {
                host.spm_status = "none".into();
            }
        }
    }
    if faults.dc_down_after_restore {
        if let Some(restored_at) = db.restored_at_ms {
            let window_ms = dc_down_window().as_millis() as u64;
            if now_ms < restored_at.saturating_add(window_ms) {
                for dc in &mut db.data_centers {
                    dc.status = "not_operational".into();
                }
                for sd in &mut db.storage_domains {
                    sd.status = "inactive".into();
                }
                for host in &mut db.hosts {
                    if host.hardware_uuid == config.host_uuid {
                        host.status = "non_operational".into();
                        host.spm_status = "none".into();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_third_call_fails_alternating() {
        let failures: Vec<_> = (1..=12).map(flaky_failure).collect();
        assert_eq!(failures[0], None);
        assert_eq!(failures[1], None);
        assert_eq!(failures[2], Some(FlakyFailure::Unavailable));
        assert_eq!(failures[5], Some(FlakyFailure::Reset));
        assert_eq!(failures[8], Some(FlakyFailure::Unavailable));
        assert_eq!(failures.iter().filter(|f| f.is_some()).count(), 4);
    }
}
