//! The vdsm options every host module takes (doc fragment `ovirt_he.upgrade.vdsm`): where
//! vdsm listens, the host's vdsm PKI directory, and how long to wait for an answer.

use super::session::Endpoint;
use super::tls::PkiFiles;
use super::Vdsm;
use crate::ansible::{take_group, OptionError, OptionSet, Seconds};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// vdsm's JSON-RPC endpoint on every host (`[addresses] management_port`).
pub const DEFAULT_ADDRESS: &str = "localhost:54321";

/// The host's vdsm PKI (`keys/vdsmkey.pem`, `certs/vdsmcert.pem`, `certs/cacert.pem`).
pub const DEFAULT_PKI_DIR: &str = "/etc/pki/vdsm";

/// Default wait for one vdsm answer, seconds (vdsm-client's default).
pub const DEFAULT_TIMEOUT_S: u64 = 60;

/// How to reach vdsm, as the user gave it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VdsmOptions {
    /// `host:port` of vdsm's JSON-RPC endpoint.
    #[serde(default = "default_address")]
    pub vdsm_address: String,
    /// Directory laid out like `/etc/pki/vdsm`.
    #[serde(default = "default_pki_dir")]
    pub vdsm_pki_dir: PathBuf,
    /// Longest wait for connecting and for each answer.
    #[serde(default = "Seconds::of::<DEFAULT_TIMEOUT_S>")]
    pub vdsm_timeout: Seconds,
}

fn default_address() -> String {
    DEFAULT_ADDRESS.to_string()
}

fn default_pki_dir() -> PathBuf {
    PathBuf::from(DEFAULT_PKI_DIR)
}

impl OptionSet for VdsmOptions {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let taken: VdsmOptions = take_group(options)?;
        taken.validate()?;
        Ok(taken)
    }
}

impl VdsmOptions {
    fn validate(&self) -> Result<(), OptionError> {
        let port = self
            .vdsm_address
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .map(|(_, port)| port);
        if !port.is_some_and(|port| port.parse::<u16>().is_ok_and(|p| p > 0)) {
            return Err(OptionError(format!(
                "option 'vdsm_address': expected host:port (like {DEFAULT_ADDRESS}), got '{}'",
                self.vdsm_address
            )));
        }
        if self.vdsm_timeout.is_zero() {
            return Err(OptionError(
                "option 'vdsm_timeout': must be more than 0 seconds".into(),
            ));
        }
        Ok(())
    }

    /// The endpoint these options name.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.vdsm_address.clone(),
            pki: PkiFiles::in_dir(&self.vdsm_pki_dir),
            timeout: self.vdsm_timeout.duration(),
        }
    }

    /// A client of that endpoint (it connects at its first call).
    pub fn client(&self) -> Vdsm {
        Vdsm::new(self.endpoint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn take(value: Value) -> Result<VdsmOptions, OptionError> {
        let Value::Object(mut map) = value else {
            unreachable!()
        };
        VdsmOptions::take(&mut map)
    }

    #[test]
    fn defaults_are_the_host_s_vdsm() {
        let endpoint = take(json!({"other": 1})).unwrap().endpoint();
        assert_eq!(endpoint.address, "localhost:54321");
        assert_eq!(
            endpoint.pki.key,
            PathBuf::from("/etc/pki/vdsm/keys/vdsmkey.pem")
        );
        assert_eq!(
            endpoint.pki.certificate,
            PathBuf::from("/etc/pki/vdsm/certs/vdsmcert.pem")
        );
        assert_eq!(
            endpoint.pki.ca,
            PathBuf::from("/etc/pki/vdsm/certs/cacert.pem")
        );
        assert_eq!(endpoint.timeout.as_secs(), 60);
    }

    #[test]
    fn a_bad_address_or_timeout_is_named() {
        for (address, _) in [
            ("localhost", ()),
            (":54321", ()),
            ("h:0", ()),
            ("h:99999", ()),
        ] {
            let error = take(json!({"vdsm_address": address})).unwrap_err();
            assert!(
                error.0.contains("vdsm_address") && error.0.contains(address),
                "{error}"
            );
        }
        let error = take(json!({"vdsm_timeout": 0})).unwrap_err();
        assert!(error.0.contains("vdsm_timeout"), "{error}");
    }
}
