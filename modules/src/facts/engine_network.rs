//! `he_maintenance.engine_network`: the engine VM network to give the new appliance, from the
//! answers the deploy stored on the shared storage, completed with this host's management
//! address (the prefix the ansible deploy did not store, the host's `/etc/hosts` entry).

use crate::host::answers::{Addressing, Answers, AnswersError, EngineNetwork};
use crate::host::conf_volume::{self, ConfVolumeError, ANSWERS_MEMBER};
use crate::host::he_conf::{HeConf, HeConfError};
use crate::host::vdsm::{Vdsm, VdsmError};
use crate::privilege::Access;
use serde::Serialize;
use std::net::Ipv4Addr;

/// What the answers need from this host, known only after they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostNeeds {
    /// The host's management address is needed (prefix or `/etc/hosts` entry).
    pub management_address: bool,
}

/// The needs of `network`.
pub fn needs(network: &EngineNetwork) -> HostNeeds {
    let missing_prefix = matches!(network.addressing, Addressing::Static { prefix: None, .. });
    HostNeeds {
        management_address: missing_prefix || network.etc_hosts,
    }
}

/// This host as the engine VM's `/etc/hosts` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEntry {
    /// This host's name (as its HA agent reports it).
    pub fqdn: String,
    /// Its address on the management network.
    pub ip: Ipv4Addr,
}

/// The facts: `static` is what he_cloudinit's `network` option takes (null: DHCP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineNetworkFacts {
    /// `dhcp` or `static`.
    pub mode: &'static str,
    /// The static configuration, ready for he_cloudinit.
    #[serde(rename = "static")]
    pub static_network: Option<StaticNetworkFacts>,
    /// This host's `/etc/hosts` entry for the engine VM, when the deploy asked for one.
    pub host_entry: Option<HostEntry>,
    /// The engine VM's DNS domain (answers).
    pub domain: Option<String>,
    /// Where the answers came from.
    pub source: String,
}

/// he_cloudinit's `network` option, serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticNetworkFacts {
    /// Address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Name servers.
    pub dns: Vec<Ipv4Addr>,
    /// DNS search domains (the engine VM's domain).
    pub search: Vec<String>,
}

/// Why the engine VM network cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum EngineNetworkError {
    /// hosted-engine.conf is incomplete.
    #[error(transparent)]
    HeConf(#[from] HeConfError),
    /// vdsm failed (preparing the volume, the host's networks).
    #[error(transparent)]
    Vdsm(#[from] VdsmError),
    /// The configuration volume cannot be read.
    #[error(transparent)]
    ConfVolume(#[from] ConfVolumeError),
    /// The answers are malformed.
    #[error(transparent)]
    Answers(#[from] AnswersError),
    /// A static address without prefix, and the host cannot tell it.
    #[error("the answers on the shared storage give the engine VM address {ip} without a prefix length, and {why}; the engine VM must be in the host's management network ({bridge})")]
    NoPrefix {
        ip: Ipv4Addr,
        bridge: String,
        why: String,
    },
}

/// Reads the answers from the configuration volume (prepared through vdsm, read with
/// `access`, never written) and completes them from this host; None on hosts whose
/// hosted-engine.conf names no configuration volume (deployed before 3.6).
pub fn gather(
    vdsm: &Vdsm,
    access: &Access,
    conf: &HeConf,
    host_name: Option<&str>,
) -> Result<Option<EngineNetworkFacts>, EngineNetworkError> {
    let Some(volume) = conf.conf_volume()? else {
        return Ok(None);
    };
    let path = vdsm.prepare_image(conf.sp_id(), &volume)?;
    let text = conf_volume::read_member(&path, access, ANSWERS_MEMBER)?;
    let source = format!(
        "{ANSWERS_MEMBER} on the configuration volume {}",
        path.display()
    );
    let network = Answers::parse(&source, &text)?.engine_network()?;
    let management = match needs(&network).management_address {
        true => vdsm.network_address(conf.bridge())?,
        false => None,
    };
    Ok(Some(facts(
        &network,
        management,
        conf.bridge(),
        host_name,
        source,
    )?))
}

/// Completes `network` with this host's `management` address (`address/prefix` on `bridge`)
/// and name.
pub fn facts(
    network: &EngineNetwork,
    management: Option<(Ipv4Addr, u8)>,
    bridge: &str,
    host_name: Option<&str>,
    source: String,
) -> Result<EngineNetworkFacts, EngineNetworkError> {
    let static_network = match &network.addressing {
        Addressing::Dhcp => None,
        Addressing::Static {
            ip,
            prefix,
            gateway,
            dns,
        } => {
            let prefix = match (prefix, management) {
                (Some(prefix), _) => *prefix,
                (None, Some((host_ip, host_prefix))) if same_subnet(*ip, host_ip, host_prefix) => {
                    host_prefix
                }
                (None, Some((host_ip, host_prefix))) => {
                    return Err(EngineNetworkError::NoPrefix {
                        ip: *ip,
                        bridge: bridge.into(),
                        why: format!("it is not in this host's network {host_ip}/{host_prefix}"),
                    })
                }
                (None, None) => {
                    return Err(EngineNetworkError::NoPrefix {
                        ip: *ip,
                        bridge: bridge.into(),
                        why: "this host has no IPv4 address there".into(),
                    })
                }
            };
            Some(StaticNetworkFacts {
                ip: *ip,
                prefix,
                gateway: *gateway,
                dns: dns.clone(),
                search: network.domain.iter().cloned().collect(),
            })
        }
    };
    let host_entry = match (network.etc_hosts, management, host_name) {
        (true, Some((ip, _)), Some(fqdn)) => Some(HostEntry {
            fqdn: fqdn.to_string(),
            ip,
        }),
        _ => None,
    };
    Ok(EngineNetworkFacts {
        mode: match static_network {
            Some(_) => "static",
            None => "dhcp",
        },
        static_network,
        host_entry,
        domain: network.domain.clone(),
        source,
    })
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(prefix: Option<u8>, etc_hosts: bool) -> EngineNetwork {
        EngineNetwork {
            addressing: Addressing::Static {
                ip: "192.0.2.20".parse().unwrap(),
                prefix,
                gateway: Some("192.0.2.1".parse().unwrap()),
                dns: vec!["192.0.2.53".parse().unwrap()],
            },
            etc_hosts,
            domain: Some("example.com".into()),
            mac: None,
        }
    }

    const HOST: Option<(Ipv4Addr, u8)> = Some((Ipv4Addr::new(192, 0, 2, 10), 24));

    #[test]
    fn the_prefix_comes_from_the_answers_or_the_host_network() {
        let given = facts(
            &network(Some(25), false),
            HOST,
            "ovirtmgmt",
            None,
            "x".into(),
        )
        .unwrap();
        assert_eq!(given.static_network.unwrap().prefix, 25);
        assert!(needs(&network(None, false)).management_address);
        assert!(!needs(&network(Some(24), false)).management_address);
        let derived = facts(&network(None, false), HOST, "ovirtmgmt", None, "x".into()).unwrap();
        assert_eq!(derived.mode, "static");
        assert_eq!(derived.static_network.unwrap().prefix, 24);
        let elsewhere = Some((Ipv4Addr::new(198, 51, 100, 10), 24));
        let error = facts(
            &network(None, false),
            elsewhere,
            "ovirtmgmt",
            None,
            "x".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("198.51.100.10/24"), "{error}");
    }

    #[test]
    fn the_host_entry_when_the_deploy_asked_for_it() {
        let with = facts(
            &network(Some(24), true),
            HOST,
            "b",
            Some("host1.example.com"),
            "x".into(),
        )
        .unwrap();
        assert_eq!(
            with.host_entry,
            Some(HostEntry {
                fqdn: "host1.example.com".into(),
                ip: "192.0.2.10".parse().unwrap()
            })
        );
        let without = facts(&network(Some(24), false), HOST, "b", Some("h"), "x".into()).unwrap();
        assert_eq!(without.host_entry, None);
    }

    #[test]
    fn dhcp_has_no_static_part() {
        let dhcp = EngineNetwork {
            addressing: Addressing::Dhcp,
            etc_hosts: false,
            domain: None,
            mac: None,
        };
        let facts = facts(&dhcp, None, "ovirtmgmt", None, "x".into()).unwrap();
        assert_eq!((facts.mode, &facts.static_network), ("dhcp", &None));
        let json = serde_json::to_value(&facts).unwrap();
        assert!(json["static"].is_null());
    }
}
