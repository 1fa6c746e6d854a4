//! he_maintenance_facts: global maintenance, engine VM placement and engine disk ids of this host.

use anyhow::Context as _;
use he_modules::ansible::{self, take_rest, Context, Module, OptionError, OptionSet, Outcome};
use he_modules::facts::maintenance::MaintenanceFacts;
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::{he_conf::DEFAULT_HE_CONF, hosted_engine, HeConf};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_he_conf")]
    he_conf: PathBuf,
}

fn default_he_conf() -> PathBuf {
    PathBuf::from(DEFAULT_HE_CONF)
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_rest(options)
    }
}

struct HeMaintenanceFacts;

impl Module for HeMaintenanceFacts {
    const NAME: &'static str = "he_maintenance_facts";
    type Options = (VdsmOptions, Options);

    fn run(_context: &mut Context, (vdsm, options): Self::Options) -> anyhow::Result<Outcome> {
        let conf = HeConf::load(&options.he_conf)?;
        let status =
            hosted_engine::vm_status().context("cannot read the hosted-engine HA status")?;
        let hardware = vdsm
            .client()
            .hardware_info()
            .context("cannot read this host's hardware UUID from vdsm")?;
        let facts = MaintenanceFacts::gather(&status, &conf, hardware.system_uuid)?;
        tracing::info!("{}", facts.summary());
        Ok(Outcome::changed(false)
            .msg(facts.summary())
            .fact("he_maintenance", &facts))
    }
}

fn main() {
    ansible::run::<HeMaintenanceFacts>()
}
