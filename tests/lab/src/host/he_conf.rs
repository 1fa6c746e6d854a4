//! `/etc/ovirt-hosted-engine/hosted-engine.conf` in the real key order (host-formats.md
//! section 2, legacy otopi template plus the 4.x additions), and reading it back.

use crate::config::LabConfig;
use crate::engine::db::derived_uuid;
use crate::storage::BLANK_UUID;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;

/// The literal connection UUID real deployments carry.
const CONNECTION_UUID: &str = "e29cf818-5ee5-46e1-85c1-8aeefa33e95d";

/// Renders hosted-engine.conf for the lab. `spUUID` is the blank UUID as on real 3.6+ hosts
/// ("to avoid triggering 3.5->3.6 upgrade code"); `conf=` points at the lab's vm.conf.
pub fn render(config: &LabConfig) -> String {
    let id = |label: &str| derived_uuid(config.seed, label);
    let organization = config
        .fqdn
        .split_once('.')
        .map(|(_, d)| d)
        .unwrap_or("Test");
    let lines = [
        ("fqdn", config.fqdn.clone()),
        ("vm_disk_id", config.engine_image_id.clone()),
        ("vm_disk_vol_id", config.engine_volume_id.clone()),
        ("vmid", config.vm_id.clone()),
        ("storage", config.sd_remote.clone()),
        ("nfs_version", "auto".into()),
        ("mnt_options", String::new()),
        ("conf", config.vm_conf_path().display().to_string()),
        ("host_id", config.host_id.to_string()),
        ("console", "vnc".into()),
        ("domainType", "nfs3".into()),
        ("spUUID", BLANK_UUID.into()),
        ("sdUUID", config.sd_id.clone()),
        ("connectionUUID", CONNECTION_UUID.into()),
        ("ca_cert", "/etc/pki/vdsm/libvirt-spice/ca-cert.pem".into()),
        (
            "ca_subject",
            format!(
                "\"C=EN, L=Test, O={organization}, CN={}\"",
                config.host_name
            ),
        ),
        ("vdsm_use_ssl", "true".into()),
        ("gateway", config.site_network.gateway.to_string()),
        ("bridge", "ovirtmgmt".into()),
        ("network_test", "dns".into()),
        ("tcp_t_address", String::new()),
        ("tcp_t_port", String::new()),
        ("metadata_volume_UUID", id("volume/metadata")),
        ("metadata_image_UUID", id("image/metadata")),
        ("lockspace_volume_UUID", id("volume/lockspace")),
        ("lockspace_image_UUID", id("image/lockspace")),
        ("conf_volume_UUID", id("volume/conf")),
        ("conf_image_UUID", id("image/conf")),
    ];
    let mut text: String = lines
        .iter()
        .map(|(key, value)| format!("{key}={value}\n"))
        .collect();
    text.push_str("\n# The following are used only for iSCSI storage\niqn=\nportal=\nuser=\npassword=\nport=\n");
    text
}

/// Parses `key=value` lines (comments and blanks skipped, shell-style quotes removed).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (key.trim().to_string(), unquoted.to_string())
        })
        .collect()
}

/// Reads and parses a hosted-engine.conf.
pub fn load(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse(&text))
}
