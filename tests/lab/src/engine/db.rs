//! The fake engine's database: what a real engine keeps in PostgreSQL, persisted as JSON at
//! `state/engine-db.json`, seeded at init and carried through engine-backup / restore.

use crate::config::{EngineRelease, LabConfig};
use crate::engine::clock;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Disk status values (engine-api.md part 1 section 3, DiskStatus).
pub const DISK_OK: &str = "ok";
/// A disk whose volume is still being created.
pub const DISK_LOCKED: &str = "locked";

/// The engine's product identity as `/ovirt-engine/api` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProductInfo {
    /// `oVirt Engine`.
    pub name: String,
    /// `ovirt.org`.
    pub vendor: String,
    /// RPM version, e.g. `3.6.7.5-1.el6`.
    pub full_version: String,
    /// Version numbers, e.g. 3, 6, 7, 5.
    pub major: u32,
    pub minor: u32,
    pub build: u32,
    pub revision: u32,
}

/// A compatibility level (`<version major= minor=>`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CompatVersion {
    /// Major part, e.g. 3.
    pub major: u32,
    /// Minor part, e.g. 6.
    pub minor: u32,
}

/// One data center (its id is the storage pool id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataCenter {
    /// Data center id = storage pool id.
    pub id: String,
    /// Name, e.g. `Default`.
    pub name: String,
    /// Compatibility level.
    pub version: CompatVersion,
    /// `up`, `maintenance`, `not_operational`, ...
    pub status: String,
    /// Storage format `v3`, `v4`, `v5`.
    pub storage_format: String,
}

/// One cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cluster {
    /// Cluster id.
    pub id: String,
    /// Name, e.g. `Default`.
    pub name: String,
    /// Data center the cluster belongs to.
    pub data_center_id: String,
    /// Compatibility level.
    pub version: CompatVersion,
    /// CPU type name, e.g. `Intel Conroe Family`.
    pub cpu_type: String,
}

/// One host (hypervisor) the engine manages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Host {
    /// Host id.
    pub id: String,
    /// Host name in the engine.
    pub name: String,
    /// Address the engine reaches it at.
    pub address: String,
    /// Hardware UUID (vdsm `systemUUID`).
    pub hardware_uuid: String,
    /// Cluster id.
    pub cluster_id: String,
    /// `up`, `maintenance`, `non_operational`, ...
    pub status: String,
    /// `spm`, `contending` or `none`.
    pub spm_status: String,
    /// SPM priority (default 5).
    pub spm_priority: i32,
    /// Whether the hosted-engine HA agent is configured on it.
    pub hosted_engine_configured: bool,
}

/// One storage domain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StorageDomain {
    /// Storage domain id.
    pub id: String,
    /// Name, e.g. `hosted_storage`.
    pub name: String,
    /// `data`, `iso`, `export`.
    pub domain_type: String,
    /// `nfs`.
    pub storage_type: String,
    /// NFS server and export path.
    pub address: String,
    pub path: String,
    /// Status within its data center: `active`, `maintenance`, ...
    pub status: String,
    /// Data center it is attached to.
    pub data_center_id: String,
    /// Whether it is the master domain.
    pub master: bool,
    /// Total size in bytes (available + used).
    pub capacity_bytes: u64,
    /// Storage format `v3` / `v4` / `v5`.
    pub storage_format: String,
}

/// One image disk the engine knows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Disk {
    /// Disk id = vdsm image (group) id.
    pub id: String,
    /// Current volume id.
    pub image_id: String,
    /// Alias (also returned as `name`).
    pub alias: String,
    /// Free-text description.
    pub description: String,
    /// Virtual size in bytes.
    pub provisioned_size_bytes: u64,
    /// Allocated size in bytes.
    pub actual_size_bytes: u64,
    /// `raw` or `cow`.
    pub format: String,
    /// Thin provisioned.
    pub sparse: bool,
    /// `ok`, `locked` or `illegal`.
    pub status: String,
    /// Storage domain holding it.
    pub storage_domain_id: String,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: u64,
    /// For a `locked` disk being created: when it turns `ok` (epoch milliseconds).
    #[serde(default)]
    pub ready_at_ms: Option<u64>,
    /// Bootable flag.
    #[serde(default)]
    pub bootable: bool,
    /// Shareable flag.
    #[serde(default)]
    pub shareable: bool,
}

impl Disk {
    /// The status a reader sees at `now_ms`: a locked disk whose creation finished is `ok`,
    /// unless creation is held (fault `disk_create_stuck`).
    pub fn status_at(&self, now_ms: u64, creation_held: bool) -> &str {
        match self.ready_at_ms {
            Some(ready) if self.status == DISK_LOCKED && now_ms >= ready && !creation_held => {
                DISK_OK
            }
            _ => &self.status,
        }
    }
}

/// The whole engine database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EngineDb {
    /// Product identity of the engine that owns this database.
    pub product: ProductInfo,
    /// REST API versions served: `[3]` for 3.6, `[3, 4]` for 4.x.
    pub api_versions: Vec<u8>,
    /// Admin user (`admin@internal`) and its password, as the engine's user store holds them.
    pub admin_user: String,
    pub admin_password: String,
    /// Data centers, clusters, hosts, storage domains, disks.
    pub data_centers: Vec<DataCenter>,
    pub clusters: Vec<Cluster>,
    pub hosts: Vec<Host>,
    pub storage_domains: Vec<StorageDomain>,
    pub disks: Vec<Disk>,
    /// AAA authz extension names (`internal-authz`).
    pub aaa_domains: Vec<String>,
    /// Seconds a new disk stays `locked` before it turns `ok`.
    #[serde(default = "default_disk_create_seconds")]
    pub disk_create_seconds: f64,
    /// When this database was restored from a backup (epoch ms), if it was.
    #[serde(default)]
    pub restored_at_ms: Option<u64>,
    /// Free-form engine content (VMs, users, ...) that must survive backup and restore.
    #[serde(default)]
    pub data: serde_json::Value,
}

fn default_disk_create_seconds() -> f64 {
    2.0
}

/// The admin password of a lab, derived from its seed (write it to the password file).
pub fn default_admin_password(config: &LabConfig) -> String {
    format!(
        "lab-{:012x}",
        mix(config.seed, "admin-password") & 0xffff_ffff_ffff
    )
}

/// A deterministic UUID for `label` in the lab with `seed`.
pub fn derived_uuid(seed: u64, label: &str) -> String {
    let high = mix(seed, label);
    let low = mix(seed ^ 0x9e37_79b9_7f4a_7c15, label);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        0x8000 | (low >> 48) & 0x3fff,
        low & 0xffff_ffff_ffff
    )
}

/// FNV-1a of the label folded into a splitmix64 step of the seed.
fn mix(seed: u64, label: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in label.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ hash;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Product info of a release: `3.6.7.5` on `el6` -> full version `3.6.7.5-1.el6`.
pub fn product_of(release: &EngineRelease) -> ProductInfo {
    let mut numbers = release
        .version
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let mut next = || numbers.next().unwrap_or(0);
    let (major, minor, build, revision) = (next(), next(), next(), next());
    // oVirt's RPM release tags: 3.6 built for el6, 4.0-4.3 for el7.centos, 4.4 for el8.
    let dist = match release.os_version.as_str() {
        "centos7" => "el7.centos".to_string(),
        os => os.replace("centos", "el"),
    };
    ProductInfo {
        name: "oVirt Engine".into(),
        vendor: "ovirt.org".into(),
        full_version: format!("{}-1.{dist}", release.version),
        major,
        minor,
        build,
        revision,
    }
}

/// Storage format a data center / domain of this compatibility level uses.
fn storage_format_of(version: CompatVersion) -> String {
    match (version.major, version.minor) {
        (major, _) if major < 4 => "v3",
        (4, 0) => "v3",
        (4, 1) | (4, 2) => "v4",
        _ => "v5",
    }
    .into()
}

impl EngineDb {
    /// The database of the old engine as `he-lab init` installs it: one DC and cluster at the
    /// engine's level, this host (SPM) plus two more, the hosted-engine storage domain and
    /// the engine VM's disk.
    pub fn seed(config: &LabConfig, release: &EngineRelease) -> EngineDb {
        let product = product_of(release);
        let version = CompatVersion {
            major: product.major,
            minor: product.minor,
        };
        let dc_id = config.sp_id.clone();
        let cluster_id = derived_uuid(config.seed, "cluster/Default");
        let host = |index: u32, name: &str, uuid: String, spm: &str| Host {
            id: derived_uuid(config.seed, &format!("host/{index}")),
            name: name.to_string(),
            address: name.to_string(),
            hardware_uuid: uuid,
            cluster_id: cluster_id.clone(),
            status: "up".into(),
            spm_status: spm.into(),
            spm_priority: 5,
            hosted_engine_configured: true,
        };
        let mut hosts = vec![host(
            config.host_id,
            &config.host_name,
            config.host_uuid.clone(),
            "spm",
        )];
        for other in 1..=2u32 {
            let index = config.host_id + other;
            let name = format!("host{index}.lab.local");
            let uuid = derived_uuid(config.seed, &format!("hardware/{index}")).to_uppercase();
            hosts.push(host(index, &name, uuid, "none"));
        }
        let (address, path) = match config.sd_remote.split_once(':') {
            Some((address, path)) => (address.to_string(), path.to_string()),
            None => (String::new(), config.sd_remote.clone()),
        };
        let created_at_ms = clock::now_ms();
        EngineDb {
            product,
            api_versions: release.api_versions.clone(),
            admin_user: config.admin_user.clone(),
            admin_password: default_admin_password(config),
            data_centers: vec![DataCenter {
                id: dc_id.clone(),
                name: "Default".into(),
                version,
                status: "up".into(),
                storage_format: storage_format_of(version),
            }],
            clusters: vec![Cluster {
                id: cluster_id,
                name: "Default".into(),
                data_center_id: dc_id.clone(),
                version,
                cpu_type: "Intel Conroe Family".into(),
            }],
            hosts,
            storage_domains: vec![StorageDomain {
                id: config.sd_id.clone(),
                name: "hosted_storage".into(),
                domain_type: "data".into(),
                storage_type: "nfs".into(),
                address,
                path,
                status: "active".into(),
                data_center_id: dc_id,
                master: true,
                capacity_bytes: config.sd_capacity_bytes,
                storage_format: storage_format_of(version),
            }],
            disks: vec![Disk {
                id: config.engine_image_id.clone(),
                image_id: config.engine_volume_id.clone(),
                alias: "he_virtio_disk".into(),
                description: "Hosted-Engine disk".into(),
                provisioned_size_bytes: config.engine_disk_size_bytes,
                actual_size_bytes: config.engine_disk_size_bytes,
                format: "raw".into(),
                sparse: false,
                status: DISK_OK.into(),
                storage_domain_id: config.sd_id.clone(),
                created_at_ms,
                ready_at_ms: None,
                bootable: true,
                shareable: false,
            }],
            aaa_domains: vec!["internal-authz".into()],
            disk_create_seconds: default_disk_create_seconds(),
            restored_at_ms: None,
            data: serde_json::json!({
                "vms": [{"id": config.vm_id, "name": "HostedEngine", "disk": config.engine_image_id}],
                "users": [{"name": "admin", "domain": "internal-authz"}],
            }),
        }
    }

    /// The database a new engine has after `engine-backup --mode=restore` of `dump` and
    /// engine-setup: the dump's content (only the disks it knew), the new product and API
    /// versions, compatibility levels unchanged, stamped with the restore time.
    pub fn restore_from_backup(dump: &EngineDb, new_release: &EngineRelease) -> EngineDb {
        EngineDb {
            product: product_of(new_release),
            api_versions: new_release.api_versions.clone(),
            restored_at_ms: Some(clock::now_ms()),
            ..dump.clone()
        }
    }

    /// Reads `state/engine-db.json`.
    pub fn load(config: &LabConfig) -> anyhow::Result<EngineDb> {
        Self::load_from(&config.engine_db_path())
    }

    /// Reads an engine database from `path`.
    pub fn load_from(path: &Path) -> anyhow::Result<EngineDb> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read engine database {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("engine database {} is not valid: {e}", path.display()))
    }

    /// Writes `state/engine-db.json` atomically (temporary file + rename).
    pub fn save(&self, config: &LabConfig) -> anyhow::Result<()> {
        self.save_to(&config.engine_db_path())
    }

    /// Writes the database to `path` atomically.
    pub fn save_to(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temporary = path.with_extension(format!("json.tmp{}", std::process::id()));
        std::fs::write(&temporary, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }

    /// The data center with `id`.
    pub fn data_center(&self, id: &str) -> Option<&DataCenter> {
        self.data_centers.iter().find(|dc| dc.id == id)
    }

    /// The storage domain with `id`.
    pub fn storage_domain(&self, id: &str) -> Option<&StorageDomain> {
        self.storage_domains.iter().find(|sd| sd.id == id)
    }

    /// The disk with `id`.
    pub fn disk(&self, id: &str) -> Option<&Disk> {
        self.disks.iter().find(|disk| disk.id == id)
    }

    /// Bytes promised to disks on storage domain `sd_id` (sum of their provisioned sizes).
    pub fn committed_bytes(&self, sd_id: &str) -> u64 {
        self.disks
            .iter()
            .filter(|disk| disk.storage_domain_id == sd_id)
            .map(|disk| disk.provisioned_size_bytes)
            .sum()
    }

    /// Makes finished disk creations permanent (`locked` -> `ok`); true when anything changed.
    pub fn settle_disks(&mut self, now_ms: u64, creation_held: bool) -> bool {
        let mut changed = false;
        for disk in &mut self.disks {
            let status = disk.status_at(now_ms, creation_held).to_string();
            if status != disk.status {
                disk.status = status;
                disk.ready_at_ms = None;
                changed = true;
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_versions_parse() {
        let release = EngineRelease {
            version: "3.6.7.5".into(),
            os_version: "centos6".into(),
            api_versions: vec![3],
        };
        let product = product_of(&release);
        assert_eq!(
            (
                product.major,
                product.minor,
                product.build,
                product.revision
            ),
            (3, 6, 7, 5)
        );
        assert_eq!(product.full_version, "3.6.7.5-1.el6");
        let release = EngineRelease {
            version: "4.0.6.3".into(),
            os_version: "centos7".into(),
            api_versions: vec![3, 4],
        };
        assert_eq!(product_of(&release).full_version, "4.0.6.3-1.el7.centos");
    }

    #[test]
    fn derived_uuids_are_stable_and_distinct() {
        let a = derived_uuid(7, "cluster/Default");
        assert_eq!(a, derived_uuid(7, "cluster/Default"));
        assert_ne!(a, derived_uuid(8, "cluster/Default"));
        assert_ne!(a, derived_uuid(7, "host/1"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    fn config() -> LabConfig {
        serde_json::from_value(serde_json::json!({
            "dir": "/tmp/he-lab-db-test", "profile": "el6-3.6:el7-4.0", "seed": 7,
            "old_engine": {"version": "3.6.7.5", "os_version": "centos6", "api_versions": [3]},
            "new_engine": {"version": "4.0.6.3", "os_version": "centos7", "api_versions": [3, 4]},
            "fqdn": "engine.lab.local", "host_name": "host1.lab.local",
            "host_uuid": "4C4C4544-0034-5A10-8052-B7C04F4D3132", "host_id": 1,
            "vm_id": "vm", "sp_id": "pool", "sd_id": "sd", "sd_remote": "nfs:/he",
            "sd_capacity_bytes": 1u64 << 40, "engine_image_id": "img", "engine_volume_id": "vol",
            "engine_disk_size_bytes": 1u64 << 30, "https_port": 1, "http_port": 2,
            "admin_user": "admin@internal"
        }))
        .unwrap()
    }

    #[test]
    fn seed_has_this_host_as_spm_and_the_engine_disk() {
        let config = config();
        let db = EngineDb::seed(&config, &config.old_engine);
        assert_eq!(db.api_versions, vec![3]);
        let this: Vec<_> = db
            .hosts
            .iter()
            .filter(|h| h.hardware_uuid == config.host_uuid)
            .collect();
        assert_eq!(this.len(), 1);
        assert_eq!(this[0].spm_status, "spm");
        assert_eq!(db.hosts.iter().filter(|h| h.spm_status == "spm").count(), 1);
        assert_eq!(db.data_centers[0].id, config.sp_id);
        assert_eq!(
            db.data_centers[0].version,
            CompatVersion { major: 3, minor: 6 }
        );
        let disk = db.disk("img").unwrap();
        assert_eq!(
            (disk.image_id.as_str(), disk.status.as_str()),
            ("vol", DISK_OK)
        );
        assert_eq!(db.storage_domain("sd").unwrap().address, "nfs");
        let mut again = EngineDb::seed(&config, &config.old_engine);
        again.disks[0].created_at_ms = db.disks[0].created_at_ms;
        assert_eq!(again, db, "seeding is deterministic");
    }

    #[test]
    fn restore_keeps_content_and_compat_and_takes_the_new_product() {
        let config = config();
        let mut dump = EngineDb::seed(&config, &config.old_engine);
        dump.data["marker"] = serde_json::json!("kept");
        let restored = EngineDb::restore_from_backup(&dump, &config.new_engine);
        assert_eq!(restored.product.major, 4);
        assert_eq!(restored.api_versions, vec![3, 4]);
        assert_eq!(restored.data_centers, dump.data_centers);
        assert_eq!(restored.disks, dump.disks);
        assert_eq!(restored.data["marker"], "kept");
        assert!(restored.restored_at_ms.is_some());
    }

    #[test]
    fn locked_disks_settle_when_ready_unless_held() {
        let config = config();
        let mut db = EngineDb::seed(&config, &config.old_engine);
        db.disks[0].status = DISK_LOCKED.into();
        db.disks[0].ready_at_ms = Some(1000);
        assert!(!db.settle_disks(999, false));
        assert!(!db.settle_disks(5000, true));
        assert_eq!(db.disks[0].status, DISK_LOCKED);
        assert!(db.settle_disks(5000, false));
        assert_eq!(db.disks[0].status, DISK_OK);
        assert_eq!(db.disks[0].ready_at_ms, None);
    }

    #[test]
    fn save_and_load_round_trip() {
        let config = config();
        let db = EngineDb::seed(&config, &config.old_engine);
        let path = std::env::temp_dir().join(format!("he-lab-db-{}.json", std::process::id()));
        db.save_to(&path).unwrap();
        assert_eq!(EngineDb::load_from(&path).unwrap(), db);
        std::fs::remove_file(path).unwrap();
    }
}
