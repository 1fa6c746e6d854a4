//! The upgrade playbook when things go wrong: clear precondition messages, re-run after a
//! failure or a kill -9, automatic rollback. The engine disk is never lost.

use he_e2e::{assert_failure, assert_success, backup_disks, prefix_sha256_and_zero_tail, Lab};
use serde_json::Value;
use std::time::{Duration, Instant};

const UPGRADE: &str = "playbooks/hosted_engine_upgrade.yml";

/// The phase the lab's upgrade attempt recorded, if any.
fn phase(lab: &Lab) -> Option<String> {
    let state = lab
        .dir
        .path()
        .join("var/lib/ovirt-hosted-engine-upgrade/upgrade-state.json");
    let text = std::fs::read_to_string(state).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["phase"]
        .as_str()
        .map(str::to_string)
}

/// Re-runs the upgrade: it must finish on engine `new_version` with the attempt's one backup disk.
fn rerun_reaches(lab: &Lab, new_version: &str) {
    assert_success(&lab.playbook(UPGRADE, &[]));
    let after = lab.inspect();
    assert!(
        after["engine_version"]
            .as_str()
            .unwrap()
            .starts_with(new_version),
        "{after}"
    );
    assert_eq!(
        backup_disks(&after).len(),
        1,
        "the re-run reused the attempt's backup disk: {after}"
    );
}

/// Waits until no process but the lab daemon works on the lab (async module jobs of a killed run).
fn wait_for_orphans(lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let dir = lab.dir.path().display().to_string();
    while Instant::now() < deadline {
        let output = std::process::Command::new("pgrep")
            .args(["-af", &dir])
            .output()
            .unwrap();
        let busy = String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| !line.contains("he-lab") && !line.contains("pgrep"));
        if !busy {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("processes of the killed run still work on {dir}");
}

#[test]
fn preconditions_fail_with_clear_messages_and_change_nothing() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let before = lab.inspect();
    for (fault, message) in [
        ("not_global_maintenance", "not in global maintenance"),
        (
            "vm_on_other_host",
            "run the upgrade on the host that runs the engine VM",
        ),
        ("not_spm", "This host is not the SPM one"),
        ("sd_low_space", "storage domain"),
    ] {
        lab.fault(fault, true);
        let run = lab.playbook(UPGRADE, &[]);
        assert_failure(&run, message);
        lab.fault(fault, false);
    }
    let run = lab.playbook(
        UPGRADE,
        &["-e", "he_engine_backup=/nonexistent/engine_backup.tar.gz"],
    );
    assert_failure(&run, "/nonexistent/engine_backup.tar.gz");
    let run = lab.playbook(UPGRADE, &["-e", "he_allowed_upgrade_pairs=[]"]);
    assert_failure(
        &run,
        "Unsupported upgrade path: engine 3.6 -> appliance 4.0",
    );

    let after = lab.inspect();
    assert_eq!(
        after["engine_disk"]["sha256"],
        before["engine_disk"]["sha256"]
    );
    assert_eq!(
        after["engine_disks"], before["engine_disks"],
        "no backup disk was created"
    );
    assert_eq!(after["vm_state"], "up");
}

#[test]
fn a_failed_setup_reruns_to_success_with_the_same_backup_disk() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    lab.fault("setup_fail", true);
    let failed = lab.playbook(UPGRADE, &[]);
    assert_failure(&failed, "Engine setup failed on the appliance");
    assert!(
        failed
            .text
            .contains("hosted_engine_rollback.yml -e he_backup_name=hosted-engine-backup-"),
        "{}",
        failed.text
    );
    assert_eq!(phase(&lab).as_deref(), Some("engine_disk_written"));

    lab.fault("setup_fail", false);
    rerun_reaches(&lab, "4.0");
}

#[test]
fn auto_rollback_puts_the_old_engine_back() {
    let lab = Lab::start("el7-4.3:el8-4.4");
    lab.fault("restore_fail", true);
    let failed = lab.playbook(UPGRADE, &["-e", "he_auto_rollback=true"]);
    assert_failure(
        &failed,
        "engine-backup failed restoring the engine backup on the appliance",
    );
    assert!(
        failed.text.contains("rolled back to its backup"),
        "{}",
        failed.text
    );
    lab.fault("restore_fail", false);

    let inspect = lab.inspect();
    let state = std::fs::read_to_string(
        lab.dir
            .path()
            .join("var/lib/ovirt-hosted-engine-upgrade/upgrade-state.json"),
    )
    .unwrap();
    let state: Value = serde_json::from_str(&state).unwrap();
    let backup_image = state["backup_disk"]["image_id"].as_str().unwrap();
    let backup = inspect["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["image_id"] == backup_image)
        .unwrap();
    let disk = std::path::PathBuf::from(inspect["engine_disk"]["path"].as_str().unwrap());
    let (restored, zero_tail) =
        prefix_sha256_and_zero_tail(&disk, backup["capacity"].as_u64().unwrap());
    assert_eq!(
        restored,
        backup["sha256"].as_str().unwrap(),
        "the engine disk holds the backup again"
    );
    assert!(zero_tail);
    let start = lab.hosted_engine(&["--vm-start"]);
    assert_eq!(start.code, 0, "{}", start.text);
    assert!(lab.inspect()["engine_version"]
        .as_str()
        .unwrap_or("")
        .starts_with("4.3"));
}

#[test]
fn a_kill_9_while_the_engine_disk_is_written_reruns_to_success() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let mut command = lab.playbook_command(UPGRADE, &[]);
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while phase(&lab).as_deref() != Some("engine_disk_written") {
        assert!(
            Instant::now() < deadline,
            "the run never reached the engine disk write"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for_orphans(&lab);

    rerun_reaches(&lab, "4.0");
}

#[test]
fn a_stuck_backup_disk_creation_reruns_to_success_without_a_second_disk() {
    let lab = Lab::start("el7-4.3:el8-4.4");
    lab.fault("disk_create_stuck", true);
    let failed = lab.playbook(UPGRADE, &["-e", "he_disk_wait_timeout=5"]);
    assert_failure(&failed, "to become ok did not happen within 5 s");
    assert_eq!(phase(&lab).as_deref(), Some("backup_named"));
    assert_eq!(lab.inspect()["vm_state"], "up", "nothing was stopped");

    lab.fault("disk_create_stuck", false);
    rerun_reaches(&lab, "4.4");
}
