//! he_inject_backup: validates an engine-backup archive and uploads it into the engine disk.
use anyhow::Context as _;
use he_modules::ansible::{self, at_most_one_of, exactly_one_of, take_rest, Context, Failure};
use he_modules::ansible::{Module, OptionError, OptionSet, Outcome};
use he_modules::backup::{self, FreshnessOptions, Limits};
use he_modules::guest::{self, DiskFormat, Upload};
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::{he_conf::HeConf, he_conf::Volume};
use he_modules::privilege::{Access, HostIds};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    backup: PathBuf,
    disk: Option<PathBuf>,
    disk_volume: Option<Volume>,
    #[serde(default)]
    disk_format: DiskFormat,
    #[serde(default = "default_dest")]
    dest: String,
    #[serde(default)]
    validate_only: bool,
    #[serde(default = "he_modules::host::he_conf::default_path")]
    he_conf: PathBuf,
    target_version: Option<String>,
}

fn default_dest() -> String {
    "/root/engine_backup.tar.gz".into()
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let options: Self = take_rest(options)?;
        let disks = [
            ("disk", options.disk.is_some()),
            ("disk_volume", options.disk_volume.is_some()),
        ];
        match options.validate_only {
            true => at_most_one_of(&disks)?,
            false => exactly_one_of(&disks)?,
        }
        Ok(options)
    }
}

struct HeInjectBackup;

impl Module for HeInjectBackup {
    const NAME: &'static str = "he_inject_backup";
    type Options = (
        ((Limits, FreshnessOptions), VdsmOptions),
        (HostIds, Options),
    );

    fn run(
        context: &mut Context,
        (((limits, freshness), vdsm), (ids, options)): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let facts = backup::validate(&options.backup, &limits)?;
        if let Some(target) = &options.target_version {
            backup::check_restorable(&facts, target)?;
        }
        let (age_s, stale_warning) = freshness.judge_now(&options.backup, &facts)?;
        if let Some(warning) = stale_warning {
            context.warn(warning);
        }
        tracing::info!("backup {} is valid: {facts:?}", options.backup.display());
        let summary = format!(
            "engine-backup of {} ({} bytes, DWH: {}, Reports: {})",
            facts.engine_version, facts.size_bytes, facts.dwh, facts.reports
        );
        if options.validate_only {
            return Ok(Outcome::changed(false)
                .msg(format!("valid {summary}"))
                .with("backup", facts)
                .with("age_s", age_s));
        }
        let disk = match (&options.disk, &options.disk_volume) {
            (Some(path), _) => path.clone(),
            (None, Some(volume)) if context.check_mode => {
                PathBuf::from(format!("volume {}", volume.volume_id))
            }
            (None, volume) => {
                let volume = volume
                    .as_ref()
                    .context("one of the options 'disk', 'disk_volume' is required")?;
                vdsm.client()
                    .prepare_image(HeConf::load(&options.he_conf)?.sp_id(), volume)?
            }
        };
        let planned = json!({ "disk": disk, "dest": options.dest, "sha256": facts.sha256 });
        let upload = upload(&options, &disk, ids.storage_access());
        if context.check_mode {
            guest::check(&upload)?;
            return Ok(Outcome::changed(true)
                .msg(format!(
                    "would upload the valid {summary} to {} in {}",
                    options.dest,
                    disk.display()
                ))
                .with("backup", facts)
                .with("checksum", Value::Null)
                .diff(json!({ "disk": disk, "dest": options.dest }), planned));
        }
        if options.disk.is_some() {
            guest::check_disk(&disk)?;
        }
        let uploaded = guest::upload(&upload, &context.progress)?;
        (uploaded.check(&upload, &facts.sha256)).map_err(|error| Failure {
            msg: error.to_string(),
            changed: true,
            data: Map::new(),
        })?;
        let changed = uploaded.previous_sha256.as_deref() != Some(uploaded.sha256.as_str());
        let before =
            json!({ "disk": disk, "dest": options.dest, "sha256": uploaded.previous_sha256 });
        Ok(Outcome::changed(changed)
            .msg(format!(
                "uploaded the valid {summary} to {} in {} (read-back SHA-256 matches)",
                options.dest,
                disk.display()
            ))
            .with("backup", facts)
            .with("checksum", &uploaded.sha256)
            .diff(before, planned))
    }
}

fn upload(options: &Options, disk: &std::path::Path, access: Access) -> Upload {
    Upload {
        disk: disk.to_path_buf(),
        disk_format: options.disk_format,
        source: options.backup.clone(),
        dest: options.dest.clone(),
        access,
    }
}

fn main() {
    ansible::run::<HeInjectBackup>()
}
