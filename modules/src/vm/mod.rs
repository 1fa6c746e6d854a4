//! The engine VM at boot: the vm.conf copy with the ISO, the setup channel and its markers,
//! the VM's state on this host, and the engine's health page.

pub mod boot;
pub mod channel;
pub mod health;
pub mod markers;
pub mod state;
pub mod stop;
pub mod vm_conf;
pub mod watch;
