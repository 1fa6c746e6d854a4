//! Host-side interfaces: the `hosted-engine` command, vdsm's JSON-RPC endpoint,
//! hosted-engine.conf.
//!
//! Commands are found on PATH and vdsm at its TLS port, exactly as on a real hosted-engine
//! host.

pub mod answers;
pub mod command;
pub mod conf_volume;
pub mod he_conf;
pub mod hosted_engine;
pub mod vdsm;
pub mod vm_status;

pub use he_conf::{HeConf, Volume, BLANK_UUID};
