//! The NoCloud seed documents: `meta-data`, `user-data` (`#cloud-config`) and the
//! heanswers.conf it writes (reference original-tool §4, SPEC 9.4).

use super::error::SeedError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The virtio serial port the host reads (SPEC 9.5).
pub const CHANNEL_PORT: &str = "/dev/virtio-ports/org.ovirt.hosted-engine-setup.0";
/// Where the engine-setup answers are written inside the guest.
const ANSWERS_PATH: &str = "/root/heanswers.conf";
/// What stands for the password hash in user-data shown to the operator.
pub const HASH_MASK: &str = "********";

/// Everything the seed is made from.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The engine VM id (`instance-id`).
    pub vm_id: String,
    /// The engine FQDN (`local-hostname`, `OVESETUP_CONFIG/fqdn`).
    pub fqdn: String,
    /// `OVESETUP_PKI/organization`.
    pub organization: String,
    /// SHA-512 crypt hash of the root password.
    pub root_password_hash: Option<String>,
    /// An SSH public key for root.
    pub root_ssh_key: Option<String>,
    /// This host's `/etc/hosts` entry: (FQDN, IP).
    pub host: Option<(String, String)>,
    /// A static IPv4 configuration.
    pub network: Option<StaticNetwork>,
    /// Restore an engine backup then run engine-setup (None: plain first boot).
    pub restore: Option<Restore>,
    /// Extra otopi answers, already rendered `KEY=type:value`, sorted by key.
    pub answers: Vec<String>,
}

/// A static IPv4 address for the engine VM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticNetwork {
    /// Address.
    pub ip: Ipv4Addr,
    /// Prefix length (0-32).
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Name servers.
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// DNS search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// Guest interface name.
    #[serde(default = "default_interface")]
    pub interface: String,
}

fn default_interface() -> String {
    "eth0".into()
}

/// The restore step: the archive inside the guest and which extra databases it holds.
#[derive(Debug, Clone)]
pub struct Restore {
    /// Absolute path of the backup inside the guest.
    pub backup_path: String,
    /// Provision and restore the DWH database.
    pub dwh: bool,
    /// Provision and restore the Reports database.
    pub reports: bool,
}

/// The seed files as they go on the ISO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Documents {
    /// `meta-data`.
    pub meta_data: String,
    /// `user-data`.
    pub user_data: String,
}

/// `text` with every SHA-512 crypt hash (`$6$...`) replaced by [`HASH_MASK`].
pub fn mask_hashes(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$6$") {
        masked.push_str(&rest[..start]);
        masked.push_str(HASH_MASK);
        let hash = &rest[start..];
        let end = hash
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(hash.len());
        rest = &hash[end..];
    }
    masked.push_str(rest);
    masked
}

/// Renders one otopi answer (`KEY=type:value`) from an Ansible value.
pub fn answer(key: &str, value: &Value) -> Result<String, SeedError> {
    let bad = |why: &str| SeedError::Invalid {
        option: format!("answers.{key}"),
        why: why.into(),
    };
    let valid_key = key.split_once('/').is_some_and(|(section, name)| {
        [section, name]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    });
    if !valid_key {
        return Err(bad(
            "keys look like SECTION/name (letters, digits, underscores)",
        ));
    }
    let typed = match value {
        Value::Bool(true) => "bool:True".to_string(),
        Value::Bool(false) => "bool:False".to_string(),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("int:{n}"),
        Value::String(s) => format!("str:{}", single_line(s).map_err(bad)?),
        Value::Null => "none:None".to_string(),
        _ => return Err(bad("values are strings, integers, booleans or null")),
    };
    Ok(format!("{key}={typed}"))
}

/// Checks that a value fits on one line of a config file or shell command.
fn single_line(text: &str) -> Result<&str, &'static str> {
    match text.chars().any(char::is_control) {
        true => Err("control characters (newlines) are not allowed"),
        false => Ok(text),
    }
}

/// Checks a host name (letters, digits, `-`, `.`).
pub fn check_hostname(option: &str, name: &str) -> Result<(), SeedError> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    match valid {
        true => Ok(()),
        false => Err(SeedError::Invalid {
            option: option.into(),
            why: format!("{name:?} is not a host name"),
        }),
    }
}

/// Checks the inputs that end up in shell commands or YAML.
pub fn check(seed: &Seed) -> Result<(), SeedError> {
    let invalid = |option: &str, why: String| SeedError::Invalid {
        option: option.into(),
        why,
    };
    check_hostname("fqdn", &seed.fqdn)?;
    if seed.vm_id.is_empty()
        || !seed
            .vm_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(invalid(
            "vm_id",
            format!("{:?} is not a VM id (UUID)", seed.vm_id),
        ));
    }
    single_line(&seed.organization).map_err(|why| invalid("organization", why.into()))?;
    if let Some(key) = &seed.root_ssh_key {
        single_line(key).map_err(|why| invalid("root_ssh_key", why.into()))?;
    }
    if let Some((fqdn, ip)) = &seed.host {
        check_hostname("host_fqdn", fqdn)?;
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| invalid("host_ip", format!("{ip:?} is not an IP address")))?;
    }
    if let Some(network) = &seed.network {
        if network.prefix > 32 {
            return Err(invalid(
                "network.prefix",
                format!("{} is not an IPv4 prefix length (0-32)", network.prefix),
            ));
        }
        check_hostname("network.interface", &network.interface)?;
        for domain in &network.search {
            check_hostname("network.search", domain)?;
        }
    }
    if let Some(restore) = &seed.restore {
        let safe = restore.backup_path.starts_with('/')
            && !restore.backup_path.split('/').any(|p| p == "..")
            && restore
                .backup_path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b));
        if !safe {
            return Err(invalid(
                "backup_path",
                format!(
                    "{:?} must be an absolute path of letters, digits and /._-+",
                    restore.backup_path
                ),
            ));
        }
    }
    Ok(())
}

/// Renders the documents; `check` must have accepted `seed`.
pub fn render(seed: &Seed) -> Documents {
    Documents {
        meta_data: meta_data(seed),
        user_data: user_data(seed),
    }
}

/// The static network goes into meta-data as a Debian ENI `network-interfaces` block, as
/// ovirt-hosted-engine-setup 2.0 `vm/cloud_init.py` wrote it: cloud-init 0.7.5 of the EL7
/// appliances applies it (`distros/rhel.py` translates it to ifcfg) and knows no
/// `network-config` file, and cloud-init 18.5+ of the EL8 appliances still reads it (NoCloud
/// `network_config`: `eni.convert_eni_data`, rendered by the sysconfig renderer). Without it
/// the appliance keeps its DHCP configuration.
fn meta_data(seed: &Seed) -> String {
    let mut text = format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        seed.vm_id, seed.fqdn
    );
    if let Some(network) = &seed.network {
        let mask = Ipv4Addr::from(
            u32::MAX
                .checked_shl(32 - u32::from(network.prefix))
                .unwrap_or(0),
        );
        let net = Ipv4Addr::from(u32::from(network.ip) & u32::from(mask));
        let broadcast = Ipv4Addr::from(u32::from(net) | !u32::from(mask));
        text += &format!(
            "network-interfaces: |\n  auto {iface}\n  iface {iface} inet static\n    address {}\n    network {net}\n    netmask {mask}\n    broadcast {broadcast}\n",
            network.ip,
            iface = network.interface,
        );
        if let Some(gateway) = network.gateway {
            text += &format!("    gateway {gateway}\n");
        }
        if !network.dns.is_empty() {
            let servers: Vec<String> = network.dns.iter().map(Ipv4Addr::to_string).collect();
            text += &format!("    dns-nameservers {}\n", servers.join(" "));
        }
        if !network.search.is_empty() {
            text += &format!("    dns-search {}\n", network.search.join(" "));
        }
    }
    text
}

fn user_data(seed: &Seed) -> String {
    let mut text = String::from(
        "#cloud-config\n# vim: syntax=yaml\n# Written by ovirt_he.upgrade.he_cloudinit\n",
    );
    if let Some(hash) = &seed.root_password_hash {
        text +=
            &format!("ssh_pwauth: true\nchpasswd:\n  expire: false\n  list: |\n    root:{hash}\n");
    }
    if let Some(key) = &seed.root_ssh_key {
        text += &format!(
            "disable_root: false\nssh_authorized_keys:\n  - {}\n",
            quote(key)
        );
    }
    if seed.restore.is_some() {
        text += &format!(
            "write_files:\n  - path: {ANSWERS_PATH}\n    owner: root:root\n    permissions: '0640'\n    content: {}\n",
            quote(&heanswers(seed))
        );
    }
    text += "runcmd:\n";
    for command in runcmd(seed) {
        text += &format!("  - {}\n", quote(&command));
    }
    text
}

/// heanswers.conf: no admin password in the upgrade flow (reference §4).
fn heanswers(seed: &Seed) -> String {
    let mut text = format!(
        "[environment:init]\nDIALOG/autoAcceptDefault=bool:True\n[environment:default]\n\
         OVESETUP_CONFIG/fqdn=str:{}\nOVESETUP_PKI/organization=str:{}\n",
        seed.fqdn, seed.organization
    );
    for answer in &seed.answers {
        text += answer;
        text.push('\n');
    }
    text
}

/// The first-boot commands: cloud-init runs them as one shell script, so `$?` on a
/// marker line is the status of the command before it (reference §4).
fn runcmd(seed: &Seed) -> Vec<String> {
    let mut commands = Vec::new();
    if let Some((fqdn, ip)) = &seed.host {
        commands.push(format!(
            "grep -q ' {fqdn}$' /etc/hosts || echo '{ip} {fqdn}' >> /etc/hosts"
        ));
    }
    commands.push("systemctl restart sshd &".into());
    if let Some(restore) = &seed.restore {
        let mut restore_command = format!(
            "engine-backup --mode=restore --file={} --log=/root/engine_restore.log --restore-permissions --provision-db",
            restore.backup_path
        );
        if restore.dwh {
            restore_command += " --provision-dwh-db";
        }
        if restore.reports {
            restore_command += " --provision-reports-db";
        }
        commands.push(format!("{restore_command} 1>{CHANNEL_PORT} 2>&1"));
        commands.push(marker("RESTORE"));
        commands.push(format!(
            "/usr/bin/engine-setup --offline --config-append=/root/ovirt-engine-answers --config-append={ANSWERS_PATH} 1>{CHANNEL_PORT} 2>&1"
        ));
        commands.push(marker("SETUP"));
        commands.push(format!("rm {ANSWERS_PATH}"));
    }
    commands.push("systemctl mask cloud-init-local || chkconfig cloud-init-local off".into());
    commands.push(
        "systemctl mask cloud-init || ( chkconfig cloud-init off && chkconfig cloud-config off && chkconfig cloud-final off )".into(),
    );
    commands
}

fn marker(step: &str) -> String {
    format!(
        "if [ $? -eq 0 ]; then echo \"HE_APPLIANCE_ENGINE_{step}_SUCCESS\" >{CHANNEL_PORT}; else echo \"HE_APPLIANCE_ENGINE_{step}_FAIL\" >{CHANNEL_PORT}; fi"
    )
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quote(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// Sorted, rendered answers from the `answers` option.
pub fn answers(map: &serde_json::Map<String, Value>) -> Result<Vec<String>, SeedError> {
    let sorted: BTreeMap<&String, &Value> = map.iter().collect();
    sorted
        .into_iter()
        .map(|(key, value)| answer(key, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed() -> Seed {
        Seed {
            vm_id: "5b0a0c3e-6a3f-4c9b-9d8e-0e6f2b1c7a11".into(),
            fqdn: "engine.example.com".into(),
            organization: "example.com".into(),
            root_password_hash: Some("$6$salt$hash".into()),
            root_ssh_key: Some("ssh-ed25519 AAAAC3Nza root@host".into()),
            host: Some(("host1.example.com".into(), "192.0.2.10".into())),
            network: Some(StaticNetwork {
                ip: "192.0.2.20".parse().unwrap(),
                prefix: 24,
                gateway: Some("192.0.2.1".parse().unwrap()),
                dns: vec!["192.0.2.53".parse().unwrap()],
                search: vec!["example.com".into()],
                interface: "eth0".into(),
            }),
            restore: Some(Restore {
                backup_path: "/root/engine_backup.tar.gz".into(),
                dwh: true,
                reports: false,
            }),
            answers: vec!["OVESETUP_CORE/engineStop=bool:True".into()],
        }
    }

    #[test]
    fn user_data_restores_then_sets_up_with_markers() {
        let user_data = render(&seed()).user_data;
        assert!(user_data.starts_with("#cloud-config\n# vim: syntax=yaml\n"));
        assert!(user_data.contains("    root:$6$salt$hash\n"));
        let restore = "engine-backup --mode=restore --file=/root/engine_backup.tar.gz --log=/root/engine_restore.log --restore-permissions --provision-db --provision-dwh-db 1>/dev/virtio-ports/org.ovirt.hosted-engine-setup.0 2>&1";
        let setup = "/usr/bin/engine-setup --offline --config-append=/root/ovirt-engine-answers --config-append=/root/heanswers.conf";
        let restore_at = user_data.find(restore).expect(&user_data);
        let setup_at = user_data.find(setup).expect(&user_data);
        let restore_marker = user_data
            .find("HE_APPLIANCE_ENGINE_RESTORE_SUCCESS")
            .unwrap();
        let setup_marker = user_data.find("HE_APPLIANCE_ENGINE_SETUP_FAIL").unwrap();
        assert!(
            restore_at < restore_marker && restore_marker < setup_at && setup_at < setup_marker
        );
        assert!(!user_data.contains("--provision-reports-db"));
        assert!(user_data.contains(r#"content: "[environment:init]\nDIALOG/autoAcceptDefault=bool:True\n[environment:default]\nOVESETUP_CONFIG/fqdn=str:engine.example.com\nOVESETUP_PKI/organization=str:example.com\nOVESETUP_CORE/engineStop=bool:True\n""#), "{user_data}");
        assert!(user_data.contains("grep -q ' host1.example.com$' /etc/hosts || echo '192.0.2.10 host1.example.com' >> /etc/hosts"));
        assert!(user_data.contains("  - \"rm /root/heanswers.conf\"\n"));
    }

    #[test]
    fn plain_first_boot_has_no_engine_steps() {
        let plain = Seed {
            restore: None,
            root_password_hash: None,
            ..seed()
        };
        let user_data = render(&plain).user_data;
        assert!(!user_data.contains("engine-"), "{user_data}");
        assert!(!user_data.contains("chpasswd"));
        assert!(user_data.contains("systemctl mask cloud-init"));
    }

    #[test]
    fn meta_data_holds_identity_and_static_network() {
        assert_eq!(
            render(&seed()).meta_data,
            "instance-id: 5b0a0c3e-6a3f-4c9b-9d8e-0e6f2b1c7a11\nlocal-hostname: engine.example.com\n\
             network-interfaces: |\n  auto eth0\n  iface eth0 inet static\n    address 192.0.2.20\n    network 192.0.2.0\n    netmask 255.255.255.0\n    broadcast 192.0.2.255\n    gateway 192.0.2.1\n    dns-nameservers 192.0.2.53\n    dns-search example.com\n"
        );
    }

    #[test]
    fn dhcp_meta_data_has_no_network_block() {
        let dhcp = Seed {
            network: None,
            ..seed()
        };
        assert_eq!(
            render(&dhcp).meta_data,
            "instance-id: 5b0a0c3e-6a3f-4c9b-9d8e-0e6f2b1c7a11\nlocal-hostname: engine.example.com\n"
        );
    }

    #[test]
    fn masks_the_hash() {
        let masked = mask_hashes(&render(&seed()).user_data);
        assert!(
            !masked.contains("$6$salt$hash") && masked.contains("    root:********\n"),
            "{masked}"
        );
        assert_eq!(mask_hashes("a $6$x$y\"b $6$z"), "a ********\"b ********");
    }

    #[test]
    fn renders_typed_answers() {
        let map = json!({"OVESETUP_CONFIG/x": "a b", "A/b": 3, "A/c": false, "A/d": null});
        let map = map.as_object().unwrap();
        assert_eq!(
            answers(map).unwrap(),
            [
                "A/b=int:3",
                "A/c=bool:False",
                "A/d=none:None",
                "OVESETUP_CONFIG/x=str:a b"
            ]
        );
        assert!(answer("nosection", &json!(1))
            .unwrap_err()
            .to_string()
            .contains("answers.nosection"));
        assert!(answer("A/b", &json!("x\ny")).is_err());
        assert!(answer("A/b", &json!([1])).is_err());
    }

    #[test]
    fn refuses_inputs_that_would_break_commands() {
        let bad_path = Seed {
            restore: Some(Restore {
                backup_path: "/root/x; rm -rf /".into(),
                dwh: false,
                reports: false,
            }),
            ..seed()
        };
        assert!(check(&bad_path)
            .unwrap_err()
            .to_string()
            .contains("backup_path"));
        let bad_host = Seed {
            host: Some(("h'; reboot".into(), "192.0.2.1".into())),
            ..seed()
        };
        assert!(check(&bad_host)
            .unwrap_err()
            .to_string()
            .contains("host_fqdn"));
        let bad_ip = Seed {
            host: Some(("h.example.com".into(), "nope".into())),
            ..seed()
        };
        assert!(check(&bad_ip).unwrap_err().to_string().contains("host_ip"));
        assert!(check(&seed()).is_ok());
    }
}
