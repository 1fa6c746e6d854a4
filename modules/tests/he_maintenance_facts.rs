//! he_maintenance_facts run as Ansible runs it, on recorded-format host outputs (a fake
//! `hosted-engine` on PATH, a vdsm answering `Host.getHardwareInfo` as recorded).

mod support;
use support::bad_paths::BadPaths;

use serde_json::json;
use std::path::{Path, PathBuf};
use support::fake_vdsm::{FakeVdsm, Reply};
use support::parse;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/host")
}

fn run_with_status(
    status_file: &str,
    extra_env: &[(&str, &str)],
    args: serde_json::Value,
) -> support::Run {
    let work = tempfile::tempdir().unwrap();
    let vdsm = recorded_vdsm();
    let mut args = vdsm.with_options(args);
    args["log_dir"] = json!(work.path().join("logs"));
    let args_file = work.path().join("args");
    std::fs::write(&args_file, args.to_string()).unwrap();
    let path = format!(
        "{}:{}",
        fixtures().join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let mut command = assert_cmd::Command::cargo_bin("he_maintenance_facts").unwrap();
    command
        .arg(&args_file)
        .env("PATH", path)
        .env("HE_FIXTURE_VM_STATUS", fixtures().join(status_file));
    for (key, value) in extra_env {
        command.env(key, value);
    }
    parse("he_maintenance_facts", command.output().unwrap())
}

/// A vdsm answering `Host.getHardwareInfo` with the recorded host's answer.
fn recorded_vdsm() -> FakeVdsm {
    let hardware: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("vdsm-hardware-info.json")).unwrap(),
    )
    .unwrap();
    FakeVdsm::start(move |method, _| match method {
        "Host.getHardwareInfo" => Reply::Result(hardware.clone()),
        other => Reply::Error(-32601, format!("unexpected {other}")),
    })
}

fn he_conf() -> String {
    fixtures().join("hosted-engine.conf").display().to_string()
}

#[test]
fn engine_vm_here_in_global_maintenance() {
    let run = run_with_status("vm-status-here.json", &[], json!({"he_conf": he_conf()}));
    run.assert_ok();
    let facts = &run.result["ansible_facts"]["he_maintenance"];
    assert_eq!(run.result["changed"], json!(false));
    assert_eq!(facts["global_maintenance"], json!(true));
    assert_eq!(facts["vm_here"], json!(true));
    assert_eq!(facts["vm_up"], json!(true));
    assert_eq!(facts["local_host_id"], json!(1));
    assert_eq!(
        facts["host_uuid"],
        json!("4c4c4544-0042-3510-8052-b4c04f4e3232")
    );
    assert_eq!(
        facts["vm_id"],
        json!("4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3")
    );
    assert_eq!(
        facts["sd_id"],
        json!("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")
    );
    assert_eq!(
        facts["sp_id"],
        json!("00000000-0000-0000-0000-000000000000")
    );
    assert_eq!(facts["fqdn"], json!("engine.example.com"));
    assert_eq!(
        facts["engine_disk"],
        json!({"sd_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
               "image_id": "2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e",
               "volume_id": "7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b"})
    );
    assert_eq!(facts["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(
        facts["hosts"][1]["engine_status"]["reason"],
        json!("vm not running on this host")
    );
    assert!(run.result["log_file"].as_str().unwrap().ends_with(".log"));
}

#[test]
fn engine_vm_on_another_host() {
    let run = run_with_status(
        "vm-status-elsewhere.json",
        &[],
        json!({"he_conf": he_conf()}),
    );
    run.assert_ok();
    let facts = &run.result["ansible_facts"]["he_maintenance"];
    assert_eq!(facts["vm_here"], json!(false));
    assert_eq!(facts["vm_up"], json!(true));
    assert_eq!(facts["vm_host_id"], json!(2));
    assert_eq!(facts["vm_host_name"], json!("host2.example.com"));
    assert!(
        run.msg().contains("engine VM up on host2.example.com"),
        "{}",
        run.result
    );
}

#[test]
fn no_global_maintenance() {
    let run = run_with_status(
        "vm-status-no-maintenance.json",
        &[],
        json!({"he_conf": he_conf()}),
    );
    run.assert_ok();
    assert_eq!(
        run.result["ansible_facts"]["he_maintenance"]["global_maintenance"],
        json!(false)
    );
    assert!(run.msg().starts_with("global maintenance off"));
}

#[test]
fn check_mode_gathers_the_same_facts() {
    let run = run_with_status(
        "vm-status-here.json",
        &[],
        json!({"he_conf": he_conf(), "_ansible_check_mode": true}),
    );
    run.assert_ok();
    assert_eq!(
        run.result["ansible_facts"]["he_maintenance"]["vm_here"],
        json!(true)
    );
}

#[test]
fn failing_hosted_engine_is_reported_with_its_message() {
    let run = run_with_status(
        "vm-status-here.json",
        &[("HE_FIXTURE_HA_DOWN", "1")],
        json!({"he_conf": he_conf()}),
    );
    run.assert_failed_with("cannot read the hosted-engine HA status");
    assert!(
        run.msg().contains("Unable to connect the HA Broker"),
        "{}",
        run.result
    );
}

#[test]
fn missing_hosted_engine_command_is_named() {
    let work = tempfile::tempdir().unwrap();
    let empty_path = work.path().join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let args_file = work.path().join("args");
    std::fs::write(
        &args_file,
        json!({"he_conf": he_conf(), "log_dir": work.path()}).to_string(),
    )
    .unwrap();
    let output = assert_cmd::Command::cargo_bin("he_maintenance_facts")
        .unwrap()
        .arg(&args_file)
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    let run = parse("he_maintenance_facts", output);
    run.assert_failed_with("cannot run `hosted-engine --vm-status --json`");
}

#[test]
fn vdsm_that_does_not_answer_is_named() {
    let stopped = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = run_with_status(
        "vm-status-here.json",
        &[],
        json!({"he_conf": he_conf(), "vdsm_timeout": 5}),
    );
    run.assert_ok();
    let vdsm = recorded_vdsm();
    let run = run_with_status(
        "vm-status-here.json",
        &[],
        json!({"he_conf": he_conf(), "vdsm_address": stopped.to_string(), "vdsm_pki_dir": vdsm.pki_dir()}),
    );
    run.assert_failed_with(&format!(
        "cannot read this host's hardware UUID from vdsm: cannot talk to vdsm at {stopped}"
    ));
    let run = run_with_status(
        "vm-status-here.json",
        &[],
        json!({"he_conf": he_conf(), "vdsm_address": "localhost"}),
    );
    run.assert_failed_with("option 'vdsm_address': expected host:port");
}

#[test]
fn missing_he_conf_is_named() {
    let run = run_with_status(
        "vm-status-here.json",
        &[],
        json!({"he_conf": "/nonexistent/hosted-engine.conf"}),
    );
    run.assert_failed_with(
        "cannot read hosted-engine configuration /nonexistent/hosted-engine.conf",
    );
}

#[test]
fn unknown_option_and_wrong_type_are_named() {
    let run = run_with_status(
        "vm-status-here.json",
        &[],
        json!({"he_conf": he_conf(), "hostname": "x"}),
    );
    run.assert_failed_with("unsupported option `hostname`");
    let run = run_with_status("vm-status-here.json", &[], json!({"he_conf": 5}));
    run.assert_failed_with("option 'he_conf': invalid type");
}

#[test]
fn protocol_errors_still_print_one_failed_json_object() {
    let work = tempfile::tempdir().unwrap();
    let no_args = assert_cmd::Command::cargo_bin("he_maintenance_facts")
        .unwrap()
        .output()
        .unwrap();
    parse("he_maintenance_facts", no_args).assert_failed_with("no module arguments file provided");

    let missing = assert_cmd::Command::cargo_bin("he_maintenance_facts")
        .unwrap()
        .arg(work.path().join("nope"))
        .output()
        .unwrap();
    parse("he_maintenance_facts", missing)
        .assert_failed_with("cannot read the module arguments file");

    let bad = work.path().join("bad");
    std::fs::write(&bad, "{not json").unwrap();
    let invalid = assert_cmd::Command::cargo_bin("he_maintenance_facts")
        .unwrap()
        .arg(&bad)
        .output()
        .unwrap();
    parse("he_maintenance_facts", invalid).assert_failed_with("malformed module arguments");
}

/// he_conf given as a missing file, a looping link or a directory fails naming the input and
/// its path.
#[test]
fn he_conf_names_the_input_when_missing_unreadable_or_a_directory() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let bad = BadPaths::in_dir(dir);
    let looping = bad.looping.clone();
    for (path, reason) in [
        (dir.join("missing"), "No such file"),
        (looping, "Too many levels of symbolic links"),
        (dir.to_path_buf(), "Is a directory"),
    ] {
        let run = run_with_status("vm-status-here.json", &[], json!({"he_conf": path}));
        run.assert_failed_with(&format!(
            "cannot read hosted-engine configuration {}: {reason}",
            path.display()
        ));
    }
}

/// vdsm_pki_dir given as a missing directory, a looping link or a file fails naming the
/// option and the file it could not read.
#[test]
fn vdsm_pki_dir_names_the_input_when_missing_unreadable_or_a_file() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let bad = BadPaths::in_dir(dir);
    let looping = bad.looping.clone();
    let a_file = bad.file.clone();
    for (pki_dir, reason) in [
        (dir.join("missing"), "No such file"),
        (looping, "Too many levels of symbolic links"),
        (a_file, "Not a directory"),
    ] {
        let args = json!({"he_conf": he_conf(), "vdsm_pki_dir": pki_dir});
        let run = run_with_status("vm-status-here.json", &[], args);
        run.assert_failed_with(&format!(
            "option 'vdsm_pki_dir': vdsm CA certificate {}/certs/cacert.pem: ",
            pki_dir.display()
        ));
        run.assert_failed_with(reason);
    }
}
