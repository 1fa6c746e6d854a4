//! The engine VM over SSH: while the VM runs, sshd answers at the engine's address in the
//! lab's own network namespace with the lab's keys, and `engine-backup` there writes a real
//! archive of the engine as it is, with engine-backup's options and exit codes; `down`
//! removes the namespace, and what a killed daemon left is removed by the next `up` or `down`.
//! Sessions end with the engine VM, and hold no copy of the host's mounts.

mod lab_support;

use he_lab::config::LabConfig;
use he_lab::engine_vm_ssh;
use lab_support::{text, Lab};
use std::path::Path;
use std::process::{Command, Output};

/// `ssh root@ENGINE COMMAND` with the lab's client key and known_hosts (strict).
fn ssh(config: &LabConfig, command: &str) -> Output {
    Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            engine_vm_ssh::known_hosts_path(config).display()
        ))
        .arg("-i")
        .arg(engine_vm_ssh::client_key_path(config))
        .arg(format!("root@{}", config.engine_link().engine))
        .arg(command)
        .output()
        .unwrap()
}

fn namespaces() -> String {
    text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
}

/// Whether an interface of the root namespace has the host's end of the engine's link.
fn host_end_present(config: &LabConfig) -> bool {
    let link = config.engine_link();
    let shown = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "to"])
        .arg(format!("{}/{}", link.host, link.prefix_len))
        .output()
        .unwrap();
    !shown.stdout.is_empty()
}

fn sshd_pid(lab: &Lab) -> Option<String> {
    std::fs::read_to_string(lab.dir.join("engine-vm/sshd.pid"))
        .ok()
        .map(|pid| pid.trim().to_string())
}

/// Waits (bounded) until process `pid` is no sshd any more (gone, or reaped and reused).
fn wait_not_sshd(pid: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| text(&cmdline).contains("sshd"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "sshd {pid} is still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn kill_daemon(lab: &Lab) {
    let pid = std::fs::read_to_string(lab.dir.join("state/daemon.pid")).unwrap();
    assert!(Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap()
        .success());
}

fn members(archive: &Path) -> Vec<String> {
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    text(&listed.stdout).lines().map(str::to_string).collect()
}

#[test]
fn the_running_engine_vm_answers_ssh_and_engine_backup_backs_it_up() {
    let lab = Lab::init("evm-ssh", 71, &[]);
    let config = LabConfig::load(&lab.dir).unwrap();
    // Before `up` there is no engine VM on the network.
    assert!(!namespaces().contains(&engine_vm_ssh::namespace(&config)));
    lab.up();
    assert!(namespaces().contains(&engine_vm_ssh::namespace(&config)));

    let who = ssh(&config, "id -u; command -v engine-backup");
    assert!(who.status.success(), "{}", text(&who.stderr));
    assert!(
        text(&who.stdout).starts_with("0\n"),
        "{}",
        text(&who.stdout)
    );

    let backups = lab.dir.join("engine-vm/backups");
    std::fs::create_dir_all(&backups).unwrap();
    let archive = backups.join("fresh.tar.gz");
    let taken = ssh(
        &config,
        &format!(
            "engine-backup --mode=backup --scope=all --archive-compressor=gzip --file={} --log={}",
            archive.display(),
            backups.join("fresh.log").display()
        ),
    );
    assert!(
        taken.status.success(),
        "{}{}",
        text(&taken.stdout),
        text(&taken.stderr)
    );
    assert!(text(&taken.stdout).contains(&format!("Packing into file '{}'", archive.display())));
    assert!(text(&taken.stdout).ends_with("Done.\n"));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let listed = members(&archive);
    for member in ["./version", "./files", "./db/engine_backup.db", "./md5sum"] {
        assert!(listed.iter().any(|m| m == member), "{member}: {listed:?}");
    }
    // The dump is the engine as it is now, not the backup init made.
    let work = lab.scratch("fresh");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&work)
        .arg("-xzf")
        .arg(&archive)
        .status()
        .unwrap()
        .success());
    let dumped = he_lab::pgdump::read_engine_state(&work.join("db/engine_backup.db")).unwrap();
    let running = he_lab::engine::db::EngineDb::load(&config).unwrap();
    assert_eq!(
        serde_json::to_value(&dumped).unwrap()["disks"],
        serde_json::to_value(&running).unwrap()["disks"]
    );

    // engine-backup's own refusals and exit codes.
    let no_log = ssh(
        &config,
        &format!("engine-backup --mode=backup --file={}", archive.display()),
    );
    assert_eq!(no_log.status.code(), Some(1));
    assert_eq!(text(&no_log.stderr).trim(), "FATAL: --log is missing");
    let bad = ssh(
        &config,
        "engine-backup --mode=backup --archive-compressor=zip --file=/x --log=/y",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("invalid compressor 'zip'"));

    // The engine VM down: no SSH.
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    lab.wait_vm_status("Down", std::time::Duration::from_secs(30));
    assert!(!ssh(&config, "true").status.success());

    let down = lab.he_lab(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(!namespaces().contains(&engine_vm_ssh::namespace(&config)));
    assert!(!host_end_present(&config));
}

#[test]
fn a_killed_daemon_leaves_no_engine_vm_network_behind() {
    let lab = Lab::init("evm-kill", 72, &[]);
    let config = LabConfig::load(&lab.dir).unwrap();
    lab.up();
    let first_sshd = sshd_pid(&lab).expect("sshd records its pid");
    kill_daemon(&lab);
    // What the dead daemon held outside its process is still there...
    assert!(namespaces().contains(&engine_vm_ssh::namespace(&config)));
    assert!(Path::new(&format!("/proc/{first_sshd}")).exists());
    // ...until the next `up` replaces it.
    lab.up();
    wait_not_sshd(&first_sshd);
    let answered = ssh(&config, "true");
    assert!(answered.status.success(), "{}", text(&answered.stderr));
    // A killed daemon, then `down`: nothing left.
    let second_sshd = sshd_pid(&lab).expect("sshd records its pid");
    kill_daemon(&lab);
    let down = lab.he_lab(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(!namespaces().contains(&engine_vm_ssh::namespace(&config)));
    assert!(!host_end_present(&config));
    wait_not_sshd(&second_sshd);
    let mount = config.sd_mount().display().to_string();
    assert!(
        !mounts_of("self").contains(&mount),
        "{mount} is still mounted"
    );
}

/// The mount points listed in `/proc/PID/mounts` (empty when the process is gone).
fn mounts_of(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/mounts")).unwrap_or_default()
}

/// The processes in the lab's network namespace (`ip netns pids`).
fn namespace_pids(config: &LabConfig) -> Vec<String> {
    let listed = Command::new("ip")
        .args(["netns", "pids", &engine_vm_ssh::namespace(config)])
        .output()
        .unwrap();
    text(&listed.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn an_open_session_holds_no_labs_storage_and_ends_with_the_engine_vm() {
    // Another lab, mounted before this one's sshd starts.
    let other = Lab::init("evm-other", 73, &[]);
    other.up();
    let other_mount = LabConfig::load(&other.dir)
        .unwrap()
        .sd_mount()
        .display()
        .to_string();
    assert!(mounts_of("self").contains(&other_mount), "{other_mount}");

    let lab = Lab::init("evm-session", 74, &[]);
    let config = LabConfig::load(&lab.dir).unwrap();
    lab.up();
    // A session left open, as a control node's ControlPersist connection is.
    let mut session = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            engine_vm_ssh::known_hosts_path(&config).display()
        ))
        .arg("-i")
        .arg(engine_vm_ssh::client_key_path(&config))
        .arg(format!("root@{}", config.engine_link().engine))
        .args(["echo", "open;", "exec", "sleep", "3600"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut opened = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(session.stdout.take().unwrap()),
        &mut opened,
    )
    .unwrap();
    assert_eq!(opened, "open\n");

    // The engine VM's processes see the host's mounts, not a copy: the other lab's storage
    // domain unmounts for good, and that lab stops.
    let in_vm = namespace_pids(&config);
    assert!(in_vm.len() >= 2, "sshd and the session: {in_vm:?}");
    for pid in &in_vm {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
            std::fs::read_link("/proc/self/ns/mnt").unwrap(),
            "process {pid} of the engine VM has a mount namespace of its own"
        );
    }
    let down = other.he_lab(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(!mounts_of("self").contains(&other_mount));

    // The engine VM powered off: no session is left running in it.
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    lab.wait_vm_status("Down", std::time::Duration::from_secs(30));
    let ended = session.wait().unwrap();
    assert!(!ended.success(), "the session was cut: {ended}");
    assert_eq!(namespace_pids(&config), Vec::<String>::new());
    let down = lab.he_lab(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
}
