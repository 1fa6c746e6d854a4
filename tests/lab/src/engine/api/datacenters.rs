//! `datacenters[/{id}]` and the attached storage domains under a data center.

use crate::engine::api::context::{method_not_allowed, not_found, search_matches, ApiCall};
use crate::engine::api::{clusters, disks, storagedomains, unregistered};
use crate::engine::db::DataCenter;
use crate::engine::http::Reply;
use crate::engine::xml::XmlWriter;

/// Handles `datacenters[/{id}[/...]]`.
pub fn handle(call: &mut ApiCall, rest: &[&str]) -> Reply {
    let method = call.request.method.clone();
    match (method.as_str(), rest) {
        ("GET", []) => list(call),
        (_, []) => method_not_allowed(),
        (_, [id, ..]) if call.view.data_center(id).is_none() => not_found(),
        ("GET" | "PUT", [id]) => {
            let mut xml = XmlWriter::new();
            write(
                call,
                &mut xml,
                call.view.data_center(id).expect("checked above"),
            );
            Reply::xml(200, xml.finish())
        }
        ("GET", [id, "clusters"]) => {
            let mut xml = XmlWriter::new();
            xml.open("clusters", &[]);
            for cluster in call
                .view
                .clusters
                .iter()
                .filter(|c| c.data_center_id == *id)
            {
                clusters::write(call, &mut xml, cluster);
            }
            xml.close("clusters");
            Reply::xml(200, xml.finish())
        }
        ("GET", [id, "storagedomains"]) => {
            let mut xml = XmlWriter::new();
            xml.open("storage_domains", &[]);
            for sd in call
                .view
                .storage_domains
                .iter()
                .filter(|s| s.data_center_id == *id)
            {
                storagedomains::write(call, &mut xml, sd, true);
            }
            xml.close("storage_domains");
            Reply::xml(200, xml.finish())
        }
        ("GET", [id, "storagedomains", sd_id]) => {
            match call
                .view
                .storage_domain(sd_id)
                .filter(|sd| sd.data_center_id == *id)
            {
                Some(sd) => {
                    let mut xml = XmlWriter::new();
                    storagedomains::write(call, &mut xml, sd, true);
                    Reply::xml(200, xml.finish())
                }
                None => not_found(),
            }
        }
        ("GET", [id, "storagedomains", sd_id, "disks"]) => {
            if call
                .view
                .storage_domain(sd_id)
                .map(|sd| sd.data_center_id.as_str())
                != Some(*id)
            {
                return not_found();
            }
            if call.flag("unregistered") {
                unregistered::list(call, sd_id)
            } else {
                disks::list(call, Some(sd_id))
            }
        }
        ("POST", [_, "storagedomains", sd_id, "disks", disk_id, "register"])
            if !call.dialect.v3 =>
        {
            let sd_id = sd_id.to_string();
            let disk_id = disk_id.to_string();
            unregistered::register_action(call, &sd_id, &disk_id)
        }
        (_, [_] | [_, "clusters" | "storagedomains"] | [_, "storagedomains", _]) => {
            method_not_allowed()
        }
        _ => not_found(),
    }
}

fn list(call: &ApiCall) -> Reply {
    let mut xml = XmlWriter::new();
    xml.open("data_centers", &[]);
    for dc in &call.view.data_centers {
        let matches = search_matches(call.request.query_param("search"), |field| match field {
            "name" => Some(dc.name.clone()),
            "id" => Some(dc.id.clone()),
            "status" => Some(dc.status.clone()),
            _ => None,
        });
        match matches {
            Ok(true) => write(call, &mut xml, dc),
            Ok(false) => {}
            Err(reply) => return reply,
        }
    }
    xml.close("data_centers");
    Reply::xml(200, xml.finish())
}

/// Writes one `<data_center>` in the call's dialect.
fn write(call: &ApiCall, xml: &mut XmlWriter, dc: &DataCenter) {
    let dialect = &call.dialect;
    let href = dialect.href(&format!("datacenters/{}", dc.id));
    xml.open("data_center", &[("href", &href), ("id", &dc.id)]);
    xml.leaf("name", &dc.name);
    xml.leaf("description", "The default Data Center");
    for rel in [
        "storagedomains",
        "clusters",
        "networks",
        "permissions",
        "quotas",
    ] {
        xml.empty("link", &[("href", &format!("{href}/{rel}")), ("rel", rel)]);
    }
    xml.leaf("local", false);
    xml.leaf("storage_format", &dc.storage_format);
    dialect.version(xml, dc.version.major, dc.version.minor);
    xml.open("supported_versions", &[]);
    dialect.version(xml, dc.version.major, dc.version.minor);
    xml.close("supported_versions");
    dialect.status(xml, "status", &dc.status);
    xml.leaf("quota_mode", "disabled");
    xml.close("data_center");
}
