//! Host-side faults change what the host tools and the VM do; every fault name switches.

mod lab_support;

use lab_support::{install_appliance, make_seed, read_channel, text, Lab};
use serde_json::Value;
use std::time::Duration;

const ALL_FAULTS: &[&str] = &[
    "not_global_maintenance",
    "vm_on_other_host",
    "not_spm",
    "sd_low_space",
    "api_flaky",
    "api_slow",
    "disk_create_stuck",
    "restore_fail",
    "setup_fail",
    "setup_stall",
    "never_healthy",
    "vm_crash_on_boot",
    "dc_down_after_restore",
];

fn vm_status(lab: &Lab) -> Value {
    serde_json::from_slice(&lab.tool("hosted-engine", &["--vm-status", "--json"]).stdout).unwrap()
}

#[test]
fn every_fault_switches_and_unknown_names_are_refused() {
    let lab = Lab::init("faults", 51, &[]);
    for name in ALL_FAULTS {
        lab.fault(name, true);
    }
    let mut on: Vec<String> = serde_json::from_value(lab.inspect()["faults"].clone()).unwrap();
    on.sort();
    let mut expected: Vec<String> = ALL_FAULTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(on, expected);
    for name in ALL_FAULTS {
        lab.fault(name, false);
    }
    assert_eq!(lab.inspect()["faults"], serde_json::json!([]));
    let bad = lab.he_lab(&["fault", "disk_on_fire", "on"]);
    assert!(!bad.status.success());
    let refused = text(&bad.stderr);
    assert!(
        refused.contains("invalid value 'disk_on_fire'")
            && refused.contains("dc_down_after_restore"),
        "{refused}"
    );
}

#[test]
fn maintenance_and_vm_placement_faults() {
    // The 4.4 host has vdsm-client (a client of the lab's vdsm).
    let lab = Lab::init("placement", 52, &["--profile", "el7-4.3:el8-4.4"]);
    lab.up();
    assert_eq!(vm_status(&lab)["global_maintenance"], true);
    lab.fault("not_global_maintenance", true);
    assert_eq!(vm_status(&lab)["global_maintenance"], false);
    lab.fault("not_global_maintenance", false);

    lab.fault("vm_on_other_host", true);
    let status = vm_status(&lab);
    assert_eq!(
        status["1"]["engine-status"]["reason"],
        "vm not running on this host"
    );
    assert_eq!(status["2"]["engine-status"]["vm"], "up");
    let list = lab.tool("vdsm-client", &["Host", "getVMList"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
    lab.fault("vm_on_other_host", false);
    assert_eq!(vm_status(&lab)["1"]["engine-status"]["health"], "good");

    lab.fault("never_healthy", true);
    let status = vm_status(&lab);
    assert_eq!(status["1"]["engine-status"]["health"], "bad");
    assert_eq!(
        status["1"]["engine-status"]["reason"],
        "failed liveliness check"
    );
    assert!(!lab.health().unwrap_or_default().contains("DB Up"));
}

#[test]
fn vm_crash_on_boot_takes_the_vm_down() {
    let lab = Lab::init("crash", 53, &[]);
    lab.fault("vm_crash_on_boot", true);
    let up = lab.he_lab(&["up"]);
    assert!(!up.status.success());
    assert!(
        text(&up.stderr).contains("went down while booting"),
        "{}",
        text(&up.stderr)
    );
    let status = lab.json(&["status", "--json"]);
    assert_eq!(status["vm_state"], "down");
    let ha = vm_status(&lab);
    assert_eq!(ha["1"]["engine-status"]["vm"], "down_unexpected");
    lab.fault("vm_crash_on_boot", false);
    lab.up();
}

fn boot_upgrade(lab: &Lab) {
    lab.up();
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    install_appliance(lab, &lab.path("engine_backup"));
    let vm_conf = make_seed(lab, &lab_support::upgrade_user_data(true));
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert!(start.status.success());
}

#[test]
fn restore_fail_sends_the_restore_fail_marker() {
    let lab = Lab::init("restore-fail", 54, &[]);
    lab.fault("restore_fail", true);
    boot_upgrade(&lab);
    let lines = read_channel(&lab, Duration::from_secs(60));
    assert!(
        lines
            .iter()
            .any(|l| l == "FATAL: Errors while restoring database engine"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("HE_APPLIANCE_ENGINE_RESTORE_FAIL")
    );
}

#[test]
fn setup_fail_sends_the_setup_fail_marker_and_no_engine_runs() {
    let lab = Lab::init("setup-fail", 55, &[]);
    lab.fault("setup_fail", true);
    boot_upgrade(&lab);
    let lines = read_channel(&lab, Duration::from_secs(60));
    assert!(lines
        .iter()
        .any(|l| l == "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS"));
    assert!(
        lines
            .iter()
            .any(|l| l == "[ ERROR ] Execution of setup failed"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("HE_APPLIANCE_ENGINE_SETUP_FAIL")
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        lab.health().is_none(),
        "no engine should answer after a failed setup"
    );
}

#[test]
fn setup_stall_stops_the_lines_until_switched_off() {
    let lab = Lab::init("stall", 56, &[]);
    lab.fault("setup_stall", true);
    boot_upgrade(&lab);
    let stalled = read_channel(&lab, Duration::from_secs(3));
    assert!(stalled
        .iter()
        .any(|l| l == "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS"));
    assert!(
        !stalled
            .iter()
            .any(|l| l.starts_with("HE_APPLIANCE_ENGINE_SETUP_")),
        "{stalled:#?}"
    );
    lab.fault("setup_stall", false);
    let rest = read_channel(&lab, Duration::from_secs(30));
    assert_eq!(
        rest.last().map(String::as_str),
        Some("HE_APPLIANCE_ENGINE_SETUP_SUCCESS"),
        "{rest:#?}"
    );
}
