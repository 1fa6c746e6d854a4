//! `hosts` and `hosts/{id}`: status, SPM role, hardware UUID, hosted-engine details.

use crate::engine::api::context::{method_not_allowed, not_found, search_matches, ApiCall};
use crate::engine::db::Host;
use crate::engine::http::Reply;
use crate::engine::xml::XmlWriter;

/// Handles `hosts[/{id}]`.
pub fn handle(call: &mut ApiCall, rest: &[&str]) -> Reply {
    match (call.request.method.as_str(), rest) {
        ("GET", []) => list(call),
        // hosted-engine-setup 2.0 "updates" hosts by PUTting the entity back; echo it.
        ("GET" | "PUT", [id]) => match call.view.hosts.iter().find(|h| h.id == *id) {
            Some(host) => Reply::xml(200, document(call, host)),
            None => not_found(),
        },
        (_, [] | [_]) => method_not_allowed(),
        _ => not_found(),
    }
}

fn list(call: &ApiCall) -> Reply {
    let mut xml = XmlWriter::new();
    xml.open("hosts", &[]);
    for host in &call.view.hosts {
        let cluster = call.view.clusters.iter().find(|c| c.id == host.cluster_id);
        let data_center = cluster
            .and_then(|c| call.view.data_center(&c.data_center_id))
            .map(|dc| dc.name.clone());
        let matches = search_matches(call.request.query_param("search"), |field| match field {
            "name" => Some(host.name.clone()),
            "address" => Some(host.address.clone()),
            "status" => Some(host.status.clone()),
            "cluster" => cluster.map(|c| c.name.clone()),
            "datacenter" => data_center.clone(),
            "id" => Some(host.id.clone()),
            _ => None,
        });
        match matches {
            Ok(true) => write(call, &mut xml, host),
            Ok(false) => {}
            Err(reply) => return reply,
        }
    }
    xml.close("hosts");
    Reply::xml(200, xml.finish())
}

fn document(call: &ApiCall, host: &Host) -> String {
    let mut xml = XmlWriter::new();
    write(call, &mut xml, host);
    xml.finish()
}

/// Writes one `<host>` in the call's dialect.
fn write(call: &ApiCall, xml: &mut XmlWriter, host: &Host) {
    let dialect = &call.dialect;
    let href = dialect.href(&format!("hosts/{}", host.id));
    xml.open("host", &[("href", &href), ("id", &host.id)]);
    xml.leaf("name", &host.name);
    for rel in ["storage", "nics", "statistics", "permissions"] {
        xml.empty("link", &[("href", &format!("{href}/{rel}")), ("rel", rel)]);
    }
    xml.leaf("address", &host.address);
    dialect.status(xml, "status", &host.status);
    dialect.reference(xml, "cluster", "clusters", &host.cluster_id);
    xml.leaf("port", 54321).leaf("type", "rhel");
    let is_spm = host.spm_status == "spm";
    if dialect.v3 {
        xml.leaf_with(
            "storage_manager",
            &[("priority", &host.spm_priority.to_string())],
            is_spm,
        );
    }
    xml.open("spm", &[]).leaf("priority", host.spm_priority);
    dialect.status(xml, "status", &host.spm_status);
    xml.close("spm");
    xml.open("hardware_information", &[])
        .leaf("manufacturer", "Red Hat")
        .leaf("product_name", "RHEV Hypervisor")
        .leaf("uuid", &host.hardware_uuid)
        .leaf("family", "Red Hat Enterprise Linux")
        .close("hardware_information");
    if call.all_content() && host.hosted_engine_configured {
        let this_host = host.hardware_uuid == call.config.host_uuid;
        let report = crate::engine::ha::read(call.config);
        let local_maintenance = this_host && report.local_maintenance;
        let score = if host.status != "up" || local_maintenance {
            0
        } else {
            3400
        };
        xml.open("hosted_engine", &[])
            .leaf("configured", true)
            .leaf("active", this_host)
            .leaf("score", score)
            .leaf("global_maintenance", report.global_maintenance)
            .leaf("local_maintenance", local_maintenance)
            .close("hosted_engine");
    }
    xml.close("host");
}
