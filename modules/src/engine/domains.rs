//! AAA (authorization) domains configured in the engine, compared with an engine backup's.

use super::client::Connection;
use super::error::EngineError;

/// Names of the engine's authz domains (`internal-authz`, ...), sorted.
pub fn list(engine: &mut Connection) -> Result<Vec<String>, EngineError> {
    let list = engine.get("domains")?;
    Ok(names(&list))
}

fn names(list: &super::xml::Element) -> Vec<String> {
    let mut names: Vec<String> = list
        .children_named("domain")
        .filter_map(|domain| domain.child_text("name"))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        let text = r#"<domains><domain href="/ovirt-engine/api/domains/696E7465726E616C2D617574687A" id="696E7465726E616C2D617574687A"><name>internal-authz</name>
<link href="/ovirt-engine/api/domains/696E7465726E616C2D617574687A/users" rel="users"/></domain>
<domain id="6C646170"><name>example.com-authz</name></domain></domains>"#;
        let list = super::super::xml::Element::parse(text).unwrap();
        assert_eq!(names(&list), vec!["example.com-authz", "internal-authz"]);
    }
}
