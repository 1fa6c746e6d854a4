//! The same upgrade over SSH (an sshd run by the test), as an operator runs it from a control
//! node: modules are transferred and run on the "remote" host.

use he_e2e::{assert_success, backup_disks, Lab};
use std::path::{Path, PathBuf};
use std::process::Command;

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

/// Keys, an sshd_config and an ssh_config whose ProxyCommand runs `sshd -i` (inetd mode) for
/// each connection: the SSH session is a real one, and no port is chosen to be bound later by
/// sshd (another test could take it in between). Returns the ssh_config.
fn sshd_behind_proxy_command(dir: &Path) -> PathBuf {
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd_config = format!(
        "HostKey {dir}/host_key\nAuthorizedKeysFile {dir}/authorized_keys\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\n\
         UsePAM no\nSubsystem sftp internal-sftp\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), sshd_config).unwrap();
    let ssh_config = format!(
        "Host *\n  ProxyCommand /usr/sbin/sshd -i -f {dir}/sshd_config -E {dir}/sshd.log\n\
         \x20 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n\
         \x20 IdentityFile {dir}/client_key\n  IdentitiesOnly yes\n",
        dir = dir.display()
    );
    let path = dir.join("ssh_config");
    std::fs::write(&path, ssh_config).unwrap();
    path
}

#[test]
fn upgrade_over_ssh_to_localhost() {
    let keys = tempfile::tempdir().unwrap();
    let ssh_config = sshd_behind_proxy_command(keys.path());
    let lab = Lab::start("el6-3.6:el7-4.0");
    let run = lab.playbook(
        "playbooks/hosted_engine_upgrade.yml",
        &[
            "-e",
            "ansible_connection=ssh",
            "-e",
            "ansible_host=127.0.0.1",
            "-e",
            "ansible_user=root",
            "-e",
            &format!("ansible_ssh_common_args='-F {}'", ssh_config.display()),
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
