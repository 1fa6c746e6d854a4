//! The hosted-engine answers kept on the shared storage (`fhanswers.conf`): otopi's typed
//! `KEY=type:value` lines, and the engine VM network they describe.
//!
//! Sources: ovirt-hosted-engine-setup 2.0 `src/plugins/gr-he-common/core/remote_answerfile.py`
//! (reads section `[environment:default]` with ConfigParser, each value through otopi
//! `common.parseTypedValue`) and `vm/cloud_init.py` (cloudinitVMStaticCIDR as `ip/prefix`,
//! cloudinitVMDNS comma-separated, `False` when not set); the 4.2+ ansible deploy
//! (oVirt/ovirt-ansible-collection `roles/hosted_engine_setup/templates/fhanswers.conf.j2`)
//! stores `cloudinitVMStaticCIDR=str:<address>` without the prefix and `none:None` when the
//! engine VM uses DHCP.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The otopi section the answers live in (`otopicons.Const.CONFIG_SECTION_DEFAULT`).
const DEFAULT_SECTION: &str = "environment:default";

/// The keys of the engine VM network (ohostedcons CloudInit and NetworkEnv).
pub mod keys {
    /// Static address: `ip/prefix` (otopi deploy) or `ip` (ansible deploy); unset for DHCP.
    pub const STATIC_CIDR: &str = "OVEHOSTED_VM/cloudinitVMStaticCIDR";
    /// Name servers, comma-separated.
    pub const DNS: &str = "OVEHOSTED_VM/cloudinitVMDNS";
    /// Whether the host's address goes into the engine VM's `/etc/hosts`.
    pub const ETC_HOSTS: &str = "OVEHOSTED_VM/cloudinitVMETCHOSTS";
    /// The engine VM's DNS domain.
    pub const DOMAIN: &str = "OVEHOSTED_VM/cloudinitInstanceDomainName";
    /// The engine VM's MAC address.
    pub const MAC: &str = "OVEHOSTED_VM/vmMACAddr";
    /// The default gateway of the management network.
    pub const GATEWAY: &str = "OVEHOSTED_NETWORK/gateway";
}

/// A problem with the answers file.
#[derive(Debug, thiserror::Error)]
pub enum AnswersError {
    /// A line is neither a section, a comment nor `KEY=value`.
    #[error("{source_name} line {line}: {text:?} is not KEY=type:value")]
    Syntax {
        source_name: String,
        line: usize,
        text: String,
    },
    /// A value has an unknown otopi type or a value its type refuses.
    #[error("{source_name}: {key}={value} is not a valid otopi typed value ({why})")]
    Value {
        source_name: String,
        key: String,
        value: String,
        why: String,
    },
    /// The network keys do not describe a usable network.
    #[error("{source_name}: {key}={value}: {why}")]
    Network {
        source_name: String,
        key: String,
        value: String,
        why: String,
    },
}

/// One typed otopi value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `str:...` (or an untyped value).
    Text(String),
    /// `int:...`.
    Integer(i64),
    /// `bool:True|False`.
    Boolean(bool),
    /// `none:None`.
    Nothing,
}

impl Answer {
    /// The text, or None for `none`, `bool:False` and empty strings (how otopi stores "unset").
    fn as_set_text(&self) -> Option<&str> {
        match self {
            Answer::Text(text) if !text.trim().is_empty() => Some(text.trim()),
            _ => None,
        }
    }
}

/// The `[environment:default]` answers of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// What the answers were read from, for messages.
    source_name: String,
    values: BTreeMap<String, Answer>,
}

impl Answers {
    /// Parses an otopi answer file; only `[environment:default]` is kept.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, AnswersError> {
        let mut section = String::new();
        let mut values = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(AnswersError::Syntax {
                    source_name: source_name.into(),
                    line: index + 1,
                    text: line.into(),
                });
            };
            if section == DEFAULT_SECTION {
                let (key, value) = (key.trim(), value.trim());
                let typed = typed_value(value).map_err(|why| AnswersError::Value {
                    source_name: source_name.into(),
                    key: key.into(),
                    value: value.into(),
                    why,
                })?;
                values.insert(key.to_string(), typed);
            }
        }
        Ok(Self {
            source_name: source_name.into(),
            values,
        })
    }

    /// The answer of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Answer> {
        self.values.get(key)
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Answer::as_set_text)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Answer::Boolean(true)))
    }

    fn invalid(&self, key: &str, value: &str, why: &str) -> AnswersError {
        AnswersError::Network {
            source_name: self.source_name.clone(),
            key: key.into(),
            value: value.into(),
            why: why.into(),
        }
    }

    fn address(&self, key: &str, value: &str) -> Result<Ipv4Addr, AnswersError> {
        if value.contains(':') {
            return Err(self.invalid(
                key,
                value,
                "an IPv6 engine VM address is not supported by this collection",
            ));
        }
        value
            .parse()
            .map_err(|_| self.invalid(key, value, "not an IPv4 address"))
    }

    /// The engine VM network the answers describe.
    pub fn engine_network(&self) -> Result<EngineNetwork, AnswersError> {
        let addressing = match self.text(keys::STATIC_CIDR) {
            None => Addressing::Dhcp,
            Some(cidr) => {
                let (ip, prefix) = match cidr.split_once('/') {
                    Some((ip, prefix)) => {
                        let ip = self.address(keys::STATIC_CIDR, ip)?;
                        let prefix =
                            prefix
                                .parse::<u8>()
                                .ok()
                                .filter(|p| *p <= 32)
                                .ok_or_else(|| {
                                    self.invalid(keys::STATIC_CIDR, cidr, "the prefix is not 0-32")
                                })?;
                        (ip, Some(prefix))
                    }
                    None => (self.address(keys::STATIC_CIDR, cidr)?, None),
                };
                let gateway = self
                    .text(keys::GATEWAY)
                    .map(|gateway| self.address(keys::GATEWAY, gateway))
                    .transpose()?;
                let dns = self
                    .text(keys::DNS)
                    .map(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|server| self.address(keys::DNS, server))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                Addressing::Static {
                    ip,
                    prefix,
                    gateway,
                    dns,
                }
            }
        };
        Ok(EngineNetwork {
            addressing,
            etc_hosts: self.flag(keys::ETC_HOSTS),
            domain: self.text(keys::DOMAIN).map(str::to_string),
            mac: self.text(keys::MAC).map(str::to_string),
        })
    }
}

/// otopi `common.parseTypedValue`: `type:value` with type none, bool, int or str; a value
/// without a known type prefix is a string.
fn typed_value(value: &str) -> Result<Answer, String> {
    let Some((kind, rest)) = value.split_once(':') else {
        return Ok(Answer::Text(value.to_string()));
    };
    match kind {
        "str" => Ok(Answer::Text(rest.to_string())),
        "none" => Ok(Answer::Nothing),
        "int" => rest
            .parse()
            .map(Answer::Integer)
            .map_err(|_| "int: wants an integer".to_string()),
        "bool" => match rest.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Answer::Boolean(true)),
            "false" | "no" | "0" => Ok(Answer::Boolean(false)),
            _ => Err("bool: wants True or False".into()),
        },
        "multi-str" => Ok(Answer::Text(rest.to_string())),
        other => Err(format!("unknown type '{other}'")),
    }
}

/// How the engine VM gets its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Addressing {
    /// From a DHCP server (nothing in the answers).
    Dhcp,
    /// A static IPv4 address.
    Static {
        /// Address.
        ip: Ipv4Addr,
        /// Prefix length; None when the answers hold the bare address (ansible deploy).
        prefix: Option<u8>,
        /// Default gateway.
        gateway: Option<Ipv4Addr>,
        /// Name servers.
        dns: Vec<Ipv4Addr>,
    },
}

/// The engine VM network as the deploy recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineNetwork {
    /// DHCP or static.
    pub addressing: Addressing,
    /// Add the host's address to the engine VM's `/etc/hosts`.
    pub etc_hosts: bool,
    /// DNS domain of the engine VM.
    pub domain: Option<String>,
    /// MAC address of the engine VM.
    pub mac: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The network lines of an otopi 2.0 deploy (cloud_init.py, constants.py key names).
    const OTOPI_STATIC: &str = "[environment:default]\n\
        OVEHOSTED_CORE/screenProceed=bool:True\n\
        OVEHOSTED_NETWORK/gateway=str:192.0.2.1\n\
        OVEHOSTED_NETWORK/fqdn=str:engine.example.com\n\
        OVEHOSTED_VM/vmMACAddr=str:00:16:3e:6a:7b:8c\n\
        OVEHOSTED_VM/cloudinitVMStaticCIDR=str:192.0.2.20/24\n\
        OVEHOSTED_VM/cloudinitVMDNS=str:192.0.2.53,192.0.2.54\n\
        OVEHOSTED_VM/cloudinitVMETCHOSTS=bool:True\n\
        OVEHOSTED_VM/cloudinitInstanceDomainName=str:example.com\n\
        OVEHOSTED_VM/vmMemSizeMB=int:4096\n";

    #[test]
    fn reads_a_static_network_of_the_otopi_deploy() {
        let answers = Answers::parse("fhanswers.conf", OTOPI_STATIC).unwrap();
        assert_eq!(
            answers.get("OVEHOSTED_VM/vmMemSizeMB"),
            Some(&Answer::Integer(4096))
        );
        assert_eq!(
            answers.engine_network().unwrap(),
            EngineNetwork {
                addressing: Addressing::Static {
                    ip: "192.0.2.20".parse().unwrap(),
                    prefix: Some(24),
                    gateway: Some("192.0.2.1".parse().unwrap()),
                    dns: vec!["192.0.2.53".parse().unwrap(), "192.0.2.54".parse().unwrap()],
                },
                etc_hosts: true,
                domain: Some("example.com".into()),
                mac: Some("00:16:3e:6a:7b:8c".into()),
            }
        );
    }

    #[test]
    fn the_ansible_deploy_keeps_the_bare_address() {
        let text = "[environment:default]\nOVEHOSTED_NETWORK/gateway=str:192.0.2.1\n\
            OVEHOSTED_VM/cloudinitVMStaticCIDR=str:192.0.2.20\n\
            OVEHOSTED_VM/cloudinitVMDNS=str:192.0.2.53\nOVEHOSTED_VM/cloudinitVMETCHOSTS=bool:False\n\
            OVEHOSTED_VM/cloudinitInstanceDomainName=none:None\n";
        let network = Answers::parse("x", text).unwrap().engine_network().unwrap();
        assert!(matches!(
            network.addressing,
            Addressing::Static { prefix: None, .. }
        ));
        assert!(!network.etc_hosts && network.domain.is_none());
    }

    #[test]
    fn unset_address_means_dhcp() {
        for unset in ["none:None", "bool:False", "str:"] {
            let text = format!(
                "[environment:default]\nOVEHOSTED_VM/cloudinitVMStaticCIDR={unset}\nOVEHOSTED_VM/cloudinitVMDNS=bool:False\n"
            );
            let network = Answers::parse("x", &text)
                .unwrap()
                .engine_network()
                .unwrap();
            assert_eq!(network.addressing, Addressing::Dhcp, "{unset}");
        }
    }

    #[test]
    fn other_sections_are_ignored() {
        let text = "[environment:init]\nOVEHOSTED_VM/cloudinitVMStaticCIDR=str:10.0.0.1/8\n";
        let network = Answers::parse("x", text).unwrap().engine_network().unwrap();
        assert_eq!(network.addressing, Addressing::Dhcp);
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad_type = Answers::parse("fh", "[environment:default]\nA/b=float:1.0\n").unwrap_err();
        assert!(bad_type.to_string().contains("A/b"), "{bad_type}");
        let no_equals = Answers::parse("fh", "[environment:default]\nnonsense\n").unwrap_err();
        assert!(no_equals.to_string().contains("line 2"), "{no_equals}");
        for (cidr, why) in [
            ("192.0.2.20/33", "prefix"),
            ("engine/24", "IPv4"),
            ("fd00::20/64", "IPv6"),
        ] {
            let text =
                format!("[environment:default]\nOVEHOSTED_VM/cloudinitVMStaticCIDR=str:{cidr}\n");
            let error = Answers::parse("fh", &text)
                .unwrap()
                .engine_network()
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("cloudinitVMStaticCIDR") && error.contains(why),
                "{error}"
            );
        }
    }
}
