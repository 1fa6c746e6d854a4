//! Stopping the engine VM: `--vm-shutdown`, wait until it is down, `--vm-poweroff` after the
//! shutdown timeout, wait again.

use super::state::{self, VmState};
use crate::host::hosted_engine::{self, HostedEngineError};
use std::time::{Duration, Instant};

/// Why the VM could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// `hosted-engine` failed.
    #[error("{action}: {error}")]
    HostedEngine {
        action: &'static str,
        error: HostedEngineError,
    },
    /// The VM did not stop.
    #[error("the engine VM is still up {waited_s} s after hosted-engine --vm-poweroff")]
    StillUp { waited_s: u64 },
}

/// Timing of a stop.
#[derive(Debug, Clone, Copy)]
pub struct StopSettings {
    /// Wait this long for a clean shutdown before powering off.
    pub shutdown_timeout: Duration,
    /// Wait this long after the power-off.
    pub poweroff_timeout: Duration,
    /// How often `--vm-status` is asked.
    pub poll_interval: Duration,
}

/// What a stop did.
#[derive(Debug, Clone, Copy)]
pub struct StopReport {
    /// Seconds it took.
    pub seconds: f64,
    /// Whether the clean shutdown timed out and the VM was powered off.
    pub powered_off: bool,
}

/// `--vm-shutdown`, wait until down, `--vm-poweroff` after the timeout, wait again.
pub fn stop(settings: &StopSettings, host_id: u32) -> Result<StopReport, StopError> {
    let began = Instant::now();
    let read = || VmState::current(host_id);
    let status_error = |error| StopError::HostedEngine {
        action: "cannot read the engine VM status",
        error,
    };
    hosted_engine::vm_shutdown().map_err(|error| StopError::HostedEngine {
        action: "hosted-engine --vm-shutdown failed",
        error,
    })?;
    let down = state::wait_until_not_up(read, settings.shutdown_timeout, settings.poll_interval)
        .map_err(status_error)?;
    if !down {
        tracing::warn!("the engine VM is still up after shutdown_timeout: powering it off");
        hosted_engine::vm_poweroff().map_err(|error| StopError::HostedEngine {
            action: "hosted-engine --vm-poweroff failed",
            error,
        })?;
        if !state::wait_until_not_up(read, settings.poweroff_timeout, settings.poll_interval)
            .map_err(status_error)?
        {
            return Err(StopError::StillUp {
                waited_s: settings.poweroff_timeout.as_secs(),
            });
        }
    }
    Ok(StopReport {
        seconds: (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        powered_off: !down,
    })
}
