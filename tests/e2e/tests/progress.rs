//! A long step is followed in a flat loop: hundreds of polls, one progress line each, and the
//! playbook ends with the step's own result, never a crash of ansible-playbook.

use he_e2e::{venv_tool, Finished};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

/// More polls than an include-per-poll chain survived (it died after 123).
const POLLS: usize = 501;

/// Runs tests/e2e/playbooks/long_step.yml; after `POLLS` progress lines, writes `release`
/// (the job then ends: "ok" succeeds, "stall" fails). Returns the run and its progress lines.
fn poll_a_long_step(release: &str) -> (Finished, usize) {
    let work = tempfile::tempdir().unwrap();
    let mut child = venv_tool("ansible-playbook")
        .arg("-i")
        .arg("localhost,")
        .arg("tests/e2e/playbooks/long_step.yml")
        .arg("-e")
        .arg(format!("work_dir={}", work.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ansible-playbook starts");
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut text = String::new();
    let mut progress_lines = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.expect("ansible-playbook output is text");
        if line.starts_with("  [localhost] ") && line.ends_with("at the release file") {
            progress_lines += 1;
            if progress_lines == POLLS {
                std::fs::write(work.path().join("release"), release).unwrap();
            }
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait().expect("ansible-playbook ends");
    text.push_str(&stderr_reader.join().unwrap());
    let run = Finished {
        code: status.code().unwrap_or(-1),
        text,
    };
    (run, progress_lines)
}

/// One task header for the whole wait, one line per poll, no recursion error.
fn assert_flat(run: &Finished, progress_lines: usize) {
    assert!(
        progress_lines >= POLLS,
        "{progress_lines} progress lines:\n{}",
        run.text
    );
    assert_eq!(
        run.text.matches("TASK [Wait for the release]").count(),
        1,
        "{}",
        run.text
    );
    assert!(!run.text.contains("RecursionError"), "{}", run.text);
    assert!(!run.text.contains("include"), "{}", run.text);
}

#[test]
fn a_step_polled_more_than_500_times_succeeds_with_its_own_result() {
    let (run, progress_lines) = poll_a_long_step("ok");
    assert_flat(&run, progress_lines);
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(run.text.contains("failed=0"), "{}", run.text);
    assert!(
        run.text.contains("\"msg\": \"released after "),
        "{}",
        run.text
    );
}

#[test]
fn a_step_polled_more_than_500_times_fails_with_its_own_message() {
    let (run, progress_lines) = poll_a_long_step("stall");
    assert_flat(&run, progress_lines);
    // 2: a task failed (ansible-playbook's own crash exits 250).
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text
            .contains("Engine setup is stalled on the appliance: no new line for 1800 s"),
        "{}",
        run.text
    );
    assert!(run.text.contains("failed=1"), "{}", run.text);
}
