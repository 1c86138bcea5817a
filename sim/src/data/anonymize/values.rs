//! The anonymizer's value rules: which class a field belongs to (codes, people, companies,
//! addresses, shaped numbers, emails, web sites, free text), replacement codes that stay
//! unique and consistent, and the text helpers replacements are built with. It must not read
//! or write files.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use rand::Rng as _;

use super::super::keyed::{Keyed, Rng, pick};
use super::super::words::*;
use super::AnonOptions;
use crate::schema::{self, FieldKind, table_info};

/// How a field's value is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    NameCode,
    ProductCode,
    JobCode,
    Person,
    Company,
    Address,
    /// Digits become digits and letters letters; punctuation and spacing stay.
    Shape,
    Email,
    Web,
    Text,
    Keep,
}

impl Class {
    pub(super) fn label(self) -> &'static str {
        match self {
            Class::NameCode => "namecode",
            Class::ProductCode => "productcode",
            Class::JobCode => "jobcode",
            Class::Person => "person",
            Class::Company => "company",
            Class::Address => "address",
            Class::Shape => "shape",
            Class::Email => "email",
            Class::Web => "web",
            Class::Text => "text",
            Class::Keep => "keep",
        }
    }
}

/// The class of field `field` (lowercase, with any `detail.` prefix) of table `table`
/// (record element).
pub(super) fn classify(table: &str, field: &str) -> Class {
    let base = field.rsplit('.').next().unwrap_or(field);
    match (table, base) {
        ("name", "code") => Class::NameCode,
        ("product", "code") => Class::ProductCode,
        ("job", "code") => Class::JobCode,
        ("name", "name") => Class::Company,
        (_, "name") => Class::Person,
        (_, "namecode" | "client" | "supplier" | "customer" | "creditor" | "debtor") => {
            Class::NameCode
        }
        (_, "stockcode" | "partcode" | "productcode" | "product") => Class::ProductCode,
        (_, "jobcode" | "job" | "project") => Class::JobCode,
        (_, "contact" | "contact2" | "salutation" | "creditcardname") => Class::Person,
        (_, "tofrom" | "payee" | "bankaccountname" | "accountname") => Class::Company,
        (_, "mailingaddress" | "deliveryaddress" | "address" | "street" | "city" | "suburb") => {
            Class::Address
        }
        (_, b)
            if (b.starts_with("address") || b.starts_with("delivery"))
                && b[b.len() - 1..].bytes().all(|c| c.is_ascii_digit()) =>
        {
            Class::Address
        }
        (
            _,
            "postcode" | "deliverypostcode" | "zip" | "phone" | "fax" | "mobile" | "mobile2"
            | "ddi" | "ddi2" | "afterhours" | "directdial" | "bankaccountnumber" | "bankaccount"
            | "bank" | "bankbranch" | "creditcardnum" | "creditcardnumber" | "taxnumber"
            | "gstnumber" | "abn" | "vatnumber" | "irdnumber" | "theirref" | "ordernum",
        ) => Class::Shape,
        (_, "email" | "email2") => Class::Email,
        (_, "weburl" | "web" | "website" | "url") => Class::Web,
        (
            _,
            "description" | "comment" | "comments" | "memo" | "notes" | "note" | "narration"
            | "remark" | "remarks" | "details" | "text" | "usertext",
        ) => Class::Text,
        (_, b)
            if b.starts_with("custom")
                && b.len() > 6
                && b[6..].bytes().all(|c| c.is_ascii_digit()) =>
        {
            Class::Text
        }
        _ => Class::Keep,
    }
}

/// The schema's kind for a field, when the simulator schema knows the table.
pub(super) fn kind_of(table: &str, field: &str) -> Option<FieldKind> {
    let s = schema::schema_by_name(table_info(table)?.name)?;
    if let Some(f) = s.field(field) {
        return Some(f.kind);
    }
    let sub = s.subfile.as_ref()?;
    sub.index(field).map(|i| sub.fields[i].kind)
}

/// A transaction total or detail amount that scaling keeps balanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Total {
    Net,
    Tax,
    Gross,
    Debit,
    Credit,
    NetAmount,
    TaxAmount,
    AmtPaid,
}

/// Everything the rules need to know of one field, worked out once per table and field name
/// instead of once per value.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldInfo {
    pub(super) class: Class,
    /// The schema's maximum length, for text fields of a known table.
    pub(super) max_len: Option<usize>,
    /// An address field whose first line is a street (not `address2`, `delivery3`, …).
    pub(super) street_first: bool,
    pub(super) date: bool,
    pub(super) time: bool,
    pub(super) amount: bool,
    pub(super) total: Option<Total>,
    /// Whether any rule of this run may read or change the field's values.
    pub(super) wanted: bool,
}

impl FieldInfo {
    /// The rules for field `field` (lowercase, with any `detail.` prefix) of `table`.
    fn new(table: &str, field: &str, opts: &AnonOptions) -> FieldInfo {
        let class = classify(table, field);
        let kind = kind_of(table, field);
        let base = field.rsplit('.').next().unwrap_or(field);
        let date =
            matches!(kind, Some(FieldKind::Date)) || (kind.is_none() && base.ends_with("date"));
        let time =
            matches!(kind, Some(FieldKind::DateTime)) || (kind.is_none() && base.ends_with("time"));
        let amount = is_amount(base, kind);
        let total = match base {
            "net" => Some(Total::Net),
            "tax" => Some(Total::Tax),
            "gross" => Some(Total::Gross),
            "debit" => Some(Total::Debit),
            "credit" => Some(Total::Credit),
            "netamount" => Some(Total::NetAmount),
            "taxamount" => Some(Total::TaxAmount),
            "amtpaid" => Some(Total::AmtPaid),
            _ => None,
        };
        let wanted = class != Class::Keep
            || (opts.shift_dates && (date || time))
            || (opts.scale_amounts && (amount || (table == "transaction" && total.is_some())));
        FieldInfo {
            class,
            max_len: match kind {
                Some(FieldKind::Text { max_len }) => Some(max_len),
                _ => None,
            },
            street_first: !field.ends_with(['2', '3', '4']),
            date,
            time,
            amount,
            total,
            wanted,
        }
    }
}

fn is_amount(base: &str, kind: Option<FieldKind>) -> bool {
    let money_name = matches!(
        base,
        "gross"
            | "net"
            | "tax"
            | "netamount"
            | "taxamount"
            | "amtpaid"
            | "amount"
            | "debit"
            | "credit"
            | "quote"
            | "creditlimit"
            | "billed"
            | "stockvalue"
            | "dbalance"
            | "cbalance"
    ) || base.ends_with("price");
    match kind {
        Some(FieldKind::Decimal { places: 2 }) => true,
        Some(FieldKind::Decimal { .. }) => base.ends_with("price"),
        Some(_) => false,
        None => money_name,
    }
}

/// FNV-1a: element names and codes are short, so this beats SipHash for the lookups done per
/// element and per code. Nothing iterates the maps it hashes for, so their order never
/// reaches output.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The fields met so far in one table's records, by element name as written. Records of a
/// table repeat their fields in one order, so each field remembers the one that followed it
/// and a lookup is usually one comparison with that guess.
pub(super) struct TableFields {
    table: String,
    ids: FnvMap<u32>,
    entries: Vec<Entry>,
    /// The field looked up last.
    last: Option<u32>,
}

struct Entry {
    /// The element name as written.
    raw: String,
    /// The lowercase field name.
    name: String,
    info: FieldInfo,
    /// The field looked up after this one last time.
    next: Option<u32>,
}

impl TableFields {
    /// The id and rules of element `name` of this table's records.
    pub(super) fn lookup(&mut self, name: &str, opts: &AnonOptions) -> (u32, FieldInfo) {
        let guess = self.last.and_then(|l| self.entries[l as usize].next);
        let id = match guess {
            Some(g) if self.entries[g as usize].raw == name => g,
            _ => {
                let id = self.id(name, opts);
                if let Some(l) = self.last {
                    self.entries[l as usize].next = Some(id);
                }
                id
            }
        };
        self.last = Some(id);
        (id, self.entries[id as usize].info)
    }

    fn id(&mut self, name: &str, opts: &AnonOptions) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let lower = name.to_ascii_lowercase();
        let info = FieldInfo::new(&self.table, &lower, opts);
        let id = u32::try_from(self.entries.len()).expect("fewer than 2^32 distinct field names");
        self.entries.push(Entry {
            raw: name.to_string(),
            name: lower,
            info,
            next: None,
        });
        self.ids.insert(name.to_string(), id);
        id
    }

    pub(super) fn info(&self, id: u32) -> FieldInfo {
        self.entries[id as usize].info
    }

    /// The lowercase field name of `id`.
    pub(super) fn name(&self, id: u32) -> &str {
        &self.entries[id as usize].name
    }
}

/// The field caches of every table met in a run.
#[derive(Default)]
pub(super) struct Fields {
    tables: Vec<TableFields>,
}

impl Fields {
    /// The index of `table`'s cache (record element), made on first use.
    pub(super) fn table(&mut self, table: &str) -> usize {
        if let Some(i) = self.tables.iter().position(|t| t.table == table) {
            return i;
        }
        self.tables.push(TableFields {
            table: table.to_string(),
            ids: HashMap::default(),
            entries: Vec::new(),
            last: None,
        });
        self.tables.len() - 1
    }

    pub(super) fn get(&self, i: usize) -> &TableFields {
        &self.tables[i]
    }

    pub(super) fn get_mut(&mut self, i: usize) -> &mut TableFields {
        &mut self.tables[i]
    }
}

/// Assigns unique replacement codes, remembering each so references stay valid.
pub(super) struct CodeMap {
    class: Class,
    max: usize,
    map: FnvMap<String>,
    used: HashSet<String, BuildHasherDefault<Fnv>>,
}

type FnvMap<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;

impl CodeMap {
    pub(super) fn new(class: Class, table: &str) -> CodeMap {
        let max = match kind_of(table, "code") {
            Some(FieldKind::Text { max_len }) => max_len,
            _ => 9,
        };
        CodeMap {
            class,
            max,
            map: FnvMap::default(),
            used: HashSet::default(),
        }
    }

    pub(super) fn get(&mut self, keyed: &Keyed, original: &str) -> String {
        if let Some(r) = self.map.get(original) {
            return r.clone();
        }
        const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let base = original
            .chars()
            .count()
            .clamp(5, self.max.max(1))
            .min(self.max);
        let mut attempt = 0u32;
        let code = loop {
            let mut rng = keyed.rng_attempt(self.class.label(), original.as_bytes(), attempt);
            // Collisions are resolved by trying again; longer codes once short ones crowd.
            let len = (base + (attempt / 16) as usize).min(self.max);
            let code: String = (0..len)
                .map(|i| {
                    let set = if i == 0 { &ALNUM[..24] } else { ALNUM };
                    set[rng.random_range(0..set.len())] as char
                })
                .collect();
            if code != original && !self.used.contains(&code) {
                break code;
            }
            attempt += 1;
        };
        self.used.insert(code.clone());
        self.map.insert(original.to_string(), code.clone());
        code
    }
}

/// Truncates to at most `max` characters, trimming a trailing space.
pub(super) fn fit(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
    let t = s.trim_end().len();
    s.truncate(t);
    s
}

pub(super) fn shape(rng: &mut Rng, value: &str) -> String {
    value
        .chars()
        .enumerate()
        .map(|(i, c)| {
            // A leading 0 or + says what kind of number it is (local, international).
            if i == 0 && (c == '0' || c == '+') {
                c
            } else if c.is_ascii_digit() {
                char::from(b'0' + rng.random_range(0..10u8))
            } else if c.is_ascii_uppercase() {
                char::from(b'A' + rng.random_range(0..26u8))
            } else if c.is_alphabetic() {
                char::from(b'a' + rng.random_range(0..26u8))
            } else {
                c
            }
        })
        .collect()
}

pub(super) fn prose_of_len(rng: &mut Rng, len: usize) -> String {
    let mut out = String::with_capacity(len + 12);
    while out.len() < len {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pick(rng, PROSE));
    }
    let mut s = fit(out, len);
    if let Some(first) = s.get(..1) {
        let up = first.to_ascii_uppercase();
        s.replace_range(..1, &up);
    }
    s
}

/// Applies `f` to each line of a multi-line value, keeping line breaks and blank lines.
pub(super) fn per_line(value: &str, mut f: impl FnMut(usize, &str) -> String) -> String {
    if !value.contains(['\r', '\n']) {
        return if value.trim().is_empty() {
            value.to_string()
        } else {
            f(0, value)
        };
    }
    let mut out = String::with_capacity(value.len());
    let mut line = String::new();
    let mut n = 0;
    for c in value.chars() {
        if c == '\r' || c == '\n' {
            out.push_str(&if line.trim().is_empty() {
                line.clone()
            } else {
                f(n, &line)
            });
            out.push(c);
            line.clear();
            n += 1;
        } else {
            line.push(c);
        }
    }
    out.push_str(&if line.trim().is_empty() {
        line.clone()
    } else {
        f(n, &line)
    });
    out
}
