//! The built collection: installed modules and playbooks run through ansible-playbook, the
//! composed example, docs, portability, ansible-test sanity, the execution environment (the binaries themselves: static_binaries.rs).

use he_e2e::{
    assert_success, backup_disks, collections_path, finish, path_with, repo_root, venv_tool, Lab,
};
use std::path::{Path, PathBuf};

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
        // The configuration volume it serves lies here, read by the module as vdsm.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// `ansible-playbook -i <lab inventory> ovirt_he.upgrade.NAME` from an empty directory: only
/// the installed collection is used (no playbooks/, no ansible.cfg of the checkout).
fn installed_playbook(
    lab: &Lab,
    name: &str,
    args: &[&str],
    stdout_callback: &str,
) -> he_e2e::Finished {
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = venv_tool("ansible-playbook");
    command
        .current_dir(elsewhere.path())
        .env("ANSIBLE_STDOUT_CALLBACK", stdout_callback)
        .arg("-i")
        .arg(lab.inventory())
        .arg(format!("ovirt_he.upgrade.{name}"))
        .args(args);
    finish(command)
}

/// Names of the shipped playbooks' set_fact tasks (`- name: X` right above `set_fact:`).
fn set_fact_task_names() -> Vec<String> {
    let mut names = Vec::new();
    let mut dirs = vec![repo_root().join("playbooks")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for pair in lines.windows(2) {
                if let (Some(name), "ansible.builtin.set_fact:") =
                    (pair[0].strip_prefix("- name: "), pair[1])
                {
                    if !name.contains("{{") {
                        names.push(name.trim_matches('"').to_string());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn the_installed_collection_alone_upgrades_and_rolls_back_with_quiet_output() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let upgrade = installed_playbook(
        &lab,
        "hosted_engine_upgrade",
        &["-e", "he_leave_running=true"],
        "ovirt_he.upgrade.steps",
    );
    assert_success(&upgrade);
    lab.assert_upgraded_to("4.0");
    // The operator's screen: steps, progress lines and the summary; no plumbing.
    assert!(
        upgrade.text.contains("Hosted engine upgrade finished"),
        "{}",
        upgrade.text
    );
    for hidden in ["included: ", "skipping: "] {
        assert!(
            !upgrade.text.contains(hidden),
            "{hidden:?} shown:\n{}",
            upgrade.text
        );
    }
    for name in set_fact_task_names() {
        assert!(
            !upgrade.text.contains(&format!("TASK [{name}]")),
            "set_fact task {name:?} shown:\n{}",
            upgrade.text
        );
    }

    let poweroff = lab.hosted_engine(&["--vm-poweroff"]);
    assert_eq!(poweroff.code, 0, "{}", poweroff.text);
    let rollback = installed_playbook(&lab, "hosted_engine_rollback", &[], "default");
    assert_success(&rollback);
    lab.start_engine_expecting("3.6");
}

#[test]
fn the_composed_site_example_upgrades_the_lab_end_to_end() {
    let lab = Lab::start("el7-4.3:el8-4.4");
    let before = lab.inspect();
    let appliance_desc = format!(
        "he_appliance_desc={}",
        before["appliance_desc"].as_str().unwrap()
    );
    let run = lab.playbook(
        "playbooks/examples/site_upgrade.yml",
        &["-e", &appliance_desc, "-e", "he_target_version=4.4"],
    );
    assert_success(&run);
    assert!(run.text.contains("Engine upgraded to 4.4"), "{}", run.text);
    let after = lab.assert_upgraded_to("4.4");
    let backups = backup_disks(&after);
    assert_eq!(backups[0]["status"], "ok", "{after}");
    let backup_image = backups[0]["id"].as_str().unwrap();
    let backup_volume = after["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["image_id"] == backup_image)
        .unwrap_or_else(|| panic!("no volume of the backup disk: {after}"));
    assert_ne!(
        backup_volume["sha256"], after["engine_disk"]["sha256"],
        "the engine disk holds the new engine, the backup disk the old one"
    );
}

/// A copy of the installed collection under ansible_collections/ovirt_he/upgrade, where
/// ansible-test expects it (it writes tests/output there).
fn collection_copy(root: &Path) -> PathBuf {
    let copy = root.join("ansible_collections/ovirt_he/upgrade");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(collections_path().join("ansible_collections/ovirt_he/upgrade"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success(), "copying the installed collection failed");
    copy
}

#[test]
fn ansible_test_sanity_passes_on_the_built_collection() {
    let root = tempfile::tempdir().unwrap();
    let collection = collection_copy(root.path());
    let mut python = venv_tool("python");
    python.args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
    let python_version = finish(python).text.trim().to_string();
    let mut command = venv_tool("ansible-test");
    command
        .current_dir(&collection)
        .args(["sanity", "--color", "no", "--python", &python_version]);
    let run = finish(command);
    assert_eq!(run.code, 0, "ansible-test sanity:\n{}", run.text);
    assert!(!run.text.contains("ERROR"), "{}", run.text);
}

fn galaxy_version() -> String {
    let galaxy = std::fs::read_to_string(repo_root().join("collection/galaxy.yml")).unwrap();
    galaxy
        .lines()
        .find_map(|line| line.strip_prefix("version: "))
        .expect("galaxy.yml has a version")
        .trim()
        .to_string()
}

#[test]
fn ansible_builder_creates_the_execution_environment_build_context() {
    let context = tempfile::tempdir().unwrap();
    let mut command = venv_tool("ansible-builder");
    command.args(["create", "--output-filename", "Containerfile", "-f"]);
    command
        .arg("collection/execution-environment.yml")
        .arg("--context")
        .arg(context.path());
    let run = finish(command);
    assert_eq!(run.code, 0, "ansible-builder create:\n{}", run.text);
    assert!(!run.text.contains("WARNING"), "{}", run.text);

    let containerfile = std::fs::read_to_string(context.path().join("Containerfile")).unwrap();
    assert!(
        containerfile.contains("ansible-galaxy collection install"),
        "{containerfile}"
    );
    assert!(containerfile.contains("ansible-core"), "{containerfile}");
    let tarball = format!("ovirt_he-upgrade-{}.tar.gz", galaxy_version());
    let requirements =
        std::fs::read_to_string(context.path().join("_build/requirements.yml")).unwrap();
    assert!(
        requirements.contains(&format!("/build/collections/{tarball}")),
        "the EE installs the tarball of galaxy.yml's version: {requirements}"
    );
    let in_context = context.path().join("_build/collections").join(&tarball);
    assert_eq!(
        std::fs::read(&in_context).unwrap(),
        std::fs::read(repo_root().join("build/dist").join(&tarball)).unwrap(),
        "the build context holds the built collection"
    );

    // What the image build does with it: install the tarball, then ask the collection (through
    // ansible-builder's own introspection) for its system and Python needs.
    let installed = tempfile::tempdir().unwrap();
    let mut install = venv_tool("ansible-galaxy");
    install
        .args(["collection", "install", "--force", "-p"])
        .arg(installed.path())
        .arg(&in_context);
    let run = finish(install);
    assert_eq!(run.code, 0, "{}", run.text);
    let mut introspect = venv_tool("python");
    introspect
        .arg(context.path().join("_build/scripts/introspect.py"))
        .arg("introspect")
        .arg(installed.path());
    let run = finish(introspect);
    assert_eq!(run.code, 0, "{}", run.text);
    assert!(
        run.text
            .contains("openssh-clients [platform:rpm]  # from collection ovirt_he.upgrade"),
        "{}",
        run.text
    );
}
