//! `he_maintenance`: global maintenance, where the engine VM runs, and the engine disk ids.

use crate::host::vm_status::{HostState, VmStatus};
use crate::host::{HeConf, Volume};
use serde::Serialize;

/// The `ansible_facts.he_maintenance` document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MaintenanceFacts {
    /// Cluster-wide global maintenance is on.
    pub global_maintenance: bool,
    /// This host's HA id (hosted-engine.conf `host_id`).
    pub local_host_id: u32,
    /// This host's hardware UUID (vdsm `systemUUID`), how the engine knows the host.
    pub host_uuid: String,
    /// Engine VM id.
    pub vm_id: String,
    /// Some host reports the engine VM up.
    pub vm_up: bool,
    /// The engine VM is up on this host.
    pub vm_here: bool,
    /// HA id of the host running the engine VM, if any.
    pub vm_host_id: Option<u32>,
    /// Name of the host running the engine VM, if any.
    pub vm_host_name: Option<String>,
    /// Every host as the HA agents report them.
    pub hosts: Vec<HostState>,
    /// Hosted-engine storage domain id.
    pub sd_id: String,
    /// Storage pool id as hosted-engine.conf holds it.
    pub sp_id: String,
    /// The engine VM disk.
    pub engine_disk: Volume,
    /// Engine VM FQDN.
    pub fqdn: String,
}

impl MaintenanceFacts {
    /// Combines the HA status, hosted-engine.conf and the host's hardware UUID.
    pub fn gather(
        status: &VmStatus,
        conf: &HeConf,
        host_uuid: String,
    ) -> Result<Self, crate::host::he_conf::HeConfError> {
        let local_host_id = conf.host_id()?;
        let engine_host = status.engine_vm_host();
        Ok(Self {
            global_maintenance: status.global_maintenance,
            local_host_id,
            host_uuid,
            vm_id: conf.vm_id()?.to_string(),
            vm_up: engine_host.is_some(),
            vm_here: engine_host.is_some_and(|host| host.host_id == local_host_id),
            vm_host_id: engine_host.map(|host| host.host_id),
            vm_host_name: engine_host.map(|host| host.hostname.clone()),
            hosts: status.hosts.clone(),
            sd_id: conf.sd_id()?.to_string(),
            sp_id: conf.sp_id().to_string(),
            engine_disk: conf.engine_disk()?,
            fqdn: conf.fqdn()?.to_string(),
        })
    }

    /// One line for the operator: maintenance and where the engine VM is.
    pub fn summary(&self) -> String {
        let maintenance = if self.global_maintenance { "on" } else { "off" };
        let vm = match (&self.vm_host_name, self.vm_here) {
            (_, true) => "up on this host".to_string(),
            (Some(name), false) => format!(
                "up on {name} (HA host {})",
                self.vm_host_id.unwrap_or_default()
            ),
            (None, _) => "down".to_string(),
        };
        format!("global maintenance {maintenance}; engine VM {vm}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CONF: &str = "fqdn=engine.example.com\nvm_disk_id=2b8c9c3e-6c2d-4a8e-9d0a-5f1a2b3c4d5e\n\
vm_disk_vol_id=7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b\nvmid=4c1e7b4f-3e9c-4d5e-a6b7-c8d9e0f1a2b3\n\
host_id=2\nspUUID=00000000-0000-0000-0000-000000000000\nsdUUID=9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d\n";

    fn status(vm_on: Option<u32>, global: bool) -> VmStatus {
        let host = |id: u32| {
            let vm = if vm_on == Some(id) {
                r#"{"vm": "up", "health": "good", "detail": "Up"}"#
            } else {
                r#"{"vm": "down", "health": "bad", "detail": "unknown", "reason": "vm not running on this host"}"#
            };
            format!(
                r#""{id}": {{"host-id": {id}, "score": 3400, "engine-status": {vm}, "hostname": "host{id}", "maintenance": false, "stopped": false, "live-data": true}}"#
            )
        };
        VmStatus::parse(&format!(
            "{{{}, {}, \"global_maintenance\": {global}}}",
            host(1),
            host(2)
        ))
        .unwrap()
    }

    fn facts(vm_on: Option<u32>, global: bool) -> MaintenanceFacts {
        let conf = HeConf::parse(Path::new("/he.conf"), CONF);
        MaintenanceFacts::gather(&status(vm_on, global), &conf, "uuid-1".into()).unwrap()
    }

    #[test]
    fn engine_vm_on_this_host() {
        let facts = facts(Some(2), true);
        assert!(facts.vm_up && facts.vm_here);
        assert_eq!(facts.vm_host_id, Some(2));
        assert_eq!(
            facts.summary(),
            "global maintenance on; engine VM up on this host"
        );
        assert_eq!(
            facts.engine_disk.volume_id,
            "7e1f4a2b-0c3d-4e5f-8a9b-1c2d3e4f5a6b"
        );
    }

    #[test]
    fn engine_vm_on_another_host() {
        let facts = facts(Some(1), false);
        assert!(facts.vm_up && !facts.vm_here);
        assert_eq!(
            facts.summary(),
            "global maintenance off; engine VM up on host1 (HA host 1)"
        );
    }

    #[test]
    fn engine_vm_down() {
        let facts = facts(None, true);
        assert!(!facts.vm_up && !facts.vm_here);
        assert_eq!(facts.vm_host_id, None);
    }
}
