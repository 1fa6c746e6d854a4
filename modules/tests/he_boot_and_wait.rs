//! he_boot_and_wait run as Ansible runs it, against a fake `hosted-engine` (real vm-status
//! shape, host-formats §1), a thread playing the VM on the channel socket, and a tiny HTTP
//! health page.

mod support;
use support::bad_paths::BadPaths;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{run_module, write_script, Run};

const VM_ID: &str = "4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3";

/// The limits of the failure tests are four times this: a test whose module fails with the
/// expected message, not a limit's, proves that the failure did not wait for a limit.
const AT_ONCE: Duration = Duration::from_secs(30);

/// oVirt 4.1 vm.conf lines (original-tool §5).
const VM_CONF: &str = "vmId=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3
memSize=16384
devices={index:2,iface:ide,address:{ controller:0, target:0,unit:0, bus:1, type:drive},specParams:{},readonly:true,deviceId:8a1e4b7c-2d3f-4e5a-9b6c-7d8e9f0a1b2c,path:,device:cdrom,shared:false,type:disk}
devices={index:0,iface:virtio,format:raw,poolID:00000000-0000-0000-0000-000000000000,volumeID:7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b,imageID:2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e,specParams:{},readonly:false,domainID:9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d,optional:false,deviceId:2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e,address:{bus:0x00, slot:0x06, domain:0x0000, type:pci, function:0x0},device:disk,shared:exclusive,propagateErrors:off,type:disk,bootOrder:1}
vmName=HostedEngine
smp=4
";

/// `hosted-engine` as the module uses it: records each call, keeps the VM state in a file.
const FAKE_HOSTED_ENGINE: &str = r#"D="$(dirname "$0")/.."
echo "$*" >> "$D/calls.log"
case "$1" in
  --vm-status)
    if [ "$(cat "$D/vm-state")" = up ]; then
      es='{"vm": "up", "health": "good", "detail": "Up"}'
    else
      es='{"vm": "down_unexpected", "health": "bad", "detail": "Down", "reason": "bad vm status"}'
    fi
    other='{"vm": "down", "health": "bad", "detail": "unknown", "reason": "vm not running on this host"}'
    if [ "$(cat "$D/vm-state")" = elsewhere ]; then es="$other"; other='{"vm": "up", "health": "good", "detail": "Up"}'; fi
    printf '{"1": {"host-id": 1, "host-ts": 6312, "score": 3400, "engine-status": %s, "hostname": "host1.example.com", "maintenance": false, "stopped": false, "crc32": "3b8e5a2c", "conf_on_shared_storage": true, "local_conf_timestamp": 6312, "extra": "metadata_parse_version=1\\nstate=GlobalMaintenance\\n", "live-data": true}, "2": {"host-id": 2, "host-ts": 6100, "score": 3400, "engine-status": %s, "hostname": "host2.example.com", "maintenance": false, "stopped": false, "crc32": "11aa22bb", "conf_on_shared_storage": true, "local_conf_timestamp": 6100, "extra": "", "live-data": true}, "global_maintenance": true}\n' "$es" "$other"
    ;;
  --vm-start)
    if [ "$(cat "$D/vm-state")" = up ]; then echo "VM exists and its status is Up"; exit 1; fi
    for a in "$@"; do case "$a" in --vm-conf=*) cp "${a#--vm-conf=}" "$D/started-with.conf";; esac; done
    echo up > "$D/vm-state"
    echo "VM in WaitForLaunch"
    ;;
  --vm-shutdown) [ -f "$D/stubborn" ] || echo down > "$D/vm-state" ;;
  --vm-poweroff) echo down > "$D/vm-state" ;;
  *) echo "Invalid option '$1'" >&2; exit 1 ;;
esac"#;

/// What the VM does on its channel once started.
enum Guest {
    /// Writes these chunks (pausing between them), then keeps the socket open a while.
    Says(Vec<&'static str>),
    /// Writes these chunks, then dies: the state turns down and the socket closes.
    Crashes(Vec<&'static str>),
}

struct Host {
    dir: tempfile::TempDir,
    health_port: u16,
}

impl Host {
    /// A host whose engine VM is `vm_state` and whose health page answers `health_body`.
    fn new(vm_state: &str, health_body: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_script(&root.join("bin"), "hosted-engine", FAKE_HOSTED_ENGINE);
        std::fs::write(root.join("vm-state"), format!("{vm_state}\n")).unwrap();
        std::fs::write(root.join("vm.conf"), VM_CONF).unwrap();
        std::fs::write(root.join("seed.iso"), b"not really an ISO").unwrap();
        let health_port = serve_health(health_body);
        let he_conf = format!(
            "fqdn=127.0.0.1:{health_port}\nvmid={VM_ID}\nconf={}\nhost_id=1\nsdUUID=9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d\n",
            root.join("vm.conf").display()
        );
        std::fs::write(root.join("hosted-engine.conf"), he_conf).unwrap();
        Self { dir, health_port }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Options for a boot with the ISO, waiting for both markers, fast timings.
    fn boot_args(&self) -> Value {
        json!({
            "state": "started",
            "he_conf": self.path("hosted-engine.conf"),
            "cdrom": self.path("seed.iso"),
            "channel": self.path("channel"),
            "wait_for": ["HE_APPLIANCE_ENGINE_RESTORE_SUCCESS", "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"],
            "stall_timeout": 5,
            "start_timeout": 5,
            "health_timeout": 5,
            "health_interval": 0.1,
            "poll_interval": 0.1,
        })
    }

    /// [`Host::boot_args`] whose other limits are far beyond `fails_within`: a run failing
    /// within it failed at once, on a busy machine too.
    fn boot_args_failing_within(&self, fails_within: Duration) -> Value {
        let mut args = self.boot_args();
        let far = json!(fails_within.as_secs() * 4);
        for limit in ["stall_timeout", "start_timeout", "health_timeout"] {
            args[limit] = far.clone();
        }
        args
    }

    fn run(&self, args: Value) -> Run {
        run_module(
            "he_boot_and_wait",
            args,
            self.dir.path(),
            Some(&self.path("bin")),
        )
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn starts(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("--vm-start"))
            .collect()
    }

    /// Plays the VM: once `--vm-start` made it up, binds the channel and behaves as `guest`.
    fn guest(&self, guest: Guest) -> JoinHandle<()> {
        let state = self.path("vm-state");
        let channel = self.path("channel");
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::fs::read_to_string(&state).unwrap_or_default().trim() != "up" {
                assert!(Instant::now() < deadline, "the VM was never started");
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_file(&channel);
            let listener = UnixListener::bind(&channel).unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            let (chunks, crash) = match guest {
                Guest::Says(chunks) => (chunks, false),
                Guest::Crashes(chunks) => (chunks, true),
            };
            for chunk in chunks {
                if peer.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if crash {
                std::fs::write(&state, "down\n").unwrap();
                return;
            }
            std::thread::sleep(Duration::from_secs(3));
        })
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with `body`.
fn serve_health(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

const HEALTHY: &str = "DB Up!Welcome to Health Status!";

const RESTORE_AND_SETUP: [&str; 4] = [
    "Preparing to restore:\n- Unpacking file '/root/engine_backup.tar.gz'\n",
    "Restoring:\n- Engine database 'engine'\nYou should now run engine-setup.\nDone.\nHE_APPLIANCE_ENGINE_RESTORE_SUCCESS\n",
    "[ INFO  ] Stage: Initializing\n[ INFO  ] Stage: Closing up\n",
    "[ INFO  ] Execution of setup completed successfully\nHE_APPLIANCE_ENGINE_SETUP_SUCCESS\n",
];

#[test]
fn boots_with_the_iso_follows_restore_and_setup_and_waits_for_health() {
    let host = Host::new("down", HEALTHY);
    let guest = host.guest(Guest::Says(RESTORE_AND_SETUP.to_vec()));
    let run = host.run(host.boot_args());
    run.assert_ok();
    let result = &run.result;
    assert_eq!(result["changed"], json!(true));
    assert_eq!(
        result["markers"],
        json!([
            "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"
        ])
    );
    let lines: Vec<&str> = result["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(lines.contains(&"- Engine database 'engine'"), "{lines:?}");
    assert_eq!(lines.last(), Some(&"HE_APPLIANCE_ENGINE_SETUP_SUCCESS"));
    assert_eq!(result["lines_total"], json!(lines.len()));
    assert_eq!(result["vm_state"], json!("up"));
    assert_eq!(result["health"], json!(HEALTHY));
    assert!(result["seconds"].as_f64().unwrap() < 30.0);

    // Started from a private copy with the ISO; the original vm.conf untouched.
    let copy = PathBuf::from(result["vm_conf_copy"].as_str().unwrap());
    assert_eq!(
        host.starts(),
        vec![format!("--vm-start --vm-conf={}", copy.display())]
    );
    let booted = std::fs::read_to_string(host.path("started-with.conf")).unwrap();
    assert!(booted.contains(&format!(
        "path:{},device:cdrom",
        host.path("seed.iso").display()
    )));
    assert_eq!(
        booted,
        VM_CONF.replace(
            "path:,",
            &format!("path:{},", host.path("seed.iso").display())
        )
    );
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(host.path("vm.conf")).unwrap(),
        VM_CONF
    );

    // Every channel line is in the run log.
    let log = std::fs::read_to_string(result["log_file"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("|- [ INFO  ] Execution of setup completed successfully"),
        "{log}"
    );
    guest.join().unwrap();
}

#[test]
fn check_mode_shows_the_vm_conf_copy_as_diff_and_runs_nothing() {
    let host = Host::new("down", HEALTHY);
    let mut args = host.boot_args();
    args["_ansible_check_mode"] = json!(true);
    args["_ansible_diff"] = json!(true);
    let run = host.run(args);
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert!(
        run.msg().starts_with("would start the engine VM with"),
        "{}",
        run.msg()
    );
    assert_eq!(run.result["diff"]["before"], json!(VM_CONF));
    let after = run.result["diff"]["after"].as_str().unwrap();
    assert!(after.contains(&format!("path:{},", host.path("seed.iso").display())));
    assert_eq!(host.calls(), vec!["--vm-status --json"]);
    let copy = run.result["vm_conf_copy"].as_str().unwrap();
    assert!(!Path::new(copy).exists(), "check mode wrote {copy}");
}

#[test]
fn a_restore_fail_marker_fails_at_once_with_the_original_message() {
    let host = Host::new("down", HEALTHY);
    let guest = host.guest(Guest::Says(vec![
        "FATAL: Backup was created by version '3.5' and can not be restored using the installed version 4.0\n",
        "HE_APPLIANCE_ENGINE_RESTORE_FAIL\n",
    ]));
    let run = host.run(host.boot_args_failing_within(AT_ONCE));
    run.assert_failed_with("engine-backup failed restoring the engine backup on the appliance");
    assert!(
        run.msg()
            .contains("|- FATAL: Backup was created by version '3.5'"),
        "{}",
        run.msg()
    );
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(
        run.result["markers"],
        json!(["HE_APPLIANCE_ENGINE_RESTORE_FAIL"])
    );
    guest.join().unwrap();
}

#[test]
fn a_setup_fail_marker_fails_with_the_original_message() {
    let host = Host::new("down", HEALTHY);
    let guest = host.guest(Guest::Says(vec![
        "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS\n",
        "[ ERROR ] Failed to execute stage 'Misc configuration'\nHE_APPLIANCE_ENGINE_SETUP_FAIL\n",
    ]));
    let run = host.run(host.boot_args());
    run.assert_failed_with("Engine setup failed on the appliance");
    assert_eq!(
        run.result["markers"],
        json!([
            "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS",
            "HE_APPLIANCE_ENGINE_SETUP_FAIL"
        ])
    );
    guest.join().unwrap();
}

#[test]
fn a_silent_channel_is_reported_as_stalled() {
    let host = Host::new("down", HEALTHY);
    let guest = host.guest(Guest::Says(vec![
        "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS\n",
        "[ INFO  ] Stage: Setup validation\n",
    ]));
    let mut args = host.boot_args_failing_within(AT_ONCE);
    args["stall_timeout"] = json!(1);
    let run = host.run(args);
    run.assert_failed_with("Engine setup is stalled on the appliance since 1 seconds ago");
    assert!(
        run.msg().contains("|- [ INFO  ] Stage: Setup validation"),
        "{}",
        run.msg()
    );
    guest.join().unwrap();
}

#[test]
fn the_vm_going_down_during_setup_fails_with_the_last_lines() {
    let host = Host::new("down", HEALTHY);
    let guest = host.guest(Guest::Crashes(vec![
        "HE_APPLIANCE_ENGINE_RESTORE_SUCCESS\n",
        "[ INFO  ] Stage: Misc configuration\n",
    ]));
    let run = host.run(host.boot_args_failing_within(AT_ONCE));
    run.assert_failed_with(
        "the engine VM went down while waiting for HE_APPLIANCE_ENGINE_SETUP_SUCCESS",
    );
    assert!(
        run.msg().contains("|- [ INFO  ] Stage: Misc configuration"),
        "{}",
        run.msg()
    );
    assert_eq!(run.result["vm_state"], json!("down"));
    guest.join().unwrap();
}

#[test]
fn an_engine_never_healthy_fails_after_health_timeout() {
    let host = Host::new("down", "DB Down!Welcome to Health Status!");
    let guest = host.guest(Guest::Says(RESTORE_AND_SETUP.to_vec()));
    let mut args = host.boot_args();
    args["health_timeout"] = json!(1);
    let run = host.run(args);
    run.assert_failed_with("Engine is still not reachable");
    assert!(run.msg().contains(&format!(
        "http://127.0.0.1:{}/ovirt-engine/services/health",
        host.health_port
    )));
    assert!(run.msg().contains("DB Down"), "{}", run.msg());
    assert_eq!(run.result["markers"].as_array().unwrap().len(), 2);
    guest.join().unwrap();
}

#[test]
fn a_vm_already_up_without_iso_is_left_alone_and_its_health_checked() {
    let host = Host::new("up", HEALTHY);
    let run = host.run(json!({"state": "started", "he_conf": host.path("hosted-engine.conf"), "health_interval": 0.1}));
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(false));
    assert_eq!(run.result["vm_state"], json!("up"));
    assert_eq!(run.result["health"], json!(HEALTHY));
    assert!(host.starts().is_empty());
}

#[test]
fn a_vm_already_up_cannot_be_booted_with_the_iso() {
    let host = Host::new("up", HEALTHY);
    let run = host.run(host.boot_args());
    run.assert_failed_with("the engine VM is up on this host (Up): stop it first (state: stopped)");
    assert_eq!(run.result["changed"], json!(false));
    assert!(host.starts().is_empty());
}

#[test]
fn a_vm_conf_without_cdrom_is_refused_before_anything_runs() {
    let host = Host::new("down", HEALTHY);
    let without: String = VM_CONF
        .lines()
        .filter(|l| !l.contains("cdrom"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(host.path("vm.conf"), without).unwrap();
    let run = host.run(host.boot_args());
    run.assert_failed_with("unable to attach the ISO image");
    assert!(
        run.msg().contains("has no cdrom device line"),
        "{}",
        run.msg()
    );
    assert!(host.starts().is_empty());
}

#[test]
fn a_missing_iso_is_refused_before_the_start() {
    let host = Host::new("down", HEALTHY);
    let mut args = host.boot_args();
    args["cdrom"] = json!(host.path("missing.iso"));
    let run = host.run(args);
    run.assert_failed_with("option 'cdrom'");
    assert_eq!(run.result["changed"], json!(false));
    assert!(host.starts().is_empty());
}

#[test]
fn unknown_markers_and_bad_timeouts_name_the_option() {
    let host = Host::new("down", HEALTHY);
    let mut args = host.boot_args();
    args["wait_for"] = json!(["SETUP_SUCCESS"]);
    host.run(args).assert_failed_with("option 'wait_for[0]'");
    let mut args = host.boot_args();
    args["stall_timeout"] = json!(-1);
    host.run(args).assert_failed_with("option 'stall_timeout'");
    assert!(host.calls().is_empty());
}

#[test]
fn a_vm_running_on_another_host_is_neither_started_nor_stopped_here() {
    let host = Host::new("elsewhere", HEALTHY);
    let started = host.run(json!({"state": "started", "he_conf": host.path("hosted-engine.conf")}));
    started.assert_failed_with(
        "the engine VM is running on host 2 (host2.example.com), not on this host",
    );
    let stopped = host.run(json!({"state": "stopped", "he_conf": host.path("hosted-engine.conf")}));
    stopped.assert_failed_with("stop it on that host");
    assert_eq!(host.calls(), vec!["--vm-status --json"; 2]);
}

#[test]
fn stopping_a_running_vm_shuts_it_down() {
    let host = Host::new("up", HEALTHY);
    let args = json!({"state": "stopped", "he_conf": host.path("hosted-engine.conf"), "poll_interval": 0.1});
    let run = host.run(args.clone());
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(run.result["powered_off"], json!(false));
    assert_eq!(run.result["vm_state"], json!("down"));
    assert!(host.calls().contains(&"--vm-shutdown".to_string()));
    assert!(!host.calls().contains(&"--vm-poweroff".to_string()));

    // Already down: nothing to do.
    let again = host.run(args);
    again.assert_ok();
    assert_eq!(again.result["changed"], json!(false));
    assert_eq!(
        host.calls()
            .iter()
            .filter(|c| *c == "--vm-shutdown")
            .count(),
        1
    );
}

#[test]
fn a_vm_ignoring_shutdown_is_powered_off_after_shutdown_timeout() {
    let host = Host::new("up", HEALTHY);
    std::fs::write(host.path("stubborn"), "").unwrap();
    let run = host.run(json!({
        "state": "stopped", "he_conf": host.path("hosted-engine.conf"),
        "shutdown_timeout": 0.5, "poll_interval": 0.1,
    }));
    run.assert_ok();
    assert_eq!(run.result["powered_off"], json!(true));
    assert!(run.result["warnings"][0]
        .as_str()
        .unwrap()
        .contains("it was powered off"));
    let calls = host.calls();
    let shutdown = calls.iter().position(|c| c == "--vm-shutdown").unwrap();
    let poweroff = calls.iter().position(|c| c == "--vm-poweroff").unwrap();
    assert!(shutdown < poweroff, "{calls:?}");
}

#[test]
fn stop_in_check_mode_runs_nothing() {
    let host = Host::new("up", HEALTHY);
    let run = host.run(json!({"state": "stopped", "he_conf": host.path("hosted-engine.conf"), "_ansible_check_mode": true}));
    run.assert_ok();
    assert_eq!(run.result["changed"], json!(true));
    assert_eq!(host.calls(), vec!["--vm-status --json"]);
    assert_eq!(
        std::fs::read_to_string(host.path("vm-state"))
            .unwrap()
            .trim(),
        "up"
    );
}

/// Every path option given a missing path, a looping link or a path of the wrong type fails
/// naming the option and the path, before the VM is started. A missing channel (qemu makes
/// the socket) or work_dir (made for the vm.conf copy) is not wrong.
#[test]
fn path_options_name_the_input_when_missing_unreadable_or_of_the_wrong_type() {
    let host = Host::new("down", HEALTHY);
    let BadPaths {
        missing,
        looping,
        directory: a_dir,
        file: a_file,
    } = BadPaths::in_dir(host.dir.path());
    let he_conf = "cannot read hosted-engine configuration {}";
    let vm_conf = "cannot read vm.conf {}";
    let cdrom = "option 'cdrom': {} does not exist (or is not a file)";
    let cases = [
        ("he_conf", &missing, he_conf, "No such file"),
        (
            "he_conf",
            &looping,
            he_conf,
            "Too many levels of symbolic links",
        ),
        ("he_conf", &a_dir, he_conf, "Is a directory"),
        ("vm_conf", &missing, vm_conf, "No such file"),
        (
            "vm_conf",
            &looping,
            vm_conf,
            "Too many levels of symbolic links",
        ),
        ("vm_conf", &a_dir, vm_conf, "Is a directory"),
        ("cdrom", &missing, cdrom, ""),
        ("cdrom", &looping, cdrom, ""),
        ("cdrom", &a_dir, cdrom, ""),
        (
            "channel",
            &looping,
            "option 'channel': {} cannot be used",
            "Too many levels",
        ),
        (
            "channel",
            &a_file,
            "option 'channel': {} exists and is not a socket",
            "",
        ),
        (
            "work_dir",
            &looping,
            "option 'work_dir': {} cannot be used",
            "Too many levels",
        ),
        (
            "work_dir",
            &a_file,
            "option 'work_dir': {} exists and is not a directory",
            "",
        ),
    ];
    for (option, path, message, reason) in cases {
        let mut args = host.boot_args();
        args[option] = json!(path);
        let run = host.run(args);
        run.assert_failed_with(&message.replace("{}", &path.display().to_string()));
        run.assert_failed_with(reason);
        assert_eq!(run.result["changed"], json!(false), "{option}");
    }
    assert!(host.starts().is_empty());
    assert_eq!(std::fs::read_to_string(&a_file).unwrap(), "x");
}
