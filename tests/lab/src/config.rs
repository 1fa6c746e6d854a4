//! The lab's identity and layout: ids, paths, ports and profile, saved as `DIR/lab.json`.

use crate::site_network::SiteNetwork;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a host mounts storage domains, relative to the lab directory.
pub const MOUNTS: &str = "rhev/data-center/mnt";

/// One engine generation the lab can play (old engine before upgrade, new one after).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EngineRelease {
    /// Full engine version as engine-backup's `./version` holds it, e.g. `3.6.7.5`.
    pub version: String,
    /// Guest OS as engine-backup's `./os_version` holds it, e.g. `centos6` / `centos7`.
    pub os_version: String,
    /// REST API versions this engine serves: `[3]` for 3.6, `[3, 4]` for 4.x.
    pub api_versions: Vec<u8>,
}

/// The engine VM's network link to the host (see [`LabConfig::engine_link`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLink {
    /// The host's end of the link.
    pub host: std::net::Ipv4Addr,
    /// The engine VM's address.
    pub engine: std::net::Ipv4Addr,
    /// Prefix length of the link's network.
    pub prefix_len: u8,
}

/// Everything about one lab, written by `he-lab init` and read by every other part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabConfig {
    /// The lab directory (absolute).
    pub dir: PathBuf,
    /// `el6-3.6:el7-4.0` or `el7-4.3:el8-4.4`.
    pub profile: String,
    /// Seed used for every id and byte of generated content.
    pub seed: u64,
    /// The engine installed on the engine disk at init.
    pub old_engine: EngineRelease,
    /// The engine inside the appliance OVA.
    pub new_engine: EngineRelease,
    /// Engine VM FQDN (resolves to 127.0.0.1 only through the URLs below).
    pub fqdn: String,
    /// This host's name, hardware UUID (vdsm systemUUID) and HA host id.
    pub host_name: String,
    pub host_uuid: String,
    pub host_id: u32,
    /// Engine VM id (vm.conf vmId, hosted-engine.conf vmid).
    pub vm_id: String,
    /// Storage pool id as the engine knows it (hosted-engine.conf keeps the blank one).
    pub sp_id: String,
    /// Hosted-engine storage domain id and its NFS-style remote path (`server:/export`).
    pub sd_id: String,
    pub sd_remote: String,
    /// Storage domain capacity in bytes (engine space numbers derive from it).
    pub sd_capacity_bytes: u64,
    /// Engine disk image (disk) id and volume id.
    pub engine_image_id: String,
    pub engine_volume_id: String,
    pub engine_disk_size_bytes: u64,
    /// Ports on 127.0.0.1: HTTPS (API, SSO, pki-resource) and HTTP (health, pki-resource);
    /// 0 until `he-lab up`, whose daemon holds the ports the kernel chose (see [`crate::ports`]).
    pub https_port: u16,
    pub http_port: u16,
    /// Admin user (`admin@internal`); its password lives in `admin_password_file`.
    pub admin_user: String,
    /// Virtual size of the appliance disk inside the OVA (0 in labs made before it existed).
    #[serde(default)]
    pub appliance_size_bytes: u64,
    /// The management network and the engine VM's address in it (DHCP site when absent).
    #[serde(default = "dhcp_site")]
    pub site_network: SiteNetwork,
}

fn dhcp_site() -> SiteNetwork {
    SiteNetwork::new(false)
}

impl LabConfig {
    /// `DIR/lab.json`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("lab.json")
    }

    /// Reads `DIR/lab.json`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {} (run `he-lab init` first): {e}",
                path.display()
            )
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Writes `DIR/lab.json` (whole: a tool reading it meanwhile sees the old or the new one).
    pub fn save(&self) -> anyhow::Result<()> {
        let path = Self::path(&self.dir);
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    /// Mount point of the storage domain: `DIR/rhev/data-center/mnt/<transformPath(remote)>`.
    pub fn sd_mount(&self) -> PathBuf {
        let transformed = self.sd_remote.replace('_', "__").replace('/', "_");
        self.dir.join(MOUNTS).join(transformed)
    }

    /// The NFS server's export directory behind the mount (`DIR/nfs-server/<remote path>`):
    /// the lab's own bookkeeping reads and writes the domain here, as root; the host sees it
    /// only through the root-squashing mount at `sd_mount` (`crate::nfs_mount`).
    pub fn sd_export(&self) -> PathBuf {
        let remote_path = self
            .sd_remote
            .split_once(':')
            .map_or(self.sd_remote.as_str(), |(_, path)| path);
        self.dir
            .join("nfs-server")
            .join(remote_path.trim_start_matches('/'))
    }

    /// `<export>/<sd_id>`.
    pub fn sd_dir(&self) -> PathBuf {
        self.sd_export().join(&self.sd_id)
    }

    /// The host's path (under the mount) of `export_path` (under the export).
    pub fn on_host(&self, export_path: &Path) -> PathBuf {
        match export_path.strip_prefix(self.sd_export()) {
            Ok(relative) => self.sd_mount().join(relative),
            Err(_) => export_path.to_path_buf(),
        }
    }

    /// `<sd>/images/<image>/<volume>`.
    pub fn volume_path(&self, image_id: &str, volume_id: &str) -> PathBuf {
        self.sd_dir().join("images").join(image_id).join(volume_id)
    }

    /// Mutable runtime state lives here (engine DB, VM state, faults, tasks).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `state/engine-db.json`: the engine's database as the running engine sees it.
    pub fn engine_db_path(&self) -> PathBuf {
        self.state_dir().join("engine-db.json")
    }

    /// `state/faults.json`: JSON array of fault names switched on.
    pub fn faults_path(&self) -> PathBuf {
        self.state_dir().join("faults.json")
    }

    /// Fault names currently on (empty when the file is missing).
    pub fn faults(&self) -> Vec<String> {
        std::fs::read_to_string(self.faults_path())
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Whether fault `name` is on.
    pub fn fault(&self, name: &str) -> bool {
        self.faults().iter().any(|f| f == name)
    }

    /// TLS material: `pki/ca.pem`, `pki/engine.pem`, `pki/engine.key`.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// `https://<fqdn>:<port>/ovirt-engine` with the fqdn as 127.0.0.1 (see `engine_url`).
    pub fn engine_url(&self) -> String {
        format!("https://127.0.0.1:{}/ovirt-engine", self.https_port)
    }

    /// `http://127.0.0.1:<port>/ovirt-engine/services/health`.
    pub fn health_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/ovirt-engine/services/health",
            self.http_port
        )
    }

    /// `DIR/etc/ovirt-hosted-engine/hosted-engine.conf`.
    pub fn he_conf_path(&self) -> PathBuf {
        self.dir.join("etc/ovirt-hosted-engine/hosted-engine.conf")
    }

    /// `DIR/run/ovirt-hosted-engine-ha/vm.conf`.
    pub fn vm_conf_path(&self) -> PathBuf {
        self.dir.join("run/ovirt-hosted-engine-ha/vm.conf")
    }

    /// `DIR/run/channels` (a real host uses /var/lib/libvirt/qemu/channels). A unix socket
    /// path must fit in 108 bytes; when DIR is too long for that, the channels live in
    /// `/tmp/he-lab-channels-<hash of DIR>` (and `DIR/run/channels` links there).
    pub fn channels_dir(&self) -> PathBuf {
        let preferred = self.dir.join("run/channels");
        let socket_name_len = self.vm_id.len() + ".org.ovirt.hosted-engine-setup.0".len() + 1;
        if preferred.as_os_str().len() + socket_name_len < 104 {
            return preferred;
        }
        PathBuf::from(format!("/tmp/he-lab-channels-{:016x}", self.dir_hash()))
    }

    /// FNV-1a of DIR: names that must differ between labs side by side on one machine.
    pub fn dir_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.dir.as_os_str().as_encoded_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }

    /// The engine VM's link to the host: the engine's IPv4 address and the host's, a /30 of
    /// 10.64.0.0/10 picked by [`Self::dir_hash`] (labs side by side get different ones). The
    /// one place that says where the engine VM is on the network.
    pub fn engine_link(&self) -> EngineLink {
        let hash = self.dir_hash();
        let second = 64 + (hash % 64) as u8;
        let third = (hash >> 8) as u8;
        let fourth = ((hash >> 16) % 64) as u8 * 4;
        EngineLink {
            host: std::net::Ipv4Addr::new(10, second, third, fourth + 1),
            engine: std::net::Ipv4Addr::new(10, second, third, fourth + 2),
            prefix_len: 30,
        }
    }

    /// `DIR/engine-vm`: what the engine VM's SSH endpoint needs (keys, sshd_config, its
    /// `bin/engine-backup`, the inventory's `known_hosts`).
    pub fn engine_vm_dir(&self) -> PathBuf {
        self.dir.join("engine-vm")
    }

    /// `DIR/engine-vm.yml`: inventory of the engine VM host (`hosted_engine_vm`, root over SSH).
    pub fn engine_vm_inventory_path(&self) -> PathBuf {
        self.dir.join("engine-vm.yml")
    }

    /// The engine VM's setup channel socket `<vm_id>.org.ovirt.hosted-engine-setup.0`.
    pub fn channel_path(&self) -> PathBuf {
        self.channels_dir()
            .join(format!("{}.org.ovirt.hosted-engine-setup.0", self.vm_id))
    }

    /// `DIR/bin`: the `hosted-engine` and `vdsm-client` shims.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    /// `DIR/inventory.yml`.
    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join("inventory.yml")
    }

    /// `DIR/pki/ca.pem`: the engine CA.
    pub fn ca_file(&self) -> PathBuf {
        self.pki_dir().join("ca.pem")
    }

    /// `DIR/secrets/admin-password` (0600): the engine admin password.
    pub fn admin_password_file(&self) -> PathBuf {
        self.dir.join("secrets/admin-password")
    }

    /// `DIR/appliance`: the appliance OVA and its description file.
    pub fn appliance_dir(&self) -> PathBuf {
        self.dir.join("appliance")
    }

    /// Appliance package version, e.g. `4.0-20161202.1.el7`.
    pub fn appliance_version(&self) -> String {
        let major_minor: Vec<&str> = self.new_engine.version.split('.').take(2).collect();
        let dist = self
            .new_engine
            .os_version
            .trim_start_matches("centos")
            .trim_start_matches("el");
        format!("{}-20161202.1.el{dist}", major_minor.join("."))
    }

    /// `DIR/appliance/ovirt-engine-appliance-<version>.ova`.
    pub fn appliance_ova_path(&self) -> PathBuf {
        self.appliance_dir().join(format!(
            "ovirt-engine-appliance-{}.ova",
            self.appliance_version()
        ))
    }

    /// `DIR/appliance/10-appliance.conf` (description/version/path/sha1sum).
    pub fn appliance_desc_path(&self) -> PathBuf {
        self.appliance_dir().join("10-appliance.conf")
    }

    /// `DIR/backup/engine_backup.tar.gz`: engine-backup archive of the old engine.
    pub fn engine_backup_path(&self) -> PathBuf {
        self.dir.join("backup/engine_backup.tar.gz")
    }

    /// `DIR/stage`: where playbooks stage the appliance.
    pub fn stage_dir(&self) -> PathBuf {
        self.dir.join("stage")
    }

    /// `DIR/var/lib/ovirt-hosted-engine-upgrade`: the playbooks' resumable state.
    pub fn upgrade_state_dir(&self) -> PathBuf {
        self.dir.join("var/lib/ovirt-hosted-engine-upgrade")
    }

    /// `DIR/log`: module run logs.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// `DIR/report.json`: the playbooks' run report.
    pub fn report_path(&self) -> PathBuf {
        self.dir.join("report.json")
    }

    /// `state/daemon.pid`.
    pub fn pid_path(&self) -> PathBuf {
        self.state_dir().join("daemon.pid")
    }

    /// `state/daemon.log`: the daemon's log (VM console and engine events).
    pub fn daemon_log_path(&self) -> PathBuf {
        self.state_dir().join("daemon.log")
    }

    /// `state/daemon.sock`: the daemon's control socket (the lab's vdsm/libvirt).
    pub fn control_socket_path(&self) -> PathBuf {
        self.state_dir().join("daemon.sock")
    }

    /// `state/vm.json`: the engine VM's current state, written by the daemon.
    pub fn vm_state_path(&self) -> PathBuf {
        self.state_dir().join("vm.json")
    }

    /// `state/ha.json`: HA agent state (maintenance modes).
    pub fn ha_state_path(&self) -> PathBuf {
        self.state_dir().join("ha.json")
    }

    /// `state/tasks`: vdsm SPM tasks (`Volume extendSize`).
    pub fn tasks_dir(&self) -> PathBuf {
        self.state_dir().join("tasks")
    }
}
