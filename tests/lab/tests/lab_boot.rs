//! The engine VM: `he-lab up` serves the old engine quickly; booting the appliance with a
//! hand-made NoCloud ISO restores the backup, runs engine-setup and sends the markers on the
//! channel; putting the old disk bytes back brings the old engine and its database back.

mod lab_support;

use lab_support::{check, install_appliance, make_seed, read_channel, text, Lab, HE_LAB};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn init_and_up_are_fast_and_serve_the_old_engine() {
    let started = Instant::now();
    let lab = Lab::init("up", 41, &[]);
    let init_time = started.elapsed();
    let up_time = lab.up();
    let total = started.elapsed();
    println!("he-lab init {init_time:.2?} + up {up_time:.2?} = {total:.2?} (limit 30 s)");
    assert!(total < Duration::from_secs(30), "init + up took {total:?}");
    let status = lab.json(&["status", "--json"]);
    assert_eq!(status["vm_state"], "up");
    assert_eq!(status["engine_version"], "3.6.7.5");
    assert!(lab.health().unwrap_or_default().contains("DB Up"));
    // The API answers over TLS verified against the lab CA (v3 only on 3.6).
    let password = std::fs::read_to_string(lab.path("admin_password_file")).unwrap();
    let api = check(
        Command::new("curl")
            .args(["-s", "--fail", "--cacert"])
            .arg(lab.path("ca_file"))
            .args(["-H", "Version: 3", "-u"])
            .arg(format!("admin@internal:{}", password.trim()))
            .arg(format!("{}/api", status["engine_url"].as_str().unwrap())),
    );
    assert!(
        api.contains("3.6.7.5") || api.contains("major=\"3\""),
        "{api}"
    );
    let vm_status: serde_json::Value =
        serde_json::from_slice(&lab.tool("hosted-engine", &["--vm-status", "--json"]).stdout)
            .unwrap();
    assert_eq!(vm_status["1"]["engine-status"]["health"], "good");
    let down = lab.he_lab(&["down"]);
    assert!(down.status.success());
    assert_eq!(lab.json(&["status", "--json"])["vm_state"], "down");
    assert!(lab.health().is_none());
}

#[test]
fn upgrade_boot_with_cidata_iso_sends_markers_and_rollback_restores_the_old_engine() {
    let lab = Lab::init("upgrade", 42, &[]);
    lab.up();
    // A disk made through the old engine after the backup was taken (the backup disk).
    let backup_disk = create_disk_v3(&lab, "hosted-engine-backup-20261125060000");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.inspect()["engine_disks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == backup_disk.as_str() && d["status"] == "ok")
    {
        assert!(Instant::now() < deadline, "the new disk never became ok");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(lab
        .tool("hosted-engine", &["--vm-shutdown"])
        .status
        .success());
    lab.wait_vm_status("Down", Duration::from_secs(10));
    let volume = lab.engine_volume();
    let saved = lab.scratch("rollback").join("engine-disk.raw");
    std::fs::copy(&volume, &saved).unwrap();

    install_appliance(&lab, &lab.path("engine_backup"));
    let vm_conf = make_seed(&lab, &lab_support::upgrade_user_data(true));
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert_eq!(
        text(&start.stdout),
        "VM in WaitForLaunch\n",
        "{}",
        text(&start.stderr)
    );
    let lines = read_channel(&lab, Duration::from_secs(60));
    let markers: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("HE_APPLIANCE_ENGINE_"))
        .collect();
    assert_eq!(
        markers,
        vec![
            "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
        ],
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "- Engine database 'engine'"));
    assert!(lines
        .iter()
        .any(|l| l.contains("Execution of setup completed successfully")));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.health().unwrap_or_default().contains("DB Up") {
        assert!(
            Instant::now() < deadline,
            "the upgraded engine never became healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let inspect = lab.inspect();
    assert_eq!(inspect["engine_version"], "4.0.6.3");
    assert_eq!(inspect["engine_db_version"], "4.0.6.3-1.el7.centos");
    assert_eq!(inspect["engine_disks"][0]["name"], "he_virtio_disk");
    let hosts = check(
        Command::new("debugfs")
            .args(["-R", "cat /etc/hosts"])
            .arg(format!("{}?offset=1048576", volume.display())),
    );
    assert!(hosts.contains("\n127.0.0.1 host1.lab.local\n"), "{hosts}");
    // The restored engine knows only the backup's disks: the new disk is unregistered.
    let known = |inspect: &serde_json::Value, id: &str| {
        inspect["engine_disks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id)
    };
    assert!(!known(&inspect, &backup_disk), "{inspect:#}");
    assert!(inspect["unregistered"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == backup_disk.as_str()));

    // Booting again without the ISO serves the upgraded engine (cloud-init is masked).
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    assert!(lab.tool("hosted-engine", &["--vm-start"]).status.success());
    lab.wait_vm_status("Up", Duration::from_secs(10));
    assert_eq!(lab.inspect()["engine_version"], "4.0.6.3");

    // Rollback: the old bytes back on the engine disk give the old engine and database.
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    check(
        Command::new("qemu-img")
            .args(["convert", "-n", "-O", "raw"])
            .arg(&saved)
            .arg(&volume),
    );
    // The volume grew for the appliance; the old content is back byte for byte before that.
    let restored = std::fs::read(&volume).unwrap();
    let original = std::fs::read(&saved).unwrap();
    assert!(restored.len() >= original.len());
    assert!(
        restored[..original.len()] == original[..],
        "rollback did not restore the bytes"
    );
    assert!(lab.tool("hosted-engine", &["--vm-start"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.health().unwrap_or_default().contains("DB Up") {
        assert!(Instant::now() < deadline, "the old engine never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let inspect = lab.inspect();
    assert_eq!(inspect["engine_version"], "3.6.7.5");
    assert_eq!(inspect["engine_db_version"], "3.6.7.5-1.el6");
    assert!(
        known(&inspect, &backup_disk),
        "the old engine kept its own database"
    );
    let _ = std::fs::remove_file(&saved);
}

/// Creates a raw preallocated disk on the hosted-engine domain through API v3 (Basic auth);
/// returns its id.
fn create_disk_v3(lab: &Lab, name: &str) -> String {
    let password = std::fs::read_to_string(lab.path("admin_password_file")).unwrap();
    let sd = lab.he_conf("sdUUID");
    let body = format!(
        "<disk><alias>{name}</alias><description>{name}</description><interface>virtio</interface><format>raw</format><provisioned_size>{}</provisioned_size><sparse>false</sparse><storage_domains><storage_domain id=\"{sd}\"/></storage_domains></disk>",
        64u64 << 20
    );
    let reply = check(
        Command::new("curl")
            .args(["-s", "--fail", "--cacert"])
            .arg(lab.path("ca_file"))
            .args([
                "-H",
                "Version: 3",
                "-H",
                "Content-Type: application/xml",
                "-u",
            ])
            .arg(format!("admin@internal:{}", password.trim()))
            .args(["-X", "POST", "--data", &body])
            .arg(format!(
                "{}/api/disks",
                lab.json(&["status", "--json"])["engine_url"]
                    .as_str()
                    .unwrap()
            )),
    );
    let start = reply.find("<disk ").expect("a disk document") + "<disk ".len();
    let id_at = reply[start..].find("id=\"").expect("a disk id") + start + 4;
    reply[id_at..id_at + 36].to_string()
}

#[test]
fn restore_refuses_dwh_without_provisioning_and_a_corrupt_archive() {
    let lab = Lab::init("refuse", 43, &[]);
    check(Command::new(HE_LAB).arg("--dir").arg(&lab.dir).arg("up"));
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    install_appliance(&lab, &lab.path("engine_backup"));
    let vm_conf = make_seed(&lab, &lab_support::upgrade_user_data(false));
    assert!(lab
        .tool(
            "hosted-engine",
            &["--vm-start", &format!("--vm-conf={}", vm_conf.display())]
        )
        .status
        .success());
    let lines = read_channel(&lab, Duration::from_secs(60));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("FATAL: Can't connect to database 'ovirt_engine_history'")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "HE_APPLIANCE_ENGINE_RESTORE_FAIL"),
        "{lines:#?}"
    );

    // A backup whose md5sum does not match: repack with one member changed.
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    let work = lab.scratch("corrupt");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-xzf")
            .arg(lab.path("engine_backup")),
    );
    std::fs::write(work.join("version"), "3.6.9.9\n").unwrap();
    let corrupt = work.with_extension("tar.gz");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-czf")
            .arg(&corrupt)
            .arg("."),
    );
    install_appliance(&lab, &corrupt);
    let vm_conf = make_seed(&lab, &lab_support::upgrade_user_data(true));
    assert!(lab
        .tool(
            "hosted-engine",
            &["--vm-start", &format!("--vm-conf={}", vm_conf.display())]
        )
        .status
        .success());
    let lines = read_channel(&lab, Duration::from_secs(60));
    assert!(
        lines
            .iter()
            .any(|l| l == "FATAL: Checksum verification failed"),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l == "HE_APPLIANCE_ENGINE_RESTORE_FAIL"));
}

/// Boots the appliance on a 3.6 lab whose backup archive `change` altered (its md5sum
/// recomputed, so the archive stays consistent) and returns the channel's lines.
fn restore_of_a_changed_backup(name: &str, seed: u64, change: impl FnOnce(&Path)) -> Vec<String> {
    let lab = Lab::init(name, seed, &[]);
    lab.up();
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    let work = lab.scratch(name);
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-xzf")
            .arg(lab.path("engine_backup")),
    );
    change(&work);
    let sums = check(Command::new("md5sum").current_dir(&work).args([
        "version",
        "os_version",
        "config",
        "files",
        "db/engine_backup.db",
        "db/dwh_backup.db",
    ]));
    std::fs::write(work.join("md5sum"), sums).unwrap();
    let archive = work.with_extension("tar.gz");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-czf")
            .arg(&archive)
            .arg("."),
    );
    install_appliance(&lab, &archive);
    let vm_conf = make_seed(&lab, &lab_support::upgrade_user_data(true));
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert!(start.status.success());
    let lines = read_channel(&lab, Duration::from_secs(60));
    assert!(lines
        .iter()
        .any(|l| l == "HE_APPLIANCE_ENGINE_RESTORE_FAIL"));
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_file(&archive);
    lines
}

#[test]
fn restore_refuses_a_backup_of_an_unsupported_version() {
    // A consistent archive made by engine 3.5: not restorable on 4.0.
    let lines = restore_of_a_changed_backup("version", 44, |work| {
        std::fs::write(work.join("version"), "3.5.6.2\n").unwrap();
    });
    assert!(
        lines.iter().any(|l| l
            == "FATAL: Backup was created by version '3.5' and can not be restored using the installed version 4.0"),
        "{lines:#?}"
    );
}

/// A dump the real pg_restore cannot read (the JSON the lab once wrote), in an otherwise
/// consistent archive: the restore fails as engine-backup's does.
#[test]
fn restore_refuses_a_dump_pg_restore_cannot_read() {
    let lines = restore_of_a_changed_backup("dump", 46, |work| {
        std::fs::write(work.join("db/engine_backup.db"), "{\"hosts\": []}\n").unwrap();
    });
    assert!(
        lines.iter().any(
            |l| l.starts_with("FATAL: Errors while restoring database engine:")
                && l.contains("input file does not appear to be a valid archive")
        ),
        "{lines:#?}"
    );
}

#[test]
fn second_profile_upgrades_43_to_44() {
    let lab = Lab::init("profile44", 45, &["--profile", "el7-4.3:el8-4.4"]);
    lab.up();
    assert_eq!(lab.inspect()["engine_version"], "4.3.10.4");
    assert!(lab
        .tool("hosted-engine", &["--vm-shutdown"])
        .status
        .success());
    lab.wait_vm_status("Down", Duration::from_secs(10));
    install_appliance(&lab, &lab.path("engine_backup"));
    let vm_conf = make_seed(&lab, &lab_support::upgrade_user_data(true));
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert!(start.status.success());
    let lines = read_channel(&lab, Duration::from_secs(60));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("HE_APPLIANCE_ENGINE_SETUP_SUCCESS"),
        "{lines:#?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.health().unwrap_or_default().contains("DB Up") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let inspect = lab.inspect();
    assert_eq!(inspect["engine_version"], "4.4.10.7");
    assert_eq!(inspect["engine_db_version"], "4.4.10.7-1.el8");
}

/// qemu opens its drives as user qemu (107, groups 107 and 36): an ISO only root may read
/// stops the launch with qemu's message, while volumes (vdsm:kvm 0660) open through kvm.
#[test]
fn the_vm_opens_its_drives_as_qemu_and_fails_as_qemu_does() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // only root can be refused as qemu here
    }
    let lab = Lab::init("qemu", 43, &[]);
    let volume = std::fs::metadata(lab.engine_volume()).unwrap();
    assert_eq!(
        (volume.uid(), volume.gid(), volume.mode() & 0o7777),
        (36, 36, 0o660)
    );
    lab.up();
    assert!(lab
        .tool("hosted-engine", &["--vm-shutdown"])
        .status
        .success());
    lab.wait_vm_status("Down", Duration::from_secs(10));
    let vm_conf = make_seed(&lab, "#cloud-config\n");
    let conf = std::fs::read_to_string(&vm_conf).unwrap();
    let iso = conf
        .split("path:")
        .find_map(|rest| rest.split_once(",device:cdrom").map(|(p, _)| p.to_string()))
        .unwrap();
    std::fs::set_permissions(&iso, std::fs::Permissions::from_mode(0o600)).unwrap();
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert!(start.status.success(), "{}", text(&start.stderr));
    lab.wait_vm_status("Down", Duration::from_secs(20));
    let vm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("state/vm.json")).unwrap())
            .unwrap();
    assert_eq!(
        vm["exit_message"],
        format!("qemu-kvm: -drive file={iso}: Could not open '{iso}': Permission denied")
    );
    std::os::unix::fs::chown(&iso, Some(107), Some(107)).unwrap();
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert!(start.status.success(), "{}", text(&start.stderr));
    lab.wait_vm_status("Up", Duration::from_secs(20));
}
