//! XML in and out: an indenting, escaping writer for responses and a small element tree
//! for request bodies.

use std::fmt::Display;

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Builds an XML document the way the engine prints it (declaration, 4-space indent).
pub struct XmlWriter {
    out: String,
    depth: usize,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// A document starting with the engine's XML declaration.
    pub fn new() -> XmlWriter {
        XmlWriter {
            out: "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n".into(),
            depth: 0,
        }
    }

    fn start_tag(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.out.push_str(&"    ".repeat(self.depth));
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push_str(&format!(" {name}=\"{}\"", escape(value)));
        }
    }

    /// Opens `<tag attrs>` and indents what follows.
    pub fn open(&mut self, tag: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(tag, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
        self
    }

    /// Closes `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.depth = self.depth.saturating_sub(1);
        self.out.push_str(&"    ".repeat(self.depth));
        self.out.push_str(&format!("</{tag}>\n"));
        self
    }

    /// Writes `<tag attrs/>`.
    pub fn empty(&mut self, tag: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(tag, attrs);
        self.out.push_str("/>\n");
        self
    }

    /// Writes `<tag>value</tag>`.
    pub fn leaf(&mut self, tag: &str, value: impl Display) -> &mut Self {
        self.leaf_with(tag, &[], value)
    }

    /// Writes `<tag attrs>value</tag>`.
    pub fn leaf_with(
        &mut self,
        tag: &str,
        attrs: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.start_tag(tag, attrs);
        self.out
            .push_str(&format!(">{}</{tag}>\n", escape(&value.to_string())));
        self
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }
}

/// One parsed XML element: name, attributes, child elements and direct text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated, unescaped text directly inside this element (trimmed).
    pub text: String,
}

impl Element {
    /// Parses a whole document into its root element.
    pub fn parse(document: &str) -> Result<Element, String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(document);
        let mut stack: Vec<Element> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|e| e.to_string())?;
            match event {
                Event::Start(start) => stack.push(Self::from_start(&start)?),
                Event::Empty(start) => {
                    let element = Self::from_start(&start)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::End(_) => {
                    let mut element = stack.pop().ok_or("unbalanced end tag")?;
                    element.text = element.text.trim().to_string();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::Text(text) => {
                    if let Some(current) = stack.last_mut() {
                        current
                            .text
                            .push_str(&text.unescape().map_err(|e| e.to_string())?);
                    }
                }
                Event::CData(data) => {
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Event::Eof => return Err("no root element".into()),
                _ => {}
            }
        }
    }

    fn from_start(start: &quick_xml::events::BytesStart) -> Result<Element, String> {
        let mut element = Element {
            name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
            ..Element::default()
        };
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let value = attribute
                .unescape_value()
                .map_err(|e| e.to_string())?
                .into_owned();
            let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
            element.attributes.push((key, value));
        }
        Ok(element)
    }

    /// The attribute `name`.
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

    /// The text of the first child named `name`, if present and not empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|child| child.text.as_str())
            .filter(|text| !text.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_indented_documents() {
        let mut xml = XmlWriter::new();
        xml.open("disk", &[("id", "a\"b")])
            .leaf("name", "x<y & z")
            .empty("storage_domain", &[("id", "s")])
            .close("disk");
        assert_eq!(
            xml.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<disk id=\"a&quot;b\">\n    <name>x&lt;y &amp; z</name>\n    <storage_domain id=\"s\"/>\n</disk>\n"
        );
    }

    #[test]
    fn parses_what_the_sdk_writes() {
        let body = "<disk id=\"abc\">\n  <format>raw</format>\n  <name>d &amp; e</name>\n  <provisioned_size>1024</provisioned_size>\n  <storage_domains>\n    <storage_domain id=\"sd1\"/>\n  </storage_domains>\n</disk>\n";
        let disk = Element::parse(body).unwrap();
        assert_eq!(disk.name, "disk");
        assert_eq!(disk.attribute("id"), Some("abc"));
        assert_eq!(disk.child_text("name"), Some("d & e"));
        assert_eq!(disk.child_text("provisioned_size"), Some("1024"));
        let sd = disk
            .child("storage_domains")
            .unwrap()
            .child("storage_domain")
            .unwrap();
        assert_eq!(sd.attribute("id"), Some("sd1"));
        assert_eq!(Element::parse("<action/>").unwrap().name, "action");
        assert!(Element::parse("<disk><name>x</disk>").is_err());
        assert!(Element::parse("not xml").is_err());
    }
}
