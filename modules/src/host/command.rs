//! Running a host command found on PATH and capturing what it printed.

use crate::privilege::Access;
use std::ffi::OsStr;
use std::process::Stdio;

/// A host command that could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program is not on PATH or could not start.
    #[error("cannot run `{command}`: {source} (is it installed and on PATH?)")]
    NotRunnable {
        command: String,
        source: std::io::Error,
    },
    /// The program ran and exited non-zero.
    #[error("`{command}` failed with exit code {code}: {detail}")]
    Failed {
        command: String,
        code: i32,
        detail: String,
        stdout: String,
    },
}

/// What a successful command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Runs `program args...`, with stdin closed, and returns its output when it exits 0.
pub fn run<I, S>(program: &str, args: I) -> Result<Output, CommandError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_as(&Access::Own, program, args)
}

/// [`run`] as `access` (for example `qemu-img` as vdsm:kvm on the storage domain).
pub fn run_as<I, S>(access: &Access, program: &str, args: I) -> Result<Output, CommandError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let command = display(program, &args);
    tracing::debug!("running {command} {}", access.describe());
    let output = access
        .command(program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CommandError::NotRunnable {
            command: command.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        return Ok(Output { stdout, stderr });
    }
    let detail = [stderr.trim(), stdout.trim()]
        .into_iter()
        .find(|text| !text.is_empty())
        .unwrap_or("no output")
        .to_string();
    let code = output.status.code().unwrap_or(-1);
    tracing::debug!("{command} exited {code}: {detail}");
    Err(CommandError::Failed {
        command,
        code,
        detail,
        stdout,
    })
}

fn display(program: &str, args: &[std::ffi::OsString]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_stdout_of_a_successful_command() {
        let output = run("sh", ["-c", "echo hello"]).unwrap();
        assert_eq!(output.stdout, "hello\n");
    }

    #[test]
    fn names_the_command_and_its_stderr_on_failure() {
        let err = run("sh", ["-c", "echo broken >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`sh -c echo broken >&2; exit 3` failed with exit code 3: broken"),
            "{text}"
        );
    }

    #[test]
    fn names_a_missing_program() {
        let err = run("no-such-program-he", ["x"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot run `no-such-program-he x`"),
            "{err}"
        );
    }
}
