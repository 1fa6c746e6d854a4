//! The host tools the modules call, with the real syntax, outputs, errors and exit codes:
//! `hosted-engine` and `vdsm-client` (host-formats.md sections 1, 4, 5), and the engine VM's
//! `engine-backup`.

pub mod engine_backup;
pub mod ha_status;
pub mod health;
pub mod hosted_engine;
pub mod vdsm_client;
pub mod vdsm_storage;

/// What a shim run produced: stdout, stderr and the exit code.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
}

impl ToolOutput {
    /// Success with `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Self {
        ToolOutput {
            stdout: stdout.into(),
            ..Default::default()
        }
    }

    /// Failure `code` with `stderr`.
    pub fn fail(code: i32, stderr: impl Into<String>) -> Self {
        ToolOutput {
            stderr: stderr.into(),
            code,
            ..Default::default()
        }
    }
}
