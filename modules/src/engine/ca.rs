//! The engine CA: fetched from pki-resource on first contact (or read from `ca_file`),
//! described (subject, issuer, SHA-1/SHA-256 fingerprints) and checked against a pin.
//!
//! The first fetch cannot be verified by TLS (the CA is what we are fetching), so trust comes
//! from the pin (`ca_fingerprint`) or, without one, from the operator reading the fingerprint
//! the module reports. Every later request trusts this CA and nothing else.

use super::error::EngineError;
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Where the engine publishes its CA (reference engine-api.md section 6).
pub const PKI_RESOURCE_PATH: &str =
    "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA";

/// A `ca_fingerprint` that is not a SHA-1 or SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// Not hex digits.
    #[error("'{text}' is not a hexadecimal fingerprint")]
    NotHex { text: String },
    /// Hex of the wrong length.
    #[error(
        "'{text}' has {bytes} bytes; expected a SHA-1 (20 bytes) or SHA-256 (32 bytes) fingerprint"
    )]
    WrongLength { text: String, bytes: usize },
}

/// Hex digits of a SHA-1 fingerprint.
const SHA1_HEX_DIGITS: usize = 40;

/// A pinned fingerprint: SHA-1 (20 bytes) or SHA-256 (32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    bytes: Vec<u8>,
    given: String,
}

impl Fingerprint {
    /// Parses hex with or without colons (or spaces), any case; also the SHA-1 as old
    /// hosted-engine-setup printed it (M2Crypto's `get_fingerprint`: uppercase hex of the
    /// digest as a number, so without its leading zeroes).
    pub fn parse(text: &str) -> Result<Fingerprint, FingerprintError> {
        let mut digits: String = text
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let colonless = !text.contains(':');
        if colonless && (SHA1_HEX_DIGITS - 8..SHA1_HEX_DIGITS).contains(&digits.len()) {
            digits = format!("{digits:0>SHA1_HEX_DIGITS$}");
        }
        let bytes = hex::decode(&digits).map_err(|_| FingerprintError::NotHex {
            text: text.to_string(),
        })?;
        if bytes.len() != 20 && bytes.len() != 32 {
            return Err(FingerprintError::WrongLength {
                text: text.to_string(),
                bytes: bytes.len(),
            });
        }
        Ok(Fingerprint {
            bytes,
            given: text.to_string(),
        })
    }
}

/// The engine CA certificate and what the operator needs to recognise it.
#[derive(Debug, Clone, Serialize)]
pub struct EngineCa {
    /// The certificate, PEM.
    #[serde(skip)]
    pub pem: String,
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// SHA-1 fingerprint of the DER certificate, `AA:BB:...`.
    pub sha1: String,
    /// SHA-256 fingerprint of the DER certificate, `AA:BB:...`.
    pub sha256: String,
    #[serde(skip)]
    sha1_bytes: Vec<u8>,
    #[serde(skip)]
    sha256_bytes: Vec<u8>,
}

impl EngineCa {
    /// Parses the first certificate of a PEM text; `source` names where it came from.
    pub fn from_pem(pem: &str, source: &str) -> Result<EngineCa, EngineError> {
        let bad = |why: String| EngineError::Input(format!("the engine CA from {source} {why}"));
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| bad(format!("is not a PEM certificate ({e})")))?;
        if block.label != "CERTIFICATE" {
            return Err(bad(format!(
                "is a PEM '{}', not a CERTIFICATE",
                block.label
            )));
        }
        let certificate = block
            .parse_x509()
            .map_err(|e| bad(format!("is not a valid X.509 certificate ({e})")))?;
        let sha1_bytes = Sha1::digest(&block.contents).to_vec();
        let sha256_bytes = Sha256::digest(&block.contents).to_vec();
        Ok(EngineCa {
            pem: pem.to_string(),
            subject: certificate.subject().to_string(),
            issuer: certificate.issuer().to_string(),
            sha1: colon_hex(&sha1_bytes),
            sha256: colon_hex(&sha256_bytes),
            sha1_bytes,
            sha256_bytes,
        })
    }

    /// The SHA-1 fingerprint as oVirt shows it (hosted-engine-setup: "Fingerprint (SHA-1):"
    /// then uppercase hex without colons).
    pub fn sha1_ovirt(&self) -> String {
        self.sha1.replace(':', "")
    }

    /// The CA as hosted-engine-setup showed it on acquiring it, plus its SHA-256.
    pub fn shown(&self) -> String {
        format!(
            "Issuer: {}, Subject: {}, Fingerprint (SHA-1): {}, Fingerprint (SHA-256): {}",
            self.issuer,
            self.subject,
            self.sha1_ovirt(),
            self.sha256
        )
    }

    /// Subject and both fingerprints, to tell two CAs apart in a message.
    pub fn identity(&self) -> String {
        format!(
            "{} (SHA-1 {}, SHA-256 {})",
            self.subject,
            self.sha1_ovirt(),
            self.sha256
        )
    }

    /// Reads the CA from a PEM file.
    pub fn from_file(path: &Path) -> Result<EngineCa, EngineError> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            EngineError::Input(format!(
                "option 'ca_file': cannot read {}: {e}",
                path.display()
            ))
        })?;
        EngineCa::from_pem(&pem, &path.display().to_string())
    }

    /// Fails unless the certificate matches `pin` (SHA-1 or SHA-256, by its length).
    pub fn check_pin(&self, pin: &Fingerprint) -> Result<(), EngineError> {
        let actual = if pin.bytes.len() == 20 {
            &self.sha1_bytes
        } else {
            &self.sha256_bytes
        };
        if *actual == pin.bytes {
            return Ok(());
        }
        Err(EngineError::PinMismatch {
            pinned: pin.given.clone(),
            subject: self.subject.clone(),
            sha1: self.sha1.clone(),
            sha256: self.sha256.clone(),
        })
    }

    /// Writes the PEM to `path` (mode 0644, atomically) unless it already holds exactly
    /// this certificate; returns whether it wrote.
    pub fn write_pem(&self, path: &Path) -> std::io::Result<bool> {
        if std::fs::read_to_string(path).ok().as_deref() == Some(self.pem.as_str()) {
            return Ok(false);
        }
        let temporary = path.with_extension("tmp-he-upgrade");
        std::fs::write(&temporary, &self.pem)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&temporary, path)?;
        Ok(true)
    }

    /// Whether `path` already holds exactly this certificate.
    pub fn is_stored_at(&self, path: &Path) -> bool {
        std::fs::read_to_string(path).ok().as_deref() == Some(self.pem.as_str())
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Refuses a `ca_dest` that exists as something other than a regular file, cannot be looked
/// at (a looping link) or is not in an existing directory: checked before the engine is asked.
pub fn check_dest(path: &Path) -> Result<(), EngineError> {
    let refuse = |why: String| {
        Err(EngineError::Input(format!(
            "option 'ca_dest': {} {why}",
            path.display()
        )))
    };
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => return Ok(()),
        Ok(_) => return refuse("exists and is not a regular file".into()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return refuse(format!("cannot be inspected: {e}"))
        }
        Err(_) => {}
    }
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(directory) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => refuse(format!(
            "is in {}, which is not a directory",
            directory.display()
        )),
        Err(e) => refuse(format!(
            "is in {}, which cannot be used: {e}",
            directory.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl req -x509 -newkey rsa:2048 -nodes -subj "/C=US/O=example.com/CN=engine.example.com.12345" -days 3650`
    const CA_PEM: &str = include_str!("fixtures/ca.pem");
    // `openssl x509 -noout -fingerprint -sha1` / `-sha256` of the same file.
    const CA_SHA1: &str = include_str!("fixtures/ca.sha1");
    const CA_SHA256: &str = include_str!("fixtures/ca.sha256");

    #[test]
    fn describes_the_certificate_like_openssl() {
        let ca = EngineCa::from_pem(CA_PEM, "test").unwrap();
        assert_eq!(ca.sha1, CA_SHA1.trim());
        assert_eq!(ca.sha256, CA_SHA256.trim());
        assert!(
            ca.subject.contains("CN=engine.example.com.12345"),
            "{}",
            ca.subject
        );
        assert_eq!(ca.subject, ca.issuer, "self-signed CA");
    }

    #[test]
    fn pins_match_with_or_without_colons_in_any_case() {
        let ca = EngineCa::from_pem(CA_PEM, "test").unwrap();
        let plain_lower = CA_SHA256.trim().replace(':', "").to_lowercase();
        ca.check_pin(&Fingerprint::parse(&plain_lower).unwrap())
            .unwrap();
        ca.check_pin(&Fingerprint::parse(CA_SHA1.trim()).unwrap())
            .unwrap();
    }

    #[test]
    fn a_wrong_pin_is_a_clear_error_showing_both_fingerprints() {
        let ca = EngineCa::from_pem(CA_PEM, "test").unwrap();
        let wrong = Fingerprint::parse(&"ab".repeat(32)).unwrap();
        let message = ca.check_pin(&wrong).unwrap_err().to_string();
        assert!(
            message.contains("does not match ca_fingerprint"),
            "{message}"
        );
        assert!(message.contains(CA_SHA256.trim()), "{message}");
        assert!(message.contains(CA_SHA1.trim()), "{message}");
    }

    #[test]
    fn shown_as_hosted_engine_setup_shows_it_and_pinned_by_its_form_too() {
        let ca = EngineCa::from_pem(CA_PEM, "test").unwrap();
        let ovirt = CA_SHA1.trim().replace(':', "");
        assert_eq!(ca.sha1_ovirt(), ovirt);
        assert_eq!(
            ca.shown(),
            format!(
                "Issuer: {}, Subject: {}, Fingerprint (SHA-1): {ovirt}, Fingerprint (SHA-256): {}",
                ca.issuer,
                ca.subject,
                CA_SHA256.trim()
            )
        );
        ca.check_pin(&Fingerprint::parse(&ovirt).unwrap()).unwrap();
        // Old M2Crypto printed the digest as a number: leading zeroes dropped.
        let short = Fingerprint::parse(&"0ABC".repeat(10)[1..]).unwrap();
        assert_eq!(short.bytes, hex::decode("0ABC".repeat(10)).unwrap());
        assert!(
            Fingerprint::parse(&"A".repeat(31)).is_err(),
            "too short for a SHA-1"
        );
    }

    #[test]
    fn bad_fingerprints_and_bad_pem_are_refused() {
        assert!(Fingerprint::parse("12:34")
            .unwrap_err()
            .to_string()
            .contains("2 bytes"));
        assert_eq!(
            Fingerprint::parse("xyz"),
            Err(FingerprintError::NotHex { text: "xyz".into() })
        );
        let error = EngineCa::from_pem("<html>not found</html>", "https://e").unwrap_err();
        assert!(
            error.to_string().contains("is not a PEM certificate"),
            "{error}"
        );
    }

    #[test]
    fn writes_once_then_reports_unchanged() {
        let ca = EngineCa::from_pem(CA_PEM, "test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine-ca.pem");
        assert!(!ca.is_stored_at(&path));
        assert!(ca.write_pem(&path).unwrap());
        assert!(ca.is_stored_at(&path));
        assert!(!ca.write_pem(&path).unwrap());
    }
}
