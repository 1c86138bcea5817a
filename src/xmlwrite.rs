//! The engine's one XML writer, built on quick-xml's `Writer`: record files in canonical form
//! and the elements of import bodies. It owns escaping and refuses what XML 1.0 cannot carry
//! (control characters other than tab, line feed and carriage return, U+FFFE and U+FFFF, and
//! names that are not XML names), so mwsync never writes a document that ordinary XML tools
//! reject. It must not decide which records or fields are written.

use std::borrow::Cow;
use std::fmt;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;

use crate::record::{Field, Value};

/// Something XML 1.0 cannot carry, found while writing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlWriteError {
    /// A value holds a character that is not allowed anywhere in an XML 1.0 document, not
    /// even as a character reference.
    #[error(
        "field <{field}> holds U+{:04X}, a control character that XML 1.0 cannot carry",
        u32::from(*ch)
    )]
    Char {
        /// The field, `detail[2].detail.account` style inside subfiles (rows count from 1).
        field: String,
        /// The character.
        ch: char,
    },
    /// An element name that is not an XML name.
    #[error("<{name}> is not a valid XML element name")]
    Name {
        /// The name as given.
        name: String,
    },
}

/// An XML document being written. Every method that takes a name or text checks it.
pub struct XmlWriter {
    w: Writer<Vec<u8>>,
}

impl XmlWriter {
    /// A document indented by two spaces per level, one element per line: the layout of
    /// record files. Leaves hold their text on their own line.
    pub fn indented() -> XmlWriter {
        XmlWriter {
            // A transaction's file is some 8 KB: start near it rather than grow to it.
            w: Writer::new_with_indent(Vec::with_capacity(4096), b' ', 2),
        }
    }

    /// A document with no added whitespace: the layout of import bodies.
    pub fn compact() -> XmlWriter {
        XmlWriter {
            w: Writer::new(Vec::new()),
        }
    }

    /// `<?xml version="1.0"?>`, with `encoding="UTF-8"` when `utf8` is set.
    pub fn declaration(&mut self, utf8: bool) {
        let decl = BytesDecl::new("1.0", utf8.then_some("UTF-8"), None);
        self.event(Event::Decl(decl));
    }

    /// An opening tag with attributes (values escaped here).
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), XmlWriteError> {
        let start = self.tag(name, attrs)?;
        self.event(Event::Start(start));
        Ok(())
    }

    /// An empty element, `<name/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), XmlWriteError> {
        let tag = self.tag(name, attrs)?;
        self.event(Event::Empty(tag));
        Ok(())
    }

    /// The closing tag of `name` (opened by [`XmlWriter::start`], so already checked).
    pub fn end(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    /// Escaped character data; `field` names the value in an error.
    pub fn text(&mut self, field: &dyn fmt::Display, text: &str) -> Result<(), XmlWriteError> {
        let escaped = escape(field, text)?;
        self.event(Event::Text(BytesText::from_escaped(escaped)));
        Ok(())
    }

    /// A line break between elements of a compact document.
    pub fn newline(&mut self) {
        self.event(Event::Text(BytesText::from_escaped("\n")));
    }

    /// The document's bytes, ending in a line feed.
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.w.into_inner();
        out.push(b'\n');
        out
    }

    fn tag<'a>(
        &self,
        name: &'a str,
        attrs: &[(&str, &str)],
    ) -> Result<BytesStart<'a>, XmlWriteError> {
        check_name(name)?;
        let mut tag = BytesStart::new(name);
        for (key, value) in attrs {
            check_name(key)?;
            tag.push_attribute(Attribute {
                key: QName(key),
                value: escape(key, value)?,
            });
        }
        Ok(tag)
    }

    fn event(&mut self, event: Event<'_>) {
        self.w
            .write_event(event)
            .expect("writing XML into a Vec cannot fail because a Vec grows as needed");
    }
}

/// The canonical file form of a record whose element is `element`: the XML declaration,
/// fields in the order given, two-space indentation, LF line ends, empty values as `<f/>`,
/// system fields and rows marked `system="true"`, and a trailing newline. Equal fields always
/// give equal bytes.
pub fn record_file(element: &str, fields: &[Field]) -> Result<Vec<u8>, XmlWriteError> {
    let mut w = XmlWriter::indented();
    w.declaration(true);
    w.start(element, &[])?;
    canonical_fields(&mut w, "", fields)?;
    w.end(element);
    Ok(w.finish())
}

fn system_attr(system: bool) -> &'static [(&'static str, &'static str)] {
    if system { &[("system", "true")] } else { &[] }
}

fn canonical_fields(
    w: &mut XmlWriter,
    prefix: &str,
    fields: &[Field],
) -> Result<(), XmlWriteError> {
    for field in fields {
        match &field.value {
            Value::Text(text) if text.is_empty() => {
                w.empty(&field.name, system_attr(field.system))?
            }
            Value::Text(text) => {
                w.start(&field.name, system_attr(field.system))?;
                w.text(&format_args!("{prefix}{}", field.name), text)?;
                w.end(&field.name);
            }
            Value::Subfile(rows) => {
                let mut attrs = vec![("name", field.name.as_str())];
                attrs.extend_from_slice(system_attr(field.system));
                if rows.is_empty() {
                    w.empty("subfile", &attrs)?;
                    continue;
                }
                w.start("subfile", &attrs)?;
                let row_element = field.name.to_ascii_lowercase();
                for (i, row) in rows.iter().enumerate() {
                    w.start(&row_element, system_attr(row.system))?;
                    canonical_fields(
                        w,
                        &format!("{prefix}{row_element}[{}].", i + 1),
                        &row.fields,
                    )?;
                    w.end(&row_element);
                }
                w.end("subfile");
            }
        }
    }
    Ok(())
}

/// Writes the importable (non-system) fields among `fields` in their order, compactly:
/// only those named in `only` when given, and only the non-system rows of subfiles. Empty
/// values are written as `<f></f>`, as MoneyWorks' own import examples do.
pub fn import_fields(
    w: &mut XmlWriter,
    fields: &[Field],
    only: Option<&[String]>,
) -> Result<(), XmlWriteError> {
    import_fields_at(w, "", fields, only)
}

fn import_fields_at(
    w: &mut XmlWriter,
    prefix: &str,
    fields: &[Field],
    only: Option<&[String]>,
) -> Result<(), XmlWriteError> {
    for f in fields.iter().filter(|f| !f.system) {
        if only.is_some_and(|only| !only.contains(&f.name)) {
            continue;
        }
        match &f.value {
            Value::Text(t) => {
                w.start(&f.name, &[])?;
                w.text(&format_args!("{prefix}{}", f.name), t)?;
                w.end(&f.name);
            }
            Value::Subfile(rows) => {
                w.start("subfile", &[("name", &f.name)])?;
                let el = f.name.to_ascii_lowercase();
                for (i, r) in rows.iter().enumerate().filter(|(_, r)| !r.system) {
                    w.start(&el, &[])?;
                    import_fields_at(w, &format!("{prefix}{el}[{}].", i + 1), &r.fields, None)?;
                    w.end(&el);
                }
                w.end("subfile");
            }
        }
    }
    Ok(())
}

/// True for characters XML 1.0 allows in a document (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text for element content and attribute values. Markup characters become entity
/// references, and line breaks and tabs character references, so a value always stays on one
/// line and survives a round trip byte for byte. Characters XML 1.0 cannot carry are refused.
fn escape<'a>(field: &dyn fmt::Display, text: &'a str) -> Result<Cow<'a, str>, XmlWriteError> {
    let plain = |c: char| !matches!(c, '&' | '<' | '>' | '"') && c >= '\u{20}' && is_xml_char(c);
    if text.chars().all(plain) {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => {
                out.push_str("&#");
                out.push_str(&u32::from(ch).to_string());
                out.push(';');
            }
            c if is_xml_char(c) => out.push(c),
            c => {
                return Err(XmlWriteError::Char {
                    field: field.to_string(),
                    ch: c,
                });
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Refuses names that are not XML names: empty, starting with anything but a letter or
/// `_`, or holding anything but letters, digits, `.`, `-` and `_`.
fn check_name(name: &str) -> Result<(), XmlWriteError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(XmlWriteError::Name {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Row;
    use crate::xmltree;

    fn text(name: &str, value: &str) -> Field {
        Field {
            name: name.into(),
            system: false,
            value: Value::Text(value.into()),
        }
    }

    /// The canonical layout, byte for byte: declaration, indentation, empty values, system
    /// marks, subfile rows, escapes and the trailing newline.
    #[test]
    fn record_files_have_the_canonical_layout() {
        let mut seq = text("sequencenumber", "12");
        seq.system = true;
        let rows = vec![
            Row {
                system: false,
                fields: vec![text("detail.account", "A&B")],
            },
            Row {
                system: true,
                fields: vec![],
            },
        ];
        let fields = vec![
            seq,
            text("name", "Acme \"& Sons\" <x>"),
            text("address1", "1 Road\rTown\n\tNZ"),
            text("phone", ""),
            Field {
                name: "Detail".into(),
                system: false,
                value: Value::Subfile(rows),
            },
            Field {
                name: "Empty".into(),
                system: true,
                value: Value::Subfile(vec![]),
            },
        ];
        let bytes = record_file("name", &fields).expect("writable");
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<name>\n  <sequencenumber system=\"true\">12</sequencenumber>\n  <name>Acme &quot;&amp; Sons&quot; &lt;x&gt;</name>\n  <address1>1 Road&#13;Town&#10;&#9;NZ</address1>\n  <phone/>\n  <subfile name=\"Detail\">\n    <detail>\n      <detail.account>A&amp;B</detail.account>\n    </detail>\n    <detail system=\"true\">\n    </detail>\n  </subfile>\n  <subfile name=\"Empty\" system=\"true\"/>\n</name>\n";
        assert_eq!(String::from_utf8(bytes.clone()).expect("utf8"), expected);
        let back = xmltree::parse(expected).expect("well-formed");
        assert_eq!(back.children[2].text, "1 Road\rTown\n\tNZ");
    }

    /// A control character XML 1.0 cannot carry is refused with the field named, nested rows
    /// included; tab, line feed and carriage return are written as references.
    #[test]
    fn forbidden_characters_are_refused_naming_the_field() {
        let err = record_file("name", &[text("notes", "bell\u{7}")]).expect_err("U+0007");
        assert_eq!(
            err.to_string(),
            "field <notes> holds U+0007, a control character that XML 1.0 cannot carry"
        );
        let rows = vec![
            Row {
                system: false,
                fields: vec![text("detail.net", "1")],
            },
            Row {
                system: false,
                fields: vec![text("detail.description", "x\u{1}")],
            },
        ];
        let detail = Field {
            name: "Detail".into(),
            system: false,
            value: Value::Subfile(rows),
        };
        let err = record_file("transaction", std::slice::from_ref(&detail)).expect_err("U+0001");
        assert_eq!(
            err,
            XmlWriteError::Char {
                field: "detail[2].detail.description".into(),
                ch: '\u{1}'
            }
        );
        let mut w = XmlWriter::compact();
        assert!(import_fields(&mut w, &[detail], None).is_err());
        for bad in ['\u{0}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(
                record_file("name", &[text("notes", &bad.to_string())]).is_err(),
                "{bad:?} must be refused"
            );
        }
        assert!(record_file("name", &[text("notes", "é\u{10000}")]).is_ok());
    }

    /// Names that would make the document malformed are refused.
    #[test]
    fn bad_names_are_refused() {
        for name in ["", "1x", "a b", "a<b", "a\"b", ".x"] {
            assert_eq!(
                record_file("name", &[text(name, "v")]),
                Err(XmlWriteError::Name { name: name.into() }),
                "{name:?}"
            );
        }
    }

    /// Import fields are compact, skip system fields and rows, and honour the selection.
    #[test]
    fn import_fields_are_compact_and_selected() {
        let mut sys = text("lastmodifiedtime", "20240101000000");
        sys.system = true;
        let fields = vec![sys, text("code", "A"), text("phone", ""), text("city", "X")];
        let mut w = XmlWriter::compact();
        w.start("name", &[]).expect("valid");
        import_fields(
            &mut w,
            &fields,
            Some(&["phone".to_string(), "city".to_string()]),
        )
        .expect("writable");
        w.end("name");
        assert_eq!(
            String::from_utf8(w.finish()).expect("utf8"),
            "<name><phone></phone><city>X</city></name>\n"
        );
    }
}
