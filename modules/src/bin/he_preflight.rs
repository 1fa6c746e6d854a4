//! he_preflight: before anything stops, checks every tool of the downtime, access to the
//! engine disk as the storage owner, the new image against the engine disk, the storage
//! domain's room for an extension, and qemu's way to the cloud-init ISO.
use he_modules::ansible::Outcome;
use he_modules::ansible::{self, take_rest, Context, Failure, Module, OptionError, OptionSet};
use he_modules::facts::preflight::{self, Check};
use he_modules::host::vdsm::options::VdsmOptions;
use he_modules::host::HeConf;
use he_modules::privilege::HostIds;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "he_modules::host::he_conf::default_path")]
    he_conf: PathBuf,
    image_size_bytes: Option<u64>,
    #[serde(default = "yes")]
    extend: bool,
    storage_domain_free_bytes: Option<u64>,
    #[serde(default)]
    reserve_backup_disk: bool,
    cloudinit_iso: Option<PathBuf>,
    #[serde(default = "yes")]
    guestfish_launch: bool,
}

fn yes() -> bool {
    true
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        take_rest(options)
    }
}

struct HePreflight;

impl Module for HePreflight {
    const NAME: &'static str = "he_preflight";
    type Options = ((VdsmOptions, HostIds), Options);

    fn run(
        _context: &mut Context,
        ((vdsm, ids), options): Self::Options,
    ) -> anyhow::Result<Outcome> {
        let vdsm = vdsm.client();
        let storage = ids.storage_access();
        let mut checks = vec![preflight::tool(
            "qemu-img",
            "qemu-img",
            &["--version"],
            &storage,
        )];
        let (guestfish, launch_seconds) = match options.guestfish_launch {
            true => preflight::guestfish_launch(&storage),
            false => (
                preflight::tool("guestfish", "guestfish", &["--version"], &storage),
                None,
            ),
        };
        checks.push(guestfish);
        checks.push(preflight::iso_tool());
        let conf = HeConf::load(&options.he_conf)?;
        let volume = conf.engine_disk()?;
        let engine_disk = vdsm
            .prepare_image(conf.sp_id(), &volume)
            .and_then(|path| Ok((path, vdsm.volume_info(conf.sp_id(), &volume)?)));
        let mut space = None;
        match &engine_disk {
            Err(error) => checks.push(Check {
                name: "vdsm".into(),
                ok: false,
                detail: format!(
                    "cannot prepare and read the engine disk {}: {error}",
                    volume.volume_id
                ),
            }),
            Ok((path, info)) => {
                checks.push(preflight::volume_access(
                    "engine disk access",
                    path,
                    &storage,
                ));
                if let Some(image_bytes) = options.image_size_bytes {
                    let reserve = match options.reserve_backup_disk {
                        true => info.capacity_bytes,
                        false => 0,
                    };
                    let planned = preflight::plan_space(
                        image_bytes,
                        info.capacity_bytes,
                        options.extend,
                        options.storage_domain_free_bytes,
                        reserve,
                    );
                    checks.push(Check {
                        name: "space".into(),
                        ok: planned.is_ok(),
                        detail: match &planned {
                            Ok(plan) => format!("{plan:?}"),
                            Err(why) => why.to_string(),
                        },
                    });
                    space = planned.ok();
                }
            }
        }
        if let Some(iso) = &options.cloudinit_iso {
            checks.push(preflight::iso_reachable(iso, &ids.vm_user()));
        }
        preflight::log(&checks);
        let facts = json!({
            "checks": checks,
            "guestfish_launch_seconds": launch_seconds,
            "engine_disk_path": engine_disk.as_ref().ok().map(|(path, _)| path),
            "engine_disk_bytes": engine_disk.as_ref().ok().map(|(_, info)| info.capacity_bytes),
            "space": space,
            "storage_access": storage.describe(),
        });
        if let Some(msg) = preflight::failures(&checks) {
            let mut data = Map::new();
            data.insert("ansible_facts".into(), json!({ "he_preflight": facts }));
            return Err(Failure {
                msg,
                changed: false,
                data,
            }
            .into());
        }
        Ok(Outcome::changed(false)
            .msg(format!("preflight passed: {} checks", checks.len()))
            .fact("he_preflight", facts))
    }
}

fn main() {
    ansible::run::<HePreflight>()
}
