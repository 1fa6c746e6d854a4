//! Stopping the engine VM: `--vm-shutdown`, wait until it is down, `--vm-poweroff` after the
//! shutdown timeout, wait again.

use super::state::{self, VmState};
use crate::ansible::{take_group, OptionError, OptionSet, Seconds};
use crate::host::hosted_engine::{self, HostedEngineError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// What a stop does, in one sentence (check mode).
pub const DESCRIPTION: &str =
    "shut the engine VM down (hosted-engine --vm-shutdown, --vm-poweroff after shutdown_timeout)";

/// The stop options of `he_boot_and_wait` (`state: stopped`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopOptions {
    /// Wait this long for a clean shutdown.
    #[serde(default = "Seconds::of::<600>")]
    shutdown_timeout: Seconds,
    /// Wait this long after the power-off.
    #[serde(default = "Seconds::of::<120>")]
    poweroff_timeout: Seconds,
}

impl OptionSet for StopOptions {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_group(options)
    }
}

impl StopOptions {
    /// The timing of a stop that asks the VM's state every `poll_interval`.
    pub fn settings(&self, poll_interval: Duration) -> StopSettings {
        StopSettings {
            shutdown_timeout: self.shutdown_timeout.duration(),
            poweroff_timeout: self.poweroff_timeout.duration(),
            poll_interval,
        }
    }
}

/// Whether a VM in `state` must be stopped here: a VM running on another host is an error.
pub fn needed(state: &VmState) -> Result<bool, StopError> {
    match state {
        VmState::Up { .. } => Ok(true),
        VmState::Elsewhere { .. } => Err(StopError::Elsewhere {
            state: state.clone(),
        }),
        VmState::Down { .. } | VmState::Unknown { .. } => Ok(false),
    }
}

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
    /// The VM runs on another host: it is stopped there.
    #[error("the engine VM is {state}: stop it on that host")]
    Elsewhere { state: VmState },
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

impl StopReport {
    /// One line: how and how fast the VM stopped.
    pub fn summary(&self) -> String {
        let how = match self.powered_off {
            true => "powered off",
            false => "shut down",
        };
        format!("the engine VM was {how} in {} s", self.seconds)
    }

    /// The warning for a VM that ignored the shutdown (`None` after a clean one).
    pub fn warning(&self, settings: &StopSettings) -> Option<String> {
        let timeout_s = settings.shutdown_timeout.as_secs();
        self.powered_off.then(|| format!("the engine VM did not shut down within shutdown_timeout ({timeout_s} s): it was powered off"))
    }
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
