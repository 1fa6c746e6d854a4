//! he_maintenance_facts: global maintenance, engine VM placement and engine disk ids of this
//! host, and the engine VM network the deploy stored on the shared storage.

use anyhow::Context as _;
use he_modules::ansible::{self, take_rest, Context, Module, OptionError, OptionSet, Outcome};
use he_modules::facts::engine_network;
use he_modules::facts::maintenance::MaintenanceFacts;
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::{hosted_engine, HeConf};
use he_modules::privilege::HostIds;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "he_modules::host::he_conf::default_path")]
    he_conf: PathBuf,
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_rest(options)
    }
}

struct HeMaintenanceFacts;

impl Module for HeMaintenanceFacts {
    const NAME: &'static str = "he_maintenance_facts";
    type Options = ((VdsmOptions, HostIds), Options);

    fn run(
        context: &mut Context,
        ((vdsm, ids), options): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let conf = HeConf::load(&options.he_conf)?;
        let status =
            hosted_engine::vm_status().context("cannot read the hosted-engine HA status")?;
        let vdsm = vdsm.client();
        let hardware_uuid =
            (vdsm.hardware_uuid()).context("cannot read this host's hardware UUID from vdsm")?;
        let facts = MaintenanceFacts::gather(&status, &conf, hardware_uuid)?;
        tracing::info!("{}", facts.summary());
        let this_host = status
            .hosts
            .iter()
            .find(|h| h.host_id == facts.local_host_id);
        let network = engine_network::gather(
            &vdsm,
            &ids.storage_access(),
            &conf,
            this_host.map(|host| host.hostname.as_str()),
        )
        .context("cannot tell the engine VM network from the answers on the shared storage")?;
        match &network {
            Some(network) => tracing::info!("engine VM network: {} ({})", network.mode, network.source),
            None => context.warn("hosted-engine.conf names no configuration volume (a host deployed before 3.6): the engine VM network is unknown and the new engine VM will use DHCP"),
        }
        Ok(Outcome::changed(false)
            .msg(facts.summary())
            .fact("he_maintenance", &facts)
            .fact("he_engine_network", &network))
    }
}

fn main() {
    ansible::run::<HeMaintenanceFacts>()
}
