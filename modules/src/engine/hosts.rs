//! Hosts: who is SPM, and which engine host is this machine (by hardware UUID).

use super::client::Connection;
use super::error::EngineError;
use super::xml::Element;
use serde::Serialize;

/// A host as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Engine id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Status (`up`, `maintenance`, `non_responsive`, ...).
    pub status: String,
    /// Whether the host is the storage pool manager.
    pub is_spm: bool,
    /// Hardware UUID (vdsm `systemUUID`), when the engine knows it.
    pub hardware_uuid: Option<String>,
}

impl Host {
    /// Reads a `<host>`. SPM: v4 `<spm><status>spm`, v3 `<spm><status><state>spm` or the
    /// older `<storage_manager>true` (engine-api.md part 2 section 3).
    pub fn from_element(host: &Element) -> Option<Host> {
        let is_spm = match host.child("spm") {
            Some(spm) => spm.status() == Some("spm"),
            None => host.child_text("storage_manager") == Some("true"),
        };
        Some(Host {
            id: host.id()?.to_string(),
            name: host.child_text("name").unwrap_or("").to_string(),
            status: host.status().unwrap_or("unknown").to_string(),
            is_spm,
            hardware_uuid: host
                .child("hardware_information")
                .and_then(|hw| hw.child_text("uuid"))
                .map(str::to_string),
        })
    }
}

/// Every host.
pub fn list(engine: &mut Connection) -> Result<Vec<Host>, EngineError> {
    let hosts = engine.get("hosts")?;
    Ok(hosts
        .children_named("host")
        .filter_map(Host::from_element)
        .collect())
}

/// One host by id (`None` if it does not exist).
pub fn get(engine: &mut Connection, id: &str) -> Result<Option<Host>, EngineError> {
    Ok(engine
        .get_optional(&format!("hosts/{id}"))?
        .as_ref()
        .and_then(Host::from_element))
}

/// The host whose hardware UUID is `uuid` (case-insensitive, as dmidecode and the engine differ).
pub fn by_hardware_uuid<'a>(hosts: &'a [Host], uuid: &str) -> Option<&'a Host> {
    hosts.iter().find(|host| {
        host.hardware_uuid
            .as_deref()
            .is_some_and(|known| known.eq_ignore_ascii_case(uuid))
    })
}

/// The SPM host, if any.
pub fn spm(hosts: &[Host]) -> Option<&Host> {
    hosts.iter().find(|host| host.is_spm)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3_HOSTS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<hosts>
    <host href="/ovirt-engine/api/hosts/H1" id="H1">
        <name>host1</name>
        <address>host1.example.com</address>
        <status><state>up</state></status>
        <cluster href="/ovirt-engine/api/clusters/C1" id="C1"/>
        <storage_manager priority="5">false</storage_manager>
        <spm><priority>5</priority><status><state>none</state></status></spm>
        <hardware_information><uuid>4C4C4544-0042-3010-8056-B4C04F4A4E31</uuid></hardware_information>
    </host>
    <host href="/ovirt-engine/api/hosts/H2" id="H2">
        <name>host2</name>
        <status><state>up</state></status>
        <storage_manager priority="5">true</storage_manager>
        <spm><priority>5</priority><status><state>spm</state></status></spm>
        <hardware_information><uuid>11111111-2222-3333-4444-555555555555</uuid></hardware_information>
    </host>
</hosts>"#;

    const V4_HOSTS: &str = r#"<hosts><host href="/ovirt-engine/api/hosts/H1" id="H1"><name>host1</name><address>host1.example.com</address>
<hardware_information><uuid>4c4c4544-0042-3010-8056-b4c04f4a4e31</uuid></hardware_information>
<spm><priority>5</priority><status>spm</status></spm><status>up</status><cluster href=".." id="C1"/></host></hosts>"#;

    const OLD_HOST: &str = r#"<host id="H9"><name>old</name><status><state>maintenance</state></status><storage_manager priority="5">true</storage_manager></host>"#;

    fn parse(text: &str) -> Vec<Host> {
        Element::parse(text)
            .unwrap()
            .children_named("host")
            .filter_map(Host::from_element)
            .collect()
    }

    #[test]
    fn v3_finds_this_host_and_the_spm() {
        let hosts = parse(V3_HOSTS);
        let me = by_hardware_uuid(&hosts, "4c4c4544-0042-3010-8056-b4c04f4a4e31").unwrap();
        assert_eq!(me.name, "host1");
        assert!(!me.is_spm);
        assert_eq!(me.status, "up");
        assert_eq!(spm(&hosts).unwrap().name, "host2");
    }

    #[test]
    fn v4_spm_status_is_plain_text() {
        let hosts = parse(V4_HOSTS);
        assert!(hosts[0].is_spm);
        assert_eq!(hosts[0].status, "up");
        assert!(by_hardware_uuid(&hosts, "4C4C4544-0042-3010-8056-B4C04F4A4E31").is_some());
        assert!(by_hardware_uuid(&hosts, "00000000-0000-0000-0000-000000000000").is_none());
    }

    #[test]
    fn storage_manager_alone_still_tells_the_spm() {
        let host = Host::from_element(&Element::parse(OLD_HOST).unwrap()).unwrap();
        assert!(host.is_spm);
        assert_eq!(host.status, "maintenance");
        assert_eq!(host.hardware_uuid, None);
    }
}
