//! The lab's host daemon (what vdsm + libvirt are on a real host): started by `he-lab up`,
//! it serves vdsm's JSON-RPC endpoint (`vdsm::server`, bound to port 0 at start, address in
//! `state/vdsm_address`), owns the engine VM and answers `VM.create/shutdown/destroy` on a
//! unix control socket (`state/daemon.sock`, one JSON request and one JSON reply per
//! connection). It holds the engine VM's network namespace (`engine_vm_ssh`), where the VM's
//! sshd runs while the VM does.

use crate::config::LabConfig;
use crate::engine_vm_ssh::{EngineNetwork, Sshd};
use crate::nfs_mount::NfsMount;
use crate::ports::HeldPort;
use crate::vm::boot::{self, StopKind, VmControl};
use crate::{inventory, state};
use anyhow::Context as _;
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Writes a timestamped line to the daemon log (the daemon's stderr).
pub fn log(line: &str) {
    let now = crate::engine::clock::iso8601(crate::engine::clock::now_ms());
    eprintln!("{now} {line}");
}

/// The VM currently running, if any.
#[derive(Default)]
struct Running {
    control: Option<VmControl>,
    thread: Option<JoinHandle<()>>,
}

/// The daemon's main loop: holds the engine's ports, serves the control socket until asked
/// to quit.
pub fn run(mut config: LabConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(config.state_dir())?;
    let nfs = NfsMount::mount(&config.sd_remote, &config.sd_export(), &config.sd_mount())?;
    // Without it (no root, an address taken) the lab runs, and its engine VM has no SSH.
    let engine_network = EngineNetwork::create(&config)
        .map_err(|error| log(&format!("the engine VM has no network: {error:#}")))
        .ok();
    let (https, http) = (HeldPort::new(), HeldPort::new());
    let (https, http) = (
        https.context("cannot hold a port for the engine's HTTPS")?,
        http.context("cannot hold a port for the engine's HTTP")?,
    );
    config.https_port = https.port;
    config.http_port = http.port;
    config.save()?;
    inventory::write_variables(&config)?;
    // vdsm first: once the control socket answers, the recorded vdsm address is current.
    let vdsm_address = crate::vdsm::server::start(&config)?;
    std::fs::write(
        crate::vdsm::address_path(&config),
        format!("{vdsm_address}\n"),
    )?;
    let socket = config.control_socket_path();
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).with_context(|| format!("cannot bind {}", socket.display()))?;
    std::fs::write(config.pid_path(), format!("{}\n", std::process::id()))?;
    // A new daemon has no VM: a state left by a daemon that died is stale.
    let mut vm = state::vm(&config);
    if vm.exists() {
        vm.status = "Down".into();
        vm.engine_running = false;
        vm.booted = false;
        vm.exit_code = 1;
        vm.exit_message = "VM lost: the host daemon was restarted".into();
        state::save_vm(&config, &vm)?;
    }
    log(&format!(
        "he-lab daemon {} serving {} and vdsm at {vdsm_address}",
        std::process::id(),
        socket.display()
    ));
    let running = Arc::new(Mutex::new(Running::default()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (request, mut writer) = match read_request(stream) {
            Ok(pair) => pair,
            Err(error) => {
                log(&format!("bad control request: {error:#}"));
                continue;
            }
        };
        let op = request["op"].as_str().unwrap_or_default().to_string();
        let reply = handle(&config, &running, &request);
        let _ = writeln!(writer, "{reply}");
        if op == "quit" {
            break;
        }
    }
    // Before the socket goes: `down` returns when it is gone, the namespace gone too.
    drop(engine_network);
    let _ = std::fs::remove_file(&socket);
    if let Err(error) = nfs.unmount() {
        log(&format!("{error:#}"));
    }
    let _ = std::fs::remove_file(config.pid_path());
    log("he-lab daemon stopped");
    Ok(())
}

fn read_request(stream: UnixStream) -> anyhow::Result<(Value, UnixStream)> {
    // A client that connects and says nothing must not block the host.
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(stream.try_clone()?).read_line(&mut line)?;
    Ok((serde_json::from_str(&line)?, stream))
}

/// Handles one request: `create` {vm_conf}, `shutdown`, `destroy`, `ping`, `quit`.
fn handle(config: &LabConfig, running: &Arc<Mutex<Running>>, request: &Value) -> Value {
    let mut running = running.lock().expect("daemon lock");
    reap(&mut running);
    match request["op"].as_str().unwrap_or_default() {
        "ping" => json!({"ok": true}),
        "create" => {
            if running.control.is_some() {
                let status = state::vm(config).status;
                return json!({"ok": false, "code": 4, "message": format!("Virtual machine already exists (status {status})")});
            }
            let vm_conf = PathBuf::from(request["vm_conf"].as_str().unwrap_or_default());
            if !vm_conf.is_file() {
                return json!({"ok": false, "code": 100, "message": format!("Cannot read VM configuration {}", vm_conf.display())});
            }
            let control = VmControl::default();
            let mut vm = state::vm(config);
            vm.status = "WaitForLaunch".into();
            vm.status_time_ms = crate::engine::clock::now_ms();
            vm.started_at_ms = Some(vm.status_time_ms);
            vm.vm_conf = Some(vm_conf.display().to_string());
            vm.exit_code = 0;
            vm.exit_message.clear();
            vm.engine_running = false;
            vm.booted = false;
            if let Err(error) = state::save_vm(config, &vm) {
                return json!({"ok": false, "code": 100, "message": format!("{error:#}")});
            }
            let (thread_config, thread_control) = (config.clone(), control.clone());
            running.thread = Some(std::thread::spawn(move || {
                // The engine VM answers SSH on its address while it runs.
                let _sshd = Sshd::start(&thread_config)
                    .map_err(|error| log(&format!("no SSH on the engine VM: {error:#}")))
                    .ok();
                boot::run_vm(&thread_config, &vm_conf, &thread_control)
            }));
            running.control = Some(control);
            json!({"ok": true})
        }
        "shutdown" | "destroy" => {
            let Some(control) = running.control.clone() else {
                return json!({"ok": false, "code": 1, "message": "Virtual machine does not exist"});
            };
            if request["op"] == "shutdown" {
                let mut vm = state::vm(config);
                vm.status = "Powering down".into();
                let _ = state::save_vm(config, &vm);
                control.stop(StopKind::Shutdown);
                // The guest takes a moment to shut down; the call itself returns at once.
                json!({"ok": true})
            } else {
                control.stop(StopKind::Destroy);
                if let Some(thread) = running.thread.take() {
                    let _ = thread.join();
                }
                running.control = None;
                json!({"ok": true})
            }
        }
        "quit" => {
            if let Some(control) = running.control.take() {
                control.stop(StopKind::Destroy);
            }
            if let Some(thread) = running.thread.take() {
                let _ = thread.join();
            }
            json!({"ok": true})
        }
        other => {
            json!({"ok": false, "code": -32601, "message": format!("Method not found: {other}")})
        }
    }
}

/// Forgets a VM whose thread ended (crashed or shut down).
fn reap(running: &mut Running) {
    if running.thread.as_ref().is_some_and(|t| t.is_finished()) {
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
        running.control = None;
    }
}

/// Sends one request to the daemon; Err when it is not running.
pub fn request(config: &LabConfig, request: &Value) -> anyhow::Result<Value> {
    let socket = config.control_socket_path();
    let mut stream = UnixStream::connect(&socket)
        .with_context(|| format!("the he-lab daemon is not running ({})", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).context("the he-lab daemon sent a bad reply")
}

/// Whether the daemon answers.
pub fn is_running(config: &LabConfig) -> bool {
    request(config, &json!({"op": "ping"})).is_ok()
}

/// Starts the daemon in the background (new session, log in `state/daemon.log`) unless it
/// runs, and waits until it answers. Returns the configuration with the ports it holds.
pub fn start(config: &LabConfig, he_lab_binary: &std::path::Path) -> anyhow::Result<LabConfig> {
    if is_running(config) {
        return LabConfig::load(&config.dir);
    }
    use std::os::unix::process::CommandExt as _;
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.daemon_log_path())
        .with_context(|| format!("cannot open {}", config.daemon_log_path().display()))?;
    let mut command = std::process::Command::new(he_lab_binary);
    command
        .arg("--dir")
        .arg(&config.dir)
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    // SAFETY: setsid is async-signal-safe and only detaches the child from our session.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().context("cannot start the he-lab daemon")?;
    // A bound on a hang, not on speed: a busy machine takes a while to mount the domain, make
    // the engine VM's network and start vdsm (a daemon that fails exits, seen below at once).
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if is_running(config) {
            // The daemon is detached; reap it later only if it already exited.
            let _ = child.try_wait();
            return LabConfig::load(&config.dir);
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "the he-lab daemon exited at start ({status}); see {}",
                config.daemon_log_path().display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("the he-lab daemon did not answer within 120 s")
}

/// True while process `pid` runs (a zombie waiting for its reaper has ended).
fn process_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) state ...`: the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Stops the daemon (the VM is powered off first, its engine database kept on the disk).
pub fn stop(config: &LabConfig) -> anyhow::Result<()> {
    let pid = std::fs::read_to_string(config.pid_path())
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok());
    if request(config, &json!({"op": "quit"})).is_ok() {
        // Down means the process is gone: its vdsm and engine listeners live until it exits,
        // after the control socket (a busy machine showed vdsm still answering after `down`).
        let deadline = Instant::now() + Duration::from_secs(120);
        while pid.is_some_and(process_running)
            || (pid.is_none() && config.control_socket_path().exists())
        {
            if Instant::now() > deadline {
                anyhow::bail!("the he-lab daemon did not exit within 120 s of being asked to quit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    } else if let Ok(text) = std::fs::read_to_string(config.pid_path()) {
        // A daemon that does not answer: end that process (the pid it recorded) only.
        if let Ok(pid) = text.trim().parse::<i32>() {
            // SAFETY: plain kill(2) on the pid the daemon wrote itself.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = std::fs::remove_file(config.pid_path());
        let _ = std::fs::remove_file(config.control_socket_path());
        // What the dead daemon held outside its process: the engine VM's network and sshd,
        // and its storage domain mount (dead: every access fails with ENOTCONN).
        crate::engine_vm_ssh::teardown(config);
        crate::nfs_mount::detach(&config.sd_mount());
    }
    let mut vm = state::vm(config);
    if vm.exists() {
        vm.status = "Down".into();
        vm.engine_running = false;
        state::save_vm(config, &vm)?;
    }
    Ok(())
}
