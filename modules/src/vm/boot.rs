//! Booting the engine VM: the plan (vm.conf copy with the ISO, channel, health page, all
//! checked before anything runs), then `--vm-start`, the channel markers and the health page.

use super::channel::{self, Channel, ChannelTiming};
use super::health::{self, HealthError, HealthPoller, HealthTiming, Healthy};
use super::markers::Awaited;
use super::markers::{Marker, MarkerWaiter};
use super::state::VmState;
use super::vm_conf::{self, VmConf, VmConfError, DEFAULT_VM_CONF};
use super::watch::{self, BootLog, VmWatch, WatchError};
use crate::ansible::progress::Reporter;
use crate::ansible::{take_group, OptionError, OptionSet, Seconds};
use crate::host::he_conf::{is_uuid, HeConf, HeConfError};
use crate::host::hosted_engine::{self, HostedEngineError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest single health request (the original used 20 s).
const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest the channel reader blocks before the VM is looked at again.
const CHANNEL_POLL: Duration = Duration::from_secs(1);

/// What the caller asked for (module options, before defaults from hosted-engine.conf).
#[derive(Debug, Clone, Default)]
pub struct BootRequest {
    /// vm.conf to start from (default: hosted-engine.conf `conf`, then [`DEFAULT_VM_CONF`]).
    pub vm_conf: Option<PathBuf>,
    /// Engine VM id (default: hosted-engine.conf `vmid`); names the default channel.
    pub vm_id: Option<String>,
    /// ISO to attach as the cdrom.
    pub cdrom: Option<PathBuf>,
    /// Channel socket (default: libvirt's path for the VM id).
    pub channel: Option<PathBuf>,
    /// Markers to wait for, in order.
    pub wait_for: Vec<Marker>,
    /// Health page (default: `http://<fqdn>/ovirt-engine/services/health`).
    pub health_url: Option<String>,
    /// Health wait; zero skips the health check.
    pub health_timeout: Duration,
    /// Pause between health requests.
    pub health_interval: Duration,
    /// Where the vm.conf copy goes (needed with a cdrom).
    pub copy_path: Option<PathBuf>,
}

/// The vm.conf copy with the cdrom set.
#[derive(Debug, Clone)]
pub struct VmConfCopy {
    /// Where it is (or would be) written.
    pub path: PathBuf,
    /// The original text.
    pub original: String,
    /// The text of the copy.
    pub patched: String,
}

/// The boot options of `he_boot_and_wait` (`state: started`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootOptions {
    vm_conf: Option<PathBuf>,
    vm_id: Option<String>,
    cdrom: Option<PathBuf>,
    channel: Option<PathBuf>,
    #[serde(default)]
    wait_for: Vec<Awaited>,
    #[serde(default = "Seconds::of::<1800>")]
    stall_timeout: Seconds,
    #[serde(default = "Seconds::of::<120>")]
    start_timeout: Seconds,
    health_url: Option<String>,
    #[serde(default = "Seconds::of::<1200>")]
    health_timeout: Seconds,
    #[serde(default = "Seconds::of::<15>")]
    health_interval: Seconds,
}

impl OptionSet for BootOptions {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_group(options)
    }
}

impl BootOptions {
    /// The timing of a boot that asks the VM's state every `poll_interval`.
    pub fn settings(&self, poll_interval: Duration) -> BootSettings {
        BootSettings {
            stall_timeout: self.stall_timeout.duration(),
            start_timeout: self.start_timeout.duration(),
            poll_interval,
        }
    }

    /// The request, with the vm.conf copy at `copy_path`.
    pub fn request(self, copy_path: Option<PathBuf>) -> BootRequest {
        BootRequest {
            vm_conf: self.vm_conf,
            vm_id: self.vm_id,
            cdrom: self.cdrom,
            channel: self.channel,
            wait_for: self.wait_for.into_iter().map(Into::into).collect(),
            health_url: self.health_url,
            health_timeout: self.health_timeout.duration(),
            health_interval: self.health_interval.duration(),
            copy_path,
        }
    }
}

/// A request that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// hosted-engine.conf lacks what a default needs.
    #[error(transparent)]
    HeConf(#[from] HeConfError),
    /// vm.conf unreadable, without cdrom, or the copy not writable.
    #[error(transparent)]
    VmConf(#[from] VmConfError),
    /// Bad health URL.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// An option has an unusable value.
    #[error("option '{option}': {problem}")]
    BadOption {
        option: &'static str,
        problem: String,
    },
    /// `hosted-engine` failed.
    #[error("{action}: {error}")]
    HostedEngine {
        action: &'static str,
        error: HostedEngineError,
    },
    /// Following the boot failed.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The VM runs: it cannot be started.
    #[error("the engine VM is {state}: {advice}")]
    Running { state: VmState, advice: String },
}

/// Everything needed to boot, resolved and checked before anything runs.
#[derive(Debug)]
pub struct BootPlan {
    vm_conf: Option<PathBuf>,
    cdrom: Option<PathBuf>,
    copy: Option<VmConfCopy>,
    channel: PathBuf,
    wait_for: Vec<Marker>,
    health: Option<HealthPoller>,
}

impl BootPlan {
    /// Resolves defaults from hosted-engine.conf and prepares the vm.conf copy.
    pub fn new(conf: &HeConf, request: BootRequest) -> Result<Self, BootError> {
        let vm_conf = request
            .vm_conf
            .clone()
            .or_else(|| conf.vm_conf().map(PathBuf::from));
        let channel = match request.channel {
            Some(path) => path,
            None if request.wait_for.is_empty() => PathBuf::new(),
            None => channel::default_path(&vm_id(conf, request.vm_id.as_deref())?),
        };
        // qemu makes the socket when the VM starts: only something else in its place is wrong.
        refuse_other_kind("channel", &channel, "a socket", |kind| kind.is_socket())?;
        let copy = match &request.cdrom {
            None => None,
            Some(iso) => {
                let source = vm_conf
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_VM_CONF));
                let original = VmConf::load(&source)?;
                let patched = original.with_cdrom(iso)?;
                let path = request.copy_path.ok_or(BootError::BadOption {
                    option: "work_dir",
                    problem: "needed for the vm.conf copy (the run log directory is not available)"
                        .into(),
                })?;
                if let Some(dir) = path.parent() {
                    refuse_other_kind("work_dir", dir, "a directory", |kind| kind.is_dir())?;
                }
                Some(VmConfCopy {
                    path,
                    original: original.text().to_string(),
                    patched,
                })
            }
        };
        let health = if request.health_timeout.is_zero() {
            None
        } else {
            let url = match request.health_url {
                Some(url) => url,
                None => health::default_url(conf.fqdn()?),
            };
            let timing = HealthTiming {
                timeout: request.health_timeout,
                interval: request.health_interval,
                request_timeout: HEALTH_REQUEST_TIMEOUT
                    .min(request.health_timeout)
                    .max(Duration::from_secs(1)),
            };
            Some(HealthPoller::new(&url, timing)?)
        };
        Ok(Self {
            vm_conf: request.vm_conf,
            cdrom: request.cdrom,
            copy,
            channel,
            wait_for: request.wait_for,
            health,
        })
    }

    /// Whether this boot attaches an ISO or waits for markers (so a running VM will not do).
    pub fn boots_with_changes(&self) -> bool {
        self.cdrom.is_some() || !self.wait_for.is_empty()
    }

    /// The vm.conf copy, when a cdrom is attached.
    pub fn copy(&self) -> Option<&VmConfCopy> {
        self.copy.as_ref()
    }

    /// Problems that would stop a real run but may be fixed by then (check mode warnings):
    /// a VM in `state` that is not down, a missing cdrom.
    pub fn check_mode_warnings(&self, state: &VmState) -> Vec<String> {
        let not_down = match state {
            VmState::Down { .. } => None,
            _ => Some(format!(
                "the engine VM is {state}: it must be down here to be started"
            )),
        };
        let missing_cdrom = self.missing_cdrom().map(|error| error.to_string());
        not_down.into_iter().chain(missing_cdrom).collect()
    }

    /// Refuses to start a VM that runs, here or on another host.
    pub fn check_state(&self, state: &VmState) -> Result<(), BootError> {
        let advice = match state {
            VmState::Down { .. } | VmState::Unknown { .. } => return Ok(()),
            VmState::Up { .. } => format!("stop it first (state: stopped) to {}", self.describe()),
            VmState::Elsewhere { .. } => "stop it on that host first".to_string(),
        };
        Err(BootError::Running {
            state: state.clone(),
            advice,
        })
    }

    fn missing_cdrom(&self) -> Option<BootError> {
        let iso = self.cdrom.as_ref().filter(|iso| !iso.is_file())?;
        Some(BootError::BadOption {
            option: "cdrom",
            problem: format!("{} does not exist (or is not a file)", iso.display()),
        })
    }

    /// One sentence saying what the boot does.
    pub fn describe(&self) -> String {
        let mut text = match (&self.copy, &self.vm_conf) {
            (Some(copy), _) => format!(
                "start the engine VM with {} as cdrom (vm.conf copy {})",
                self.cdrom.as_deref().unwrap_or(Path::new("")).display(),
                copy.path.display()
            ),
            (None, Some(vm_conf)) => format!("start the engine VM from {}", vm_conf.display()),
            (None, None) => "start the engine VM".to_string(),
        };
        if !self.wait_for.is_empty() {
            let markers: Vec<&str> = self.wait_for.iter().map(|m| m.text()).collect();
            text.push_str(&format!(
                ", wait for {} on {}",
                markers.join(", "),
                self.channel.display()
            ));
        }
        if let Some(health) = &self.health {
            text.push_str(&format!(", wait for {} to say DB Up", health.url()));
        }
        text
    }

    /// Checks the health page of a VM already up here (nothing when health is off).
    pub fn check_health(
        &self,
        settings: &BootSettings,
        host_id: u32,
        progress: &Reporter,
    ) -> Result<Option<Healthy>, BootError> {
        let Some(poller) = &self.health else {
            return Ok(None);
        };
        let mut vm = watcher(settings, host_id).seen_up();
        Ok(Some(watch::wait_healthy(
            poller,
            &mut vm,
            &BootLog::default(),
            progress,
        )?))
    }
}

/// Timing of a boot.
#[derive(Debug, Clone, Copy)]
pub struct BootSettings {
    /// Silence on the channel that counts as a stall.
    pub stall_timeout: Duration,
    /// Time the VM has to show up in `--vm-status` after `--vm-start`.
    pub start_timeout: Duration,
    /// How often `--vm-status` is asked.
    pub poll_interval: Duration,
}

/// What a boot did, whether it succeeded or not.
#[derive(Debug)]
pub struct WhatHappened {
    /// Whether `--vm-start` ran.
    pub started: bool,
    /// Channel lines and markers.
    pub log: BootLog,
    /// Seconds since the start.
    pub seconds: f64,
    /// The VM state last seen (`up`, `down`, ...).
    pub vm_state: &'static str,
}

impl WhatHappened {
    /// The module's return keys: markers, lines, lines_total, seconds, vm_state, vm_conf_copy.
    pub fn return_values(&self, plan: &BootPlan) -> Map<String, Value> {
        let markers: Vec<&str> = self.log.markers.iter().map(|m| m.text()).collect();
        let copy = plan.copy().map(|c| c.path.display().to_string());
        let mut values = Map::new();
        values.insert("markers".into(), json!(markers));
        values.insert("lines".into(), json!(self.log.lines));
        values.insert("lines_total".into(), json!(self.log.lines_total));
        values.insert("seconds".into(), json!(self.seconds));
        values.insert("vm_state".into(), json!(self.vm_state));
        values.insert("vm_conf_copy".into(), json!(copy));
        values
    }
}

/// A boot that got where it was asked to.
#[derive(Debug)]
pub struct Booted {
    /// What it did.
    pub what_happened: WhatHappened,
    /// The health reply (none when health is off).
    pub healthy: Option<Healthy>,
}

impl Booted {
    /// One line: time, markers, what the health page said.
    pub fn summary(&self) -> String {
        let what = &self.what_happened;
        let mut text = format!("the engine VM is up after {} s", what.seconds);
        if !what.log.markers.is_empty() {
            let markers: Vec<&str> = what.log.markers.iter().map(|m| m.text()).collect();
            text.push_str(&format!("; appliance markers: {}", markers.join(", ")));
        }
        if let Some(healthy) = &self.healthy {
            text.push_str(&format!("; engine replied: {}", healthy.reply));
        }
        text
    }
}

/// A boot that failed: what it did before, and why.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BootFailure {
    /// What it did.
    pub what_happened: WhatHappened,
    /// Why it failed.
    pub error: BootError,
}

/// Writes the copy, starts the VM, follows the channel and waits for health.
pub fn boot(
    plan: &BootPlan,
    settings: &BootSettings,
    host_id: u32,
    progress: &Reporter,
) -> Result<Booted, Box<BootFailure>> {
    let began = Instant::now();
    let mut boot = Boot {
        vm: watcher(settings, host_id),
        log: BootLog::default(),
        started: false,
    };
    let outcome = boot.run(plan, settings, progress);
    let what_happened = WhatHappened {
        seconds: (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        vm_state: boot
            .vm
            .last_state()
            .map_or(if boot.started { "unknown" } else { "down" }, VmState::name),
        started: boot.started,
        log: boot.log,
    };
    match outcome {
        Ok(healthy) => Ok(Booted {
            what_happened,
            healthy,
        }),
        Err(error) => Err(Box::new(BootFailure {
            what_happened,
            error,
        })),
    }
}

/// One boot under way: the VM watched, what it said, whether it was started.
struct Boot<F> {
    vm: VmWatch<F>,
    log: BootLog,
    started: bool,
}

/// Refuses `path` (given as `option`) when it exists as something other than `wanted` or
/// cannot be looked at (a looping link); a missing one is made later.
fn refuse_other_kind(
    option: &'static str,
    path: &Path,
    wanted: &str,
    is_wanted: impl Fn(&std::fs::FileType) -> bool,
) -> Result<(), BootError> {
    let problem = match std::fs::metadata(path) {
        Ok(metadata) if is_wanted(&metadata.file_type()) => return Ok(()),
        Ok(_) => format!("{} exists and is not {wanted}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => format!("{} cannot be used: {e}", path.display()),
    };
    Err(BootError::BadOption { option, problem })
}

impl<F: FnMut() -> Result<VmState, HostedEngineError>> Boot<F> {
    fn run(
        &mut self,
        plan: &BootPlan,
        settings: &BootSettings,
        progress: &Reporter,
    ) -> Result<Option<Healthy>, BootError> {
        if let Some(error) = plan.missing_cdrom() {
            return Err(error);
        }
        let vm_conf = match &plan.copy {
            Some(copy) => {
                vm_conf::write_private_copy(&copy.path, &copy.patched)?;
                tracing::info!("wrote the vm.conf copy {}", copy.path.display());
                Some(copy.path.as_path())
            }
            None => plan.vm_conf.as_deref(),
        };
        let said = hosted_engine::vm_start(vm_conf).map_err(|error| BootError::HostedEngine {
            action: "hosted-engine --vm-start failed",
            error,
        })?;
        self.started = true;
        tracing::info!("hosted-engine --vm-start: {said}");
        if !plan.wait_for.is_empty() {
            let timing = ChannelTiming {
                stall_timeout: settings.stall_timeout,
                poll_interval: CHANNEL_POLL.min(settings.poll_interval),
            };
            let mut channel = Channel::new(&plan.channel, timing);
            let mut waiter = MarkerWaiter::new(plan.wait_for.clone());
            let (vm, log) = (&mut self.vm, &mut self.log);
            watch::follow_channel(&mut channel, &mut waiter, vm, log, progress)?;
        }
        match &plan.health {
            Some(poller) => {
                let healthy = watch::wait_healthy(poller, &mut self.vm, &self.log, progress)?;
                Ok(Some(healthy))
            }
            None => {
                self.vm.check(true, "checking the started VM", &self.log)?;
                Ok(None)
            }
        }
    }
}

fn watcher(
    settings: &BootSettings,
    host_id: u32,
) -> VmWatch<impl FnMut() -> Result<VmState, HostedEngineError>> {
    VmWatch::new(
        move || VmState::current(host_id),
        settings.poll_interval,
        settings.start_timeout,
    )
}

fn vm_id(conf: &HeConf, given: Option<&str>) -> Result<String, BootError> {
    match given {
        Some(id) if is_uuid(id) => Ok(id.to_string()),
        Some(id) => Err(BootError::BadOption {
            option: "vm_id",
            problem: format!("{id:?} is not a UUID"),
        }),
        None => Ok(conf.vm_id()?.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM_ID: &str = "4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3";

    /// hosted-engine.conf pointing at a vm.conf (one cdrom line, 4.1 format) in `dir`.
    fn host(dir: &Path) -> HeConf {
        let vm_conf = dir.join("vm.conf");
        std::fs::write(
            &vm_conf,
            "vmId=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3\ndevices={index:2,iface:ide,path:,device:cdrom,shared:false,type:disk}\n",
        )
        .unwrap();
        let text = format!(
            "fqdn=engine.example.com\nvmid={VM_ID}\nconf={}\nhost_id=1\n",
            vm_conf.display()
        );
        HeConf::parse(&dir.join("hosted-engine.conf"), &text)
    }

    fn request() -> BootRequest {
        BootRequest {
            cdrom: Some(PathBuf::from("/var/lib/he/seed.iso")),
            wait_for: vec![Marker::RestoreSuccess, Marker::SetupSuccess],
            health_timeout: Duration::from_secs(1200),
            health_interval: Duration::from_secs(15),
            copy_path: Some(PathBuf::from("/var/log/he/run.vm.conf")),
            ..BootRequest::default()
        }
    }

    #[test]
    fn defaults_come_from_hosted_engine_conf() {
        let dir = tempfile::tempdir().unwrap();
        let plan = BootPlan::new(&host(dir.path()), request()).unwrap();
        let description = plan.describe();
        assert!(
            description.contains(&format!(
                "on /var/lib/libvirt/qemu/channels/{VM_ID}.org.ovirt.hosted-engine-setup.0"
            )),
            "{description}"
        );
        assert!(
            description.contains("http://engine.example.com/ovirt-engine/services/health"),
            "{description}"
        );
        let copy = plan.copy().unwrap();
        assert_eq!(copy.path, Path::new("/var/log/he/run.vm.conf"));
        assert!(copy
            .patched
            .contains("path:/var/lib/he/seed.iso,device:cdrom"));
        assert!(plan.boots_with_changes());
        let down = VmState::Down {
            detail: "Down".into(),
        };
        assert_eq!(
            plan.check_mode_warnings(&down),
            vec!["option 'cdrom': /var/lib/he/seed.iso does not exist (or is not a file)"]
        );
    }

    #[test]
    fn a_zero_health_timeout_skips_the_health_page_and_needs_no_fqdn() {
        let dir = tempfile::tempdir().unwrap();
        let conf = HeConf::parse(&dir.path().join("he.conf"), "host_id=1\n");
        let plan = BootPlan::new(
            &conf,
            BootRequest {
                health_timeout: Duration::ZERO,
                ..BootRequest::default()
            },
        )
        .unwrap();
        assert_eq!(plan.describe(), "start the engine VM");
        assert!(!plan.boots_with_changes());
    }

    #[test]
    fn bad_requests_are_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let conf = host(dir.path());
        let no_dir = BootRequest {
            copy_path: None,
            ..request()
        };
        let err = BootPlan::new(&conf, no_dir).unwrap_err();
        assert!(err.to_string().starts_with("option 'work_dir'"), "{err}");
        let bad_id = BootRequest {
            vm_id: Some("../etc".into()),
            ..request()
        };
        let err = BootPlan::new(&conf, bad_id).unwrap_err();
        assert_eq!(err.to_string(), "option 'vm_id': \"../etc\" is not a UUID");
        let bad_url = BootRequest {
            health_url: Some("engine/health".into()),
            ..request()
        };
        let err = BootPlan::new(&conf, bad_url).unwrap_err();
        assert!(err.to_string().starts_with("option 'health_url'"), "{err}");
    }
}
