//! TLS to vdsm with the host's own vdsm key and certificate, trusting the CA that signed it.
//!
//! vdsm's own clients (`vdsm/sslutils.py`, 4.17 to 4.50) require a certificate chained to the
//! CA but do not match the host name: the host certificate names the host's address, not
//! `localhost`. This client does the same: chain verified, name not compared.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A key, certificate or CA file that cannot be used (they come from `vdsm_pki_dir`).
#[derive(Debug, thiserror::Error)]
#[error("option 'vdsm_pki_dir': vdsm {what} {path}: {reason}")]
pub struct PkiError {
    /// `key`, `certificate` or `CA certificate`.
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// The host's vdsm PKI files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiFiles {
    /// Private key (`keys/vdsmkey.pem`).
    pub key: PathBuf,
    /// Certificate (`certs/vdsmcert.pem`).
    pub certificate: PathBuf,
    /// CA certificate (`certs/cacert.pem`).
    pub ca: PathBuf,
}

impl PkiFiles {
    /// The files of a vdsm PKI directory laid out like `/etc/pki/vdsm`.
    pub fn in_dir(dir: &Path) -> Self {
        PkiFiles {
            key: dir.join("keys/vdsmkey.pem"),
            certificate: dir.join("certs/vdsmcert.pem"),
            ca: dir.join("certs/cacert.pem"),
        }
    }

    /// A rustls client configuration presenting the host certificate and trusting the CA.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, PkiError> {
        let fail = |what: &'static str, path: &Path, reason: String| PkiError {
            what,
            path: path.to_path_buf(),
            reason,
        };
        let certificates = |what: &'static str, path: &Path| {
            let list = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(what, path, e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(what, path, e.to_string()))?;
            if list.is_empty() {
                return Err(fail(what, path, "holds no PEM certificate".into()));
            }
            Ok(list)
        };
        let ca = certificates("CA certificate", &self.ca)?;
        let chain = certificates("certificate", &self.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| fail("key", &self.key, e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in ca {
            roots
                .add(certificate)
                .map_err(|e| fail("CA certificate", &self.ca, e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain_verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| fail("CA certificate", &self.ca, e.to_string()))?;
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail("certificate", &self.certificate, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(chain_verifier)))
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                fail(
                    "key",
                    &self.key,
                    format!("does not match the certificate: {e}"),
                )
            })
    }
}

/// Verifies the server's chain to the CA like webpki, ignoring only a name mismatch.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name only after the chain, so the chain is good here.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
