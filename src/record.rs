//! MoneyWorks records as mwsync stores them: the record model, its canonical file form
//! (written by `xmlwrite`, read by `recordxml` or `xmltree`), key ↔ path mapping with sharding, and
//! field-level diffs. Pure functions only; it must not do I/O or know about git or HTTP.

use std::fmt;

use crate::mwtime::MwTime;
use crate::recordxml::FastReader;
use crate::xmltree::{self, Element};
use crate::xmlwrite::{self, XmlWriteError};

/// How a table's records are keyed in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// A unique code field (lowercase element name), e.g. `code` for Name.
    Code(&'static str),
    /// The record's SequenceNumber.
    Seq,
}

/// What mwsync knows about one MoneyWorks table.
#[derive(Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Internal table name as MoneyWorks writes it in `<table name=...>`, e.g. `Name`.
    pub name: &'static str,
    /// Record element and directory name: the lowercase table name, e.g. `name`.
    pub element: &'static str,
    /// Which field keys a record file.
    pub key: KeyField,
}

macro_rules! tables {
    ($($name:literal, $element:literal, $key:expr;)*) => {
        /// Every table mwsync can track, in a fixed order. Only tables with a `LastModifiedTime`
/// field qualify (Asset, AssetCat, Ledger and OffLedger have none that is documented).
        pub const TABLES: &[TableInfo] = &[$(TableInfo { name: $name, element: $element, key: $key }),*];
    };
}

tables! {
    "Account", "account", KeyField::Code("code");
    "Name", "name", KeyField::Code("code");
    "Product", "product", KeyField::Code("code");
    "Job", "job", KeyField::Code("code");
    "TaxRate", "taxrate", KeyField::Code("taxcode");
    "Department", "department", KeyField::Code("code");
    "General", "general", KeyField::Code("code");
    "Login", "login", KeyField::Code("initials");
    "Transaction", "transaction", KeyField::Seq;
    "Contacts", "contacts", KeyField::Seq;
    "Inventory", "inventory", KeyField::Seq;
    "Memo", "memo", KeyField::Seq;
    "JobSheet", "jobsheet", KeyField::Seq;
    "Build", "build", KeyField::Seq;
    "Payments", "payments", KeyField::Seq;
    "AutoSplit", "autosplit", KeyField::Seq;
    "User", "user", KeyField::Seq;
    "User2", "user2", KeyField::Seq;
}

/// Looks a table up by name, case-insensitively (`name`, `Name` and `NAME` are the same).
pub fn table_info(name: &str) -> Option<&'static TableInfo> {
    TABLES.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// The field holding a record's sequence number.
pub const SEQ_FIELD: &str = "sequencenumber";
/// The field holding a record's last modification time.
pub const LMT_FIELD: &str = "lastmodifiedtime";

/// One field of a record, in server order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Lowercase element name (`code`, `detail.account`); for a subfile, its `name` attribute.
    pub name: String,
    /// True when the server marked the field `system="true"` (not importable).
    pub system: bool,
    /// The field's value.
    pub value: Value,
}

/// A field's value: text, or the rows of a subfile such as a transaction's Detail lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text exactly as the server wrote it, decoded.
    Text(String),
    /// Subfile rows; the row element is the lowercase subfile name.
    Subfile(Vec<Row>),
}

/// One subfile row (a Detail line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// True for system detail lines (`<detail system="true">`).
    pub system: bool,
    /// The row's fields in server order.
    pub fields: Vec<Field>,
}

/// One MoneyWorks record of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The table this record belongs to.
    pub table: &'static TableInfo,
    /// Fields in server order.
    pub fields: Vec<Field>,
}

/// A record's key within its table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    /// A unique code, exactly as MoneyWorks holds it.
    Code(String),
    /// A sequence number.
    Seq(u64),
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKey::Code(c) => f.write_str(c),
            RecordKey::Seq(s) => write!(f, "#{s}"),
        }
    }
}

/// A record or path that does not fit mwsync's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not well-formed XML.
    #[error(transparent)]
    Xml(#[from] xmltree::XmlError),
    /// Well-formed, but not the shape of a record of this table.
    #[error("not a {table} record: {reason}")]
    Shape {
        /// Table name.
        table: String,
        /// What was wrong.
        reason: String,
    },
    /// The record lacks or garbles its key field.
    #[error("{table} record has no usable key: {reason}")]
    Key {
        /// Table name.
        table: String,
        /// What was wrong.
        reason: String,
    },
    /// A record holding something XML 1.0 cannot carry, so it has no file form.
    #[error("{table} {key} cannot be written as XML: {detail}")]
    Unwritable {
        /// Table name.
        table: String,
        /// The record's key as shown (`ACME`, `#12`).
        key: String,
        /// The field and what is wrong with it.
        detail: XmlWriteError,
    },
    /// A repository path that is not `{table}/.../{key}.xml` for a known table.
    #[error("path `{path}` is not a record path: {reason}")]
    Path {
        /// The path.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

impl Record {
    /// The first field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The text of field `name`, if it is a text field.
    pub fn text(&self, name: &str) -> Option<&str> {
        match &self.field(name)?.value {
            Value::Text(t) => Some(t),
            Value::Subfile(_) => None,
        }
    }

    /// Sets text field `name`, appending it when absent. Used by tests and the simulator.
    pub fn set_text(&mut self, name: &str, value: &str) {
        match self
            .fields
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(f) => f.value = Value::Text(value.to_string()),
            None => self.fields.push(Field {
                name: name.to_string(),
                system: false,
                value: Value::Text(value.to_string()),
            }),
        }
    }

    /// The record's SequenceNumber, when present and numeric.
    pub fn seq(&self) -> Option<u64> {
        self.text(SEQ_FIELD)?.trim().parse().ok()
    }

    /// The record's LastModifiedTime, when present and valid.
    pub fn last_modified(&self) -> Option<MwTime> {
        MwTime::parse(self.text(LMT_FIELD)?.trim()).ok()
    }

    /// The key this record is filed under.
    pub fn key(&self) -> Result<RecordKey, RecordError> {
        let err = |reason: String| RecordError::Key {
            table: self.table.name.to_string(),
            reason,
        };
        match self.table.key {
            KeyField::Code(field) => {
                let code = self
                    .text(field)
                    .ok_or_else(|| err(format!("field <{field}> is missing")))?;
                if code.is_empty() {
                    return Err(err(format!("field <{field}> is empty")));
                }
                Ok(RecordKey::Code(code.to_string()))
            }
            KeyField::Seq => self
                .seq()
                .map(RecordKey::Seq)
                .ok_or_else(|| err(format!("field <{SEQ_FIELD}> is missing or not a number"))),
        }
    }

    /// The repository path of this record's file.
    pub fn path(&self) -> Result<String, RecordError> {
        Ok(record_path(self.table, &self.key()?))
    }

    /// The canonical file form (see [`xmlwrite::record_file`]): fields in server order,
    /// two-space indentation, LF line ends, UTF-8, a trailing newline. Equal records always
    /// give equal bytes. A value XML 1.0 cannot carry is refused, naming the record and field.
    pub fn canonical_file(&self) -> Result<Vec<u8>, RecordError> {
        xmlwrite::record_file(self.table.element, &self.fields).map_err(|detail| {
            RecordError::Unwritable {
                table: self.table.name.to_string(),
                key: self
                    .key()
                    .map_or_else(|_| "(no key)".to_string(), |k| k.to_string()),
                detail,
            }
        })
    }

    /// Parses a record file (or any single record element) of table `table`.
    pub fn from_xml(table: &'static TableInfo, xml: &str) -> Result<Record, RecordError> {
        match Record::from_plain_xml(table, xml) {
            Some(record) => Ok(record),
            None => Record::from_xml_tree(table, xml),
        }
    }

    /// The fast path of [`Record::from_xml`]: a plain record file, read without an element
    /// tree (see `recordxml`). `None` sends the file down the tree path.
    pub(crate) fn from_plain_xml(table: &'static TableInfo, xml: &str) -> Option<Record> {
        let (reader, root) = FastReader::open(xml)?;
        if !root.name.eq_ignore_ascii_case(table.element) || !root.attrs.is_empty() {
            return None;
        }
        let fields = reader.record()?;
        Some(Record { table, fields })
    }

    /// [`Record::from_xml`] through an element tree: every file, every error.
    pub(crate) fn from_xml_tree(
        table: &'static TableInfo,
        xml: &str,
    ) -> Result<Record, RecordError> {
        let root = xmltree::parse(xml)?;
        Record::from_element(table, &root)
    }

    /// Builds a record from its element (`<name>…</name>`), checking its shape.
    pub fn from_element(table: &'static TableInfo, el: &Element) -> Result<Record, RecordError> {
        let shape = |reason: String| RecordError::Shape {
            table: table.name.to_string(),
            reason,
        };
        if !el.name.eq_ignore_ascii_case(table.element) {
            return Err(shape(format!(
                "root element is <{}>, expected <{}>",
                el.name, table.element
            )));
        }
        if !el.text.trim().is_empty() {
            return Err(shape("record element holds bare text".into()));
        }
        Ok(Record {
            table,
            fields: fields_from(&el.children, "").map_err(shape)?,
        })
    }
}

fn fields_from(children: &[Element], row_prefix: &str) -> Result<Vec<Field>, String> {
    let mut fields = Vec::with_capacity(children.len());
    for child in children {
        let system = child
            .attr("system")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if child.name.eq_ignore_ascii_case("subfile") {
            let name = child
                .attr("name")
                .ok_or("a <subfile> has no name attribute")?
                .to_string();
            let row_element = name.to_ascii_lowercase();
            let mut rows = Vec::with_capacity(child.children.len());
            for row in &child.children {
                if !row.name.eq_ignore_ascii_case(&row_element) {
                    return Err(format!(
                        "subfile {name} holds <{}>, expected <{row_element}>",
                        row.name
                    ));
                }
                let row_system = row
                    .attr("system")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let prefix = format!("{row_element}.");
                rows.push(Row {
                    system: row_system,
                    fields: fields_from(&row.children, &prefix)?,
                });
            }
            fields.push(Field {
                name,
                system,
                value: Value::Subfile(rows),
            });
        } else {
            if !child.children.is_empty() {
                return Err(format!("field <{}> holds elements", child.name));
            }
            if !row_prefix.is_empty() && !child.name.to_ascii_lowercase().starts_with(row_prefix) {
                return Err(format!(
                    "row field <{}> lacks the `{row_prefix}` prefix",
                    child.name
                ));
            }
            if !is_field_name(&child.name) {
                return Err(format!("<{}> is not a field name", child.name));
            }
            fields.push(Field {
                name: child.name.to_ascii_lowercase(),
                system,
                value: Value::Text(child.text.clone()),
            });
        }
    }
    Ok(fields)
}

pub(crate) fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

// ---------------------------------------------------------------------------------------------
// Keys and paths

/// Encodes a code as a file-name stem that is reversible and collision-free on
/// case-insensitive file systems:
/// - `A-Z`, `0-9`, `-` and `_` stay as they are;
/// - a lowercase ASCII letter becomes `~` plus the letter, so `Acme` and `ACME` differ even
///   where `a` and `A` do not;
/// - every other byte of the UTF-8 text becomes `%XX` (uppercase hex);
/// - a stem that would be a reserved device name on Windows (`CON`, `LPT1`, ...) has its
///   first character percent-encoded.
pub fn encode_key(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 4);
    for b in code.bytes() {
        match b {
            b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(b as char),
            b'a'..=b'z' => {
                out.push('~');
                out.push(b as char);
            }
            _ => push_pct(&mut out, b),
        }
    }
    if is_reserved_windows_name(&out) {
        let first = out.as_bytes()[0];
        let mut escaped = String::new();
        push_pct(&mut escaped, first);
        escaped.push_str(&out[1..]);
        return escaped;
    }
    out
}

fn push_pct(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

fn is_reserved_windows_name(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit())
}

/// Reverses [`encode_key`]. Refuses any stem that `encode_key` could not have produced, so
/// that one code has exactly one file name.
pub fn decode_key(stem: &str) -> Result<String, String> {
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(bytes[i]),
            b'~' => {
                let next = bytes.get(i + 1).copied().filter(u8::is_ascii_lowercase);
                out.push(
                    next.ok_or_else(|| {
                        format!("`~` at {i} is not followed by a lowercase letter")
                    })?,
                );
                i += 1;
            }
            b'%' => {
                let hex = stem
                    .get(i + 1..i + 3)
                    .ok_or_else(|| format!("`%` at {i} lacks two hex digits"))?;
                if hex.bytes().any(|h| h.is_ascii_lowercase()) {
                    return Err(format!("`%{hex}` must use uppercase hex"));
                }
                let b = u8::from_str_radix(hex, 16).map_err(|_| format!("`%{hex}` is not hex"))?;
                out.push(b);
                i += 2;
            }
            other => {
                return Err(format!(
                    "byte {:?} is not allowed in an encoded key",
                    other as char
                ));
            }
        }
        i += 1;
    }
    let code = String::from_utf8(out).map_err(|_| "the decoded key is not UTF-8".to_string())?;
    if code.is_empty() {
        return Err("the key is empty".into());
    }
    if encode_key(&code) != stem {
        return Err(format!(
            "`{stem}` is not the canonical encoding of `{code}` (expected `{}`)",
            encode_key(&code)
        ));
    }
    Ok(code)
}

/// 64-bit FNV-1a: a fixed, dependency-free hash, so shard directories never change.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The shard number of a key, below 10⁶ up to 10⁸ records per table: a sequence number's
/// hundreds (100 consecutive numbers share a leaf), a code's FNV-1a hash of its encoded form
/// modulo 10⁶.
fn shard(key: &RecordKey, stem: &str) -> u64 {
    match key {
        RecordKey::Seq(n) => n / 100,
        RecordKey::Code(_) => fnv1a(stem.as_bytes()) % 1_000_000,
    }
}

/// The three shard directories of shard `b`: `{b / 10⁴}/{b / 100 mod 100}/{b mod 100}`, each
/// written with at least two digits. No directory then holds more than 100 entries below 10⁸
/// records per table (a code leaf about 100 files at 10⁸ records).
pub(crate) fn shard_dirs(b: u64) -> String {
    format!("{:02}/{:02}/{:02}", b / 10_000, b / 100 % 100, b % 100)
}

/// The repository path of a record: `{table}/{d1}/{d2}/{d3}/{key}.xml`.
pub fn record_path(table: &TableInfo, key: &RecordKey) -> String {
    let stem = match key {
        RecordKey::Code(code) => encode_key(code),
        RecordKey::Seq(n) => n.to_string(),
    };
    let dirs = shard_dirs(shard(key, &stem));
    format!("{}/{dirs}/{stem}.xml", table.element)
}

/// The key of the file `file` in the shard directories `d1`/`d2` of `table` in layout 1
/// (`{table}/{ddd}/{ddd}/{key}.xml`, before version 0.2), when that layout put exactly this
/// key there.
pub(crate) fn layout1_key(table: &TableInfo, d1: &str, d2: &str, file: &str) -> Option<RecordKey> {
    let three = |d: &str| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit());
    if !three(d1) || !three(d2) {
        return None;
    }
    let stem = file.strip_suffix(".xml")?;
    let (key, bucket) = match table.key {
        KeyField::Seq => {
            let n: u64 = stem.parse().ok()?;
            (n.to_string() == stem).then_some(())?;
            (RecordKey::Seq(n), n / 1000)
        }
        KeyField::Code(_) => {
            let code = decode_key(stem).ok()?;
            (RecordKey::Code(code), fnv1a(stem.as_bytes()) % 1_000_000)
        }
    };
    (format!("{:03}/{:03}", bucket / 1000, bucket % 1000) == format!("{d1}/{d2}")).then_some(key)
}

/// Parses a repository path back into its table and key. Refuses anything that
/// [`record_path`] would not produce, including `..`, absolute paths and wrong shards.
pub fn parse_record_path(path: &str) -> Result<(&'static TableInfo, RecordKey), RecordError> {
    let err = |reason: &str| RecordError::Path {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(err("it has an empty, `.` or `..` component"));
    }
    let [dir, _, _, _, file] = parts.as_slice() else {
        if let [dir, d1, d2, file] = parts.as_slice()
            && let Some(table) = TABLES.iter().find(|t| t.element == *dir)
            && let Some(key) = layout1_key(table, d1, d2, file)
        {
            return Err(err(&format!(
                "it is where layout 1 filed {} {key}; main uses layout {} now, which files it at `{}` (docs/paths.md)",
                table.name,
                crate::state::CURRENT_LAYOUT,
                record_path(table, &key)
            )));
        }
        return Err(err("expected `{table}/{shard}/{shard}/{shard}/{key}.xml`"));
    };
    let table = TABLES
        .iter()
        .find(|t| t.element == *dir)
        .ok_or_else(|| err("the first directory is not a known table"))?;
    let stem = file
        .strip_suffix(".xml")
        .ok_or_else(|| err("the file name does not end in .xml"))?;
    let key = match table.key {
        KeyField::Seq => {
            let n: u64 = stem
                .parse()
                .map_err(|_| err("the file name is not a sequence number"))?;
            if n.to_string() != stem {
                return Err(err("the sequence number has leading zeros"));
            }
            RecordKey::Seq(n)
        }
        KeyField::Code(_) => RecordKey::Code(decode_key(stem).map_err(|e| err(&e))?),
    };
    if record_path(table, &key) != path {
        return Err(err("the shard directories do not match the key"));
    }
    Ok((table, key))
}

// ---------------------------------------------------------------------------------------------
// Diffs

/// One field that differs between two versions of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field, `detail[2].detail.account` style inside subfiles (rows count from 1).
    pub field: String,
    /// The old value (`None`: the field or row did not exist).
    pub old: Option<String>,
    /// The new value (`None`: the field or row was removed).
    pub new: Option<String>,
}

/// The fields that differ from `old` to `new`, in `new`'s field order then removed fields.
/// Subfile rows are compared by position.
pub fn diff_fields(old: &[Field], new: &[Field]) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    diff_into(&mut changes, "", old, new);
    changes
}

fn diff_into(out: &mut Vec<FieldChange>, prefix: &str, old: &[Field], new: &[Field]) {
    let find = |fields: &[Field], name: &str| fields.iter().position(|f| f.name == name);
    for nf in new {
        let label = format!("{prefix}{}", nf.name);
        match (find(old, &nf.name).map(|i| &old[i].value), &nf.value) {
            (Some(Value::Text(a)), Value::Text(b)) if a == b => {}
            (Some(Value::Text(a)), Value::Text(b)) => out.push(FieldChange {
                field: label,
                old: Some(a.clone()),
                new: Some(b.clone()),
            }),
            (None, Value::Text(b)) => out.push(FieldChange {
                field: label,
                old: None,
                new: Some(b.clone()),
            }),
            (Some(Value::Subfile(a)), Value::Subfile(b)) => diff_rows(out, prefix, &nf.name, a, b),
            (None, Value::Subfile(b)) => diff_rows(out, prefix, &nf.name, &[], b),
            (Some(Value::Subfile(a)), Value::Text(b)) => {
                diff_rows(out, prefix, &nf.name, a, &[]);
                out.push(FieldChange {
                    field: label,
                    old: None,
                    new: Some(b.clone()),
                });
            }
            (Some(Value::Text(a)), Value::Subfile(b)) => {
                out.push(FieldChange {
                    field: label,
                    old: Some(a.clone()),
                    new: None,
                });
                diff_rows(out, prefix, &nf.name, &[], b);
            }
        }
    }
    for of in old.iter().filter(|of| find(new, &of.name).is_none()) {
        match &of.value {
            Value::Text(a) => out.push(FieldChange {
                field: format!("{prefix}{}", of.name),
                old: Some(a.clone()),
                new: None,
            }),
            Value::Subfile(a) => diff_rows(out, prefix, &of.name, a, &[]),
        }
    }
}

fn diff_rows(out: &mut Vec<FieldChange>, prefix: &str, subfile: &str, old: &[Row], new: &[Row]) {
    let row_element = subfile.to_ascii_lowercase();
    for i in 0..old.len().max(new.len()) {
        let row_prefix = format!("{prefix}{row_element}[{}].", i + 1);
        let empty: &[Field] = &[];
        let a = old.get(i).map_or(empty, |r| r.fields.as_slice());
        let b = new.get(i).map_or(empty, |r| r.fields.as_slice());
        diff_into(out, &row_prefix, a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_table() -> &'static TableInfo {
        table_info("name").expect("Name is a known table")
    }

    const SAMPLE: &str = r#"<name>
 <sequencenumber system="true">12</sequencenumber>
 <lastmodifiedtime system="true">20240101120000</lastmodifiedtime>
 <code>ACME</code>
 <name>Acme &amp; Sons</name>
 <address1>1 Road&#13;Town</address1>
 <phone/>
 <subfile name="Contacts">
  <contacts><contacts.contact>Jo</contacts.contact></contacts>
 </subfile>
</name>"#;

    /// Parsing then writing canonical XML is stable: writing the parse of canonical output
    /// gives the same bytes, and system flags, subfiles and escapes survive.
    #[test]
    fn canonical_form_is_a_fixed_point() {
        let rec = Record::from_xml(name_table(), SAMPLE).expect("valid record");
        let canon = String::from_utf8(rec.canonical_file().expect("writable")).expect("utf-8");
        assert!(canon.ends_with("</name>\n"));
        assert!(canon.contains("  <sequencenumber system=\"true\">12</sequencenumber>\n"));
        assert!(canon.contains("<address1>1 Road&#13;Town</address1>"));
        assert!(canon.contains("<phone/>"));
        let again = Record::from_xml(name_table(), &canon).expect("canonical parses");
        assert_eq!(again, rec);
        assert_eq!(again.canonical_file().expect("writable"), canon.as_bytes());
        assert_eq!(rec.seq(), Some(12));
        assert_eq!(rec.key(), Ok(RecordKey::Code("ACME".into())));
    }

    /// A record of the wrong table or with nested junk is refused with the reason.
    #[test]
    fn refuses_wrong_shapes() {
        let err = Record::from_xml(name_table(), "<product><code>X</code></product>")
            .expect_err("wrong root");
        assert!(err.to_string().contains("expected <name>"), "{err}");
        let err = Record::from_xml(name_table(), "<name><code><b>X</b></code></name>")
            .expect_err("nested");
        assert!(err.to_string().contains("holds elements"), "{err}");
    }

    /// Encoding is reversible for awkward codes, and no two distinct codes give names that
    /// are equal ignoring case.
    #[test]
    fn key_encoding_is_reversible_and_case_safe() {
        let codes = [
            "ACME", "acme", "Acme", "aCME", "A/B", "A.B", "A B", "A%B", "A~B", "ÄBC", "äbc",
            "日本", "CON", "con", "LPT1", "..", ".", "a.", "-_", "100", "Z~a", "%41",
        ];
        let mut seen = std::collections::HashMap::new();
        for code in codes {
            let stem = encode_key(code);
            assert!(
                stem.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_~%".contains(&b)),
                "{stem}"
            );
            assert_eq!(
                decode_key(&stem).as_deref(),
                Ok(code),
                "round trip of {code}"
            );
            if let Some(other) = seen.insert(stem.to_ascii_lowercase(), code) {
                panic!("{code} and {other} collide ignoring case: {stem}");
            }
        }
        assert!(!is_reserved_windows_name(&encode_key("CON")));
        assert!(
            decode_key("%41").is_err(),
            "A must not have a second spelling"
        );
        assert!(decode_key("a").is_err(), "bare lowercase is not canonical");
    }

    /// Paths round-trip, shard into three levels of at most 100 entries, and refuse tricks.
    #[test]
    fn paths_round_trip_and_refuse_tricks() {
        let tx = table_info("transaction").expect("known");
        for (n, want) in [
            (7, "transaction/00/00/00/7.xml"),
            (12_345, "transaction/00/01/23/12345.xml"),
            (12_345_678, "transaction/12/34/56/12345678.xml"),
            (1_234_567_890, "transaction/1234/56/78/1234567890.xml"),
        ] {
            assert_eq!(record_path(tx, &RecordKey::Seq(n)), want);
        }
        for key in [
            RecordKey::Seq(0),
            RecordKey::Seq(99_999_999),
            RecordKey::Seq(999_999_999),
        ] {
            let p = record_path(tx, &key);
            assert_eq!(parse_record_path(&p).expect("valid").1, key);
        }
        let p = record_path(name_table(), &RecordKey::Code("a/b".into()));
        assert!(p.starts_with("name/") && p.ends_with("/~a%2F~b.xml"), "{p}");
        assert_eq!(p.split('/').count(), 5, "{p}");
        assert_eq!(
            parse_record_path(&p).expect("valid").1,
            RecordKey::Code("a/b".into())
        );
        for bad in [
            "../name/00/00/00/A.xml",
            "name/00/00/00/../A.xml",
            "nope/00/00/00/A.xml",
            "transaction/00/00/00/007.xml",
            "transaction/00/00/01/5.xml",
            "transaction/000/000/5.xml",
            "transaction/0/00/00/5.xml",
            "name/A.xml",
            "name/00/00/00/A.txt",
        ] {
            assert!(parse_record_path(bad).is_err(), "{bad} should be refused");
        }
    }

    /// Layout-1 paths are recognised exactly: the right shards for the key, nothing else.
    #[test]
    fn layout1_paths_are_recognised_exactly() {
        let tx = table_info("transaction").expect("known");
        let name = table_info("name").expect("known");
        assert_eq!(
            layout1_key(tx, "001", "234", "1234567.xml"),
            Some(RecordKey::Seq(1_234_567))
        );
        assert_eq!(
            layout1_key(tx, "000", "000", "7.xml"),
            Some(RecordKey::Seq(7))
        );
        assert_eq!(
            layout1_key(name, "462", "991", "ACME.xml"),
            Some(RecordKey::Code("ACME".into()))
        );
        assert_eq!(
            layout1_key(name, "999", "304", "%43ON.xml"),
            Some(RecordKey::Code("CON".into()))
        );
        for (table, d1, d2, file) in [
            (tx, "000", "001", "7.xml"),
            (tx, "000", "000", "07.xml"),
            (tx, "00", "00", "7.xml"),
            (tx, "000", "000", "7.txt"),
            (name, "462", "990", "ACME.xml"),
            (name, "462", "991", "acme.xml"),
        ] {
            assert_eq!(layout1_key(table, d1, d2, file), None, "{d1}/{d2}/{file}");
        }
    }

    /// Diffs name each changed field with old and new values, including subfile rows.
    #[test]
    fn diff_names_fields_and_rows() {
        let a = Record::from_xml(name_table(), SAMPLE).expect("valid");
        let mut b = a.clone();
        b.set_text("phone", "555");
        if let Value::Subfile(rows) = &mut b.fields[6].value {
            rows.push(rows[0].clone());
        }
        let changes = diff_fields(&a.fields, &b.fields);
        assert_eq!(
            changes[0],
            FieldChange {
                field: "phone".into(),
                old: Some(String::new()),
                new: Some("555".into())
            }
        );
        assert_eq!(changes[1].field, "contacts[2].contacts.contact");
        assert_eq!(changes.len(), 2);
    }
}
