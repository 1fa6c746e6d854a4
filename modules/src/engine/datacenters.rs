//! Data centers: compatibility version and status.

use super::client::Connection;
use super::error::EngineError;
use super::xml::Element;
use serde::Serialize;

/// A data center.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataCenter {
    /// Engine id.
    #[serde(skip)]
    pub id: String,
    /// Name.
    pub name: String,
    /// Compatibility version `major.minor`.
    pub version: String,
    /// Status (`up`, `maintenance`, `not_operational`, ...).
    pub status: String,
}

impl DataCenter {
    /// Reads a `<data_center>` (v3 or v4).
    pub fn from_element(element: &Element) -> Option<DataCenter> {
        Some(DataCenter {
            id: element.id()?.to_string(),
            name: element.child_text("name").unwrap_or("").to_string(),
            version: element.version().unwrap_or_default(),
            status: element.status().unwrap_or("unknown").to_string(),
        })
    }
}

/// Every data center.
pub fn list(engine: &mut Connection) -> Result<Vec<DataCenter>, EngineError> {
    let list = engine.get("datacenters")?;
    Ok(list
        .children_named("data_center")
        .filter_map(DataCenter::from_element)
        .collect())
}

/// One data center by id.
pub fn get(engine: &mut Connection, id: &str) -> Result<Option<DataCenter>, EngineError> {
    Ok(engine
        .get_optional(&format!("datacenters/{id}"))?
        .as_ref()
        .and_then(DataCenter::from_element))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: &str = r#"<data_centers><data_center href="/ovirt-engine/api/datacenters/DCID" id="DCID">
    <name>Default</name>
    <link href="/ovirt-engine/api/datacenters/DCID/storagedomains" rel="storagedomains"/>
    <local>false</local>
    <storage_format>v3</storage_format>
    <version major="3" minor="6"/>
    <supported_versions><version major="3" minor="6"/></supported_versions>
    <status><state>up</state></status>
</data_center></data_centers>"#;

    const V4: &str = r#"<data_center href=".." id="D1"><name>Default</name><local>false</local><status>up</status>
<storage_format>v5</storage_format><version><major>4</major><minor>7</minor></version>
<supported_versions><version><major>4</major><minor>7</minor></version></supported_versions></data_center>"#;

    #[test]
    fn both_dialects() {
        let list = Element::parse(V3).unwrap();
        let dc = DataCenter::from_element(list.child("data_center").unwrap()).unwrap();
        assert_eq!(
            (dc.name.as_str(), dc.version.as_str(), dc.status.as_str()),
            ("Default", "3.6", "up")
        );
        let dc = DataCenter::from_element(&Element::parse(V4).unwrap()).unwrap();
        assert_eq!(
            (dc.id.as_str(), dc.version.as_str(), dc.status.as_str()),
            ("D1", "4.7", "up")
        );
    }
}
