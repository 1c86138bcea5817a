//! A small owned XML element tree built with quick-xml. It owns well-formedness checking and
//! entity decoding for the documents mwsync reads (export replies and record files that are
//! not plain enough for `recordxml`, and every other document); it must not know what any
//! element means, nor write XML (that is `xmlwrite`).

use quick_xml::Reader;
use quick_xml::events::Event;

/// One XML element with its attributes, its children and, for leaves, its decoded text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The element name exactly as written.
    pub name: String,
    /// Attributes in document order, values decoded.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Decoded character data. Whitespace between child elements is not kept.
    pub text: String,
}

impl Element {
    /// The value of attribute `name` (compared case-insensitively).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a document is not well-formed XML, with the byte position where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not well-formed XML at byte {position}: {reason}")]
pub struct XmlError {
    /// Byte offset in the input.
    pub position: u64,
    /// What was wrong.
    pub reason: String,
}

/// Parses a whole document into its root element. Fails on anything that is not exactly one
/// well-formed root element (truncated input included).
pub fn parse(input: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(input);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let fail = |reader: &Reader<&[u8]>, reason: String| XmlError {
        position: reader.buffer_position(),
        reason,
    };
    loop {
        let event = reader.read_event().map_err(|e| {
            let mut reason = e.to_string();
            if reader.buffer_position() >= input.len() as u64 {
                reason.push_str(" (the document ends early: truncated?)");
            }
            fail(&reader, reason)
        })?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(fail(&reader, "content after the root element".into()));
                }
                stack.push(element_from(&reader, &start)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(fail(&reader, "content after the root element".into()));
                }
                let el = element_from(&reader, &start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| fail(&reader, "unbalanced end tag".into()))?;
                if !el.children.is_empty() {
                    if !el.text.trim().is_empty() {
                        return Err(fail(
                            &reader,
                            format!("element <{}> mixes text and elements", el.name),
                        ));
                    }
                    el.text.clear();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(fail(&reader, "text outside the root element".into())),
                }
            }
            Event::CData(data) => {
                let content = data.into_inner().into_owned();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&content),
                    None => return Err(fail(&reader, "CDATA outside the root element".into())),
                }
            }
            Event::GeneralRef(reference) => {
                let ch = resolve(&reference).map_err(|reason| fail(&reader, reason))?;
                match stack.last_mut() {
                    Some(el) => el.text.push(ch),
                    None => return Err(fail(&reader, "entity outside the root element".into())),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(fail(
            &reader,
            format!(
                "document ends inside <{}> (truncated?)",
                stack[stack.len() - 1].name
            ),
        ));
    }
    root.ok_or_else(|| fail(&reader, "no root element".into()))
}

/// The character a reference stands for: a character reference or one of XML's five
/// predefined entities.
pub(crate) fn resolve(reference: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
    match reference.resolve_char_ref() {
        Ok(Some(ch)) => Ok(ch),
        Ok(None) => match &**reference {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            other => Err(format!("unknown entity &{other};")),
        },
        Err(e) => Err(e.to_string()),
    }
}

fn element_from(
    reader: &Reader<&[u8]>,
    start: &quick_xml::events::BytesStart<'_>,
) -> Result<Element, XmlError> {
    let fail = |reason: String| XmlError {
        position: reader.buffer_position(),
        reason,
    };
    let name = start.name().as_ref().to_string();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| fail(e.to_string()))?;
        let key = attr.key.as_ref().to_string();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| fail(e.to_string()))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entities, character references and CDATA all decode into the element text.
    #[test]
    fn decodes_entities_and_char_refs() {
        let el = parse("<a>x &amp; y&#13;z<![CDATA[<q>]]></a>").expect("well-formed");
        assert_eq!(el.text, "x & y\rz<q>");
    }

    /// A document cut off in the middle is an error naming the open element.
    #[test]
    fn truncated_document_is_an_error() {
        let err = parse("<table><name><code>A</code>").expect_err("truncated");
        assert!(err.reason.contains("truncated"), "{err}");
    }
}
