//! The per-run log file: one file per run id under `log_dir`, mode 0600, secrets masked.

use super::redact::Redactor;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;

/// Where run logs go when `log_dir` is not given.
pub const DEFAULT_LOG_DIR: &str = "/var/log/ovirt-hosted-engine-upgrade";

/// Opens (appending) `<log_dir>/<run_id>.log` and routes `tracing` events into it.
///
/// Returns the log file path and the dispatcher that writes to it; the runner makes it the
/// default for the module's run. Failing to open the log refuses the run: the caller names
/// `log_dir` in the error.
pub fn start(
    log_dir: &Path,
    run_id: &str,
    verbosity: u8,
    redactor: Redactor,
) -> io::Result<(PathBuf, Dispatch)> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(log_dir)?;
    let path = log_dir.join(format!("{run_id}.log"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    let level = match verbosity {
        0..=2 => tracing::Level::INFO,
        3 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let writer = RedactingWriter {
        file: Arc::new(Mutex::new(file)),
        redactor,
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(level)
        .with_target(false)
        .finish();
    let dispatch = Dispatch::new(subscriber);
    // Global too, so threads a module spawns log into the same file. In one process with
    // several runs (unit tests) the first stays global; each run still has its own default.
    let _ = tracing::dispatcher::set_global_default(dispatch.clone());
    Ok((path, dispatch))
}

/// A log sink that masks secrets before bytes reach the file.
#[derive(Clone)]
struct RedactingWriter {
    file: Arc<Mutex<File>>,
    redactor: Redactor,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = self.redactor.text(&String::from_utf8_lossy(buf));
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .flush()
    }
}

impl<'a> MakeWriter<'a> for RedactingWriter {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
