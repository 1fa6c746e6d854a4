//! Where the engine VM is, from this host's point of view (`hosted-engine --vm-status --json`).

use crate::host::hosted_engine::{self, HostedEngineError};
use crate::host::vm_status::VmStatus;
use std::fmt;
use std::time::{Duration, Instant};

/// The shortest pause between two `--vm-status` calls (each one runs a program).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The engine VM as seen from the local host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmState {
    /// Running (or powering up) on this host.
    Up {
        /// vdsm's status string (`Up`, `Powering up`, ...).
        detail: String,
    },
    /// Not running anywhere the HA agents can see.
    Down {
        /// vdsm's status string or the agent's reason.
        detail: String,
    },
    /// Running on another host.
    Elsewhere {
        /// That host's HA id.
        host_id: u32,
        /// That host's name.
        hostname: String,
    },
    /// This host's agent does not know (`unknown`, or no entry for this host).
    Unknown {
        /// Why.
        detail: String,
    },
}

impl VmState {
    /// The state from a parsed `--vm-status --json`, for local HA host `host_id`.
    pub fn from_status(status: &VmStatus, host_id: u32) -> Self {
        let Some(local) = status.host(host_id) else {
            return VmState::Unknown {
                detail: format!("hosted-engine --vm-status reports no host with id {host_id}"),
            };
        };
        let engine = &local.engine_status;
        if engine.vm == "up" {
            return VmState::Up {
                detail: engine.detail.clone(),
            };
        }
        if let Some(other) = status
            .hosts
            .iter()
            .find(|host| host.host_id != host_id && host.runs_engine_vm())
        {
            return VmState::Elsewhere {
                host_id: other.host_id,
                hostname: other.hostname.clone(),
            };
        }
        let detail = match &engine.reason {
            Some(reason) => format!("{} ({reason})", engine.detail),
            None => engine.detail.clone(),
        };
        if engine.vm.starts_with("down") {
            VmState::Down { detail }
        } else {
            VmState::Unknown { detail }
        }
    }

    /// Asks `hosted-engine --vm-status --json` now.
    pub fn current(host_id: u32) -> Result<Self, HostedEngineError> {
        Ok(Self::from_status(&hosted_engine::vm_status()?, host_id))
    }

    /// The one-word name returned as `vm_state`: `up`, `down`, `elsewhere` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            VmState::Up { .. } => "up",
            VmState::Down { .. } => "down",
            VmState::Elsewhere { .. } => "elsewhere",
            VmState::Unknown { .. } => "unknown",
        }
    }

    /// Whether it runs on this host.
    pub fn is_up(&self) -> bool {
        matches!(self, VmState::Up { .. })
    }
}

/// Polls `read` every `interval` until the VM is no longer up on this host; `Ok(false)` if it
/// still is after `timeout`.
pub fn wait_until_not_up<E>(
    mut read: impl FnMut() -> Result<VmState, E>,
    timeout: Duration,
    interval: Duration,
) -> Result<bool, E> {
    let deadline = Instant::now() + timeout;
    loop {
        if !read()?.is_up() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(interval.min(deadline.saturating_duration_since(Instant::now())));
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmState::Up { detail } => write!(f, "up on this host ({detail})"),
            VmState::Down { detail } => write!(f, "down ({detail})"),
            VmState::Elsewhere { host_id, hostname } => {
                write!(
                    f,
                    "running on host {host_id} ({hostname}), not on this host"
                )
            }
            VmState::Unknown { detail } => write!(f, "unknown ({detail})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(local: &str, other: &str) -> VmStatus {
        VmStatus::parse(&format!(
            r#"{{"1": {{"host-id": 1, "host-ts": 6312, "score": 3400, "engine-status": {local}, "hostname": "host1.example.com", "maintenance": false, "stopped": false, "crc32": "3b8e5a2c", "conf_on_shared_storage": true, "local_conf_timestamp": 6312, "extra": "", "live-data": true}}, "2": {{"host-id": 2, "host-ts": 6100, "score": 3400, "engine-status": {other}, "hostname": "host2.example.com", "maintenance": false, "stopped": false, "crc32": "11aa22bb", "conf_on_shared_storage": true, "local_conf_timestamp": 6100, "extra": "", "live-data": true}}, "global_maintenance": true}}"#
        ))
        .unwrap()
    }

    const UP: &str = r#"{"vm": "up", "health": "good", "detail": "Up"}"#;
    const POWERING_UP: &str =
        r#"{"vm": "up", "health": "bad", "detail": "Powering up", "reason": "bad vm status"}"#;
    const NOT_HERE: &str = r#"{"vm": "down", "health": "bad", "detail": "unknown", "reason": "vm not running on this host"}"#;
    const DOWN: &str = r#"{"vm": "down_unexpected", "health": "bad", "detail": "Down", "reason": "bad vm status"}"#;
    const UNKNOWN: &str = r#"{"vm": "unknown", "health": "unknown", "detail": "unknown", "reason": "failed to getVmStats"}"#;

    #[test]
    fn up_here_including_powering_up() {
        assert_eq!(
            VmState::from_status(&status(UP, NOT_HERE), 1),
            VmState::Up {
                detail: "Up".into()
            }
        );
        assert!(VmState::from_status(&status(POWERING_UP, NOT_HERE), 1).is_up());
    }

    #[test]
    fn up_on_the_other_host() {
        let state = VmState::from_status(&status(UP, NOT_HERE), 2);
        assert_eq!(
            state,
            VmState::Elsewhere {
                host_id: 1,
                hostname: "host1.example.com".into()
            }
        );
        assert_eq!(state.name(), "elsewhere");
    }

    #[test]
    fn down_everywhere_with_the_reason() {
        let state = VmState::from_status(&status(DOWN, NOT_HERE), 1);
        assert_eq!(
            state,
            VmState::Down {
                detail: "Down (bad vm status)".into()
            }
        );
        assert_eq!(state.to_string(), "down (Down (bad vm status))");
    }

    #[test]
    fn waiting_for_down_polls_until_it_is_or_time_runs_out() {
        let mut answers = vec![DOWN, UP, UP].into_iter().rev();
        let mut reads = 0;
        let down = wait_until_not_up(
            || {
                reads += 1;
                let local = answers.next().unwrap_or(DOWN);
                Ok::<_, ()>(VmState::from_status(&status(local, NOT_HERE), 1))
            },
            Duration::from_secs(5),
            Duration::from_millis(1),
        );
        assert_eq!(down, Ok(true));
        assert_eq!(reads, 3);
        let still_up = wait_until_not_up(
            || {
                Ok::<_, ()>(VmState::Up {
                    detail: "Up".into(),
                })
            },
            Duration::from_millis(30),
            Duration::from_millis(5),
        );
        assert_eq!(still_up, Ok(false));
    }

    #[test]
    fn unknown_status_or_missing_host() {
        assert_eq!(
            VmState::from_status(&status(UNKNOWN, NOT_HERE), 1).name(),
            "unknown"
        );
        assert_eq!(
            VmState::from_status(&status(UP, NOT_HERE), 7).name(),
            "unknown"
        );
    }
}
