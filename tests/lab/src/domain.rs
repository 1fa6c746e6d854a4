//! The hosted-engine storage domain tree as vdsm creates it on NFS: `dom_md/` (metadata with
//! `_SHA_CKSUM`, ids, leases, inbox, outbox), `images/`, and the HA agent's `ha_agent/` links
//! to the metadata and lockspace volumes (host-formats.md section 3).

use crate::config::LabConfig;
use crate::engine::db::derived_uuid;
use crate::storage;
use anyhow::Context as _;
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;

/// Renders `dom_md/metadata` for a domain of format `version`, keys sorted, with the
/// `_SHA_CKSUM` vdsm's persistent dict computes (sha1 over the sorted `KEY=value` lines).
pub fn render_metadata(config: &LabConfig, version: u32) -> String {
    let mut keys = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        keys.insert(key.to_string(), value);
    };
    if version >= 5 {
        put("ALIGNMENT", "1048576".into());
        put("BLOCK_SIZE", "512".into());
    }
    put("CLASS", "Data".into());
    put("DESCRIPTION", "hosted_storage".into());
    put("IOOPTIMEOUTSEC", "10".into());
    put("LEASERETRIES", "3".into());
    put("LEASETIMESEC", "60".into());
    put("LOCKPOLICY", String::new());
    put("LOCKRENEWALINTERVALSEC", "5".into());
    put("POOL_UUID", config.sp_id.clone());
    put("REMOTE_PATH", config.sd_remote.clone());
    put("ROLE", "Regular".into());
    put("SDUUID", config.sd_id.clone());
    put("TYPE", "NFS".into());
    put("VERSION", version.to_string());
    let mut checksum = Sha1::new();
    for (key, value) in &keys {
        checksum.update(format!("{key}={value}").as_bytes());
    }
    let mut text: String = keys.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    text.push_str(&format!(
        "_SHA_CKSUM={}\n",
        hex::encode(checksum.finalize())
    ));
    text
}

/// Creates the domain directories, `dom_md` files, and the hosted-engine infrastructure
/// volumes (HA metadata, lockspace, configuration, two OVF_STOREs) with `ha_agent` links;
/// `created_at` is their CTIME.
pub fn create(config: &LabConfig, version: u32, created_at: u64) -> anyhow::Result<()> {
    let sd = config.sd_dir();
    let dom_md = sd.join("dom_md");
    std::fs::create_dir_all(&dom_md)
        .with_context(|| format!("cannot create {}", dom_md.display()))?;
    std::fs::create_dir_all(sd.join("images"))?;
    std::fs::create_dir_all(sd.join("ha_agent"))?;
    std::fs::write(dom_md.join("metadata"), render_metadata(config, version))?;
    for (name, size) in [
        ("ids", 1u64 << 20),
        ("leases", 2 << 20),
        ("inbox", 16 << 10),
        ("outbox", 16 << 10),
    ] {
        std::fs::File::create(dom_md.join(name))?.set_len(size)?;
    }
    if version >= 4 {
        std::fs::File::create(dom_md.join("xleases"))?.set_len(1 << 20)?;
    }
    let special = [
        ("metadata", "hosted-engine.metadata", "HEMD", 1u64 << 20),
        ("lockspace", "hosted-engine.lockspace", "HESD", 1 << 20),
        ("conf", "HostedEngineConfigurationImage", "HECI", 1 << 20),
        ("ovf1", "OVF_STORE", "OVFS", 1 << 20),
        ("ovf2", "OVF_STORE", "OVFS", 1 << 20),
    ];
    for (label, description, disk_type, size) in special {
        let image = derived_uuid(config.seed, &format!("image/{label}"));
        let volume = derived_uuid(config.seed, &format!("volume/{label}"));
        let json = if description == "OVF_STORE" {
            serde_json::json!({"Updated": true, "Size": 10240, "Last Updated": "Thu Nov 24 10:00:00 UTC 2026", "Storage Domains": [{"uuid": config.sd_id}], "Disk Description": "OVF_STORE"}).to_string()
        } else {
            serde_json::json!({"DiskAlias": description, "DiskDescription": description})
                .to_string()
        };
        let disk_type = if version >= 4 { disk_type } else { "2" };
        let path = storage::create_volume_at(
            config, &image, &volume, size, &json, disk_type, true, created_at,
        )?;
        if label == "metadata" || label == "lockspace" {
            let link = sd.join("ha_agent").join(format!("hosted-engine.{label}"));
            let _ = std::fs::remove_file(&link);
            // vdsm links to the volume as the host sees it, under the mount.
            std::os::unix::fs::symlink(config.on_host(&path), &link)
                .with_context(|| format!("cannot link {}", link.display()))?;
        }
    }
    storage::give_to_vdsm(&config.sd_export())?;
    // Only the NFS server (root, serving the mount) reaches the export directly.
    let server = config.dir.join("nfs-server");
    std::fs::set_permissions(&server, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    std::fs::create_dir_all(config.sd_mount())
        .with_context(|| format!("cannot create mount point {}", config.sd_mount().display()))?;
    storage::give_tree_to_vdsm(&sd)
}
