//! The operator's run (issue 15): the target is named (`he_target`), the downtime and the
//! rollback are confirmed (unattended runs with a variable), the inputs are checked first, no
//! leftovers stay after success, and the README's real-host section works as written.

use he_e2e::{
    ansible_216_tool, assert_failure, assert_success, backup_disks, finish, repo_root,
    sshd_behind_proxy_command, venv_tool, Lab,
};
use std::path::{Path, PathBuf};
use std::process::Command;

const UPGRADE: &str = "playbooks/hosted_engine_upgrade.yml";
const ROLLBACK: &str = "playbooks/hosted_engine_rollback.yml";

/// The lab's inventory without the variables `drop` (one `name: value` line each), written next
/// to it: the lab's own inventory names the target and confirms, as an unattended site would.
fn inventory_without(lab: &Lab, name: &str, drop: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(lab.inventory()).expect("lab inventory");
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let key = line.trim_start().split(':').next().unwrap_or("");
            !drop.contains(&key)
        })
        .collect();
    let path = lab.dir.path().join(name);
    std::fs::write(&path, kept.join("\n") + "\n").expect("inventory written");
    path
}

/// `ansible-playbook -i INVENTORY PLAYBOOK ARGS` with Ansible's default screen output (every
/// play and task named), stdin not a terminal.
fn run(inventory: &Path, playbook: &str, args: &[&str]) -> he_e2e::Finished {
    run_with(venv_tool("ansible-playbook"), inventory, playbook, args)
}

/// [`run`] with another `ansible-playbook` (of another ansible-core).
fn run_with(
    mut command: Command,
    inventory: &Path,
    playbook: &str,
    args: &[&str],
) -> he_e2e::Finished {
    command
        .env("ANSIBLE_STDOUT_CALLBACK", "ansible.builtin.default")
        .arg("-i")
        .arg(inventory)
        .arg(playbook)
        .args(args)
        .stdin(std::process::Stdio::null());
    finish(command)
}

/// The play that works on the host never started: the run stopped in the target's plays.
fn assert_no_task_on_the_host(run: &he_e2e::Finished, main_play: &str) {
    assert!(
        !run.text.contains(&format!("PLAY [{main_play}]")),
        "the main play started:\n{}",
        run.text
    );
}

#[test]
fn without_he_target_both_playbooks_refuse_before_any_task() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let before = lab.inspect();
    let inventory = inventory_without(&lab, "no-target.yml", &["he_target"]);
    for (playbook, main_play) in [
        (UPGRADE, "Upgrade the hosted engine appliance"),
        (ROLLBACK, "Roll the hosted engine disk back to a backup"),
    ] {
        let refused = run(&inventory, playbook, &[]);
        assert_failure(&refused, "he_target is not set");
        assert_no_task_on_the_host(&refused, main_play);
        let unknown = run(&inventory, playbook, &["-e", "he_target=no_such_host"]);
        assert_failure(
            &unknown,
            "he_target 'no_such_host' names no host of the inventory",
        );
        assert_no_task_on_the_host(&unknown, main_play);
    }
    let after = lab.inspect();
    assert_eq!(
        after["engine_disk"]["sha256"],
        before["engine_disk"]["sha256"]
    );
    assert_eq!(after["vm_state"], "up");
}

#[test]
fn two_hosts_of_one_hosted_engine_cluster_are_refused_before_any_task() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let before = lab.inspect();
    // A second inventory host of the same cluster: its hosted-engine.conf names the same
    // storage domain (here it is the same host under another name).
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let host_vars: String = text
        .split_once("    hosted_engine_host:\n")
        .expect("lab host")
        .1
        .to_string();
    let two_hosts = text.replace("he_target: hosted_engine_host", "he_target: site")
        + "    second_host:\n"
        + &host_vars
        + "  children:\n    site:\n      hosts:\n        hosted_engine_host:\n        second_host:\n";
    let inventory = lab.dir.path().join("two-hosts.yml");
    std::fs::write(&inventory, two_hosts).unwrap();
    for (playbook, main_play) in [
        (UPGRADE, "Upgrade the hosted engine appliance"),
        (ROLLBACK, "Roll the hosted engine disk back to a backup"),
    ] {
        let refused = run(&inventory, playbook, &[]);
        assert_failure(
            &refused,
            "names more than one host of the same hosted-engine cluster",
        );
        assert!(
            refused
                .text
                .contains(before["sd_id"].as_str().unwrap_or("")),
            "the message names the storage domain:\n{}",
            refused.text
        );
        assert_no_task_on_the_host(&refused, main_play);
    }
    // One host of the cluster is accepted (check mode: the plan only).
    let one = run(
        &inventory,
        UPGRADE,
        &["-e", "he_target=second_host", "--check"],
    );
    assert_success(&one);
    assert_eq!(lab.inspect()["engine_disk"], before["engine_disk"]);
}

#[test]
fn a_missing_or_unreadable_engine_backup_fails_in_the_first_tasks_naming_it() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let inventory = inventory_without(&lab, "no-backup.yml", &["he_engine_backup"]);
    let stage = lab.dir.path().join("stage");
    let staged = |stage: &Path| std::fs::read_dir(stage).map_or(0, |dir| dir.count());

    let missing = run(&inventory, UPGRADE, &[]);
    assert_failure(&missing, "he_engine_backup is not set");
    let absent = run(
        &inventory,
        UPGRADE,
        &["-e", "he_engine_backup=/nonexistent/engine_backup.tar.gz"],
    );
    assert_failure(
        &absent,
        "he_engine_backup /nonexistent/engine_backup.tar.gz does not exist",
    );
    let directory = run(
        &inventory,
        UPGRADE,
        &[
            "-e",
            &format!("he_engine_backup={}", lab.dir.path().display()),
        ],
    );
    assert_failure(&directory, "is not a regular file");
    let no_root_access =
        inventory_without(&lab, "no-root-access.yml", &["he_appliance_root_password"]);
    let no_root = run(&no_root_access, UPGRADE, &[]);
    assert_failure(
        &no_root,
        "neither he_appliance_root_password nor he_appliance_root_ssh_key is set",
    );
    for failed in [&missing, &absent, &directory, &no_root] {
        assert!(
            !failed
                .text
                .contains("TASK [Read the hosted-engine state of this host]")
                && !failed.text.contains("stage the appliance"),
            "the inputs are checked first:\n{}",
            failed.text
        );
    }
    assert_eq!(staged(&stage), 0, "nothing was staged");
}

/// The lab's state and stage leftovers of the attempt: the staged raw image(s) and the ISO.
fn leftovers(lab: &Lab) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(lab.dir.path().join("stage"))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    let iso = lab
        .dir
        .path()
        .join("var/lib/ovirt-hosted-engine-upgrade-cloud-init/he-upgrade-cloud-init.iso");
    if iso.exists() {
        found.push(iso);
    }
    found
}

#[test]
fn unattended_runs_stop_before_the_downtime_and_the_rollback_unless_confirmed() {
    let lab = Lab::start("el6-3.6:el7-4.0");
    let unconfirmed = inventory_without(
        &lab,
        "unconfirmed.yml",
        &["he_confirm_downtime", "he_confirm_rollback"],
    );
    let before = lab.engine_disk_sha256();

    // No terminal, no he_confirm_downtime: prepared, then stopped before the engine VM is.
    let refused = run(&unconfirmed, UPGRADE, &[]);
    assert_failure(&refused, "-e he_confirm_downtime=true");
    assert!(
        refused
            .text
            .contains("will be stopped and its disk replaced by the new appliance"),
        "{}",
        refused.text
    );
    let after_refusal = lab.inspect();
    assert_eq!(after_refusal["vm_state"], "up", "the engine VM still runs");
    assert_eq!(backup_disks(&after_refusal).len(), 1, "prepared");
    assert!(
        !leftovers(&lab).is_empty(),
        "the staged image is kept for the run that goes on"
    );
    // ansible-core 2.16's pause does not wait without a terminal either: the same stop.
    let refused_216 = run_with(
        ansible_216_tool("ansible-playbook"),
        &unconfirmed,
        UPGRADE,
        &[],
    );
    assert_failure(&refused_216, "-e he_confirm_downtime=true");
    assert_eq!(lab.inspect()["vm_state"], "up");
    let declined = run(&unconfirmed, UPGRADE, &["-e", "he_confirm_downtime=false"]);
    assert_failure(&declined, "Not confirmed: he_confirm_downtime is false");
    assert_eq!(lab.inspect()["vm_state"], "up");

    // Confirmed: the same attempt goes on and finishes; nothing it staged stays behind.
    let upgraded = run(&unconfirmed, UPGRADE, &["-e", "he_confirm_downtime=true"]);
    assert_success(&upgraded);
    let upgraded_disk = lab.engine_disk_sha256();
    assert_ne!(upgraded_disk, before);
    assert_eq!(
        leftovers(&lab),
        Vec::<PathBuf>::new(),
        "the staged image and the cloud-init ISO (root password hash) are removed"
    );
    let again = run(&unconfirmed, UPGRADE, &[]);
    assert_success(&again);

    // The rollback: refused without its confirmation, the engine disk untouched.
    // (the upgrade stopped the new engine VM: he_leave_running is not set)
    let refused = run(&unconfirmed, ROLLBACK, &[]);
    assert_failure(&refused, "-e he_confirm_rollback=true");
    assert!(
        refused
            .text
            .contains("after the backup was taken will be definitively lost"),
        "{}",
        refused.text
    );
    assert_eq!(lab.engine_disk_sha256(), upgraded_disk);
    let rolled_back = run(&unconfirmed, ROLLBACK, &["-e", "he_confirm_rollback=true"]);
    assert_success(&rolled_back);
    assert!(
        rolled_back
            .text
            .contains("Please exit global maintenance mode to restart the engine VM"),
        "{}",
        rolled_back.text
    );
    assert!(
        rolled_back.text.contains("known_hosts"),
        "{}",
        rolled_back.text
    );
    lab.start_engine_expecting("3.6");
}

/// The collection tarball `make collection` built (build/dist/ovirt_he-upgrade-*.tar.gz).
fn built_tarball() -> PathBuf {
    let dist = repo_root().join("build/dist");
    std::fs::read_dir(&dist)
        .unwrap_or_else(|e| panic!("{}: {e}: run `make collection` first", dist.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("ovirt_he-upgrade-") && name.ends_with(".tar.gz")
        })
        .expect("the built collection tarball: run `make collection` first")
}

/// The README's real-host section, step by step, as a first-time operator: install the built
/// tarball with ansible-galaxy, write a separate inventory (he_target, become), run the
/// installed playbook by name from a directory of one's own (no checkout ansible.cfg), on a
/// site set up like a real one: a static engine address (the new engine is reachable only
/// with the network from the shared answers).
#[test]
fn a_first_time_operator_follows_the_readme_real_host_section() {
    let lab = Lab::start_with_site("el7-4.3:el8-4.4", &["--static-ip"], &[]);
    let operator = tempfile::tempdir().unwrap();
    let collections = operator.path().join("collections");
    let mut install = venv_tool("ansible-galaxy");
    install
        .env("ANSIBLE_COLLECTIONS_PATH", &collections)
        .args(["collection", "install", "-p"])
        .arg(&collections)
        .arg(built_tarball())
        .current_dir(operator.path());
    let installed = finish(install);
    assert_eq!(installed.code, 0, "{}", installed.text);

    // The README's inventory example, with this lab's site values (paths, engine, vdsm).
    let ssh_config = sshd_behind_proxy_command(operator.path());
    let lab_inventory = std::fs::read_to_string(lab.inventory()).unwrap();
    let site_vars: String = lab_inventory
        .split_once("    hosted_engine_host:\n")
        .expect("lab host")
        .1
        .lines()
        .filter(|line| {
            let key = line.trim_start().split(':').next().unwrap_or("");
            ![
                "ansible_connection",
                "ansible_python_interpreter",
                "he_confirm_downtime",
                "he_confirm_rollback",
            ]
            .contains(&key)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let inventory = operator.path().join("site.yml");
    std::fs::write(
        &inventory,
        format!(
            "all:\n  vars:\n    he_target: engine_host\n  hosts:\n    engine_host:\n\
             \x20     ansible_host: 127.0.0.1\n      ansible_user: root\n\
             \x20     ansible_become: true\n\
             \x20     # this machine has no sudo: su as root needs no password\n\
             \x20     ansible_become_method: su\n\
             \x20     ansible_python_interpreter: /usr/bin/python3\n\
             \x20     ansible_ssh_common_args: \"-F {}\"\n{site_vars}",
            ssh_config.display()
        ),
    )
    .unwrap();

    let mut upgrade = venv_tool("ansible-playbook");
    upgrade
        .env("ANSIBLE_COLLECTIONS_PATH", &collections)
        .env_remove("ANSIBLE_CONFIG")
        .current_dir(operator.path())
        .arg("-i")
        .arg(&inventory)
        .arg("ovirt_he.upgrade.hosted_engine_upgrade")
        .args(["-e", "he_confirm_downtime=true"])
        .stdin(std::process::Stdio::null());
    let upgraded = finish(upgrade);
    assert_success(&upgraded);
    let log = std::fs::read_to_string(operator.path().join("sshd.log")).unwrap_or_default();
    assert!(
        log.contains("Accepted publickey for root"),
        "the run went through sshd:\n{log}"
    );
    lab.assert_upgraded_to("4.4");
    assert!(
        upgraded
            .text
            .contains("Please exit global maintenance mode to restart the engine VM"),
        "{}",
        upgraded.text
    );
}

/// The `he_*` names in `text` (variables, module and fact names alike).
fn he_names(text: &str) -> std::collections::BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("he_") {
        let before = rest[..at].chars().next_back();
        let name: String = rest[at..].chars().take_while(|&c| word(c)).collect();
        if !before.is_some_and(word) && name.len() > 3 {
            names.insert(name.clone());
        }
        rest = &rest[at + name.len().max(3)..];
    }
    names
}

/// The facts the modules set, as their sidecar docs list them under RETURN `ansible_facts`
/// `contains` (names at the third indent level).
fn facts_the_modules_return(root: &Path) -> std::collections::BTreeSet<String> {
    let mut facts = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join("collection/plugins/modules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "yml") {
            continue;
        }
        let doc = std::fs::read_to_string(&path).unwrap();
        let Some((_, returned)) = doc.split_once("\n  ansible_facts:\n") else {
            continue;
        };
        let names = returned
            .lines()
            .take_while(|line| line.is_empty() || line.starts_with("    "))
            .filter_map(|line| line.strip_prefix("      "))
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| line.strip_suffix(':'));
        facts.extend(names.map(str::to_string));
    }
    assert!(facts.contains("he_maintenance"), "{facts:?}");
    facts
}

#[test]
fn every_playbook_variable_is_documented_in_the_table_and_the_headers() {
    let root = repo_root();
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut files = vec![
        root.join("playbooks/hosted_engine_upgrade.yml"),
        root.join("playbooks/hosted_engine_rollback.yml"),
        root.join("playbooks/he_target.yml"),
        root.join("playbooks/vars/resolved.yml"),
    ];
    for entry in std::fs::read_dir(root.join("playbooks/tasks")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let used: std::collections::BTreeSet<String> = files
        .into_iter()
        .flat_map(|path| he_names(&read(path)))
        .collect();
    // Not variables: the modules, the facts they return, the play's own kind, the target group.
    let modules: std::collections::BTreeSet<String> =
        std::fs::read_dir(root.join("collection/plugins/modules"))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                name.strip_suffix(".yml").map(str::to_string)
            })
            .collect();
    let facts = facts_the_modules_return(&root);
    let not_variables = ["he_playbook_kind", "he_upgrade_target"];
    let variables: Vec<&String> = used
        .iter()
        .filter(|name| {
            !modules.contains(*name)
                && !facts.contains(*name)
                && !not_variables.contains(&name.as_str())
        })
        .collect();
    assert!(variables.len() > 40, "{variables:?}");

    let table = read(root.join("docs/variables.md"));
    assert!(
        table.contains("| variable | default | meaning |"),
        "{table}"
    );
    let headers: String = ["hosted_engine_upgrade.yml", "hosted_engine_rollback.yml"]
        .iter()
        .flat_map(|name| {
            read(root.join("playbooks").join(name))
                .lines()
                .take_while(|line| line.starts_with('#') || line.starts_with("---"))
                .map(|line| format!("{line}\n"))
                .collect::<Vec<_>>()
        })
        .collect();
    let header_names = he_names(&headers);
    let undocumented: Vec<&&String> = variables
        .iter()
        .filter(|name| !table.contains(&format!("`{name}`")) || !header_names.contains(**name))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/variables.md or in a playbook header: {undocumented:?}"
    );
}
