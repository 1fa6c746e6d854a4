//! he_maintenance_facts run as Ansible runs it, on recorded-format host outputs (a fake
//! `hosted-engine` on PATH, a vdsm answering `Host.getHardwareInfo` as recorded, and a
//! configuration volume holding the answers of an otopi deploy).

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
    run_with(&recorded_vdsm(), status_file, extra_env, args)
}

/// The module with the engine VM here, against `vdsm`.
fn run_with_vdsm(vdsm: &FakeVdsm, args: serde_json::Value) -> support::Run {
    run_with(vdsm, "vm-status-here.json", &[], args)
}

fn run_with(
    vdsm: &FakeVdsm,
    status_file: &str,
    extra_env: &[(&str, &str)],
    args: serde_json::Value,
) -> support::Run {
    let work = tempfile::tempdir().unwrap();
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

/// A vdsm answering `Host.getHardwareInfo` with the recorded host's answer and preparing
/// the configuration volume of an otopi deploy.
fn recorded_vdsm() -> FakeVdsm {
    let answers = std::fs::read_to_string(fixtures().join("fhanswers-otopi.conf")).unwrap();
    vdsm_with_answers(&answers)
}

/// The configuration volume as heconflib writes it: a tar of the five members, one
/// 20480-byte record, at the start of a larger volume.
fn conf_volume(answers: &str) -> PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("version", "1.3.5.8\n"),
        ("fhanswers.conf", answers),
        ("hosted-engine.conf", "fqdn=engine.example.com\n"),
        ("broker.conf", "[email]\n"),
        ("vm.conf", "vmId=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    let mut bytes = builder.into_inner().unwrap();
    bytes.resize(20480, 0);
    bytes.resize(1 << 20, 0);
    let file = tempfile::Builder::new()
        .prefix("conf-volume")
        .tempfile()
        .unwrap()
        .into_temp_path()
        .keep()
        .unwrap();
    std::fs::write(&file, bytes).unwrap();
    // A volume is vdsm's (36:36, 0660), and the module reads it as vdsm when run as root.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o660)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&file, Some(36), Some(36)).unwrap();
    }
    file
}

/// A vdsm for the recorded host whose configuration volume holds `answers`; its management
/// network is 192.168.1.10/24.
fn vdsm_with_answers(answers: &str) -> FakeVdsm {
    let hardware: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("vdsm-hardware-info.json")).unwrap(),
    )
    .unwrap();
    let volume = conf_volume(answers);
    FakeVdsm::start(move |method, params| match method {
        "Host.getHardwareInfo" => Reply::Result(hardware.clone()),
        "Host.getCapabilities" => Reply::Result(json!({"networks": {"ovirtmgmt": {
            "iface": "ovirtmgmt", "bridged": true, "addr": "192.168.1.10",
            "netmask": "255.255.255.0", "ipv4addrs": ["192.168.1.10/24"], "gateway": "192.168.1.1"}}})),
        "Image.prepare"
            if params["imageID"] == json!("5c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1ec5")
                && params["volumeID"] == json!("4b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0db4") =>
        {
            Reply::Result(json!({"path": volume}))
        }
        other => Reply::Error(-32601, format!("unexpected {other} {params:?}")),
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
fn engine_network_from_the_otopi_answers_on_the_shared_storage() {
    let run = run_with_status("vm-status-here.json", &[], json!({"he_conf": he_conf()}));
    run.assert_ok();
    assert_eq!(
        run.result["ansible_facts"]["he_engine_network"],
        json!({
            "mode": "static",
            "static": {"ip": "192.168.1.20", "prefix": 24, "gateway": "192.168.1.1",
                       "dns": ["192.168.1.53", "192.168.1.54"], "search": ["example.com"]},
            "host_entry": {"fqdn": "host1.example.com", "ip": "192.168.1.10"},
            "domain": "example.com",
            "source": run.result["ansible_facts"]["he_engine_network"]["source"],
        })
    );
}

#[test]
fn engine_network_from_ansible_answers_takes_the_prefix_of_the_host_network() {
    let answers = "[environment:default]\nOVEHOSTED_NETWORK/gateway=str:192.168.1.1\n\
        OVEHOSTED_VM/cloudinitVMStaticCIDR=str:192.168.1.20\n\
        OVEHOSTED_VM/cloudinitVMETCHOSTS=bool:False\nOVEHOSTED_VM/cloudinitVMDNS=none:None\n";
    let vdsm = vdsm_with_answers(answers);
    let run = run_with_vdsm(&vdsm, json!({"he_conf": he_conf()}));
    run.assert_ok();
    let network = &run.result["ansible_facts"]["he_engine_network"];
    assert_eq!(
        network["static"],
        json!({"ip": "192.168.1.20", "prefix": 24, "gateway": "192.168.1.1", "dns": [], "search": []})
    );
    assert_eq!(network["host_entry"], json!(null));

    let dhcp =
        vdsm_with_answers("[environment:default]\nOVEHOSTED_VM/cloudinitVMStaticCIDR=none:None\n");
    let run = run_with_vdsm(&dhcp, json!({"he_conf": he_conf()}));
    run.assert_ok();
    assert_eq!(
        run.result["ansible_facts"]["he_engine_network"]["mode"],
        json!("dhcp")
    );
}

#[test]
fn a_configuration_volume_without_answers_is_named() {
    let broken = vdsm_with_answers("not an answer file");
    let run = run_with_vdsm(&broken, json!({"he_conf": he_conf()}));
    run.assert_failed_with(
        "cannot tell the engine VM network from the answers on the shared storage",
    );
    assert!(run.msg().contains("fhanswers.conf"), "{}", run.result);
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
    for (path, reason) in bad.unreadable_files() {
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
