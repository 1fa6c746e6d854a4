//! The API root's `product_info`: which engine this is.

use super::xml::Element;
use serde::Serialize;

/// Engine product and version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductInfo {
    /// Product name (`oVirt Engine`).
    pub name: String,
    /// `major.minor` (`3.6`, `4.4`).
    pub version: String,
    /// The full version string when the engine gives one (`3.6.7.5-1.el7.centos`).
    pub full_version: String,
}

impl ProductInfo {
    /// Reads `<api><product_info>`; both dialects (v3 attributes, v4 elements).
    pub fn from_api_root(root: &Element) -> Option<ProductInfo> {
        let product = root.child("product_info")?;
        let version = product.version()?;
        let full_version = product
            .child_text("full_version")
            .or_else(|| product.child("version")?.child_text("full_version"))
            .or_else(|| product.child("version")?.attribute("full_version"))
            .unwrap_or(&version)
            .to_string();
        Some(ProductInfo {
            name: product
                .child_text("name")
                .unwrap_or("oVirt Engine")
                .to_string(),
            version,
            full_version,
        })
    }

    /// The major version number.
    pub fn major(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3_ROOT: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<api>
    <link href="/ovirt-engine/api/capabilities" rel="capabilities"/>
    <special_objects><link href="/ovirt-engine/api/templates/00000000-0000-0000-0000-000000000000" rel="templates/blank"/></special_objects>
    <product_info>
        <name>oVirt Engine</name>
        <vendor>ovirt.org</vendor>
        <version major="3" minor="6" build="7" revision="0"/>
        <full_version>3.6.7.5-1.el7.centos</full_version>
    </product_info>
    <time>2016-06-01T10:00:00.000+02:00</time>
</api>"#;

    const V4_ROOT: &str = r#"<api><link rel="hosts" href="/ovirt-engine/api/hosts"/><product_info><name>oVirt Engine</name><vendor>ovirt.org</vendor>
<version><build>0</build><full_version>4.1.0_master</full_version><major>4</major><minor>1</minor><revision>0</revision></version>
</product_info><time>2016-12-12T12:22:25.866+01:00</time></api>"#;

    #[test]
    fn v3_root() {
        let product = ProductInfo::from_api_root(&Element::parse(V3_ROOT).unwrap()).unwrap();
        assert_eq!(product.version, "3.6");
        assert_eq!(product.full_version, "3.6.7.5-1.el7.centos");
        assert_eq!(product.major(), 3);
    }

    #[test]
    fn v4_root() {
        let product = ProductInfo::from_api_root(&Element::parse(V4_ROOT).unwrap()).unwrap();
        assert_eq!(product.version, "4.1");
        assert_eq!(product.full_version, "4.1.0_master");
        assert_eq!(product.major(), 4);
    }

    #[test]
    fn root_without_product_info() {
        assert!(ProductInfo::from_api_root(&Element::parse("<api/>").unwrap()).is_none());
    }
}
