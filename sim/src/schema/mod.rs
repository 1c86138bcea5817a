//! The simulator's MoneyWorks schema: the table catalogue (name, record element, natural
//! key) and, for each table the fake serves, its fields in server order with their types,
//! which are system (non-importable) fields, the Detail subfile of transactions, and how
//! imported text is normalised the way MoneyWorks stores it. Fields are addressed by their
//! index in the schema; names are resolved to indexes once, at the edge (a request, a file).
//! It owns field names, order and value formats; it must not hold records or decide what a
//! request does.
//!
//! The order is the simulator's fixed "server order": `sequencenumber` and
//! `lastmodifiedtime` first (indexes [`SEQ`] and [`LMT`]), then the table's own fields.

mod tables;

pub use tables::{
    ACCOUNT, AUTOSPLIT, BUILD, CONTACTS, DEPARTMENT, GENERAL, INVENTORY, JOB, JOBSHEET, LOGIN,
    MEMO, NAME, PAYMENTS, PRODUCT, SERVED, TABLES, TAXRATE, TRANSACTION, USER, USER2,
};

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::time::DateTime;

/// Index of `sequencenumber` in every table's fields.
pub const SEQ: usize = 0;
/// Index of `lastmodifiedtime` in every table's fields.
pub const LMT: usize = 1;

/// How a table's records are keyed in the repository and on import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A unique code field (lowercase name), e.g. `code`, `taxcode`, `initials`.
    Code(&'static str),
    /// The sequence number.
    Seq,
}

/// A table mwsync can track: its names and its natural key.
#[derive(Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// The internal name, as `<table name="…">` writes it (`Name`).
    pub name: &'static str,
    /// The record element and repository directory: the lowercase name (`name`).
    pub element: &'static str,
    /// The natural key.
    pub key: Key,
}

impl TableInfo {
    const fn new(name: &'static str, element: &'static str, key: Key) -> TableInfo {
        TableInfo { name, element, key }
    }
}

/// The catalogue entry called `name`, case-insensitively (`name`, `Name`, `NAME`).
pub fn table_info(name: &str) -> Option<&'static TableInfo> {
    TABLES.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// The catalogue entry whose record element (and directory) is exactly `element`.
pub fn table_by_element(element: &str) -> Option<&'static TableInfo> {
    TABLES.iter().find(|t| t.element == element)
}

/// The type of a field, which decides its blank value and how imported text is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text of at most `max_len` characters.
    Text {
        /// Longest accepted value, in characters.
        max_len: usize,
    },
    /// A whole number, written without separators (`0` when blank).
    Integer,
    /// A small whole number (a colour index); stored like [`FieldKind::Integer`], reported as
    /// `SHORT` by `GetDatabaseFieldSize`.
    Short,
    /// A fixed-point number written with exactly `places` decimals (`1.5` → `1.500000`).
    Decimal {
        /// Decimal places kept.
        places: u8,
    },
    /// A date, `YYYYMMDD` (empty when blank).
    Date,
    /// A date-time, `YYYYMMDDHHMMSS` (empty when blank).
    DateTime,
    /// A flag, written `0` or `1`.
    Boolean,
}

/// One field of a table or subfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// Lowercase element name (`code`, `detail.stockqty`).
    pub name: &'static str,
    /// The field's type.
    pub kind: FieldKind,
    /// True for system fields: maintained by the server, flagged `system="true"` in verbose
    /// exports, left out of terse ones and ignored on import.
    pub system: bool,
}

/// A subfile: rows nested inside a record (a transaction's Detail lines).
#[derive(Debug, PartialEq, Eq)]
pub struct SubfileSchema {
    /// The subfile's name attribute, e.g. `Detail`; rows are its lowercase form.
    pub name: &'static str,
    /// Row fields in server order, each prefixed with the row element (`detail.`).
    pub fields: &'static [FieldDef],
}

impl SubfileSchema {
    /// The index of the row field called `name` (case-insensitive, `detail.` prefix included).
    pub fn index(&self, name: &str) -> Option<usize> {
        index_in(self.fields, name)
    }

    /// The row element: the lowercase subfile name (`detail`).
    pub fn row_element(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

/// A served table: its catalogue entry, fields in server order and subfile.
#[derive(Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// The catalogue entry.
    pub info: &'static TableInfo,
    /// Fields in server order (the subfile, if any, is written after them).
    pub fields: &'static [FieldDef],
    /// The subfile, if the table has one.
    pub subfile: Option<SubfileSchema>,
    /// The index of the code field of a code-keyed table.
    pub code: Option<usize>,
}

impl TableSchema {
    const fn new(
        info: &'static TableInfo,
        fields: &'static [FieldDef],
        subfile: Option<SubfileSchema>,
    ) -> TableSchema {
        let code = match info.key {
            Key::Code(name) => {
                let mut i = 0;
                loop {
                    assert!(i < fields.len(), "a code-keyed table lists its code field");
                    if tables::same(fields[i].name.as_bytes(), name.as_bytes()) {
                        break Some(i);
                    }
                    i += 1;
                }
            }
            Key::Seq => None,
        };
        TableSchema {
            info,
            fields,
            subfile,
            code,
        }
    }

    /// The index of the field called `name` (case-insensitive).
    pub fn index(&self, name: &str) -> Option<usize> {
        index_in(self.fields, name)
    }

    /// The field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.index(name).map(|i| &self.fields[i])
    }

    /// The subfile a `<subfile name="…">` element names (case-insensitive), or why none.
    pub fn subfile_named(&self, name: Option<&str>) -> Result<&SubfileSchema, String> {
        self.subfile
            .as_ref()
            .filter(|s| name.is_some_and(|n| n.eq_ignore_ascii_case(s.name)))
            .ok_or_else(|| {
                format!(
                    "{} has no subfile called {}",
                    self.info.name,
                    name.unwrap_or("(unnamed)")
                )
            })
    }
}

/// Field indexes by lowercase name, one map per field list of every served table and
/// subfile, built once: resolving a name costs a hash look-up, not a search of the list.
static NAME_MAPS: OnceLock<HashMap<usize, HashMap<&'static str, usize>>> = OnceLock::new();

fn index_in(fields: &'static [FieldDef], name: &str) -> Option<usize> {
    let maps = NAME_MAPS.get_or_init(|| {
        let mut maps = HashMap::new();
        for s in SERVED.iter() {
            let lists = std::iter::once(s.fields).chain(s.subfile.as_ref().map(|sub| sub.fields));
            for list in lists {
                let map = list.iter().enumerate().map(|(i, f)| (f.name, i)).collect();
                maps.insert(list.as_ptr() as usize, map);
            }
        }
        maps
    });
    let Some(map) = maps.get(&(fields.as_ptr() as usize)) else {
        return fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name));
    };
    if let Some(ix) = map.get(name) {
        return Some(*ix);
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return map.get(name.to_ascii_lowercase().as_str()).copied();
    }
    None
}

/// Every table the fake serves, in catalogue order.
pub fn all() -> &'static [&'static TableSchema] {
    &SERVED
}

/// The schema of `table`, or `None` when the fake does not serve it.
pub fn schema(table: &TableInfo) -> Option<&'static TableSchema> {
    SERVED.iter().copied().find(|s| s.info.name == table.name)
}

/// The schema of the table called `name` (case-insensitive).
pub fn schema_by_name(name: &str) -> Option<&'static TableSchema> {
    SERVED
        .iter()
        .copied()
        .find(|s| s.info.name.eq_ignore_ascii_case(name))
}

/// The stored text of a blank value of this kind.
pub fn blank_value(kind: FieldKind) -> &'static str {
    const ZEROS: [&str; 7] = ["0", "0.0", "0.00", "0.000", "0.0000", "0.00000", "0.000000"];
    match kind {
        FieldKind::Text { .. } | FieldKind::Date | FieldKind::DateTime => "",
        FieldKind::Integer | FieldKind::Short | FieldKind::Boolean => "0",
        FieldKind::Decimal { places } => ZEROS
            .get(usize::from(places))
            .expect("schema decimals have at most 6 places"),
    }
}

/// Normalises imported text the way MoneyWorks stores it (e.g. `Decimal{places:6}`: `1.5` →
/// `1.500000`), or says why it is invalid (naming the field).
pub fn normalize(field: &FieldDef, text: &str) -> Result<String, String> {
    let name = field.name;
    match field.kind {
        FieldKind::Text { max_len } => {
            let len = text.chars().count();
            if len > max_len {
                return Err(format!(
                    "Field too long: {name} holds {len} characters, at most {max_len} allowed"
                ));
            }
            Ok(text.to_string())
        }
        FieldKind::Integer | FieldKind::Short => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Ok("0".to_string());
            }
            trimmed
                .parse::<i64>()
                .map(|v| v.to_string())
                .map_err(|_| format!("Invalid number in {name}: `{trimmed}` is not a whole number"))
        }
        FieldKind::Decimal { places } => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Ok(format_scaled(0, places));
            }
            parse_scaled(trimmed, places)
                .map(|v| format_scaled(v, places))
                .ok_or_else(|| format!("Invalid number in {name}: `{trimmed}` is not a number"))
        }
        FieldKind::Date => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Ok(String::new());
            }
            if DateTime::parse_date(trimmed).is_ok() {
                Ok(trimmed.to_string())
            } else {
                Err(format!(
                    "Invalid date in {name}: `{trimmed}` is not YYYYMMDD"
                ))
            }
        }
        FieldKind::DateTime => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Ok(String::new());
            }
            DateTime::parse(trimmed)
                .map(|t| t.to_string())
                .map_err(|_| {
                    format!("Invalid date-time in {name}: `{trimmed}` is not YYYYMMDDHHMMSS")
                })
        }
        FieldKind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "false" | "no" | "f" | "n" => Ok("0".to_string()),
            "1" | "true" | "yes" | "t" | "y" => Ok("1".to_string()),
            other => Err(format!("Invalid flag in {name}: `{other}` is not 0 or 1")),
        },
    }
}

/// Parses a plain decimal (`-12.5`, `+3`, `.25`) into an integer scaled by 10^places,
/// rounding half away from zero. `None` for anything else (exponents, separators, overflow).
pub fn parse_scaled(text: &str, places: u8) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if int_part.len() > 24 {
        return None;
    }
    let places = usize::from(places);
    let mut value: i128 = 0;
    for b in int_part.bytes() {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let frac = frac_part.as_bytes();
    for i in 0..places {
        let digit = frac.get(i).map_or(0, |b| i128::from(b - b'0'));
        value = value.checked_mul(10)?.checked_add(digit)?;
    }
    if frac.get(places).is_some_and(|b| *b >= b'5') {
        value = value.checked_add(1)?;
    }
    Some(if neg { -value } else { value })
}

/// Writes an integer scaled by 10^places as a decimal with exactly `places` decimals.
pub fn format_scaled(value: i128, places: u8) -> String {
    let places = usize::from(places);
    let neg = value < 0;
    let digits = value.unsigned_abs().to_string();
    let digits = if digits.len() <= places {
        format!("{}{digits}", "0".repeat(places + 1 - digits.len()))
    } else {
        digits
    };
    let (int_part, frac_part) = digits.split_at(digits.len() - places);
    let mut out = String::with_capacity(digits.len() + 2);
    if neg && value != 0 {
        out.push('-');
    }
    out.push_str(int_part);
    if places > 0 {
        out.push('.');
        out.push_str(frac_part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decimals are stored with exactly the field's places, rounding half away from zero.
    #[test]
    fn decimals_normalise_to_their_places() {
        let q = FieldDef {
            name: "detail.stockqty",
            kind: FieldKind::Decimal { places: 6 },
            system: false,
        };
        let m = FieldDef {
            kind: FieldKind::Decimal { places: 2 },
            ..q
        };
        assert_eq!(normalize(&q, "1.5").as_deref(), Ok("1.500000"));
        assert_eq!(normalize(&m, "-0.005").as_deref(), Ok("-0.01"));
        assert_eq!(normalize(&m, ".25").as_deref(), Ok("0.25"));
        assert_eq!(normalize(&m, "-0.001").as_deref(), Ok("0.00"));
        assert_eq!(normalize(&m, "12").as_deref(), Ok("12.00"));
        assert_eq!(normalize(&m, "").as_deref(), Ok("0.00"));
        for bad in ["1,000.00", "1e3", "abc", "-", ".", "1.2.3"] {
            let err = normalize(&m, bad).expect_err(bad);
            assert!(err.contains("detail.stockqty"), "{err}");
        }
    }

    /// Text keeps what a MoneyWorks user typed, control characters included: only the XML
    /// reader, which every import passes, refuses what XML 1.0 cannot carry.
    #[test]
    fn text_keeps_control_characters() {
        let phone = NAME.field("phone").expect("Name has phone");
        assert_eq!(normalize(phone, "555\u{7}").as_deref(), Ok("555\u{7}"));
        assert_eq!(normalize(phone, "1\r2\t3").as_deref(), Ok("1\r2\t3"));
    }

    /// Text longer than the field allows is refused, naming the field.
    #[test]
    fn long_text_is_refused() {
        let code = NAME.field("code").expect("Name has code");
        assert!(normalize(code, "ABCDEFGHIJK").is_ok());
        let err = normalize(code, "ABCDEFGHIJKL").expect_err("12 chars");
        assert!(err.contains("code"), "{err}");
    }

    /// Dates, date-times, integers and flags accept their forms and refuse others.
    #[test]
    fn other_kinds_validate() {
        let d = TRANSACTION.field("transdate").expect("has transdate");
        assert_eq!(normalize(d, "20240229").as_deref(), Ok("20240229"));
        assert!(normalize(d, "20230229").is_err());
        assert!(normalize(d, "2024-01-01").is_err());
        let dt = TRANSACTION.field("timeposted").expect("has timeposted");
        assert!(normalize(dt, "20240101120000").is_ok());
        assert!(normalize(dt, "202401011200").is_err());
        let i = NAME.field("customertype").expect("has customertype");
        assert_eq!(normalize(i, " 2 ").as_deref(), Ok("2"));
        assert!(normalize(i, "2.5").is_err());
        let b = NAME.field("hold").expect("has hold");
        assert_eq!(normalize(b, "true").as_deref(), Ok("1"));
        assert!(normalize(b, "maybe").is_err());
    }

    /// Every served table starts with the two system fields and knows its code field.
    #[test]
    fn tables_carry_system_fields_first() {
        for s in all() {
            assert_eq!(s.fields[0].name, "sequencenumber");
            assert_eq!(s.fields[1].name, "lastmodifiedtime");
            assert!(s.fields[0].system && s.fields[1].system);
            assert!(std::ptr::eq(schema(s.info).expect("served"), *s));
            assert_eq!(s.fields[SEQ].name, "sequencenumber");
            assert_eq!(s.fields[LMT].name, "lastmodifiedtime");
            if let Key::Code(name) = s.info.key {
                assert_eq!(s.code.map(|i| s.fields[i].name), Some(name));
            }
        }
        assert!(schema_by_name("transaction").is_some_and(|s| s.subfile.is_some()));
        assert!(schema_by_name("ledger").is_none());
        assert_eq!(all().len(), TABLES.len(), "every catalogue table is served");
        assert_eq!(TABLES.len(), 18);
        assert_eq!(
            table_by_element("taxrate").map(|t| t.key),
            Some(Key::Code("taxcode"))
        );
    }
}
