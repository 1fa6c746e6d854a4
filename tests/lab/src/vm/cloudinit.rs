//! cloud-init's NoCloud datasource in the guest: finds a `cidata` ISO on the cdrom (read with
//! isoinfo/xorriso, real ISO readers), then runs `write_files` and `runcmd` of a
//! `#cloud-config` user-data once per instance-id, unless cloud-init was masked. A
//! `network-interfaces` block in meta-data (Debian ENI, what ovirt-hosted-engine-setup's
//! `vm/cloud_init.py` writes) becomes the guest's `ifcfg-eth0`, as cloud-init's RHEL support
//! renders it (0.7.5: `distros/rhel.py` `_write_network`; 18.5+: NoCloud
//! `eni.convert_eni_data` then the sysconfig renderer). A `network-config` file is not read:
//! cloud-init 0.7.5 of the EL7 appliances ignores it.

use crate::guest::disk::run;
use crate::vm::shell::Shell;
use crate::vm::GuestSession;
use anyhow::Context as _;
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// A NoCloud seed read from an ISO.
#[derive(Debug, Clone)]
pub struct Seed {
    /// `meta-data` text.
    pub meta_data: String,
    /// `user-data` text.
    pub user_data: String,
}

/// Reads the NoCloud seed of `iso`; `None` when its volume id is not `cidata`.
pub fn read_seed(iso: &Path) -> anyhow::Result<Option<Seed>> {
    let info = run(Command::new("isoinfo").arg("-d").arg("-i").arg(iso))
        .with_context(|| format!("cannot read the cdrom image {}", iso.display()))?;
    let info = String::from_utf8_lossy(&info.stdout);
    let volume_id = info
        .lines()
        .find_map(|line| line.strip_prefix("Volume id:"))
        .map(str::trim)
        .unwrap_or_default();
    if !volume_id.eq_ignore_ascii_case("cidata") {
        return Ok(None);
    }
    let work = crate::vm::engine_backup::tempdir()?;
    let result = (|| {
        run(Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-extract", "/"])
            .arg(&work))
        .context("cannot extract the cdrom image (xorriso)")?;
        let read = |name: &str| std::fs::read_to_string(work.join(name)).unwrap_or_default();
        Ok(Some(Seed {
            meta_data: read("meta-data"),
            user_data: read("user-data"),
        }))
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The parts of `#cloud-config` the lab's guest carries out.
#[derive(Debug, Default, Deserialize)]
struct CloudConfig {
    #[serde(default)]
    write_files: Vec<WriteFile>,
    #[serde(default)]
    runcmd: Vec<serde_yaml::Value>,
}

/// One `write_files` entry.
#[derive(Debug, Deserialize)]
struct WriteFile {
    path: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    permissions: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

/// `instance-id` from meta-data.
fn instance_id(meta_data: &str) -> String {
    meta_data
        .lines()
        .find_map(|line| line.trim().strip_prefix("instance-id:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "iid-datasource-none".into())
}

/// Runs the seed in the guest (first boot of this instance-id only).
pub fn run_seed(session: &GuestSession, seed: &Seed) -> anyhow::Result<()> {
    if session
        .disk
        .exists("/etc/systemd/system/cloud-init.service")
    {
        session.console("cloud-init is masked: skipping the NoCloud seed");
        return Ok(());
    }
    let instance = instance_id(&seed.meta_data);
    let semaphore = format!("/var/lib/cloud/instances/{instance}/sem/config_scripts_user");
    if session.disk.exists(&semaphore) {
        session.console(&format!("cloud-init: instance {instance} already ran"));
        return Ok(());
    }
    session.console(&format!(
        "Cloud-init v. 0.7.5 running 'init' for instance {instance}"
    ));
    if let Some(ifcfg) = network_interfaces(&seed.meta_data)? {
        session
            .disk
            .write(crate::guest::tree::IFCFG_ETH0, ifcfg.as_bytes(), 0o644)
            .context("cannot write the network configuration")?;
        session.console(&format!(
            "cloud-init: applied network-interfaces to {}",
            crate::guest::tree::IFCFG_ETH0
        ));
    }
    anyhow::ensure!(
        seed.user_data.starts_with("#cloud-config"),
        "user-data is not #cloud-config"
    );
    let cloud: CloudConfig = serde_yaml::from_str::<Option<CloudConfig>>(&seed.user_data)
        .context("cloud-init cannot parse user-data")?
        .unwrap_or_default();
    for file in &cloud.write_files {
        let content = match file.encoding.as_deref() {
            Some("b64" | "base64") => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(file.content.trim())
                    .context("write_files: bad base64 content")?
            }
            _ => file.content.clone().into_bytes(),
        };
        let mode = file
            .permissions
            .as_deref()
            .and_then(|p| u32::from_str_radix(p.trim_start_matches("0o"), 8).ok())
            .unwrap_or(0o644);
        session
            .disk
            .write(&file.path, &content, mode)
            .with_context(|| format!("write_files: {}", file.path))?;
        session.console(&format!("cloud-init: wrote {}", file.path));
    }
    session.disk.write(&semaphore, b"", 0o644)?;
    let mut shell = Shell::new(session);
    for command in &cloud.runcmd {
        if session.is_stopping() {
            break;
        }
        let line = match command {
            serde_yaml::Value::String(line) => line.clone(),
            serde_yaml::Value::Sequence(words) => words
                .iter()
                .map(|w| match w {
                    serde_yaml::Value::String(s) => shell_quote(s),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => continue,
        };
        session.console(&format!("+ {line}"));
        let status = shell.run_line(&line);
        session.console(&format!("(exit status {status})"));
    }
    Ok(())
}

/// The `ifcfg-eth0` of the `network-interfaces` block of `meta_data`, if it has one.
fn network_interfaces(meta_data: &str) -> anyhow::Result<Option<String>> {
    let meta: serde_yaml::Value =
        serde_yaml::from_str(meta_data).context("cloud-init cannot parse meta-data")?;
    let Some(eni) = meta.get("network-interfaces").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let mut method = None;
    let mut options: Vec<(String, String)> = Vec::new();
    for line in eni.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["iface", "eth0", "inet", how] => method = Some(how.to_string()),
            ["iface", other, ..] => {
                anyhow::bail!("network-interfaces: the guest has no interface {other}")
            }
            [key, rest @ ..] if method.is_some() && !rest.is_empty() => {
                options.push((key.to_string(), rest.join(" ")))
            }
            _ => {}
        }
    }
    let get = |key: &str| {
        options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut ifcfg = String::from("DEVICE=\"eth0\"\nONBOOT=\"yes\"\n");
    match method.as_deref() {
        Some("dhcp") => ifcfg += "BOOTPROTO=\"dhcp\"\n",
        Some("static") => {
            ifcfg += "BOOTPROTO=\"static\"\n";
            for (key, name) in [
                ("address", "IPADDR"),
                ("netmask", "NETMASK"),
                ("broadcast", "BROADCAST"),
                ("gateway", "GATEWAY"),
            ] {
                if let Some(value) = get(key) {
                    ifcfg += &format!("{name}=\"{value}\"\n");
                }
            }
            for (index, server) in get("dns-nameservers")
                .unwrap_or_default()
                .split_whitespace()
                .enumerate()
            {
                ifcfg += &format!("DNS{}=\"{server}\"\n", index + 1);
            }
        }
        other => anyhow::bail!("network-interfaces: no usable 'iface eth0 inet' ({other:?})"),
    }
    Ok(Some(ifcfg))
}

/// Quotes a word for the guest shell.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
