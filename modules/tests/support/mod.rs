//! Runs module binaries as Ansible does: an args file in, one JSON object out.
#![allow(dead_code)]

pub mod bad_paths;
pub mod fake_vdsm;
pub mod lab;

use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

/// The result of one module run.
pub struct Run {
    /// The JSON object the module printed.
    pub result: Value,
    /// Its exit code.
    pub code: i32,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// The `msg` of the result ("" when absent).
    pub fn msg(&self) -> &str {
        self.result["msg"].as_str().unwrap_or("")
    }

    /// Panics with the whole result unless the run succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "module failed: {}", self.result);
        assert_eq!(self.result["failed"], json!(false), "{}", self.result);
        self
    }

    /// Panics unless the run failed with a message containing `needle`.
    pub fn assert_failed_with(&self, needle: &str) -> &Self {
        assert_eq!(self.code, 1, "module should fail: {}", self.result);
        assert_eq!(self.result["failed"], json!(true), "{}", self.result);
        assert!(
            self.msg().contains(needle),
            "msg should contain {needle:?}: {}",
            self.result
        );
        self
    }
}

/// Runs module binary `name` with `args` (user options plus any `_ansible_*` keys), with
/// `log_dir` set under `work` unless given, and PATH prefixed with `path_prefix` if any.
pub fn run_module(name: &str, args: Value, work: &Path, path_prefix: Option<&Path>) -> Run {
    let mut args = args;
    if args.get("log_dir").is_none() {
        args["log_dir"] = json!(work.join("logs"));
    }
    let args_file = work.join(format!("{name}.args.json"));
    std::fs::write(&args_file, args.to_string()).unwrap();
    let mut command = assert_cmd::Command::cargo_bin(name).unwrap();
    command.arg(&args_file);
    if let Some(prefix) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", prefix.display()));
    }
    parse(name, command.output().unwrap())
}

/// Parses a module's output, insisting on exactly one JSON object on stdout.
pub fn parse(name: &str, output: Output) -> Run {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{name} printed no single JSON object ({e}): {stdout}\nstderr: {stderr}")
    });
    assert!(
        result.is_object(),
        "{name} result is not an object: {result}"
    );
    Run {
        result,
        code: output.status.code().unwrap_or(-1),
        stderr,
    }
}

/// Writes an executable shell script `name` into `dir` (a fake host command for unit-level runs).
pub fn write_script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
