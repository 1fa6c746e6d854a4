//! The engine CA pinned on an attempt's first contact (SPEC 6.5): a file on the host holding
//! the CA the first engine module of the attempt fetched, so every later engine call of the
//! run and of the attempt (a resumed run, the new engine after the restore, which brings the
//! old engine's PKI back) trusts that CA and nothing else, without fetching it again.
//!
//! A pin belongs to one attempt: a pin file written for another attempt is not used (the new
//! attempt pins on its own first contact). Without an attempt, a pin is kept until removed.

use super::ca::EngineCa;
use super::error::EngineError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the pin is kept, and which attempt it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPin {
    /// The pin file (`ca_pin_file`).
    pub path: PathBuf,
    /// The attempt it belongs to (`ca_pin_attempt`); `None`: any.
    pub attempt: Option<String>,
}

/// The pin file's content: the CA, and what an operator needs to recognise it.
#[derive(Debug, Serialize, Deserialize)]
struct PinFile {
    attempt: Option<String>,
    pinned_by_run: String,
    subject: String,
    sha1: String,
    sha256: String,
    pem: String,
}

impl CaPin {
    /// The CA pinned for this attempt, or `None` when there is none yet (no file, or the pin of
    /// another attempt). A file that cannot be read or is not a pin is an error naming it.
    pub fn load(&self) -> Result<Option<EngineCa>, EngineError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.unusable(&error.to_string())),
        };
        let file: PinFile =
            serde_json::from_str(&text).map_err(|error| self.unusable(&error.to_string()))?;
        if self.attempt.is_some() && file.attempt != self.attempt {
            tracing::info!(
                pin = %self.path.display(),
                pinned_for = file.attempt.as_deref().unwrap_or("-"),
                "the engine CA pin belongs to another attempt: this attempt pins on its first contact"
            );
            return Ok(None);
        }
        // The fingerprints in the file are for people: the certificate is what counts.
        let ca = EngineCa::from_pem(&file.pem, &self.path.display().to_string())
            .map_err(|error| self.unusable(&error.to_string()))?;
        Ok(Some(ca))
    }

    /// Records `ca` as this attempt's pin (atomically, mode 0600).
    pub fn store(&self, ca: &EngineCa, run_id: &str) -> Result<(), EngineError> {
        let file = PinFile {
            attempt: self.attempt.clone(),
            pinned_by_run: run_id.to_string(),
            subject: ca.subject.clone(),
            sha1: ca.sha1.clone(),
            sha256: ca.sha256.clone(),
            pem: ca.pem.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("a pin serializes") + "\n";
        write_private(&self.path, &text).map_err(|error| {
            EngineError::Input(format!(
                "option 'ca_pin_file': cannot write the engine CA pin {}: {error}",
                self.path.display()
            ))
        })
    }

    /// The error for a pin that is there but cannot be used.
    fn unusable(&self, why: &str) -> EngineError {
        EngineError::Input(format!(
            "option 'ca_pin_file': {} is not a usable engine CA pin ({why}); remove it to pin the engine CA again on the next contact",
            self.path.display()
        ))
    }
}

/// Writes `text` to `path` through a temporary file in the same directory (mode 0600).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let temporary = path.with_extension("tmp-he-upgrade");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA_PEM: &str = include_str!("fixtures/ca.pem");

    fn pin(dir: &Path, attempt: Option<&str>) -> CaPin {
        CaPin {
            path: dir.join("engine-ca-pin.json"),
            attempt: attempt.map(str::to_string),
        }
    }

    #[test]
    fn a_stored_pin_is_the_same_ca_for_its_attempt_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = EngineCa::from_pem(CA_PEM, "test").unwrap();
        let first = pin(dir.path(), Some("upgrade-1"));
        assert!(first.load().unwrap().is_none(), "nothing pinned yet");
        first.store(&ca, "upgrade-1").unwrap();
        let again = first.load().unwrap().expect("pinned");
        assert_eq!(again.sha256, ca.sha256);
        assert_eq!(again.pem, ca.pem);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&first.path).unwrap();
        assert!(text.contains(&ca.sha1) && text.contains("\"pinned_by_run\": \"upgrade-1\""));

        assert!(pin(dir.path(), Some("upgrade-2")).load().unwrap().is_none());
        assert!(pin(dir.path(), None).load().unwrap().is_some());
    }

    #[test]
    fn a_broken_pin_names_its_file_and_how_to_pin_again() {
        let dir = tempfile::tempdir().unwrap();
        let broken = pin(dir.path(), Some("upgrade-1"));
        std::fs::write(&broken.path, "-----BEGIN CERTIFICATE-----").unwrap();
        let message = broken.load().unwrap_err().to_string();
        assert!(message.starts_with("option 'ca_pin_file': "), "{message}");
        assert!(
            message.contains("engine-ca-pin.json is not a usable"),
            "{message}"
        );
        assert!(message.contains("remove it to pin"), "{message}");
    }
}
