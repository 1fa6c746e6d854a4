//! `clusters` and `clusters/{id}`: compatibility version and data center.

use crate::engine::api::context::{method_not_allowed, not_found, search_matches, ApiCall};
use crate::engine::db::Cluster;
use crate::engine::http::Reply;
use crate::engine::xml::XmlWriter;

/// Handles `clusters[/{id}]`.
pub fn handle(call: &mut ApiCall, rest: &[&str]) -> Reply {
    match (call.request.method.as_str(), rest) {
        ("GET", []) => {
            let mut xml = XmlWriter::new();
            xml.open("clusters", &[]);
            for cluster in &call.view.clusters {
                let matches =
                    search_matches(call.request.query_param("search"), |field| match field {
                        "name" => Some(cluster.name.clone()),
                        "id" => Some(cluster.id.clone()),
                        "datacenter" => call
                            .view
                            .data_center(&cluster.data_center_id)
                            .map(|dc| dc.name.clone()),
                        _ => None,
                    });
                match matches {
                    Ok(true) => write(call, &mut xml, cluster),
                    Ok(false) => {}
                    Err(reply) => return reply,
                }
            }
            xml.close("clusters");
            Reply::xml(200, xml.finish())
        }
        ("GET" | "PUT", [id]) => match call.view.clusters.iter().find(|c| c.id == *id) {
            Some(cluster) => {
                let mut xml = XmlWriter::new();
                write(call, &mut xml, cluster);
                Reply::xml(200, xml.finish())
            }
            None => not_found(),
        },
        (_, [] | [_]) => method_not_allowed(),
        _ => not_found(),
    }
}

/// Writes one `<cluster>` in the call's dialect.
pub fn write(call: &ApiCall, xml: &mut XmlWriter, cluster: &Cluster) {
    let dialect = &call.dialect;
    let href = dialect.href(&format!("clusters/{}", cluster.id));
    xml.open("cluster", &[("href", &href), ("id", &cluster.id)]);
    xml.leaf("name", &cluster.name);
    xml.leaf("description", "The default server cluster");
    for rel in [
        "networks",
        "permissions",
        "glustervolumes",
        "affinitygroups",
    ] {
        xml.empty("link", &[("href", &format!("{href}/{rel}")), ("rel", rel)]);
    }
    if dialect.v3 {
        xml.open("cpu", &[("id", &cluster.cpu_type)])
            .leaf("architecture", "X86_64")
            .close("cpu");
    } else {
        xml.open("cpu", &[])
            .leaf("architecture", "x86_64")
            .leaf("type", &cluster.cpu_type)
            .close("cpu");
    }
    dialect.reference(xml, "data_center", "datacenters", &cluster.data_center_id);
    dialect.version(xml, cluster.version.major, cluster.version.minor);
    xml.leaf("virt_service", true)
        .leaf("gluster_service", false);
    xml.close("cluster");
}
