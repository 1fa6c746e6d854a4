//! `GET /ovirt-engine/api`: links, special objects, product info, summary, time.

use crate::engine::api::context::{method_not_allowed, ApiCall};
use crate::engine::clock;
use crate::engine::http::Reply;
use crate::engine::xml::XmlWriter;

/// Collections linked from the root, in the engine's order; `true` = has a search link.
const LINKS: &[(&str, bool)] = &[
    ("capabilities", false),
    ("clusters", true),
    ("datacenters", true),
    ("events", true),
    ("hosts", true),
    ("networks", true),
    ("roles", false),
    ("storagedomains", true),
    ("tags", false),
    ("bookmarks", false),
    ("icons", false),
    ("templates", true),
    ("instancetypes", true),
    ("users", true),
    ("groups", true),
    ("domains", false),
    ("vmpools", true),
    ("vms", true),
    ("disks", true),
    ("jobs", false),
    ("storageconnections", false),
    ("vnicprofiles", false),
    ("diskprofiles", false),
    ("cpuprofiles", false),
    ("schedulingpolicyunits", false),
    ("schedulingpolicies", false),
    ("permissions", false),
    ("macpools", false),
    ("operatingsystems", false),
];

const BLANK: &str = "00000000-0000-0000-0000-000000000000";

/// Handles the API root.
pub fn handle(call: &mut ApiCall) -> Reply {
    if call.request.method != "GET" && call.request.method != "HEAD" {
        return method_not_allowed();
    }
    let dialect = &call.dialect;
    let view = &call.view;
    let mut xml = XmlWriter::new();
    xml.open("api", &[]);
    for (rel, searchable) in LINKS {
        xml.empty("link", &[("href", &dialect.href(rel)), ("rel", rel)]);
        if *searchable {
            let href = if *rel == "events" {
                dialect.href("events;from={event_id}?search={query}")
            } else {
                dialect.href(&format!("{rel}?search={{query}}"))
            };
            xml.empty(
                "link",
                &[("href", &href), ("rel", &format!("{rel}/search"))],
            );
        }
    }
    xml.open("special_objects", &[]);
    for (collection, rel) in [("templates", "templates/blank"), ("tags", "tags/root")] {
        let href = dialect.href(&format!("{collection}/{BLANK}"));
        xml.empty("link", &[("href", &href), ("rel", rel)]);
    }
    xml.close("special_objects");
    let product = &view.product;
    xml.open("product_info", &[])
        .leaf("name", &product.name)
        .leaf("vendor", &product.vendor);
    if dialect.v3 {
        xml.empty(
            "version",
            &[
                ("major", &product.major.to_string()),
                ("minor", &product.minor.to_string()),
                ("build", &product.build.to_string()),
                ("revision", &product.revision.to_string()),
            ],
        )
        .leaf("full_version", &product.full_version);
    } else {
        xml.open("version", &[])
            .leaf("build", product.build)
            .leaf("full_version", &product.full_version)
            .leaf("major", product.major)
            .leaf("minor", product.minor)
            .leaf("revision", product.revision)
            .close("version");
    }
    xml.close("product_info");
    let vm_count = view.data["vms"].as_array().map_or(0, Vec::len);
    let user_count = view.data["users"].as_array().map_or(1, Vec::len);
    let hosts_up = view.hosts.iter().filter(|h| h.status == "up").count();
    let sds_active = view
        .storage_domains
        .iter()
        .filter(|sd| sd.status == "active")
        .count();
    xml.open("summary", &[]);
    for (tag, total, active) in [
        ("vms", vm_count, vm_count),
        ("hosts", view.hosts.len(), hosts_up),
        ("users", user_count, user_count),
        ("storage_domains", view.storage_domains.len(), sds_active),
    ] {
        xml.open(tag, &[])
            .leaf("total", total)
            .leaf("active", active)
            .close(tag);
    }
    xml.close("summary");
    xml.leaf("time", clock::iso8601(call.now_ms));
    xml.close("api");
    Reply::xml(200, xml.finish())
}
