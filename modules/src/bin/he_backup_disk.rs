//! he_backup_disk: creates (present), lists with the engine down (query) or deletes (absent)
//! the floating disk that holds a copy of the engine VM disk during an upgrade.
use anyhow::Context as _;
use he_modules::ansible::{self, at_most_one_of, take_rest, Context, Module};
use he_modules::ansible::{OptionError, OptionSet, Outcome, Seconds};
use he_modules::engine::backup_disk_states::{self, DiskToDelete, Present};
use he_modules::engine::backup_disks::{self, Size};
use he_modules::engine::disks::NewDisk;
use he_modules::engine::{Connection, EngineOptions};
use he_modules::host::he_conf::DEFAULT_HE_CONF;
use he_modules::host::{vdsm, HeConf};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    state: State,
    name: Option<String>,
    disk_id: Option<String>,
    size: Option<Size>,
    storage_domain: Option<String>,
    #[serde(default = "default_he_conf")]
    he_conf: PathBuf,
    #[serde(default = "Seconds::of::<3600>")]
    wait_timeout: Seconds,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Query,
    Absent,
}

fn default_he_conf() -> PathBuf {
    PathBuf::from(DEFAULT_HE_CONF)
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let options: Options = take_rest(options)?;
        at_most_one_of(&[
            ("name", options.name.is_some()),
            ("disk_id", options.disk_id.is_some()),
        ])?;
        if options.disk_id.is_some() && options.state != State::Absent {
            return Err(OptionError(
                "option 'disk_id' is only used with state=absent".into(),
            ));
        }
        if options.state == State::Absent && options.name.is_none() && options.disk_id.is_none() {
            return Err(OptionError("state=absent needs 'name' or 'disk_id'".into()));
        }
        Ok(options)
    }
}

struct HeBackupDisk;

impl Module for HeBackupDisk {
    const NAME: &'static str = "he_backup_disk";
    const SECRET_OPTIONS: &'static [&'static str] = &["password"];
    type Options = (EngineOptions, Options);

    fn run(context: &mut Context, (engine, options): Self::Options) -> anyhow::Result<Outcome> {
        let he_conf = HeConf::load(&options.he_conf)?;
        let sd_id = match &options.storage_domain {
            Some(id) => id.clone(),
            None => he_conf.sd_id()?.to_string(),
        };
        match options.state {
            State::Query => query(&he_conf, &sd_id, options.name.as_deref()),
            State::Present => present(context, &engine, &options, &he_conf, &sd_id),
            State::Absent => absent(context, &engine, &options, &he_conf),
        }
    }
}

/// Engine down is fine: everything comes from vdsm's volume metadata.
fn query(he_conf: &HeConf, sd_id: &str, name: Option<&str>) -> anyhow::Result<Outcome> {
    let mut found = backup_disks::list_from_vdsm(he_conf.sp_id(), sd_id)?;
    found.retain(|disk| name.is_none_or(|name| disk.name == name));
    Ok(Outcome::changed(false)
        .msg(format!(
            "{} backup disk(s) on storage domain {sd_id}",
            found.len()
        ))
        .with("disks", found))
}

fn present(
    context: &Context,
    engine: &EngineOptions,
    options: &Options,
    he_conf: &HeConf,
    sd_id: &str,
) -> anyhow::Result<Outcome> {
    let settings = engine.settings()?;
    let name = (options.name.clone()).unwrap_or_else(backup_disks::default_name);
    let size_bytes = match options.size {
        Some(Size(bytes)) => bytes,
        None => {
            vdsm::volume_info(he_conf.sp_id(), &he_conf.engine_disk()?)
                .context("cannot read the engine disk size from vdsm (give 'size' to skip this)")?
                .capacity_bytes
        }
    };
    let mut engine = Connection::open(&settings)?;
    let planned = NewDisk {
        name: name.clone(),
        size_bytes,
        sd_id: sd_id.to_string(),
    };
    let timeout = options.wait_timeout.duration();
    Ok(
        match backup_disk_states::present(
            &mut engine,
            planned,
            he_conf.sp_id(),
            timeout,
            context.check_mode,
        )? {
            Present::Exists(disk) => Outcome::changed(false)
                .msg(format!("backup disk {name} already exists ({})", disk.id))
                .with("disk", &disk)
                .diff(&disk, &disk),
            Present::WouldCreate { planned, sd_name } => Outcome::changed(true)
                .msg(format!(
                    "would create backup disk {name} of {size_bytes} bytes on {sd_name}"
                ))
                .with(
                    "disk",
                    json!({ "name": name, "size": size_bytes, "sd_id": sd_id }),
                )
                .diff(Value::Null, &planned),
            Present::Created(disk) => Outcome::changed(true)
                .msg(format!(
                    "created backup disk {name} ({}, {size_bytes} bytes)",
                    disk.id
                ))
                .with("disk", &disk)
                .diff(Value::Null, &disk),
        },
    )
}

fn absent(
    context: &Context,
    engine: &EngineOptions,
    options: &Options,
    he_conf: &HeConf,
) -> anyhow::Result<Outcome> {
    let settings = engine.settings()?;
    let engine_image = he_conf.engine_disk()?.image_id;
    let mut engine = Connection::open(&settings)?;
    let which = match (&options.disk_id, &options.name) {
        (Some(id), _) => Some(DiskToDelete::Id(id.clone())),
        (None, name) => name.clone().map(DiskToDelete::Name),
    };
    let deleted = match &which {
        Some(which) => {
            backup_disk_states::absent(&mut engine, which, &engine_image, context.check_mode)?
        }
        None => None,
    };
    let Some(disk) = deleted else {
        return Ok(Outcome::changed(false).msg("no such backup disk: nothing to delete"));
    };
    let verb = match context.check_mode {
        true => "would delete",
        false => "deleted",
    };
    Ok(Outcome::changed(true)
        .msg(format!("{verb} backup disk {} ({})", disk.name, disk.id))
        .with("disk", &disk)
        .diff(&disk, Value::Null))
}

fn main() {
    ansible::run::<HeBackupDisk>()
}
