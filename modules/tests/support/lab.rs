//! A lab (`he-lab`, the simulated hosted-engine host) for module tests: the binary named by
//! `HE_LAB_BIN`, a temporary directory, its own seed (ids and ports), taken down on drop.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// One lab under a temporary work directory (`<work>/lab`).
pub struct TestLab {
    work: tempfile::TempDir,
    binary: PathBuf,
    envs: Vec<(String, String)>,
}

impl TestLab {
    /// `he-lab init ARGS` with a seed of its own unless ARGS give one.
    pub fn init(args: &[&str]) -> Self {
        Self::init_with_env(args, &[])
    }

    /// As [`TestLab::init`], with environment variables for every he-lab call (the daemon
    /// started by `up` keeps them: delays of the fake engine, for example).
    pub fn init_with_env(args: &[&str], envs: &[(&str, &str)]) -> Self {
        static LABS_IN_THIS_PROCESS: AtomicU64 = AtomicU64::new(0);
        let lab = Self {
            work: host_like_tempdir(),
            binary: he_lab_binary(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut init = vec!["init"];
        init.extend_from_slice(args);
        let seed = (u64::from(std::process::id()) << 8
            | LABS_IN_THIS_PROCESS.fetch_add(1, Ordering::Relaxed))
        .to_string();
        if !args.contains(&"--seed") {
            init.extend_from_slice(&["--seed", &seed]);
        }
        lab.run(&init);
        lab
    }

    /// `he-lab up`: daemon and engine VM running.
    pub fn up(&self) {
        self.run(&["up"]);
    }

    /// Starts the host daemon alone (vdsm, no engine VM), as `up` does before the VM, and
    /// waits until it answers; `down` on drop stops it.
    pub fn start_daemon(&self) {
        let child = Command::new(&self.binary)
            .arg("--dir")
            .arg(self.dir())
            .arg("daemon")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("he-lab daemon starts");
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.json(&["status", "--json"])["daemon_running"] != true {
            assert!(
                std::time::Instant::now() < deadline,
                "the he-lab daemon did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Runs `he-lab --dir <lab> ARGS`; returns stdout, panics with the output on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let output = Command::new(&self.binary)
            .arg("--dir")
            .arg(self.dir())
            .args(args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("he-lab runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "he-lab {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Runs a he-lab command that prints JSON (`status --json`, `inspect --json`).
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.run(args)).expect("he-lab prints JSON")
    }

    /// The lab directory.
    pub fn dir(&self) -> PathBuf {
        self.work.path().join("lab")
    }

    /// The work directory around the lab (module logs, args files).
    pub fn work(&self) -> &Path {
        self.work.path()
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = Command::new(&self.binary)
            .arg("--dir")
            .arg(self.dir())
            .arg("down")
            .output();
    }
}

/// Module options pointing at the lab's vdsm, from `he-lab status --json` of a running lab.
pub fn vdsm_options(status: &Value) -> Value {
    assert!(
        status["vdsm_address"].is_string(),
        "the lab's daemon has not started: {status}"
    );
    serde_json::json!({"vdsm_address": status["vdsm_address"], "vdsm_pki_dir": status["vdsm_pki_dir"]})
}

/// Adds the lab's vdsm options to module `args`.
pub fn with_vdsm(status: &Value, mut args: Value) -> Value {
    for (key, value) in vdsm_options(status).as_object().expect("an object") {
        args[key] = value.clone();
    }
    args
}

/// A temporary directory that vdsm and qemu may enter, as every directory leading to a real
/// host's storage domain and VM files is (mode 0755).
fn host_like_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755))
        .expect("temporary directory mode");
    work
}

/// The he-lab binary from `HE_LAB_BIN` (`make test` sets it).
pub fn he_lab_binary() -> PathBuf {
    PathBuf::from(std::env::var_os("HE_LAB_BIN").expect(
        "HE_LAB_BIN must name the he-lab binary (cargo build -p he-lab; HE_LAB_BIN=$CARGO_TARGET_DIR/debug/he-lab)",
    ))
}
