//! he_cloudinit: writes the NoCloud seed ISO that restores the engine backup on first boot.
use he_modules::ansible::{
    self, take_rest, Context, Module, OptionError, OptionSet, Outcome, Secret,
};
use he_modules::cloudinit::{self, IsoTool, Restore, Seed, SeedError, StaticNetwork};
use he_modules::privilege::{Access, HostIds};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    dest: PathBuf,
    vm_id: String,
    fqdn: String,
    organization: Option<String>,
    root_password: Option<Secret>,
    root_ssh_key: Option<String>,
    host_fqdn: Option<String>,
    host_ip: Option<String>,
    network: Option<StaticNetwork>,
    #[serde(default = "yes")]
    restore: bool,
    #[serde(default = "default_backup_path")]
    backup_path: String,
    #[serde(default)]
    dwh: bool,
    #[serde(default)]
    reports: bool,
    #[serde(default)]
    answers: Map<String, Value>,
    iso_tool: Option<IsoTool>,
}

fn yes() -> bool {
    true
}
fn default_backup_path() -> String {
    "/root/engine_backup.tar.gz".into()
}

impl OptionSet for Options {
    fn take(options: &mut Map<String, Value>) -> Result<Self, OptionError> {
        let options: Self = take_rest(options)?;
        if options.host_fqdn.is_some() != options.host_ip.is_some() {
            return Err(OptionError(
                "the options 'host_fqdn' and 'host_ip' go together: give both or neither".into(),
            ));
        }
        Ok(options)
    }
}

struct HeCloudinit;

impl Module for HeCloudinit {
    const NAME: &'static str = "he_cloudinit";
    const SECRET_OPTIONS: &'static [&'static str] = &["root_password"];
    type Options = (HostIds, Options);

    fn run(context: &mut Context, (ids, options): Self::Options) -> anyhow::Result<Outcome> {
        let seed = seed(&options)?;
        let documents = cloudinit::render(&seed);
        let user_data = cloudinit::mask_hashes(&documents.user_data);
        // Run as root, the ISO is given to qemu, the user the engine VM runs as (SPEC 6.6).
        let reader = Access::when_root(ids.vm_user());
        let before = cloudinit::existing_documents(&options.dest)
            .map(|d| shown(&d.meta_data, &cloudinit::mask_hashes(&d.user_data)));
        let after = shown(&documents.meta_data, &user_data);
        let tool = options.iso_tool.unwrap_or_else(IsoTool::detect);
        if tool == IsoTool::Genisoimage {
            context.warn("genisoimage writes the current time into the ISO: identical inputs give different bytes; install xorriso for reproducible images");
        }
        let (changed, sha256) = if context.check_mode {
            (
                cloudinit::would_change(&options.dest, &documents, reader.identity())?,
                Value::Null,
            )
        } else {
            let written = cloudinit::write(&options.dest, tool, &documents, reader.identity())?;
            (written.changed, json!(written.sha256))
        };
        let verb = match (changed, context.check_mode) {
            (false, _) => "is up to date",
            (true, true) => "would be written",
            (true, false) => "written",
        };
        Ok(Outcome::changed(changed)
            .msg(format!(
                "cloud-init seed ISO {} {verb} ({})",
                options.dest.display(),
                tool.program()
            ))
            .with("path", &options.dest)
            .with("sha256", sha256)
            .with("meta_data", &documents.meta_data)
            .with("user_data", &user_data)
            .diff(before.unwrap_or_default(), after))
    }
}

/// The seed inputs, checked; the password becomes its hash here and goes no further.
fn seed(options: &Options) -> Result<Seed, SeedError> {
    let organization =
        options
            .organization
            .clone()
            .unwrap_or_else(|| match options.fqdn.split_once('.') {
                Some((_, domain)) if !domain.is_empty() => domain.to_string(),
                _ => "Test".to_string(),
            });
    let seed = Seed {
        vm_id: options.vm_id.clone(),
        fqdn: options.fqdn.clone(),
        organization,
        root_password_hash: options.root_password.as_ref().map(|password| {
            cloudinit::sha512_crypt(password.expose(), &options.vm_id, &options.fqdn)
        }),
        root_ssh_key: options.root_ssh_key.clone(),
        host: options.host_fqdn.clone().zip(options.host_ip.clone()),
        network: options.network.clone(),
        restore: options.restore.then(|| Restore {
            backup_path: options.backup_path.clone(),
            dwh: options.dwh,
            reports: options.reports,
        }),
        answers: cloudinit::answers(&options.answers)?,
    };
    cloudinit::check(&seed)?;
    Ok(seed)
}

/// The seed as the operator sees it in a diff.
fn shown(meta_data: &str, user_data: &str) -> String {
    format!("# meta-data\n{meta_data}# user-data\n{user_data}")
}

fn main() {
    ansible::run::<HeCloudinit>()
}
