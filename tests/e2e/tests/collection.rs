//! The built collection: installed modules run through ansible-playbook, docs, dependencies,
//! lint (the binaries themselves: static_binaries.rs).

use he_e2e::{finish, path_with, repo_root, venv_tool};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/host")
}

fn facts_playbook(extra: &[&str], vm_status: &str) -> he_e2e::Finished {
    let logs = tempfile::tempdir().unwrap();
    let mut command = venv_tool("ansible-playbook");
    command
        .arg("-i")
        .arg("localhost,")
        .arg("tests/e2e/playbooks/facts.yml")
        .arg("-e")
        .arg(format!(
            "he_conf={}",
            fixtures().join("hosted-engine.conf").display()
        ))
        .arg("-e")
        .arg(format!("log_dir={}", logs.path().display()))
        .args(extra)
        .env("PATH", path_with(&fixtures().join("bin")))
        .env("HE_FIXTURE_VM_STATUS", fixtures().join(vm_status));
    finish(command)
}

#[test]
fn facts_module_runs_by_fqcn_from_the_installed_collection() {
    let run = facts_playbook(&[], "vm-status-here.json");
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(
        run.text.contains("ok=2") && run.text.contains("failed=0"),
        "{}",
        run.text
    );
}

#[test]
fn facts_module_runs_in_check_mode() {
    let run = facts_playbook(&["--check"], "vm-status-here.json");
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(run.text.contains("failed=0"), "{}", run.text);
}

#[test]
fn the_playbook_sees_global_maintenance_off() {
    let run = facts_playbook(&[], "vm-status-no-maintenance.json");
    assert_ne!(
        run.code, 0,
        "the assertion must fail when maintenance is off: {}",
        run.text
    );
    let run = facts_playbook(
        &["-e", "expect_global_maintenance=false"],
        "vm-status-no-maintenance.json",
    );
    assert_eq!(run.code, 0, "{}", run.text);
}

fn documented_modules() -> Vec<String> {
    let dir = repo_root().join("collection/plugins/modules");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".yml").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn module_binaries() -> Vec<String> {
    let dir = repo_root().join("modules/src/bin");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".rs").map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn every_module_has_sidecar_docs_and_every_doc_a_module() {
    assert_eq!(documented_modules(), module_binaries());
}

#[test]
fn ansible_doc_renders_every_module() {
    for name in module_binaries() {
        let mut command = venv_tool("ansible-doc");
        command.arg(format!("ovirt_he.upgrade.{name}"));
        let run = finish(command);
        assert_eq!(run.code, 0, "ansible-doc {name}: {}", run.text);
        assert!(
            run.text.contains(&format!("ovirt_he.upgrade.{name}")),
            "{}",
            run.text
        );
        assert!(
            run.text.contains("log_dir"),
            "common options missing from {name}: {}",
            run.text
        );
        assert!(
            !run.text.to_lowercase().contains("[warning]"),
            "ansible-doc {name} warned: {}",
            run.text
        );
    }
}

#[test]
fn the_modules_crate_never_depends_on_the_lab() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "he-modules",
            "--edges",
            "normal,build,dev",
            "--prefix",
            "none",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("he-modules"), "{tree}");
    assert!(
        !tree.contains("he-lab"),
        "he-modules depends on the lab:\n{tree}"
    );
}

#[test]
fn playbooks_and_examples_pass_ansible_lint_production_profile() {
    let mut command = venv_tool("ansible-lint");
    command.args([
        "--profile",
        "production",
        "--offline",
        "playbooks",
        "molecule",
    ]);
    let run = finish(command);
    assert_eq!(run.code, 0, "ansible-lint: {}", run.text);
}
