//! he_image_copy run as Ansible runs it: paths, sparse and qcow2 sources, fake vdsm volumes,
//! appliance OVAs good and bad, sizes and extend, the engine-disk guard, check mode.
mod support;
use support::bad_paths::BadPaths;

use rand::RngCore;
use serde_json::{json, Value};
use sha2::Digest;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use support::fake_vdsm::{FakeVdsm, Reply};
use support::{run_module, Run};

const MIB: usize = 1 << 20;
const SD: &str = "5a1b2c3d-0000-4000-8000-000000000001";
/// The pool the fake domain is attached to (hosted-engine.conf names it blank).
const CONNECTED_POOL: &str = "5849b030-626e-47cb-ad90-3ce782d831b3";
const ENGINE_IMAGE: &str = "6b2c3d4e-0000-4000-8000-000000000002";
const ENGINE_VOLUME: &str = "7c3d4e5f-0000-4000-8000-000000000003";
const BACKUP_IMAGE: &str = "8d4e5f60-0000-4000-8000-000000000004";
const BACKUP_VOLUME: &str = "9e5f6071-0000-4000-8000-000000000005";

fn random(length: usize) -> Vec<u8> {
    let mut data = vec![0u8; length];
    rand::thread_rng().fill_bytes(&mut data);
    data
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A sparse raw image: data at 0, a hole, data near the end; returns its content.
fn sparse_image(path: &Path, size: usize) -> Vec<u8> {
    let mut content = vec![0u8; size];
    content[..MIB].copy_from_slice(&random(MIB));
    content[size - 100_000..size - 50_000].copy_from_slice(&random(50_000));
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size as u64).unwrap();
    file.write_all_at(&content[..MIB], 0).unwrap();
    file.write_all_at(&content[size - 100_000..], (size - 100_000) as u64)
        .unwrap();
    content
}

fn copy_module(args: Value, work: &Path) -> Run {
    run_module("he_image_copy", args, work, Some(&work.join("bin")))
}

fn allocated_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn copies_path_to_path_over_garbage_byte_exactly_and_verifies() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source.raw");
    let content = sparse_image(&source, 12 * MIB);
    let dest = work.path().join("dest.raw");
    std::fs::write(&dest, random(14 * MIB)).unwrap();
    let run = copy_module(
        json!({"src": source, "dest": dest, "checksum": "sha256", "verify": true}),
        work.path(),
    );
    run.assert_ok();
    let written = std::fs::read(&dest).unwrap();
    assert_eq!(&written[..content.len()], &content[..]);
    assert!(
        written[content.len()..].iter().all(|&b| b == 0),
        "tail not zeroed"
    );
    assert_eq!(run.result["checksum"], json!(sha256_hex(&content)));
    assert_eq!(run.result["checksum_algorithm"], json!("sha256"));
    assert_eq!(run.result["bytes_total"], json!(12 * MIB));
    assert_eq!(run.result["verified"], json!(true));
    assert_eq!(run.result["changed"], json!(true));
    let log = std::fs::read_to_string(run.result["log_file"].as_str().unwrap()).unwrap();
    assert!(log.contains("(100.0%)") && log.contains("/s, ETA"), "{log}");
}

#[test]
fn without_a_destination_the_source_is_only_hashed() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source.raw");
    let content = sparse_image(&source, 3 * MIB);
    let before = std::fs::metadata(&source).unwrap().modified().unwrap();
    let run = copy_module(json!({"src": source, "checksum": "sha256"}), work.path());
    run.assert_ok();
    assert_eq!(run.result["checksum"], json!(sha256_hex(&content)));
    assert_eq!(run.result["changed"], json!(false));
    assert_eq!(run.result["dest_path"], Value::Null);
    assert!(
        run.result["msg"]
            .as_str()
            .unwrap()
            .starts_with("hashed 3.0 MiB"),
        "{}",
        run.result
    );
    assert_eq!(
        std::fs::metadata(&source).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn the_progress_file_ends_finished_with_the_message_or_the_error() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source.raw");
    sparse_image(&source, 4 * MIB);
    let progress = work.path().join("copy.progress.json");
    let read_progress =
        || -> Value { serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap() };

    let run = copy_module(
        json!({"src": source, "dest": work.path().join("dest.raw"), "progress_file": progress}),
        work.path(),
    );
    run.assert_ok();
    let record = read_progress();
    assert_eq!(record["module"], json!("he_image_copy"));
    assert_eq!(record["finished"], json!(true));
    assert_eq!(record["failed"], json!(false));
    assert_eq!(record["text"], run.result["msg"]);
    assert_eq!(
        std::fs::metadata(&progress).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let run = copy_module(
        json!({"src": work.path().join("missing.raw"), "dest": work.path().join("dest.raw"),
               "progress_file": progress}),
        work.path(),
    );
    run.assert_failed_with("missing.raw");
    let record = read_progress();
    assert_eq!(record["finished"], json!(true));
    assert_eq!(record["failed"], json!(true));
    let text = record["text"].as_str().unwrap();
    assert!(
        text.starts_with("he_image_copy failed: ") && text.contains("missing.raw"),
        "{text}"
    );
}

#[test]
fn a_sparse_source_gives_a_sparse_new_destination_and_the_default_blake3() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source.raw");
    let content = sparse_image(&source, 64 * MIB);
    let dest = work.path().join("new.raw");
    let run = copy_module(json!({"src": source, "dest": dest}), work.path());
    run.assert_ok();
    assert_eq!(std::fs::read(&dest).unwrap(), content);
    assert!(
        allocated_bytes(&dest) < 8 * MIB as u64,
        "dest not sparse: {}",
        allocated_bytes(&dest)
    );
    let expected =
        he_modules::image::copy::hash_bytes(&content, he_modules::image::digest::Algorithm::Blake3);
    assert_eq!(run.result["checksum"], json!(expected));
    assert_eq!(run.result["checksum_algorithm"], json!("blake3"));
    assert!(run.result["bytes_written"].as_u64().unwrap() <= 2 * MIB as u64);
}

#[test]
fn converts_a_qcow2_source_onto_garbage() {
    let work = tempfile::tempdir().unwrap();
    let raw = work.path().join("image.raw");
    let content = sparse_image(&raw, 16 * MIB);
    let qcow2 = work.path().join("image.qcow2");
    qemu_img(&["convert", "-f", "raw", "-O", "qcow2"], &[&raw, &qcow2]);
    let dest = work.path().join("dest.raw");
    std::fs::write(&dest, random(20 * MIB)).unwrap();
    let run = copy_module(
        json!({"src": qcow2, "dest": dest, "checksum": "sha1"}),
        work.path(),
    );
    run.assert_ok();
    let written = std::fs::read(&dest).unwrap();
    assert_eq!(&written[..content.len()], &content[..]);
    assert!(written[content.len()..].iter().all(|&b| b == 0));
    assert_eq!(run.result["bytes_total"], json!(16 * MIB));
    assert_eq!(
        run.result["checksum"],
        json!(hex::encode(sha1::Sha1::digest(&content)))
    );
}

#[test]
fn a_qcow2_with_a_backing_file_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base.qcow2");
    qemu_img(&["create", "-f", "qcow2"], &[&base, Path::new("4M")]);
    let overlay = work.path().join("overlay.qcow2");
    qemu_img(
        &["create", "-f", "qcow2", "-F", "qcow2", "-b"],
        &[&base, &overlay],
    );
    let dest = work.path().join("dest.raw");
    copy_module(json!({"src": overlay, "dest": dest}), work.path())
        .assert_failed_with("has a backing file");
    assert!(!dest.exists());
}

#[test]
fn check_mode_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source.raw");
    sparse_image(&source, 4 * MIB);
    let dest = work.path().join("dest.raw");
    let garbage = random(4 * MIB);
    std::fs::write(&dest, &garbage).unwrap();
    let run = copy_module(
        json!({"src": source, "dest": dest, "_ansible_check_mode": true, "_ansible_diff": true}),
        work.path(),
    );
    run.assert_ok();
    assert_eq!(std::fs::read(&dest).unwrap(), garbage);
    assert_eq!(run.result["changed"], json!(true));
    assert!(
        run.msg().starts_with("would copy 4.0 MiB"),
        "{}",
        run.result
    );
    assert!(run.result["diff"]["after"].is_object());
    let missing = work.path().join("missing.raw");
    copy_module(
        json!({"src": source, "dest": missing, "_ansible_check_mode": true}),
        work.path(),
    )
    .assert_ok();
    assert!(!missing.exists());
}

#[test]
fn bad_options_are_named_before_anything_happens() {
    let work = tempfile::tempdir().unwrap();
    copy_module(
        json!({"src": "/a", "src_ova": "/b", "dest": "/c"}),
        work.path(),
    )
    .assert_failed_with("mutually exclusive");
    copy_module(json!({"src_ova": "/a"}), work.path())
        .assert_failed_with("one of the options 'dest', 'dest_volume' is required");
    let source = work.path().join("source.raw");
    std::fs::write(&source, b"not a backup disk").unwrap();
    copy_module(
        json!({"src": source, "dest": work.path().join("c"), "backup_checksum": "ab",
               "unrecorded_backup": true}),
        work.path(),
    )
    .assert_failed_with("option 'unrecorded_backup' restores a backup disk onto the engine disk");
    assert!(!work.path().join("c").exists());
    copy_module(
        json!({"src": "/a", "dest": "/c", "checksum": "md5"}),
        work.path(),
    )
    .assert_failed_with("option 'checksum': invalid choice");
    copy_module(
        json!({"src": "/a", "dest": "/c", "checksum": "none", "verify": true}),
        work.path(),
    )
    .assert_failed_with("'verify' needs a checksum");
    copy_module(
        json!({"src": "/a", "dest": "/c", "sha1": "00"}),
        work.path(),
    )
    .assert_failed_with("option 'sha1' goes with 'src_ova'");
    copy_module(json!({"src": "/nonexistent", "dest": "/c"}), work.path())
        .assert_failed_with("/nonexistent");
}

fn qemu_img(args: &[&str], paths: &[&Path]) {
    let status = std::process::Command::new("qemu-img")
        .args(args)
        .args(paths)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A fake host: hosted-engine.conf naming the engine disk, and a vdsm that keeps volumes as
/// files under `storage/` and answers in vdsm's JSON shapes (host-formats §4).
struct FakeHost {
    work: tempfile::TempDir,
    vdsm: FakeVdsm,
}

impl FakeHost {
    fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        let storage = work.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        std::fs::write(
            work.path().join("hosted-engine.conf"),
            format!("fqdn=engine.example.com\nvmid=0d1e2f30-0000-4000-8000-000000000009\nsdUUID={SD}\nspUUID=00000000-0000-0000-0000-000000000000\nvm_disk_id={ENGINE_IMAGE}\nvm_disk_vol_id={ENGINE_VOLUME}\nhost_id=1\n"),
        )
        .unwrap();
        let vdsm = FakeVdsm::start(move |method, params| {
            let param = |name: &str| {
                params
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let (sd, image, volume) = (
                param("storagedomainID"),
                param("imageID"),
                param("volumeID"),
            );
            let path = storage.join(&sd).join("images").join(&image).join(&volume);
            match method {
                "Image.prepare" if path.exists() => Reply::Result(json!({"path": path})),
                "Image.prepare" => {
                    Reply::Error(254, format!("Volume does not exist: ('{volume}',)"))
                }
                "Volume.getInfo" => {
                    let size = std::fs::metadata(&path)
                        .map(|m| m.len())
                        .unwrap_or(0)
                        .to_string();
                    let format = if PathBuf::from(format!("{}.cow", path.display())).exists() {
                        "COW"
                    } else {
                        "RAW"
                    };
                    Reply::Result(
                        json!({"apparentsize": size, "capacity": size, "children": [], "ctime": "1700000000", "description": "", "disktype": "DATA", "domain": sd, "format": format, "generation": 0, "image": image, "legality": "LEGAL", "mtime": "0", "parent": "00000000-0000-0000-0000-000000000000", "pool": "", "status": "OK", "truesize": size, "type": "SPARSE", "uuid": volume, "voltype": "LEAF"}),
                    )
                }
                "StorageDomain.getInfo" => Reply::Result(
                    json!({"uuid": sd, "type": "NFS", "class": "Data", "role": "Master", "pool": [CONNECTED_POOL]}),
                ),
                // An SPM verb of the connected pool: HSM.getPool refuses any other id.
                "Volume.extendSize" if param("storagepoolID") != CONNECTED_POOL => Reply::Error(
                    309,
                    format!(
                        "Unknown pool id, pool not connected: ('{}',)",
                        param("storagepoolID")
                    ),
                ),
                "Volume.extendSize" => {
                    let size: u64 = param("newSize").parse().unwrap();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(size)
                        .unwrap();
                    Reply::Result(json!("4f5e6d7c-0000-4000-8000-00000000000a"))
                }
                "Task.getStatus" => Reply::Result(
                    json!({"code": 0, "message": "1 jobs completed successfully", "taskID": param("taskID"), "taskResult": "success", "taskState": "finished"}),
                ),
                other => Reply::Error(-32601, format!("unexpected {other}")),
            }
        });
        Self { work, vdsm }
    }

    fn volume_path(&self, image: &str, volume: &str) -> PathBuf {
        self.work
            .path()
            .join("storage")
            .join(SD)
            .join("images")
            .join(image)
            .join(volume)
    }

    /// A volume as vdsm keeps it: vdsm:kvm (36:36) 0660, in directories anyone may enter.
    fn add_volume(&self, image: &str, volume: &str, content: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.volume_path(image, volume);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::os::unix::fs::chown(&path, Some(36), Some(36)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
        std::fs::set_permissions(self.work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn run(&self, mut args: Value) -> Run {
        args["he_conf"] = json!(self.work.path().join("hosted-engine.conf"));
        args["state_dir"] = json!(self.work.path().join("state"));
        copy_module(self.vdsm.with_options(args), self.work.path())
    }

    fn vdsm_calls(&self) -> String {
        self.vdsm.calls().join("\n")
    }
}

fn volume(image: &str, volume: &str) -> Value {
    json!({"sd_id": SD, "image_id": image, "volume_id": volume})
}

#[test]
fn engine_disk_writes_need_a_verified_backup_of_the_current_content() {
    let host = FakeHost::new();
    let original = random(6 * MIB);
    let engine = host.add_volume(ENGINE_IMAGE, ENGINE_VOLUME, &original);
    host.add_volume(BACKUP_IMAGE, BACKUP_VOLUME, &random(6 * MIB));
    let new_image = host.work.path().join("new.raw");
    let appliance = random(5 * MIB);
    std::fs::write(&new_image, &appliance).unwrap();

    // No checksum, an invented one, or the engine disk named by its path: refused.
    host.run(json!({"src": new_image, "dest_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME)}))
        .assert_failed_with("refusing to write the engine disk");
    host.run(json!({"src": new_image, "dest": engine, "backup_checksum": "ab".repeat(32)}))
        .assert_failed_with("no verified backup with checksum");
    assert_eq!(std::fs::read(&engine).unwrap(), original);

    // Check mode without a checksum warns (a check-mode playbook has made no backup yet).
    let check = host.run(
        json!({"src": new_image, "dest_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME),
        "_ansible_check_mode": true}),
    );
    check.assert_ok();
    assert_eq!(check.result["engine_disk_write"], json!("needs_backup"));
    assert!(check.result["warnings"]
        .to_string()
        .contains("needs backup_checksum"));
    host.run(
        json!({"src": new_image, "dest": engine, "backup_checksum": "ab".repeat(32),
        "_ansible_check_mode": true}),
    )
    .assert_failed_with("no verified backup with checksum");

    // A backup without verify keeps no record.
    let unverified = host.run(json!({"src_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME),
        "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME)}));
    unverified.assert_ok();
    assert!(unverified.result["warnings"]
        .to_string()
        .contains("without verify"));
    host.run(
        json!({"src": new_image, "dest": engine, "backup_checksum": unverified.result["checksum"]}),
    )
    .assert_failed_with("no verified backup");

    // A verified backup authorises the write.
    let backup = host.run(json!({"src_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME),
        "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME), "verify": true}));
    backup.assert_ok();
    let checksum = backup.result["checksum"].clone();
    assert!(
        backup.result["backup_record"].is_string(),
        "{}",
        backup.result
    );
    assert_eq!(
        std::fs::read(host.volume_path(BACKUP_IMAGE, BACKUP_VOLUME)).unwrap(),
        original
    );
    let upgrade = host.run(
        json!({"src": new_image, "dest_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME),
        "backup_checksum": checksum}),
    );
    upgrade.assert_ok();
    assert_eq!(upgrade.result["engine_disk_write"], json!("backed_up"));
    let written = std::fs::read(&engine).unwrap();
    assert_eq!(&written[..appliance.len()], &appliance[..]);
    assert!(written[appliance.len()..].iter().all(|&b| b == 0));

    // A re-run (after a later step failed) may write it again: it holds what was written.
    let again = host.run(json!({"src": new_image, "dest": engine, "backup_checksum": checksum}));
    again.assert_ok();
    assert_eq!(again.result["engine_disk_write"], json!("rewrite"));

    // Changed by something else (the new engine ran): only restoring the backup is allowed.
    let mut ran = std::fs::read(&engine).unwrap();
    ran[100] ^= 0xff;
    std::fs::write(&engine, &ran).unwrap();
    let other = host.work.path().join("other.raw");
    std::fs::write(&other, random(MIB)).unwrap();
    host.run(json!({"src": other, "dest": engine, "backup_checksum": checksum}))
        .assert_failed_with("its content changed since the backup");
    assert_eq!(std::fs::read(&engine).unwrap(), ran);
    let rollback = host.run(json!({"src_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME),
        "dest_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME), "backup_checksum": checksum, "verify": true}));
    rollback.assert_ok();
    assert_eq!(rollback.result["engine_disk_write"], json!("restore"));
    assert_eq!(std::fs::read(&engine).unwrap(), original);

    // A tampered backup is no proof.
    host.add_volume(BACKUP_IMAGE, BACKUP_VOLUME, &random(6 * MIB));
    host.run(json!({"src": new_image, "dest": engine, "backup_checksum": checksum}))
        .assert_failed_with("no longer matches");
    assert_eq!(std::fs::read(&engine).unwrap(), original);
    assert!(host.vdsm_calls().contains("Image.prepare"));
}

#[test]
fn volumes_are_sized_and_extended_through_vdsm() {
    let host = FakeHost::new();
    host.add_volume(ENGINE_IMAGE, ENGINE_VOLUME, &random(MIB));
    let target = host.add_volume(BACKUP_IMAGE, BACKUP_VOLUME, &random(2 * MIB));
    let image = host.work.path().join("big.raw");
    let content = sparse_image(&image, 3 * MIB);
    let refused =
        host.run(json!({"src": image, "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME)}));
    refused.assert_failed_with("Error on volume size: the selected image (size 3145728 bytes, 3.0 MiB) doesn't fit the target volume (size 2097152 bytes, 2.0 MiB)");
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 2 * MIB as u64);
    let check = host.run(
        json!({"src": image, "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME),
        "extend": true, "_ansible_check_mode": true}),
    );
    check.assert_ok();
    assert_eq!(check.result["extended_to_bytes"], json!(1u64 << 30));
    assert!(!host.vdsm_calls().contains("extendSize"));
    let run = host.run(
        json!({"src": image, "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME), "extend": true}),
    );
    run.assert_ok();
    assert!(
        host.vdsm_calls().contains("Volume.extendSize"),
        "{}",
        host.vdsm_calls()
    );
    let written = std::fs::read(&target).unwrap();
    assert_eq!(written.len(), 1 << 30);
    assert_eq!(&written[..content.len()], &content[..]);
    assert!(written[content.len()..].iter().all(|&b| b == 0));
    std::fs::write(target.with_extension("cow"), b"").unwrap();
    let cow = target
        .parent()
        .unwrap()
        .join(format!("{BACKUP_VOLUME}.cow"));
    std::fs::write(cow, b"").unwrap();
    host.run(json!({"src": image, "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME)}))
        .assert_failed_with("only RAW volumes can be written");
}

/// Builds an appliance OVA as imagefactory does: OVF, qcow2 disk and .meta in a (gzip) tar.
struct Ova {
    path: PathBuf,
    raw: Vec<u8>,
    sha1: String,
}

fn ovf(file_ref: &str) -> String {
    ovf_declaring(file_ref, "COW")
}

/// An OVF whose disk is `ovf:volume-format` `format` (`COW` or `RAW`).
fn ovf_declaring(file_ref: &str, format: &str) -> String {
    format!(
        r#"<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="0.9"><References><File ovf:href="{file_ref}" ovf:id="VOL" ovf:size="33554432"/></References><Section xsi:type="ovf:DiskSection_Type"><Disk ovf:diskId="VOL" ovf:size="1" ovf:actual_size="1" ovf:fileRef="{file_ref}" ovf:volume-format="{format}" ovf:boot="true"/></Section><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="out"><Section xsi:type="ovf:VirtualHardwareSection_Type"><Item><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>1</rasd:num_of_sockets><rasd:cpu_per_socket>4</rasd:cpu_per_socket></Item><Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>16384</rasd:VirtualQuantity></Item></Section></Content></ovf:Envelope>"#
    )
}

fn build_ova(
    dir: &Path,
    name: &str,
    gzip: bool,
    ovf_text: Option<&str>,
    disk_member: Option<&str>,
    raw_disk: bool,
) -> Ova {
    let raw_path = dir.join(format!("{name}.disk.raw"));
    let raw = sparse_image(&raw_path, 32 * MIB);
    let disk = if raw_disk {
        raw_path.clone()
    } else {
        let qcow2 = dir.join(format!("{name}.qcow2"));
        qemu_img(
            &["convert", "-f", "raw", "-O", "qcow2"],
            &[&raw_path, &qcow2],
        );
        qcow2
    };
    let path = dir.join(format!("{name}.ova"));
    let file = std::fs::File::create(&path).unwrap();
    let writer: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(file)
    };
    let mut tar = tar::Builder::new(writer);
    let mut add = |member: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, member, data).unwrap();
    };
    if let Some(text) = ovf_text {
        add("master/vms/TPL/TPL.ovf", text.as_bytes());
    }
    if let Some(member) = disk_member {
        add(member, &std::fs::read(&disk).unwrap());
        add(&format!("{member}.meta"), b"FORMAT=COW\nEOF\n");
    }
    let mut inner = tar.into_inner().unwrap();
    inner.flush().unwrap();
    drop(inner); // finishes the gzip stream
    let sha1 = hex::encode(sha1::Sha1::digest(std::fs::read(&path).unwrap()));
    Ova { path, raw, sha1 }
}

fn good_ova(dir: &Path, name: &str, gzip: bool) -> Ova {
    build_ova(
        dir,
        name,
        gzip,
        Some(&ovf("IMG/VOL")),
        Some("images/IMG/VOL"),
        false,
    )
}

#[test]
fn stages_an_ova_in_one_pass_then_copies_the_staged_image() {
    let work = tempfile::tempdir().unwrap();
    let ova = good_ova(work.path(), "appliance", true);
    let stage = work.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let check = copy_module(
        json!({"src_ova": ova.path, "sha1": ova.sha1, "stage_dir": stage,
        "_ansible_check_mode": true}),
        work.path(),
    );
    check.assert_ok();
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        0,
        "check mode staged files"
    );
    assert_eq!(check.result["ovf"]["ovf"]["cpus"], json!(4));
    let staged = copy_module(
        json!({"src_ova": ova.path, "sha1": ova.sha1.to_uppercase(), "stage_dir": stage}),
        work.path(),
    );
    staged.assert_ok();
    let staged_path = PathBuf::from(staged.result["staged"].as_str().unwrap());
    assert_eq!(std::fs::read(&staged_path).unwrap(), ova.raw);
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        1,
        "only the raw image stays"
    );
    let ovf = &staged.result["ovf"];
    assert_eq!(ovf["sha1"], json!(ova.sha1));
    assert_eq!(
        ovf["ovf"],
        json!({"disk_size_gib": 1, "file_ref": "IMG/VOL", "disk_alias": "virtio-disk0", "volume_format": "COW", "cpus": 4, "memory_mb": 16384})
    );
    assert_eq!(ovf["disk_member"], json!("images/IMG/VOL"));
    assert_eq!(ovf["disk_virtual_size_bytes"], json!(32 * MIB));
    assert!(
        staged.result["warnings"].to_string().contains("disk-alias"),
        "{}",
        staged.result
    );
    let expected =
        he_modules::image::copy::hash_bytes(&ova.raw, he_modules::image::digest::Algorithm::Blake3);
    assert_eq!(staged.result["checksum"], json!(expected));
    // The downtime copy is a plain raw copy of the staged file.
    let dest = work.path().join("engine.raw");
    std::fs::write(&dest, random(40 * MIB)).unwrap();
    let copied = copy_module(json!({"src": staged_path, "dest": dest}), work.path());
    copied.assert_ok();
    assert_eq!(copied.result["checksum"], json!(expected));
    assert_eq!(
        &std::fs::read(&dest).unwrap()[..ova.raw.len()],
        &ova.raw[..]
    );
}

#[test]
fn a_plain_tar_ova_named_by_an_appliance_description_goes_straight_to_a_destination() {
    let work = tempfile::tempdir().unwrap();
    let ova = good_ova(work.path(), "plain", false);
    let description = work.path().join("10-appliance.conf");
    std::fs::write(&description, format!("description=The oVirt Engine Appliance image (OVA)\nversion=4.4-1\npath={}\nsha1sum={}\n", ova.path.display(), ova.sha1)).unwrap();
    let stage = work.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let dest = work.path().join("dest.raw");
    std::fs::write(&dest, random(32 * MIB)).unwrap();
    let run = copy_module(
        json!({"appliance_desc": description, "stage_dir": stage, "dest": dest}),
        work.path(),
    );
    run.assert_ok();
    assert_eq!(std::fs::read(&dest).unwrap(), ova.raw);
}

/// An engine-written OVF declaring `ovf:volume-format="RAW"` with a raw disk member: read
/// as raw, staged as it is (no conversion), copied.
#[test]
fn a_raw_ova_disk_is_staged_as_it_is() {
    let work = tempfile::tempdir().unwrap();
    let ova = build_ova(
        work.path(),
        "raw",
        true,
        Some(&ovf_declaring("IMG/VOL", "RAW")),
        Some("images/IMG/VOL"),
        true,
    );
    let stage = work.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let staged = copy_module(
        json!({"src_ova": ova.path, "sha1": ova.sha1, "stage_dir": stage}),
        work.path(),
    );
    staged.assert_ok();
    assert_eq!(staged.result["ovf"]["ovf"]["volume_format"], json!("RAW"));
    assert_eq!(
        staged.result["ovf"]["disk_virtual_size_bytes"],
        json!(32 * MIB)
    );
    let staged_path = PathBuf::from(staged.result["staged"].as_str().unwrap());
    assert_eq!(staged_path, stage.join("raw.raw"));
    assert_eq!(std::fs::read(&staged_path).unwrap(), ova.raw);
    assert_eq!(std::fs::read_dir(&stage).unwrap().count(), 1);
}

#[test]
fn bad_ovas_are_refused_and_leave_nothing_staged() {
    let work = tempfile::tempdir().unwrap();
    let stage = work.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let cases: Vec<(Ova, Option<String>, &str)> = vec![
        (
            good_ova(work.path(), "wrongsha", true),
            Some("0".repeat(40)),
            "is corrupted: SHA-1",
        ),
        (
            build_ova(
                work.path(),
                "noovf",
                true,
                None,
                Some("images/IMG/VOL"),
                false,
            ),
            None,
            "has no OVF description",
        ),
        (
            build_ova(
                work.path(),
                "badxml",
                true,
                Some("<ovf:Envelope><Section><Disk"),
                Some("images/IMG/VOL"),
                false,
            ),
            None,
            "malformed OVF",
        ),
        (
            build_ova(
                work.path(),
                "nodisk",
                true,
                Some(&ovf("IMG/VOL")),
                Some("images/IMG/OTHER"),
                false,
            ),
            None,
            "has no disk member images/IMG/VOL",
        ),
        (
            build_ova(
                work.path(),
                "rawdisk",
                true,
                Some(&ovf("IMG/VOL")),
                Some("images/IMG/VOL"),
                true,
            ),
            None,
            "the OVF declares disk member images/IMG/VOL ovf:volume-format=\"COW\" but the member has no qcow2 magic",
        ),
        (
            build_ova(
                work.path(),
                "qcow2-declared-raw",
                true,
                Some(&ovf_declaring("IMG/VOL", "RAW")),
                Some("images/IMG/VOL"),
                false,
            ),
            None,
            "ovf:volume-format=\"RAW\" but the member is a qcow2 image (qcow2 magic)",
        ),
    ];
    for (ova, sha1, message) in cases {
        let mut args = json!({"src_ova": ova.path, "stage_dir": stage});
        if let Some(sha1) = sha1 {
            args["sha1"] = json!(sha1);
        }
        copy_module(args, work.path()).assert_failed_with(message);
        assert_eq!(
            std::fs::read_dir(&stage).unwrap().count(),
            0,
            "{message}: staged files left"
        );
    }
    let truncated = good_ova(work.path(), "truncated", true);
    let bytes = std::fs::read(&truncated.path).unwrap();
    std::fs::write(&truncated.path, &bytes[..bytes.len() / 2]).unwrap();
    copy_module(
        json!({"src_ova": truncated.path, "stage_dir": stage}),
        work.path(),
    )
    .assert_failed_with("not a readable tar");
    assert_eq!(
        std::fs::read_dir(&stage).unwrap().count(),
        0,
        "truncated: staged files left"
    );
}

#[test]
fn an_ova_disk_bigger_than_the_target_is_refused_without_extend() {
    let work = tempfile::tempdir().unwrap();
    let ova = good_ova(work.path(), "big", true);
    let stage = work.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    let dest = work.path().join("small.raw");
    let garbage = random(16 * MIB);
    std::fs::write(&dest, &garbage).unwrap();
    copy_module(json!({"src_ova": ova.path, "sha1": ova.sha1, "stage_dir": stage, "dest": dest, "extend": false}), work.path())
        .assert_failed_with("Error on volume size: the selected image (size 33554432 bytes, 32.0 MiB) doesn't fit the target volume (size 16777216 bytes, 16.0 MiB)");
    assert_eq!(std::fs::read(&dest).unwrap(), garbage);
}

/// Every path option, given a missing, an unreadable and a wrong-type path, fails before
/// anything changes with a message naming that input and its path.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let ova = good_ova(dir, "good", true);
    let image = dir.join("image.raw");
    std::fs::write(&image, vec![1u8; 1 << 16]).unwrap();
    let stage = dir.join("stage");
    std::fs::create_dir(&stage).unwrap();
    let BadPaths {
        missing,
        looping,
        directory: a_dir,
        ..
    } = BadPaths::in_dir(dir);
    let file = image.clone();
    // option, base arguments, the wrong-type path, and what each message must say.
    let table: Vec<(&str, Value, &Path, [&str; 3])> = vec![
        (
            "src_ova",
            json!({"stage_dir": stage}),
            &a_dir,
            [
                "cannot read OVA",
                "cannot read OVA",
                "is not a regular file",
            ],
        ),
        (
            "stage_dir",
            json!({"src_ova": ova.path}),
            &file,
            [
                "stage directory {} does not exist",
                "stage directory {} cannot be used: Too many levels of symbolic links",
                "stage directory {} is not a directory",
            ],
        ),
        (
            "appliance_desc",
            json!({"stage_dir": stage}),
            &a_dir,
            [
                "cannot read appliance description {}: No such file",
                "cannot read appliance description {}: Too many levels",
                "cannot read appliance description {}: Is a directory",
            ],
        ),
        (
            "src",
            json!({"dest": dir.join("dest.raw")}),
            &a_dir,
            [
                "cannot read image {} as this process: No such file",
                "cannot read image {} as this process: Too many levels",
                "cannot read image {} as this process: Is a directory",
            ],
        ),
        (
            "he_conf",
            json!({"src": image, "dest": dir.join("dest.raw")}),
            &a_dir,
            [
                "cannot read hosted-engine configuration {}: No such file",
                "cannot read hosted-engine configuration {}: Too many levels",
                "cannot read hosted-engine configuration {}: Is a directory",
            ],
        ),
    ];
    for (option, base, wrong_type, messages) in table {
        for (path, message) in [missing.as_path(), looping.as_path(), wrong_type]
            .into_iter()
            .zip(messages)
        {
            let mut args = base.clone();
            args[option] = json!(path);
            let run = copy_module(args, dir);
            let expected = message.replace("{}", &path.display().to_string());
            run.assert_failed_with(&expected);
            assert!(
                run.msg().contains(&path.display().to_string()),
                "{option}: {}",
                run.msg()
            );
            assert_eq!(std::fs::read_dir(&stage).unwrap().count(), 0, "{option}");
            assert!(!dir.join("dest.raw").exists(), "{option}: dest written");
        }
    }
    // dest: a directory, a loop, a missing parent directory.
    for (dest, message) in [
        (
            a_dir.clone(),
            format!("option 'dest': {} is a directory", a_dir.display()),
        ),
        (
            looping.clone(),
            format!("cannot inspect destination {}", looping.display()),
        ),
        (
            missing.join("dest.raw"),
            format!("cannot create destination {}/dest.raw", missing.display()),
        ),
    ] {
        copy_module(json!({"src": image, "dest": dest}), dir).assert_failed_with(&message);
    }
    // state_dir: a missing one is created when needed; a file or a loop is refused.
    for (state_dir, problem) in [
        (&file, "is not a directory"),
        (
            &looping,
            "cannot be used: Too many levels of symbolic links",
        ),
    ] {
        let args = json!({"src": image, "dest": dir.join("dest.raw"), "state_dir": state_dir});
        copy_module(args, dir).assert_failed_with(&format!(
            "option 'state_dir': {} {problem}",
            state_dir.display()
        ));
        assert!(!dir.join("dest.raw").exists(), "state_dir: dest written");
    }
}

/// Run as root, volumes are opened as vdsm:kvm (SPEC 6.6): a volume only root may read (as
/// NFS with root_squash would never let root have it anyway) is refused, naming who asked.
#[test]
fn volumes_are_opened_as_vdsm_not_as_root() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let host = FakeHost::new();
    let engine = host.add_volume(ENGINE_IMAGE, ENGINE_VOLUME, &random(MIB));
    host.add_volume(BACKUP_IMAGE, BACKUP_VOLUME, &random(MIB));
    let copy = json!({"src_volume": volume(ENGINE_IMAGE, ENGINE_VOLUME),
        "dest_volume": volume(BACKUP_IMAGE, BACKUP_VOLUME), "verify": true});
    host.run(copy.clone()).assert_ok();
    std::os::unix::fs::chown(&engine, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o600)).unwrap();
    host.run(copy.clone()).assert_failed_with(&format!(
        "{} as uid 36, gid 36, groups 36: Permission denied",
        engine.display()
    ));
    let mut other_owner = copy;
    other_owner["vdsm_uid"] = json!(0);
    other_owner["kvm_gid"] = json!(0);
    host.run(other_owner).assert_ok();
}
