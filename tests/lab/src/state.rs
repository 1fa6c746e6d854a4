//! The host's runtime state files under `DIR/state`: the engine VM as vdsm reports it
//! (`vm.json`), the HA agent's maintenance modes (`ha.json`) and the fault switches.

use crate::config::LabConfig;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The engine VM as vdsm sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VmState {
    /// vdsm status string: `Down`, `WaitForLaunch`, `Powering up`, `Up`, `Powering down`.
    pub status: String,
    /// When the status last changed (epoch ms).
    pub status_time_ms: u64,
    /// When the VM was started (epoch ms), if it runs.
    pub started_at_ms: Option<u64>,
    /// Exit details of a Down VM (vdsm `exitCode`, `exitMessage`, `exitReason`).
    pub exit_code: i32,
    pub exit_message: String,
    pub exit_reason: i32,
    /// The vm.conf it was started from.
    pub vm_conf: Option<String>,
    /// Engine version the guest runs (set once booted), and whether its engine serves.
    pub engine_version: Option<String>,
    pub engine_running: bool,
    /// Whether the guest finished booting (first-boot work done, engine started if any).
    #[serde(default)]
    pub booted: bool,
}

impl Default for VmState {
    fn default() -> Self {
        VmState {
            status: "Down".into(),
            status_time_ms: crate::engine::clock::now_ms(),
            started_at_ms: None,
            exit_code: 0,
            exit_message: "VM has not been started".into(),
            exit_reason: 0,
            vm_conf: None,
            engine_version: None,
            engine_running: false,
            booted: false,
        }
    }
}

impl VmState {
    /// Whether the VM process exists (any status but Down).
    pub fn exists(&self) -> bool {
        self.status != "Down"
    }

    /// `up` or `down`, as `he-lab status` reports it.
    pub fn summary(&self) -> &'static str {
        if self.exists() {
            "up"
        } else {
            "down"
        }
    }
}

/// HA agent state: maintenance modes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HaState {
    /// Global maintenance (the shared metadata's `maintenance=1`).
    pub global_maintenance: bool,
    /// This host's local maintenance (ha.conf `local_maintenance`).
    pub local_maintenance: bool,
}

/// Reads a JSON state file, or the default when it is missing or unreadable.
fn read_or_default<T: for<'a> Deserialize<'a> + Default>(path: &Path) -> T {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Writes a JSON state file atomically.
fn write_atomic<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, serde_json::to_string_pretty(value)?)?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The VM state now (Down when the daemon that ran it is gone).
pub fn vm(config: &LabConfig) -> VmState {
    let mut vm: VmState = read_or_default(&config.vm_state_path());
    if vm.exists() && !daemon_alive(config) {
        vm.status = "Down".into();
        vm.engine_running = false;
        vm.booted = false;
        vm.exit_code = 1;
        vm.exit_message = "VM lost: the host daemon is not running".into();
    }
    vm
}

/// Whether the process in `state/daemon.pid` runs (exists and is not a zombie).
pub fn daemon_alive(config: &LabConfig) -> bool {
    let Some(pid) = std::fs::read_to_string(config.pid_path())
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    else {
        return false;
    };
    // `/proc/<pid>/stat` is `pid (comm) STATE ...`; a killed, unreaped daemon is `Z`.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(after != 'Z' && after != 'X')
        })
        .unwrap_or(false)
}

/// Records the VM state.
pub fn save_vm(config: &LabConfig, vm: &VmState) -> anyhow::Result<()> {
    write_atomic(&config.vm_state_path(), vm)
}

/// The HA state now.
pub fn ha(config: &LabConfig) -> HaState {
    read_or_default(&config.ha_state_path())
}

/// Records the HA state.
pub fn save_ha(config: &LabConfig, ha: &HaState) -> anyhow::Result<()> {
    write_atomic(&config.ha_state_path(), ha)
}

/// Every fault name the lab knows (engine-side and host-side).
pub const FAULTS: &[&str] = &[
    "not_global_maintenance",
    "vm_on_other_host",
    "not_spm",
    "sd_low_space",
    "api_flaky",
    "api_slow",
    "disk_create_stuck",
    "restore_fail",
    "setup_fail",
    "setup_stall",
    "never_healthy",
    "vm_crash_on_boot",
    "dc_down_after_restore",
];

/// Switches fault `name` on or off in `state/faults.json`.
pub fn set_fault(config: &LabConfig, name: &str, on: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        FAULTS.contains(&name),
        "unknown fault '{name}': expected one of {}",
        FAULTS.join(", ")
    );
    let mut faults = config.faults();
    faults.retain(|fault| fault != name);
    if on {
        faults.push(name.to_string());
    }
    faults.sort();
    write_atomic(&config.faults_path(), &faults)
}

/// The post-init runtime state: VM down, global maintenance on (the upgrade's
/// precondition), no faults, no tasks.
pub fn reset_runtime(config: &LabConfig) -> anyhow::Result<()> {
    save_vm(config, &VmState::default())?;
    save_ha(
        config,
        &HaState {
            global_maintenance: true,
            local_maintenance: false,
        },
    )?;
    write_atomic(&config.faults_path(), &Vec::<String>::new())?;
    let tasks = config.tasks_dir();
    let _ = std::fs::remove_dir_all(&tasks);
    std::fs::create_dir_all(&tasks)?;
    Ok(())
}
