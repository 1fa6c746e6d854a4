//! Killing a playbook run with SIGKILL at a chosen moment, as a crash or an impatient
//! operator would, and waiting until nothing of it is left.

use crate::Lab;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

impl Lab {
    /// Starts `playbook` and kills it with SIGKILL (ansible-playbook and the he_image_copy job)
    /// in the middle of the copy whose progress file ends in `.STEP.progress.json`. The lab
    /// copies its small disks in a blink, so the copy is held with SIGSTOP and let run in short
    /// bursts until its progress file shows it part-way: a slow storage domain, seen from outside.
    pub fn kill_in_the_middle_of_the_copy(&self, playbook: &str, step: &str, args: &[&str]) {
        let mut command = self.playbook_command(playbook, args);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = command.spawn().expect("ansible-playbook starts");
        let deadline = Instant::now() + Duration::from_secs(300);
        let (pid, file) = loop {
            assert!(Instant::now() < deadline, "the {step} never started");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the run ended before the {step}"
            );
            if let Some((pid, file)) = self.running_step(step) {
                signal(pid, "STOP");
                break (pid, file);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut record = read_record(&file).unwrap();
        assert!(
            copy_percent(&record).is_none_or(|percent| percent < 100.0)
                && record["finished"] == false,
            "the {step} ended before it could be held: {record}"
        );
        while !copy_percent(&record).is_some_and(|percent| percent > 0.0 && percent < 100.0) {
            assert!(
                Instant::now() < deadline,
                "the {step} never got part-way: {record}"
            );
            // The copy reports at most once a second: stay stopped past that, then let it run.
            std::thread::sleep(Duration::from_millis(1100));
            signal(pid, "CONT");
            std::thread::sleep(Duration::from_millis(3));
            signal(pid, "STOP");
            std::thread::sleep(Duration::from_millis(20));
            record = read_record(&file).unwrap();
            assert!(record["finished"] == false, "the {step} ended: {record}");
        }
        signal(pid, "KILL");
        child.kill().unwrap();
        child.wait().unwrap();
        self.wait_for_orphans();
    }

    /// Waits until no process but the lab daemon works on the lab (async jobs of a killed run).
    pub fn wait_for_orphans(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let dir = self.dir.path().display().to_string();
        while Instant::now() < deadline {
            let output = Command::new("pgrep").args(["-af", &dir]).output().unwrap();
            let busy = String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| !line.contains("he-lab") && !line.contains("pgrep"));
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("processes of the killed run still work on {dir}");
    }

    /// The process and progress file of the unfinished step whose progress file ends in
    /// `.STEP.progress.json` (earlier runs left finished ones).
    pub(crate) fn running_step(&self, step: &str) -> Option<(u64, PathBuf)> {
        let suffix = format!(".{step}.progress.json");
        std::fs::read_dir(self.dir.path().join("log"))
            .ok()?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
            .find_map(|entry| {
                let record = read_record(&entry.path())?;
                match record["finished"] {
                    Value::Bool(false) => Some((record["pid"].as_u64()?, entry.path())),
                    _ => None,
                }
            })
    }
}

pub(crate) fn read_record(file: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()
}

/// The percent a copy progress line shows (`copy A -> B: 1 MiB of 2 MiB (50.0%), ...`).
fn copy_percent(record: &Value) -> Option<f64> {
    let text = record["text"].as_str()?;
    if !text.starts_with("copy ") {
        return None;
    }
    let end = text.find("%)")?;
    let start = text[..end].rfind('(')? + 1;
    text[start..end].parse().ok()
}

pub(crate) fn signal(pid: u64, name: &str) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status();
}
