//! The anonymizer's value rules: which class a field belongs to (codes, people, companies,
//! addresses, shaped numbers, emails, web sites, free text), replacement codes that stay
//! unique and consistent, and the text helpers replacements are built with. It must not read
//! or write files.

use std::collections::{HashMap, HashSet};

use rand::Rng as _;

use super::super::keyed::{Keyed, Rng, pick};
use super::super::words::*;
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

/// Assigns unique replacement codes, remembering each so references stay valid.
pub(super) struct CodeMap {
    class: Class,
    max: usize,
    map: HashMap<String, String>,
    used: HashSet<String>,
}

impl CodeMap {
    pub(super) fn new(class: Class, table: &str) -> CodeMap {
        let max = match kind_of(table, "code") {
            Some(FieldKind::Text { max_len }) => max_len,
            _ => 9,
        };
        CodeMap {
            class,
            max,
            map: HashMap::new(),
            used: HashSet::new(),
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
            let mut msg = original.as_bytes().to_vec();
            msg.extend_from_slice(&attempt.to_le_bytes());
            let mut rng = keyed.rng(self.class.label(), &msg);
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
