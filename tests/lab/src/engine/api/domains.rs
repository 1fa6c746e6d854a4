//! `domains[/{id}]`: the AAA authz extensions (id = upper-case hex of the name).

use crate::engine::api::context::{method_not_allowed, not_found, ApiCall};
use crate::engine::http::Reply;
use crate::engine::xml::XmlWriter;

/// The engine's id of an authz domain: the upper-case hex of its UTF-8 name.
pub fn domain_id(name: &str) -> String {
    name.bytes().map(|byte| format!("{byte:02X}")).collect()
}

/// Handles `domains[/{id}]`.
pub fn handle(call: &mut ApiCall, rest: &[&str]) -> Reply {
    match (call.request.method.as_str(), rest) {
        ("GET", []) => {
            let mut xml = XmlWriter::new();
            xml.open("domains", &[]);
            for name in &call.view.aaa_domains {
                write(call, &mut xml, name);
            }
            xml.close("domains");
            Reply::xml(200, xml.finish())
        }
        ("GET", [id]) => match call.view.aaa_domains.iter().find(|n| domain_id(n) == *id) {
            Some(name) => {
                let mut xml = XmlWriter::new();
                write(call, &mut xml, name);
                Reply::xml(200, xml.finish())
            }
            None => not_found(),
        },
        (_, [] | [_]) => method_not_allowed(),
        _ => not_found(),
    }
}

fn write(call: &ApiCall, xml: &mut XmlWriter, name: &str) {
    let id = domain_id(name);
    let href = call.dialect.href(&format!("domains/{id}"));
    xml.open("domain", &[("href", &href), ("id", &id)]);
    xml.leaf("name", name);
    for rel in ["users", "groups"] {
        xml.empty("link", &[("href", &format!("{href}/{rel}")), ("rel", rel)]);
        xml.empty(
            "link",
            &[
                ("href", &format!("{href}/{rel}?search={{query}}")),
                ("rel", &format!("{rel}/search")),
            ],
        );
    }
    xml.close("domain");
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_upper_hex_of_the_name() {
        assert_eq!(
            super::domain_id("internal-authz"),
            "696E7465726E616C2D617574687A"
        );
    }
}
