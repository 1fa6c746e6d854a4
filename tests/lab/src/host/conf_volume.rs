//! The hosted-engine configuration volume (`conf_image_UUID`/`conf_volume_UUID`) as the deploy
//! wrote it: a GNU tar archive of `version`, `fhanswers.conf`, `hosted-engine.conf`,
//! `broker.conf` and `vm.conf`, one 20480-byte record, written raw at the start of the volume.
//!
//! Sources: oVirt/ovirt-hosted-engine-ha `lib/heconflib.py` (`_create_temp_archive`, record
//! size 20480) and `env/constants.py.in` (`HEConfFiles`); the answers as each deploy wrote them:
//! the otopi deploy of 3.6 (ovirt-hosted-engine-setup 1.3/2.0: the `OVEHOSTED_*` environment,
//! sorted, cloud-init values `False` when unset; `vm/cloud_init.py` keeps the address as
//! `ip/prefix`) and the ansible deploy of 4.3 (ovirt-ansible-collection
//! `roles/hosted_engine_setup/templates/fhanswers.conf.j2`: the bare address, `none:None` unset).

use crate::config::LabConfig;
use crate::engine::db::derived_uuid;
use crate::host::{he_conf, vm_conf};
use crate::storage::BLANK_UUID;
use anyhow::Context as _;
use std::io::Write as _;

/// The archive's size: one record of `tar --record-size=20480`.
const RECORD_BYTES: usize = 20480;

/// `fhanswers.conf` of the deploy of the lab's old engine.
pub fn answers(config: &LabConfig) -> String {
    match crate::profile::major_minor(&config.old_engine.version).as_str() {
        "3.6" => otopi_answers(config),
        _ => ansible_answers(config),
    }
}

/// The 3.6 otopi deploy: every `OVEHOSTED_*` key, sorted.
fn otopi_answers(config: &LabConfig) -> String {
    let id = |label: &str| derived_uuid(config.seed, label);
    let site = &config.site_network;
    let domain = config.fqdn.split_once('.').map_or("", |(_, d)| d);
    let (cidr, dns) = match site.engine_static {
        true => (
            format!("str:{}/{}", site.engine_ip, site.prefix),
            format!("str:{}", site.dns),
        ),
        false => ("bool:False".to_string(), "bool:False".to_string()),
    };
    let mut lines = vec![
        "OVEHOSTED_CORE/confirmSettings=bool:True".to_string(),
        "OVEHOSTED_CORE/deployProceed=bool:True".into(),
        "OVEHOSTED_CORE/screenProceed=bool:True".into(),
        "OVEHOSTED_ENGINE/clusterName=str:Default".into(),
        "OVEHOSTED_NETWORK/bridgeIf=str:eth0".into(),
        "OVEHOSTED_NETWORK/bridgeName=str:ovirtmgmt".into(),
        "OVEHOSTED_NETWORK/firewallManager=str:iptables".into(),
        format!("OVEHOSTED_NETWORK/fqdn=str:{}", config.fqdn),
        format!("OVEHOSTED_NETWORK/gateway=str:{}", site.gateway),
        format!("OVEHOSTED_STORAGE/confImageUUID=str:{}", id("image/conf")),
        format!("OVEHOSTED_STORAGE/confVolUUID=str:{}", id("volume/conf")),
        "OVEHOSTED_STORAGE/domainType=str:nfs3".into(),
        format!("OVEHOSTED_STORAGE/imgUUID=str:{}", config.engine_image_id),
        format!("OVEHOSTED_STORAGE/sdUUID=str:{}", config.sd_id),
        format!("OVEHOSTED_STORAGE/spUUID=str:{BLANK_UUID}"),
        format!(
            "OVEHOSTED_STORAGE/storageDomainConnection=str:{}",
            config.sd_remote
        ),
        format!("OVEHOSTED_STORAGE/volUUID=str:{}", config.engine_volume_id),
        "OVEHOSTED_VDSM/consoleType=str:vnc".into(),
        format!("OVEHOSTED_VM/cloudinitInstanceDomainName=str:{domain}"),
        format!("OVEHOSTED_VM/cloudinitInstanceHostName=str:{}", config.fqdn),
        format!("OVEHOSTED_VM/cloudinitVMDNS={dns}"),
        "OVEHOSTED_VM/cloudinitVMETCHOSTS=bool:True".into(),
        format!("OVEHOSTED_VM/cloudinitVMStaticCIDR={cidr}"),
        format!("OVEHOSTED_VM/vmMACAddr=str:{}", vm_conf::engine_mac(config)),
        "OVEHOSTED_VM/vmMemSizeMB=int:4096".into(),
        format!("OVEHOSTED_VM/vmUUID=str:{}", config.vm_id),
        "OVEHOSTED_VM/vmVCpus=str:2".into(),
    ];
    lines.sort();
    format!("[environment:default]\n{}\n", lines.join("\n"))
}

/// The 4.3 ansible deploy: `fhanswers.conf.j2`, in its order.
fn ansible_answers(config: &LabConfig) -> String {
    let id = |label: &str| derived_uuid(config.seed, label);
    let site = &config.site_network;
    let domain = config.fqdn.split_once('.').map_or("", |(_, d)| d);
    let (address, dns) = match site.engine_static {
        true => (
            format!("str:{}", site.engine_ip),
            format!("str:{}", site.dns),
        ),
        false => ("none:None".to_string(), "none:None".to_string()),
    };
    let lines = [
        "OVEHOSTED_CORE/screenProceed=bool:True".to_string(),
        "OVEHOSTED_CORE/deployProceed=bool:True".into(),
        "OVEHOSTED_CORE/confirmSettings=bool:True".into(),
        format!("OVEHOSTED_NETWORK/fqdn=str:{}", config.fqdn),
        "OVEHOSTED_NETWORK/bridgeName=str:ovirtmgmt".into(),
        "OVEHOSTED_NETWORK/firewallManager=str:iptables".into(),
        format!("OVEHOSTED_NETWORK/gateway=str:{}", site.gateway),
        "OVEHOSTED_ENGINE/clusterName=str:Default".into(),
        "OVEHOSTED_STORAGE/storageDatacenterName=str:hosted_datacenter".into(),
        "OVEHOSTED_STORAGE/domainType=str:nfs".into(),
        "OVEHOSTED_STORAGE/connectionUUID=str:e29cf818-5ee5-46e1-85c1-8aeefa33e95d".into(),
        "OVEHOSTED_STORAGE/LunID=none:None".into(),
        "OVEHOSTED_STORAGE/imgSizeGB=str:51".into(),
        "OVEHOSTED_STORAGE/mntOptions=none:None".into(),
        "OVEHOSTED_STORAGE/iSCSIPortalIPAddress=none:None".into(),
        format!("OVEHOSTED_STORAGE/metadataVolumeUUID=str:{}", id("volume/metadata")),
        format!("OVEHOSTED_STORAGE/sdUUID=str:{}", config.sd_id),
        "OVEHOSTED_STORAGE/iSCSITargetName=none:None".into(),
        format!("OVEHOSTED_STORAGE/metadataImageUUID=str:{}", id("image/metadata")),
        format!("OVEHOSTED_STORAGE/lockspaceVolumeUUID=str:{}", id("volume/lockspace")),
        "OVEHOSTED_STORAGE/iSCSIPortalPort=none:None".into(),
        format!("OVEHOSTED_STORAGE/imgUUID=str:{}", config.engine_image_id),
        format!("OVEHOSTED_STORAGE/confImageUUID=str:{}", id("image/conf")),
        format!("OVEHOSTED_STORAGE/spUUID=str:{BLANK_UUID}"),
        format!("OVEHOSTED_STORAGE/lockspaceImageUUID=str:{}", id("image/lockspace")),
        "OVEHOSTED_ENGINE/enableHcGlusterService=none:None".into(),
        "OVEHOSTED_STORAGE/storageDomainName=str:hosted_storage".into(),
        "OVEHOSTED_STORAGE/iSCSIPortal=none:None".into(),
        format!("OVEHOSTED_STORAGE/volUUID=str:{}", config.engine_volume_id),
        "OVEHOSTED_STORAGE/vgUUID=none:None".into(),
        format!("OVEHOSTED_STORAGE/confVolUUID=str:{}", id("volume/conf")),
        format!("OVEHOSTED_STORAGE/storageDomainConnection=str:{}", config.sd_remote),
        "OVEHOSTED_STORAGE/iSCSIPortalUser=none:None".into(),
        "OVEHOSTED_VDSM/consoleType=str:vnc".into(),
        "OVEHOSTED_VM/vmMemSizeMB=int:4096".into(),
        format!("OVEHOSTED_VM/vmUUID=str:{}", config.vm_id),
        format!("OVEHOSTED_VM/vmMACAddr=str:{}", vm_conf::engine_mac(config)),
        "OVEHOSTED_VM/emulatedMachine=str:pc-i440fx-rhel7.6.0".into(),
        "OVEHOSTED_VM/vmVCpus=str:2".into(),
        "OVEHOSTED_VM/ovfArchive=str:/usr/share/ovirt-engine-appliance/ovirt-engine-appliance-4.3-20200317.1.el7.ova".into(),
        "OVEHOSTED_VM/vmCDRom=none:None".into(),
        "OVEHOSTED_VM/automateVMShutdown=bool:True".into(),
        "OVEHOSTED_VM/cloudInitISO=str:generate".into(),
        format!("OVEHOSTED_VM/cloudinitInstanceDomainName=str:{domain}"),
        format!("OVEHOSTED_VM/cloudinitInstanceHostName=str:{}", config.fqdn),
        "OVEHOSTED_VM/rootSshPubkey=none:None".into(),
        "OVEHOSTED_VM/cloudinitExecuteEngineSetup=bool:True".into(),
        format!("OVEHOSTED_VM/cloudinitVMStaticCIDR={address}"),
        "OVEHOSTED_VM/cloudinitVMTZ=none:None".into(),
        "OVEHOSTED_VM/rootSshAccess=str:yes".into(),
        "OVEHOSTED_VM/cloudinitVMETCHOSTS=bool:True".into(),
        format!("OVEHOSTED_VM/cloudinitVMDNS={dns}"),
        "OVEHOSTED_NOTIF/smtpPort=str:25".into(),
        "OVEHOSTED_NOTIF/smtpServer=str:localhost".into(),
        "OVEHOSTED_NOTIF/sourceEmail=str:root@localhost".into(),
        "OVEHOSTED_NOTIF/destEmail=str:root@localhost".into(),
    ];
    format!("[environment:default]\n{}\n", lines.join("\n"))
}

/// The HA package that wrote the archive (`version` member).
fn ha_version(config: &LabConfig) -> &'static str {
    match crate::profile::major_minor(&config.old_engine.version).as_str() {
        "3.6" => "1.3.5.8",
        _ => "2.3.6",
    }
}

/// The archive bytes: GNU tar members owned by vdsm:kvm, padded to one 20480-byte record.
pub fn archive(config: &LabConfig, created_at: u64) -> anyhow::Result<Vec<u8>> {
    let broker = "[email]\nsmtp-server = localhost\nsmtp-port = 25\nsource-email = root@localhost\n\
                  destination-emails = root@localhost\n\n[notify]\nstate_transition = maintenance|start|stop|migrate|up|down\n";
    let members = [
        ("version", format!("{}\n", ha_version(config))),
        ("fhanswers.conf", answers(config)),
        ("hosted-engine.conf", he_conf::render(config)),
        ("broker.conf", broker.to_string()),
        ("vm.conf", vm_conf::render(config)),
    ];
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(36);
        header.set_gid(36);
        header.set_username("vdsm")?;
        header.set_groupname("kvm")?;
        header.set_mtime(created_at);
        header.set_cksum();
        builder.append_data(&mut header, name, content.as_bytes())?;
    }
    let mut bytes = builder.into_inner()?;
    anyhow::ensure!(
        bytes.len() <= RECORD_BYTES,
        "configuration archive larger than one record"
    );
    bytes.resize(RECORD_BYTES, 0);
    Ok(bytes)
}

/// Writes the archive at the start of the lab's configuration volume (its size unchanged).
pub fn write(config: &LabConfig, created_at: u64) -> anyhow::Result<()> {
    let path = config.volume_path(
        &derived_uuid(config.seed, "image/conf"),
        &derived_uuid(config.seed, "volume/conf"),
    );
    let bytes = archive(config, created_at)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the configuration volume {}", path.display()))?;
    file.write_all(&bytes)
        .with_context(|| format!("cannot write the configuration volume {}", path.display()))
}
