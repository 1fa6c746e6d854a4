//! The built collection: installed modules run through ansible-playbook, docs, portability.

use he_e2e::{collections_path, finish, path_with, repo_root, venv_tool};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/host")
}

/// The recorded host's vdsm (`tests/fixtures/host/vdsm.py`), killed on drop.
struct FixtureVdsm {
    child: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl FixtureVdsm {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address_file = dir.path().join("address");
        let child = venv_tool("python3")
            .arg(fixtures().join("vdsm.py"))
            .arg(&address_file)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !address_file.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the fixture vdsm did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let address = std::fs::read_to_string(&address_file)
            .unwrap()
            .trim()
            .to_string();
        FixtureVdsm {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for FixtureVdsm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn facts_playbook(extra: &[&str], vm_status: &str) -> he_e2e::Finished {
    let logs = tempfile::tempdir().unwrap();
    let vdsm = FixtureVdsm::start();
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
        .arg("-e")
        .arg(format!("vdsm_address={}", vdsm.address))
        .arg("-e")
        .arg(format!("vdsm_pki_dir={}", fixtures().join("pki").display()))
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
fn shipped_binaries_run_on_el8_glibc_and_are_small() {
    let modules = collections_path().join("ansible_collections/ovirt_he/upgrade/plugins/modules");
    for name in module_binaries() {
        let binary = modules.join(&name);
        let size = std::fs::metadata(&binary)
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()))
            .len();
        assert!(
            size <= 8 * 1024 * 1024,
            "{name} is {size} bytes, over 8 MiB"
        );
        let output = std::process::Command::new("objdump")
            .arg("-T")
            .arg(&binary)
            .output()
            .unwrap();
        assert!(output.status.success(), "objdump -T {name} failed");
        let symbols = String::from_utf8_lossy(&output.stdout);
        let newest = symbols
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .filter_map(|word| word.strip_prefix("GLIBC_"))
            .filter_map(|version| {
                let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
                Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
            })
            .max()
            .unwrap_or((0, 0));
        assert!(
            newest <= (2, 28),
            "{name} needs GLIBC_{}.{} (> 2.28)",
            newest.0,
            newest.1
        );
        let sections = std::process::Command::new("objdump")
            .arg("-h")
            .arg(&binary)
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&sections.stdout).contains(".debug_info"),
            "{name} is not stripped"
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
