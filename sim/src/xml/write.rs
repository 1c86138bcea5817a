//! The simulator's one XML writer: indentation by depth, the document declaration, the two
//! ways an empty element is written, and escaping. Export replies, record files, the `list`
//! reply, generated data and anonymized values are all written through it. Characters XML
//! 1.0 cannot carry are refused in every style but the fake server's export replies, which
//! write them as character references the way a MoneyWorks server holding one is guessed to.

/// True for the characters XML 1.0 allows in a document (its `Char` production).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// A character XML 1.0 cannot carry, found in text to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "U+{code:04X} at character {at} cannot be written: XML 1.0 does not allow it, even as a \
     character reference",
    code = u32::from(*ch)
)]
pub struct Forbidden {
    /// The character.
    pub ch: char,
    /// Its index in the text, counted in characters from 0.
    pub at: usize,
}

/// What a writer does with a character XML 1.0 cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwritable {
    /// Refuse it: the document would not be XML (record files, data files, anonymized values).
    Refuse,
    /// Write it as a character reference (`&#7;`), as the fake's export replies do to model a
    /// server that holds such a character (a guess: MONEYWORKS.md §3 shows `&#13;` for CR).
    Reference,
}

/// Appends `text` escaped for element content or a double-quoted attribute value: `& < > "`
/// become entities, and tab, line feed and carriage return become character references so a
/// value always stays on one line. Characters XML 1.0 cannot carry are refused.
pub fn escape_into(out: &mut String, text: &str) -> Result<(), Forbidden> {
    escape_with(out, text, Unwritable::Refuse)
}

fn escape_with(out: &mut String, text: &str, unwritable: Unwritable) -> Result<(), Forbidden> {
    for (at, ch) in text.chars().enumerate() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            c if unwritable == Unwritable::Reference => {
                out.push_str("&#");
                out.push_str(&u32::from(c).to_string());
                out.push(';');
            }
            c => return Err(Forbidden { ch: c, at }),
        }
    }
    Ok(())
}

/// How an element with no content is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// `<x/>`, as in mwsync's record files.
    SelfClosing,
    /// `<x></x>`, as in MoneyWorks export replies.
    Pair,
}

/// The layout of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// The declaration line (without its line feed); empty for a fragment.
    pub declaration: &'static str,
    /// How empty leaves are written.
    pub empty: Empty,
    /// What happens to characters XML 1.0 cannot carry.
    pub unwritable: Unwritable,
}

impl Style {
    /// MoneyWorks export replies: `<?xml version="1.0"?>` and `<x></x>`.
    pub const EXPORT: Style = Style {
        declaration: "<?xml version=\"1.0\"?>",
        empty: Empty::Pair,
        unwritable: Unwritable::Reference,
    };
    /// mwsync's record files: the UTF-8 declaration and `<x/>`.
    pub const RECORD_FILE: Style = Style {
        declaration: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        empty: Empty::SelfClosing,
        unwritable: Unwritable::Refuse,
    };
}

/// Writes one document (or fragment) into a string, one element per line, indented by two
/// spaces per level, with LF line ends.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
    depth: usize,
    style: Style,
}

impl XmlWriter {
    /// A document in `style`, its declaration written.
    pub fn new(style: Style, capacity: usize) -> XmlWriter {
        let mut out = String::with_capacity(capacity);
        if !style.declaration.is_empty() {
            out.push_str(style.declaration);
            out.push('\n');
        }
        XmlWriter {
            out,
            depth: 0,
            style,
        }
    }

    /// A fragment without declaration whose outermost elements sit at `depth`.
    pub fn fragment(style: Style, depth: usize) -> XmlWriter {
        XmlWriter {
            out: String::new(),
            depth,
            style: Style {
                declaration: "",
                ..style
            },
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), Forbidden> {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_with(&mut self.out, value, self.style.unwritable)?;
            self.out.push('"');
        }
        Ok(())
    }

    /// Opens an element that holds child elements.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), Forbidden> {
        self.indent();
        self.tag(name, attrs)?;
        self.out.push_str(">\n");
        self.depth += 1;
        Ok(())
    }

    /// Closes the element opened last, which must be `name`.
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// An element with text only; empty text is written in the style's empty form.
    pub fn leaf(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        text: &str,
    ) -> Result<(), Forbidden> {
        if text.is_empty() && self.style.empty == Empty::SelfClosing {
            return self.empty(name, attrs);
        }
        self.indent();
        self.tag(name, attrs)?;
        self.out.push('>');
        escape_with(&mut self.out, text, self.style.unwritable)?;
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        Ok(())
    }

    /// An element with no content, always written `<x/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), Forbidden> {
        self.indent();
        self.tag(name, attrs)?;
        self.out.push_str("/>\n");
        Ok(())
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escaping keeps a value on one line and turns markup characters into entities.
    #[test]
    fn escapes_markup_and_line_breaks() {
        let mut out = String::new();
        escape_into(&mut out, "a<b>&\"c\"\r\n\td é").expect("allowed");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&quot;&#13;&#10;&#9;d é");
    }

    /// Forbidden characters are refused with their position, never referenced.
    #[test]
    fn refuses_forbidden_characters() {
        for (text, ch, at) in [
            ("ab\u{1}", '\u{1}', 2),
            ("\u{B}", '\u{B}', 0),
            ("x\u{FFFF}", '\u{FFFF}', 1),
        ] {
            let mut out = String::new();
            assert_eq!(escape_into(&mut out, text), Err(Forbidden { ch, at }));
        }
        let e = Forbidden {
            ch: '\u{1b}',
            at: 3,
        };
        assert!(e.to_string().starts_with("U+001B at character 3"), "{e}");
    }

    /// Export replies reference what XML 1.0 cannot carry; record files refuse it.
    #[test]
    fn only_export_replies_reference_unwritable_characters() {
        let mut w = XmlWriter::fragment(Style::EXPORT, 0);
        w.leaf("phone", &[], "555\u{7}0100")
            .expect("export style references it");
        assert_eq!(w.finish(), "<phone>555&#7;0100</phone>\n");
        let mut w = XmlWriter::fragment(Style::RECORD_FILE, 0);
        assert_eq!(
            w.leaf("phone", &[], "555\u{7}0100"),
            Err(Forbidden { ch: '\u{7}', at: 3 })
        );
    }

    /// Both styles lay out nested elements, empty leaves and attributes.
    #[test]
    fn styles_lay_out_documents() {
        let mut w = XmlWriter::new(Style::EXPORT, 0);
        w.open("t", &[("name", "A&B")]).expect("ok");
        w.leaf("x", &[], "").expect("ok");
        w.leaf("y", &[("system", "true")], "1").expect("ok");
        w.close("t");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\"?>\n<t name=\"A&amp;B\">\n  <x></x>\n  <y system=\"true\">1</y>\n</t>\n"
        );
        let mut w = XmlWriter::fragment(Style::RECORD_FILE, 1);
        w.leaf("x", &[], "").expect("ok");
        assert_eq!(w.finish(), "  <x/>\n");
    }
}
