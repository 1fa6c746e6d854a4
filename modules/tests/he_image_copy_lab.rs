//! he_image_copy against the he-lab simulated host (its vdsm, storage domain and appliance): check mode changes no volume, the engine-disk guard, upgrade and rollback copies.
//! Needs HE_LAB_BIN (path of the built `he-lab`); fails, never skips, without it.
mod support;

use he_modules::host::vdsm::session::Endpoint;
use he_modules::host::vdsm::tls::PkiFiles;
use he_modules::host::vdsm::Vdsm;
use serde_json::{json, Value};
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};
use support::lab::TestLab;
use support::{run_module, Run};

struct Lab {
    lab: TestLab,
    status: Value,
    /// `inspect --json` right after init (inspect hashes every volume: call it sparingly).
    initial: Value,
}

impl Lab {
    fn init() -> Lab {
        let lab = TestLab::init(&[]);
        lab.start_daemon();
        Lab {
            status: lab.json(&["status", "--json"]),
            initial: lab.json(&["inspect", "--json"]),
            lab,
        }
    }

    fn he_lab(&self, args: &[&str]) -> Value {
        self.lab.json(args)
    }

    fn field(&self, key: &str) -> String {
        self.status[key]
            .as_str()
            .unwrap_or_else(|| panic!("status has no {key}"))
            .to_string()
    }

    /// Every volume's sha256, keyed by volume id.
    fn volume_hashes(&self) -> Vec<(String, String)> {
        let inspect = self.he_lab(&["inspect", "--json"]);
        let mut hashes: Vec<(String, String)> = inspect["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["volume_id"].as_str().unwrap().into(),
                    v["sha256"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        hashes.sort();
        hashes
    }

    fn engine_disk(&self) -> Value {
        let disk = &self.initial["engine_disk"];
        json!({"sd_id": disk["sd_id"], "image_id": disk["image_id"], "volume_id": disk["volume_id"]})
    }

    fn engine_path(&self) -> PathBuf {
        PathBuf::from(self.initial["engine_disk"]["path"].as_str().unwrap())
    }

    /// vdsm `Volume.getInfo` of the engine disk, asked of the lab's vdsm (a 4.0 host has
    /// no vdsm-client).
    fn engine_volume_info(&self) -> Value {
        let disk = self.engine_disk();
        let vdsm = Vdsm::new(Endpoint {
            address: self.field("vdsm_address"),
            pki: PkiFiles::in_dir(Path::new(&self.field("vdsm_pki_dir"))),
            timeout: std::time::Duration::from_secs(60),
        });
        let params = [
            ("storagepoolID", "00000000-0000-0000-0000-000000000000"),
            ("storagedomainID", disk["sd_id"].as_str().unwrap()),
            ("imageID", disk["image_id"].as_str().unwrap()),
            ("volumeID", disk["volume_id"].as_str().unwrap()),
        ];
        vdsm.call("Volume.getInfo", &params).unwrap()
    }

    fn run(&self, mut args: Value) -> Run {
        args["he_conf"] = json!(self.field("he_conf"));
        args["state_dir"] = json!(self.lab.work().join("state"));
        let bin_dir = PathBuf::from(self.field("bin_dir"));
        let args = support::lab::with_vdsm(&self.status, args);
        run_module("he_image_copy", args, self.lab.work(), Some(&bin_dir))
    }
}

fn sha256_prefix(path: &Path, length: u64) -> String {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .take(length)
        .read_to_end(&mut data)
        .unwrap();
    hex::encode(sha2::Sha256::digest(&data))
}

#[test]
fn check_mode_changes_no_volume_and_stages_nothing() {
    let lab = Lab::init();
    let before = lab.volume_hashes();
    let stage = lab.lab.work().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let backup = lab.lab.work().join("backup.raw");
    let check = json!(true);
    lab.run(json!({"src_volume": lab.engine_disk(), "dest": backup, "verify": true, "_ansible_check_mode": check}))
        .assert_ok();
    let appliance = lab.run(
        json!({"appliance_desc": lab.field("appliance_desc"), "stage_dir": stage,
        "dest_volume": lab.engine_disk(), "extend": true, "_ansible_check_mode": check}),
    );
    appliance.assert_ok();
    assert_eq!(appliance.result["engine_disk_write"], json!("needs_backup"));
    assert!(appliance.result["ovf"]["sha1"].is_string());
    assert_eq!(lab.volume_hashes(), before);
    assert!(!backup.exists());
    assert_eq!(std::fs::read_dir(&stage).unwrap().count(), 0);
    assert!(!lab.lab.work().join("state").exists());
}

#[test]
fn upgrade_copies_need_a_verified_backup_and_rollback_restores_the_engine_disk() {
    let lab = Lab::init();
    let engine = lab.engine_path();
    let original_size = std::fs::metadata(&engine).unwrap().len();
    let original = sha256_prefix(&engine, original_size);
    let stage = lab.lab.work().join("stage");
    std::fs::create_dir(&stage).unwrap();

    let staged =
        lab.run(json!({"appliance_desc": lab.field("appliance_desc"), "stage_dir": stage}));
    staged.assert_ok();
    let staged_path = PathBuf::from(staged.result["staged"].as_str().unwrap());
    let image_size = staged.result["bytes_total"].as_u64().unwrap();

    // Without a verified backup the engine disk is not touched.
    lab.run(json!({"src": staged_path, "dest_volume": lab.engine_disk(), "extend": true}))
        .assert_failed_with("refusing to write the engine disk");
    assert_eq!(sha256_prefix(&engine, original_size), original);

    let backup_path = lab.lab.work().join("backup.raw");
    let backup = lab.run(json!({"src_volume": lab.engine_disk(), "dest": backup_path, "verify": true, "checksum": "sha256"}));
    backup.assert_ok();
    assert_eq!(
        backup.result["checksum"],
        json!(original),
        "sha256 is the plain digest"
    );
    let checksum = backup.result["checksum"].clone();

    let upgrade = lab.run(
        json!({"src": staged_path, "dest_volume": lab.engine_disk(), "extend": true,
        "backup_checksum": checksum}),
    );
    upgrade.assert_ok();
    assert_eq!(upgrade.result["engine_disk_write"], json!("backed_up"));
    assert_eq!(
        upgrade.result["extended_to_bytes"],
        json!(1u64 << 30),
        "{}",
        upgrade.result
    );
    let capacity = lab.engine_volume_info()["capacity"].clone();
    assert_eq!(
        capacity,
        json!((1u64 << 30).to_string()),
        "vdsm metadata follows the extend"
    );
    assert_eq!(
        sha256_prefix(&engine, image_size),
        sha256_prefix(&staged_path, image_size)
    );

    let rollback = lab.run(json!({"src": backup_path, "dest_volume": lab.engine_disk(),
        "backup_checksum": checksum, "verify": true, "checksum": "sha256"}));
    rollback.assert_ok();
    assert_eq!(rollback.result["engine_disk_write"], json!("restore"));
    assert_eq!(sha256_prefix(&engine, original_size), original);
}

/// The lab's storage domain squashes root as NFS with root_squash does: a backup copy made
/// as root (vdsm_uid 0, kvm_gid 0) cannot read the engine volume; the default copy, as
/// vdsm:kvm, can.
#[test]
fn a_copy_done_as_root_is_refused_by_the_root_squashed_domain() {
    let lab = Lab::init();
    let backup_path = lab.lab.work().join("backup.raw");
    let as_root = lab.run(json!({"src_volume": lab.engine_disk(), "dest": backup_path,
        "verify": true, "vdsm_uid": 0, "kvm_gid": 0}));
    as_root.assert_failed_with("Permission denied");
    let as_vdsm =
        lab.run(json!({"src_volume": lab.engine_disk(), "dest": backup_path, "verify": true}));
    as_vdsm.assert_ok();
}

/// A verified copy of the engine disk onto a backup volume keeps its proof in the volume's
/// metadata (vdsm `Volume.setDescription` in the domain's pool, as the SPM); the lab's vdsm
/// refuses the blank pool of hosted-engine.conf as vdsm does, and a host that is not the SPM
/// only gets a warning naming the checksum (the copy itself is good).
#[test]
fn a_verified_backup_copy_keeps_its_proof_in_the_backup_volume_metadata() {
    let lab = Lab::init();
    let made = lab.he_lab(&["original-backup-disk"]);
    let backup = json!({"sd_id": lab.engine_disk()["sd_id"], "image_id": made["image_id"],
        "volume_id": made["volume_id"]});
    let engine = lab.engine_path();
    let original = sha256_prefix(&engine, std::fs::metadata(&engine).unwrap().len());

    lab.lab.run(&["fault", "not_spm", "on"]);
    let not_spm = lab.run(
        json!({"src_volume": lab.engine_disk(), "dest_volume": backup,
        "verify": true, "checksum": "sha256"}),
    );
    not_spm.assert_ok();
    assert_eq!(not_spm.result["backup_proof"], Value::Null);
    let warnings = not_spm.result["warnings"].to_string();
    assert!(warnings.contains("Not SPM"), "{warnings}");
    assert!(
        warnings.contains(&format!("he_backup_checksum={original}")),
        "{warnings}"
    );
    lab.lab.run(&["fault", "not_spm", "off"]);

    let copy = lab.run(
        json!({"src_volume": lab.engine_disk(), "dest_volume": backup,
        "verify": true, "checksum": "sha256"}),
    );
    copy.assert_ok();
    let proof = json!({"algorithm": "sha256", "checksum": original,
        "size_bytes": copy.result["bytes_total"]});
    assert_eq!(copy.result["backup_proof"], proof);
    let inspect = lab.he_lab(&["inspect", "--json"]);
    let volume = inspect["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["image_id"] == made["image_id"])
        .cloned()
        .unwrap();
    let description = volume["description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!(r#"{{"DiskAlias":"virtio-disk0","DiskDescription":"{}","HeVerified":"sha256:{original}:"#, made["name"].as_str().unwrap())),
        "{description}"
    );
}
