//! The same upgrade over SSH (an sshd run by the test), as an operator runs it from a control
//! node: modules are transferred and run on the "remote" host.

use he_e2e::{assert_success, sshd_behind_proxy_command, Lab};

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
    lab.assert_upgraded_to("4.0");
}
