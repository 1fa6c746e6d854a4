//! he_spm_facts, he_backup_disk and he_register_disk against the lab's engine, on both lab
//! profiles (3.6 engine over API v3, 4.3 engine over API v4), run as Ansible runs them.
//! Needs HE_LAB_BIN (the built he-lab binary).
mod fake_host;
mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::lab::TestLab;
use support::{run_module, Run};

const V3_PROFILE: &str = "el6-3.6:el7-4.0";
const V4_PROFILE: &str = "el7-4.3:el8-4.4";

/// One lab, initialized and up for one test; taken down when dropped.
struct Lab {
    lab: TestLab,
    status: Value,
    password: String,
    outputs: std::cell::RefCell<Vec<String>>,
}

impl Lab {
    fn start(profile: &str, seed: u64) -> Lab {
        let seed = seed.to_string();
        let lab = TestLab::init_with_env(
            &["--seed", &seed, "--profile", profile],
            &[
                ("HE_LAB_API_SLOW_SECONDS", "3"),
                ("HE_LAB_DC_DOWN_SECONDS", "6"),
                ("HE_LAB_DISK_CREATE_SECONDS", "1"),
            ],
        );
        lab.up();
        let status = lab.json(&["status", "--json"]);
        let password_file = status["admin_password_file"].as_str().unwrap();
        let password = std::fs::read_to_string(password_file)
            .unwrap()
            .trim()
            .to_string();
        Lab {
            lab,
            status,
            password,
            outputs: Default::default(),
        }
    }

    fn work(&self) -> &Path {
        self.lab.work()
    }

    fn fault(&self, name: &str, on: bool) {
        self.lab
            .run(&["fault", name, if on { "on" } else { "off" }]);
    }

    fn inspect(&self) -> Value {
        self.lab.json(&["inspect", "--json"])
    }

    /// Names of the disks in the engine database (fast: read from the lab's state file).
    fn engine_disk_names(&self) -> Vec<String> {
        let path = self.lab.dir().join("state/engine-db.json");
        let db: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut names: Vec<String> = db["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|disk| disk["alias"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// What a check-mode run must leave untouched, per `he-lab inspect`: engine disks,
    /// volumes (with content hashes) and unregistered disks.
    fn storage_and_engine(&self) -> Value {
        let inspect = self.inspect();
        json!([
            inspect["engine_disks"],
            inspect["volumes"],
            inspect["unregistered"]
        ])
    }

    fn run(&self, module: &str, extra: Value) -> Run {
        let mut args = json!({
            "engine_url": self.status["engine_url"],
            "password": self.password,
            "he_conf": self.status["he_conf"],
            "log_dir": self.work().join("module-logs"),
        });
        for (key, value) in extra.as_object().unwrap() {
            args[key.as_str()] = value.clone();
        }
        let bin_dir = PathBuf::from(self.status["bin_dir"].as_str().unwrap());
        let args = support::lab::with_vdsm(&self.status, args);
        let run = run_module(module, args, self.work(), Some(&bin_dir));
        self.outputs
            .borrow_mut()
            .extend([run.result.to_string(), run.stderr.clone()]);
        run
    }

    /// What `engine-backup --mode=restore` plus engine-setup on the new appliance leave: the
    /// database as it was before `disk_id` was created (the disk is only on the storage), the
    /// new engine's product and API versions, stamped with the restore time.
    fn restore_engine_db_without(&self, disk_id: &str, new_engine: (&str, u32, u32, &[u8])) {
        let path = self.lab.dir().join("state/engine-db.json");
        let mut db: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        db["disks"]
            .as_array_mut()
            .unwrap()
            .retain(|disk| disk["id"] != json!(disk_id));
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        db["restored_at_ms"] = json!(now_ms);
        let (full_version, major, minor, api_versions) = new_engine;
        db["product"]["full_version"] = json!(full_version);
        db["product"]["major"] = json!(major);
        db["product"]["minor"] = json!(minor);
        db["api_versions"] = json!(api_versions);
        std::fs::write(&path, serde_json::to_string_pretty(&db).unwrap()).unwrap();
    }

    /// No module output, stderr or log file holds the admin password.
    fn assert_password_never_shown(&self) {
        let outputs = self.outputs.borrow();
        let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        fake_host::assert_secret_absent(&self.work().join("module-logs"), &outputs, &self.password);
    }
}

/// The engine after the upgrade, per profile: (full version, major, minor, API versions).
fn new_engine(profile: &str) -> (&'static str, u32, u32, &'static [u8]) {
    if profile == V3_PROFILE {
        ("4.0.6.3-1.el7.centos", 4, 0, &[3, 4])
    } else {
        ("4.4.10.7-1.el8", 4, 4, &[4])
    }
}

fn whole_flow(profile: &str, seed: u64, api_version: u64) {
    let lab = Lab::start(profile, seed);
    let ca_dest = lab.work().join("engine-ca.pem");
    let facts = lab.run("he_spm_facts", json!({"ca_dest": ca_dest}));
    facts.assert_ok();
    let he_spm = &facts.result["ansible_facts"]["he_spm"];
    assert_eq!(
        he_spm["api_version"],
        json!(api_version),
        "{facts:?}",
        facts = facts.result
    );
    assert_eq!(he_spm["is_spm"], json!(true));
    assert!(he_spm["engine_version"]
        .as_str()
        .unwrap()
        .starts_with(lab.status["engine_version"].as_str().unwrap()));
    assert_eq!(he_spm["storage_domain"]["id"], lab.status["sd_id"]);
    assert!(he_spm["storage_domain"]["available"].as_u64().unwrap() > 0);
    assert!(!he_spm["datacenters"].as_array().unwrap().is_empty());
    assert!(!he_spm["aaa_domains"].as_array().unwrap().is_empty());
    let pin = he_spm["ca"]["sha1"].as_str().unwrap().to_string();
    let engine = json!({"ca_file": ca_dest, "ca_fingerprint": pin});
    let with = |extra: Value| {
        let mut args = engine.clone();
        for (key, value) in extra.as_object().unwrap() {
            args[key.as_str()] = value.clone();
        }
        args
    };
    let before = lab.engine_disk_names();

    // Check mode: nothing created.
    let name = "hosted-engine-backup-20240101120000";
    let untouched = lab.storage_and_engine();
    let planned = lab.run(
        "he_backup_disk",
        with(json!({"name": name, "_ansible_check_mode": true})),
    );
    planned.assert_ok();
    assert_eq!(planned.result["changed"], json!(true));
    assert_eq!(
        lab.storage_and_engine(),
        untouched,
        "check mode changed nothing"
    );

    // Create, then again: same disk, unchanged.
    let created = lab.run("he_backup_disk", with(json!({"name": name})));
    created.assert_ok();
    assert_eq!(created.result["changed"], json!(true));
    let disk = created.result["disk"].clone();
    assert_eq!(disk["status"], json!("ok"));
    assert_eq!(
        disk["size"],
        lab.inspect()["engine_disk"]["capacity"],
        "sized like the engine disk"
    );
    let again = lab.run("he_backup_disk", with(json!({"name": name})));
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false));
    assert_eq!(again.result["disk"]["id"], disk["id"]);
    assert_eq!(
        lab.engine_disk_names()
            .iter()
            .filter(|n| *n == name)
            .count(),
        1
    );

    // Query from vdsm alone (no engine options at all).
    let mut query_args = json!({"state": "query", "he_conf": lab.status["he_conf"], "log_dir": lab.work().join("module-logs")});
    query_args["_ansible_check_mode"] = json!(false);
    let query = run_module(
        "he_backup_disk",
        support::lab::with_vdsm(&lab.status, query_args),
        lab.work(),
        Some(Path::new(lab.status["bin_dir"].as_str().unwrap())),
    );
    query.assert_ok();
    assert_eq!(query.result["disks"][0]["id"], disk["id"]);
    assert_eq!(query.result["disks"][0]["name"], json!(name));

    // After a restore the engine forgets the disk: register it (check mode first).
    let disk_id = disk["id"].as_str().unwrap();
    lab.restore_engine_db_without(disk_id, new_engine(profile));
    let untouched = lab.storage_and_engine();
    assert!(
        untouched[2].to_string().contains(disk_id),
        "lab lists it as unregistered: {untouched}"
    );
    let plan = lab.run(
        "he_register_disk",
        with(json!({"disk_id": disk_id, "_ansible_check_mode": true})),
    );
    plan.assert_ok();
    assert_eq!(plan.result["changed"], json!(true));
    assert_eq!(
        lab.storage_and_engine(),
        untouched,
        "check mode changed nothing"
    );
    // The 4.0 engine still serves v3: register over v3 there, over v4 on 4.4.
    let register_api = if api_version == 3 { "3" } else { "auto" };
    let registered = lab.run(
        "he_register_disk",
        with(json!({"disk_id": disk_id, "wait_timeout": 60, "api_version": register_api})),
    );
    registered.assert_ok();
    assert_eq!(registered.result["changed"], json!(true));
    assert_eq!(registered.result["disk"]["status"], json!("ok"));
    assert!(lab.engine_disk_names().contains(&name.to_string()));
    let registered_again = lab.run("he_register_disk", with(json!({"name": name})));
    registered_again.assert_ok();
    assert_eq!(registered_again.result["changed"], json!(false));
    lab.run(
        "he_register_disk",
        with(json!({"disk_id": "00000000-1111-2222-3333-444444444444"})),
    )
    .assert_failed_with("is neither registered in the engine nor among the unregistered disks");

    // Delete: check mode keeps it, then it goes, then nothing to do.
    let untouched = lab.storage_and_engine();
    let keep = lab.run(
        "he_backup_disk",
        with(json!({"state": "absent", "name": name, "_ansible_check_mode": true})),
    );
    keep.assert_ok();
    assert_eq!(keep.result["changed"], json!(true));
    assert_eq!(
        lab.storage_and_engine(),
        untouched,
        "check mode changed nothing"
    );
    lab.run(
        "he_backup_disk",
        with(json!({"state": "absent", "name": name})),
    )
    .assert_ok();
    assert_eq!(lab.engine_disk_names(), before);
    let gone = lab.run(
        "he_backup_disk",
        with(json!({"state": "absent", "name": name})),
    );
    gone.assert_ok();
    assert_eq!(gone.result["changed"], json!(false));
    lab.run(
        "he_backup_disk",
        with(json!({"state": "absent", "name": "he_virtio_disk"})),
    )
    .assert_failed_with("refusing to delete it");

    lab.assert_password_never_shown();
}

#[test]
fn whole_flow_on_a_3_6_engine_over_v3() {
    whole_flow(V3_PROFILE, 101, 3);
}

#[test]
fn whole_flow_on_a_4_3_engine_over_v4() {
    whole_flow(V4_PROFILE, 102, 4);
}

fn faults(profile: &str, seed: u64) {
    let lab = Lab::start(profile, seed);
    let name = "hosted-engine-backup-20240202020202";

    lab.fault("not_spm", true);
    let facts = lab.run("he_spm_facts", json!({}));
    facts.assert_ok();
    let spm_host = facts.result["ansible_facts"]["he_spm"]["spm_host"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    assert_eq!(
        facts.result["ansible_facts"]["he_spm"]["is_spm"],
        json!(false)
    );
    lab.run("he_spm_facts", json!({"require_spm": true}))
        .assert_failed_with(&format!("is not the SPM one (the SPM is {spm_host})"));
    lab.fault("not_spm", false);

    lab.fault("sd_low_space", true);
    let before = lab.engine_disk_names();
    lab.run("he_backup_disk", json!({"name": name}))
        .assert_failed_with("extend the storage domain by at least");
    assert_eq!(lab.engine_disk_names(), before, "nothing created");
    lab.fault("sd_low_space", false);

    lab.fault("api_flaky", true);
    lab.run("he_spm_facts", json!({})).assert_ok();
    let flaky = lab.run("he_backup_disk", json!({"name": name}));
    flaky.assert_ok();
    assert_eq!(
        lab.engine_disk_names()
            .iter()
            .filter(|n| *n == name)
            .count(),
        1,
        "exactly one disk despite retries"
    );
    lab.fault("api_flaky", false);

    lab.fault("api_slow", true);
    lab.run("he_spm_facts", json!({"timeout": 1}))
        .assert_failed_with("no answer within 1 s (option 'timeout')");
    lab.fault("api_slow", false);

    lab.fault("disk_create_stuck", true);
    let stuck = lab.run(
        "he_backup_disk",
        json!({"name": "hosted-engine-backup-20240303030303", "wait_timeout": 4}),
    );
    stuck.assert_failed_with("did not happen within 4 s");
    assert_eq!(stuck.result["changed"], json!(true));
    assert!(stuck.result["disk"]["id"].is_string(), "{}", stuck.result);
    lab.fault("disk_create_stuck", false);

    lab.fault("dc_down_after_restore", true);
    let disk_id = flaky.result["disk"]["id"].as_str().unwrap().to_string();
    lab.restore_engine_db_without(&disk_id, new_engine(profile));
    let started = Instant::now();
    let registered = lab.run(
        "he_register_disk",
        json!({"disk_id": disk_id, "wait_timeout": 60}),
    );
    registered.assert_ok();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it waited for the DC: {:?}",
        started.elapsed()
    );
    assert_eq!(registered.result["disk"]["status"], json!("ok"));

    let mut wrong = lab.run("he_spm_facts", json!({"password": "wrong-password-123"}));
    wrong.assert_failed_with("engine login as 'admin@internal' failed");
    assert!(!wrong.result.to_string().contains("wrong-password-123"));
    wrong = lab.run("he_spm_facts", json!({"ca_fingerprint": "00".repeat(20)}));
    wrong.assert_failed_with("does not match ca_fingerprint");

    // `down` stops the host daemon, vdsm with it: the module asks vdsm first.
    lab.lab.run(&["down"]);
    lab.run("he_spm_facts", json!({}))
        .assert_failed_with("cannot talk to vdsm at")
        .assert_failed_with("Connection refused");
    lab.assert_password_never_shown();
}

#[test]
fn faults_on_a_3_6_engine_over_v3() {
    faults(V3_PROFILE, 103);
}

#[test]
fn faults_on_a_4_3_engine_over_v4() {
    faults(V4_PROFILE, 104);
}
