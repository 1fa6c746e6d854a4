//! The `hosted-engine` command: VM status, start, shutdown and power-off (host-formats §5).

use super::command::{self, CommandError};
use super::vm_status::{VmStatus, VmStatusError};
use std::path::Path;

const PROGRAM: &str = "hosted-engine";

/// A failed `hosted-engine` call.
#[derive(Debug, thiserror::Error)]
pub enum HostedEngineError {
    /// The command could not run or failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// `--vm-status --json` printed something unexpected.
    #[error(transparent)]
    Status(#[from] VmStatusError),
}

/// `hosted-engine --vm-status --json`, parsed.
pub fn vm_status() -> Result<VmStatus, HostedEngineError> {
    let output = command::run(PROGRAM, ["--vm-status", "--json"])?;
    Ok(VmStatus::parse(&output.stdout)?)
}

/// `hosted-engine --vm-start [--vm-conf=FILE]`; returns what it printed.
pub fn vm_start(vm_conf: Option<&Path>) -> Result<String, HostedEngineError> {
    let mut args = vec!["--vm-start".to_string()];
    if let Some(path) = vm_conf {
        args.push(format!("--vm-conf={}", path.display()));
    }
    Ok(command::run(PROGRAM, &args)?.stdout.trim().to_string())
}

/// `hosted-engine --vm-shutdown` (a clean ACPI shutdown request).
pub fn vm_shutdown() -> Result<(), HostedEngineError> {
    command::run(PROGRAM, ["--vm-shutdown"])?;
    Ok(())
}

/// `hosted-engine --vm-poweroff` (destroy).
pub fn vm_poweroff() -> Result<(), HostedEngineError> {
    command::run(PROGRAM, ["--vm-poweroff"])?;
    Ok(())
}

/// `hosted-engine --set-maintenance --mode=MODE` (`global`, `local` or `none`).
pub fn set_maintenance(mode: &str) -> Result<(), HostedEngineError> {
    command::run(
        PROGRAM,
        ["--set-maintenance".to_string(), format!("--mode={mode}")],
    )?;
    Ok(())
}
