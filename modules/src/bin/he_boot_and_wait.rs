//! he_boot_and_wait: boot the engine VM (optionally with an ISO) and follow it until the engine is healthy; or stop it.

use anyhow::Context as _;
use he_modules::ansible::Seconds;
use he_modules::ansible::{
    self, take_rest, Context, Failure, Module, OptionError, OptionSet, Outcome,
};
use he_modules::host::HeConf;
use he_modules::vm::boot::{self, BootOptions, BootPlan};
use he_modules::vm::state::{VmState, MIN_POLL_INTERVAL};
use he_modules::vm::stop::{self, StopOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Wanted {
    Started,
    Stopped,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    state: Wanted,
    #[serde(default = "he_modules::host::he_conf::default_path")]
    he_conf: PathBuf,
    #[serde(default = "Seconds::of::<5>")]
    poll_interval: Seconds,
    work_dir: Option<PathBuf>,
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_rest(options)
    }
}

struct HeBootAndWait;

impl Module for HeBootAndWait {
    const NAME: &'static str = "he_boot_and_wait";
    type Options = (BootOptions, (StopOptions, Options));

    fn run(
        context: &mut Context,
        (boot, (stop, options)): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let conf = HeConf::load(&options.he_conf)?;
        let host_id = conf.host_id()?;
        let state = VmState::current(host_id).context("cannot read the engine VM status")?;
        tracing::info!("the engine VM is {state}");
        let poll_interval = options.poll_interval.duration().max(MIN_POLL_INTERVAL);
        match options.state {
            Wanted::Started => started(context, boot, &options, &conf, state),
            Wanted::Stopped if !stop::needed(&state)? => Ok(Outcome::changed(false)
                .msg(format!(
                    "the engine VM is not running on this host: {state}"
                ))
                .with("vm_state", state.name())),
            Wanted::Stopped if context.check_mode => Ok(Outcome::changed(true)
                .msg(format!("would {}", stop::DESCRIPTION))
                .with("vm_state", state.name())),
            Wanted::Stopped => {
                let settings = stop.settings(poll_interval);
                let report = stop::stop(&settings, host_id)?;
                report
                    .warning(&settings)
                    .into_iter()
                    .for_each(|w| context.warn(w));
                Ok(Outcome::changed(true)
                    .msg(report.summary())
                    .with("vm_state", "down")
                    .with("seconds", report.seconds)
                    .with("powered_off", report.powered_off))
            }
        }
    }
}

fn started(
    context: &mut Context,
    boot: BootOptions,
    options: &Options,
    conf: &HeConf,
    state: VmState,
) -> anyhow::Result<Outcome> {
    let host_id = conf.host_id()?;
    let settings = boot.settings(options.poll_interval.duration().max(MIN_POLL_INTERVAL));
    let work_dir =
        (options.work_dir.clone()).or_else(|| context.log_file.parent().map(PathBuf::from));
    let copy_path = work_dir.map(|dir| dir.join(format!("{}.vm.conf", context.run_id)));
    let plan = BootPlan::new(conf, boot.request(copy_path))?;
    let nothing_seen = |changed| {
        Outcome::changed(changed)
            .with("markers", Vec::<String>::new())
            .with("lines", Vec::<String>::new())
            .with("vm_state", state.name())
    };
    if state.is_up() && !plan.boots_with_changes() {
        let healthy = match context.check_mode {
            true => None,
            false => plan.check_health(&settings, host_id, &context.progress)?,
        };
        return Ok(nothing_seen(false)
            .msg(format!("the engine VM is already {state}"))
            .with("health", healthy.map(|h| h.reply)));
    }
    if context.check_mode {
        (plan.check_mode_warnings(&state).into_iter()).for_each(|w| context.warn(w));
        let outcome = nothing_seen(true).msg(format!("would {}", plan.describe()));
        return Ok(match plan.copy() {
            Some(copy) => {
                (outcome.with("vm_conf_copy", &copy.path)).diff(&copy.original, &copy.patched)
            }
            None => outcome,
        });
    }
    plan.check_state(&state)?;
    let booted =
        boot::boot(&plan, &settings, host_id, &context.progress).map_err(|failure| Failure {
            msg: failure.error.to_string(),
            changed: failure.what_happened.started,
            data: failure.what_happened.return_values(&plan),
        })?;
    let mut outcome = Outcome::changed(true).msg(booted.summary());
    outcome.data = booted.what_happened.return_values(&plan);
    Ok(outcome.with("health", booted.healthy.map(|h| h.reply)))
}

fn main() {
    ansible::run::<HeBootAndWait>()
}
