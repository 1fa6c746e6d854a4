//! What the playbooks and a shell see of the lab: `inventory.yml` (one host with every
//! playbook variable of SPEC 5, the vdsm endpoint included) and the `bin/hosted-engine`
//! wrapper, plus `bin/vdsm-client` where the host's vdsm release has it (4.19 and later);
//! `engine-vm.yml` (the engine VM over SSH) and the engine VM's `engine-vm/bin/engine-backup`.

use crate::config::LabConfig;
use anyhow::Context as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// The engine VM's name in `engine-vm.yml`.
pub const ENGINE_VM_HOST: &str = "hosted_engine_vm";

/// Quotes a string for YAML (JSON strings are valid YAML scalars).
fn quoted(value: impl AsRef<str>) -> String {
    serde_json::to_string(value.as_ref()).expect("strings serialize")
}

/// Playbook variables of the lab, in inventory order.
pub fn variables(config: &LabConfig) -> Vec<(&'static str, String)> {
    let path = |p: &Path| p.display().to_string();
    vec![
        ("he_engine_url", config.engine_url()),
        ("he_health_url", config.health_url()),
        ("he_ca_file", path(&config.ca_file())),
        ("he_admin_user", config.admin_user.clone()),
        (
            "he_admin_password_file",
            path(&config.admin_password_file()),
        ),
        ("he_conf", path(&config.he_conf_path())),
        ("he_vm_conf", path(&config.vm_conf_path())),
        ("he_engine_backup", path(&config.engine_backup_path())),
        ("he_appliance_desc_dir", path(&config.appliance_dir())),
        ("he_state_dir", path(&config.upgrade_state_dir())),
        ("he_stage_dir", path(&config.stage_dir())),
        ("he_log_dir", path(&config.log_dir())),
        ("he_report_path", path(&config.report_path())),
        ("he_channel", path(&config.channel_path())),
        ("he_vm_id", config.vm_id.clone()),
        // The lab's root password of the new engine VM is its admin password (a secret file).
        (
            "he_appliance_root_password",
            format!(
                "{{{{ lookup('file', '{}') }}}}",
                path(&config.admin_password_file())
            ),
        ),
        // Tests and the demo run unattended (no TTY): they confirm the downtime and the
        // rollback explicitly, as an AWX job would.
        ("he_confirm_downtime", "true".to_string()),
        ("he_confirm_rollback", "true".to_string()),
        // The daemon binds vdsm to a free port when it starts and records it there: read it
        // when a play uses it, so the inventory stays valid across daemon restarts.
        (
            "he_vdsm_address",
            format!(
                "{{{{ lookup('file', '{}') }}}}",
                path(&crate::vdsm::address_path(config))
            ),
        ),
        ("he_vdsm_pki_dir", path(&crate::vdsm::pki_dir(config))),
        ("he_fqdn", config.fqdn.clone()),
        // The engine VM, for he_take_engine_backup: its host is in engine-vm.yml (a second
        // `-i`), and engine-backup writes there (the lab's engine VM shares this filesystem).
        ("he_engine_vm_host", ENGINE_VM_HOST.to_string()),
        (
            "he_engine_vm_backup_dir",
            path(&config.engine_vm_dir().join("backups")),
        ),
        (
            "he_engine_vm_path",
            format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                path(&crate::engine_vm_ssh::bin_dir(config))
            ),
        ),
        // The simulated VM and engine answer in milliseconds: look often.
        ("he_poll_interval", "1".to_string()),
        ("he_health_interval", "1".to_string()),
    ]
}

/// `PATH` with the lab's `bin/` first.
pub fn search_path(config: &LabConfig) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        config.bin_dir().display()
    )
}

/// Renders `env.sh`: the lab's tools first on PATH, for shells and `ansible-playbook`.
pub fn render_env(config: &LabConfig) -> String {
    format!(
        "# he-lab: . {}/env.sh\nexport PATH={}:\"$PATH\"\nexport LIBGUESTFS_BACKEND=direct\nexport LIBGUESTFS_BACKEND_SETTINGS=force_tcg\nexport HE_LAB_DIR={}\n",
        config.dir.display(),
        config.bin_dir().display(),
        config.dir.display()
    )
}

/// Renders `inventory.yml`: host `hosted_engine_host`, local connection, PATH with the lab's
/// `bin/` first, and the playbook variables.
pub fn render(config: &LabConfig) -> String {
    let mut text = String::from(
        "# he-lab inventory: the simulated hosted-engine host (see tests/lab/README.md)\n",
    );
    // The playbooks run on `he_target` only; a play's `hosts:` does not see inventory
    // variables, so it is an `all` group variable that their first play reads.
    text.push_str("all:\n  vars:\n    he_target: hosted_engine_host\n");
    text.push_str("  hosts:\n    hosted_engine_host:\n");
    text.push_str("      ansible_connection: local\n");
    text.push_str("      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n");
    text.push_str("      he_lab_dir: ");
    text.push_str(&quoted(config.dir.display().to_string()));
    text.push('\n');
    // `environment` is a play/task keyword, not a variable Ansible applies from inventory:
    // playbooks use `environment: "{{ he_environment | default({}) }}"`, and `env.sh` sets
    // the same for a shell (`. DIR/env.sh; ansible-playbook ...`).
    text.push_str("      he_environment:\n        PATH: ");
    text.push_str(&quoted(search_path(config)));
    // TCG: a nested /dev/kvm can hang the libguestfs appliance; the lab favours working slowly.
    text.push_str(
        "\n        LIBGUESTFS_BACKEND: direct\n        LIBGUESTFS_BACKEND_SETTINGS: force_tcg\n",
    );
    for (name, value) in variables(config) {
        text.push_str(&format!("      {name}: {}\n", quoted(value)));
    }
    text
}

/// Renders `engine-vm.yml`: the engine VM as a control node reaches it, root over SSH at the
/// engine's address with the lab's key and known_hosts. A separate inventory (`-i` it next to
/// `inventory.yml`), so that plays on every host of `inventory.yml` never run on the engine VM.
pub fn render_engine_vm(config: &LabConfig) -> String {
    let ssh_args = format!(
        "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
        crate::engine_vm_ssh::known_hosts_path(config).display()
    );
    let mut text = String::from(
        "# he-lab inventory of the engine VM (he_take_engine_backup): use with -i inventory.yml -i engine-vm.yml
",
    );
    text.push_str(
        "all:
  children:
    hosted_engine_vms:
      hosts:
",
    );
    text.push_str(&format!(
        "        {ENGINE_VM_HOST}:
"
    ));
    for (name, value) in [
        ("ansible_connection", "ssh".to_string()),
        ("ansible_host", config.engine_link().engine.to_string()),
        ("ansible_user", "root".to_string()),
        (
            "ansible_ssh_private_key_file",
            crate::engine_vm_ssh::client_key_path(config)
                .display()
                .to_string(),
        ),
        ("ansible_ssh_common_args", ssh_args),
        ("ansible_python_interpreter", "/usr/bin/python3".to_string()),
    ] {
        text.push_str(&format!(
            "          {name}: {}
",
            quoted(value)
        ));
    }
    text
}

/// Renders `vars.yml`: the same playbook variables, for `ansible-playbook -e @vars.yml`.
pub fn render_vars(config: &LabConfig) -> String {
    let mut text = String::from("# he-lab playbook variables (also in inventory.yml)\n");
    for (name, value) in variables(config) {
        text.push_str(&format!("{name}: {}\n", quoted(value)));
    }
    text
}

/// A shell wrapper that runs `he-lab --dir DIR shim TOOL "$@"`.
fn wrapper(he_lab: &Path, dir: &Path, tool: &str) -> String {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    format!(
        "#!/bin/sh\n# {tool} of the he-lab simulated host\nexec {} --dir {} shim {tool} \"$@\"\n",
        quote(he_lab),
        quote(dir)
    )
}

/// Writes `inventory.yml`, `vars.yml` and `engine-vm.yml` (again when the daemon knows the
/// engine's ports).
pub fn write_variables(config: &LabConfig) -> anyhow::Result<()> {
    std::fs::write(config.inventory_path(), render(config))
        .with_context(|| format!("cannot write {}", config.inventory_path().display()))?;
    let vars = config.dir.join("vars.yml");
    std::fs::write(&vars, render_vars(config))
        .with_context(|| format!("cannot write {}", vars.display()))?;
    let engine_vm = config.engine_vm_inventory_path();
    std::fs::write(&engine_vm, render_engine_vm(config))
        .with_context(|| format!("cannot write {}", engine_vm.display()))
}

/// Writes `inventory.yml`, `vars.yml`, `env.sh` and the `bin/` wrappers pointing at the he-lab binary `he_lab`.
pub fn write(config: &LabConfig, he_lab: &Path) -> anyhow::Result<()> {
    write_variables(config)?;
    std::fs::write(config.dir.join("env.sh"), render_env(config))?;
    let bin = config.bin_dir();
    std::fs::create_dir_all(&bin)?;
    let mut tools = vec!["hosted-engine"];
    if crate::profile::HostVdsm::of(&config.profile).has_vdsm_client() {
        tools.push("vdsm-client");
    }
    let engine_vm_bin = crate::engine_vm_ssh::bin_dir(config);
    std::fs::create_dir_all(&engine_vm_bin)?;
    let placed = tools
        .into_iter()
        .map(|tool| (bin.join(tool), tool))
        .chain([(engine_vm_bin.join("engine-backup"), "engine-backup")]);
    for (path, tool) in placed {
        std::fs::write(&path, wrapper(he_lab, &config.dir, tool))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
