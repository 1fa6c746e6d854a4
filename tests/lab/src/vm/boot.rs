//! One life of the engine VM, from `VM.create` to Down: binds the channel, boots the disk
//! named in vm.conf, runs a cdrom NoCloud seed, runs the engine while up, and on the way down
//! stops the engine and keeps its database on the disk.

use crate::config::LabConfig;
use crate::engine::db::EngineDb;
use crate::guest::disk::GuestDisk;
use crate::guest::engine_state;
use crate::host::vm_conf;
use crate::state::{self, VmState};
use crate::vm::channel::Channel;
use crate::vm::{cloudinit, qemu_user, GuestSession};
use crate::{daemon, engine};
use anyhow::Context as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How the VM is asked to go down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// `VM.shutdown`: guest shuts down cleanly.
    Shutdown,
    /// `VM.destroy`: powered off.
    Destroy,
}

/// Control of a running VM shared with the daemon.
#[derive(Clone, Default)]
pub struct VmControl {
    /// Set to stop the VM.
    pub stopping: Arc<AtomicBool>,
    /// How it was stopped.
    pub stop_kind: Arc<Mutex<Option<StopKind>>>,
}

impl VmControl {
    /// Asks the VM to go down.
    pub fn stop(&self, kind: StopKind) {
        *self.stop_kind.lock().expect("stop lock") = Some(kind);
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// Updates the VM state file.
fn set_status(config: &LabConfig, update: impl FnOnce(&mut VmState)) {
    let mut vm = state::vm(config);
    update(&mut vm);
    vm.status_time_ms = engine::clock::now_ms();
    if let Err(error) = state::save_vm(config, &vm) {
        daemon::log(&format!("cannot record VM state: {error:#}"));
    }
}

/// Runs the VM until it is stopped or crashes; always ends with the VM Down.
pub fn run_vm(config: &LabConfig, vm_conf_path: &Path, control: &VmControl) {
    let outcome = life(config, vm_conf_path, control);
    let (code, message, reason) = match (&outcome, *control.stop_kind.lock().expect("stop lock")) {
        (Err(error), _) => {
            daemon::log(&format!("VM failed: {error:#}"));
            (1, format!("{error:#}"), 1)
        }
        (Ok(Exit::Crashed), _) => (1, "Lost connection with qemu process".to_string(), 2),
        (Ok(Exit::Stopped), Some(StopKind::Shutdown)) => {
            (0, "User shut down from within the guest".to_string(), 7)
        }
        (Ok(Exit::Stopped), _) => (0, "Admin shut down from the engine".to_string(), 6),
    };
    set_status(config, |vm| {
        vm.status = "Down".into();
        vm.booted = false;
        vm.started_at_ms = None;
        vm.exit_code = code;
        vm.exit_message = message;
        vm.exit_reason = reason;
        vm.engine_running = false;
    });
    daemon::log("VM is Down");
}

/// How a VM life ended.
enum Exit {
    Stopped,
    Crashed,
}

fn life(config: &LabConfig, vm_conf_path: &Path, control: &VmControl) -> anyhow::Result<Exit> {
    let conf = vm_conf::load(vm_conf_path)?;
    let vm_id = conf.vm_id().context("vm.conf has no vmId")?.to_string();
    let disk_ref = conf.disk().context("vm.conf has no disk device")?;
    anyhow::ensure!(
        disk_ref.domain_id == config.sd_id,
        "storage domain {} of the VM disk is not connected to this host",
        disk_ref.domain_id
    );
    // qemu opens the disk as the host sees it, through the storage domain's mount; the
    // emulated guest then reads the same bytes from the export.
    let disk_volume = config.volume_path(&disk_ref.image_id, &disk_ref.volume_id);
    let disk_path = config.on_host(&disk_volume);
    anyhow::ensure!(
        disk_path.exists(),
        "volume {} of image {} does not exist",
        disk_ref.volume_id,
        disk_ref.image_id
    );
    let channel_path = config
        .channels_dir()
        .join(format!("{vm_id}.org.ovirt.hosted-engine-setup.0"));
    if let Some(iso) = conf.cdrom_path() {
        // qemu opens every drive at start: a missing cdrom image stops the launch.
        anyhow::ensure!(
            iso.is_file(),
            "Cannot access storage file '{}': No such file or directory",
            iso.display()
        );
    }
    // ... as user qemu: a drive it may not open stops the launch as qemu reports it.
    let mut drives = vec![(disk_path.clone(), true)];
    drives.extend(conf.cdrom_path().map(|iso| (iso, false)));
    for (drive, writable) in drives {
        if let Err(message) = qemu_user::open_drive(&drive, writable) {
            anyhow::bail!("qemu-kvm: -drive file={}: {message}", drive.display());
        }
    }
    let channel = Channel::bind(&channel_path)?;
    daemon::log(&format!(
        "VM {vm_id} launched from {}",
        vm_conf_path.display()
    ));
    pause(control, 300);
    set_status(config, |vm| vm.status = "Powering up".into());
    if config.fault("vm_crash_on_boot") {
        pause(control, 1000);
        daemon::log("qemu exited during boot (fault vm_crash_on_boot)");
        return Ok(Exit::Crashed);
    }
    let guest = match GuestDisk::open(&disk_volume) {
        Ok(guest) => guest,
        Err(error) => {
            daemon::log(&format!("No bootable device: {error:#}"));
            set_status(config, |vm| {
                vm.status = "Up".into();
                vm.booted = true;
            });
            wait_for_stop(control);
            return Ok(Exit::Stopped);
        }
    };
    let session = GuestSession {
        config,
        disk: guest.clone(),
        channel: &channel,
        stopping: &control.stopping,
    };
    let installed = engine_state::installed(&guest)?;
    session.console(&format!(
        "booted {}",
        installed
            .as_ref()
            .map(|i| format!("{} with ovirt-engine {}", i.os_release, i.version))
            .unwrap_or_else(|| "a system without ovirt-engine".into())
    ));
    set_status(config, |vm| {
        vm.engine_version = installed.as_ref().map(|i| i.version.clone());
    });
    if let Some(iso) = conf.cdrom_path() {
        match cloudinit::read_seed(&iso) {
            Ok(Some(seed)) => {
                set_status(config, |vm| vm.status = "Up".into());
                if let Err(error) = cloudinit::run_seed(&session, &seed) {
                    session.console(&format!("cloud-init failed: {error:#}"));
                }
            }
            Ok(None) => session.console("cdrom holds no cidata seed"),
            Err(error) => session.console(&format!("cannot read the cdrom: {error:#}")),
        }
    }
    set_status(config, |vm| vm.status = "Up".into());
    if control.stopping.load(Ordering::SeqCst) {
        return Ok(Exit::Stopped);
    }
    let server = match guest_network(config, &guest) {
        Ok(()) => start_engine(config, &guest),
        Err(why) => {
            session.console(&format!(
                "eth0: {why}: the engine at {} is unreachable",
                config.site_network.engine_ip
            ));
            None
        }
    };
    set_status(config, |vm| vm.booted = true);
    wait_for_stop(control);
    if let Some(server) = server {
        server.stop();
        save_engine_db(config, &guest);
    }
    drop(channel);
    Ok(Exit::Stopped)
}

/// Whether the host reaches the guest at the engine's address, from the guest's ifcfg-eth0.
fn guest_network(config: &LabConfig, guest: &GuestDisk) -> Result<(), String> {
    let ifcfg = guest
        .read_text(crate::guest::tree::IFCFG_ETH0)
        .map_err(|error| format!("{error:#}"))?;
    let site = &config.site_network;
    site.reachable(site.guest_address(ifcfg.as_deref())?)
}

/// Starts the engine if the disk holds a set-up one, with the database the disk holds.
fn start_engine(config: &LabConfig, guest: &GuestDisk) -> Option<engine::EngineServer> {
    let installed = engine_state::installed(guest).ok().flatten()?;
    if !installed.set_up {
        daemon::log("the engine on this disk is not set up: engine not started");
        return None;
    }
    let db = match engine_state::read_db(guest) {
        Ok(Some(db)) => db,
        Ok(None) => {
            daemon::log("the engine has no database: engine not started");
            return None;
        }
        Err(error) => {
            daemon::log(&format!("cannot read the engine database: {error:#}"));
            return None;
        }
    };
    if let Err(error) = db.save(config) {
        daemon::log(&format!("cannot publish the engine database: {error:#}"));
        return None;
    }
    match engine::serve(config) {
        Ok(server) => {
            daemon::log(&format!(
                "engine {} up on {} (health {})",
                installed.version,
                config.engine_url(),
                config.health_url()
            ));
            set_status(config, |vm| {
                vm.engine_running = true;
                vm.engine_version = Some(installed.version.clone());
            });
            Some(server)
        }
        Err(error) => {
            daemon::log(&format!("engine failed to start: {error:#}"));
            None
        }
    }
}

/// Keeps the running engine's database on the disk (as PostgreSQL would).
fn save_engine_db(config: &LabConfig, guest: &GuestDisk) {
    let result = EngineDb::load(config).and_then(|db| engine_state::write_db(guest, &db));
    match result {
        Ok(true) => daemon::log("engine database saved on the engine disk"),
        Ok(false) => {}
        Err(error) => daemon::log(&format!("cannot save the engine database: {error:#}")),
    }
}

fn wait_for_stop(control: &VmControl) {
    while !control.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn pause(control: &VmControl, millis: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(millis);
    while std::time::Instant::now() < deadline && !control.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
