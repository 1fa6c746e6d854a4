//! The site network: the deploy's answers on the configuration volume, and on a static-IP
//! site an engine VM reachable only with the static address its seed gives it.

mod lab_support;

use lab_support::{
    check, install_appliance, make_seed_with_meta_data, read_channel, upgrade_user_data, Lab,
};
use std::process::Command;
use std::time::{Duration, Instant};

/// `member` of the tar archive at the start of the configuration volume.
fn conf_volume_member(lab: &Lab, member: &str) -> String {
    let volume = lab.inspect()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["description"]
                .as_str()
                .unwrap_or("")
                .contains("HostedEngineConfigurationImage")
        })
        .map(|v| v["path"].as_str().unwrap().to_string())
        .expect("a configuration volume");
    check(Command::new("tar").args(["-xOf", &volume, member]))
}

#[test]
fn the_configuration_volume_holds_the_answers_each_deploy_wrote() {
    let dhcp_36 = Lab::init("conf36", 47, &[]);
    let members = check(
        Command::new("tar").arg("-tf").arg(
            dhcp_36.inspect()["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| {
                    v["description"]
                        .as_str()
                        .unwrap_or("")
                        .contains("HostedEngineConfigurationImage")
                })
                .unwrap()["path"]
                .as_str()
                .unwrap(),
        ),
    );
    assert_eq!(
        members,
        "version\nfhanswers.conf\nhosted-engine.conf\nbroker.conf\nvm.conf\n"
    );
    let answers = conf_volume_member(&dhcp_36, "fhanswers.conf");
    assert!(answers.starts_with("[environment:default]\n"), "{answers}");
    assert!(answers.contains("\nOVEHOSTED_VM/cloudinitVMStaticCIDR=bool:False\n"));

    let static_43 = Lab::init(
        "conf43",
        48,
        &["--profile", "el7-4.3:el8-4.4", "--static-ip"],
    );
    let answers = conf_volume_member(&static_43, "fhanswers.conf");
    assert!(
        answers.contains("\nOVEHOSTED_VM/cloudinitVMStaticCIDR=str:192.0.2.20\n"),
        "{answers}"
    );
    assert!(answers.contains("\nOVEHOSTED_NETWORK/gateway=str:192.0.2.1\n"));
    assert!(answers.contains("\nOVEHOSTED_VM/cloudinitVMDNS=str:192.0.2.53\n"));
    assert_eq!(conf_volume_member(&static_43, "version"), "2.3.6\n");
}

/// The daemon log, once it holds `needle`.
fn wait_for_log(lab: &Lab, needle: &str, timeout: Duration) -> String {
    let log = lab_support::text(&std::fs::read(lab.path("daemon_log")).unwrap_or_default());
    let deadline = Instant::now() + timeout;
    let mut log = log;
    while !log.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the daemon log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
        log = lab_support::text(&std::fs::read(lab.path("daemon_log")).unwrap_or_default());
    }
    log
}

/// Boots the freshly installed appliance with a seed whose meta-data ends with `network`,
/// and waits for engine-setup's success marker.
fn boot_appliance(lab: &Lab, network: &str) {
    install_appliance(lab, &lab.path("engine_backup"));
    let vm_conf = make_seed_with_meta_data(lab, network, &upgrade_user_data(true));
    let start = lab.tool(
        "hosted-engine",
        &["--vm-start", &format!("--vm-conf={}", vm_conf.display())],
    );
    assert!(
        start.status.success(),
        "{}",
        lab_support::text(&start.stderr)
    );
    let lines = read_channel(lab, Duration::from_secs(60));
    assert!(
        lines
            .iter()
            .any(|l| l == "HE_APPLIANCE_ENGINE_SETUP_SUCCESS"),
        "{lines:#?}"
    );
}

#[test]
fn a_static_site_reaches_the_new_engine_only_with_its_static_address() {
    let lab = Lab::init(
        "static",
        49,
        &["--profile", "el7-4.3:el8-4.4", "--static-ip"],
    );
    // The old engine's disk carries the static configuration its deploy wrote.
    lab.up();
    assert!(lab.health().unwrap_or_default().contains("DB Up"));
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    lab.wait_vm_status("Down", Duration::from_secs(10));

    // The appliance's own DHCP configuration: no DHCP server answers for the engine here.
    boot_appliance(&lab, "");
    wait_for_log(
        &lab,
        "the engine at 192.0.2.20 is unreachable",
        Duration::from_secs(30),
    );
    assert_eq!(lab.json(&["status", "--json"])["engine_running"], false);
    assert!(lab.health().is_none());
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    lab.wait_vm_status("Down", Duration::from_secs(10));

    // The same address with another prefix is not the site's network either.
    boot_appliance(
        &lab,
        "network-interfaces: |\n  auto eth0\n  iface eth0 inet static\n    address 192.0.2.20\n    netmask 255.255.0.0\n    gateway 192.0.2.1\n",
    );
    wait_for_log(&lab, "the guest has 192.0.2.20/16", Duration::from_secs(30));
    assert!(lab
        .tool("hosted-engine", &["--vm-poweroff"])
        .status
        .success());
    lab.wait_vm_status("Down", Duration::from_secs(10));

    // The seed the original tool wrote: the static block in meta-data.
    boot_appliance(
        &lab,
        "network-interfaces: |\n  auto eth0\n  iface eth0 inet static\n    address 192.0.2.20\n    network 192.0.2.0\n    netmask 255.255.255.0\n    broadcast 192.0.2.255\n    gateway 192.0.2.1\n    dns-nameservers 192.0.2.53\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab.health().unwrap_or_default().contains("DB Up") {
        assert!(
            Instant::now() < deadline,
            "the engine with its static address never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ifcfg = check(
        Command::new("debugfs")
            .args(["-R", "cat /etc/sysconfig/network-scripts/ifcfg-eth0"])
            .arg(format!("{}?offset=1048576", lab.engine_volume().display())),
    );
    assert!(
        ifcfg.contains("BOOTPROTO=\"static\"")
            && ifcfg.contains("IPADDR=\"192.0.2.20\"")
            && ifcfg.contains("DNS1=\"192.0.2.53\""),
        "{ifcfg}"
    );
}
