//! he_backup_disk against a throwaway HTTPS engine (present/absent, v4 and v3) and a fake
//! vdsm (query with the engine down).
mod fake_engine;
mod fake_host;
mod support;
use support::bad_paths::BadPaths;

use fake_engine::{FakeEngine, Profile, PASSWORD};
use serde_json::{json, Value};
use std::path::Path;
use support::{run_module, Run};

const NAME: &str = "hosted-engine-backup-20240101120000";

fn run(engine_url: Option<&str>, extra: Value, work: &Path) -> Run {
    let (he_conf, vdsm) = fake_host::install(work);
    let mut args = json!({ "he_conf": he_conf, "run_id": "test-run" });
    if let Some(url) = engine_url {
        args["engine_url"] = json!(url);
        args["password"] = json!(PASSWORD);
    }
    for (key, value) in extra.as_object().unwrap() {
        args[key.as_str()] = value.clone();
    }
    run_module("he_backup_disk", vdsm.with_options(args), work, None)
}

fn posts(engine: &FakeEngine) -> Vec<fake_engine::Seen> {
    engine
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path == "/ovirt-engine/api/disks")
        .collect()
}

#[test]
fn present_creates_waits_and_is_idempotent_by_name() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let first = run(Some(&engine.url()), json!({"name": NAME}), work.path());
    first.assert_ok();
    assert_eq!(first.result["changed"], json!(true));
    let disk = &first.result["disk"];
    assert_eq!(disk["name"], json!(NAME));
    assert_eq!(disk["status"], json!("ok"));
    assert_eq!(
        disk["size"],
        json!(10737418240u64),
        "sized from the engine disk (vdsm)"
    );
    assert_eq!(disk["sd_id"], json!(fake_host::SD_ID));
    assert_eq!(disk["id"], disk["image_id"]);
    let body = &posts(&engine)[0].body;
    for part in [
        "<provisioned_size>10737418240</provisioned_size>",
        "<format>raw</format>",
        "<sparse>false</sparse>",
        &format!("<description>{NAME}</description>"),
    ] {
        assert!(body.contains(part), "{part} missing from {body}");
    }
    assert!(
        !body.contains("<interface>"),
        "v4 disks have no interface: {body}"
    );

    let second = run(Some(&engine.url()), json!({"name": NAME}), work.path());
    second.assert_ok();
    assert_eq!(second.result["changed"], json!(false));
    assert_eq!(second.result["disk"]["id"], disk["id"]);
    assert_eq!(posts(&engine).len(), 1, "no second disk");
    let outputs = [
        first.result.to_string(),
        second.result.to_string(),
        first.stderr.clone(),
    ];
    fake_host::assert_secret_absent(
        work.path(),
        &outputs.each_ref().map(String::as_str),
        PASSWORD,
    );
}

#[test]
fn present_on_a_v3_engine_with_an_explicit_size() {
    let engine = FakeEngine::start(Profile {
        v3: true,
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    let run = run(
        Some(&engine.url()),
        json!({"name": NAME, "size": "2GiB"}),
        work.path(),
    );
    run.assert_ok();
    assert_eq!(run.result["disk"]["size"], json!(2u64 << 30));
    let body = &posts(&engine)[0].body;
    assert!(
        body.contains("<interface>virtio</interface>") && body.contains("<size>2147483648</size>"),
        "{body}"
    );
}

#[test]
fn low_space_fails_before_creating_and_says_how_much_to_add() {
    let engine = FakeEngine::start(Profile {
        available_bytes: 4 << 30,
        ..Profile::default()
    });
    let work = tempfile::tempdir().unwrap();
    let run = run(Some(&engine.url()), json!({"name": NAME}), work.path());
    run.assert_failed_with("extend the storage domain by at least 6.0 GiB (6442450944 bytes)");
    assert!(posts(&engine).is_empty());
}

#[test]
fn check_mode_creates_nothing() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let run = run(
        Some(&engine.url()),
        json!({"name": NAME, "_ansible_check_mode": true, "_ansible_diff": true}),
        work.path(),
    );
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(run.result["disk"]["name"], json!(NAME));
    assert_eq!(run.result["diff"]["before"], Value::Null);
    assert!(posts(&engine).is_empty());
}

#[test]
fn query_lists_backups_from_vdsm_newest_first_without_an_engine() {
    let work = tempfile::tempdir().unwrap();
    let run = run(None, json!({"state": "query"}), work.path());
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(false));
    let disks = run.result["disks"].as_array().unwrap();
    let names: Vec<&str> = disks.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "hosted-engine-backup-20231114221320",
            "hosted-engine-backup-20200913122640"
        ]
    );
    assert_eq!(disks[0]["image_id"], json!(fake_host::NEW_BACKUP_IMAGE));
    assert_eq!(disks[0]["created"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(disks[0]["size"], json!(10737418240u64));
    let filtered = self::run(
        None,
        json!({"state": "query", "name": "hosted-engine-backup-20200913122640"}),
        work.path(),
    );
    assert_eq!(filtered.result["disks"].as_array().unwrap().len(), 1);
}

#[test]
fn option_errors() {
    let work = tempfile::tempdir().unwrap();
    run(
        None,
        json!({"state": "present", "disk_id": "x"}),
        work.path(),
    )
    .assert_failed_with("only used with state=absent");
    run(None, json!({"state": "absent"}), work.path())
        .assert_failed_with("needs 'name' or 'disk_id'");
    run(None, json!({"state": "present", "name": NAME}), work.path())
        .assert_failed_with("missing required option 'engine_url'");
    run(None, json!({"size": "12 parsecs"}), work.path()).assert_failed_with("option 'size'");
    run(None, json!({"state": "gone"}), work.path())
        .assert_failed_with("option 'state': invalid choice");
}

/// he_conf and ca_file given as a missing path, a looping link or a directory fail naming
/// the input and the path; no disk is created.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let engine = FakeEngine::start(Profile::default());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let bad = BadPaths::in_dir(dir);
    for (option, message) in [
        ("he_conf", "cannot read hosted-engine configuration {}: "),
        ("ca_file", "option 'ca_file': cannot read {}: "),
    ] {
        for (path, reason) in bad.unreadable_files() {
            let extra = json!({"name": NAME, option: path});
            let run = run(Some(&engine.url()), extra, dir);
            run.assert_failed_with(&message.replace("{}", &path.display().to_string()));
            run.assert_failed_with(reason);
        }
    }
    assert!(posts(&engine).is_empty(), "a disk was created");
}
