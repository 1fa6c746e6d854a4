//! he_backup_disk: creates (present), lists with the engine down (query) or deletes (absent)
//! the floating disk that holds a copy of the engine VM disk during an upgrade.
use anyhow::Context as _;
use he_modules::ansible::{self, at_most_one_of, take_rest, Context, Module};
use he_modules::ansible::{OptionError, OptionSet, Outcome, Seconds};
use he_modules::engine::backup_disks::{self, BackupDisk, Size};
use he_modules::engine::disks::{self, NewDisk};
use he_modules::engine::{storage_domains, wait, Connection, EngineOptions};
use he_modules::host::he_conf::DEFAULT_HE_CONF;
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::vdsm::Vdsm;
use he_modules::host::HeConf;
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
    type Options = ((EngineOptions, VdsmOptions), Options);

    fn run(
        context: &mut Context,
        ((engine, vdsm), options): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let he_conf = HeConf::load(&options.he_conf)?;
        let vdsm = vdsm.client();
        let sd_id = match &options.storage_domain {
            Some(id) => id.clone(),
            None => he_conf.sd_id()?.to_string(),
        };
        match options.state {
            State::Query => query(&vdsm, &he_conf, &sd_id, options.name.as_deref()),
            State::Present => present(context, &engine, &vdsm, &options, &he_conf, &sd_id),
            State::Absent => absent(context, &engine, &options, &he_conf),
        }
    }
}

/// Engine down is fine: everything comes from vdsm's volume metadata.
fn query(
    vdsm: &Vdsm,
    he_conf: &HeConf,
    sd_id: &str,
    name: Option<&str>,
) -> anyhow::Result<Outcome> {
    let mut found = backup_disks::list_from_vdsm(vdsm, he_conf.sp_id(), sd_id)?;
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
    vdsm: &Vdsm,
    options: &Options,
    he_conf: &HeConf,
    sd_id: &str,
) -> anyhow::Result<Outcome> {
    let settings = engine.settings()?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(backup_disks::default_name);
    let size_bytes = match options.size {
        Some(Size(bytes)) => bytes,
        None => {
            vdsm.volume_info(he_conf.sp_id(), &he_conf.engine_disk()?)
                .context("cannot read the engine disk size from vdsm (give 'size' to skip this)")?
                .capacity_bytes
        }
    };
    let timeout = options.wait_timeout.duration();
    let mut engine = Connection::open(&settings)?;

    if let Some(existing) = disks::find_one_by_name(&mut engine, &name)? {
        let disk = match (existing.status.as_str(), context.check_mode) {
            ("ok", _) | (_, true) => existing,
            _ => disks::wait_until_ok(&mut engine, &existing.id, timeout)?,
        };
        let disk = reported(vdsm, &disk, he_conf.sp_id());
        return Ok(Outcome::changed(false)
            .msg(format!("backup disk {name} already exists ({})", disk.id))
            .with("disk", &disk)
            .diff(&disk, &disk));
    }
    let sd = storage_domains::get(&mut engine, sd_id)?;
    backup_disks::check_space(&sd, size_bytes)?;
    let planned = NewDisk {
        name: name.clone(),
        size_bytes,
        sd_id: sd_id.to_string(),
    };
    if context.check_mode {
        return Ok(Outcome::changed(true)
            .msg(format!(
                "would create backup disk {name} of {size_bytes} bytes on {}",
                sd.name
            ))
            .with(
                "disk",
                json!({ "name": name, "size": size_bytes, "sd_id": sd_id }),
            )
            .diff(Value::Null, &planned));
    }
    let creating = disks::create(&mut engine, &planned)?;
    tracing::info!(disk_id = %creating.id, "backup disk {name} created; waiting for it to be ok");
    let disk = disks::wait_until_ok(&mut engine, &creating.id, timeout).map_err(|error| {
        wait::failed_after_change(
            error,
            "disk",
            json!(BackupDisk::from_engine(&creating, None)),
        )
    })?;
    let disk = reported(vdsm, &disk, he_conf.sp_id());
    Ok(Outcome::changed(true)
        .msg(format!(
            "created backup disk {name} ({}, {size_bytes} bytes)",
            disk.id
        ))
        .with("disk", &disk)
        .diff(Value::Null, &disk))
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
    let found = match (&options.disk_id, &options.name) {
        (Some(id), _) => disks::get(&mut engine, id)?,
        (None, Some(name)) => disks::find_one_by_name(&mut engine, name)?,
        (None, None) => None,
    };
    let Some(disk) = found else {
        return Ok(Outcome::changed(false).msg("no such backup disk: nothing to delete"));
    };
    backup_disks::check_deletable(&disk, &engine_image).map_err(anyhow::Error::msg)?;
    let report = BackupDisk::from_engine(&disk, None);
    if !context.check_mode {
        disks::delete(&mut engine, &disk.id)?;
    }
    let verb = if context.check_mode {
        "would delete"
    } else {
        "deleted"
    };
    Ok(Outcome::changed(true)
        .msg(format!(
            "{verb} backup disk {} ({})",
            report.name, report.id
        ))
        .with("disk", &report)
        .diff(&report, Value::Null))
}

/// The engine's disk as this module reports it, with vdsm's creation time.
fn reported(vdsm: &Vdsm, disk: &disks::Disk, sp_id: &str) -> BackupDisk {
    let mut report = BackupDisk::from_engine(disk, None);
    report.created = backup_disks::creation_time(vdsm, sp_id, &report.volume());
    report
}

fn main() {
    ansible::run::<HeBackupDisk>()
}
