//! The hosted-engine host's configuration files: hosted-engine.conf and vm.conf, and their
//! copy on the shared storage's configuration volume.

pub mod conf_volume;
pub mod he_conf;
pub mod vm_conf;
