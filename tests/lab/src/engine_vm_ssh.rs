//! The engine VM's SSH endpoint, as a control node reaches a real engine VM: a network
//! namespace of its own holding the engine's address (`LabConfig::engine_link`, a veth pair
//! to the host), made by the daemon for its lifetime, and an sshd in it while the VM runs,
//! with the host and client keys `init` generates. Sessions run as root with the engine VM's
//! tools (`engine-vm/bin/engine-backup`) first on PATH. What a crashed daemon left (the
//! namespace, the sshd it started) is removed before a new one is made and by `he-lab down`.

use crate::config::LabConfig;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// sshd's privilege separation directory (Debian's openssh-server creates it at boot).
const PRIVSEP_DIR: &str = "/run/sshd";

/// The names of one lab's namespace and of the two ends of its veth pair.
struct Names {
    namespace: String,
    host_end: String,
    engine_end: String,
}

fn names(config: &LabConfig) -> Names {
    let hash = config.dir_hash();
    // Interface names hold at most 15 bytes.
    let short = hash as u32;
    Names {
        namespace: namespace(config),
        host_end: format!("hl{short:08x}h"),
        engine_end: format!("hl{short:08x}e"),
    }
}

/// The name of the lab's network namespace (`ip netns`).
pub fn namespace(config: &LabConfig) -> String {
    format!("he-lab-{:016x}", config.dir_hash())
}

/// `DIR/engine-vm/ssh_host_ed25519_key`: the engine VM's host key.
pub fn host_key_path(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("ssh_host_ed25519_key")
}

/// `DIR/engine-vm/id_ed25519`: root's key on the control node, authorized on the engine VM.
pub fn client_key_path(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("id_ed25519")
}

/// `DIR/engine-vm/known_hosts`: the engine VM's host key under its address and FQDN.
pub fn known_hosts_path(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("known_hosts")
}

/// `DIR/engine-vm/bin`: the engine VM's tools (`engine-backup`).
pub fn bin_dir(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("bin")
}

fn sshd_config_path(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("sshd_config")
}

fn sshd_pid_path(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("sshd.pid")
}

/// `DIR/engine-vm/sshd.log`: what the engine VM's sshd logged.
pub fn sshd_log_path(config: &LabConfig) -> PathBuf {
    config.engine_vm_dir().join("sshd.log")
}

/// Runs `ip ARGS`; the error carries ip's own message.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip (iproute2)")?;
    anyhow::ensure!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

fn keygen(path: &Path, comment: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .context("cannot run ssh-keygen (openssh-client)")?;
    anyhow::ensure!(
        output.status.success(),
        "ssh-keygen failed for {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Generates the engine VM's host key, root's client key (authorized on the engine VM) and
/// the `known_hosts` that names the engine VM by its address and FQDN.
pub fn write_keys(config: &LabConfig) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = config.engine_vm_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    keygen(&host_key_path(config), &format!("root@{}", config.fqdn))?;
    keygen(&client_key_path(config), "he-lab control node")?;
    std::fs::copy(
        client_key_path(config).with_extension("pub"),
        dir.join("authorized_keys"),
    )?;
    let host_public = std::fs::read_to_string(host_key_path(config).with_extension("pub"))?;
    let key: Vec<&str> = host_public.split_whitespace().take(2).collect();
    std::fs::write(
        known_hosts_path(config),
        format!(
            "{},{} {}\n",
            config.engine_link().engine,
            config.fqdn,
            key.join(" ")
        ),
    )?;
    Ok(())
}

fn render_sshd_config(config: &LabConfig) -> String {
    let dir = config.engine_vm_dir();
    format!(
        "# sshd of the he-lab engine VM: on the engine's address, in the lab's own namespace\n\
         ListenAddress {address}:22\n\
         HostKey {host_key}\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         StrictModes no\n\
         UsePAM no\n\
         PidFile {pid}\n\
         SetEnv PATH={bin}:/usr/sbin:/usr/bin:/sbin:/bin\n\
         Subsystem sftp internal-sftp\n",
        address = config.engine_link().engine,
        host_key = host_key_path(config).display(),
        dir = dir.display(),
        pid = sshd_pid_path(config).display(),
        bin = bin_dir(config).display(),
    )
}

/// The lab's network namespace with the engine's address, for as long as it is held;
/// dropping it removes the namespace and its link.
pub struct EngineNetwork {
    config: LabConfig,
}

impl EngineNetwork {
    /// Makes the namespace and its veth link to the host, after removing what a crashed
    /// daemon of this lab left; refuses an address another interface already has.
    pub fn create(config: &LabConfig) -> anyhow::Result<Self> {
        teardown(config);
        let names = names(config);
        let link = config.engine_link();
        let network = format!("{}/{}", link.host, link.prefix_len);
        let in_use = Command::new("ip")
            .args(["-o", "-4", "addr", "show", "to", &network])
            .output()
            .context("cannot run ip (iproute2)")?;
        anyhow::ensure!(
            in_use.stdout.is_empty(),
            "the engine VM's network {network} is already used on this machine (by another lab?): {}",
            String::from_utf8_lossy(&in_use.stdout).trim()
        );
        // From here on a failure drops `made`, which removes what was made.
        let made = EngineNetwork {
            config: config.clone(),
        };
        let ns = names.namespace.as_str();
        ip(&["netns", "add", ns])?;
        ip(&[
            "link",
            "add",
            &names.host_end,
            "type",
            "veth",
            "peer",
            "name",
            &names.engine_end,
            "netns",
            ns,
        ])?;
        ip(&["-n", ns, "link", "set", &names.engine_end, "name", "eth0"])?;
        ip(&["addr", "add", &network, "dev", &names.host_end])?;
        ip(&["link", "set", &names.host_end, "up"])?;
        let engine = format!("{}/{}", link.engine, link.prefix_len);
        ip(&["-n", ns, "addr", "add", &engine, "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(made)
    }
}

impl Drop for EngineNetwork {
    fn drop(&mut self) {
        teardown(&self.config);
    }
}

/// Removes the lab's namespace, its link and the sshd this lab started, whatever is left of
/// them (nothing left is fine).
pub fn teardown(config: &LabConfig) {
    stop_recorded_sshd(config);
    end_sessions(config);
    let names = names(config);
    let _ = ip(&["netns", "delete", &names.namespace]);
    // Deleting one end of a veth pair deletes both, even while a process keeps the
    // namespace alive.
    let _ = ip(&["link", "delete", &names.host_end]);
}

/// Ends the sshd whose pid this lab's sshd recorded, if that process is still this lab's sshd.
fn stop_recorded_sshd(config: &LabConfig) {
    let pid_path = sshd_pid_path(config);
    let Some(pid) = std::fs::read_to_string(&pid_path)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = sshd_config_path(config).display().to_string();
    if String::from_utf8_lossy(&cmdline).contains(&ours) {
        // SAFETY: kill(2) on the pid our own sshd recorded, checked against its command line.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let _ = std::fs::remove_file(pid_path);
}

/// Ends every process left in the lab's namespace: sshd's sessions outlive sshd (a control
/// node's ControlPersist connection keeps one open), and a powered-off VM runs nothing.
fn end_sessions(config: &LabConfig) {
    let Ok(listed) = Command::new("ip")
        .args(["netns", "pids", &namespace(config)])
        .output()
    else {
        return;
    };
    let pids = String::from_utf8_lossy(&listed.stdout);
    for pid in pids
        .split_whitespace()
        .filter_map(|pid| pid.parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a process `ip netns pids` found in this lab's own namespace.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// The engine VM's sshd, for as long as it is held; dropping it stops sshd and its sessions.
pub struct Sshd {
    child: Child,
    config: LabConfig,
}

impl Sshd {
    /// Starts sshd in the lab's namespace and waits until it listens.
    pub fn start(config: &LabConfig) -> anyhow::Result<Self> {
        stop_recorded_sshd(config);
        std::fs::create_dir_all(PRIVSEP_DIR)
            .with_context(|| format!("cannot create {PRIVSEP_DIR}"))?;
        std::fs::write(sshd_config_path(config), render_sshd_config(config))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sshd_log_path(config))?;
        // Only the network namespace is entered: `ip netns exec` would give sshd a mount
        // namespace of its own, a copy of every mount of the moment (other labs' storage
        // domains too), which its sessions would keep mounted after those labs unmount them:
        // those labs' FUSE servers would then wait for ever on an unmount they never see.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", namespace(config)))
            .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(sshd_config_path(config))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the engine VM's sshd")?;
        let mut sshd = Sshd {
            child,
            config: config.clone(),
        };
        // sshd writes its pid file once it listens (a bound on a hang, not on speed: an sshd
        // that fails exits, seen at once).
        let deadline = Instant::now() + Duration::from_secs(120);
        while !sshd_pid_path(config).exists() {
            if let Some(status) = sshd.child.try_wait()? {
                anyhow::bail!(
                    "the engine VM's sshd exited at start ({status}); see {}",
                    sshd_log_path(config).display()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the engine VM's sshd did not listen within 120 s; see {}",
                sshd_log_path(config).display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(sshd)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SIGTERM to the sshd we started (nsenter execs it: same pid); its sessions go on
        // without it, so they are ended too: the engine VM is going down.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.child.wait();
        end_sessions(&self.config);
        let _ = std::fs::remove_file(sshd_pid_path(&self.config));
    }
}
