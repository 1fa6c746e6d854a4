//! The engine VM emulator: boots what the engine disk holds, carries out a NoCloud
//! (`cidata`) seed's user-data (engine-backup restore, engine-setup), talks on the setup
//! channel, and runs the engine while the VM is up.

pub mod boot;
pub mod channel;
pub mod cloudinit;
pub mod engine_backup;
pub mod engine_setup;
pub mod qemu_user;
pub mod shell;

use crate::config::LabConfig;
use crate::guest::disk::GuestDisk;
use channel::Channel;
use std::sync::atomic::{AtomicBool, Ordering};

/// The guest path of the setup channel's device (what user-data redirects output to).
pub const CHANNEL_DEVICE: &str = "/dev/virtio-ports/org.ovirt.hosted-engine-setup.0";

/// A running guest: its disk, its channel, and whether the VM is being stopped.
pub struct GuestSession<'a> {
    /// The lab.
    pub config: &'a LabConfig,
    /// The root filesystem.
    pub disk: GuestDisk,
    /// The setup channel.
    pub channel: &'a Channel,
    /// Set when the VM is being shut down or destroyed.
    pub stopping: &'a AtomicBool,
}

impl GuestSession<'_> {
    /// Whether the VM is going away (long-running guest work should end).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Writes a line to the VM console (the daemon log).
    pub fn console(&self, line: &str) {
        crate::daemon::log(&format!("[guest] {line}"));
    }

    /// Sleeps `millis`, returning false early when the VM is stopping.
    pub fn pause(&self, millis: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(millis);
        while std::time::Instant::now() < deadline {
            if self.is_stopping() {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(millis.min(20)));
        }
        !self.is_stopping()
    }

    /// Blocks while fault `name` is on (a stalled guest process); false if the VM stops.
    pub fn stall_while(&self, name: &str) -> bool {
        while self.config.fault(name) {
            if !self.pause(200) {
                return false;
            }
        }
        !self.is_stopping()
    }
}
