//! A fake hosted-engine host for the engine modules' tests: hosted-engine.conf and a vdsm
//! answering with recorded shapes (host-formats §4).
#![allow(dead_code)]

use crate::support::fake_vdsm::{FakeVdsm, Reply};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const SD_ID: &str = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d";
pub const ENGINE_IMAGE: &str = "2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e";
pub const ENGINE_VOLUME: &str = "3c9d0d4f-7d3e-4b9f-8e1b-6a2b3c4d5e6f";
pub const OLD_BACKUP_IMAGE: &str = "11111111-aaaa-4bbb-8ccc-000000000001";
pub const NEW_BACKUP_IMAGE: &str = "11111111-aaaa-4bbb-8ccc-000000000002";
pub const HOST_UUID: &str = "4C4C4544-0042-3010-8056-B4C04F4A4E31";

/// Writes `hosted-engine.conf` under `dir` and starts a vdsm answering with recorded shapes
/// (host-formats §4); the module options pointing at it are [`FakeVdsm::with_options`].
pub fn install(dir: &Path) -> (PathBuf, FakeVdsm) {
    let he_conf = dir.join("hosted-engine.conf");
    std::fs::write(
        &he_conf,
        format!(
            "fqdn=engine.example.com\nvmid=5b3f0a34-1b2c-4d5e-8f90-123456789abc\nhost_id=1\n\
             sdUUID={SD_ID}\nspUUID=00000000-0000-0000-0000-000000000000\n\
             vm_disk_id={ENGINE_IMAGE}\nvm_disk_vol_id={ENGINE_VOLUME}\n"
        ),
    )
    .unwrap();
    let info = |capacity: u64, ctime: u64, description: Value| {
        json!({"apparentsize": capacity.to_string(), "capacity": capacity.to_string(), "children": [],
               "ctime": ctime.to_string(), "description": description.as_str().map(str::to_string).unwrap_or_else(|| description.to_string()),
               "disktype": "DATA", "domain": SD_ID, "format": "RAW", "generation": 0, "image": "x",
               "legality": "LEGAL", "mtime": "0", "parent": "00000000-0000-0000-0000-000000000000",
               "pool": "", "status": "OK", "truesize": capacity.to_string(), "type": "PREALLOCATED",
               "uuid": "y", "voltype": "LEAF"})
    };
    let vdsm = FakeVdsm::start(move |method, params| {
        let param = |name: &str| {
            params
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match method {
            "Host.getHardwareInfo" => Reply::Result(
                json!({"systemFamily": "Virtual Machine", "systemManufacturer": "Red Hat", "systemProductName": "KVM", "systemSerialNumber": "x", "systemUUID": HOST_UUID, "systemVersion": "RHEL 7.6.0 PC"}),
            ),
            "StorageDomain.getImages" => Reply::Result(json!([
                ENGINE_IMAGE,
                OLD_BACKUP_IMAGE,
                NEW_BACKUP_IMAGE,
                "22222222-aaaa-4bbb-8ccc-000000000003"
            ])),
            "Image.getVolumes" => Reply::Result(json!(["33333333-aaaa-4bbb-8ccc-000000000009"])),
            "Volume.getInfo" => Reply::Result(match param("imageID").as_str() {
                ENGINE_IMAGE => info(
                    10737418240,
                    1500000000,
                    json!({"DiskAlias": "he_virtio_disk", "DiskDescription": "Hosted-Engine disk"}),
                ),
                OLD_BACKUP_IMAGE => info(
                    10737418240,
                    1600000000,
                    json!({"DiskAlias": "virtio-disk0", "DiskDescription": "hosted-engine-backup-20200913122640"}),
                ),
                NEW_BACKUP_IMAGE => info(
                    10737418240,
                    1700000000,
                    json!({"DiskAlias": "hosted-engine-backup-20231114221320", "DiskDescription": "hosted-engine-backup-20231114221320"}),
                ),
                _ => info(1073741824, 1700000001, json!("")),
            }),
            other => Reply::Error(
                -32601,
                format!("The method does not exist or is not available: {{'method': '{other}'}}"),
            ),
        }
    });
    (he_conf, vdsm)
}

/// Every file under `dir` (logs, args files) and the given outputs: none may hold `secret`.
pub fn assert_secret_absent(dir: &Path, outputs: &[&str], secret: &str) {
    for output in outputs {
        assert!(
            !output.contains(secret),
            "secret leaked in output: {output}"
        );
    }
    let mut checked_logs = 0;
    for entry in walk(dir) {
        if entry.extension().is_some_and(|ext| ext == "json") {
            continue; // the args file Ansible would write (and delete) holds it by design
        }
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
        assert!(
            !text.contains(secret),
            "secret leaked in {}",
            entry.display()
        );
        if entry.extension().is_some_and(|ext| ext == "log") {
            checked_logs += 1;
        }
    }
    assert!(
        checked_logs > 0,
        "no run log was written under {}",
        dir.display()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
