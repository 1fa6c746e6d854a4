//! The `he-lab` command line: `--dir` on either side of the command, `--help` everywhere,
//! unknown commands, options and values refused with a usage message.

use std::path::Path;
use std::process::{Command, Output};

fn he_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_he-lab"))
        .args(args)
        .output()
        .expect("he-lab runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn status_dir(args: &[&str]) -> String {
    let output = he_lab(args);
    assert!(output.status.success(), "{args:?}: {}", text(&output));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON status");
    status["dir"].as_str().expect("status has dir").to_string()
}

#[test]
fn dir_is_taken_before_or_after_the_command() {
    let root = tempfile::tempdir().unwrap();
    let lab = root.path().join("lab");
    let lab_arg = lab.to_str().unwrap();
    let init = he_lab(&["init", "--seed", "7", "--dir", lab_arg]);
    assert!(init.status.success(), "{}", text(&init));
    assert!(
        Path::new(&lab).join("lab.json").is_file(),
        "{}",
        text(&init)
    );
    let expected = lab.canonicalize().unwrap();
    for args in [
        ["--dir", lab_arg, "status", "--json"],
        ["status", "--dir", lab_arg, "--json"],
        ["status", "--json", "--dir", lab_arg],
    ] {
        let dir = status_dir(&args);
        assert_eq!(
            Path::new(&dir).canonicalize().unwrap(),
            expected,
            "{args:?}"
        );
    }
    let inline = format!("--dir={lab_arg}");
    let dir = status_dir(&["inspect", &inline, "--json"]);
    assert_eq!(Path::new(&dir).canonicalize().unwrap(), expected);
}

#[test]
fn help_is_printed_for_every_command() {
    for command in [
        &[][..],
        &["init"],
        &["up"],
        &["down"],
        &["status"],
        &["inspect"],
        &["reset"],
        &["fault"],
        &["shim"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let output = he_lab(&args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("Usage: he-lab"), "{args:?}: {help}");
        assert!(help.contains("--dir <DIR>"), "{args:?}: {help}");
    }
    let init_help = text(&he_lab(&["init", "--help"]));
    for option in [
        "--seed",
        "--profile",
        "--engine-disk-size",
        "--appliance-size",
        "--force",
    ] {
        assert!(init_help.contains(option), "{option} missing: {init_help}");
    }
}

/// Exit code 2 and `needle` in the error; unknown commands and options also get the usage.
fn assert_refused(args: &[&str], needle: &str) -> String {
    let output = he_lab(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    stderr
}

fn assert_refused_with_usage(args: &[&str], needle: &str) {
    let stderr = assert_refused(args, needle);
    assert!(stderr.contains("Usage: he-lab"), "{args:?}: {stderr}");
}

#[test]
fn unknown_commands_options_and_values_are_refused_with_usage() {
    let root = tempfile::tempdir().unwrap();
    let lab = root.path().join("never-made");
    let lab = lab.to_str().unwrap();
    assert_refused_with_usage(&["--dir", lab, "up", "--bogus"], "--bogus");
    assert_refused_with_usage(&["--dir", lab, "init", "--sed", "3"], "--sed");
    assert_refused_with_usage(&["--dir", lab, "frobnicate"], "frobnicate");
    assert_refused_with_usage(&["--dir", lab, "status", "extra"], "extra");
    assert_refused_with_usage(&["--dir", lab, "fault", "--list", "not_spm"], "--list");
    assert_refused_with_usage(&["--dir", lab, "fault"], "Usage: he-lab fault");
    // Values: the error lists what is accepted.
    assert_refused(
        &["--dir", lab, "init", "--profile", "el5-3.0:el6-3.6"],
        "el7-4.3:el8-4.4",
    );
    assert_refused(
        &["--dir", lab, "init", "--engine-disk-size", "12X"],
        "bad size unit",
    );
    assert_refused(&["--dir", lab, "fault", "no_such_fault", "on"], "not_spm");
    assert_refused(&["--dir", lab, "fault", "not_spm", "maybe"], "off");
    assert_refused(&["--dir", lab, "shim", "virsh"], "vdsm-client");
    assert!(!Path::new(lab).exists(), "a refused command made {lab}");
}

#[test]
fn shim_passes_the_tool_options_through() {
    let root = tempfile::tempdir().unwrap();
    let lab = root.path().join("lab");
    let lab = lab.to_str().unwrap();
    let init = he_lab(&["--dir", lab, "init", "--seed", "8"]);
    assert!(init.status.success(), "{}", text(&init));
    let output = he_lab(&[
        "--dir",
        lab,
        "shim",
        "hosted-engine",
        "--vm-status",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)
        .expect("hosted-engine --vm-status --json prints JSON");
    assert!(status.is_object(), "{status}");
    let fault = he_lab(&["fault", "--dir", lab, "not_spm", "on"]);
    assert!(fault.status.success(), "{}", text(&fault));
    let list = text(&he_lab(&["fault", "--list", "--dir", lab]));
    assert!(
        list.lines()
            .any(|line| line.split_whitespace().eq(["not_spm", "on"])),
        "{list}"
    );
}
