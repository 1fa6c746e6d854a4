//! Clusters: compatibility version.

use super::client::Connection;
use super::error::EngineError;
use super::xml::Element;
use serde::Serialize;

/// A cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// Compatibility version `major.minor`.
    pub version: String,
}

impl Cluster {
    /// Reads a `<cluster>` (v3 or v4).
    pub fn from_element(element: &Element) -> Option<Cluster> {
        element.id()?;
        Some(Cluster {
            name: element.child_text("name").unwrap_or("").to_string(),
            version: element.version().unwrap_or_default(),
        })
    }
}

/// Every cluster.
pub fn list(engine: &mut Connection) -> Result<Vec<Cluster>, EngineError> {
    let list = engine.get("clusters")?;
    Ok(list
        .children_named("cluster")
        .filter_map(Cluster::from_element)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects() {
        let v3 = r#"<clusters><cluster href="/ovirt-engine/api/clusters/C1" id="C1"><name>Default</name>
<cpu id="Intel Conroe Family"><architecture>X86_64</architecture></cpu><data_center id="D1"/>
<version major="3" minor="6"/></cluster></clusters>"#;
        let v4 = r#"<clusters><cluster id="C1"><name>Default</name><version><major>4</major><minor>3</minor></version><data_center id="D1"/></cluster></clusters>"#;
        let read = |text: &str| {
            Element::parse(text)
                .unwrap()
                .children_named("cluster")
                .filter_map(Cluster::from_element)
                .collect::<Vec<_>>()
        };
        assert_eq!(read(v3)[0].version, "3.6");
        assert_eq!(
            read(v4)[0],
            Cluster {
                name: "Default".into(),
                version: "4.3".into()
            }
        );
    }
}
