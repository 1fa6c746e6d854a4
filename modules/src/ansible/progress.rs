//! The progress file: one small JSON object, rewritten while a long step runs, that a
//! playbook polling an async job shows to the operator (`{"text", "finished", "failed"}`).

use super::redact::Redactor;
use serde_json::json;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One run's progress file and the secrets its text must never show.
struct ProgressFile {
    path: PathBuf,
    module: &'static str,
    redactor: Redactor,
}

impl ProgressFile {
    fn write(&self, text: &str, finished: bool, failed: bool) -> io::Result<()> {
        let record = json!({
            "module": self.module,
            "text": self.redactor.text(text),
            "finished": finished,
            "failed": failed,
            "updated": time::OffsetDateTime::now_utc().unix_timestamp(),
            "pid": std::process::id(),
        });
        // Written aside and renamed: a reader never sees half a record.
        let partial = partial_path(&self.path);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        file.write_all(format!("{record}\n").as_bytes())
            .and_then(|()| std::fs::rename(&partial, &self.path))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            })
    }
}

impl ProgressFile {
    /// A progress file that cannot be written is only logged: progress never fails a step.
    fn write_or_log(&self, text: &str, finished: bool, failed: bool) {
        if let Err(error) = self.write(text, finished, failed) {
            tracing::warn!(
                "cannot write the progress file {}: {error}",
                self.path.display()
            );
        }
    }
}

/// The progress file is replaced on every report: refuse a path that exists as anything but
/// a regular file, or that cannot be looked at (a looping link), rather than replace it.
fn refuse_non_file(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it exists and is not a regular file",
        )),
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Where a run shows what it is doing: the task's progress file, or nowhere. Cheap to clone;
/// every clone reports into the same file until the run finishes.
#[derive(Clone, Default)]
pub struct Reporter(Option<Arc<Mutex<Option<ProgressFile>>>>);

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.0.as_ref().and_then(|file| {
            let file = lock(file);
            file.as_ref().map(|file| file.path.clone())
        });
        f.debug_tuple("Reporter").field(&path).finish()
    }
}

impl Reporter {
    /// Reports nowhere (the task asked for no progress file).
    pub fn none() -> Self {
        Self(None)
    }

    /// Starts reporting into `path` ("MODULE started").
    pub(crate) fn start(
        path: PathBuf,
        module: &'static str,
        redactor: Redactor,
    ) -> io::Result<Self> {
        refuse_non_file(&path)?;
        let file = ProgressFile {
            path,
            module,
            redactor,
        };
        file.write(&format!("{module} started"), false, false)?;
        Ok(Self(Some(Arc::new(Mutex::new(Some(file))))))
    }

    /// Shows `text` as the step's progress.
    pub fn report(&self, text: &str) {
        if let Some(shared) = &self.0 {
            if let Some(file) = lock(shared).as_ref() {
                file.write_or_log(text, false, false);
            }
        }
    }

    /// Marks the run finished (with its message) and stops reporting.
    pub(crate) fn finish(&self, text: &str, failed: bool) {
        if let Some(file) = self.0.as_ref().and_then(|shared| lock(shared).take()) {
            file.write_or_log(text, true, failed);
        }
    }
}

fn lock(file: &Mutex<Option<ProgressFile>>) -> std::sync::MutexGuard<'_, Option<ProgressFile>> {
    file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::os::unix::fs::PermissionsExt;

    fn read(path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn reports_replace_the_record_mask_secrets_and_finish_stops_reporting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step.progress.json");
        let progress = Reporter::start(
            path.clone(),
            "he_test",
            Redactor::new(["s3cret".to_string()]),
        )
        .unwrap();
        let record = read(&path);
        assert_eq!(record["text"], "he_test started");
        assert_eq!(record["finished"], false);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        progress
            .clone()
            .report("copied 1 of 2 GiB with password s3cret");
        let record = read(&path);
        assert_eq!(
            record["text"],
            "copied 1 of 2 GiB with password VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        );

        progress.finish("he_test failed: disk full", true);
        progress.report("too late");
        let record = read(&path);
        assert_eq!(record["finished"], true);
        assert_eq!(record["failed"], true);
        assert_eq!(record["text"], "he_test failed: disk full");
        assert!(!partial_path(&path).exists());
    }
}
