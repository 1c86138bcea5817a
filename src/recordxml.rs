//! Reads record elements straight from quick-xml events into `Field`s, with no element tree
//! between: the fast path for export pages and record files, which a first sync of a million
//! transactions parses some 8 GB of. It accepts only the plain shape MoneyWorks writes
//! (fields, subfiles of rows, text and references, `system` attributes without references)
//! and answers `None` for anything else, so the caller falls back to `xmltree` and
//! `Record::from_element`, which own every error message. It must never accept what that path
//! refuses, nor read a record differently from it.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;

use crate::record::{Field, Row, Value, is_field_name};
use crate::xmltree::{self, Element};

/// A document being read element by element.
pub(crate) struct FastReader<'a> {
    reader: Reader<&'a [u8]>,
}

impl<'a> FastReader<'a> {
    /// Opens `input` and reads up to its root's start tag: the root's name and attributes,
    /// without its content (attribute values as written, which here are the decoded values:
    /// a value holding a reference or a line break is refused).
    pub fn open(input: &'a str) -> Option<(FastReader<'a>, Element)> {
        let mut fast = FastReader {
            reader: Reader::from_str(input),
        };
        loop {
            match fast.next()? {
                Event::Decl(_) => {}
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                Event::Start(start) => {
                    let name = start.name().0.to_string();
                    let attrs = plain_attributes(&start)
                        .map(|(k, v)| Some((k?.to_string(), v.to_string())))
                        .collect::<Option<_>>()?;
                    let root = Element {
                        name,
                        attrs,
                        ..Element::default()
                    };
                    return Some((fast, root));
                }
                _ => return None,
            }
        }
    }

    /// Reads the records inside the root: elements named `element` (case-insensitively)
    /// without attributes, up to the root's end and the end of the document.
    pub fn records(mut self, element: &str) -> Option<Vec<Vec<Field>>> {
        let mut records = Vec::new();
        while let Some((start, empty)) = self.child()? {
            let name = start.name().0;
            if empty || !name.eq_ignore_ascii_case(element) || start.attributes().next().is_some() {
                return None;
            }
            records.push(self.fields("")?);
        }
        self.end()?;
        Some(records)
    }

    /// Reads the fields of the root itself (a record file), up to the end of the document.
    pub fn record(mut self) -> Option<Vec<Field>> {
        let fields = self.fields("")?;
        self.end()?;
        Some(fields)
    }

    fn next(&mut self) -> Option<Event<'a>> {
        self.reader.read_event().ok()
    }

    /// The next child of the element being read, with whether it is empty (`<x/>`), skipping
    /// blank text; `Some(None)` at the element's end, `None` for anything else.
    fn child(&mut self) -> Option<Option<(BytesStart<'a>, bool)>> {
        loop {
            return match self.next()? {
                Event::Text(t) if is_blank(&t.xml10_content()) => continue,
                Event::End(_) => Some(None),
                Event::Start(start) => Some(Some((start, false))),
                Event::Empty(start) => Some(Some((start, true))),
                _ => None,
            };
        }
    }

    /// Only blank text may follow the root.
    fn end(&mut self) -> Option<()> {
        loop {
            match self.next()? {
                Event::Eof => return Some(()),
                Event::Text(t) if is_blank(&t.xml10_content()) => {}
                _ => return None,
            }
        }
    }

    /// The fields of the element just started, up to its end; row fields must start with
    /// `prefix`.
    fn fields(&mut self, prefix: &str) -> Option<Vec<Field>> {
        // Most records and rows hold dozens of fields; start there rather than grow to it.
        let mut fields = Vec::with_capacity(32);
        while let Some((start, empty)) = self.child()? {
            let name = start.name().0;
            let attrs = Attributes::of(&start)?;
            if name.eq_ignore_ascii_case("subfile") {
                let subfile = attrs.name?.to_string();
                let rows = if empty {
                    Vec::new()
                } else {
                    self.rows(&subfile.to_ascii_lowercase())?
                };
                fields.push(Field {
                    name: subfile,
                    system: attrs.system,
                    value: Value::Subfile(rows),
                });
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if !lower.starts_with(prefix) || !is_field_name(name) {
                return None;
            }
            let text = if empty { String::new() } else { self.text()? };
            fields.push(Field {
                name: lower,
                system: attrs.system,
                value: Value::Text(text),
            });
        }
        Some(fields)
    }

    /// The rows of the subfile just started, each an element named `row`.
    fn rows(&mut self, row: &str) -> Option<Vec<Row>> {
        let prefix = format!("{row}.");
        let mut rows = Vec::new();
        while let Some((start, empty)) = self.child()? {
            if !start.name().0.eq_ignore_ascii_case(row) {
                return None;
            }
            let system = Attributes::of(&start)?.system;
            let fields = if empty {
                Vec::new()
            } else {
                self.fields(&prefix)?
            };
            rows.push(Row { system, fields });
        }
        Some(rows)
    }

    /// The text of the leaf just started, up to its end.
    fn text(&mut self) -> Option<String> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Event::Text(t) if text.is_empty() => text = t.xml10_content().into_owned(),
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => text.push(xmltree::resolve(&r).ok()?),
                Event::End(_) => return Some(text),
                _ => return None,
            }
        }
    }
}

/// What a field, subfile or row element's attributes say.
struct Attributes<'s> {
    /// `system="true"`, the first `system` attribute in any case deciding.
    system: bool,
    /// The first `name` attribute in any case.
    name: Option<&'s str>,
}

impl<'s> Attributes<'s> {
    fn of(start: &'s BytesStart<'_>) -> Option<Attributes<'s>> {
        let (mut system, mut name) = (None, None);
        for (key, value) in plain_attributes(start) {
            let key = key?;
            if key.eq_ignore_ascii_case("system") {
                system.get_or_insert(value);
            } else if key.eq_ignore_ascii_case("name") {
                name.get_or_insert(value);
            }
        }
        Some(Attributes {
            system: system.is_some_and(|v| v.eq_ignore_ascii_case("true")),
            name,
        })
    }
}

/// The attributes of `start` as (key, value); a key of `None` stands for an attribute that
/// is malformed or whose value would change when decoded (a reference, a tab or line break).
fn plain_attributes<'s>(
    start: &'s BytesStart<'_>,
) -> impl Iterator<Item = (Option<&'s str>, &'s str)> {
    start.attributes().map(|attr| match attr {
        Ok(Attribute {
            key: QName(key),
            value: Cow::Borrowed(value),
        }) if !value
            .bytes()
            .any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r')) =>
        {
            (Some(key), value)
        }
        _ => (None, ""),
    })
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::moneyworks::xml::{parse_export, parse_plain_export, parse_tree_export};
    use crate::record::{Record, Value, table_info};
    use mwsync_sim::data::{GenSpec, generate};
    use mwsync_sim::export_xml::{Flavour, write_table};

    /// Every table of a generated document, as the simulator exports it, is read by the fast
    /// path, exactly as the tree reads it; so is every record's canonical file.
    #[test]
    fn generated_pages_and_files_read_as_the_tree_reads_them() {
        let ds = generate(&GenSpec {
            seed: 7,
            ..GenSpec::default()
        });
        let mut tables = 0;
        for (name, records) in &ds.tables {
            let (Some(table), Some(schema)) =
                (table_info(name), mwsync_sim::schema::schema_by_name(name))
            else {
                continue;
            };
            tables += 1;
            let n = records.len() as u64;
            let body =
                write_table(schema.info, records.iter(), 0, n, Flavour::Verbose).expect("writable");
            let tree = parse_tree_export(&body, Some(table)).expect("a valid page");
            let fast = parse_plain_export(&body, Some(table))
                .unwrap_or_else(|| panic!("{name}: the verbose page took the tree path"));
            assert_eq!(fast, tree, "{name}");
            assert_eq!(fast.records.len(), records.len(), "{name}");
            // Terse pages lack sequence numbers, so their records are rejected: the tree
            // path's answer, whichever path gives it.
            let terse =
                write_table(schema.info, records.iter(), 0, n, Flavour::Terse).expect("writable");
            assert_eq!(
                parse_export(&terse, Some(table)),
                parse_tree_export(&terse, Some(table)),
                "{name} terse"
            );
            for record in records {
                let file = mwsync_sim::layout::canonical_xml(record).expect("writable");
                let fast = Record::from_plain_xml(table, &file)
                    .unwrap_or_else(|| panic!("{name}: a canonical file took the tree path"));
                assert_eq!(Ok(fast), Record::from_xml_tree(table, &file), "{file}");
            }
        }
        assert!(tables >= 10, "only {tables} tables compared");
    }

    /// Odd but plain documents: references of every kind, line ends, empty forms, case,
    /// subfiles with system and empty rows, a declaration and blank lines.
    #[test]
    fn odd_plain_documents_read_as_the_tree_reads_them() {
        let name = table_info("Name").expect("known");
        let transaction = table_info("Transaction").expect("known");
        let cases = [
            (
                name,
                "<name><code>A&amp;B &lt;x&gt; &quot;&apos;&#13;&#9;&#x41;</code></name>",
            ),
            (name, "<name><code>a\r\nb\rc</code></name>"),
            (
                name,
                "<name><code>é漢字🙂</code><notes>  spaced  </notes></name>",
            ),
            (name, "<name><code/><notes></notes><x.y_z>1</x.y_z></name>"),
            (
                name,
                "<name><sequencenumber SYSTEM=\"TRUE\">3</sequencenumber><code system='false' x='1'>A</code></name>",
            ),
            (
                name,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<name>\n  <code>A</code>\n</name>\n\n",
            ),
            (name, "<NAME><Code>A</Code></NAME>"),
            (name, "<name></name>"),
            (
                transaction,
                "<transaction><sequencenumber system=\"true\">1</sequencenumber>\
                 <subfile name=\"Detail\" system=\"true\"><detail system=\"true\">\
                 <detail.account>1</detail.account><Detail.Gross/></detail><detail/>\
                 <DETAIL></DETAIL></subfile><subfile name=\"Detail\"/></transaction>",
            ),
        ];
        for (table, xml) in cases {
            let fast = Record::from_plain_xml(table, xml)
                .unwrap_or_else(|| panic!("took the tree path: {xml}"));
            assert_eq!(Ok(fast), Record::from_xml_tree(table, xml), "{xml}");
        }
    }

    /// Whatever is not plain goes down the tree path, which owns its error or its reading.
    #[test]
    fn anything_unusual_takes_the_tree_path() {
        let name = table_info("Name").expect("known");
        let transaction = table_info("Transaction").expect("known");
        let files = [
            (name, "<name><code>A<!-- c -->B</code></name>"),
            (name, "<name><code><![CDATA[<q>]]></code></name>"),
            (name, "<name><code system=\"&#116;rue\">A</code></name>"),
            (name, "<name><code system=\"true\t\">A</code></name>"),
            (
                name,
                "<name><code system=\"true\" system=\"false\">A</code></name>",
            ),
            (name, "<name>x<code>A</code></name>"),
            (name, "<name><code><b>X</b></code></name>"),
            (name, "<product><code>X</code></product>"),
            (name, "<name a=\"1\"><code>X</code></name>"),
            (name, "<name><co-de>X</co-de></name>"),
            (name, "<name><code>&nbsp;</code></name>"),
            (name, "<name><code>A</code>"),
            (name, "<name><code>A</code></name>x"),
            (name, "<name></name><name></name>"),
            (name, "<name/>"),
            (name, "<!DOCTYPE name><name><code>A</code></name>"),
            (name, "<name><code>A</code></nam>"),
            (
                transaction,
                "<transaction><subfile name=\"Detail\"><detail><account>1</account></detail></subfile></transaction>",
            ),
            (
                transaction,
                "<transaction><subfile><detail/></subfile></transaction>",
            ),
            (
                transaction,
                "<transaction><subfile name=\"Detail\"><line/></subfile></transaction>",
            ),
            (
                transaction,
                "<transaction><subfile name=\"Detail\">junk</subfile></transaction>",
            ),
        ];
        for (table, xml) in files {
            assert_eq!(Record::from_plain_xml(table, xml), None, "{xml}");
            assert_eq!(
                Record::from_xml(table, xml),
                Record::from_xml_tree(table, xml)
            );
        }
        let page = |records: &str, count: usize| {
            format!(
                "<table name=\"Name\" count=\"{count}\" start=\"0\" found=\"9\">{records}</table>"
            )
        };
        let seq = "<name><sequencenumber>1</sequencenumber></name>";
        let pages = [
            page("<name><code>A</code></name>", 1),
            page("<product><sequencenumber>1</sequencenumber></product>", 1),
            page("<name x=\"1\"><sequencenumber>1</sequencenumber></name>", 1),
            page(seq, 2),
            page(&format!("{seq}junk"), 1),
            page(&format!("{seq}<name><code><b/></code></name>"), 2),
            format!("<tables>{seq}</tables>"),
            "<table name=\"Name\" count=\"1\" start=\"0\" found=\"9\">".to_string() + seq,
            page(seq, 1).replace("name=\"Name\"", "name=\"Nope\""),
        ];
        for body in pages {
            assert_eq!(parse_plain_export(&body, None), None, "{body}");
            assert_eq!(parse_export(&body, None), parse_tree_export(&body, None));
        }
        assert!(parse_plain_export(&page(seq, 1), None).is_some());
    }

    /// Seeded random values, written with every form of reference XML allows, read back
    /// by the fast path as the values themselves and as the tree reads them.
    #[test]
    fn random_values_round_trip_through_the_fast_path() {
        let name = table_info("Name").expect("known");
        let alphabet: Vec<char> = "aZ09 &<>\"'\t\n\r;#]]>é漢🙂\u{a0}".chars().collect();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..500 {
            let fields: Vec<(String, String)> = (0..rng.random_range(1..6))
                .map(|i| {
                    let len = rng.random_range(0..12);
                    let value = (0..len)
                        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                        .collect();
                    (format!("f{i}"), value)
                })
                .collect();
            let mut xml = String::from("<name>");
            for (field, value) in &fields {
                xml.push_str(&format!("<{field}>"));
                for ch in value.chars() {
                    let by_number = rng.random_bool(0.3);
                    match ch {
                        '&' => xml.push_str("&amp;"),
                        '<' => xml.push_str("&lt;"),
                        '>' if by_number => xml.push_str("&gt;"),
                        '\r' => xml.push_str("&#13;"),
                        c if by_number => xml.push_str(&format!("&#x{:X};", u32::from(c))),
                        c => xml.push(c),
                    }
                }
                xml.push_str(&format!("</{field}>"));
            }
            xml.push_str("</name>");
            let fast = Record::from_plain_xml(name, &xml)
                .unwrap_or_else(|| panic!("took the tree path: {xml}"));
            let read: Vec<(String, String)> = fast
                .fields
                .iter()
                .map(|f| match &f.value {
                    Value::Text(t) => (f.name.clone(), t.clone()),
                    Value::Subfile(_) => panic!("no subfiles here"),
                })
                .collect();
            assert_eq!(read, fields, "{xml}");
            assert_eq!(Ok(fast), Record::from_xml_tree(name, &xml), "{xml}");
        }
    }
}
