//! `hosted-engine` (ovirt-hosted-engine-setup `src/bin/hosted-engine.in`): the verbs the
//! upgrade uses, with the real messages and exit codes (host-formats.md section 5).

use crate::config::LabConfig;
use crate::host::he_conf;
use crate::shim::{ha_status, health, ToolOutput};
use crate::{daemon, state};
use serde_json::json;
use std::path::PathBuf;

/// The usage text (`hosted-engine --help`).
pub const USAGE: &str = "Usage: /usr/sbin/hosted-engine [--help] <command> [<command-args>]
    --help
        show this help message.

    The available commands are:
        --deploy [options]
            run ovirt-hosted-engine deployment
        --vm-start [--vm-conf=<file>]
            start VM on this host
        --vm-start-paused
            start VM on this host with qemu paused
        --vm-shutdown
            gracefully shutdown the VM on this host
        --vm-poweroff
            forcefully poweroff the VM on this host
        --vm-status [--json]
            VM status among the cluster
        --add-console-password
            Create a temporary password for vnc/spice connection
        --check-liveliness
            Checks liveliness page of engine
        --check-deployed
            Checks whether the hosted engine has been deployed already
        --connect-storage
            Connect the storage domain
        --disconnect-storage
            Disconnect the storage domain
        --console
            Open the configured console using remote-viewer on localhost
        --set-maintenance --mode=<mode>
            Set maintenance status to the specified mode (global/local/none)
        --set-shared-config <key> <value> [--type=<type>]
            Set specified key to the specified value
        --get-shared-config <key> [--type=<type>]
            Get specified key from the shared configuration
        --reinitialize-lockspace
            Reinitialize the sanlock lockspace file. This wipes all locks.
        --clean-metadata [--force-cleanup] [--host-id=<id>]
            Remove host's metadata from the global status database.

    For additional help about the available commands, run:
        /usr/sbin/hosted-engine <command> --help
";

/// Commands the real dispatcher knows.
const COMMANDS: &[&str] = &[
    "--deploy",
    "--vm-start",
    "--vm-start-paused",
    "--vm-shutdown",
    "--vm-poweroff",
    "--vm-status",
    "--add-console-password",
    "--check-liveliness",
    "--check-deployed",
    "--connect-storage",
    "--disconnect-storage",
    "--console",
    "--set-maintenance",
    "--set-shared-config",
    "--get-shared-config",
    "--reinitialize-lockspace",
    "--clean-metadata",
    "--help",
];

/// The usage text of the 4.0 release (ovirt-hosted-engine-setup 2.0, `hosted-engine.in`
/// `usage()`): `--upgrade-appliance` and `--rollback-upgrade`, no shared-config verbs.
pub const USAGE_4_0: &str = "Usage: /usr/sbin/hosted-engine [--help] <command> [<command-args>]
    --help
        show this help message.

    The available commands are:
        --deploy [options]
            run ovirt-hosted-engine deployment
        --vm-start
            start VM on this host
        --vm-start-paused
            start VM on this host with qemu paused
        --vm-shutdown
            gracefully shutdown the VM on this host
        --vm-poweroff
            forcefully poweroff the VM on this host
        --vm-status [--json]
            VM status according to the HA agent. If --json is given, the
            output will be in machine-readable (JSON) format
        --add-console-password [--password=<password>]
            Create a temporary password for vnc/spice connection.  If
            --password is given, the password will be set to the value
            provided.  Otherwise, if it is set,  the environment variable
            OVIRT_HOSTED_ENGINE_CONSOLE_PASSWORD will be used.  As a last
            resort, the password will be read interactively.
        --check-deployed
            Check whether the hosted engine has been deployed already
        --check-liveliness
            Checks liveliness page of engine
        --connect-storage
            Connect the storage domain
        --console
            Open the configured console using virsh on localhost
        --set-maintenance --mode=<mode>
            Set maintenance status to the specified mode (global/local/none)
        --reinitialize-lockspace
            Make sure all hosted engine agents are down and reinitialize the
            sanlock lockspaces.
        --clean-metadata
            Remove the metadata for the current host's agent from the global
            status database. This makes all other hosts forget about this
            host.
        --upgrade-appliance
            Upgrade the engine appliance.
        --rollback-upgrade
            Rollback using a backup saved in a previous upgrade attempt.

    For additional information about a specific command try:
        /usr/sbin/hosted-engine <command> --help

";

/// Commands the 4.0 dispatcher (`cli_broker`) knows.
const COMMANDS_4_0: &[&str] = &[
    "--deploy",
    "--vm-start",
    "--vm-start-paused",
    "--vm-shutdown",
    "--vm-poweroff",
    "--vm-status",
    "--add-console-password",
    "--check-liveliness",
    "--check-deployed",
    "--connect-storage",
    "--console",
    "--set-maintenance",
    "--reinitialize-lockspace",
    "--clean-metadata",
    "--upgrade-appliance",
    "--rollback-upgrade",
    "--help",
];

/// Runs `hosted-engine ARGS`.
pub fn run(config: &LabConfig, args: &[String]) -> ToolOutput {
    // The host's release: a 4.0 host has the 4.0 tool (vdsm 4.18).
    let (usage, commands) = match crate::profile::HostVdsm::of(&config.profile) {
        crate::profile::HostVdsm::V4_18 => (USAGE_4_0, COMMANDS_4_0),
        crate::profile::HostVdsm::V4_40 => (USAGE, COMMANDS),
    };
    let Some(command) = args.first() else {
        return ToolOutput::fail(1, usage);
    };
    if !commands.contains(&command.as_str()) {
        return ToolOutput::fail(1, format!("Invalid option '{command}'\n{usage}"));
    }
    if command == "--help" {
        return ToolOutput::ok(usage);
    }
    let conf = match he_conf::load(&config.he_conf_path()) {
        Ok(conf) => conf,
        Err(_) => return ToolOutput::ok("You must run deploy first\n").with_code(1),
    };
    let vm_id = conf.get("vmid").cloned().unwrap_or_default();
    if vm_id.is_empty() && command != "--deploy" && command != "--check-deployed" {
        return ToolOutput::ok("You must run deploy first\n").with_code(1);
    }
    let rest = &args[1..];
    match command.as_str() {
        "--vm-status" => vm_status(config, rest),
        "--set-maintenance" => set_maintenance(config, rest),
        "--vm-start" => vm_start(config, &conf, rest),
        "--vm-shutdown" => vm_stop(config, &vm_id, "shutdown"),
        "--vm-poweroff" => vm_stop(config, &vm_id, "destroy"),
        "--check-liveliness" => {
            if health::is_up(config.http_port) {
                ToolOutput::ok("Hosted Engine is up!\n")
            } else {
                ToolOutput::ok("Hosted Engine is not up!\n").with_code(1)
            }
        }
        "--check-deployed" => ToolOutput::ok("The hosted engine has been deployed\n"),
        "--connect-storage" | "--disconnect-storage" => ToolOutput::ok(""),
        other => ToolOutput::fail(
            1,
            format!("{other} is not available on the he-lab simulated host\n"),
        ),
    }
}

impl ToolOutput {
    /// The same output with exit code `code`.
    pub fn with_code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }
}

/// `--vm-status [--json]`.
fn vm_status(config: &LabConfig, args: &[String]) -> ToolOutput {
    let status = ha_status::status(config);
    if args.iter().any(|a| a == "--json") {
        ToolOutput::ok(format!("{}\n", ha_status::render_json(&status)))
    } else {
        ToolOutput::ok(ha_status::render_text(&status))
    }
}

/// `--set-maintenance --mode=global|local|none`.
fn set_maintenance(config: &LabConfig, args: &[String]) -> ToolOutput {
    let Some(mode) = args.iter().find_map(|a| a.strip_prefix("--mode=")) else {
        return ToolOutput::ok("You must specify a maintenance mode with --mode\n").with_code(1);
    };
    let mut ha = state::ha(config);
    match mode {
        "global" => ha.global_maintenance = true,
        "none" => {
            ha.global_maintenance = false;
            ha.local_maintenance = false;
        }
        "local" => {
            if ha_status::vm_host(config) == Some(config.host_id) {
                return ToolOutput::fail(
                    1,
                    "Unable to enter local maintenance mode: the engine VM is running on the current host, please migrate it before entering local maintenance mode.\n",
                );
            }
            ha.local_maintenance = true;
        }
        other => {
            return ToolOutput::ok(format!("Invalid value '{other}' for --mode\n")).with_code(1)
        }
    }
    match state::save_ha(config, &ha) {
        Ok(()) => ToolOutput::ok(""),
        Err(_) => ToolOutput::fail(
            1,
            "Cannot connect to the HA daemon, please check the logs.\n",
        ),
    }
}

/// The vdsm connection error the tools print when vdsm does not answer.
pub const VDSM_DOWN: &str =
    "Connection to localhost:54321 with use_tls=True, timeout=60 failed: [Errno 111] Connection refused";

/// `--vm-start [--vm-conf=FILE]`.
fn vm_start(
    config: &LabConfig,
    conf: &std::collections::BTreeMap<String, String>,
    args: &[String],
) -> ToolOutput {
    let vm_conf = args
        .iter()
        .find_map(|a| a.strip_prefix("--vm-conf="))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(conf.get("conf").cloned().unwrap_or_default()));
    if std::fs::File::open(&vm_conf).is_err() {
        return ToolOutput::ok(
            "The hosted engine configuration has not been retrieved from shared storage yet,\nplease ensure that ovirt-ha-agent service is running.\n\n",
        )
        .with_code(1);
    }
    if !daemon::is_running(config) {
        return ToolOutput {
            stdout: "VM failed to launch\n".into(),
            stderr: format!("{VDSM_DOWN}\nVM failed to launch in the create function\n"),
            code: 1,
        };
    }
    let mut stdout = String::new();
    let vm = state::vm(config);
    if vm.exists() {
        let release = crate::profile::HostVdsm::of(&config.profile);
        if release == crate::profile::HostVdsm::V4_18 && vm.status == "Down" {
            // 2.0's cmd_vm_start: only Down is restarted, through vdsClient destroy.
            stdout.push_str("VM exists and is down, destroying it\n");
            let _ = daemon::request(config, &json!({"op": "destroy"}));
        } else if release == crate::profile::HostVdsm::V4_40
            && (vm.status.contains("Down") || vm.status.contains("Paused"))
        {
            stdout.push_str(&format!(
                "VM exists and is {}, cleaning up and restarting\n",
                vm.status
            ));
            let _ = daemon::request(config, &json!({"op": "destroy"}));
        } else {
            return ToolOutput::ok(format!("VM exists and its status is {}\n", vm.status))
                .with_code(1);
        }
    }
    if config.fault("vm_on_other_host") {
        // The sanlock lease of the VM disk is held by the host running it.
        stdout.push_str("VM failed to launch\n");
        return ToolOutput {
            stdout,
            stderr: "VM failed to launch in the create function\n".into(),
            code: 1,
        };
    }
    let reply = daemon::request(
        config,
        &json!({"op": "create", "vm_conf": vm_conf.display().to_string()}),
    );
    match reply {
        Ok(reply) if reply["ok"] == true => {
            stdout.push_str("VM in WaitForLaunch\n");
            ToolOutput::ok(stdout)
        }
        Ok(reply) => {
            stdout.push_str("VM failed to launch\n");
            ToolOutput {
                stdout,
                stderr: format!(
                    "{}\nVM failed to launch in the create function\n",
                    reply["message"].as_str().unwrap_or("unknown error")
                ),
                code: 1,
            }
        }
        Err(_) => ToolOutput {
            stdout: stdout + "VM failed to launch\n",
            stderr: format!("{VDSM_DOWN}\nVM failed to launch in the create function\n"),
            code: 1,
        },
    }
}

/// `--vm-shutdown` (`VM.shutdown`) and `--vm-poweroff` (`VM.destroy`): silent on success.
fn vm_stop(config: &LabConfig, vm_id: &str, op: &str) -> ToolOutput {
    let here = ha_status::vm_host(config) == Some(config.host_id);
    if !here || !state::vm(config).exists() {
        return ToolOutput::fail(
            1,
            format!("Virtual machine does not exist: {{'vmId': u'{vm_id}'}}\n"),
        );
    }
    match daemon::request(config, &json!({"op": op})) {
        Ok(reply) if reply["ok"] == true => ToolOutput::ok(""),
        Ok(reply) => ToolOutput::fail(
            1,
            format!("{}\n", reply["message"].as_str().unwrap_or("unknown error")),
        ),
        Err(_) => ToolOutput::fail(1, format!("{VDSM_DOWN}\n")),
    }
}
