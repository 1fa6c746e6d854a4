//! he_register_disk: after a restore, registers a disk the restored engine database does not
//! know (the backup disk, created after the engine backup was taken) once the DC and this host are up.
use anyhow::Context as _;
use he_modules::ansible::{self, exactly_one_of, take_rest, Context, Module};
use he_modules::ansible::{OptionError, OptionSet, Outcome, Seconds};
use he_modules::engine::disks;
use he_modules::engine::{
    readiness, storage_domains, wait, Connection, EngineError, EngineOptions,
};
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::HeConf;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    disk_id: Option<String>,
    name: Option<String>,
    storage_domain: Option<String>,
    #[serde(default = "he_modules::host::he_conf::default_path")]
    he_conf: PathBuf,
    #[serde(default = "Seconds::of::<1200>")]
    wait_timeout: Seconds,
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let options: Options = take_rest(options)?;
        exactly_one_of(&[
            ("disk_id", options.disk_id.is_some()),
            ("name", options.name.is_some()),
        ])?;
        Ok(options)
    }
}

struct HeRegisterDisk;

impl Module for HeRegisterDisk {
    const NAME: &'static str = "he_register_disk";
    const SECRET_OPTIONS: &'static [&'static str] = &["password"];
    type Options = ((EngineOptions, VdsmOptions), Options);

    fn run(
        context: &mut Context,
        ((engine, vdsm), options): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let settings = engine.settings()?;
        let he_conf = HeConf::load(&options.he_conf)?;
        let sd_id = he_conf.sd_id_or(options.storage_domain.as_deref())?;
        let hardware_uuid = (vdsm.client().hardware_uuid())
            .context("cannot read this host's hardware UUID from vdsm")?;
        let timeout = options.wait_timeout.duration();
        let wanted = options
            .disk_id
            .as_deref()
            .or(options.name.as_deref())
            .unwrap_or_default();
        let mut engine = Connection::open(&settings, context)?;

        let sd = storage_domains::get(&mut engine, &sd_id)?;
        let dc_id = sd.data_center_ids.first().cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "storage domain {} ({sd_id}) is not attached to a data center",
                sd.name
            )
        })?;
        // In check mode, one look instead of a wait: a plan must not block.
        let wait_for = if context.check_mode {
            Duration::ZERO
        } else {
            timeout
        };
        match readiness::wait_until_up(&mut engine, &dc_id, &hardware_uuid, wait_for) {
            Err(EngineError::Timeout { last, .. }) if context.check_mode => context.warn(format!(
                "not ready yet ({last}); a real run waits up to {} s",
                timeout.as_secs()
            )),
            other => other?,
        }

        let registered = match &options.disk_id {
            Some(id) => disks::get(&mut engine, id)?,
            None => disks::find_one_by_name(&mut engine, wanted)?,
        };
        if let Some(disk) = registered {
            let disk = match (disk.status.as_str(), context.check_mode) {
                ("ok", _) | (_, true) => disk,
                _ => disks::wait_until_ok(&mut engine, &disk.id, timeout)?,
            };
            return Ok(Outcome::changed(false)
                .msg(format!(
                    "disk {} ({}) is already registered",
                    disk.name, disk.id
                ))
                .with("disk", disk.summary())
                .diff(disk.summary(), disk.summary()));
        }
        let unregistered = disks::unregistered(&mut engine, &sd_id)?;
        let Some(found) = unregistered
            .iter()
            .find(|disk| disk.id == wanted || disk.is_called(wanted))
        else {
            let listed: Vec<String> = unregistered
                .iter()
                .map(|d| format!("{} ({})", d.name, d.id))
                .collect();
            anyhow::bail!(
                "disk '{wanted}' is neither registered in the engine nor among the unregistered disks of storage domain {} ({sd_id}); unregistered there: [{}]",
                sd.name,
                listed.join(", ")
            );
        };
        if context.check_mode {
            return Ok(Outcome::changed(true)
                .msg(format!("would register disk {} ({})", found.name, found.id))
                .with("disk", found.summary())
                .diff(Value::Null, found.summary()));
        }
        let registering = disks::register(&mut engine, &sd_id, &found.id)?;
        let disk = disks::wait_until_ok(&mut engine, &registering.id, timeout)
            .map_err(|error| wait::failed_after_change(error, "disk", registering.summary()))?;
        Ok(Outcome::changed(true)
            .msg(format!("registered disk {} ({})", disk.name, disk.id))
            .with("disk", disk.summary())
            .diff(Value::Null, disk.summary()))
    }
}

fn main() {
    ansible::run::<HeRegisterDisk>()
}
