//! he_cloudinit run as Ansible runs it; the ISO is read back with xorriso and isoinfo.
mod support;
use support::bad_paths::BadPaths;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::lab::TestLab;
use support::run_module;

const PASSWORD: &str = "Engine-r00t-S3cret";
const VM_ID: &str = "5b0a0c3e-6a3f-4c9b-9d8e-0e6f2b1c7a11";

fn args(dest: &Path) -> Value {
    json!({
        "dest": dest,
        "vm_id": VM_ID,
        "fqdn": "engine.example.com",
        "root_password": PASSWORD,
        "root_ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHe root@host1",
        "host_fqdn": "host1.example.com",
        "host_ip": "192.0.2.10",
        "network": {"ip": "192.0.2.20", "prefix": 24, "gateway": "192.0.2.1", "dns": ["192.0.2.53"]},
        "dwh": true,
        "answers": {"OVESETUP_CORE/engineStop": true},
    })
}

fn tool_output(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Extracts the ISO with xorriso, as a reader that knows nothing of our writer.
fn extract(iso: &Path, dir: &Path) -> (String, String) {
    let iso = iso.to_str().unwrap();
    tool_output(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            iso,
            "-extract",
            "/",
            dir.to_str().unwrap(),
        ],
    );
    let read = |name| std::fs::read_to_string(dir.join(name)).unwrap();
    (read("meta-data"), read("user-data"))
}

/// A temporary directory qemu (uid 107) may enter, as the directories of a host are.
fn qemu_may_enter_tempdir() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    work
}

fn am_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".he_cloudinit-"))
        .collect()
}

#[test]
fn writes_a_nocloud_iso_that_readers_accept() {
    let work = qemu_may_enter_tempdir();
    let dest = work.path().join("seed.iso");
    let run = run_module("he_cloudinit", args(&dest), work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    let bytes = std::fs::read(&dest).unwrap();
    assert_eq!(
        run.result["sha256"],
        json!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
    );
    assert_eq!(
        std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let pvd = tool_output("xorriso", &["-indev", dest.to_str().unwrap(), "-pvd_info"]);
    assert!(pvd.contains("Volume Id    : cidata"), "{pvd}");
    let info = tool_output("isoinfo", &["-d", "-i", dest.to_str().unwrap()]);
    assert!(info.contains("Joliet with UCS level 3 found"), "{info}");
    assert!(
        info.contains("Rock Ridge signatures version 1 found"),
        "{info}"
    );

    let out = work.path().join("out");
    let (meta_data, user_data) = extract(&dest, &out);
    assert!(meta_data.starts_with(&format!(
        "instance-id: {VM_ID}\nlocal-hostname: engine.example.com\n"
    )));
    assert!(meta_data
        .contains("    address 192.0.2.20\n    network 192.0.2.0\n    netmask 255.255.255.0\n"));
    assert!(user_data.starts_with("#cloud-config\n"));
    assert!(user_data.contains("--provision-db --provision-dwh-db 1>/dev/virtio-ports/org.ovirt.hosted-engine-setup.0 2>&1"));
    assert!(!user_data.contains("--provision-reports-db"));
    assert!(user_data.contains(
        "OVESETUP_PKI/organization=str:example.com\\nOVESETUP_CORE/engineStop=bool:True\\n"
    ));
    assert!(user_data.contains("HE_APPLIANCE_ENGINE_SETUP_SUCCESS"));
    let hash = user_data
        .lines()
        .find_map(|l| l.trim().strip_prefix("root:"))
        .expect("root password line");
    assert!(hash.starts_with("$6$"), "{hash}");
    assert!(
        sha_crypt::sha512_check(PASSWORD, hash).is_ok(),
        "the hash must verify the password"
    );
    assert_eq!(
        run.result["user_data"],
        json!(user_data.replace(hash, "********"))
    );
    assert!(
        leftovers(work.path()).is_empty(),
        "private directory left behind"
    );
}

/// Run as root, the ISO goes to qemu alone (107:107, 0600, as the original did); a missing
/// directory is made for qemu alone; a directory qemu cannot enter is refused, check mode too.
#[test]
fn the_iso_is_given_to_qemu_and_must_be_within_its_reach() {
    use std::os::unix::fs::MetadataExt;
    if !am_root() {
        return;
    }
    let work = qemu_may_enter_tempdir();
    let dest = work.path().join("seed/seed.iso");
    run_module("he_cloudinit", args(&dest), work.path(), None).assert_ok();
    let iso = std::fs::metadata(&dest).unwrap();
    assert_eq!(
        (iso.uid(), iso.gid(), iso.mode() & 0o7777),
        (107, 107, 0o600)
    );
    let dir = std::fs::metadata(dest.parent().unwrap()).unwrap();
    assert_eq!(
        (dir.uid(), dir.gid(), dir.mode() & 0o7777),
        (107, 107, 0o700)
    );
    let mut other_ids = args(&dest);
    other_ids["qemu_uid"] = json!(1107);
    let run = run_module("he_cloudinit", other_ids.clone(), work.path(), None);
    run.assert_failed_with("cannot enter");
    other_ids["dest"] = json!(work.path().join("seed.iso"));
    let run = run_module("he_cloudinit", other_ids, work.path(), None);
    run.assert_ok();
    assert_eq!(
        std::fs::metadata(work.path().join("seed.iso"))
            .unwrap()
            .uid(),
        1107
    );

    let closed = work.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    for check_mode in [true, false] {
        let mut arguments = args(&closed.join("seed.iso"));
        arguments["_ansible_check_mode"] = json!(check_mode);
        let run = run_module("he_cloudinit", arguments, work.path(), None);
        run.assert_failed_with(&format!(
            "qemu (uid 107, gid 107, groups 107,36) could not open {}: it cannot enter {}",
            closed.join("seed.iso").display(),
            closed.display()
        ));
    }
    assert_eq!(std::fs::read_dir(&closed).unwrap().count(), 0);
}

#[test]
fn never_leaks_the_password_or_its_hash() {
    let work = qemu_may_enter_tempdir();
    let dest = work.path().join("seed.iso");
    let mut arguments = args(&dest);
    arguments["_ansible_diff"] = json!(true);
    let run = run_module("he_cloudinit", arguments, work.path(), None);
    run.assert_ok();
    let iso = std::fs::read(&dest).unwrap();
    assert!(
        !iso.windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()),
        "plaintext password in the ISO"
    );
    let result = run.result.to_string();
    assert!(
        !result.contains(PASSWORD) && !result.contains("$6$"),
        "{result}"
    );
    assert!(run.result["diff"]["after"]
        .as_str()
        .unwrap()
        .contains("    root:********\n"));
    let log = std::fs::read_to_string(run.result["log_file"].as_str().unwrap()).unwrap();
    assert!(!log.contains(PASSWORD) && !log.contains("$6$"), "{log}");
    // A second run diffs against the ISO now in place: its hash is masked too.
    let mut arguments = args(&dest);
    arguments["_ansible_diff"] = json!(true);
    arguments["vm_id"] = json!("another-vm");
    let rerun = run_module("he_cloudinit", arguments, work.path(), None);
    rerun.assert_ok();
    assert!(rerun.result["diff"]["before"]
        .as_str()
        .unwrap()
        .contains("root:********"));
    assert!(
        !rerun.result.to_string().contains("$6$"),
        "{}",
        rerun.result
    );
}

#[test]
fn identical_inputs_give_a_byte_identical_iso_and_no_change() {
    let work = qemu_may_enter_tempdir();
    let (first, second) = (work.path().join("a.iso"), work.path().join("b.iso"));
    run_module("he_cloudinit", args(&first), work.path(), None).assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run_module("he_cloudinit", args(&second), work.path(), None).assert_ok();
    assert!(
        std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
        "ISOs differ"
    );
    let again = run_module("he_cloudinit", args(&first), work.path(), None);
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false));
    std::fs::set_permissions(&first, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fixed = run_module("he_cloudinit", args(&first), work.path(), None);
    assert_eq!(
        fixed.result["changed"],
        json!(true),
        "a wrong mode is a change"
    );
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn check_mode_writes_nothing_and_diff_shows_before_and_after() {
    let work = qemu_may_enter_tempdir();
    let dest = work.path().join("seed.iso");
    let mut check = args(&dest);
    check["_ansible_check_mode"] = json!(true);
    let run = run_module("he_cloudinit", check.clone(), work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert!(!dest.exists() && leftovers(work.path()).is_empty());

    run_module("he_cloudinit", args(&dest), work.path(), None).assert_ok();
    let written = std::fs::read(&dest).unwrap();
    assert_eq!(
        run_module("he_cloudinit", check.clone(), work.path(), None).result["changed"],
        json!(false)
    );
    check["fqdn"] = json!("engine2.example.com");
    check["_ansible_diff"] = json!(true);
    let run = run_module("he_cloudinit", check, work.path(), None);
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    let before = run.result["diff"]["before"].as_str().unwrap();
    let after = run.result["diff"]["after"].as_str().unwrap();
    assert!(
        before.contains("local-hostname: engine.example.com\n") && before.contains("root:********"),
        "{before}"
    );
    assert!(
        after.contains("local-hostname: engine2.example.com\n"),
        "{after}"
    );
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        written,
        "check mode changed the ISO"
    );
}

#[test]
fn plain_first_boot_and_genisoimage() {
    let work = qemu_may_enter_tempdir();
    let dest = work.path().join("plain.iso");
    let arguments = json!({"dest": dest, "vm_id": VM_ID, "fqdn": "engine", "restore": false, "iso_tool": "genisoimage",
                           "root_ssh_key": "ssh-ed25519 AAAA root@h"});
    let run = run_module("he_cloudinit", arguments, work.path(), None);
    run.assert_ok();
    assert!(run.result["warnings"][0]
        .as_str()
        .unwrap()
        .contains("genisoimage"));
    let (_, user_data) = extract(&dest, &work.path().join("out"));
    assert!(
        !user_data.contains("engine-backup") && !user_data.contains("heanswers"),
        "{user_data}"
    );
    assert!(user_data.contains("ssh_authorized_keys:\n  - \"ssh-ed25519 AAAA root@h\"\n"));
}

#[test]
fn refuses_bad_inputs_before_writing() {
    let work = qemu_may_enter_tempdir();
    let dest = work.path().join("seed.iso");
    let mut bad = args(&dest);
    bad["backup_path"] = json!("/root/x.tar.gz; reboot");
    run_module("he_cloudinit", bad, work.path(), None).assert_failed_with("option 'backup_path'");
    let mut bad = args(&dest);
    bad.as_object_mut().unwrap().remove("host_ip");
    run_module("he_cloudinit", bad, work.path(), None)
        .assert_failed_with("'host_fqdn' and 'host_ip' go together");
    let mut bad = args(&dest);
    bad["answers"] = json!({"OVESETUP_CONFIG/adminPassword": "a\nOVESETUP_X/y=str:z"});
    run_module("he_cloudinit", bad, work.path(), None)
        .assert_failed_with("option 'answers.OVESETUP_CONFIG/adminPassword'");
    let mut bad = args(&dest);
    bad["network"]["prefix"] = json!(33);
    run_module("he_cloudinit", bad, work.path(), None).assert_failed_with("network.prefix");
    assert!(!dest.exists());
}

/// Reads the setup channel until the SETUP marker, a FAIL marker, EOF or 90 s of silence.
fn channel_lines(path: &Path) -> Vec<String> {
    use std::io::BufRead;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("channel {}: {e}", path.display())
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(90)))
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let done = line.starts_with("HE_APPLIANCE_ENGINE_SETUP_") || line.ends_with("_FAIL");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

/// The lab's own backup, injected with he_inject_backup into its engine disk, is restored
/// by the lab VM booting our ISO: both markers arrive and the engine comes up.
#[test]
fn lab_vm_boots_our_iso_and_restores_the_backup() {
    if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
        std::env::set_var("LIBGUESTFS_BACKEND", "direct");
        std::env::set_var("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    }
    let lab = TestLab::init(&[]);
    lab.up();
    let status = lab.json(&["status", "--json"]);
    let bin = PathBuf::from(status["bin_dir"].as_str().unwrap());
    let shutdown = Command::new(bin.join("hosted-engine"))
        .arg("--vm-shutdown")
        .output()
        .unwrap();
    assert!(shutdown.status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lab.json(&["status", "--json"])["vm_state"] != "down" {
        assert!(
            std::time::Instant::now() < deadline,
            "the lab VM did not go down"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let inspect = lab.json(&["inspect", "--json"]);
    // As on a host: through the storage domain's mount, where only vdsm:kvm may open it.
    let disk = inspect["engine_disk"]["host_path"].as_str().unwrap();

    let backup = status["engine_backup"].as_str().unwrap();
    let inject = run_module(
        "he_inject_backup",
        json!({"backup": backup, "disk": disk}),
        lab.work(),
        None,
    );
    inject.assert_ok();
    let dwh = inject.result["backup"]["dwh"].clone();
    assert_eq!(
        dwh,
        json!(true),
        "the lab backup has a DWH dump: its restore needs --provision-dwh-db"
    );
    let iso = lab.work().join("seed.iso");
    let mut arguments = args(&iso);
    arguments["vm_id"] = status["vm_id"].clone();
    arguments["fqdn"] = status["fqdn"].clone();
    arguments["dwh"] = dwh;
    arguments.as_object_mut().unwrap().remove("answers");
    run_module("he_cloudinit", arguments, lab.work(), None).assert_ok();

    let vm_conf = std::fs::read_to_string(status["vm_conf"].as_str().unwrap()).unwrap();
    let patched = vm_conf.replace(
        "path:,device:cdrom",
        &format!("path:{},device:cdrom", iso.display()),
    );
    assert_ne!(patched, vm_conf, "the lab vm.conf has an empty cdrom path");
    let copy = lab.work().join("vm.conf");
    std::fs::write(&copy, patched).unwrap();
    let start = Command::new(bin.join("hosted-engine"))
        .args(["--vm-start", &format!("--vm-conf={}", copy.display())])
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let lines = channel_lines(Path::new(status["channel"].as_str().unwrap()));
    let markers: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("HE_APPLIANCE_ENGINE_"))
        .collect();
    assert_eq!(
        markers,
        [
            "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
        ],
        "{lines:#?}"
    );
}

/// dest given as a directory, a looping link or under a missing directory's missing child
/// (only the last directory is created) fails naming the option and its path, in check mode
/// too, and writes nothing.
#[test]
fn dest_names_the_input_when_a_directory_a_loop_or_in_a_missing_directory() {
    let work = qemu_may_enter_tempdir();
    let dir = work.path();
    let bad = BadPaths::in_dir(dir);
    let looping = bad.looping.clone();
    let a_dir = bad.directory.clone();
    let deep = dir.join("missing").join("deeper").join("seed.iso");
    for (dest, problem) in [
        (&a_dir, "exists and is not a regular file".to_string()),
        (&looping, "Too many levels of symbolic links".to_string()),
        (
            &deep,
            format!("{}: No such file", deep.parent().unwrap().display()),
        ),
    ] {
        for check_mode in [true, false] {
            let mut bad = args(dest);
            bad["_ansible_check_mode"] = json!(check_mode);
            let run = run_module("he_cloudinit", bad, dir, None);
            run.assert_failed_with("option 'dest': ");
            run.assert_failed_with(&dest.display().to_string());
            run.assert_failed_with(&problem);
        }
    }
    assert_eq!(std::fs::read_dir(&a_dir).unwrap().count(), 0);
    assert!(std::fs::symlink_metadata(&looping).unwrap().is_symlink());
    assert!(!dir.join("missing").exists());
}
