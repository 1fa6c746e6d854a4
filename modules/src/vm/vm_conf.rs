//! vm.conf: read it, set the cdrom's `path:` in a private copy (original-tool §5, SPEC 9.5).
//!
//! The original tool ran `re.sub(r'path:[^,]*,', 'path:<iso>,', line)` on every line holding
//! both `device:cdrom` and `path:`; [`VmConf::with_cdrom`] does exactly that without a regex.
//! The file hosted-engine's HA agent owns is never edited: the patched text goes to a copy.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Default local vm.conf (hosted-engine.conf `conf`).
pub const DEFAULT_VM_CONF: &str = "/var/run/ovirt-hosted-engine-ha/vm.conf";

/// A problem reading, patching or copying vm.conf.
#[derive(Debug, thiserror::Error)]
pub enum VmConfError {
    /// The file could not be read.
    #[error("cannot read vm.conf {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No device line has both `device:cdrom` and `path:`.
    #[error("unable to attach the ISO image: vm.conf {path} has no cdrom device line (a `devices={{...}}` line with `device:cdrom` and `path:`)")]
    NoCdrom { path: PathBuf },
    /// The cdrom line has `path:` but no comma after it, so there is nothing to replace.
    #[error("unable to attach the ISO image: the cdrom device line of vm.conf {path} has no `path:...,` entry: {line}")]
    NoCdromPath { path: PathBuf, line: String },
    /// The ISO path would break the `devices={k:v,...}` syntax.
    #[error("option 'cdrom': the path {iso:?} cannot go into vm.conf (it must be absolute and hold no ',', '{{', '}}' or line break)")]
    UnusableIsoPath { iso: PathBuf },
    /// The copy could not be written.
    #[error("cannot write the vm.conf copy {path}: {source}")]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One line of vm.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// `devices={...}`: the text between the braces.
    Device(&'a str),
    /// `key=value`.
    Setting { key: &'a str, value: &'a str },
    /// Blank lines, comments, anything else.
    Other(&'a str),
}

/// The text of a vm.conf and where it was read from.
#[derive(Debug, Clone)]
pub struct VmConf {
    path: PathBuf,
    text: String,
}

impl VmConf {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, VmConfError> {
        let text = std::fs::read_to_string(path).map_err(|source| VmConfError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(path, text))
    }

    /// Wraps the text of a vm.conf read from `path`.
    pub fn parse(path: &Path, text: String) -> Self {
        Self {
            path: path.to_path_buf(),
            text,
        }
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text, unchanged.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every line, classified.
    pub fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        self.text.lines().map(classify)
    }

    /// The value of setting `key` (`vmId`, `memSize`, ...).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines().find_map(|line| match line {
            Line::Setting { key: k, value } if k == key => Some(value),
            _ => None,
        })
    }

    /// The device lines (text between the braces).
    pub fn devices(&self) -> Vec<&str> {
        self.lines()
            .filter_map(|line| match line {
                Line::Device(device) => Some(device),
                _ => None,
            })
            .collect()
    }

    /// The whole text with every cdrom line's `path:...,` set to `iso`.
    pub fn with_cdrom(&self, iso: &Path) -> Result<String, VmConfError> {
        let iso_text = iso.to_str().filter(|text| usable_in_device_line(text));
        let Some(iso_text) = iso_text.filter(|_| iso.is_absolute()) else {
            return Err(VmConfError::UnusableIsoPath {
                iso: iso.to_path_buf(),
            });
        };
        let mut patched = String::with_capacity(self.text.len() + iso_text.len());
        let mut cdrom_lines = 0;
        for line in self.text.split_inclusive('\n') {
            if line.contains("device:cdrom") && line.contains("path:") {
                cdrom_lines += 1;
                let (new_line, replaced) = replace_paths(line, iso_text);
                if replaced == 0 {
                    return Err(VmConfError::NoCdromPath {
                        path: self.path.clone(),
                        line: line.trim_end().to_string(),
                    });
                }
                patched.push_str(&new_line);
            } else {
                patched.push_str(line);
            }
        }
        if cdrom_lines == 0 {
            return Err(VmConfError::NoCdrom {
                path: self.path.clone(),
            });
        }
        Ok(patched)
    }
}

fn classify(line: &str) -> Line<'_> {
    let trimmed = line.trim();
    if let Some(device) = trimmed
        .strip_prefix("devices={")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        return Line::Device(device);
    }
    match trimmed.split_once('=') {
        Some((key, value)) if !trimmed.starts_with('#') && !key.is_empty() => Line::Setting {
            key: key.trim(),
            value: value.trim(),
        },
        _ => Line::Other(line),
    }
}

fn usable_in_device_line(text: &str) -> bool {
    !text.is_empty() && !text.contains([',', '{', '}', '\n', '\r'])
}

/// `re.sub(r'path:[^,]*,', 'path:<iso>,', line)`: every `path:` followed (later on the line)
/// by a comma has everything up to that comma replaced; returns the line and the count.
fn replace_paths(line: &str, iso: &str) -> (String, usize) {
    const KEY: &str = "path:";
    let mut out = String::with_capacity(line.len() + iso.len());
    let mut rest = line;
    let mut replaced = 0;
    while let Some(start) = rest.find(KEY) {
        let after_key = &rest[start + KEY.len()..];
        let Some(comma) = after_key.find(',') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(KEY);
        out.push_str(iso);
        out.push(',');
        rest = &after_key[comma + 1..];
        replaced += 1;
    }
    out.push_str(rest);
    (out, replaced)
}

/// Writes `text` to `path` with mode 0600, in a directory created 0700 if missing; replaces
/// any earlier copy atomically (write to a temporary name, then rename).
pub fn write_private_copy(path: &Path, text: &str) -> Result<(), VmConfError> {
    let unwritable = |source| VmConfError::Unwritable {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(unwritable)?;
    }
    let mut temporary = path.as_os_str().to_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(unwritable)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(unwritable)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// oVirt 4.0/4.1 `templates/vm.conf.in` as rendered (original-tool §5).
    const VM_CONF_41: &str = "vmId=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3
memSize=16384
display=vnc
devices={index:2,iface:ide,address:{ controller:0, target:0,unit:0, bus:1, type:drive},specParams:{},readonly:true,deviceId:8a1e4b7c-2d3f-4e5a-9b6c-7d8e9f0a1b2c,path:/var/tmp/old-seed.iso,device:cdrom,shared:false,type:disk}
devices={index:0,iface:virtio,format:raw,poolID:00000000-0000-0000-0000-000000000000,volumeID:7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b,imageID:2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e,specParams:{},readonly:false,domainID:9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d,optional:false,deviceId:2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e,address:{bus:0x00, slot:0x06, domain:0x0000, type:pci, function:0x0},device:disk,shared:exclusive,propagateErrors:off,type:disk,bootOrder:1}
devices={device:scsi,model:virtio-scsi,type:controller}
devices={nicModel:pv,macAddr:00:16:3e:6a:7b:8c,linkActive:true,network:ovirtmgmt,filter:vdsm-no-mac-spoofing,specParams:{},deviceId:1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9,address:{bus:0x00, slot:0x03, domain:0x0000, type:pci, function:0x0},device:bridge,type:interface}
devices={device:console,specParams:{},type:console,deviceId:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d,alias:console0}
vmName=HostedEngine
spiceSecureChannels=smain,sdisplay,sinputs,scursor,splayback,srecord,ssmartcard,susbredir
smp=4
maxVCpus=4
cpuType=SandyBridge
emulatedMachine=pc
";

    /// 4.2+ vm.conf generated from the engine's OVF: the cdrom's `path:` sits in the middle,
    /// empty, and the device keys come in another order.
    const VM_CONF_42: &str = "cpuType=SandyBridge
emulatedMachine=pc-i440fx-rhel7.3.0
vmId=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3
smp=4
memSize=16384
maxVCpus=16
spiceSecureChannels=smain,sdisplay,sinputs,scursor,splayback,srecord,ssmartcard,susbredir
xmlBase64=PD94bWwgdmVyc2lvbj0nMS4wJyBlbmNvZGluZz0nVVRGLTgnPz4=
vmName=HostedEngine
display=vnc
devices={device:cdrom,shared:false,path:,type:disk,readonly:true,deviceId:5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f,iface:ide,index:2,address:{controller:0,target:0,unit:0,bus:1,type:drive},specParams:{}}
devices={device:disk,shared:exclusive,type:disk,format:raw,iface:virtio,index:0,bootOrder:1,domainID:9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d,imageID:2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e,poolID:00000000-0000-0000-0000-000000000000,volumeID:7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b}
";

    fn conf(text: &str) -> VmConf {
        VmConf::parse(Path::new("/run/vm.conf"), text.to_string())
    }

    const ISO: &str = "/var/lib/he-upgrade/seed.iso";

    #[test]
    fn reads_settings_and_device_lines() {
        let vm_conf = conf(VM_CONF_41);
        assert_eq!(
            vm_conf.get("vmId"),
            Some("4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3")
        );
        assert_eq!(vm_conf.get("memSize"), Some("16384"));
        assert_eq!(
            vm_conf.get("spiceSecureChannels"),
            Some("smain,sdisplay,sinputs,scursor,splayback,srecord,ssmartcard,susbredir")
        );
        let devices = vm_conf.devices();
        assert_eq!(devices.len(), 5);
        assert!(devices[1].contains("imageID:2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e"));
        assert!(vm_conf.get("devices").is_none());
    }

    #[test]
    fn sets_the_cdrom_path_and_nothing_else_in_the_4_1_format() {
        let patched = conf(VM_CONF_41).with_cdrom(Path::new(ISO)).unwrap();
        let expected = VM_CONF_41.replace(
            "path:/var/tmp/old-seed.iso,",
            "path:/var/lib/he-upgrade/seed.iso,",
        );
        assert_eq!(patched, expected);
        assert_ne!(patched, VM_CONF_41);
    }

    #[test]
    fn sets_an_empty_path_in_the_middle_of_a_4_2_cdrom_line() {
        let patched = conf(VM_CONF_42).with_cdrom(Path::new(ISO)).unwrap();
        assert!(patched.contains(
            "devices={device:cdrom,shared:false,path:/var/lib/he-upgrade/seed.iso,type:disk,"
        ));
        assert_eq!(patched.lines().count(), VM_CONF_42.lines().count());
        // Only the cdrom line changed.
        let changed: Vec<_> = VM_CONF_42
            .lines()
            .zip(patched.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1);
    }

    #[test]
    fn replaces_every_path_on_the_line_like_re_sub() {
        let (line, count) = replace_paths("a,path:x,b,somepath:y,c,path:z\n", "/i");
        assert_eq!(line, "a,path:/i,b,somepath:/i,c,path:z\n");
        assert_eq!(count, 2);
    }

    #[test]
    fn a_file_without_cdrom_is_refused_with_the_file_named() {
        let without: String = VM_CONF_41
            .lines()
            .filter(|l| !l.contains("device:cdrom"))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = conf(&without).with_cdrom(Path::new(ISO)).unwrap_err();
        assert!(matches!(err, VmConfError::NoCdrom { .. }));
        assert!(
            err.to_string()
                .contains("/run/vm.conf has no cdrom device line"),
            "{err}"
        );
    }

    #[test]
    fn a_cdrom_line_whose_path_ends_the_line_is_refused() {
        let text = "devices={device:cdrom,type:disk,path:/old.iso}\n";
        let err = conf(text).with_cdrom(Path::new(ISO)).unwrap_err();
        assert!(matches!(err, VmConfError::NoCdromPath { .. }), "{err}");
    }

    #[test]
    fn iso_paths_that_would_break_the_line_are_refused() {
        for bad in ["/a,b.iso", "relative.iso", "/x}.iso", "/x\n.iso"] {
            let err = conf(VM_CONF_41).with_cdrom(Path::new(bad)).unwrap_err();
            assert!(
                err.to_string().starts_with("option 'cdrom'"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_copy_is_private_and_replaces_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("private/vm.conf.boot");
        write_private_copy(&copy, "first\n").unwrap();
        write_private_copy(&copy, "second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "second\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(mode(copy.parent().unwrap()), 0o700);
        assert!(!dir.path().join("private/vm.conf.boot.tmp").exists());
    }
}
