//! The lab's vdsm: JSON-RPC over STOMP on TLS with client certificates, served by the host
//! daemon (what vdsmd is on a real host), and the client the `vdsm-client` shim uses.

pub mod api;
pub mod client;
pub mod server;
pub mod stomp;

use crate::config::LabConfig;
use std::path::PathBuf;

/// `DIR/pki/vdsm`, laid out like a host's `/etc/pki/vdsm`.
pub fn pki_dir(config: &LabConfig) -> PathBuf {
    config.pki_dir().join("vdsm")
}

/// The host's vdsm key, certificate and CA.
pub struct PkiFiles {
    /// `keys/vdsmkey.pem`.
    pub key: PathBuf,
    /// `certs/vdsmcert.pem` (signed by the engine CA, as host deploy enrolls it).
    pub certificate: PathBuf,
    /// `certs/cacert.pem` (the engine CA).
    pub ca: PathBuf,
}

/// The files of [`pki_dir`].
pub fn pki_files(config: &LabConfig) -> PkiFiles {
    let dir = pki_dir(config);
    PkiFiles {
        key: dir.join("keys/vdsmkey.pem"),
        certificate: dir.join("certs/vdsmcert.pem"),
        ca: dir.join("certs/cacert.pem"),
    }
}

/// `state/vdsm_address`: `host:port` the running daemon's vdsm endpoint is bound to.
pub fn address_path(config: &LabConfig) -> PathBuf {
    config.state_dir().join("vdsm_address")
}

/// The address the daemon recorded when it started (None before the first start).
pub fn address(config: &LabConfig) -> Option<String> {
    std::fs::read_to_string(address_path(config))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}
