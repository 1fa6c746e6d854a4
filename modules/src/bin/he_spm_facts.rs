//! he_spm_facts: what the engine says about this hosted-engine host: its CA, who is SPM,
//! engine and compatibility versions, hosted-engine storage space and AAA domains.
use anyhow::Context as _;
use he_modules::ansible::{self, take_rest, Context, Module, OptionError, OptionSet, Outcome};
use he_modules::engine::hosts::{self, Host};
use he_modules::engine::{ca, clusters, datacenters, domains, storage_domains};
use he_modules::engine::{Connection, EngineOptions};
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::HeConf;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    ca_dest: Option<PathBuf>,
    #[serde(default = "he_modules::host::he_conf::default_path")]
    he_conf: PathBuf,
    #[serde(default)]
    require_spm: bool,
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_rest(options)
    }
}

struct HeSpmFacts;

impl Module for HeSpmFacts {
    const NAME: &'static str = "he_spm_facts";
    const SECRET_OPTIONS: &'static [&'static str] = &["password"];
    type Options = ((EngineOptions, VdsmOptions), Options);

    fn run(
        context: &mut Context,
        ((engine, vdsm), options): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let settings = engine.settings()?;
        if let Some(path) = &options.ca_dest {
            ca::check_dest(path)?;
        }
        let he_conf = HeConf::load(&options.he_conf)?;
        let sd_id = he_conf.sd_id()?.to_string();
        let hardware_uuid = (vdsm.client().hardware_uuid())
            .context("cannot read this host's hardware UUID from vdsm")?;

        let mut engine = Connection::open(&settings, context)?;
        let all_hosts = hosts::list(&mut engine)?;
        let this_host = hosts::by_hardware_uuid(&all_hosts, &hardware_uuid);
        let spm_host = hosts::spm(&all_hosts);
        match this_host {
            None => context.warn(format!(
                "the engine has no host with this host's hardware UUID {hardware_uuid}"
            )),
            Some(host) if options.require_spm && !host.is_spm => {
                anyhow::bail!(not_spm_message(host, spm_host))
            }
            Some(_) => {}
        }
        let storage_domain = storage_domains::get(&mut engine, &sd_id)?;

        let ca_path = options.ca_dest.as_deref();
        let ca_changed = ca_path.is_some_and(|path| !engine.ca().is_stored_at(path));
        if let (true, false, Some(path)) = (ca_changed, context.check_mode, ca_path) {
            engine.ca().write_pem(path).with_context(|| {
                format!(
                    "option 'ca_dest': cannot write the engine CA to {}",
                    path.display()
                )
            })?;
        }
        let is_spm = this_host.is_some_and(|host| host.is_spm);
        let facts = json!({
            "is_spm": is_spm,
            "spm_host": spm_host.map(|host| host.name.clone()),
            "host_id": this_host.map(|host| host.id.clone()),
            "host_name": this_host.map(|host| host.name.clone()),
            "hardware_uuid": hardware_uuid,
            "engine_version": engine.product().full_version,
            "engine_release": engine.product().version,
            "api_version": engine.version(),
            "datacenters": datacenters::list(&mut engine)?,
            "clusters": clusters::list(&mut engine)?,
            "storage_domain": storage_domain,
            "ca": {
                "subject": engine.ca().subject,
                "issuer": engine.ca().issuer,
                "sha1": engine.ca().sha1,
                "sha256": engine.ca().sha256,
                "shown": engine.ca().shown(),
                "first_contact_pin": engine.first_contact_pin(),
                "pem_path": ca_path,
            },
            "aaa_domains": domains::list(&mut engine)?,
        });
        let msg = format!(
            "engine {} (API v{}); SPM: {}; engine CA: {}",
            engine.product().full_version,
            engine.version().number(),
            spm_host.map_or("none", |host| host.name.as_str()),
            engine.ca().shown()
        );
        let before = ca_path.map(|path| json!({ "ca_dest": path, "written": !ca_changed }));
        let after = ca_path.map(|path| json!({ "ca_dest": path, "written": true }));
        Ok(Outcome::changed(ca_changed || engine.first_contact_pin())
            .msg(msg)
            .fact("he_spm", facts)
            .diff(before, after))
    }
}

/// The original tool's advice (SPEC 9.1), naming both hosts.
fn not_spm_message(this_host: &Host, spm_host: Option<&Host>) -> String {
    let spm = match spm_host {
        Some(spm) => format!("the SPM is {}", spm.name),
        None => "no host is SPM at the moment".to_string(),
    };
    format!(
        "This host ({}) is not the SPM one ({spm}): please select it as the SPM from the engine or run this on the SPM host",
        this_host.name
    )
}

fn main() {
    ansible::run::<HeSpmFacts>()
}
