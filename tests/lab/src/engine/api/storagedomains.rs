//! `storagedomains[/{id}]` and `storagedomains/{id}/disks[...]`: space numbers that follow
//! the disks, and the disk sub-collection (registered or `unregistered`).

use crate::engine::api::context::{method_not_allowed, not_found, search_matches, ApiCall};
use crate::engine::api::{disks, unregistered};
use crate::engine::db::StorageDomain;
use crate::engine::http::Reply;
use crate::engine::xml::XmlWriter;

const GIB: u64 = 1 << 30;

/// Handles `storagedomains[/{id}[/disks[/{disk}]]]`.
pub fn handle(call: &mut ApiCall, rest: &[&str]) -> Reply {
    let method = call.request.method.clone();
    match (method.as_str(), rest) {
        ("GET", []) => list(call),
        (_, []) => method_not_allowed(),
        (_, [id, ..]) if call.view.storage_domain(id).is_none() => not_found(),
        ("GET", [id]) => {
            let sd = call.view.storage_domain(id).expect("checked above");
            let mut xml = XmlWriter::new();
            write(call, &mut xml, sd, false);
            Reply::xml(200, xml.finish())
        }
        (_, [_]) => method_not_allowed(),
        ("GET", [id, "disks"]) => {
            if call.flag("unregistered") {
                unregistered::list(call, id)
            } else {
                disks::list(call, Some(id))
            }
        }
        ("POST", [id, "disks"]) => {
            let id = id.to_string();
            if call.flag("unregistered") {
                unregistered::register_by_post(call, &id)
            } else {
                disks::add(call, Some(&id))
            }
        }
        ("GET", [id, "disks", disk_id]) => disks::get(call, disk_id, Some(id)),
        ("DELETE", [id, "disks", disk_id]) => {
            if call
                .view
                .disk(disk_id)
                .is_some_and(|d| d.storage_domain_id == *id)
            {
                let disk_id = disk_id.to_string();
                disks::remove(call, &disk_id)
            } else {
                not_found()
            }
        }
        (_, [_, "disks"] | [_, "disks", _]) => method_not_allowed(),
        _ => not_found(),
    }
}

fn list(call: &ApiCall) -> Reply {
    let mut xml = XmlWriter::new();
    xml.open("storage_domains", &[]);
    for sd in &call.view.storage_domains {
        let matches = search_matches(call.request.query_param("search"), |field| match field {
            "name" => Some(sd.name.clone()),
            "id" => Some(sd.id.clone()),
            "type" => Some(sd.domain_type.clone()),
            "datacenter" => call
                .view
                .data_center(&sd.data_center_id)
                .map(|d| d.name.clone()),
            _ => None,
        });
        match matches {
            Ok(true) => write(call, &mut xml, sd, false),
            Ok(false) => {}
            Err(reply) => return reply,
        }
    }
    xml.close("storage_domains");
    Reply::xml(200, xml.finish())
}

/// `(available, used, committed)` bytes in whole GiB as the engine reports them:
/// available = capacity - provisioned sizes of the disks on it (zero under `sd_low_space`).
pub fn space(call: &ApiCall, sd: &StorageDomain) -> (u64, u64, u64) {
    let committed = call.view.committed_bytes(&sd.id);
    let capacity_gib = sd.capacity_bytes / GIB;
    let committed_gib = committed.div_ceil(GIB);
    let mut available_gib = sd.capacity_bytes.saturating_sub(committed) / GIB;
    if call.faults.sd_low_space && sd.id == call.config.sd_id {
        available_gib = 0;
    }
    let used_gib = capacity_gib.saturating_sub(available_gib);
    (available_gib * GIB, used_gib * GIB, committed_gib * GIB)
}

/// Writes one `<storage_domain>`; `attached` = as seen under `datacenters/{dc}` (with status).
pub fn write(call: &ApiCall, xml: &mut XmlWriter, sd: &StorageDomain, attached: bool) {
    let dialect = &call.dialect;
    let href = if attached {
        dialect.href(&format!(
            "datacenters/{}/storagedomains/{}",
            sd.data_center_id, sd.id
        ))
    } else {
        dialect.href(&format!("storagedomains/{}", sd.id))
    };
    xml.open("storage_domain", &[("href", &href), ("id", &sd.id)]);
    xml.leaf("name", &sd.name);
    for rel in [
        "disks",
        "permissions",
        "storageconnections",
        "disksnapshots",
    ] {
        let link = dialect.href(&format!("storagedomains/{}/{rel}", sd.id));
        xml.empty("link", &[("href", &link), ("rel", rel)]);
    }
    if attached {
        dialect.reference(xml, "data_center", "datacenters", &sd.data_center_id);
    }
    xml.open("data_centers", &[]);
    dialect.reference(xml, "data_center", "datacenters", &sd.data_center_id);
    xml.close("data_centers");
    xml.leaf("type", &sd.domain_type);
    if attached {
        dialect.status(xml, "status", &sd.status);
    }
    xml.leaf("master", sd.master);
    xml.open("storage", &[])
        .leaf("type", &sd.storage_type)
        .leaf("address", &sd.address)
        .leaf("path", &sd.path)
        .close("storage");
    let (available, used, committed) = space(call, sd);
    xml.leaf("available", available)
        .leaf("used", used)
        .leaf("committed", committed)
        .leaf("storage_format", &sd.storage_format)
        .leaf("wipe_after_delete", false)
        .leaf("warning_low_space_indicator", 10)
        .leaf("critical_space_action_blocker", 5);
    xml.close("storage_domain");
}
