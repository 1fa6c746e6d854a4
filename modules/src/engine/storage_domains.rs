//! Storage domains: space (available/used/committed bytes) and the data center they serve.

use super::client::Connection;
use super::error::EngineError;
use super::xml::Element;
use serde::Serialize;

/// A storage domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageDomain {
    /// Engine id (= vdsm sdUUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// Free bytes.
    pub available: u64,
    /// Used bytes.
    pub used: u64,
    /// Bytes promised to disks (thin provisioning).
    pub committed: u64,
    /// Data centers it is attached to.
    #[serde(skip)]
    pub data_center_ids: Vec<String>,
}

impl StorageDomain {
    /// Reads a `<storage_domain>`; v3 may name one `<data_center>` instead of `<data_centers>`.
    pub fn from_element(element: &Element) -> Option<StorageDomain> {
        let mut data_center_ids: Vec<String> = element
            .child("data_centers")
            .map(|list| {
                list.children_named("data_center")
                    .filter_map(|dc| dc.id().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(id) = element.child("data_center").and_then(Element::id) {
            if !data_center_ids.iter().any(|known| known == id) {
                data_center_ids.push(id.to_string());
            }
        }
        Some(StorageDomain {
            id: element.id()?.to_string(),
            name: element.child_text("name").unwrap_or("").to_string(),
            available: element.child_u64("available").unwrap_or(0),
            used: element.child_u64("used").unwrap_or(0),
            committed: element.child_u64("committed").unwrap_or(0),
            data_center_ids,
        })
    }
}

/// One storage domain by id; an error naming it when the engine does not know it.
pub fn get(engine: &mut Connection, id: &str) -> Result<StorageDomain, EngineError> {
    let path = format!("storagedomains/{id}");
    let missing = || {
        EngineError::Input(format!(
        "the engine has no storage domain {id}: check the storage_domain option or sdUUID in hosted-engine.conf"
    ))
    };
    let element = engine.get_optional(&path)?.ok_or_else(missing)?;
    StorageDomain::from_element(&element).ok_or_else(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    // engine-api.md part 2 section 5 (v3) and the v4 doc sample.
    const V3: &str = r#"<storage_domain href="/ovirt-engine/api/storagedomains/SDID" id="SDID">
    <name>hosted_storage</name>
    <link href="/ovirt-engine/api/storagedomains/SDID/disks" rel="disks"/>
    <data_centers><data_center id="DCID"/></data_centers>
    <type>data</type>
    <master>false</master>
    <storage><type>nfs</type><address>nfs.example.com</address><path>/exports/he</path></storage>
    <available>53687091200</available><used>10737418240</used><committed>53687091200</committed>
    <storage_format>v3</storage_format>
</storage_domain>"#;

    const V4: &str = r#"<storage_domain href="/ovirt-engine/api/storagedomains/123" id="123"><name>mydata</name><description>My data</description>
<available>38654705664</available><committed>1073741824</committed><critical_space_action_blocker>5</critical_space_action_blocker>
<master>true</master><storage><address>mynfs.example.com</address><path>/exports/mydata</path><type>nfs</type></storage>
<type>data</type><used>13958643712</used>
<data_centers><data_center href="/ovirt-engine/api/datacenters/456" id="456"/></data_centers></storage_domain>"#;

    #[test]
    fn space_and_data_center() {
        let sd = StorageDomain::from_element(&Element::parse(V3).unwrap()).unwrap();
        assert_eq!(
            (sd.available, sd.used, sd.committed),
            (53687091200, 10737418240, 53687091200)
        );
        assert_eq!(sd.data_center_ids, vec!["DCID"]);
        let sd = StorageDomain::from_element(&Element::parse(V4).unwrap()).unwrap();
        assert_eq!(sd.name, "mydata");
        assert_eq!(
            (sd.available, sd.used, sd.committed),
            (38654705664, 13958643712, 1073741824)
        );
        assert_eq!(sd.data_center_ids, vec!["456"]);
    }
}
