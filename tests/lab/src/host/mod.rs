//! The hosted-engine host's configuration files: hosted-engine.conf and vm.conf.

pub mod he_conf;
pub mod vm_conf;
