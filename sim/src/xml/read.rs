//! Reading XML into an owned element tree with quick-xml. It owns well-formedness: one root,
//! balanced tags, known entities, and only characters XML 1.0 allows (also through character
//! references). It must not interpret element names.

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::write::is_xml_char;
use crate::error::{Classify, ErrorClass};

/// One element: its name, attributes, child elements and, for a leaf, its decoded text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The name as written.
    pub name: String,
    /// Attributes in document order, values decoded.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Decoded text; whitespace between child elements is dropped.
    pub text: String,
}

impl Element {
    /// The value of attribute `name`, compared case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when attribute `name` is `true` (any case) or `1`.
    pub fn flag(&self, name: &str) -> bool {
        self.attr(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
    }

    /// The first child called `name` (case-insensitive).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// A document that is not well-formed XML, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not well-formed XML at byte {offset}: {reason}")]
pub struct XmlError {
    /// Byte offset in the input.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

impl Classify for XmlError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// Parses a whole document into its root element: exactly one root, nothing but whitespace,
/// comments and processing instructions around it, and no element that mixes text with
/// child elements.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(input);
    let mut tree = Tree::default();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| read_error(&e, reader.buffer_position(), input.len() as u64))?;
        let fail = |reason: String| XmlError {
            offset: reader.buffer_position(),
            reason,
        };
        if let Event::Eof = event {
            break;
        }
        if root.is_some() && matches!(event, Event::Start(_) | Event::Empty(_)) {
            let name = match &event {
                Event::Start(s) | Event::Empty(s) => s.name().as_ref().to_string(),
                _ => String::new(),
            };
            return Err(fail(format!("<{name}> after the root element")));
        }
        if let Some(done) = tree.feed(event).map_err(fail)? {
            root = Some(done);
        }
    }
    if let Some(name) = tree.open_name() {
        return Err(XmlError {
            offset: input.len() as u64,
            reason: format!("the input ends inside <{name}> (truncated?)"),
        });
    }
    root.ok_or_else(|| XmlError {
        offset: input.len() as u64,
        reason: "there is no root element".into(),
    })
}

fn read_error(e: &quick_xml::Error, at: u64, len: u64) -> XmlError {
    let hint = if at >= len {
        " (the input ends early)"
    } else {
        ""
    };
    XmlError {
        offset: at,
        reason: format!("{e}{hint}"),
    }
}

/// Elements being built from reader events; an element is done when its end tag is read
/// and no element is open around it.
#[derive(Default)]
struct Tree {
    open: Vec<Element>,
    /// Elements handed back after use, whose buffers new elements reuse.
    pool: Vec<Element>,
}

impl Tree {
    fn open_name(&self) -> Option<&str> {
        self.open.last().map(|e| e.name.as_str())
    }

    fn fresh(&mut self, start: &BytesStart<'_>) -> Result<Element, String> {
        element_into(start, self.pool.pop().unwrap_or_default())
    }

    /// Keeps `el` and its descendants for reuse.
    fn recycle(&mut self, mut el: Element) {
        for child in el.children.drain(..) {
            self.recycle(child);
        }
        if self.pool.len() < 4096 {
            self.pool.push(el);
        }
    }

    /// Takes one event; returns the outermost element it completes.
    fn feed(&mut self, event: Event<'_>) -> Result<Option<Element>, String> {
        match event {
            Event::Start(start) => {
                let el = self.fresh(&start)?;
                self.open.push(el);
            }
            Event::Empty(start) => {
                let el = self.fresh(&start)?;
                return Ok(self.attach(el));
            }
            Event::End(_) => {
                let mut el = self
                    .open
                    .pop()
                    .ok_or_else(|| "an end tag without a start".to_string())?;
                if !el.children.is_empty() {
                    if !el.text.trim().is_empty() {
                        return Err(format!("<{}> mixes text and elements", el.name));
                    }
                    el.text.clear();
                }
                return Ok(self.attach(el));
            }
            Event::Text(t) => add_text(&mut self.open, &t.xml10_content())?,
            Event::CData(c) => add_text(&mut self.open, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let ch = reference(&r)?;
                add_text(&mut self.open, ch.encode_utf8(&mut [0; 4]))?;
            }
            Event::Eof | Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        Ok(None)
    }

    fn attach(&mut self, el: Element) -> Option<Element> {
        match self.open.last_mut() {
            Some(parent) => {
                parent.children.push(el);
                None
            }
            None => Some(el),
        }
    }
}

/// Reads a document one child of the root at a time, so a file of any size is read in
/// memory bounded by its largest record. The same rules as [`parse`] apply.
pub struct ElementStream<R: std::io::BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    root: Element,
    tree: Tree,
    done: bool,
}

impl<R: std::io::BufRead> ElementStream<R> {
    /// Reads up to the root's start tag.
    pub fn new(input: R) -> Result<ElementStream<R>, XmlError> {
        let mut reader = Reader::from_reader(input);
        let mut buf = Vec::with_capacity(1 << 16);
        loop {
            buf.clear();
            let at = reader.buffer_position();
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| read_error(&e, at, u64::MAX))?;
            let fail = |reason: String| XmlError { offset: at, reason };
            let empty = matches!(event, Event::Empty(_));
            match event {
                Event::Start(start) | Event::Empty(start) => {
                    let root = element(&start).map_err(fail)?;
                    return Ok(ElementStream {
                        reader,
                        buf,
                        root,
                        tree: Tree::default(),
                        done: empty,
                    });
                }
                Event::Eof => return Err(fail("there is no root element".into())),
                Event::Text(t) if t.xml10_content().trim().is_empty() => {}
                Event::Decl(_)
                | Event::PI(_)
                | Event::Comment(_)
                | Event::DocType(_)
                | Event::Text(_) => {
                    if let Event::Text(_) = event {
                        return Err(fail("text outside the root element".into()));
                    }
                }
                Event::End(_) | Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(fail("text or an end tag before the root element".into()));
                }
            }
        }
    }

    /// The root element, without its children.
    pub fn root(&self) -> &Element {
        &self.root
    }

    /// Hands a child back once it has been read, so the next ones reuse its buffers.
    pub fn recycle(&mut self, child: Element) {
        self.tree.recycle(child);
    }

    /// The next child of the root, or `None` once the root has ended (and nothing but
    /// whitespace, comments and processing instructions follows it).
    pub fn next_child(&mut self) -> Result<Option<Element>, XmlError> {
        while !self.done {
            self.buf.clear();
            let at = self.reader.buffer_position();
            let event = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| read_error(&e, at, u64::MAX))?;
            let fail = |reason: String| XmlError { offset: at, reason };
            match event {
                Event::Eof => {
                    let name = self.tree.open_name().unwrap_or(&self.root.name);
                    return Err(fail(format!("the input ends inside <{name}> (truncated?)")));
                }
                Event::End(_) if self.tree.open.is_empty() => {
                    self.done = true;
                    self.finish()?;
                }
                Event::Text(t) if self.tree.open.is_empty() => {
                    if !t.xml10_content().trim().is_empty() {
                        return Err(fail(format!(
                            "<{}> mixes text and elements",
                            self.root.name
                        )));
                    }
                }
                Event::CData(_) | Event::GeneralRef(_) if self.tree.open.is_empty() => {
                    return Err(fail(format!(
                        "<{}> mixes text and elements",
                        self.root.name
                    )));
                }
                other => {
                    if let Some(child) = self.tree.feed(other).map_err(fail)? {
                        return Ok(Some(child));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Checks that only whitespace, comments and processing instructions follow the root.
    fn finish(&mut self) -> Result<(), XmlError> {
        loop {
            self.buf.clear();
            let at = self.reader.buffer_position();
            let event = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| read_error(&e, at, u64::MAX))?;
            match event {
                Event::Eof => return Ok(()),
                Event::Text(t) if t.xml10_content().trim().is_empty() => {}
                Event::PI(_) | Event::Comment(_) => {}
                _ => {
                    return Err(XmlError {
                        offset: at,
                        reason: "content after the root element".into(),
                    });
                }
            }
        }
    }
}

fn add_text(open: &mut [Element], text: &str) -> Result<(), String> {
    check_chars(text)?;
    match open.last_mut() {
        Some(el) => el.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err("text outside the root element".into()),
    }
    Ok(())
}

fn check_chars(text: &str) -> Result<(), String> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(format!(
            "U+{:04X} is a character XML 1.0 does not allow",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

fn reference(r: &BytesRef<'_>) -> Result<char, String> {
    if let Some(ch) = r.resolve_char_ref().map_err(|e| e.to_string())? {
        check_chars(ch.encode_utf8(&mut [0; 4]))?;
        return Ok(ch);
    }
    match &**r {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(format!("the entity &{other}; is not defined")),
    }
}

fn element(start: &BytesStart<'_>) -> Result<Element, String> {
    element_into(start, Element::default())
}

/// Fills `el` (whose buffers may be reused) from a start tag.
fn element_into(start: &BytesStart<'_>, mut el: Element) -> Result<Element, String> {
    el.name.clear();
    el.name.push_str(start.name().as_ref());
    el.text.clear();
    el.children.clear();
    el.attrs.clear();
    let mut attrs = std::mem::take(&mut el.attrs);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = attr.key.as_ref().to_string();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?
            .into_owned();
        check_chars(&value)?;
        attrs.push((key, value));
    }
    el.attrs = attrs;
    Ok(el)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entities, character references and CDATA decode into the text; attributes decode too.
    #[test]
    fn decodes_text_and_attributes() {
        let el = parse("<a k=\"x &amp; y\">1 &lt; 2&#13;3<![CDATA[<b>]]></a>").expect("valid");
        assert_eq!(el.text, "1 < 2\r3<b>");
        assert_eq!(el.attr("K"), Some("x & y"));
    }

    /// Truncated, mixed and doubled documents are refused with a reason.
    #[test]
    fn refuses_malformed_documents() {
        let e = parse("<t><r><c>A</c>").expect_err("truncated");
        assert!(e.reason.contains("truncated"), "{e}");
        let e = parse("<t>x<r/></t>").expect_err("mixed");
        assert!(e.reason.contains("mixes"), "{e}");
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a>&nbsp;</a>").is_err());
    }

    /// Characters XML 1.0 forbids are refused, whether written raw or as references.
    #[test]
    fn refuses_forbidden_characters() {
        for doc in [
            "<a>&#1;</a>",
            "<a>x\u{1}</a>",
            "<a k=\"&#x1F;\"/>",
            "<a>&#xFFFE;</a>",
        ] {
            let e = parse(doc).expect_err(doc);
            assert!(e.reason.contains("does not allow"), "{doc}: {e}");
        }
        assert_eq!(parse("<a>&#9;&#10;</a>").expect("allowed").text, "\t\n");
    }
}
