//! The same upgrade over SSH to 127.0.0.1 (an sshd started by the test), as an operator runs it
//! from a control node: modules are transferred and run on the "remote" host.

use he_e2e::{assert_success, backup_disks, Lab};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// An sshd on 127.0.0.1 accepting one key for root; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_sshd(dir: &Path) -> Sshd {
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin prohibit-password\n\
         PasswordAuthentication no\nStrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .expect("sshd starts (apt package openssh-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Sshd { child, port }
}

#[test]
fn upgrade_over_ssh_to_localhost() {
    let keys = tempfile::tempdir().unwrap();
    let sshd = start_sshd(keys.path());
    let lab = Lab::start("el6-3.6:el7-4.0");
    let port = sshd.port.to_string();
    let key = keys.path().join("client_key").display().to_string();
    let run = lab.playbook(
        "playbooks/hosted_engine_upgrade.yml",
        &[
            "-e",
            "ansible_connection=ssh",
            "-e",
            "ansible_host=127.0.0.1",
            "-e",
            &format!("ansible_port={port}"),
            "-e",
            "ansible_user=root",
            "-e",
            &format!("ansible_ssh_private_key_file={key}"),
            "-e",
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
        ],
    );
    assert_success(&run);
    let log = std::fs::read_to_string(keys.path().join("sshd.log")).unwrap_or_default();
    assert!(
        log.contains("Accepted publickey for root"),
        "the run did not go through sshd:\n{log}"
    );
    let after = lab.inspect();
    assert!(
        after["engine_version"]
            .as_str()
            .unwrap_or("")
            .starts_with("4.0"),
        "{after}"
    );
    assert_eq!(backup_disks(&after).len(), 1, "{after}");
}
