//! he_boot_and_wait: boot the engine VM (optionally with an ISO) and follow it until the engine is healthy; or stop it.

use anyhow::{bail, Context as _};
use he_modules::ansible::Seconds;
use he_modules::ansible::{
    self, take_rest, Context, Failure, Module, OptionError, OptionSet, Outcome,
};
use he_modules::host::{he_conf::DEFAULT_HE_CONF, HeConf};
use he_modules::vm::boot::{self, BootPlan, BootRequest, BootSettings};
use he_modules::vm::markers::Awaited;
use he_modules::vm::state::{VmState, MIN_POLL_INTERVAL};
use he_modules::vm::stop::{self, StopSettings};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Wanted {
    Started,
    Stopped,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    state: Wanted,
    #[serde(default = "default_he_conf")]
    he_conf: PathBuf,
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
    #[serde(default = "Seconds::of::<600>")]
    shutdown_timeout: Seconds,
    #[serde(default = "Seconds::of::<120>")]
    poweroff_timeout: Seconds,
    #[serde(default = "Seconds::of::<5>")]
    poll_interval: Seconds,
    work_dir: Option<PathBuf>,
}

fn default_he_conf() -> PathBuf {
    PathBuf::from(DEFAULT_HE_CONF)
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_rest(options)
    }
}

struct HeBootAndWait;

impl Module for HeBootAndWait {
    const NAME: &'static str = "he_boot_and_wait";
    type Options = Options;

    fn run(context: &mut Context, options: Options) -> anyhow::Result<Outcome> {
        let conf = HeConf::load(&options.he_conf)?;
        let host_id = conf.host_id()?;
        let state = VmState::current(host_id).context("cannot read the engine VM status")?;
        tracing::info!("the engine VM is {state}");
        match options.state {
            Wanted::Started => started(context, options, &conf, host_id, state),
            Wanted::Stopped => stopped(context, &options, host_id, state),
        }
    }
}

fn started(
    context: &mut Context,
    options: Options,
    conf: &HeConf,
    host_id: u32,
    state: VmState,
) -> anyhow::Result<Outcome> {
    let work_dir = (options.work_dir.clone())
        .or_else(|| context.log_file.as_ref()?.parent().map(PathBuf::from));
    let request = BootRequest {
        vm_conf: options.vm_conf,
        vm_id: options.vm_id,
        cdrom: options.cdrom,
        channel: options.channel,
        wait_for: options.wait_for.into_iter().map(Into::into).collect(),
        health_url: options.health_url,
        health_timeout: options.health_timeout.duration(),
        health_interval: options.health_interval.duration(),
        copy_path: work_dir.map(|dir| dir.join(format!("{}.vm.conf", context.run_id))),
    };
    let plan = BootPlan::new(conf, request)?;
    let settings = BootSettings {
        stall_timeout: options.stall_timeout.duration(),
        start_timeout: options.start_timeout.duration(),
        poll_interval: options.poll_interval.duration().max(MIN_POLL_INTERVAL),
    };
    let nothing_seen = || {
        Outcome::changed(false)
            .with("markers", Vec::<String>::new())
            .with("lines", Vec::<String>::new())
    };
    if state.is_up() && !plan.boots_with_changes() {
        let healthy = match context.check_mode {
            true => None,
            false => plan.check_health(&settings, host_id)?,
        };
        return Ok(nothing_seen()
            .msg(format!("the engine VM is already {state}"))
            .with("vm_state", state.name())
            .with("health", healthy.map(|h| h.reply)));
    }
    if context.check_mode {
        if !matches!(state, VmState::Down { .. }) {
            context.warn(format!(
                "the engine VM is {state}: it must be down here to be started"
            ));
        }
        plan.check_inputs()
            .into_iter()
            .for_each(|w| context.warn(w));
        let mut outcome = nothing_seen().msg(format!("would {}", plan.describe()));
        outcome.changed = true;
        if let Some(copy) = plan.copy() {
            outcome =
                (outcome.with("vm_conf_copy", &copy.path)).diff(&copy.original, &copy.patched);
        }
        return Ok(outcome.with("vm_state", state.name()));
    }
    match state {
        VmState::Down { .. } | VmState::Unknown { .. } => {}
        VmState::Up { .. } => bail!(
            "the engine VM is {state}: stop it first (state: stopped) to {}",
            plan.describe()
        ),
        VmState::Elsewhere { .. } => bail!("the engine VM is {state}: stop it on that host first"),
    }
    let mut report = boot::boot(&plan, &settings, host_id);
    let data = report.return_values(&plan);
    let outcome = std::mem::replace(&mut report.outcome, Ok(None));
    let healthy = outcome.map_err(|error| Failure {
        msg: error.to_string(),
        changed: report.started,
        data: data.clone(),
    })?;
    let mut outcome = Outcome::changed(true).msg(report.summary(healthy.as_ref()));
    outcome.data = data;
    Ok(outcome.with("health", healthy.map(|h| h.reply)))
}

fn stopped(
    context: &mut Context,
    options: &Options,
    host_id: u32,
    state: VmState,
) -> anyhow::Result<Outcome> {
    match state {
        VmState::Up { .. } => {}
        VmState::Elsewhere { .. } => bail!("the engine VM is {state}: stop it on that host"),
        _ => {
            return Ok(Outcome::changed(false)
                .msg(format!(
                    "the engine VM is not running on this host: {state}"
                ))
                .with("vm_state", state.name()))
        }
    }
    if context.check_mode {
        return Ok(Outcome::changed(true)
            .msg("would shut the engine VM down (hosted-engine --vm-shutdown, --vm-poweroff after shutdown_timeout)")
            .with("vm_state", state.name()));
    }
    let settings = StopSettings {
        shutdown_timeout: options.shutdown_timeout.duration(),
        poweroff_timeout: options.poweroff_timeout.duration(),
        poll_interval: options.poll_interval.duration().max(MIN_POLL_INTERVAL),
    };
    let report = stop::stop(&settings, host_id)?;
    let how = if report.powered_off {
        let timeout_s = settings.shutdown_timeout.as_secs();
        context.warn(format!("the engine VM did not shut down within shutdown_timeout ({timeout_s} s): it was powered off"));
        "powered off"
    } else {
        "shut down"
    };
    Ok(Outcome::changed(true)
        .msg(format!("the engine VM was {how} in {} s", report.seconds))
        .with("vm_state", "down")
        .with("seconds", report.seconds)
        .with("powered_off", report.powered_off))
}

fn main() {
    ansible::run::<HeBootAndWait>()
}
