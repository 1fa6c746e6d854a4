//! The new engine VM's network on a static-IP site of the lab: he_maintenance_facts reads the
//! deploy's answers from the configuration volume, he_cloudinit writes them into the seed,
//! and he_boot_and_wait's health wait passes; a seed without them (the appliance's DHCP)
//! leaves the engine unreachable and the health wait fails. Needs HE_LAB_BIN.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::lab::{with_vdsm, TestLab};
use support::{run_module, Run};

struct Lab {
    lab: TestLab,
    status: Value,
}

impl Lab {
    fn key(&self, name: &str) -> &str {
        self.status[name].as_str().unwrap()
    }

    fn run(&self, module: &str, args: Value) -> Run {
        let bin_dir = PathBuf::from(self.key("bin_dir"));
        run_module(module, args, self.lab.work(), Some(&bin_dir))
    }

    /// The engine disk as the appliance leaves it, with the engine backup in /root (what
    /// he_image_copy and he_inject_backup do), the engine VM down.
    fn appliance_on_the_engine_disk(&self) {
        let stop = self.run(
            "he_boot_and_wait",
            json!({"state": "stopped", "he_conf": self.key("he_conf"), "poll_interval": 0.2}),
        );
        stop.assert_ok();
        let inspect = self.lab.json(&["inspect", "--json"]);
        let volume = Path::new(inspect["engine_disk"]["path"].as_str().unwrap()).to_path_buf();
        let work = self.lab.work().join("ova");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        check(
            Command::new("tar")
                .arg("-C")
                .arg(&work)
                .arg("-xzf")
                .arg(self.key("appliance_ova")),
        );
        let disk = std::fs::read_dir(work.join("images"))
            .unwrap()
            .flat_map(|image| std::fs::read_dir(image.unwrap().path()).unwrap())
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_none())
            .unwrap();
        let info: Value = serde_json::from_str(&check(
            Command::new("qemu-img")
                .args(["info", "--output", "json"])
                .arg(&disk),
        ))
        .unwrap();
        let size = info["virtual-size"].as_u64().unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&volume)
            .unwrap();
        if file.metadata().unwrap().len() < size {
            file.set_len(size).unwrap();
        }
        check(
            Command::new("qemu-img")
                .args(["convert", "-n", "-O", "raw"])
                .arg(&disk)
                .arg(&volume),
        );
        check(
            Command::new("debugfs")
                .args(["-w", "-R"])
                .arg(format!(
                    "write {} /root/engine_backup.tar.gz",
                    self.key("engine_backup")
                ))
                .arg(format!("{}?offset=1048576", volume.display())),
        );
    }

    /// he_cloudinit with `extra` options, then he_boot_and_wait up to the health page.
    fn boot(&self, name: &str, extra: Value, health_timeout_s: u64) -> Run {
        let iso = self.lab.work().join(format!("{name}.iso"));
        let mut args = json!({
            "dest": iso, "vm_id": self.status["vm_id"], "fqdn": self.status["fqdn"],
            "backup_path": "/root/engine_backup.tar.gz", "dwh": true,
        });
        for (key, value) in extra.as_object().unwrap() {
            args[key] = value.clone();
        }
        self.run("he_cloudinit", args).assert_ok();
        self.run(
            "he_boot_and_wait",
            json!({
                "state": "started",
                "he_conf": self.key("he_conf"),
                "cdrom": iso,
                "channel": self.key("channel"),
                "wait_for": ["HE_APPLIANCE_ENGINE_RESTORE_SUCCESS", "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"],
                "health_url": self.key("health_url"),
                "stall_timeout": 300,
                "start_timeout": 120,
                "health_timeout": health_timeout_s,
                "health_interval": 0.5,
                "poll_interval": 0.2,
            }),
        )
    }
}

fn check(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_static_site_needs_the_network_from_the_shared_answers() {
    let lab = TestLab::init(&["--profile", "el7-4.3:el8-4.4", "--static-ip"]);
    lab.up();
    let status = lab.json(&["status", "--json"]);
    let lab = Lab { lab, status };

    let facts = lab.run(
        "he_maintenance_facts",
        with_vdsm(&lab.status, json!({"he_conf": lab.key("he_conf")})),
    );
    facts.assert_ok();
    let network = facts.result["ansible_facts"]["he_engine_network"].clone();
    assert_eq!(
        network["static"],
        json!({"ip": "192.0.2.20", "prefix": 24, "gateway": "192.0.2.1",
               "dns": ["192.0.2.53"], "search": ["lab.local"]}),
        "{network}"
    );
    assert_eq!(
        network["host_entry"],
        json!({"fqdn": "host1.lab.local", "ip": "192.0.2.10"})
    );

    // The appliance keeps its DHCP configuration: no address on this site, no health page.
    lab.appliance_on_the_engine_disk();
    let dhcp = lab.boot("dhcp", json!({}), 20);
    dhcp.assert_failed_with("Engine is still not reachable");
    assert_eq!(
        dhcp.result["markers"],
        json!([
            "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
        ])
    );

    // The answers' network in the seed: the engine answers at its static address.
    lab.appliance_on_the_engine_disk();
    let with_network = lab.boot(
        "static",
        json!({"network": network["static"], "host_fqdn": network["host_entry"]["fqdn"],
               "host_ip": network["host_entry"]["ip"]}),
        300,
    );
    with_network.assert_ok();
    assert_eq!(
        with_network.result["health"],
        json!("DB Up!Welcome to Health Status!")
    );
}
