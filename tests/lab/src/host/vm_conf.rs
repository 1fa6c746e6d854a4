//! The engine VM definition `vm.conf` (original-tool.md section 5): `key=value` lines and
//! `devices={k:v,...}` lines; rendering the lab's and parsing any.

use crate::config::LabConfig;
use crate::engine::db::derived_uuid;
use crate::storage::BLANK_UUID;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The engine VM's MAC address (oVirt's `00:16:3e` range).
pub fn engine_mac(config: &LabConfig) -> String {
    let mac_seed = derived_uuid(config.seed, "nic/mac");
    format!(
        "00:16:3e:{}:{}:{}",
        &mac_seed[0..2],
        &mac_seed[2..4],
        &mac_seed[4..6]
    )
}

/// Renders the lab's vm.conf: cdrom with an empty `path:,`, the engine disk, nic, console.
pub fn render(config: &LabConfig) -> String {
    let id = |label: &str| derived_uuid(config.seed, label);
    let mac = engine_mac(config);
    let lines = [
        format!("vmId={}", config.vm_id),
        "memSize=4096".into(),
        "display=vnc".into(),
        format!(
            "devices={{index:2,iface:ide,address:{{ controller:0, target:0,unit:0, bus:1, type:drive}},specParams:{{}},readonly:true,deviceId:{},path:,device:cdrom,shared:false,type:disk}}",
            id("device/cdrom")
        ),
        format!(
            "devices={{index:0,iface:virtio,format:raw,poolID:{BLANK_UUID},volumeID:{},imageID:{},specParams:{{}},readonly:false,domainID:{},optional:false,deviceId:{},address:{{bus:0x00, slot:0x06, domain:0x0000, type:pci, function:0x0}},device:disk,shared:exclusive,propagateErrors:off,type:disk,bootOrder:1}}",
            config.engine_volume_id, config.engine_image_id, config.sd_id, config.engine_image_id
        ),
        "devices={device:scsi,model:virtio-scsi,type:controller}".into(),
        format!(
            "devices={{nicModel:pv,macAddr:{mac},linkActive:true,network:ovirtmgmt,filter:vdsm-no-mac-spoofing,specParams:{{}},deviceId:{},address:{{bus:0x00, slot:0x03, domain:0x0000, type:pci, function:0x0}},device:bridge,type:interface}}",
            id("device/nic")
        ),
        format!(
            "devices={{device:console,specParams:{{}},type:console,deviceId:{},alias:console0}}",
            id("device/console")
        ),
        "vmName=HostedEngine".into(),
        "spiceSecureChannels=smain,sdisplay,sinputs,scursor,splayback,srecord,ssmartcard,susbredir".into(),
        "smp=2".into(),
        "maxVCpus=2".into(),
        "cpuType=Conroe".into(),
        "emulatedMachine=pc".into(),
    ];
    lines.join("\n") + "\n"
}

/// A parsed vm.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmConf {
    /// Plain `key=value` settings.
    pub settings: BTreeMap<String, String>,
    /// Each `devices=` line as its top-level `key:value` pairs (nested values kept raw).
    pub devices: Vec<BTreeMap<String, String>>,
}

/// The engine disk a vm.conf boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRef {
    /// Storage domain, image, volume and pool ids.
    pub domain_id: String,
    pub image_id: String,
    pub volume_id: String,
    pub pool_id: String,
}

impl VmConf {
    /// `vmId`.
    pub fn vm_id(&self) -> Option<&str> {
        self.settings.get("vmId").map(String::as_str)
    }

    /// The first `device:disk` device.
    pub fn disk(&self) -> Option<DiskRef> {
        let disk = self
            .devices
            .iter()
            .find(|d| d.get("device").map(String::as_str) == Some("disk"))?;
        let field = |key: &str| disk.get(key).cloned().unwrap_or_default();
        Some(DiskRef {
            domain_id: field("domainID"),
            image_id: field("imageID"),
            volume_id: field("volumeID"),
            pool_id: field("poolID"),
        })
    }

    /// The cdrom's `path:` (None without a cdrom device, empty path as None too).
    pub fn cdrom_path(&self) -> Option<PathBuf> {
        self.devices
            .iter()
            .find(|d| d.get("device").map(String::as_str) == Some("cdrom"))
            .and_then(|d| d.get("path"))
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    }
}

/// Parses vm.conf text.
pub fn parse(text: &str) -> VmConf {
    let mut conf = VmConf::default();
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key == "devices" {
            conf.devices.push(parse_device(value));
        } else {
            conf.settings.insert(key.to_string(), value.to_string());
        }
    }
    conf
}

/// Reads and parses a vm.conf file.
pub fn load(path: &Path) -> anyhow::Result<VmConf> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read VM configuration {}", path.display()))?;
    Ok(parse(&text))
}

/// Splits `{a:1,b:{c:2, d:3},e:x}` into top-level pairs (a=1, b={c:2, d:3}, e=x).
fn parse_device(value: &str) -> BTreeMap<String, String> {
    let inner = value
        .trim()
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(value);
    let mut pairs = BTreeMap::new();
    let mut depth = 0;
    let mut start = 0;
    let bytes = inner.as_bytes();
    for index in 0..=bytes.len() {
        let at_end = index == bytes.len();
        let byte = if at_end { b',' } else { bytes[index] };
        match byte {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                let item = &inner[start..index];
                if let Some((key, value)) = item.split_once(':') {
                    pairs.insert(key.trim().to_string(), value.trim().to_string());
                }
                start = index + 1;
            }
            _ => {}
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_with_nested_values() {
        let conf = parse(
            "vmId=abc\ndevices={index:2,iface:ide,address:{ controller:0, target:0,unit:0, bus:1, type:drive},specParams:{},readonly:true,deviceId:d,path:/tmp/seed.iso,device:cdrom,shared:false,type:disk}\n\
             devices={index:0,poolID:p,volumeID:v,imageID:i,domainID:s,address:{bus:0x00, slot:0x06},device:disk,type:disk}\n",
        );
        assert_eq!(conf.vm_id(), Some("abc"));
        assert_eq!(conf.cdrom_path(), Some(PathBuf::from("/tmp/seed.iso")));
        let disk = conf.disk().unwrap();
        assert_eq!(
            (
                disk.domain_id.as_str(),
                disk.image_id.as_str(),
                disk.volume_id.as_str()
            ),
            ("s", "i", "v")
        );
    }

    #[test]
    fn empty_cdrom_path_is_none() {
        let conf = parse("devices={index:2,path:,device:cdrom,type:disk}\n");
        assert_eq!(conf.cdrom_path(), None);
    }
}
