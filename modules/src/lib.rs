//! he-upgrade modules: the library behind the collection's Ansible binary modules.
//!
//! Each binary under `src/bin/` is a thin story over these domains; nothing here knows about
//! the lab: modules reach the world only through host commands, storage files, the channel
//! socket and HTTPS to the engine, exactly as on a real hosted-engine host.

pub mod ansible;
pub mod attempt;
pub mod backup;
pub mod cloudinit;
pub mod engine;
pub mod facts;
pub mod guest;
pub mod host;
pub mod image;
pub mod privilege;
pub mod vm;
