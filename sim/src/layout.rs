//! The repository layout mwsync promises (README "What lands on main", docs/decisions.md
//! "Shards and key encoding"), implemented a second time, independently of the engine: key
//! encoding, shard directories, record paths and the canonical bytes of a record file. The
//! anonymizer uses it to move record files, and the tests use it to say what `main` must
//! hold, so a bug in the engine's layout cannot pass by being shared. It must not be
//! "simplified" into a call to the engine: the duplication is the point.

use crate::record::{FieldView, Record};
use crate::schema::{Key, SEQ, TableInfo, table_by_element};
use crate::xml::{Element, Forbidden, Style, XmlWriter};

/// A record's key within its table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    /// A unique code, exactly as MoneyWorks holds it.
    Code(String),
    /// A sequence number.
    Seq(u64),
}

/// A path, record or file that does not fit the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A path that is not `{table}/{shard}/{shard}/{shard}/{key}.xml` as the layout writes it.
    #[error("`{path}` is not a record path: {reason}")]
    Path {
        /// The path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A record without a usable key.
    #[error("the {table} record has no usable key: {reason}")]
    Key {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A record file that is not well-formed or not shaped like a record.
    #[error("not a record file: {0}")]
    File(String),
    /// A value the file form cannot carry.
    #[error("field <{field}>: {source}")]
    Forbidden {
        /// The field.
        field: String,
        /// The character.
        source: Forbidden,
    },
}

/// Encodes a code as a file-name stem that survives case-insensitive file systems:
/// `A`-`Z`, `0`-`9`, `-` and `_` stay; a lowercase ASCII letter becomes `~` and the letter;
/// every other byte of the UTF-8 text becomes `%` and two uppercase hex digits. A stem that
/// names a Windows device (`CON`, `PRN`, `AUX`, `NUL`, `COM`/`LPT` and a digit) has its first
/// letter written as `%XX` too.
pub fn encode_code(code: &str) -> String {
    let mut stem = String::with_capacity(code.len() * 2);
    for byte in code.bytes() {
        if byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_' {
            stem.push(char::from(byte));
        } else if byte.is_ascii_lowercase() {
            stem.push('~');
            stem.push(char::from(byte));
        } else {
            stem.push_str(&format!("%{byte:02X}"));
        }
    }
    if names_a_device(&stem) {
        let first = stem.remove(0);
        stem.insert_str(0, &format!("%{:02X}", u32::from(first)));
    }
    stem
}

/// True for the Windows device names, which no file may be called whatever its extension.
fn names_a_device(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    match upper.as_bytes() {
        [a, b, c] => matches!(&[*a, *b, *c], b"CON" | b"PRN" | b"AUX" | b"NUL"),
        [a, b, c, digit] => matches!(&[*a, *b, *c], b"COM" | b"LPT") && digit.is_ascii_digit(),
        _ => false,
    }
}

/// Reverses [`encode_code`], refusing every stem it would not write, so that one code has
/// exactly one file name.
pub fn decode_stem(stem: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(stem.len());
    let mut rest = stem.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        match first {
            b'~' => match rest.split_first() {
                Some((&l, tail)) if l.is_ascii_lowercase() => {
                    bytes.push(l);
                    rest = tail;
                }
                _ => return Err("`~` must be followed by a lowercase letter".into()),
            },
            b'%' => {
                let hex = rest
                    .get(..2)
                    .ok_or("`%` must be followed by two hex digits")?;
                let digit = |h: u8| match h {
                    b'0'..=b'9' => Some(h - b'0'),
                    b'A'..=b'F' => Some(h - b'A' + 10),
                    _ => None,
                };
                match (digit(hex[0]), digit(hex[1])) {
                    (Some(hi), Some(lo)) => bytes.push(hi * 16 + lo),
                    _ => return Err("`%` must be followed by two uppercase hex digits".into()),
                }
                rest = &rest[2..];
            }
            b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => bytes.push(first),
            other => {
                return Err(format!(
                    "`{}` cannot appear in an encoded code",
                    char::from(other)
                ));
            }
        }
    }
    let code = String::from_utf8(bytes).map_err(|_| "the decoded code is not UTF-8".to_string())?;
    if code.is_empty() {
        return Err("the code is empty".into());
    }
    if encode_code(&code) != stem {
        return Err(format!(
            "`{stem}` is not how `{code}` is written (that is `{}`)",
            encode_code(&code)
        ));
    }
    Ok(code)
}

/// 64-bit FNV-1a over `bytes`.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The file-name stem and the shard bucket of a key: a sequence number's hundreds, or the
/// FNV-1a hash of a code's stem modulo a million.
fn placement(key: &RecordKey) -> (String, u64) {
    match key {
        RecordKey::Seq(n) => (n.to_string(), n / 100),
        RecordKey::Code(code) => {
            let stem = encode_code(code);
            let h = fnv1a_64(stem.as_bytes()) % 1_000_000;
            (stem, h)
        }
    }
}

/// The repository path of the record of `table` with `key`:
/// `{table}/{d1}/{d2}/{d3}/{stem}.xml`, where the bucket written with at least six digits
/// splits into the directories: its last two digits are `d3`, the two before `d2`, and the
/// rest `d1`.
pub fn path(table: &TableInfo, key: &RecordKey) -> String {
    let (stem, bucket) = placement(key);
    let digits = format!("{bucket:06}");
    let (rest, last4) = digits.split_at(digits.len() - 4);
    let (d2, d3) = last4.split_at(2);
    format!("{}/{rest}/{d2}/{d3}/{stem}.xml", table.element)
}

/// The key `record` is filed under.
pub fn key_of(record: &Record) -> Result<RecordKey, LayoutError> {
    let info = record.info();
    let err = |reason: String| LayoutError::Key {
        table: info.name,
        reason,
    };
    match (info.key, record.code()) {
        (Key::Code(field), Some("")) => Err(err(format!("its {field} is empty"))),
        (Key::Code(_), Some(code)) => Ok(RecordKey::Code(code.to_string())),
        (Key::Code(field), None) => Err(err(format!("it has no {field} field"))),
        (Key::Seq, _) => record
            .get(SEQ)
            .trim()
            .parse()
            .map(RecordKey::Seq)
            .map_err(|_| err("its sequencenumber is not a number".into())),
    }
}

/// The repository path of `record`'s file.
pub fn record_path(record: &Record) -> Result<String, LayoutError> {
    Ok(path(record.info(), &key_of(record)?))
}

/// Reads a repository path back into its table and key, refusing every path [`path`] would
/// not write (`..`, absolute paths, wrong shards, leading zeros, non-canonical stems).
pub fn parse_path(text: &str) -> Result<(&'static TableInfo, RecordKey), LayoutError> {
    let err = |reason: &str| LayoutError::Path {
        path: text.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = text.split('/').collect();
    let [dir, _, _, _, file] = parts[..] else {
        return Err(err(
            "it does not have the form {table}/{shard}/{shard}/{shard}/{key}.xml",
        ));
    };
    let table = table_by_element(dir).ok_or_else(|| err("its first directory names no table"))?;
    let stem = file
        .strip_suffix(".xml")
        .ok_or_else(|| err("the file name does not end in .xml"))?;
    let key = match table.key {
        Key::Seq => {
            let n: u64 = stem
                .parse()
                .map_err(|_| err("the file name is not a sequence number"))?;
            RecordKey::Seq(n)
        }
        Key::Code(_) => RecordKey::Code(decode_stem(stem).map_err(|e| err(&e))?),
    };
    if path(table, &key) != text {
        return Err(err("it is not where the layout files that key"));
    }
    Ok((table, key))
}

/// A record file as a tree: the file form mwsync writes and writers edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFile {
    root: Element,
}

impl RecordFile {
    /// Parses a record file.
    pub fn parse(text: &str) -> Result<RecordFile, LayoutError> {
        let root = crate::xml::parse(text).map_err(|e| LayoutError::File(e.to_string()))?;
        Ok(RecordFile { root })
    }

    /// The file form of `record`: its fields in server order, as an export carries them.
    pub fn of(record: &Record) -> RecordFile {
        let leaf = |name: &str, system: bool, text: &str| Element {
            name: name.to_string(),
            attrs: system_attr(system),
            children: Vec::new(),
            text: text.to_string(),
        };
        let mut children = Vec::new();
        for view in record.fields() {
            match view {
                FieldView::Text { name, system, text } => children.push(leaf(name, system, text)),
                FieldView::Subfile { sub, rows } => children.push(Element {
                    name: "subfile".into(),
                    attrs: vec![("name".into(), sub.name.into())],
                    children: rows
                        .iter()
                        .map(|row| Element {
                            name: sub.row_element(),
                            attrs: system_attr(row.system),
                            children: row.fields(sub).map(|(n, s, t)| leaf(n, s, t)).collect(),
                            text: String::new(),
                        })
                        .collect(),
                    text: String::new(),
                }),
            }
        }
        RecordFile {
            root: Element {
                name: record.info().element.to_string(),
                attrs: Vec::new(),
                children,
                text: String::new(),
            },
        }
    }

    /// The root element's name.
    pub fn element(&self) -> &str {
        &self.root.name
    }

    /// The tree.
    pub fn root(&self) -> &Element {
        &self.root
    }

    /// The text of the top-level field `name` (case-insensitive).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.root.child(name).map(|c| c.text.as_str())
    }

    /// Sets the top-level field `name`, appending it when absent.
    pub fn set_text(&mut self, name: &str, text: &str) {
        match self
            .root
            .children
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(name))
        {
            Some(c) => c.text = text.to_string(),
            None => self.root.children.push(Element {
                name: name.to_string(),
                text: text.to_string(),
                ..Element::default()
            }),
        }
    }

    /// The canonical bytes: the UTF-8 declaration, the record element, one field per line
    /// indented two spaces per level, element names lowercase, `system="true"` the only
    /// attribute of a field or row, `name` the only other attribute of a subfile, empty
    /// fields and subfiles as `<x/>`, LF line ends and a final line feed.
    pub fn canonical(&self) -> Result<String, LayoutError> {
        let mut w = XmlWriter::new(Style::RECORD_FILE, 1024);
        let root = self.root.name.to_ascii_lowercase();
        w.open(&root, &[]).map_err(|e| forbidden(&root, e))?;
        write_fields(&mut w, &self.root.children)?;
        w.close(&root);
        Ok(w.finish())
    }
}

fn system_attr(system: bool) -> Vec<(String, String)> {
    if system {
        vec![("system".into(), "true".into())]
    } else {
        Vec::new()
    }
}

fn forbidden(field: &str, source: Forbidden) -> LayoutError {
    LayoutError::Forbidden {
        field: field.to_string(),
        source,
    }
}

/// Whether a field or row of a file is marked `system="true"` (any case).
fn is_system(el: &Element) -> bool {
    el.attr("system")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn write_fields(w: &mut XmlWriter, fields: &[Element]) -> Result<(), LayoutError> {
    for field in fields {
        let system: &[(&str, &str)] = if is_system(field) {
            &[("system", "true")]
        } else {
            &[]
        };
        if !field.name.eq_ignore_ascii_case("subfile") {
            let name = field.name.to_ascii_lowercase();
            w.leaf(&name, system, &field.text)
                .map_err(|e| forbidden(&name, e))?;
            continue;
        }
        let sub_name = field.attr("name").unwrap_or("");
        let mut attrs = vec![("name", sub_name)];
        attrs.extend_from_slice(system);
        if field.children.is_empty() {
            w.empty("subfile", &attrs)
                .map_err(|e| forbidden(sub_name, e))?;
            continue;
        }
        w.open("subfile", &attrs)
            .map_err(|e| forbidden(sub_name, e))?;
        let row_element = sub_name.to_ascii_lowercase();
        for row in &field.children {
            let row_system: &[(&str, &str)] = if is_system(row) {
                &[("system", "true")]
            } else {
                &[]
            };
            w.open(&row_element, row_system)
                .map_err(|e| forbidden(&row_element, e))?;
            write_fields(w, &row.children)?;
            w.close(&row_element);
        }
        w.close("subfile");
    }
    Ok(())
}

/// The canonical bytes of `record`'s file.
pub fn canonical_xml(record: &Record) -> Result<String, LayoutError> {
    RecordFile::of(record).canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::table_info;

    /// Awkward codes encode reversibly, and no two differ only by case once encoded.
    #[test]
    fn codes_encode_reversibly_and_case_safely() {
        let codes = [
            "ACME", "acme", "Acme", "A/B", "A.B", "A B", "50%", "A~B", "Äbc", "äbc", "日本", "CON",
            "con", "Con", "LPT1", "COM9", "COM", "..", "-_", "%41",
        ];
        let mut seen = std::collections::BTreeMap::new();
        for code in codes {
            let stem = encode_code(code);
            assert_eq!(decode_stem(&stem).as_deref(), Ok(code), "{code} via {stem}");
            if let Some(other) = seen.insert(stem.to_ascii_lowercase(), code) {
                panic!("{code} and {other} meet ignoring case as {stem}");
            }
        }
        assert_eq!(encode_code("CON"), "%43ON");
        assert_eq!(encode_code("lpt1"), "~l~p~t1");
        assert_eq!(encode_code("A/b%"), "A%2F~b%25");
        for bad in ["%41", "a", "~A", "%4", "%2f", "A.B", ""] {
            assert!(decode_stem(bad).is_err(), "{bad} should be refused");
        }
    }

    /// Paths shard as documented and parse back; anything else is refused.
    #[test]
    fn paths_round_trip_and_refuse_others() {
        let tx = table_info("transaction").expect("known");
        for (n, want) in [
            (7, "transaction/00/00/00/7.xml"),
            (12_345_678, "transaction/12/34/56/12345678.xml"),
            (123_456_789_012, "transaction/123456/78/90/123456789012.xml"),
        ] {
            assert_eq!(path(tx, &RecordKey::Seq(n)), want);
            assert_eq!(parse_path(want).expect("valid").1, RecordKey::Seq(n));
        }
        let name = table_info("name").expect("known");
        let p = path(name, &RecordKey::Code("ACME".into()));
        assert_eq!(
            p, "name/46/29/91/ACME.xml",
            "the shard of ACME is pinned by a golden file"
        );
        assert_eq!(
            parse_path(&p).expect("valid").1,
            RecordKey::Code("ACME".into())
        );
        for bad in [
            "../name/00/00/00/A.xml",
            "name/46/29/91/../A.xml",
            "nope/00/00/00/A.xml",
            "transaction/00/00/00/007.xml",
            "transaction/00/00/01/5.xml",
            "transaction/000/000/5.xml",
            "name/ACME.xml",
            "name/46/29/91/ACME.txt",
            "name/00/00/00/ACME.xml",
            "name/462/991/ACME.xml",
        ] {
            assert!(parse_path(bad).is_err(), "{bad} should be refused");
        }
    }

    /// The canonical form normalises a hand-written file and is a fixed point.
    #[test]
    fn canonical_form_is_a_fixed_point() {
        let file = RecordFile::parse(
            "<Name><CODE>A&amp;B</CODE><phone system=\"TRUE\" x=\"1\"></phone>\
             <subfile name=\"Contacts\"><contacts><contacts.role>x&#13;y</contacts.role></contacts></subfile>\
             <subfile name=\"Empty\"/></Name>",
        )
        .expect("well-formed");
        let text = file.canonical().expect("writable");
        assert_eq!(
            text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<name>\n  <code>A&amp;B</code>\n  \
             <phone system=\"true\"/>\n  <subfile name=\"Contacts\">\n    <contacts>\n      \
             <contacts.role>x&#13;y</contacts.role>\n    </contacts>\n  </subfile>\n  \
             <subfile name=\"Empty\"/>\n</name>\n"
        );
        assert_eq!(
            RecordFile::parse(&text).expect("valid").canonical(),
            Ok(text)
        );
    }
}
