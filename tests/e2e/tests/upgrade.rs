//! The shipped playbooks against the lab: upgrade, idempotent re-run, rollback (checked,
//! killed mid-copy, re-run), check mode.

use he_e2e::{ansible_216_tool, assert_engine_version, assert_success, backup_disks, finish, Lab};
use serde_json::Value;

const UPGRADE: &str = "playbooks/hosted_engine_upgrade.yml";
const ROLLBACK: &str = "playbooks/hosted_engine_rollback.yml";

fn volume<'a>(inspect: &'a Value, image_id: &str) -> &'a Value {
    inspect["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["image_id"] == image_id)
        .unwrap_or_else(|| panic!("no volume of image {image_id}: {inspect}"))
}

fn volume_sha(inspect: &Value, image_id: &str) -> String {
    volume(inspect, image_id)["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Prepare (engine up), downtime in a second run, re-run as a no-op, roll back, and the old
/// engine comes back. The disk is compared at the start of the downtime: creating the backup
/// disk changes the old engine's database, which lives on the engine disk.
fn upgrade_and_rollback(profile: &str, init_args: &[&str], old_version: &str, new_version: &str) {
    let lab = Lab::start_with_site(profile, init_args, &[]);
    assert_engine_version(&lab.inspect(), old_version);

    let prepare = lab.playbook(UPGRADE, &["--tags", "prepare"]);
    assert_success(&prepare);
    let prepared = lab.inspect();
    assert_eq!(
        prepared["vm_state"], "up",
        "the prepare part leaves the engine running"
    );
    assert_eq!(backup_disks(&prepared).len(), 1, "{prepared}");

    let poweroff = lab.hosted_engine(&["--vm-poweroff"]);
    assert_eq!(poweroff.code, 0, "{}", poweroff.text);
    let at_downtime = lab.engine_disk_sha256();

    let run = lab.playbook(
        UPGRADE,
        &["--tags", "downtime", "-e", "he_leave_running=true"],
    );
    assert_success(&run);
    assert!(
        run.text.contains("Hosted engine upgrade finished"),
        "{}",
        run.text
    );

    let after = lab.assert_upgraded_to(new_version);
    assert_ne!(
        after["engine_disk"]["sha256"].as_str().unwrap(),
        at_downtime
    );
    let backups = backup_disks(&after);
    assert_eq!(backups[0]["status"], "ok");
    let backup_image = backups[0]["id"].as_str().unwrap();
    assert_eq!(
        volume_sha(&after, backup_image),
        at_downtime,
        "the backup holds the disk as it was"
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(after["report_path"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(report["result"], "done");
    assert!(report["downtime_seconds"].as_u64().is_some(), "{report}");
    assert!(
        report["engine_version_after"]
            .as_str()
            .unwrap()
            .starts_with(new_version),
        "{report}"
    );

    let again = lab.playbook(UPGRADE, &["-e", "he_leave_running=true"]);
    assert_success(&again);
    assert!(
        again.text.contains("changed=0"),
        "a finished upgrade re-runs as a no-op:\n{}",
        again.text
    );

    let poweroff = lab.hosted_engine(&["--vm-poweroff"]);
    assert_eq!(poweroff.code, 0, "{}", poweroff.text);
    let upgraded = lab.engine_disk_sha256();
    let check = lab.playbook(ROLLBACK, &["--check"]);
    assert_success(&check);
    assert_eq!(
        lab.engine_disk_sha256(),
        upgraded,
        "a checked rollback writes nothing"
    );
    // A rollback killed in the middle of its copy is simply run again.
    lab.kill_in_the_middle_of_the_copy(ROLLBACK, "restore-copy", &[]);
    let rollback = lab.playbook(ROLLBACK, &[]);
    assert_success(&rollback);
    let backup_size = volume(&lab.inspect(), backup_image)["capacity"]
        .as_u64()
        .unwrap();
    lab.assert_engine_disk_holds(&at_downtime, backup_size);
    lab.start_engine_expecting(old_version);
}

#[test]
fn upgrade_and_rollback_el6_36_to_el7_40() {
    upgrade_and_rollback("el6-3.6:el7-4.0", &[], "3.6", "4.0");
}

/// On a site whose engine VM has a static address (no DHCP for it): the new engine VM gets
/// it from the answers on the shared storage, or its health page never answers.
#[test]
fn upgrade_and_rollback_el7_43_to_el8_44_static_ip() {
    upgrade_and_rollback("el7-4.3:el8-4.4", &["--static-ip"], "4.3", "4.4");
}

/// ansible-core 2.16 is the one that manages EL7 (Python 2.7) and EL8 platform-python (3.6)
/// hosts: both shipped playbooks run with it, the upgrade and then the rollback.
#[test]
fn upgrade_then_rollback_with_ansible_core_2_16() {
    let mut version = ansible_216_tool("ansible-playbook");
    version.arg("--version");
    let version = finish(version);
    assert!(version.text.contains("[core 2.16."), "{}", version.text);
    let lab = Lab::start("el6-3.6:el7-4.0");
    let with_216 = |playbook: &str| {
        finish(lab.playbook_command_with(ansible_216_tool("ansible-playbook"), playbook, &[]))
    };

    let upgrade = with_216(UPGRADE);
    assert_success(&upgrade);
    let upgraded = lab.assert_upgraded_to("4.0");
    let backup = volume(
        &upgraded,
        backup_disks(&upgraded)[0]["id"].as_str().unwrap(),
    )
    .clone();

    assert_success(&with_216(ROLLBACK));
    lab.assert_engine_disk_holds(
        backup["sha256"].as_str().unwrap(),
        backup["capacity"].as_u64().unwrap(),
    );
    lab.start_engine_expecting("3.6");
}

#[test]
fn check_mode_changes_nothing() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let before = lab.inspect();
    let run = lab.playbook(UPGRADE, &["--check"]);
    assert_success(&run);
    assert!(run.text.contains("Plan of the downtime"), "{}", run.text);
    assert!(
        run.text
            .contains("run  stop_engine: stop the engine VM: the downtime begins"),
        "check mode prints the plan:\n{}",
        run.text
    );
    let after = lab.inspect();
    assert_eq!(
        after["engine_disk"]["sha256"],
        before["engine_disk"]["sha256"]
    );
    assert_eq!(
        after["volumes"], before["volumes"],
        "no volume created or written"
    );
    assert_eq!(after["engine_disks"], before["engine_disks"]);
    assert_eq!(after["vm_state"], "up");
}
