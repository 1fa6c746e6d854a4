//! he_inject_backup run as Ansible runs it, on archives built exactly as engine-backup
//! builds them (reference original-tool §7) and on hostile ones.
mod support;
use support::bad_paths::BadPaths;

use md5::{Digest, Md5};
use serde_json::json;
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::run_module;
use tar::{EntryType, Header};

const AUTHZ: &str = "org.ovirt.engine.api.extensions.aaa.Authz";

/// One tar member; names are written raw so hostile names survive.
struct Member {
    name: String,
    kind: EntryType,
    link: String,
    data: Vec<u8>,
}

fn file(name: &str, data: impl Into<Vec<u8>>) -> Member {
    Member {
        name: name.into(),
        kind: EntryType::Regular,
        link: String::new(),
        data: data.into(),
    }
}

fn special(name: &str, kind: EntryType, link: &str) -> Member {
    Member {
        name: name.into(),
        kind,
        link: link.into(),
        data: Vec::new(),
    }
}

fn tar_bytes(members: &[Member]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..member.name.len()].copy_from_slice(member.name.as_bytes());
        header.as_old_mut().linkname[..member.link.len()].copy_from_slice(member.link.as_bytes());
        header.set_entry_type(member.kind);
        header.set_size(member.data.len() as u64);
        header.set_mode(if member.kind == EntryType::Directory {
            0o755
        } else {
            0o600
        });
        header.set_mtime(1_500_000_000);
        header.set_cksum();
        builder.append(&header, &member.data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut &data[..], &mut out).unwrap();
    out
}

fn properties(name: &str, provides: &str) -> String {
    format!(
        "ovirt.engine.extension.name = {name}\novirt.engine.extension.bindings.method = jbossmodule\n\
         ovirt.engine.extension.provides = {provides}\n"
    )
}

/// `./files` as engine-backup writes it: `tar -C / -cpSJf` of product files.
fn files_tar(extra: Vec<Member>) -> Vec<Member> {
    let dir = "etc/ovirt-engine/extensions.d/";
    let mut members = vec![
        special("etc/ovirt-engine/", EntryType::Directory, ""),
        special(dir, EntryType::Directory, ""),
        file(
            &format!("{dir}internal-authz.properties"),
            properties("internal-authz", AUTHZ),
        ),
        file(
            &format!("{dir}internal-authn.properties"),
            properties(
                "internal-authn",
                "org.ovirt.engine.api.extensions.aaa.Authn",
            ),
        ),
        file(
            &format!("{dir}example.com-authz.properties"),
            properties("example.com-authz", AUTHZ),
        ),
        file(
            "etc/ovirt-engine/engine.conf.d/10-setup-database.conf",
            "ENGINE_DB_HOST=localhost\n",
        ),
        file(
            "etc/pki/ovirt-engine/ca.pem",
            "-----BEGIN CERTIFICATE-----\n",
        ),
        special(
            "etc/pki/ovirt-engine/apache-ca.pem",
            EntryType::Symlink,
            "ca.pem",
        ),
        special(
            "etc/pki/ovirt-engine/certs/engine.cer",
            EntryType::Symlink,
            "/etc/pki/ovirt-engine/certs/engine-real.cer",
        ),
    ];
    members.extend(extra);
    members
}

/// The outer members of a 4.1 engine backup, with or without DWH and Reports dumps.
fn backup_members(files: Vec<u8>, dwh: bool, reports: bool) -> Vec<(String, Vec<u8>)> {
    let mut members = vec![
        ("files".to_string(), files),
        (
            "db/engine_backup.db".to_string(),
            b"PGDMP\x01\x0c engine dump".repeat(1000),
        ),
        ("version".to_string(), b"4.1.9.1\n".to_vec()),
        ("os_version".to_string(), b"centos7\n".to_vec()),
        (
            "config".to_string(),
            b"OVESETUP_DB_HOST=localhost\n".to_vec(),
        ),
    ];
    if dwh {
        members.push(("db/dwh_backup.db".into(), b"PGDMP dwh".to_vec()));
    }
    if reports {
        members.push(("db/reports_backup.db".into(), b"PGDMP reports".to_vec()));
    }
    members
}

/// `tar -C TEMP -cpSzf FILE .` after `md5sum` of every file: `./` names, `./md5sum` last.
fn outer_tar(members: &[(String, Vec<u8>)], extra: Vec<Member>) -> Vec<u8> {
    let md5sum: String = members
        .iter()
        .map(|(name, data)| format!("{}  {name}\n", hex::encode(Md5::digest(data))))
        .collect();
    let mut entries = vec![
        special("./", EntryType::Directory, ""),
        special("./db/", EntryType::Directory, ""),
    ];
    entries.extend(
        members
            .iter()
            .map(|(name, data)| file(&format!("./{name}"), data.clone())),
    );
    entries.push(file("./md5sum", md5sum));
    entries.extend(extra);
    tar_bytes(&entries)
}

fn standard_archive() -> Vec<u8> {
    gzip(&outer_tar(
        &backup_members(xz(&tar_bytes(&files_tar(vec![]))), false, false),
        vec![],
    ))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn validate(bytes: &[u8]) -> (support::Run, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let backup = write(work.path(), "engine.tar.gz", bytes);
    let run = run_module(
        "he_inject_backup",
        json!({"backup": backup, "validate_only": true}),
        work.path(),
        None,
    );
    (run, work)
}

#[test]
fn validates_an_engine_backup_archive_and_reports_its_facts() {
    let bytes = standard_archive();
    let (run, _work) = validate(&bytes);
    run.assert_ok();
    let backup = &run.result["backup"];
    assert_eq!(run.result["changed"], json!(false));
    assert_eq!(backup["engine_version"], json!("4.1.9.1"));
    assert_eq!(backup["os_version"], json!("centos7"));
    assert_eq!(backup["dwh"], json!(false));
    assert_eq!(backup["reports"], json!(false));
    assert_eq!(backup["sha256"], json!(hex::encode(Sha256::digest(&bytes))));
    assert_eq!(backup["size_bytes"], json!(bytes.len()));
    assert_eq!(backup["created"], json!("2017-07-14T02:40:00Z"));
    assert_eq!(backup["compression"], json!("gzip"));
    assert_eq!(backup["files_compression"], json!("xz"));
    assert_eq!(
        backup["aaa"],
        json!(["example.com-authz", "internal-authz"])
    );
    assert_eq!(
        backup["members"],
        json!([
            "files",
            "db/engine_backup.db",
            "version",
            "os_version",
            "config",
            "md5sum"
        ])
    );
    assert_eq!(backup["checksum_file"], json!("md5sum"));
}

#[test]
fn detects_dwh_and_reports_dumps_in_any_compression() {
    let files = gzip(&tar_bytes(&files_tar(vec![])));
    let bytes = xz(&outer_tar(&backup_members(files, true, true), vec![]));
    let (run, _work) = validate(&bytes);
    run.assert_ok();
    assert_eq!(run.result["backup"]["dwh"], json!(true));
    assert_eq!(run.result["backup"]["reports"], json!(true));
    assert_eq!(run.result["backup"]["compression"], json!("xz"));
    assert_eq!(run.result["backup"]["files_compression"], json!("gzip"));
    let plain = outer_tar(
        &backup_members(tar_bytes(&files_tar(vec![])), true, false),
        vec![],
    );
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&plain).unwrap();
    let (run, _work) = validate(&bz.finish().unwrap());
    run.assert_ok();
    assert_eq!(run.result["backup"]["compression"], json!("bzip2"));
    assert_eq!(run.result["backup"]["files_compression"], json!("none"));
    assert_eq!(run.result["backup"]["reports"], json!(false));
}

fn hostile(extra: Vec<Member>) -> Vec<u8> {
    gzip(&outer_tar(
        &backup_members(xz(&tar_bytes(&files_tar(vec![]))), false, false),
        extra,
    ))
}

#[test]
fn refuses_a_parent_directory_member() {
    let (run, _work) = validate(&hostile(vec![file(
        "./../../etc/cron.d/evil",
        "* * * * * root sh",
    )]));
    run.assert_failed_with(
        "unsafe member \"./../../etc/cron.d/evil\" in backup archive: path contains `..`",
    );
}

#[test]
fn refuses_an_absolute_member() {
    let (run, _work) = validate(&hostile(vec![file("/etc/cron.d/evil", "x")]));
    run.assert_failed_with("unsafe member \"/etc/cron.d/evil\" in backup archive: absolute path");
}

#[test]
fn refuses_links_leaving_the_archive() {
    let (run, _work) = validate(&hostile(vec![special(
        "./db/escape",
        EntryType::Symlink,
        "../../root",
    )]));
    run.assert_failed_with("symbolic link to \"../../root\" leaves the archive");
    let (run, _work) = validate(&hostile(vec![special(
        "./shadow",
        EntryType::Symlink,
        "/etc/shadow",
    )]));
    run.assert_failed_with("symbolic link to absolute path \"/etc/shadow\" leaves the archive");
    let (run, _work) = validate(&hostile(vec![special(
        "./passwd",
        EntryType::Link,
        "/etc/passwd",
    )]));
    run.assert_failed_with("hard link to \"/etc/passwd\" leaves the archive");
}

#[test]
fn refuses_device_members() {
    let (run, _work) = validate(&hostile(vec![special("./sda", EntryType::Block, "")]));
    run.assert_failed_with("unsafe member \"./sda\" in backup archive: device or fifo member");
}

#[test]
fn refuses_hostile_members_inside_files() {
    let files = xz(&tar_bytes(&files_tar(vec![file(
        "../../etc/shadow",
        "root::0:",
    )])));
    let (run, _work) = validate(&gzip(&outer_tar(
        &backup_members(files, false, false),
        vec![],
    )));
    run.assert_failed_with(
        "unsafe member \"../../etc/shadow\" in member ./files: path contains `..`",
    );
    let files = xz(&tar_bytes(&files_tar(vec![special(
        "etc/x",
        EntryType::Symlink,
        "../../..",
    )])));
    let (run, _work) = validate(&gzip(&outer_tar(
        &backup_members(files, false, false),
        vec![],
    )));
    run.assert_failed_with("leaves the archive");
}

#[test]
fn refuses_a_truncated_archive() {
    let bytes = standard_archive();
    let (run, _work) = validate(&bytes[..bytes.len() / 2]);
    run.assert_failed_with("backup archive is truncated");
    // Cut inside the gzip trailer: the tar content is complete but the stream is not.
    let (run, _work) = validate(&bytes[..bytes.len() - 4]);
    run.assert_failed_with("backup archive is truncated");
    // A plain tar cut exactly after a member: no end-of-archive marker.
    let plain = outer_tar(
        &backup_members(xz(&tar_bytes(&files_tar(vec![]))), false, false),
        vec![],
    );
    let (run, _work) = validate(&plain[..plain.len() - 1024 * 10]);
    run.assert_failed_with("truncated");
}

#[test]
fn refuses_an_md5_mismatch_and_unlisted_members() {
    let mut members = backup_members(xz(&tar_bytes(&files_tar(vec![]))), false, false);
    let mut archive = outer_tar(&members, vec![]);
    // Flip one byte of the engine dump after md5sum was computed.
    let at = archive
        .windows(11)
        .position(|w| w == b"engine dump")
        .unwrap();
    archive[at] = b'E';
    let (run, _work) = validate(&gzip(&archive));
    run.assert_failed_with("md5sum mismatch for member ./db/engine_backup.db");
    members.truncate(5);
    let (run, _work) = validate(&gzip(&outer_tar(
        &members,
        vec![file("./db/extra.db", "x")],
    )));
    run.assert_failed_with("member ./db/extra.db is not listed in ./md5sum");
}

#[test]
fn refuses_an_archive_without_the_engine_dump() {
    let mut members = backup_members(xz(&tar_bytes(&files_tar(vec![]))), false, false);
    members.retain(|(name, _)| name != "db/engine_backup.db");
    let (run, _work) = validate(&gzip(&outer_tar(&members, vec![])));
    run.assert_failed_with("backup archive lacks required member(s) ./db/engine_backup.db");
}

#[test]
fn refuses_files_that_is_not_an_archive() {
    let members = backup_members(b"this is not a tar archive".to_vec(), false, false);
    let (run, _work) = validate(&gzip(&outer_tar(&members, vec![])));
    run.assert_failed_with("member ./files is not a readable tar archive");
    let members = backup_members(xz(b"not tar either, but xz").to_vec(), false, false);
    let (run, _work) = validate(&gzip(&outer_tar(&members, vec![])));
    run.assert_failed_with("member ./files is not a readable tar archive");
}

#[test]
fn refuses_something_that_is_not_a_backup() {
    let (run, _work) = validate(&gzip(b"hello"));
    run.assert_failed_with("backup archive is not a readable tar archive");
    let work = tempfile::tempdir().unwrap();
    let run = run_module(
        "he_inject_backup",
        json!({"backup": "/nonexistent.tar.gz", "validate_only": true}),
        work.path(),
        None,
    );
    run.assert_failed_with("cannot read backup archive /nonexistent.tar.gz");
}

#[test]
fn enforces_size_limits() {
    let work = tempfile::tempdir().unwrap();
    let backup = write(work.path(), "engine.tar.gz", &standard_archive());
    let args = json!({"backup": backup, "validate_only": true, "max_member_bytes": 1000});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_failed_with(
        "backup archive exceeds the limit max_member_bytes=1000: member \"files\" has",
    );
    let args = json!({"backup": backup, "validate_only": true, "max_members": 5});
    run_module("he_inject_backup", args, work.path(), None).assert_failed_with("max_members=5");
}

#[test]
fn needs_one_disk_unless_validating_only() {
    let work = tempfile::tempdir().unwrap();
    let backup = write(work.path(), "engine.tar.gz", &standard_archive());
    let run = run_module(
        "he_inject_backup",
        json!({"backup": backup}),
        work.path(),
        None,
    );
    run.assert_failed_with("one of the options 'disk', 'disk_volume' is required");
    let volume = json!({"sd_id": "a", "image_id": "b", "volume_id": "c"});
    let run = run_module(
        "he_inject_backup",
        json!({"backup": backup, "disk": "/x", "disk_volume": volume}),
        work.path(),
        None,
    );
    run.assert_failed_with("mutually exclusive");
}

/// A partitioned raw disk whose ext4 root guestfish inspection recognises as CentOS 7.
fn guest_disk(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    for sub in ["etc", "bin", "usr/bin", "root"] {
        std::fs::create_dir_all(tree.join(sub)).unwrap();
    }
    std::fs::write(
        tree.join("etc/redhat-release"),
        "CentOS Linux release 7.9.2009 (Core)\n",
    )
    .unwrap();
    std::fs::write(tree.join("etc/fstab"), "/dev/sda1 / ext4 defaults 1 1\n").unwrap();
    let disk = dir.join("engine.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let sh = |script: &str| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .status()
            .expect("sh runs");
        assert!(
            status.success(),
            "{script} failed (needs sfdisk and mke2fs from e2fsprogs)"
        );
    };
    sh(&format!(
        "echo 'start=2048, type=83' | sfdisk -q {}",
        disk.display()
    ));
    sh(&format!(
        "mke2fs -q -t ext4 -E offset=1048576 -d {} {} 63M",
        tree.display(),
        disk.display()
    ));
    disk
}

fn debugfs(disk: &Path, request: &str) -> Vec<u8> {
    let output = Command::new("debugfs")
        .args(["-R", request, &format!("{}?offset=1048576", disk.display())])
        .output()
        .expect("debugfs (e2fsprogs) must be installed for this test");
    output.stdout
}

/// guestfish must run here under TCG (the preamble's settings) unless the caller chose.
fn guestfish_env() {
    if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
        std::env::set_var("LIBGUESTFS_BACKEND", "direct");
        std::env::set_var("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    }
    assert!(
        Command::new("guestfish")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs guestfish (libguestfs-tools); run with LIBGUESTFS_BACKEND=direct"
    );
}

#[test]
fn check_mode_uploads_nothing() {
    let work = tempfile::tempdir().unwrap();
    let backup = write(work.path(), "engine.tar.gz", &standard_archive());
    let disk = work.path().join("untouched.img");
    std::fs::write(&disk, vec![0u8; 4096]).unwrap();
    let args =
        json!({"backup": backup, "disk": disk, "_ansible_check_mode": true, "_ansible_diff": true});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(run.result["checksum"], json!(null));
    assert!(
        run.msg()
            .starts_with("would upload the valid engine-backup of 4.1.9.1"),
        "{}",
        run.result
    );
    assert_eq!(
        run.result["diff"]["after"]["dest"],
        json!("/root/engine_backup.tar.gz")
    );
    assert_eq!(std::fs::read(&disk).unwrap(), vec![0u8; 4096]);
}

/// Makes `disk` a volume as vdsm keeps it (36:36 0660) in a directory others may enter, and
/// leaves `backup` readable by root only: guestfish (run as vdsm) gets it through a pipe.
fn as_on_the_storage_domain(work: &Path, disk: &Path, backup: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(disk, Some(36), Some(36)).unwrap();
    std::fs::set_permissions(disk, std::fs::Permissions::from_mode(0o660)).unwrap();
    std::fs::set_permissions(backup, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn uploads_into_the_guest_root_and_is_idempotent() {
    guestfish_env();
    let work = tempfile::tempdir().unwrap();
    let bytes = standard_archive();
    let backup = write(work.path(), "engine.tar.gz", &bytes);
    let disk = guest_disk(work.path());
    as_on_the_storage_domain(work.path(), &disk, &backup);
    let args = json!({"backup": backup, "disk": disk});
    let run = run_module("he_inject_backup", args.clone(), work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(
        run.result["checksum"],
        json!(hex::encode(Sha256::digest(&bytes)))
    );
    assert_eq!(debugfs(&disk, "cat /root/engine_backup.tar.gz"), bytes);
    let stat =
        String::from_utf8_lossy(&debugfs(&disk, "stat /root/engine_backup.tar.gz")).into_owned();
    assert!(stat.contains("Mode:  0600"), "{stat}");
    let again = run_module("he_inject_backup", args, work.path(), None);
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false), "{}", again.result);
}

/// The he-lab binary (HE_LAB_BIN), for tests against the simulated host.
fn he_lab() -> PathBuf {
    let path = std::env::var_os("HE_LAB_BIN").expect(
        "HE_LAB_BIN must name the he-lab binary (cargo build -p he-lab; HE_LAB_BIN=$CARGO_TARGET_DIR/debug/he-lab)",
    );
    PathBuf::from(path)
}

#[test]
fn lab_engine_backup_archive_validates() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("lab");
    let init = Command::new(he_lab())
        .arg("--dir")
        .arg(&dir)
        .args(["init", "--seed", "7"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "he-lab init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let status = Command::new(he_lab())
        .arg("--dir")
        .arg(&dir)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let archive = status["engine_backup"].as_str().unwrap();
    // The lab's old engine is 3.6, its appliance 4.0: restorable there, not on 4.4.
    let run = run_module(
        "he_inject_backup",
        json!({"backup": archive, "validate_only": true, "target_version": "4.0-20161202.1.el7"}),
        work.path(),
        None,
    );
    run.assert_ok();
    let backup = &run.result["backup"];
    assert_eq!(backup["engine_version"], json!("3.6.7.5"), "{backup}");
    assert_eq!(backup["os_version"], json!("centos6"), "{backup}");
    assert_eq!(backup["checksum_file"], json!("md5sum"), "{backup}");
    run_module(
        "he_inject_backup",
        json!({"backup": archive, "validate_only": true, "target_version": "4.4.10.7"}),
        work.path(),
        None,
    )
    .assert_failed_with("cannot be restored by engine 4.4.10.7");
    assert_eq!(backup["dwh"], json!(true));
    assert_eq!(
        backup["sha256"],
        json!(hex::encode(Sha256::digest(std::fs::read(archive).unwrap())))
    );
    assert!(
        backup["aaa"].as_array().is_some_and(|a| !a.is_empty()),
        "{backup}"
    );
}

/// engine-backup itself: GNU tar with `-S`, so a sparse dump is a GNU sparse member.
#[test]
fn validates_an_archive_made_by_gnu_tar_with_sparse_members() {
    let work = tempfile::tempdir().unwrap();
    let script = r#"set -e
        mkdir -p t/db f/etc/ovirt-engine
        truncate -s 20M t/db/engine_backup.db
        echo data | dd of=t/db/engine_backup.db bs=1 seek=5000000 conv=notrunc 2>/dev/null
        echo 4.1.9.1 > t/version; echo centos7 > t/os_version; echo 'X=1' > t/config
        echo 'ENGINE_FQDN=engine' > f/etc/ovirt-engine/engine.conf
        tar -C f -cpSJf t/files etc
        (cd t && find . -type f ! -name md5sum -printf '%P\n' | xargs md5sum > ../md5 && mv ../md5 md5sum)
        tar -C t -cpSzf engine.tar.gz ."#;
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(status.success(), "needs GNU tar, xz, md5sum");
    let args = json!({"backup": work.path().join("engine.tar.gz"), "validate_only": true});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["backup"]["files_count"], json!(1));
    assert_eq!(run.result["backup"]["engine_version"], json!("4.1.9.1"));
}

#[test]
fn refuses_a_backup_the_target_engine_cannot_restore() {
    let work = tempfile::tempdir().unwrap();
    let backup = write(work.path(), "engine.tar.gz", &standard_archive());
    let args = json!({"backup": backup, "validate_only": true, "target_version": "4.4.10"});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_failed_with("backup was created by engine 4.1.9.1 and cannot be restored by engine 4.4.10 (option target_version): engine-backup restores only the same major.minor or the upgrades 3.6 -> 4.0, 4.3 -> 4.4");
    let args =
        json!({"backup": backup, "validate_only": true, "target_version": "4.1-20170914.1.el7"});
    run_module("he_inject_backup", args, work.path(), None).assert_ok();
}

/// The archives oVirt's own engine-backup wrote (tests/fixtures/engine-backup/README.md).
fn real_archives() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/engine-backup");
    ["3.6.13.5", "4.3.2", "4.3.11.4"]
        .iter()
        .map(|version| dir.join(format!("engine-backup-{version}.tar.gz")))
        .collect()
}

#[test]
fn accepts_archives_made_by_engine_backup_with_their_facts() {
    let work = tempfile::tempdir().unwrap();
    let expected = [
        ("3.6.13.5", "centos6", "md5sum"),
        ("4.3.2", "centos7", "md5sum"),
        ("4.3.11.4", "centos7", "sha256sum"),
    ];
    for (path, (version, os, checksum)) in real_archives().iter().zip(expected) {
        let run = run_module(
            "he_inject_backup",
            json!({"backup": path, "validate_only": true}),
            work.path(),
            None,
        );
        run.assert_ok();
        let backup = &run.result["backup"];
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(backup["engine_version"], json!(version), "{path:?}");
        assert_eq!(backup["os_version"], json!(os), "{path:?}");
        assert_eq!(backup["checksum_file"], json!(checksum), "{path:?}");
        assert_eq!(backup["checksum_files"], json!([checksum]), "{path:?}");
        assert_eq!(backup["compression"], json!("gzip"));
        assert_eq!(backup["files_compression"], json!("xz"));
        assert_eq!(backup["aaa"], json!(["internal-authz"]));
        assert_eq!(backup["files_count"], json!(7));
        assert_eq!(
            (backup["dwh"].clone(), backup["reports"].clone()),
            (json!(false), json!(false))
        );
        assert_eq!(backup["sha256"], json!(hex::encode(Sha256::digest(&bytes))));
        let mut members: Vec<String> = serde_json::from_value(backup["members"].clone()).unwrap();
        members.sort();
        let mut expected = [
            "config",
            "db/engine_backup.db",
            "files",
            checksum,
            "os_version",
            "version",
        ];
        expected.sort();
        assert_eq!(members, expected);
    }
}

/// Where each regular member's data lies in a plain tar stream.
fn member_spans(tar: &[u8]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut archive = tar::Archive::new(tar);
    let mut spans = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.header().entry_type().is_file() && entry.size() > 0 {
            let start = entry.raw_file_position() as usize;
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            spans.push((name, start..start + entry.size() as usize));
        }
    }
    spans
}

#[test]
fn refuses_a_one_byte_change_in_any_member_of_a_real_archive() {
    let work = tempfile::tempdir().unwrap();
    for path in real_archives() {
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()),
            &mut tar,
        )
        .unwrap();
        let spans = member_spans(&tar);
        assert_eq!(spans.len(), 6, "{path:?}: {spans:?}");
        for (name, span) in spans {
            // First, middle and last byte of the member.
            for at in [span.start, (span.start + span.end) / 2, span.end - 1] {
                let mut changed = tar.clone();
                changed[at] ^= 0x01;
                let backup = write(work.path(), "changed.tar.gz", &gzip(&changed));
                let run = run_module(
                    "he_inject_backup",
                    json!({"backup": backup, "validate_only": true}),
                    work.path(),
                    None,
                );
                assert_eq!(
                    run.code, 1,
                    "{path:?}: byte {at} of {name} changed, accepted: {}",
                    run.result
                );
                let msg = run.msg();
                assert!(
                    msg.contains("checksum")
                        || msg.contains("mismatch")
                        || msg.contains("member ./files")
                        || msg.contains("./version"),
                    "{path:?} {name} at {at}: {msg}"
                );
            }
        }
    }
}

/// engine-backup --mode=verify of 4.0.7.4 and 4.4.10.7 judged the real archives (their
/// verdicts are in the fixture directory); target_version must judge them the same.
#[test]
fn target_version_agrees_with_engine_backup_verify() {
    let work = tempfile::tempdir().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/engine-backup");
    let mut judged = 0;
    for target in ["4.0.7.4", "4.4.10.7"] {
        let verdicts = std::fs::read_to_string(dir.join(format!("verify-{target}.txt"))).unwrap();
        for line in verdicts.lines() {
            let (archive, verdict) = line.split_once(": ").unwrap();
            let run = run_module(
                "he_inject_backup",
                json!({"backup": dir.join(archive), "validate_only": true, "target_version": target}),
                work.path(),
                None,
            );
            match verdict {
                "accepted" => {
                    run.assert_ok();
                }
                _ => {
                    run.assert_failed_with(&format!("cannot be restored by engine {target}"));
                }
            }
            judged += 1;
        }
    }
    assert_eq!(judged, 6);
}

/// A fake guestfish recording who ran it and what it was told, answering with `written`
/// as the read-back checksum; in a world-readable directory so uid 36 can run it.
fn fake_guestfish(work: &Path, written: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = work.join("bin");
    let record = work.join("record");
    std::fs::create_dir_all(&record).unwrap();
    for dir in [work, &record] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    support::write_script(
        &bin,
        "guestfish",
        &format!(
            "id -u > {r}/uid; id -G > {r}/groups; echo \"${{XDG_RUNTIME_DIR:-unset}}\" > {r}/xdg\n\
             echo \"$LIBGUESTFS_BACKEND\" > {r}/backend; echo \"$@\" > {r}/argv; cat > {r}/script\n\
             cat \"$(sed -n 's/^upload \"\\([^\"]*\\)\".*/\\1/p' {r}/script)\" > {r}/uploaded\n\
             echo he-previous-checksum\necho he-written-checksum\necho {written}",
            r = record.display()
        ),
    );
    bin
}

#[test]
fn runs_guestfish_as_vdsm_with_the_script_on_stdin_and_the_backup_through_a_pipe() {
    if !nix::unistd::geteuid().is_root() {
        return; // only root acts as vdsm
    }
    let work = tempfile::tempdir().unwrap();
    let bytes = standard_archive();
    let backup = write(work.path(), "engine.tar.gz", &bytes);
    let disk = write(work.path(), "disk.img", &[0; 512]);
    let bin = fake_guestfish(work.path(), &hex::encode(Sha256::digest(&bytes)));
    as_on_the_storage_domain(work.path(), &disk, &backup);
    let args = json!({"backup": backup, "disk": disk, "dest": "/root/b.tgz"});
    let run = run_module("he_inject_backup", args, work.path(), Some(&bin));
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    let recorded =
        |name: &str| std::fs::read_to_string(work.path().join("record").join(name)).unwrap();
    assert_eq!(recorded("uid"), "36\n");
    assert_eq!(recorded("groups"), "36\n", "root's groups are dropped");
    assert_eq!(recorded("xdg"), "unset\n");
    let backend = std::env::var("LIBGUESTFS_BACKEND").unwrap_or_else(|_| "direct".into());
    assert_eq!(
        recorded("backend"),
        format!("{backend}\n"),
        "the original's backend"
    );
    assert_eq!(
        recorded("argv"),
        format!("--rw --format=raw -a {} -i\n", disk.display())
    );
    let script = recorded("script");
    assert!(
        script.contains("upload \"/dev/fd/") && script.contains("\" \"/root/b.tgz\"\n"),
        "{script}"
    );
    assert!(script.contains("chmod 0600 \"/root/b.tgz\"\n"), "{script}");
    assert_eq!(
        std::fs::read(work.path().join("record/uploaded")).unwrap(),
        bytes,
        "vdsm read the root-only backup through the pipe"
    );
}

#[test]
fn fails_when_the_read_back_checksum_differs() {
    let work = tempfile::tempdir().unwrap();
    let backup = write(work.path(), "engine.tar.gz", &standard_archive());
    let disk = write(work.path(), "disk.img", &[0; 512]);
    let bin = fake_guestfish(work.path(), &"0".repeat(64));
    let run = run_module(
        "he_inject_backup",
        json!({"backup": backup, "disk": disk}),
        work.path(),
        Some(&bin),
    );
    run.assert_failed_with("read-back checksum of /root/engine_backup.tar.gz");
    assert_eq!(
        run.result["changed"],
        json!(true),
        "the disk may have been written"
    );
}

/// Every path option, given a missing, an unreadable (a symbolic link loop, which even root
/// cannot open) and a wrong-type path, fails before anything runs with a message naming that
/// input and its path.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let backup = real_archives().remove(2);
    let BadPaths {
        missing,
        looping,
        directory: a_dir,
        ..
    } = BadPaths::in_dir(dir);
    let volume = json!({"sd_id": "sd", "image_id": "img", "volume_id": "vol"});
    let table = [
        (
            "backup",
            json!({"validate_only": true}),
            [
                "cannot read backup archive {}: No such file",
                "cannot read backup archive {}: Too many levels",
                "cannot read backup archive {}: it is not a regular file",
            ],
        ),
        (
            "disk",
            json!({"backup": backup}),
            [
                "disk \"{}\" cannot be used: no such disk image",
                "disk \"{}\" cannot be used: it cannot be read",
                "disk \"{}\" cannot be used: it is a directory or a special file",
            ],
        ),
        (
            "he_conf",
            json!({"backup": backup, "disk_volume": volume}),
            [
                "cannot read hosted-engine configuration {}: No such file",
                "cannot read hosted-engine configuration {}: Too many levels",
                "cannot read hosted-engine configuration {}: Is a directory",
            ],
        ),
    ];
    for (option, base, messages) in table {
        for (path, message) in [&missing, &looping, &a_dir].into_iter().zip(messages) {
            let mut args = base.clone();
            args[option] = json!(path);
            let run = run_module("he_inject_backup", args, dir, None);
            run.assert_failed_with(&message.replace("{}", &path.display().to_string()));
        }
    }
}

#[test]
fn refuses_a_backup_older_than_max_age_unless_accepted() {
    let work = tempfile::tempdir().unwrap();
    // Members dated 2017-07-14T02:40:00Z, as engine-backup stamps them at backup time.
    let backup = write(work.path(), "engine.tar.gz", &standard_archive());
    let args = json!({"backup": backup, "validate_only": true, "max_age": 3600});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_failed_with("engine.tar.gz was created 2017-07-14T02:40:00Z");
    let msg = run.result["msg"].as_str().unwrap();
    assert!(
        msg.contains("max_age (3600 s)") && msg.contains("accept_stale"),
        "{msg}"
    );

    let args =
        json!({"backup": backup, "validate_only": true, "max_age": 3600, "accept_stale": true});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_ok();
    assert!(run.result["age_s"].as_u64().unwrap() > 3600);
    let warnings = run.result["warnings"].to_string();
    assert!(warnings.contains("as accept_stale asks"), "{warnings}");

    // No max_age: no limit, and no age.
    let args = json!({"backup": backup, "validate_only": true});
    let run = run_module("he_inject_backup", args, work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["age_s"], json!(null));
    assert_eq!(run.result["backup"]["created_s"], json!(1_500_000_000));
}
