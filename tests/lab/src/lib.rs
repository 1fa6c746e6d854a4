//! he-lab: a faithful simulation of one oVirt hosted-engine host and its engine VM.
//!
//! It provides, through the same interfaces a real host has, everything the collection's
//! modules touch: `hosted-engine` (and `vdsm-client` where the release has it) on PATH,
//! vdsm's JSON-RPC over STOMP on TLS, a file storage domain with
//! real volumes and vdsm metadata, the engine VM's setup channel socket, and the engine's
//! REST API over HTTPS. It shares no code with the modules crate, only the data formats
//! written down in shared/reference.

pub mod appliance;
pub mod backup;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod engine;
pub mod engine_vm_ssh;
pub mod guest;
pub mod host;
pub mod init;
pub mod inventory;
pub mod nfs_mount;
pub mod original_backup;
pub mod pgdump;
pub mod pki;
pub mod ports;
pub mod profile;
pub mod report;
pub mod shim;
pub mod site_network;
pub mod state;
pub mod storage;
pub mod vdsm;
pub mod vm;
