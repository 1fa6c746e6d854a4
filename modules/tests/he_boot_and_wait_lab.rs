//! he_boot_and_wait against the lab (a simulated hosted-engine host whose VM runs cloud-init
//! from a real ISO): a boot with a hand-written seed, and each boot fault failing fast with a
//! message naming what happened. Needs HE_LAB_BIN (the built `he-lab` binary).

mod support;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::lab::TestLab;
use support::{run_module, Run};

const PORT: &str = "/dev/virtio-ports/org.ovirt.hosted-engine-setup.0";

/// A failure "fast": well within this, every limit it did not wait for far beyond it.
const FAST: Duration = Duration::from_secs(90);

struct Lab {
    lab: TestLab,
    status: Value,
}

impl Lab {
    /// A fresh lab, up, with its engine VM running the old engine.
    fn up() -> Self {
        let lab = TestLab::init(&[]);
        lab.up();
        let status = lab.json(&["status", "--json"]);
        Lab { lab, status }
    }

    fn he_lab(&self, args: &[&str]) -> String {
        self.lab.run(args)
    }

    fn key(&self, name: &str) -> &str {
        self.status[name].as_str().unwrap()
    }

    fn run(&self, args: Value) -> Run {
        let bin_dir = PathBuf::from(self.key("bin_dir"));
        run_module("he_boot_and_wait", args, self.lab.work(), Some(&bin_dir))
    }

    fn stop_vm(&self) {
        let run = self
            .run(json!({"state": "stopped", "he_conf": self.key("he_conf"), "poll_interval": 0.2}));
        run.assert_ok();
    }

    /// Puts the lab's engine-backup archive into the (stopped) engine disk's /root, as
    /// he_inject_backup would.
    fn inject_backup(&self) {
        let inspect: Value = serde_json::from_str(&self.he_lab(&["inspect", "--json"])).unwrap();
        let disk = inspect["engine_disk"]["path"].as_str().unwrap();
        let write = format!(
            "write {} /root/engine_backup.tar.gz",
            self.key("engine_backup")
        );
        let output = Command::new("debugfs")
            .args(["-w", "-R", &write])
            .arg(format!("{disk}?offset=1048576"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A NoCloud ISO (genisoimage) whose runcmd restores the backup and runs engine-setup,
    /// reporting on the channel as the original tool's user-data did (original-tool §4).
    fn seed_iso(&self) -> PathBuf {
        let seed = self.lab.work().join("seed");
        std::fs::create_dir_all(&seed).unwrap();
        std::fs::write(
            seed.join("meta-data"),
            "instance-id: he-boot-and-wait-test\nlocal-hostname: engine.lab.local\n",
        )
        .unwrap();
        let user_data = format!(
            "#cloud-config
runcmd:
 - echo \"he_boot_and_wait lab seed\" >{PORT}
 - engine-backup --mode=restore --file=/root/engine_backup.tar.gz --log=engine_restore.log --restore-permissions --provision-db --provision-dwh-db 1>{PORT} 2>&1
 - if [ $? -eq 0 ]; then echo \"HE_APPLIANCE_ENGINE_RESTORE_SUCCESS\" >{PORT}; else echo \"HE_APPLIANCE_ENGINE_RESTORE_FAIL\" >{PORT}; fi
 - engine-setup --offline 1>{PORT} 2>&1
 - if [ $? -eq 0 ]; then echo \"HE_APPLIANCE_ENGINE_SETUP_SUCCESS\" >{PORT}; else echo \"HE_APPLIANCE_ENGINE_SETUP_FAIL\" >{PORT}; fi
"
        );
        std::fs::write(seed.join("user-data"), user_data).unwrap();
        let iso = self.lab.work().join("seed.iso");
        let status = Command::new("genisoimage")
            .args(["-quiet", "-volid", "cidata", "-joliet", "-rock", "-output"])
            .arg(&iso)
            .arg(seed.join("meta-data"))
            .arg(seed.join("user-data"))
            .status()
            .unwrap();
        assert!(status.success());
        iso
    }

    /// The engine VM stopped, the backup in its disk, and boot options with a seed ISO.
    fn ready_to_boot(&self) -> Value {
        self.stop_vm();
        self.inject_backup();
        json!({
            "state": "started",
            "he_conf": self.key("he_conf"),
            "cdrom": self.seed_iso(),
            "channel": self.key("channel"),
            "wait_for": ["HE_APPLIANCE_ENGINE_RESTORE_SUCCESS", "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"],
            "health_url": self.key("health_url"),
            // Far beyond what the lab takes, a busy machine included (fails_fast's limits).
            "stall_timeout": 300,
            "start_timeout": 120,
            "health_timeout": 300,
            "health_interval": 0.5,
            "poll_interval": 0.2,
        })
    }
}

/// Runs `args` and checks it failed within `limit` with a message containing `needle`.
fn fails_fast(lab: &Lab, args: Value, limit: Duration, needle: &str) -> Run {
    let started = Instant::now();
    let run = lab.run(args);
    let took = started.elapsed();
    run.assert_failed_with(needle);
    assert!(took < limit, "took {took:?} to fail: {}", run.msg());
    assert_eq!(run.result["changed"], json!(true), "{}", run.result);
    run
}

#[test]
fn boots_a_hand_made_seed_iso_and_follows_restore_and_setup_to_a_healthy_engine() {
    let lab = Lab::up();
    let args = lab.ready_to_boot();
    let run = lab.run(args);
    run.assert_ok();
    assert_eq!(
        run.result["markers"],
        json!([
            "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
        ])
    );
    let lines = run.result["lines"].as_array().unwrap();
    assert_eq!(lines[0], json!("he_boot_and_wait lab seed"));
    assert!(
        lines.contains(&json!("- Unpacking file '/root/engine_backup.tar.gz'")),
        "{lines:?}"
    );
    assert_eq!(
        run.result["health"],
        json!("DB Up!Welcome to Health Status!")
    );
    assert_eq!(run.result["vm_state"], json!("up"));
    // The lab's vm.conf (what the HA agent owns) still has no ISO.
    let vm_conf = std::fs::read_to_string(lab.key("vm_conf")).unwrap();
    assert!(vm_conf.contains("path:,device:cdrom"), "{vm_conf}");
}

#[test]
fn restore_fail_fails_fast_naming_engine_backup() {
    let lab = Lab::up();
    let args = lab.ready_to_boot();
    lab.he_lab(&["fault", "restore_fail", "on"]);
    let run = fails_fast(
        &lab,
        args,
        FAST,
        "engine-backup failed restoring the engine backup on the appliance",
    );
    assert!(
        run.msg()
            .contains("|- FATAL: Errors while restoring database engine"),
        "{}",
        run.msg()
    );
    assert_eq!(
        run.result["markers"],
        json!(["HE_APPLIANCE_ENGINE_RESTORE_FAIL"])
    );
}

#[test]
fn setup_fail_fails_fast_naming_engine_setup() {
    let lab = Lab::up();
    let args = lab.ready_to_boot();
    lab.he_lab(&["fault", "setup_fail", "on"]);
    let run = fails_fast(&lab, args, FAST, "Engine setup failed on the appliance");
    assert!(
        run.msg().contains("|- [ ERROR ] Execution of setup failed"),
        "{}",
        run.msg()
    );
}

#[test]
fn setup_stall_fails_after_stall_timeout() {
    let lab = Lab::up();
    let mut args = lab.ready_to_boot();
    args["stall_timeout"] = json!(2);
    lab.he_lab(&["fault", "setup_stall", "on"]);
    let run = fails_fast(
        &lab,
        args,
        FAST,
        "Engine setup is stalled on the appliance since 2 seconds ago",
    );
    assert_eq!(
        run.result["markers"],
        json!(["HE_APPLIANCE_ENGINE_RESTORE_SUCCESS"])
    );
}

#[test]
fn vm_crash_on_boot_fails_fast_saying_the_vm_went_down() {
    let lab = Lab::up();
    let args = lab.ready_to_boot();
    lab.he_lab(&["fault", "vm_crash_on_boot", "on"]);
    let run = fails_fast(
        &lab,
        args,
        FAST,
        "the engine VM went down while waiting for HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
    );
    assert_eq!(run.result["vm_state"], json!("down"));
}

#[test]
fn never_healthy_fails_after_health_timeout_naming_the_health_page() {
    let lab = Lab::up();
    lab.stop_vm();
    lab.he_lab(&["fault", "never_healthy", "on"]);
    let args = json!({
        "state": "started",
        "he_conf": lab.key("he_conf"),
        "health_url": lab.key("health_url"),
        "health_timeout": 3,
        "health_interval": 0.5,
        "poll_interval": 0.2,
    });
    let run = fails_fast(&lab, args, FAST, "Engine is still not reachable");
    assert!(run.msg().contains(lab.key("health_url")), "{}", run.msg());
}

#[test]
fn stop_then_start_without_iso_is_idempotent() {
    let lab = Lab::up();
    let stop = json!({"state": "stopped", "he_conf": lab.key("he_conf"), "poll_interval": 0.2});
    lab.run(stop.clone()).assert_ok();
    let again = lab.run(stop);
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false));
    let start = json!({
        "state": "started", "he_conf": lab.key("he_conf"), "vm_conf": lab.key("vm_conf"),
        "health_url": lab.key("health_url"), "health_timeout": 30, "health_interval": 0.5, "poll_interval": 0.2,
    });
    let run = lab.run(start.clone());
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    let again = lab.run(start);
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false));
    assert_eq!(
        again.result["health"],
        json!("DB Up!Welcome to Health Status!")
    );
}
