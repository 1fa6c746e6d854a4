//! he_backup_disk: creates (present), lists with the engine down (query) or deletes (absent)
//! the floating disk that holds a copy of the engine VM disk during an upgrade.
use anyhow::Context as _;
use he_modules::ansible::{self, Context, Module, Outcome};
use he_modules::engine::backup_disk_states::{self, BackupDiskOptions as Options};
use he_modules::engine::backup_disk_states::{DiskToDelete, State};
use he_modules::engine::backup_disks::{self, Size};
use he_modules::engine::disks::NewDisk;
use he_modules::engine::{Connection, EngineOptions};
use he_modules::host::vdsm::{options::VdsmOptions, Vdsm};
use he_modules::host::HeConf;
use serde_json::Value;

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
        let sd_id = he_conf.sd_id_or(options.storage_domain.as_deref())?;
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
    let name = (options.name.clone()).unwrap_or_else(backup_disks::default_name);
    let size_bytes = match options.size {
        Some(Size(bytes)) => bytes,
        None => {
            vdsm.volume_info(he_conf.sp_id(), &he_conf.engine_disk()?)
                .context("cannot read the engine disk size from vdsm (give 'size' to skip this)")?
                .capacity_bytes
        }
    };
    let mut engine = Connection::open(&settings, context)?;
    let planned = NewDisk {
        name: name.clone(),
        size_bytes,
        sd_id: sd_id.to_string(),
    };
    let timeout = options.wait_timeout.duration();
    let sp_id = he_conf.sp_id();
    let present = backup_disk_states::present(
        &mut engine,
        vdsm,
        planned,
        sp_id,
        timeout,
        context.check_mode,
    )?;
    let (before, after) = present.diff();
    Ok(Outcome::changed(present.changed())
        .msg(present.summary(&name, size_bytes))
        .with("disk", present.disk())
        .diff(before, after))
}

fn absent(
    context: &Context,
    engine: &EngineOptions,
    options: &Options,
    he_conf: &HeConf,
) -> anyhow::Result<Outcome> {
    let settings = engine.settings()?;
    let engine_image = he_conf.engine_disk()?.image_id;
    let mut engine = Connection::open(&settings, context)?;
    let which = match (&options.disk_id, &options.name) {
        (Some(id), _) => DiskToDelete::Id(id.clone()),
        (None, Some(name)) => DiskToDelete::Name(name.clone()),
        (None, None) => anyhow::bail!("state=absent needs 'name' or 'disk_id'"),
    };
    let deleted =
        backup_disk_states::absent(&mut engine, &which, &engine_image, context.check_mode)?;
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
