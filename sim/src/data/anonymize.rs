//! The streaming anonymizer: rewrites verbose-XML exports or mwsync record files with names,
//! contacts, addresses, phones, emails, web sites, bank accounts, tax numbers, free text and
//! key codes replaced, consistently across every file, keeping structure, counts and field
//! order. It holds one record at a time plus the key-code mapping tables; it must not hold a
//! whole file, and every replacement is derived from the seed alone.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use mwsync::mwtime::MwTime;
use mwsync::record::{KeyField, RecordKey, parse_record_path, record_path, table_info};
use quick_xml::events::{BytesText, Event};
use quick_xml::{Reader, Writer};
use rand::Rng as _;

use super::DataError;
use super::keyed::{Keyed, Rng, pick};
use super::words::*;
use crate::schema::{self, FieldKind, format_scaled, parse_scaled};

/// Options of one anonymization run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonOptions {
    /// Seed of every replacement; the same seed and input give the same bytes.
    pub seed: u64,
    /// Move every date and date-time by one seeded whole number of days.
    pub shift_dates: bool,
    /// Scale money amounts and prices by one seeded factor, keeping transactions balanced.
    pub scale_amounts: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnonStats {
    /// XML files written.
    pub files: u64,
    /// Records rewritten.
    pub records: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Files skipped because they are not XML.
    pub skipped: u64,
}

/// How a field's value is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
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
    fn label(self) -> &'static str {
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
fn classify(table: &str, field: &str) -> Class {
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
fn kind_of(table: &str, field: &str) -> Option<FieldKind> {
    let s = schema::schema_by_name(table_info(table)?.name)?;
    if let Some(f) = s.field(field) {
        return Some(f.kind);
    }
    s.subfile.as_ref()?.field(field).map(|f| f.kind)
}

/// Assigns unique replacement codes, remembering each so references stay valid.
struct CodeMap {
    class: Class,
    max: usize,
    map: HashMap<String, String>,
    used: HashSet<String>,
}

impl CodeMap {
    fn new(class: Class, table: &str) -> CodeMap {
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

    fn get(&mut self, keyed: &Keyed, original: &str) -> String {
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
fn fit(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
    let t = s.trim_end().len();
    s.truncate(t);
    s
}

fn shape(rng: &mut Rng, value: &str) -> String {
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

fn prose_of_len(rng: &mut Rng, len: usize) -> String {
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
fn per_line(value: &str, mut f: impl FnMut(usize, &str) -> String) -> String {
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

/// The anonymizer's state: the seed-derived key and the key-code mapping tables.
struct Anonymizer {
    keyed: Keyed,
    opts: AnonOptions,
    names: CodeMap,
    products: CodeMap,
    jobs: CodeMap,
    day_shift: i64,
    scale_millis: i128,
}

/// One leaf field of a buffered record.
struct Leaf {
    name: String,
    row: Option<u32>,
    start: usize,
    end: usize,
    value: String,
}

impl Anonymizer {
    fn new(opts: &AnonOptions) -> Anonymizer {
        let keyed = Keyed::new(opts.seed, "anonymize");
        let mut rng = keyed.rng("options", b"");
        let mut day_shift = 0;
        while day_shift == 0 {
            day_shift = rng.random_range(-365..=365i64);
        }
        let mut scale_millis = 1000;
        while scale_millis == 1000 {
            scale_millis = rng.random_range(500..=2000i128);
        }
        Anonymizer {
            keyed,
            opts: opts.clone(),
            names: CodeMap::new(Class::NameCode, "name"),
            products: CodeMap::new(Class::ProductCode, "product"),
            jobs: CodeMap::new(Class::JobCode, "job"),
            day_shift,
            scale_millis,
        }
    }

    fn code(&mut self, class: Class, original: &str) -> String {
        let keyed = &self.keyed;
        match class {
            Class::NameCode => self.names.get(keyed, original),
            Class::ProductCode => self.products.get(keyed, original),
            _ => self.jobs.get(keyed, original),
        }
    }

    /// The replacement text of one value, or `None` to keep it.
    fn replace(&mut self, table: &str, field: &str, value: &str) -> Option<String> {
        if value.trim().is_empty() {
            return None;
        }
        let class = classify(table, field);
        if matches!(class, Class::NameCode | Class::ProductCode | Class::JobCode) {
            return Some(self.code(class, value));
        }
        if class == Class::Keep {
            if !self.opts.shift_dates && !self.opts.scale_amounts {
                return None;
            }
            return self.shift_or_scale(field, kind_of(table, field), value);
        }
        let kind = kind_of(table, field);
        let orig_len = value.chars().count();
        let max = match kind {
            Some(FieldKind::Text { max_len }) => max_len,
            _ => orig_len.max(1),
        };
        let mut attempt = 0u32;
        loop {
            let mut msg = value.as_bytes().to_vec();
            msg.extend_from_slice(&attempt.to_le_bytes());
            let mut rng = self.keyed.rng(class.label(), &msg);
            let r = &mut rng;
            let out = match class {
                Class::Person => {
                    if value.trim().contains(' ') {
                        format!("{} {}", pick(r, FIRST_NAMES), pick(r, SURNAMES))
                    } else {
                        pick(r, FIRST_NAMES).to_string()
                    }
                }
                Class::Company => format!(
                    "{} {} {}",
                    pick(r, COMPANY_WORDS),
                    pick(r, COMPANY_TRADES),
                    pick(r, COMPANY_SUFFIXES)
                ),
                Class::Address => {
                    // A numbered line after the first (address2, delivery3) is a town.
                    let first = !field.ends_with(['2', '3', '4']);
                    per_line(value, |n, _| {
                        if n == 0 && first {
                            format!(
                                "{} {} {}",
                                r.random_range(1..400),
                                pick(r, STREETS),
                                pick(r, STREET_TYPES)
                            )
                        } else {
                            pick(r, TOWNS).to_string()
                        }
                    })
                }
                Class::Shape => shape(r, value),
                Class::Email => format!(
                    "{}.{}{}@{}",
                    pick(r, FIRST_NAMES).to_ascii_lowercase(),
                    pick(r, SURNAMES).to_ascii_lowercase().replace(' ', ""),
                    r.random_range(1..100),
                    pick(r, EMAIL_DOMAINS)
                ),
                Class::Web => format!(
                    "www.{}{}.{}",
                    pick(r, COMPANY_WORDS).to_ascii_lowercase(),
                    r.random_range(1..100),
                    pick(r, EMAIL_DOMAINS)
                ),
                Class::Text => per_line(value, |_, line| prose_of_len(r, line.chars().count())),
                _ => value.to_string(),
            };
            let out = fit(out, max);
            if out != value || attempt >= 8 {
                return Some(out);
            }
            attempt += 1;
        }
    }

    /// Date shifting and amount scaling for fields that are otherwise kept.
    fn shift_or_scale(&self, field: &str, kind: Option<FieldKind>, value: &str) -> Option<String> {
        let base = field.rsplit('.').next().unwrap_or(field);
        if self.opts.shift_dates {
            let is_date =
                matches!(kind, Some(FieldKind::Date)) || (kind.is_none() && base.ends_with("date"));
            let is_time = matches!(kind, Some(FieldKind::DateTime))
                || (kind.is_none() && base.ends_with("time"));
            let v = value.trim();
            if is_date && v.len() == 8 {
                let t = MwTime::parse(&format!("{v}000000")).ok()?;
                return Some(t.add_secs(self.day_shift * 86_400).to_string()[..8].to_string());
            }
            if is_time && v.len() == 14 {
                let t = MwTime::parse(v).ok()?;
                return Some(t.add_secs(self.day_shift * 86_400).to_string());
            }
        }
        if self.opts.scale_amounts && is_amount(base, kind) {
            return self.scale_text(value);
        }
        None
    }

    fn scale_text(&self, value: &str) -> Option<String> {
        let (places, v) = decimal(value)?;
        Some(format_scaled(self.scale(v), places))
    }

    fn scale(&self, v: i128) -> i128 {
        let p = v * self.scale_millis;
        let q = (p.abs() + 500) / 1000;
        if p < 0 { -q } else { q }
    }

    /// Rewrites one buffered record (`events[0]` is its start tag) to `w`.
    fn record<W: Write>(
        &mut self,
        table: &str,
        events: &[Event<'static>],
        w: &mut Writer<W>,
    ) -> Result<(), String> {
        let leaves = leaves(events)?;
        let mut new: Vec<Option<String>> = leaves
            .iter()
            .map(|l| self.replace(table, &l.name, &l.value))
            .collect();
        if self.opts.scale_amounts && table == "transaction" {
            self.balance(&leaves, &mut new);
        }
        let mut i = 0;
        let mut next = leaves
            .iter()
            .zip(&new)
            .filter(|(l, n)| n.as_deref().is_some_and(|n| n != l.value));
        let mut pending = next.next();
        while i < events.len() {
            if let Some((leaf, Some(text))) = pending
                && leaf.start == i
            {
                let mut escaped = String::with_capacity(text.len() + 8);
                mwsync::xmltree::escape_text(&mut escaped, text);
                write(w, events[i].borrow())?;
                write(w, Event::Text(BytesText::from_escaped(escaped)))?;
                write(w, events[leaf.end].borrow())?;
                i = leaf.end + 1;
                pending = next.next();
                continue;
            }
            write(w, events[i].borrow())?;
            i += 1;
        }
        Ok(())
    }

    /// Recomputes a transaction's totals from its scaled lines wherever the original totals
    /// equalled the sum of the original lines, so scaled transactions stay balanced.
    fn balance(&self, leaves: &[Leaf], new: &mut [Option<String>]) {
        let find = |row: Option<u32>, name: &str| {
            leaves
                .iter()
                .position(|l| l.row == row && l.name.rsplit('.').next() == Some(name))
        };
        let val = |i: Option<usize>| i.and_then(|i| decimal(&leaves[i].value));
        let rows: Vec<u32> = {
            let mut r: Vec<u32> = leaves.iter().filter_map(|l| l.row).collect();
            r.dedup();
            r
        };
        let (mut sum_net, mut sum_tax, mut sum_gross) = (0i128, 0i128, 0i128);
        let (mut new_net, mut new_tax, mut new_gross) = (0i128, 0i128, 0i128);
        for &row in &rows {
            let (ni, ti, gi) = (
                find(Some(row), "net"),
                find(Some(row), "tax"),
                find(Some(row), "gross"),
            );
            let (Some((_, net)), Some((_, tax)), Some((gp, gross))) = (val(ni), val(ti), val(gi))
            else {
                continue;
            };
            let (snet, stax) = (self.scale(net), self.scale(tax));
            let sgross = if gross == net + tax {
                snet + stax
            } else {
                self.scale(gross)
            };
            if let Some(i) = gi {
                new[i] = Some(format_scaled(sgross, gp));
            }
            for side in ["debit", "credit"] {
                if let Some(i) = find(Some(row), side)
                    && let Some((dp, d)) = val(Some(i))
                    && d == net
                    && d != 0
                {
                    new[i] = Some(format_scaled(snet, dp));
                }
            }
            sum_net += net;
            sum_tax += tax;
            sum_gross += gross;
            new_net += snet;
            new_tax += stax;
            new_gross += sgross;
        }
        if rows.is_empty() {
            return;
        }
        let gross_i = find(None, "gross");
        let orig_gross = val(gross_i).map(|(_, g)| g);
        for (name, sum, scaled) in [
            ("netamount", sum_net, new_net),
            ("taxamount", sum_tax, new_tax),
            ("gross", sum_gross, new_gross),
        ] {
            let i = find(None, name);
            if let Some((p, v)) = val(i)
                && v == sum
                && let Some(i) = i
            {
                new[i] = Some(format_scaled(scaled, p));
            }
        }
        if let Some(i) = find(None, "amtpaid")
            && let Some((p, paid)) = val(Some(i))
            && Some(paid) == orig_gross
            && orig_gross == Some(sum_gross)
        {
            new[i] = Some(format_scaled(new_gross, p));
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

/// A plain decimal as (places, value scaled by 10^places).
fn decimal(text: &str) -> Option<(u8, i128)> {
    let t = text.trim();
    let places = t.split_once('.').map_or(0, |(_, f)| f.len());
    let places = u8::try_from(places).ok().filter(|p| *p <= 12)?;
    Some((places, parse_scaled(t, places)?))
}

fn write<W: Write>(w: &mut Writer<W>, e: Event<'_>) -> Result<(), String> {
    w.write_event(e).map_err(|e| e.to_string())
}

/// The leaf fields of a buffered record, with their decoded text.
fn leaves(events: &[Event<'static>]) -> Result<Vec<Leaf>, String> {
    let mut out = Vec::new();
    // (name, event index, has child elements)
    let mut stack: Vec<(String, usize, bool)> = Vec::new();
    let mut row: Option<u32> = None;
    let mut rows = 0u32;
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Start(s) => {
                if let Some(parent) = stack.last_mut() {
                    parent.2 = true;
                    if parent.0.eq_ignore_ascii_case("subfile") {
                        rows += 1;
                        row = Some(rows);
                    }
                }
                stack.push((s.name().as_ref().to_ascii_lowercase(), i, false));
            }
            Event::Empty(_) => {
                if let Some(parent) = stack.last_mut() {
                    parent.2 = true;
                }
            }
            Event::End(_) => {
                let (name, start, has_children) =
                    stack.pop().ok_or("unbalanced end tag in a record")?;
                if !stack.is_empty() && !has_children && name != "subfile" {
                    let mut value = String::new();
                    for inner in &events[start + 1..i] {
                        match inner {
                            Event::Text(t) => value.push_str(&t.xml10_content()),
                            Event::CData(c) => value.push_str(&c.clone().into_inner()),
                            Event::GeneralRef(r) => value.push(resolve(r)?),
                            _ => {}
                        }
                    }
                    out.push(Leaf {
                        name,
                        row,
                        start,
                        end: i,
                        value,
                    });
                } else if let Some(parent) = stack.last()
                    && parent.0 == "subfile"
                {
                    row = None;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn resolve(r: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => Ok(c),
        Ok(None) => match &*r.clone().into_inner() {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            other => Err(format!("unknown entity &{other};")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Calls `f(relative path)` for every file below `root` in sorted order, skipping hidden
/// entries (`.git`, `.mwsync`). Only one directory listing is held at a time per level.
fn walk(
    root: &Path,
    rel: &str,
    f: &mut dyn FnMut(&str) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| DataError::io(&dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if root.join(&child).is_dir() {
            walk(root, &child, f)?;
        } else {
            f(&child)?;
        }
    }
    Ok(())
}

fn check_dirs(input: &Path, out: &Path, must_be_empty: bool) -> Result<(), DataError> {
    let src = input.canonicalize().map_err(|e| DataError::io(input, e))?;
    let dst = super::guard::resolve(out)?;
    let refuse = |reason: String| DataError::Refused {
        path: out.to_path_buf(),
        reason,
    };
    if dst.starts_with(&src) || src.starts_with(&dst) {
        return Err(refuse(format!(
            "the output and the input {} contain one another",
            input.display()
        )));
    }
    if must_be_empty
        && let Ok(mut entries) = std::fs::read_dir(out)
        && entries.next().is_some()
    {
        return Err(refuse(
            "it is not empty, and earlier output would mix with this run's".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))
}

fn malformed(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Anonymizes every XML file below `input` into `out`, keeping relative paths except that
/// record files keyed by a replaced code move to the path of their new code.
pub fn anonymize_dir(input: &Path, out: &Path, opts: &AnonOptions) -> Result<AnonStats, DataError> {
    check_dirs(input, out, true)?;
    let mut anon = Anonymizer::new(opts);
    let mut stats = AnonStats::default();
    walk(input, "", &mut |rel| {
        if !rel.ends_with(".xml") {
            stats.skipped += 1;
            return Ok(());
        }
        let dest_rel = match parse_record_path(rel) {
            Ok((table, RecordKey::Code(code))) if matches!(table.key, KeyField::Code("code")) => {
                let class = classify(table.element, "code");
                if class == Class::Keep {
                    rel.to_string()
                } else {
                    record_path(table, &RecordKey::Code(anon.code(class, &code)))
                }
            }
            _ => rel.to_string(),
        };
        let src = input.join(rel);
        let dst = out.join(&dest_rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let (records, bytes_in, bytes_out) = anon.file(&src, &dst)?;
        stats.files += 1;
        stats.records += records;
        stats.bytes_in += bytes_in;
        stats.bytes_out += bytes_out;
        Ok(())
    })?;
    Ok(stats)
}

type Pipe = (Reader<BufReader<File>>, Writer<BufWriter<File>>);

fn open(src: &Path, dst: &Path) -> Result<Pipe, DataError> {
    let input = File::open(src).map_err(|e| DataError::io(src, e))?;
    let output = File::create(dst).map_err(|e| DataError::io(dst, e))?;
    Ok((
        Reader::from_reader(BufReader::with_capacity(1 << 16, input)),
        Writer::new(BufWriter::with_capacity(1 << 16, output)),
    ))
}

fn finish(w: Writer<BufWriter<File>>, dst: &Path) -> Result<u64, DataError> {
    let mut inner = w.into_inner();
    inner.flush().map_err(|e| DataError::io(dst, e))?;
    let file = inner
        .into_inner()
        .map_err(|e| DataError::io(dst, e.into_error()))?;
    Ok(file.metadata().map_err(|e| DataError::io(dst, e))?.len())
}

impl Anonymizer {
    /// Rewrites one file: an export document (`<table>` root, records are its children) or
    /// a record file (the root is the record). Comments are dropped; they may hold anything.
    fn file(&mut self, src: &Path, dst: &Path) -> Result<(u64, u64, u64), DataError> {
        let (mut reader, mut w) = open(src, dst)?;
        let mut buf = Vec::with_capacity(4096);
        let mut depth = 0usize;
        let mut record_depth = 0usize;
        let mut table = String::new();
        let mut rec: Option<Vec<Event<'static>>> = None;
        let mut records = 0u64;
        let bad = |e: String| malformed(src, e);
        loop {
            buf.clear();
            let pos = reader.buffer_position();
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| bad(format!("not well-formed XML near byte {pos}: {e}")))?;
            match &ev {
                Event::Eof => break,
                Event::Comment(_) => continue,
                Event::Start(s) | Event::Empty(s) if depth == 0 => {
                    let name = s.name().as_ref().to_ascii_lowercase();
                    if name == "table" {
                        record_depth = 1;
                        let attr = s
                            .try_get_attribute("name")
                            .map_err(|e| bad(e.to_string()))?
                            .ok_or_else(|| bad("<table> has no name attribute".into()))?;
                        let tname = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| bad(e.to_string()))?;
                        table = table_info(&tname)
                            .map_or_else(|| tname.to_ascii_lowercase(), |t| t.element.to_string());
                    } else if mwsync::record::TABLES.iter().any(|t| t.element == name) {
                        record_depth = 0;
                        table = name;
                    } else {
                        return Err(bad(format!(
                            "the root element <{name}> is neither an export's <table> nor a \
                             record of a known table"
                        )));
                    }
                }
                _ => {}
            }
            match ev {
                Event::Start(s) => {
                    if let Some(r) = rec.as_mut() {
                        r.push(Event::Start(s.into_owned()));
                    } else if depth == record_depth {
                        rec = Some(vec![Event::Start(s.into_owned())]);
                    } else {
                        write(&mut w, Event::Start(s)).map_err(bad)?;
                    }
                    depth += 1;
                }
                Event::End(e) => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| bad("unbalanced end tag".into()))?;
                    if let Some(mut r) = rec.take() {
                        r.push(Event::End(e.into_owned()));
                        if depth == record_depth {
                            self.record(&table, &r, &mut w).map_err(bad)?;
                            records += 1;
                        } else {
                            rec = Some(r);
                        }
                    } else {
                        write(&mut w, Event::End(e)).map_err(bad)?;
                    }
                }
                other => {
                    if let Some(r) = rec.as_mut() {
                        r.push(other.into_owned());
                    } else {
                        if matches!(other, Event::Empty(_)) && depth == record_depth {
                            records += 1;
                        }
                        write(&mut w, other).map_err(bad)?;
                    }
                }
            }
        }
        if depth != 0 || rec.is_some() {
            return Err(bad(
                "the document ends inside an element (truncated?)".into()
            ));
        }
        let bytes_in = reader.buffer_position();
        let bytes_out = finish(w, dst)?;
        Ok((records, bytes_in, bytes_out))
    }
}

/// The baseline the benchmark compares against: reads every XML file below `input` with
/// quick-xml and writes each event back unchanged into `out`. Returns bytes read.
pub fn copy_xml_dir(input: &Path, out: &Path) -> Result<u64, DataError> {
    check_dirs(input, out, false)?;
    let mut total = 0u64;
    walk(input, "", &mut |rel| {
        if !rel.ends_with(".xml") {
            return Ok(());
        }
        let src: PathBuf = input.join(rel);
        let dst = out.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let (mut reader, mut w) = open(&src, &dst)?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            match reader.read_event_into(&mut buf) {
                Ok(Event::Eof) => break,
                Ok(e) => write(&mut w, e).map_err(|e| malformed(&src, e))?,
                Err(e) => return Err(malformed(&src, e.to_string())),
            }
        }
        total += reader.buffer_position();
        finish(w, &dst)?;
        Ok(())
    })?;
    Ok(total)
}
