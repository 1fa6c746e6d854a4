//! Shared fixture for the lab's own tests: a lab in a temporary directory made by the built
//! `he-lab` binary, its tools run through the `bin/` wrappers, stopped on drop.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The he-lab binary under test.
pub const HE_LAB: &str = env!("CARGO_BIN_EXE_he-lab");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A lab made by `he-lab init`.
pub struct Lab {
    /// Lab directory.
    pub dir: PathBuf,
    /// `status --json` right after init.
    pub status: Value,
}

/// Text of a process output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Lab {
    /// Initializes a lab with `seed` and extra init arguments.
    pub fn init(name: &str, seed: u64, extra: &[&str]) -> Lab {
        // Short, so the channel socket path under DIR mostly fits in a unix socket address
        // (longer labs get a /tmp/he-lab-channels-* directory, removed on drop).
        let dir = std::env::temp_dir().join(format!(
            "hl-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let seed = seed.to_string();
        let mut args = vec!["init", "--seed", seed.as_str()];
        args.extend_from_slice(extra);
        let output = Command::new(HE_LAB)
            .arg("--dir")
            .arg(&dir)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "init failed: {}",
            text(&output.stderr)
        );
        let mut lab = Lab {
            dir,
            status: Value::Null,
        };
        lab.status = lab.json(&["status", "--json"]);
        lab
    }

    /// Runs `he-lab --dir DIR ARGS`.
    pub fn he_lab(&self, args: &[&str]) -> Output {
        Command::new(HE_LAB)
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `he-lab ARGS` expecting success and JSON on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let output = self.he_lab(args);
        assert!(
            output.status.success(),
            "he-lab {args:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Runs a host tool wrapper from `bin/` (`hosted-engine`, `vdsm-client`).
    pub fn tool(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(self.dir.join("bin").join(tool))
            .args(args)
            .output()
            .unwrap()
    }

    /// A string field of the init status.
    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(
            self.status[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key}")),
        )
    }

    /// A `key=value` of hosted-engine.conf.
    pub fn he_conf(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.path("he_conf")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_string()
    }

    /// `he-lab up`, asserting success.
    pub fn up(&self) -> Duration {
        let started = Instant::now();
        let output = self.he_lab(&["up"]);
        assert!(
            output.status.success(),
            "up failed: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        started.elapsed()
    }

    /// Starts the host daemon alone (vdsm, no engine VM), as `up` does before the VM, and
    /// waits until its vdsm address is recorded.
    pub fn start_daemon(&self) -> String {
        let child = Command::new(HE_LAB)
            .arg("--dir")
            .arg(&self.dir)
            .arg("daemon")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // `down` (on drop) stops it through its control socket; the child is reaped here.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.json(&["status", "--json"]);
            if status["daemon_running"] == true {
                return status["vdsm_address"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `he-lab inspect --json`.
    pub fn inspect(&self) -> Value {
        self.json(&["inspect", "--json"])
    }

    /// `he-lab fault NAME on|off`.
    pub fn fault(&self, name: &str, on: bool) {
        let output = self.he_lab(&["fault", name, if on { "on" } else { "off" }]);
        assert!(output.status.success(), "fault: {}", text(&output.stderr));
    }

    /// Waits until `he-lab status` reports vdsm status `status`.
    pub fn wait_vm_status(&self, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let current = self.json(&["status", "--json"]);
            if current["vm_status"] == status {
                return current;
            }
            assert!(
                Instant::now() < deadline,
                "VM still {} (want {status})",
                current["vm_status"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The engine disk volume path.
    pub fn engine_volume(&self) -> PathBuf {
        PathBuf::from(self.inspect()["engine_disk"]["path"].as_str().unwrap())
    }

    /// A fresh scratch directory inside the lab (removed with it).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self
            .dir
            .join("stage")
            .join(format!("{name}-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The health page body, if the engine answers.
    pub fn health(&self) -> Option<String> {
        // The URL as `up` recorded it: the engine's ports are chosen when the lab comes up.
        let status = self.json(&["status", "--json"]);
        let output = Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .arg(status["health_url"].as_str().unwrap())
            .output()
            .unwrap();
        output.status.success().then(|| text(&output.stdout))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.he_lab(&["down"]);
        if std::env::var_os("HE_LAB_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
            if let Some(channels) = self.path("channel").parent() {
                if channels.starts_with("/tmp")
                    && channels.to_string_lossy().contains("he-lab-channels-")
                {
                    let _ = std::fs::remove_dir_all(channels);
                }
            }
        }
    }
}

/// The qcow2 disk member name and OVF member name of an OVA (GNU tar listing).
pub fn ova_members(ova: &Path) -> Vec<String> {
    let output = Command::new("tar").arg("-tzf").arg(ova).output().unwrap();
    assert!(output.status.success());
    text(&output.stdout).lines().map(str::to_string).collect()
}

/// A scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "he-lab-scratch-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a command and asserts success, returning stdout.
pub fn check(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Writes the appliance disk of the OVA into the engine volume and injects the backup at
/// `/root/engine_backup.tar.gz` (what he_image_copy + he_inject_backup do), with real tools.
pub fn install_appliance(lab: &Lab, backup: &Path) {
    let work = lab.scratch("appliance");
    check(
        Command::new("tar")
            .arg("-C")
            .arg(&work)
            .arg("-xzf")
            .arg(lab.path("appliance_ova")),
    );
    let disk = std::fs::read_dir(work.join("images"))
        .unwrap()
        .flat_map(|image| std::fs::read_dir(image.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_none())
        .unwrap();
    let volume = lab.engine_volume();
    // The appliance disk is larger than the engine disk: extend the volume first.
    let virtual_size = {
        let info = check(
            Command::new("qemu-img")
                .args(["info", "--output", "json"])
                .arg(&disk),
        );
        let info: Value = serde_json::from_str(&info).unwrap();
        info["virtual-size"].as_u64().unwrap()
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&volume)
        .unwrap()
        .set_len(virtual_size)
        .unwrap();
    check(
        Command::new("qemu-img")
            .args(["convert", "-n", "-O", "raw"])
            .arg(&disk)
            .arg(&volume),
    );
    check(
        Command::new("debugfs")
            .arg("-w")
            .arg("-R")
            .arg(format!(
                "write {} /root/engine_backup.tar.gz",
                backup.display()
            ))
            .arg(format!("{}?offset=1048576", volume.display())),
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The upgrade user-data as ovirt-hosted-engine-setup writes it (original-tool.md section 4).
pub fn upgrade_user_data(dwh: bool) -> String {
    let port = "/dev/virtio-ports/org.ovirt.hosted-engine-setup.0";
    let dwh = if dwh { " --provision-dwh-db" } else { "" };
    format!(
        "#cloud-config\n# vim: syntax=yaml\nwrite_files:\n - content: |\n     [environment:init]\n     DIALOG/autoAcceptDefault=bool:True\n     [environment:default]\n     OVESETUP_CONFIG/fqdn=str:engine.lab.local\n     OVESETUP_PKI/organization=str:lab.local\n   path: /root/heanswers.conf\n   owner: root:root\n   permissions: '0640'\nruncmd:\n - systemctl restart sshd &\n - grep -q ' host1.lab.local$' /etc/hosts || echo '127.0.0.1 host1.lab.local' >> /etc/hosts\n - engine-backup --mode=restore --file=/root/engine_backup.tar.gz --log=engine_restore.log --restore-permissions --provision-db{dwh} 1>{port} 2>&1\n - if [ $? -eq 0 ]; then echo \"HE_APPLIANCE_ENGINE_RESTORE_SUCCESS\" >{port}; else echo \"HE_APPLIANCE_ENGINE_RESTORE_FAIL\" >{port}; fi\n - /usr/bin/engine-setup --offline --config-append=/root/ovirt-engine-answers --config-append=/root/heanswers.conf 1>{port} 2>&1\n - if [ $? -eq 0 ]; then echo \"HE_APPLIANCE_ENGINE_SETUP_SUCCESS\" >{port}; else echo \"HE_APPLIANCE_ENGINE_SETUP_FAIL\" >{port}; fi\n - rm /root/heanswers.conf\n - systemctl mask cloud-init-local ||  chkconfig cloud-init-local off\n - systemctl mask cloud-init || ( chkconfig cloud-init off && chkconfig cloud-config off && chkconfig cloud-final off )\n"
    )
}

/// Makes a NoCloud ISO with genisoimage and a vm.conf copy whose cdrom path points at it.
pub fn make_seed(lab: &Lab, user_data: &str) -> PathBuf {
    make_seed_with_meta_data(lab, "", user_data)
}

/// [`make_seed`] with `extra_meta_data` appended to meta-data (e.g. `network-interfaces`).
pub fn make_seed_with_meta_data(lab: &Lab, extra_meta_data: &str, user_data: &str) -> PathBuf {
    let work = lab.scratch("seed");
    let vm_id = lab.he_conf("vmid");
    std::fs::write(
        work.join("meta-data"),
        format!("instance-id: {vm_id}\nlocal-hostname: engine.lab.local\n{extra_meta_data}"),
    )
    .unwrap();
    std::fs::write(work.join("user-data"), user_data).unwrap();
    let iso = work.join("seed.iso");
    check(
        Command::new("genisoimage")
            .args(["-quiet", "-output"])
            .arg(&iso)
            .args([
                "-volid",
                "cidata",
                "-joliet",
                "-rock",
                "-input-charset",
                "utf-8",
            ])
            .arg(work.join("meta-data"))
            .arg(work.join("user-data")),
    );
    let vm_conf = std::fs::read_to_string(lab.path("vm_conf")).unwrap();
    let patched = vm_conf.replace(
        "path:,device:cdrom",
        &format!("path:{},device:cdrom", iso.display()),
    );
    assert_ne!(patched, vm_conf, "vm.conf has a cdrom line with path:,");
    let copy = work.join("vm.conf");
    std::fs::write(&copy, patched).unwrap();
    copy
}

/// Connects to the setup channel (retrying while the VM has not bound it) and reads lines
/// until a `HE_APPLIANCE_ENGINE_SETUP_*` or `_FAIL` marker, EOF, or `timeout` without data.
pub fn read_channel(lab: &Lab, timeout: Duration) -> Vec<String> {
    use std::io::BufRead as _;
    let path = lab.path("channel");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("cannot connect to {}: {error}", path.display()),
        }
    };
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let done = line.starts_with("HE_APPLIANCE_ENGINE_SETUP_") || line.ends_with("_FAIL");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}
