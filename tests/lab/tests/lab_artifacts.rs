//! `he-lab init` artifacts pass the real tools: qemu-img on the OVA disk, GNU tar + md5sum on
//! the engine-backup archive, debugfs on the engine disk, openssl on the certificates.

mod lab_support;

use lab_support::{check, scratch, text, Lab};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

#[test]
fn appliance_ova_holds_an_ovf_and_a_valid_qcow2() {
    let lab = Lab::init("ova", 11, &[]);
    let ova = lab.path("appliance_ova");
    let members = lab_support::ova_members(&ova);
    let ovf = members
        .iter()
        .find(|m| m.starts_with("master/vms/") && m.ends_with(".ovf"))
        .expect("OVF member");
    let disk = members
        .iter()
        .find(|m| m.starts_with("images/") && !m.ends_with(".meta"))
        .expect("disk member");
    assert!(members.contains(&format!("{disk}.meta")));
    let work = scratch("ova");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-xzf")
            .arg(&ova),
    );
    let info = check(
        Command::new("qemu-img")
            .args(["info", "--output", "json"])
            .arg(work.join(disk)),
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 80u64 << 20);
    check(Command::new("qemu-img").arg("check").arg(work.join(disk)));
    let ovf_text = std::fs::read_to_string(work.join(ovf)).unwrap();
    let file_ref = disk.strip_prefix("images/").unwrap();
    assert!(
        ovf_text.contains(&format!("ovf:fileRef=\"{file_ref}\"")),
        "{ovf_text}"
    );
    assert!(ovf_text.contains("xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1/\""));
    assert!(ovf_text.contains("<rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>"));
    // The description file names the OVA and its SHA-1 as the appliance RPM's does.
    let desc = std::fs::read_to_string(lab.path("appliance_desc")).unwrap();
    let sha1 = check(Command::new("sha1sum").arg(&ova));
    assert!(desc.contains(&format!("sha1sum={}", &sha1[..40])), "{desc}");
    assert!(desc.contains(&format!("path={}", ova.display())));
    assert!(desc.starts_with("description=") && desc.contains("\nversion=4.0-"));
    // The appliance disk boots el7 with engine 4.0, not yet set up.
    let raw = work.join("appliance.raw");
    check(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(work.join(disk))
            .arg(&raw),
    );
    let release = check(
        Command::new("debugfs")
            .args(["-R", "cat /etc/redhat-release"])
            .arg(format!("{}?offset=1048576", raw.display())),
    );
    assert!(release.contains("CentOS Linux release 7"), "{release}");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn engine_backup_is_what_engine_backup_of_the_old_engine_writes() {
    let lab = Lab::init("backup", 12, &[]);
    let work = scratch("backup");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-pSsxf")
            .arg(lab.path("engine_backup")),
    );
    for member in [
        "version",
        "os_version",
        "config",
        "files",
        "db/engine_backup.db",
        "db/dwh_backup.db",
        "md5sum",
    ] {
        assert!(work.join(member).is_file(), "missing ./{member}");
    }
    // engine-backup 3.6 writes ./md5sum only (./sha256sum came with 4.3.3.2).
    assert!(!work.join("sha256sum").exists());
    check(
        Command::new("md5sum")
            .current_dir(&work)
            .args(["-c", "md5sum", "--status"]),
    );
    let md5sum = std::fs::read_to_string(work.join("md5sum")).unwrap();
    assert!(md5sum
        .lines()
        .all(|l| l.len() > 34 && &l[32..34] == "  " && !l.contains("./")));
    assert!(!md5sum.contains(" md5sum"));
    let text = |member: &str| std::fs::read_to_string(work.join(member)).unwrap();
    assert_eq!(text("version").trim(), "3.6.7.5");
    assert_eq!(text("os_version"), "centos6\n");
    assert_eq!(
        text("config"),
        "DB_DUMP_COMPRESSOR=\nDB_DUMP_FORMAT=custom\nDWH_DB_DUMP_COMPRESSOR=\nDWH_DB_DUMP_FORMAT=custom\n\
         REPORTS_DB_DUMP_COMPRESSOR=\nREPORTS_DB_DUMP_FORMAT=custom\n"
    );
    let files = check(Command::new("tar").arg("-tJf").arg(work.join("files")));
    assert!(
        files.contains("etc/ovirt-engine/extensions.d/internal-authz.properties"),
        "{files}"
    );
    // The dumps are PostgreSQL custom-format archives the real pg_restore reads.
    for (dump, table) in [
        (
            "db/engine_backup.db",
            "TABLE DATA public he_lab_engine_state",
        ),
        (
            "db/dwh_backup.db",
            "TABLE DATA public history_configuration",
        ),
    ] {
        let listing = check(Command::new("pg_restore").arg("-l").arg(work.join(dump)));
        assert!(listing.contains("Format: CUSTOM"), "{listing}");
        assert!(listing.contains(table), "{listing}");
    }
    let db = he_lab::pgdump::read_engine_state(&work.join("db/engine_backup.db")).unwrap();
    assert_eq!(db.product.major, 3);
    assert_eq!(db.disks[0].id, lab.he_conf("vm_disk_id"));
    // A corrupted member is caught by md5sum -c exactly as engine-backup would.
    std::fs::write(work.join("version"), "3.6.9\n").unwrap();
    let status = Command::new("md5sum")
        .current_dir(&work)
        .args(["-c", "md5sum", "--status"])
        .status()
        .unwrap();
    assert!(!status.success());
    let _ = std::fs::remove_dir_all(&work);
}

/// The 4.3 profile's backup: engine-backup 4.3.10.4 writes ./sha256sum and the cinderlib
/// lines, on CentOS 7.
#[test]
fn engine_backup_of_4_3_carries_sha256sum() {
    let lab = Lab::init("backup-4.3", 14, &["--profile", "el7-4.3:el8-4.4"]);
    let work = scratch("backup-4.3");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-pSsxf")
            .arg(lab.path("engine_backup")),
    );
    assert!(!work.join("md5sum").exists());
    check(
        Command::new("sha256sum")
            .current_dir(&work)
            .args(["-c", "sha256sum", "--status"]),
    );
    let text = |member: &str| std::fs::read_to_string(work.join(member)).unwrap();
    assert_eq!(text("version"), "4.3.10.4\n");
    assert_eq!(text("os_version"), "centos7\n");
    assert!(text("config")
        .ends_with("CINDERLIB_DB_DUMP_COMPRESSOR=\nCINDERLIB_DB_DUMP_FORMAT=custom\n"));
    let db = he_lab::pgdump::read_engine_state(&work.join("db/engine_backup.db")).unwrap();
    assert_eq!((db.product.major, db.product.minor), (4, 3));
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn engine_disk_and_storage_domain_are_real() {
    let lab = Lab::init("disk", 13, &[]);
    let inspect = lab.inspect();
    let volume = lab.engine_volume();
    let partition = format!("{}?offset=1048576", volume.display());
    let release = check(
        Command::new("debugfs")
            .args(["-R", "cat /etc/redhat-release"])
            .arg(&partition),
    );
    assert!(release.contains("CentOS release 6"), "{release}");
    let version = check(
        Command::new("debugfs")
            .args(["-R", "cat /usr/share/ovirt-engine/version"])
            .arg(&partition),
    );
    assert!(version.starts_with("3.6.7.5"), "{version}");
    let fstab = check(
        Command::new("debugfs")
            .args(["-R", "cat /etc/fstab"])
            .arg(&partition),
    );
    assert!(fstab.contains(" / "));
    let table = check(Command::new("sfdisk").arg("--dump").arg(&volume));
    assert!(table.contains("start=        2048"), "{table}");
    assert_eq!(inspect["engine_version"], "3.6.7.5");
    // vdsm volume metadata: sorted keys, EOF, engine JSON description (V3 domain: SIZE).
    let meta = std::fs::read_to_string(format!("{}.meta", volume.display())).unwrap();
    assert!(meta.ends_with("\nEOF\n"));
    let keys: Vec<&str> = meta
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(meta.contains(
        "DESCRIPTION={\"DiskAlias\":\"he_virtio_disk\",\"DiskDescription\":\"Hosted-Engine disk\"}"
    ));
    assert!(meta.contains(&format!("SIZE={}", (64u64 << 20) / 512)));
    assert!(std::path::Path::new(&format!("{}.lease", volume.display())).exists());
    let sd_dir = volume.parent().unwrap().parent().unwrap().parent().unwrap();
    for name in ["metadata", "ids", "leases", "inbox", "outbox"] {
        assert!(sd_dir.join("dom_md").join(name).exists(), "dom_md/{name}");
    }
    // The export holds the domain; vdsm's links name volumes as the host sees them, under
    // the domain's mount.
    assert!(sd_dir
        .to_string_lossy()
        .contains("/nfs-server/exports/hosted_engine/"));
    let link = std::fs::read_link(sd_dir.join("ha_agent/hosted-engine.metadata")).unwrap();
    assert!(
        link.to_string_lossy()
            .contains("/rhev/data-center/mnt/nfs.lab.local:_exports_hosted__engine/"),
        "{}",
        link.display()
    );
    let domain = std::fs::read_to_string(sd_dir.join("dom_md/metadata")).unwrap();
    assert!(domain.contains("VERSION=3\n") && domain.contains("_SHA_CKSUM="));
}

#[test]
fn host_files_inventory_and_pki() {
    let lab = Lab::init("host", 14, &[]);
    assert_eq!(
        lab.he_conf("spUUID"),
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(lab.he_conf("conf"), lab.status["vm_conf"].as_str().unwrap());
    let vm_conf = std::fs::read_to_string(lab.path("vm_conf")).unwrap();
    let cdrom = vm_conf
        .lines()
        .find(|l| l.contains("device:cdrom"))
        .unwrap();
    assert!(cdrom.contains("path:,"));
    let disk = vm_conf.lines().find(|l| l.contains("device:disk")).unwrap();
    for key in ["domainID:", "imageID:", "volumeID:", "poolID:"] {
        assert!(disk.contains(key), "{key} in {disk}");
    }
    let inventory = std::fs::read_to_string(lab.path("inventory")).unwrap();
    for variable in [
        "he_engine_url",
        "he_ca_file",
        "he_admin_user",
        "he_admin_password_file",
        "he_conf",
        "he_vm_conf",
        "he_engine_backup",
        "he_appliance_desc_dir",
        "he_stage_dir",
        "he_log_dir",
        "he_report_path",
        "he_health_url",
        "he_channel",
        "he_state_dir",
        "he_environment",
        "hosted_engine_host",
        "ansible_connection: local",
    ] {
        assert!(inventory.contains(variable), "{variable} in inventory");
    }
    let mode = std::fs::metadata(lab.path("admin_password_file"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let cert = check(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(lab.path("ca_file").with_file_name("engine.pem")),
    );
    assert!(
        cert.contains("IP Address:127.0.0.1") && cert.contains("DNS:engine.lab.local"),
        "{cert}"
    );
    check(
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(lab.path("ca_file"))
            .arg(lab.path("ca_file").with_file_name("engine.pem")),
    );
}

#[test]
fn same_seed_gives_same_lab() {
    let first = Lab::init("seed-a", 21, &[]);
    let second = Lab::init("seed-b", 21, &[]);
    let (a, b) = (first.inspect(), second.inspect());
    assert_eq!(a["engine_disk"]["sha256"], b["engine_disk"]["sha256"]);
    assert_eq!(a["vm_id"], b["vm_id"]);
    let sha1 =
        |lab: &Lab| check(Command::new("sha1sum").arg(lab.path("appliance_ova")))[..40].to_string();
    assert_eq!(sha1(&first), sha1(&second));
    let other = Lab::init("seed-c", 22, &[]);
    assert_ne!(other.inspect()["vm_id"], a["vm_id"]);
}

#[test]
fn second_profile_has_el7_43_and_v5_domain() {
    let lab = Lab::init("profile", 15, &["--profile", "el7-4.3:el8-4.4"]);
    let inspect = lab.inspect();
    assert_eq!(inspect["engine_version"], "4.3.10.4");
    let meta = std::fs::read_to_string(format!("{}.meta", lab.engine_volume().display())).unwrap();
    assert!(
        meta.contains(&format!("CAP={}", 64u64 << 20)) && meta.contains("DISKTYPE=HEVD"),
        "{meta}"
    );
    assert!(lab.path("appliance_ova").to_string_lossy().contains("4.4-"));
    let bad = lab.he_lab(&["init", "--force", "--profile", "el5-3.0:el6-3.6"]);
    assert!(!bad.status.success());
    let refused = text(&bad.stderr);
    assert!(
        refused.contains("invalid value 'el5-3.0:el6-3.6'") && refused.contains("el7-4.3:el8-4.4"),
        "{refused}"
    );
}

#[test]
fn reset_returns_to_the_post_init_state() {
    let lab = Lab::init("reset", 16, &[]);
    let fresh = lab.inspect();
    lab.up();
    lab.fault("setup_fail", true);
    assert!(lab
        .tool("hosted-engine", &["--set-maintenance", "--mode=none"])
        .status
        .success());
    std::fs::write(lab.dir.join("stage/leftover"), b"x").unwrap();
    let output = lab.he_lab(&["reset"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let after = lab.inspect();
    assert_eq!(after["vm_state"], "down");
    assert_eq!(after["faults"], serde_json::json!([]));
    assert_eq!(after["global_maintenance"], true);
    assert_eq!(
        after["engine_disk"]["sha256"],
        fresh["engine_disk"]["sha256"]
    );
    assert_eq!(after["engine_url"], fresh["engine_url"]);
    assert!(!lab.dir.join("stage/leftover").exists());
}
