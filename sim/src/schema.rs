//! The simulator's MoneyWorks schema: for each table it serves, the ordered field list with
//! types, which fields are system (non-importable), the Detail subfile of transactions, and
//! how imported text is normalised the way MoneyWorks stores it. It owns field names, order
//! and value formats; it must not hold records or decide what a request does.
//!
//! Field names follow the MoneyWorks manual's Appendix A, lowercased as exports write them.
//! The order is the simulator's fixed "server order": `sequencenumber` and `lastmodifiedtime`
//! first, then the table's own fields.

use mwsync::record::{Field, Record, Row, TABLES, TableInfo, Value};

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

/// A table's fields in server order.
#[derive(Debug)]
pub struct TableSchema {
    /// The table, as the engine knows it.
    pub table: &'static TableInfo,
    /// Fields in server order (the subfile, if any, is written after them).
    pub fields: &'static [FieldDef],
    /// The table's subfile (a transaction's Detail lines).
    pub subfile: Option<SubfileSchema>,
}

/// A subfile (rows nested inside a record).
#[derive(Debug)]
pub struct SubfileSchema {
    /// The subfile's name attribute, e.g. `Detail`; rows are its lowercase form.
    pub name: &'static str,
    /// Row fields in server order, each prefixed with the row element (`detail.`).
    pub fields: &'static [FieldDef],
}

impl TableSchema {
    /// The field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

impl SubfileSchema {
    /// The row field called `name` (case-insensitive, with its `detail.` prefix).
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

const fn t(name: &'static str, max_len: usize) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Text { max_len },
        system: false,
    }
}
const fn int(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Integer,
        system: false,
    }
}
const fn money(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Decimal { places: 2 },
        system: false,
    }
}
const fn qty(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Decimal { places: 6 },
        system: false,
    }
}
const fn date(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Date,
        system: false,
    }
}
const fn flag(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: FieldKind::Boolean,
        system: false,
    }
}
const fn sys(def: FieldDef) -> FieldDef {
    FieldDef {
        system: true,
        ..def
    }
}

const SEQ: FieldDef = sys(int("sequencenumber"));
const LMT: FieldDef = FieldDef {
    name: "lastmodifiedtime",
    kind: FieldKind::DateTime,
    system: true,
};

const fn table(name: &str) -> &'static TableInfo {
    let mut i = 0;
    while i < TABLES.len() {
        if eq(TABLES[i].name.as_bytes(), name.as_bytes()) {
            return &TABLES[i];
        }
        i += 1;
    }
    panic!("schema names a table the engine does not know")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

static ACCOUNT: TableSchema = TableSchema {
    table: table("Account"),
    fields: &[
        SEQ,
        LMT,
        t("code", 7),
        t("type", 3),
        t("description", 63),
        t("group", 5),
        t("category", 15),
        t("category2", 15),
        t("category3", 15),
        t("category4", 15),
        t("taxcode", 5),
        t("accountantscode", 9),
        int("colour"),
        t("bankaccountnumber", 23),
        t("comments", 255),
        int("flags"),
        sys(t("system", 3)),
    ],
    subfile: None,
};

static NAME: TableSchema = TableSchema {
    table: table("Name"),
    fields: &[
        SEQ,
        LMT,
        t("code", 11),
        t("name", 255),
        t("contact", 25),
        t("position", 29),
        t("salutation", 39),
        t("address1", 59),
        t("address2", 59),
        t("address3", 59),
        t("address4", 59),
        t("postcode", 12),
        t("state", 3),
        t("country", 59),
        t("delivery1", 59),
        t("delivery2", 59),
        t("delivery3", 59),
        t("delivery4", 59),
        t("deliverypostcode", 12),
        t("deliverystate", 3),
        t("deliverycountry", 59),
        t("phone", 19),
        t("fax", 19),
        t("mobile", 19),
        t("email", 80),
        t("weburl", 63),
        t("category1", 15),
        t("category2", 15),
        t("category3", 15),
        t("category4", 15),
        int("customertype"),
        int("suppliertype"),
        int("debtorterms"),
        int("creditorterms"),
        money("creditlimit"),
        qty("discount"),
        t("taxcode", 5),
        t("taxnumber", 19),
        t("bankaccountnumber", 23),
        t("bankaccountname", 59),
        t("bank", 7),
        t("bankbranch", 21),
        t("recaccount", 7),
        t("payaccount", 7),
        t("currency", 3),
        flag("hold"),
        int("colour"),
        t("comment", 1020),
        sys(money("dbalance")),
        sys(money("cbalance")),
    ],
    subfile: None,
};

static PRODUCT: TableSchema = TableSchema {
    table: table("Product"),
    fields: &[
        SEQ,
        LMT,
        t("code", 31),
        t("description", 255),
        t("type", 1),
        t("category1", 15),
        t("category2", 15),
        t("category3", 15),
        t("category4", 15),
        t("supplier", 11),
        t("suppliercode", 19),
        t("barcode", 19),
        t("sellunit", 5),
        t("buyunit", 5),
        qty("sellprice"),
        qty("buyprice"),
        sys(qty("costprice")),
        qty("conversionfactor"),
        t("salesacct", 13),
        t("stockacct", 13),
        t("cogacct", 13),
        t("selltaxcode", 5),
        t("buytaxcode", 5),
        qty("reorderlevel"),
        qty("weight"),
        flag("inactive"),
        int("colour"),
        t("comment", 1020),
        sys(qty("stockonhand")),
        sys(money("stockvalue")),
    ],
    subfile: None,
};

static JOB: TableSchema = TableSchema {
    table: table("Job"),
    fields: &[
        SEQ,
        LMT,
        t("code", 9),
        t("description", 255),
        t("client", 11),
        t("contact", 25),
        t("phone", 19),
        t("ordernum", 19),
        t("status", 2),
        t("manager", 3),
        date("startdate"),
        date("enddate"),
        date("targetdate"),
        money("quote"),
        qty("markup"),
        qty("percentcomplete"),
        t("category1", 15),
        t("category2", 15),
        t("category3", 15),
        t("category4", 15),
        int("colour"),
        t("comment", 1020),
        sys(money("billed")),
    ],
    subfile: None,
};

static TRANSACTION: TableSchema = TableSchema {
    table: table("Transaction"),
    fields: &[
        SEQ,
        LMT,
        t("ourref", 11),
        date("transdate"),
        sys(date("enterdate")),
        date("duedate"),
        int("period"),
        t("type", 3),
        t("theirref", 21),
        t("namecode", 11),
        t("flag", 5),
        t("description", 1020),
        money("gross"),
        money("taxamount"),
        money("netamount"),
        t("contra", 7),
        t("tofrom", 255),
        sys(t("status", 1)),
        t("salesperson", 5),
        t("currency", 3),
        qty("exchangerate"),
        sys(money("amtpaid")),
        sys(date("datepaid")),
        t("mailingaddress", 255),
        t("deliveryaddress", 255),
        t("prodpricecode", 1),
        int("colour"),
        sys(t("enteredby", 3)),
        sys(t("postedby", 3)),
        sys(FieldDef {
            name: "timeposted",
            kind: FieldKind::DateTime,
            system: true,
        }),
    ],
    subfile: Some(SubfileSchema {
        name: "Detail",
        fields: &[
            sys(int("detail.sequencenumber")),
            sys(int("detail.parentseq")),
            int("detail.sort"),
            t("detail.account", 13),
            t("detail.dept", 5),
            t("detail.taxcode", 5),
            money("detail.net"),
            money("detail.tax"),
            money("detail.gross"),
            t("detail.description", 1020),
            t("detail.stockcode", 31),
            qty("detail.stockqty"),
            qty("detail.unitprice"),
            qty("detail.costprice"),
            qty("detail.discount"),
            t("detail.saleunit", 5),
            t("detail.jobcode", 9),
            sys(money("detail.debit")),
            sys(money("detail.credit")),
        ],
    }),
};

static SCHEMAS: [&TableSchema; 5] = [&ACCOUNT, &NAME, &PRODUCT, &JOB, &TRANSACTION];

/// Every table the simulator serves, in the engine's table order.
pub fn all() -> &'static [&'static TableSchema] {
    &SCHEMAS
}

/// The schema of `table`, or `None` for tables the simulator does not serve.
pub fn schema(table: &TableInfo) -> Option<&'static TableSchema> {
    SCHEMAS.iter().copied().find(|s| s.table.name == table.name)
}

/// The schema of the table called `name` (case-insensitive).
pub fn schema_by_name(name: &str) -> Option<&'static TableSchema> {
    SCHEMAS
        .iter()
        .copied()
        .find(|s| s.table.name.eq_ignore_ascii_case(name))
}

/// The stored text of a blank value of this kind.
pub fn blank_value(kind: FieldKind) -> String {
    match kind {
        FieldKind::Text { .. } | FieldKind::Date | FieldKind::DateTime => String::new(),
        FieldKind::Integer | FieldKind::Boolean => "0".to_string(),
        FieldKind::Decimal { places } => format_scaled(0, places),
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
        FieldKind::Integer => {
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
            let full = format!("{trimmed}000000");
            if trimmed.len() == 8 && mwsync::mwtime::MwTime::parse(&full).is_ok() {
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
            mwsync::mwtime::MwTime::parse(trimmed)
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

fn blank_fields(defs: &[FieldDef]) -> Vec<Field> {
    defs.iter()
        .map(|d| Field {
            name: d.name.to_string(),
            system: d.system,
            value: Value::Text(blank_value(d.kind)),
        })
        .collect()
}

/// A record with every schema field at its blank value, in schema order.
pub fn blank_record(table: &'static TableSchema) -> Record {
    let mut fields = blank_fields(table.fields);
    if let Some(sub) = &table.subfile {
        fields.push(Field {
            name: sub.name.to_string(),
            system: false,
            value: Value::Subfile(Vec::new()),
        });
    }
    Record {
        table: table.table,
        fields,
    }
}

/// A subfile row with every row field at its blank value, in schema order.
pub fn blank_row(sub: &SubfileSchema) -> Row {
    Row {
        system: false,
        fields: blank_fields(sub.fields),
    }
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

    /// Every served table starts with the two system fields and resolves to its engine table.
    #[test]
    fn tables_carry_system_fields_first() {
        for s in all() {
            assert_eq!(s.fields[0].name, "sequencenumber");
            assert_eq!(s.fields[1].name, "lastmodifiedtime");
            assert!(s.fields[0].system && s.fields[1].system);
            assert!(std::ptr::eq(schema(s.table).expect("served"), *s));
            let blank = blank_record(s);
            assert_eq!(
                blank.fields.len(),
                s.fields.len() + usize::from(s.subfile.is_some())
            );
        }
        assert!(schema_by_name("transaction").is_some_and(|s| s.subfile.is_some()));
        assert!(schema_by_name("ledger").is_none());
    }
}
