//! The upgrade playbook when things go wrong: clear precondition messages, re-run after a
//! failure or a kill -9, automatic rollback. The engine disk is never lost.

use he_e2e::{
    assert_engine_version, assert_failure, assert_success, backup_disks, finish, venv_tool,
    Finished, Lab,
};
use serde_json::Value;

const UPGRADE: &str = "playbooks/hosted_engine_upgrade.yml";

/// The lab's upgrade attempt state file (Null when there is none).
fn attempt_state(lab: &Lab) -> Value {
    let path = lab
        .dir
        .path()
        .join("var/lib/ovirt-hosted-engine-upgrade/upgrade-state.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

/// The attempt's backup volume as `he-lab inspect` lists it (with its SHA-256 and capacity).
fn backup_volume(lab: &Lab) -> Value {
    let state = attempt_state(lab);
    let image = &state["backup_disk"]["image_id"];
    lab.inspect()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| &volume["image_id"] == image)
        .cloned()
        .unwrap_or_else(|| panic!("no backup volume in the lab for {state}"))
}

/// The phase the lab's upgrade attempt recorded, if any.
fn phase(lab: &Lab) -> Option<String> {
    attempt_state(lab)["phase"].as_str().map(str::to_string)
}

/// Re-runs the upgrade: it must finish on engine `new_version` with the attempt's one backup disk.
fn rerun_reaches(lab: &Lab, new_version: &str, args: &[&str]) {
    assert_success(&lab.playbook(UPGRADE, args));
    lab.assert_upgraded_to(new_version);
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
    rerun_reaches(&lab, "4.0", &[]);
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

    let backup = backup_volume(&lab);
    lab.assert_engine_disk_holds(
        backup["sha256"].as_str().unwrap(),
        backup["capacity"].as_u64().unwrap(),
    );
    lab.start_engine_expecting("4.3");
}

/// The chained re-run tests checksum with SHA-256, so the lab's volume hashes can be compared.
const SHA256: [&str; 2] = ["-e", "he_checksum=sha256"];

/// Runs the upgrade (SHA-256, plus `extra`): it must fail at the step named `step`.
fn fails_at(lab: &Lab, step: &str, extra: &[&str]) -> Finished {
    let failed = lab.playbook(UPGRADE, &[&SHA256[..], extra].concat());
    assert_failure(&failed, &format!("The upgrade failed at \"{step}"));
    failed
}

/// Re-runs to the end (SHA-256): one backup disk, whose volume holds what the upgrade verified.
fn rerun_reaches_with_the_verified_backup(lab: &Lab, new_version: &str) {
    rerun_reaches(lab, new_version, &SHA256);
    assert_eq!(
        backup_volume(lab)["sha256"],
        attempt_state(lab)["backup_checksum"],
        "the backup volume holds what the upgrade copied and verified"
    );
}

/// A fake host tool that fails the way a broken one does.
fn break_tool(lab: &Lab, name: &str, message: &str) -> std::path::PathBuf {
    fake_tool(lab, name, &format!("echo '{message}' >&2\nexit 1\n"))
}

/// A fake host tool that fails the way a broken one does when its arguments hold `argument`
/// (while writing, say), and otherwise runs the real tool: what a preflight cannot foresee.
fn break_tool_when(lab: &Lab, name: &str, argument: &str, message: &str) -> std::path::PathBuf {
    let bin = lab.dir.path().join("bin");
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .filter(|dir| *dir != bin)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed"));
    fake_tool(
        lab,
        name,
        &format!(
            "case \" $* \" in *\" {argument} \"*) echo '{message}' >&2; exit 1;; esac\nexec {} \"$@\"\n",
            real.display()
        ),
    )
}

fn fake_tool(lab: &Lab, name: &str, body: &str) -> std::path::PathBuf {
    let path = lab.dir.path().join("bin").join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn after_a_kill_mid_backup_copy_and_failures_at_inject_cloud_init_boot_and_register_reruns_finish()
{
    // The data center stays down for 10 minutes after the restore: far longer than the boot
    // takes, on a busy machine too (the re-run that ends the test runs with the fault off).
    let lab = Lab::start_with_env("el6-3.6:el7-4.0", &[("HE_LAB_DC_DOWN_SECONDS", "600")]);

    lab.kill_in_the_middle_of_the_copy(UPGRADE, "backup-copy", &SHA256);
    assert_eq!(phase(&lab).as_deref(), Some("engine_stopped"));

    // A tool that stopped working is found by the re-run's preflight, before anything more
    // is written (SPEC 6.6).
    break_tool(
        &lab,
        "guestfish",
        "libguestfs: error: could not create appliance through libvirt",
    );
    let failed = lab.playbook(UPGRADE, &SHA256);
    assert_failure(&failed, "preflight failed, nothing was stopped or changed");
    assert_failure(&failed, "could not create appliance");
    assert_eq!(phase(&lab).as_deref(), Some("engine_stopped"));
    // One that fails only while it writes is met where it fails.
    let guestfish = break_tool_when(
        &lab,
        "guestfish",
        "--rw",
        "libguestfs: error: could not create appliance through libvirt",
    );
    let failed = fails_at(&lab, "Put the engine backup into the new engine disk", &[]);
    assert_failure(&failed, "could not create appliance");
    assert_failure(
        &failed,
        "hosted_engine_rollback.yml -e he_backup_name=hosted-engine-backup-",
    );
    assert_eq!(phase(&lab).as_deref(), Some("engine_disk_written"));
    std::fs::remove_file(guestfish).unwrap();

    let xorriso = break_tool_when(
        &lab,
        "xorriso",
        "mkisofs",
        "xorriso : FAILURE : Cannot write to the output file",
    );
    let failed = fails_at(&lab, "Write the cloud-init ISO", &[]);
    assert_failure(&failed, "Cannot write to the output file");
    std::fs::remove_file(xorriso).unwrap();

    lab.fault("vm_crash_on_boot", true);
    let failed = fails_at(&lab, "Boot the new engine VM", &[]);
    assert_failure(&failed, "the engine VM went down while waiting for");
    lab.fault("vm_crash_on_boot", false);

    lab.fault("dc_down_after_restore", true);
    let failed = fails_at(
        &lab,
        "Register the backup disk in the new engine",
        &["-e", "he_disk_wait_timeout=3"],
    );
    assert_failure(
        &failed,
        "the data center and this host to be up did not happen within 3 s",
    );
    assert_eq!(phase(&lab).as_deref(), Some("engine_booted"));
    lab.fault("dc_down_after_restore", false);

    rerun_reaches_with_the_verified_backup(&lab, "4.0");
}

#[test]
fn after_a_kill_mid_appliance_copy_a_stall_and_no_health_reruns_finish_on_a_flaky_slow_api() {
    // Every API call answers a second late under api_slow (3 s by default).
    let lab = Lab::start_with_env("el7-4.3:el8-4.4", &[("HE_LAB_API_SLOW_SECONDS", "1")]);

    lab.kill_in_the_middle_of_the_copy(UPGRADE, "appliance-copy", &SHA256);
    assert_eq!(phase(&lab).as_deref(), Some("engine_disk_written"));

    lab.fault("setup_stall", true);
    // A boot that outlasts the playbook's first look (10 s) shows the operator what the engine
    // VM says: the boot is held once it reported a line, until the playbook has shown it.
    let failed = lab.playbook_holding_step_until_shown(
        UPGRADE,
        &[&SHA256[..], &["-e", "he_stall_timeout=12"]].concat(),
        "boot",
        "the engine VM says",
        " s: the engine VM says",
    );
    assert_failure(&failed, "The upgrade failed at \"Boot the new engine VM");
    assert_failure(&failed, "Engine setup is stalled on the appliance");
    assert_failure(&failed, "stall_timeout 12 s");
    assert_failure(&failed, "TASK [Boot the new engine VM");
    assert_failure(&failed, " s: the engine VM says");
    lab.fault("setup_stall", false);

    lab.fault("never_healthy", true);
    let failed = fails_at(
        &lab,
        "Boot the new engine VM",
        &["-e", "he_health_timeout=5"],
    );
    assert_failure(&failed, "Engine is still not reachable");
    assert_failure(&failed, "within health_timeout 5 s");
    lab.fault("never_healthy", false);

    lab.fault("api_flaky", true);
    lab.fault("api_slow", true);
    rerun_reaches_with_the_verified_backup(&lab, "4.4");
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
    rerun_reaches(&lab, "4.4", &[]);
}

/// A copy of the lab's inventory without the variables `left_out` (as a site that gives no CA
/// file, or keeps the password out of the inventory), written next to it.
fn inventory_without(lab: &Lab, name: &str, left_out: &[&str]) -> std::path::PathBuf {
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            !left_out
                .iter()
                .any(|variable| line.trim_start().starts_with(&format!("{variable}:")))
        })
        .collect();
    let path = lab.dir.path().join(name);
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    path
}

/// Runs the upgrade with `inventory` (stdin not a terminal: an unattended run).
fn upgrade_with(inventory: &std::path::Path, args: &[&str]) -> Finished {
    let mut command = venv_tool("ansible-playbook");
    command.arg("-i").arg(inventory).arg(UPGRADE).args(args);
    finish(command)
}

/// The lab engine's admin password.
fn admin_password(lab: &Lab) -> String {
    let file = lab.inspect()["admin_password_file"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

#[test]
fn a_registration_failure_keeps_the_healthy_new_engine_and_a_resumed_run_with_it_down_needs_the_password(
) {
    let lab = Lab::start_with_env("el7-4.3:el8-4.4", &[("HE_LAB_DC_DOWN_SECONDS", "600")]);
    // No CA file: the CA pinned on the first contact (the old engine) must be the new
    // engine's too (the restore brings the old engine's PKI back).
    let site = inventory_without(&lab, "inventory-site.yml", &["he_ca_file"]);
    let password = format!("he_admin_password={}", admin_password(&lab));

    lab.fault("dc_down_after_restore", true);
    let failed = upgrade_with(
        &site,
        &[
            "-e",
            "he_auto_rollback=true",
            "-e",
            "he_disk_wait_timeout=3",
        ],
    );
    assert_failure(
        &failed,
        "The upgrade failed at \"Register the backup disk in the new engine",
    );
    assert_failure(
        &failed,
        "left running (he_auto_rollback rolls back only before that)",
    );
    assert_failure(
        &failed,
        "hosted_engine_rollback.yml -e he_backup_name=hosted-engine-backup-",
    );
    assert!(
        !failed.text.contains("rolled back to its backup"),
        "{}",
        failed.text
    );
    assert!(
        failed.text.contains("Fingerprint (SHA-1): "),
        "{}",
        failed.text
    );
    assert_eq!(phase(&lab).as_deref(), Some("engine_booted"));
    let kept = lab.inspect();
    assert_eq!(kept["vm_state"], "up", "{kept}");
    assert_engine_version(&kept, "4.4");
    lab.fault("dc_down_after_restore", false);

    // The engine VM goes down (a host reboot, an operator): the re-run must register the backup
    // disk with the new engine, so it needs the password; unattended without one, it stops in
    // its first tasks, naming both variables, before anything changes.
    let down = lab.hosted_engine(&["--vm-shutdown"]);
    assert_eq!(down.code, 0, "{}", down.text);
    let no_password = inventory_without(
        &lab,
        "inventory-no-password.yml",
        &["he_ca_file", "he_admin_password_file"],
    );
    let disk_before = lab.engine_disk_sha256();
    let stopped = upgrade_with(&no_password, &[]);
    assert_failure(&stopped, "This run needs the engine (register_backup_disk)");
    assert_failure(
        &stopped,
        "give he_admin_password (from a vault) or he_admin_password_file",
    );
    assert!(
        !stopped
            .text
            .contains("TASK [The new engine VM must be running"),
        "it stopped before the first step: {}",
        stopped.text
    );
    assert_eq!(phase(&lab).as_deref(), Some("engine_booted"));
    assert_eq!(lab.inspect()["vm_state"], "down");
    assert_eq!(lab.engine_disk_sha256(), disk_before);

    let finished = upgrade_with(&no_password, &["-e", &password]);
    assert_success(&finished);
    let after = lab.inspect();
    assert_eq!(backup_disks(&after).len(), 1, "{after}");
    assert_eq!(backup_disks(&after)[0]["status"], "ok", "{after}");
    assert_eq!(phase(&lab).as_deref(), Some("done"));
}

/// `openssl x509 -fingerprint` of a PEM file, as oVirt shows a SHA-1 (uppercase, no colons).
fn fingerprint(pem: &std::path::Path, digest: &str) -> String {
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", digest, "-in"])
        .arg(pem)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().rsplit('=').next().unwrap().to_string()
}

/// Gives the lab engine another CA and a server certificate signed by it (an engine set up
/// again, or an impostor): the engine uses them from its next start.
fn replace_engine_ca(lab: &Lab) {
    let pki = lab.dir.path().join("pki");
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .current_dir(&pki)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/C=US/O=example.com/CN=engine.example.com.99999",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "engine.key",
        "-out",
        "engine.csr",
        "-subj",
        "/C=US/O=example.com/CN=engine.example.com",
    ]);
    std::fs::write(
        pki.join("engine.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "engine.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "engine.pem",
        "-days",
        "30",
        "-extfile",
        "engine.ext",
    ]);
}

#[test]
fn an_engine_ca_that_changes_after_the_attempts_first_contact_is_refused() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let site = inventory_without(&lab, "inventory-site.yml", &["he_ca_file"]);
    let ca_pem = lab.dir.path().join("pki/ca.pem");
    let pinned_sha1 = fingerprint(&ca_pem, "-sha1").replace(':', "");
    let pinned_sha256 = fingerprint(&ca_pem, "-sha256");

    // Check mode shows the CA as oVirt does and writes no pin.
    let pin = lab
        .dir
        .path()
        .join("var/lib/ovirt-hosted-engine-upgrade/engine-ca-pin.json");
    let check = upgrade_with(&site, &["--check"]);
    assert_success(&check);
    assert!(
        check
            .text
            .contains(&format!("Fingerprint (SHA-1): {pinned_sha1}")),
        "{}",
        check.text
    );
    assert!(!pin.exists(), "check mode pinned the CA");

    // The first contact pins the CA and shows it; the run stops later (the backup disk never
    // becomes ok) with the engine up.
    lab.fault("disk_create_stuck", true);
    let failed = upgrade_with(&site, &["-e", "he_disk_wait_timeout=5"]);
    assert_failure(&failed, "to become ok did not happen within 5 s");
    assert_failure(&failed, &format!("Fingerprint (SHA-1): {pinned_sha1}"));
    assert_failure(&failed, &format!("Fingerprint (SHA-256): {pinned_sha256}"));
    assert_eq!(phase(&lab).as_deref(), Some("backup_named"));
    assert!(pin.exists(), "the first contact pinned the CA");
    lab.fault("disk_create_stuck", false);

    let down = lab.hosted_engine(&["--vm-shutdown"]);
    assert_eq!(down.code, 0, "{}", down.text);
    replace_engine_ca(&lab);
    let start = lab.hosted_engine(&["--vm-start"]);
    assert_eq!(start.code, 0, "{}", start.text);
    let presented_sha1 = fingerprint(&ca_pem, "-sha1").replace(':', "");
    assert_ne!(presented_sha1, pinned_sha1);

    let before = lab.inspect();
    let refused = upgrade_with(&site, &[]);
    assert_failure(
        &refused,
        "not the one pinned on this attempt's first contact",
    );
    for fingerprint in [&pinned_sha1, &presented_sha1, &pinned_sha256] {
        assert_failure(&refused, fingerprint);
    }
    let after = lab.inspect();
    assert_eq!(phase(&lab).as_deref(), Some("backup_named"));
    assert_eq!(after["vm_state"], "up");
    assert_eq!(
        after["engine_disks"], before["engine_disks"],
        "nothing was created"
    );
}
