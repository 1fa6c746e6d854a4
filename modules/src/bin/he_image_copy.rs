//! he_image_copy: copies a disk image (path, vdsm volume or appliance OVA) byte-exactly onto
//! a path or volume (or only hashes it), with a checksum of it, guarding the engine disk.
use he_modules::ansible::{
    self, at_most_one_of, exactly_one_of, take_rest, Context, Module, OptionError, OptionSet,
    Outcome,
};
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::Volume;
use he_modules::image::appliance;
use he_modules::image::digest::Algorithm;
use he_modules::image::endpoint::Host;
use he_modules::image::job::{self, DestinationSpec, Request, SourceSpec};
use he_modules::image::safety;
use he_modules::privilege::HostIds;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    src: Option<PathBuf>,
    src_volume: Option<Volume>,
    src_ova: Option<PathBuf>,
    appliance_desc: Option<PathBuf>,
    sha1: Option<String>,
    stage_dir: Option<PathBuf>,
    dest: Option<PathBuf>,
    dest_volume: Option<Volume>,
    #[serde(default)]
    checksum: Algorithm,
    #[serde(default)]
    verify: bool,
    #[serde(default)]
    extend: bool,
    #[serde(default = "default_extend_timeout")]
    extend_timeout: u64,
    backup_checksum: Option<String>,
    #[serde(default)]
    unrecorded_backup: bool,
    he_conf: Option<PathBuf>,
    #[serde(default = "safety::default_state_dir")]
    state_dir: PathBuf,
}

fn default_extend_timeout() -> u64 {
    1800
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let o: Options = take_rest(options)?;
        exactly_one_of(&[
            ("src", o.src.is_some()),
            ("src_volume", o.src_volume.is_some()),
            ("src_ova", o.src_ova.is_some()),
            ("appliance_desc", o.appliance_desc.is_some()),
        ])?;
        let ova = o.src_ova.is_some() || o.appliance_desc.is_some();
        let destinations = [
            ("dest", o.dest.is_some()),
            ("dest_volume", o.dest_volume.is_some()),
        ];
        match ova && o.stage_dir.is_none() {
            true => exactly_one_of(&destinations)?,
            false => at_most_one_of(&destinations)?,
        }
        if o.sha1.is_some() && o.src_ova.is_none() {
            return Err(OptionError(
                "option 'sha1' goes with 'src_ova' (an appliance_desc names its own sha1sum)"
                    .into(),
            ));
        }
        if o.stage_dir.is_some() && !ova {
            return Err(OptionError(
                "option 'stage_dir' goes with 'src_ova' or 'appliance_desc'".into(),
            ));
        }
        if o.verify && o.checksum == Algorithm::None {
            return Err(OptionError(
                "option 'verify' needs a checksum: set 'checksum' to blake3, sha256 or sha1".into(),
            ));
        }
        Ok(o)
    }
}

struct HeImageCopy;
impl Module for HeImageCopy {
    const NAME: &'static str = "he_image_copy";
    type Options = ((VdsmOptions, HostIds), Options);

    fn run(context: &mut Context, ((vdsm, ids), o): Self::Options) -> anyhow::Result<Outcome> {
        safety::check_state_dir(&o.state_dir)?;
        let source = match (o.src, o.src_volume, o.src_ova, o.appliance_desc) {
            (Some(path), ..) => SourceSpec::Path(path),
            (_, Some(volume), ..) => SourceSpec::Volume(volume),
            (_, _, Some(path), _) => SourceSpec::Ova { path, sha1: o.sha1 },
            (.., Some(description)) => {
                let appliance = appliance::load(&description)?;
                tracing::info!("appliance {} {}", appliance.description, appliance.version);
                SourceSpec::Ova {
                    path: appliance.path,
                    sha1: Some(appliance.sha1sum),
                }
            }
            _ => anyhow::bail!(
                "one of the options 'src', 'src_volume', 'src_ova', 'appliance_desc' is required"
            ),
        };
        let destination = match (o.dest, o.dest_volume) {
            (Some(path), _) => Some(DestinationSpec::Path(path)),
            (_, Some(volume)) => Some(DestinationSpec::Volume(volume)),
            _ => None,
        };
        let request = Request {
            source,
            destination,
            stage_dir: o.stage_dir,
            algorithm: o.checksum,
            verify: o.verify,
            extend: o.extend,
            backup_checksum: o.backup_checksum,
            unrecorded_backup: o.unrecorded_backup,
            state_dir: o.state_dir,
            extend_timeout_s: o.extend_timeout,
            progress: context.progress.clone(),
        };
        let (host, warning) =
            Host::load(o.he_conf.as_deref(), vdsm.client(), ids.storage_access())?;
        if let Some(warning) = warning {
            context.warn(warning);
        }
        let report = job::run(&request, &host, context.check_mode)?;
        for warning in &report.warnings {
            context.warn(warning.clone());
        }
        let mut outcome =
            Outcome::changed(report.changed()).msg(report.summary(context.check_mode));
        outcome.data = report.return_values();
        let (before, after) = report.diff();
        Ok(outcome.diff(before, after))
    }
}

fn main() {
    ansible::run::<HeImageCopy>()
}
