//! he_upgrade_plan: the plan of an upgrade (steps to run and skip, with reasons) from the last
//! attempt's record, the appliance it installs, its version policy check, and for a rollback
//! which verified backup to restore. Reads only; returns the `he_upgrade_plan` fact.

use he_modules::ansible::{self, take_rest, Context, Module, OptionError, OptionSet, Outcome};
use he_modules::attempt::appliance_choice::{self, GivenOva};
use he_modules::attempt::policy::{CompatLevel, UpgradeVersions, VersionPolicy};
use he_modules::attempt::restore::{self, ListedDisk, Wanted};
use he_modules::attempt::{plan, AttemptRecord, Facts, Kind};
use he_modules::image::safety::{self, check_state_dir};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    kind: Kind,
    #[serde(default = "safety::default_state_dir")]
    state_dir: PathBuf,
    appliance_ova: Option<PathBuf>,
    appliance_sha1: Option<String>,
    appliance_version: Option<String>,
    #[serde(default = "default_appliance_desc_dir")]
    appliance_desc_dir: PathBuf,
    engine_version: Option<String>,
    backup_version: Option<String>,
    #[serde(default)]
    compat_levels: Vec<CompatLevel>,
    upgrade_paths: Option<Vec<(String, String)>>,
    accepted_levels: Option<BTreeMap<String, Vec<String>>>,
    backup_disks: Option<Vec<ListedDisk>>,
    backup_name: Option<String>,
    backup_place: Option<usize>,
    backup_checksum: Option<String>,
    confirm_unverified: Option<bool>,
}

fn default_appliance_desc_dir() -> PathBuf {
    PathBuf::from("/etc/ovirt-hosted-engine")
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let o: Options = take_rest(options)?;
        let missing = |what: &str| Err(OptionError(what.into()));
        if o.appliance_ova.is_some()
            && (o.appliance_sha1.is_none() || o.appliance_version.is_none())
        {
            return missing(
                "option 'appliance_ova' needs 'appliance_sha1' and 'appliance_version'",
            );
        }
        if o.engine_version.is_some() != o.backup_version.is_some() {
            return missing(
                "options 'engine_version' and 'backup_version' go together (the policy check)",
            );
        }
        if o.kind == Kind::Rollback && o.backup_disks.is_none() {
            return missing("kind rollback needs 'backup_disks' (he_backup_disk state=query)");
        }
        Ok(o)
    }
}

struct HeUpgradePlan;

impl Module for HeUpgradePlan {
    const NAME: &'static str = "he_upgrade_plan";
    type Options = (Facts, Options);

    fn run(_context: &mut Context, (facts, o): (Facts, Options)) -> anyhow::Result<Outcome> {
        check_state_dir(&o.state_dir)?;
        let fact = match o.kind {
            Kind::Upgrade => upgrade(&facts, o)?,
            Kind::Rollback => rollback(o)?,
        };
        let msg = (fact["lines"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; ");
        tracing::info!("{msg}");
        Ok(Outcome::changed(false)
            .msg(msg)
            .fact("he_upgrade_plan", fact))
    }
}

/// The upgrade's plan, its appliance and (given the versions) its policy check.
fn upgrade(facts: &Facts, o: Options) -> anyhow::Result<Value> {
    let record = AttemptRecord::load(&o.state_dir)?;
    let plan = plan(facts, record.as_ref());
    let given = o.appliance_ova.map(|path| GivenOva {
        path,
        sha1: o.appliance_sha1.unwrap_or_default(),
        version: o.appliance_version.unwrap_or_default(),
    });
    let appliance = match plan.finished {
        true => None,
        false => Some(appliance_choice::choose(given, &o.appliance_desc_dir)?),
    };
    if let (Some(engine), Some(backup), Some(chosen)) =
        (o.engine_version, o.backup_version, &appliance)
    {
        let versions = UpgradeVersions {
            engine,
            appliance: chosen.appliance.version.clone(),
            backup,
        };
        VersionPolicy::with(o.upgrade_paths, o.accepted_levels)
            .check(&versions, &o.compat_levels)?;
    }
    let mut fact = json!(plan);
    fact["run"] = json!(plan.run_map());
    fact["lines"] = json!(plan.lines());
    fact["appliance"] = json!(appliance);
    Ok(fact)
}

/// Which backup disk a rollback restores, and what proves it.
fn rollback(o: Options) -> anyhow::Result<Value> {
    let (records_dir, records) = restore::load_records(&o.state_dir);
    let chosen = restore::choose(
        o.backup_disks.as_deref().unwrap_or_default(),
        &Wanted::from_choice(o.backup_name, o.backup_place),
        &records,
        o.backup_checksum.as_deref(),
        o.confirm_unverified,
        &records_dir,
    )?;
    Ok(json!({"lines": chosen.lines(), "restore": chosen}))
}

fn main() {
    ansible::run::<HeUpgradePlan>()
}
