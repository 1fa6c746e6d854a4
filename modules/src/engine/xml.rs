//! A small XML tree for engine answers, read tolerantly across v3 and v4, and request writing.
//!
//! The two dialects differ in shape, not in meaning (engine-api.md part 2): v3 writes versions
//! as attributes and statuses as `<status><state>`, v4 as child elements and plain text. The
//! accessors here ([`Element::version`], [`Element::status`]) accept both, so resource files
//! never care which dialect answered.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One element: name, attributes, child elements and its own text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated text directly inside this element, trimmed.
    pub text: String,
}

/// The document could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(pub String);

impl Element {
    /// Parses a whole document and returns its root element.
    pub fn parse(document: &str) -> Result<Element, XmlError> {
        let mut reader = Reader::from_str(document);
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let event = reader
                .read_event()
                .map_err(|e| XmlError(format!("{e} at byte {}", reader.buffer_position())))?;
            match event {
                Event::Start(start) => stack.push(open(&start)?),
                Event::Empty(start) => {
                    let element = open(&start)?;
                    if let Some(done) = attach(&mut stack, element) {
                        return Ok(done);
                    }
                }
                Event::End(_) => {
                    let element = stack
                        .pop()
                        .ok_or_else(|| XmlError("closing tag without opening tag".into()))?;
                    if let Some(done) = attach(&mut stack, finish(element)) {
                        return Ok(done);
                    }
                }
                Event::Text(text) => {
                    let text = text.unescape().map_err(|e| XmlError(e.to_string()))?;
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&text);
                    }
                }
                Event::CData(data) => {
                    if let Some(current) = stack.last_mut() {
                        current
                            .text
                            .push_str(&String::from_utf8_lossy(&data.into_inner()));
                    }
                }
                Event::Eof => {
                    return Err(XmlError(
                        "document ends before its root element is closed".into(),
                    ))
                }
                _ => {}
            }
        }
    }

    /// The value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// The text of the first child named `name`, if present and not empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|child| child.text.as_str())
            .filter(|text| !text.is_empty())
    }

    /// The `id` attribute.
    pub fn id(&self) -> Option<&str> {
        self.attribute("id")
    }

    /// A child's text parsed as an unsigned number (`None` when absent or not a number).
    pub fn child_u64(&self, name: &str) -> Option<u64> {
        self.child_text(name).and_then(|text| text.parse().ok())
    }

    /// The state of a status child: v4 `<status>up</status>` or v3 `<status><state>up</state></status>`.
    pub fn status(&self) -> Option<&str> {
        let status = self.child("status")?;
        status
            .child_text("state")
            .or(Some(status.text.as_str()).filter(|text| !text.is_empty()))
    }

    /// `major.minor` of a version child: v3 attributes or v4 elements.
    pub fn version(&self) -> Option<String> {
        let version = self.child("version")?;
        let part = |name: &str| {
            version
                .attribute(name)
                .or_else(|| version.child_text(name))
                .map(str::to_string)
        };
        Some(format!("{}.{}", part("major")?, part("minor")?))
    }
}

fn open(start: &quick_xml::events::BytesStart) -> Result<Element, XmlError> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError(e.to_string()))?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute
            .unescape_value()
            .map_err(|e| XmlError(e.to_string()))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        ..Element::default()
    })
}

fn finish(mut element: Element) -> Element {
    element.text = element.text.trim().to_string();
    element
}

/// Adds `element` to its parent; returns it when it is the root (the document is complete).
fn attach(stack: &mut [Element], element: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(element);
            None
        }
        None => Some(element),
    }
}

/// Escapes text for an XML element or attribute value.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3_HOST: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<host href="/ovirt-engine/api/hosts/H1" id="H1">
    <name>host1</name>
    <status><state>up</state></status>
    <storage_manager priority="5">true</storage_manager>
    <spm><priority>5</priority><status><state>spm</state></status></spm>
    <version major="4" minor="17" build="32" revision="0" full_version="vdsm-4.17.32"/>
</host>"#;

    const V4_HOST: &str = r#"<host href="/ovirt-engine/api/hosts/H1" id="H1"><name>host1</name>
<spm><priority>5</priority><status>none</status></spm><status>up</status>
<version><major>4</major><minor>30</minor></version></host>"#;

    #[test]
    fn reads_v3_shapes() {
        let host = Element::parse(V3_HOST).unwrap();
        assert_eq!(host.id(), Some("H1"));
        assert_eq!(host.child_text("name"), Some("host1"));
        assert_eq!(host.status(), Some("up"));
        assert_eq!(host.child("spm").unwrap().status(), Some("spm"));
        assert_eq!(host.version().as_deref(), Some("4.17"));
        assert_eq!(
            host.child("storage_manager").unwrap().attribute("priority"),
            Some("5")
        );
    }

    #[test]
    fn reads_v4_shapes() {
        let host = Element::parse(V4_HOST).unwrap();
        assert_eq!(host.status(), Some("up"));
        assert_eq!(host.child("spm").unwrap().status(), Some("none"));
        assert_eq!(host.version().as_deref(), Some("4.30"));
    }

    #[test]
    fn unescapes_text_and_attributes() {
        let root = Element::parse(r#"<a x="1 &amp; 2"><b>&lt;c&gt;</b></a>"#).unwrap();
        assert_eq!(root.attribute("x"), Some("1 & 2"));
        assert_eq!(root.child_text("b"), Some("<c>"));
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }

    #[test]
    fn rejects_truncated_and_non_xml_documents() {
        assert!(Element::parse("<hosts><host>").is_err());
        assert!(Element::parse("").is_err());
        assert!(Element::parse("<a></b>").is_err());
    }
}
