//! The engine backup the upgrade restores: a fresh one taken on the engine VM over SSH
//! (he_take_engine_backup), or a given one, refused when older than he_backup_max_age unless
//! he_accept_stale_backup accepts it.

use he_e2e::{assert_failure, assert_success, backup_disks, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const UPGRADE: &str = "playbooks/hosted_engine_upgrade.yml";

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&output.stdout)[..64].to_string()
}

/// The attempt record the playbook keeps on the host.
fn record(lab: &Lab) -> Value {
    let path = lab
        .dir
        .path()
        .join("var/lib/ovirt-hosted-engine-upgrade/upgrade-state.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The status line Ansible printed for the task named `task` (`ok: [...]`, `changed: [...]`).
fn task_status<'a>(output: &'a str, task: &str) -> &'a str {
    let header = format!("TASK [{task}]");
    let start = output
        .find(&header)
        .unwrap_or_else(|| panic!("no task {task}: {output}"));
    output[start..]
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split(':')
        .next()
        .unwrap_or_default()
}

#[test]
fn upgrade_restores_a_fresh_backup_taken_on_the_engine_vm_over_ssh() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let engine_vm = lab.dir.path().join("engine-vm.yml");
    let given = lab.dir.path().join("backup/engine_backup.tar.gz");
    let run = lab.playbook(
        UPGRADE,
        &[
            "-i",
            engine_vm.to_str().unwrap(),
            "-e",
            "he_target=hosted_engine_host",
            "-e",
            "he_take_engine_backup=true",
            // Not read: the fresh backup replaces it.
            "-e",
            "he_engine_backup=/nonexistent/engine_backup.tar.gz",
        ],
    );
    assert_success(&run);

    // Taken over SSH on the engine VM, by root with the control node's key...
    let sshd_log = std::fs::read_to_string(lab.dir.path().join("engine-vm/sshd.log")).unwrap();
    assert!(
        sshd_log.contains("Accepted publickey for root"),
        "{sshd_log}"
    );
    let on_engine_vm: Vec<PathBuf> = std::fs::read_dir(lab.dir.path().join("engine-vm/backups"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(on_engine_vm.len(), 1, "{on_engine_vm:?}");

    // ...brought to the host, recorded, and that archive is the one injected and restored.
    let record = record(&lab);
    let on_host = PathBuf::from(record["engine_backup_file"].as_str().unwrap());
    assert!(on_host.starts_with(lab.dir.path().join("var/lib/ovirt-hosted-engine-upgrade")));
    assert_eq!(sha256(&on_host), sha256(&on_engine_vm[0]));
    assert_eq!(record["engine_backup"]["sha256"], sha256(&on_host));
    assert_ne!(sha256(&on_host), sha256(&given));
    // The fresh backup was taken after the backup disk was created: the restored engine knows
    // that disk already (restored from the given backup, it had to register it).
    assert_eq!(
        task_status(&run.text, "Register the backup disk in the new engine"),
        "ok",
        "{}",
        run.text
    );
    let inspect = lab.inspect();
    assert_eq!(inspect["engine_version"], "4.0.6.3", "{inspect}");
    assert_eq!(backup_disks(&inspect).len(), 1, "{inspect}");
}

/// The lab's given backup with every member dated 2016-11-24 (as an old backup is).
fn stale_copy(lab: &Lab) -> PathBuf {
    let work = lab.dir.path().join("stale-work");
    std::fs::create_dir_all(&work).unwrap();
    let unpacked = Command::new("tar")
        .arg("-C")
        .arg(&work)
        .arg("-xzf")
        .arg(lab.dir.path().join("backup/engine_backup.tar.gz"))
        .status()
        .unwrap();
    assert!(unpacked.success());
    let stale = lab.dir.path().join("stale_engine_backup.tar.gz");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(&work)
        .args(["--mtime=@1479988800", "-czf"])
        .arg(&stale)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    stale
}

#[test]
fn a_stale_given_backup_is_refused_before_any_downtime_unless_accepted() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let stale = stale_copy(&lab);
    let given = format!("he_engine_backup={}", stale.display());
    let before = lab.engine_disk_sha256();

    let checked = lab.playbook(UPGRADE, &["--check", "-e", &given]);
    assert_failure(&checked, "created 2016-11-24T12:00:00Z");
    for variable in [
        "he_backup_max_age",
        "he_accept_stale_backup",
        "he_take_engine_backup",
    ] {
        assert!(
            checked.text.contains(variable),
            "{variable}: {}",
            checked.text
        );
    }

    let refused = lab.playbook(UPGRADE, &["-e", &given]);
    assert_failure(&refused, "he_accept_stale_backup: true");
    let inspect = lab.inspect();
    assert_eq!(inspect["vm_state"], "up", "{inspect}");
    assert!(backup_disks(&inspect).is_empty(), "{inspect}");
    assert_eq!(lab.engine_disk_sha256(), before);

    let accepted = lab.playbook(
        UPGRADE,
        &["--check", "-e", &given, "-e", "he_accept_stale_backup=true"],
    );
    assert_success(&accepted);
    assert!(
        accepted.text.contains("as accept_stale asks"),
        "{}",
        accepted.text
    );
}
