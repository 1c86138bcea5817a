//! The seeded dataset generator: a chart of accounts, customers and suppliers with contacts,
//! products, jobs and balanced transactions, as records in the simulator's schema order. It
//! owns what a generated record holds; it must not decide file layout beyond streaming one
//! table's export document, and all randomness comes from the spec's seed.

mod masters;
mod others;
mod transactions;

use std::collections::BTreeMap;
use std::io::Write;

use rand::Rng as _;

use super::keyed::{Rng, pick};
use super::words::*;
use super::{DataError, Dataset};
use crate::export_xml::{Flavour, Unwritable, write_record, write_table};
use crate::record::{Record, Row};
use crate::schema::{self, TableSchema, format_scaled};
use crate::time::DateTime;
use crate::xml::{Style, XmlWriter};
use masters::masters;
use transactions::Transactions;

/// What to generate. The same spec always gives the same records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Names (customers and suppliers).
    pub names: usize,
    /// Accounts in the chart (at least the ten the transactions need are always made).
    pub accounts: usize,
    /// Products.
    pub products: usize,
    /// Jobs.
    pub jobs: usize,
    /// Transactions.
    pub transactions: usize,
    /// Sizes of the other tables by internal name (`Contacts`, `Payments`, …); a table not
    /// named gets its default size (see [`GenSpec::size`]).
    pub sizes: BTreeMap<String, usize>,
    /// Modification times are spread over years ending here.
    pub end: DateTime,
}

impl GenSpec {
    /// How many records of `table` (an internal name) to make: the named size, else a
    /// default that follows the master data (a contact per Name, a stock record per Product,
    /// a payment per four transactions, …). TaxRate always holds its three codes and General
    /// its fixed categories, whatever is asked.
    pub fn size(&self, table: &str) -> usize {
        if let Some(n) = self.sizes.get(table) {
            return *n;
        }
        match table {
            "Name" => self.names,
            "Account" => self.accounts,
            "Product" => self.products,
            "Job" => self.jobs,
            "Transaction" => self.transactions,
            "Contacts" => self.names,
            "Inventory" => self.products,
            "Memo" => self.names / 2,
            "JobSheet" => self.jobs * 3,
            "Build" => self.products / 5,
            "Payments" => self.transactions / 4,
            "Department" => 4,
            "Login" => 3,
            "AutoSplit" | "User" | "User2" => 3,
            _ => 0,
        }
    }
}

impl Default for GenSpec {
    fn default() -> GenSpec {
        GenSpec {
            seed: 1,
            names: 20,
            accounts: 30,
            products: 15,
            jobs: 5,
            transactions: 60,
            sizes: BTreeMap::new(),
            end: DateTime::new(2026, 6, 30, 12, 0, 0)
                .expect("2026-06-30 12:00:00 is a valid time because every part is in range"),
        }
    }
}

/// How many years of history modification times span.
const YEARS: i64 = 6;
const DAY: i64 = 86_400;
/// Accounts the transactions rely on; the chart never has fewer.
const MIN_ACCOUNTS: usize = 10;

fn table(name: &str) -> &'static TableSchema {
    schema::schema_by_name(name).expect("the simulator schema serves every catalogue table")
}

/// The chart template: code, type, description, system flag. The first entries are the
/// ones transactions need, so any prefix of at least `MIN_ACCOUNTS` works.
const CHART: &[(&str, &str, &str, &str)] = &[
    ("1000", "BK", "Cheque Account", "BK"),
    ("1100", "CA", "Accounts Receivable", "AR"),
    ("2000", "CL", "Accounts Payable", "AP"),
    ("2100", "CL", "GST Payable", ""),
    ("4000", "SA", "Sales", ""),
    ("4100", "SA", "Service Income", ""),
    ("5000", "CS", "Cost of Goods Sold", ""),
    ("1200", "CA", "Inventory", ""),
    ("6000", "EX", "Advertising", ""),
    ("6500", "EX", "Office Supplies", ""),
    ("1010", "BK", "Savings Account", "BK"),
    ("1500", "FA", "Plant & Equipment", ""),
    ("2200", "CL", "Credit Card", ""),
    ("3000", "SH", "Share Capital", ""),
    ("3100", "SH", "Retained Earnings", ""),
    ("4200", "IN", "Interest Received", ""),
    ("5100", "CS", "Freight Inwards", ""),
    ("6100", "EX", "Bank Fees", ""),
    ("6200", "EX", "Electricity", ""),
    ("6300", "EX", "Insurance", ""),
    ("6400", "EX", "Motor Vehicle Expenses", ""),
    ("6600", "EX", "Rent", ""),
    ("6700", "EX", "Telephone & Internet", ""),
    ("6800", "EX", "Wages & Salaries", ""),
    ("6900", "EX", "Repairs & Maintenance", ""),
    ("7000", "EX", "Travel", ""),
    ("7100", "EX", "Subscriptions", ""),
    ("7200", "EX", "Accounting Fees", ""),
    ("7300", "EX", "Legal Fees", ""),
];

const SALES_ACCOUNTS: &[&str] = &["4000", "4100"];
const EXPENSE_ACCOUNTS: &[&str] = &["5000", "6000", "6500", "1200"];
const BANK: &str = "1000";
const AR: &str = "1100";
const AP: &str = "2000";

/// Sets a field by name; names the schema does not have are skipped, so the generator
/// follows the schema rather than adding to it.
fn set(record: &mut Record, name: &str, value: impl Into<String>) {
    if let Some(ix) = record.schema().index(name) {
        record.set(ix, &value.into());
    }
}

/// Sets a Detail line field by name, like [`set`].
fn set_line(row: &mut Row, name: &str, value: impl Into<String>) {
    let sub = schema::TRANSACTION
        .subfile
        .as_ref()
        .expect("the Transaction schema has a Detail subfile");
    if let Some(ix) = sub.index(name) {
        row.set(ix, &value.into());
    }
}

fn money(cents: i64) -> String {
    format_scaled(i128::from(cents), 2)
}

fn qty(units: i64) -> String {
    format_scaled(i128::from(units) * 1_000_000, 6)
}

fn date(t: DateTime) -> String {
    t.date_text()
}

/// Modification times for `n` records of one table: random over the years before `end`,
/// sorted by sequence number, with about one in ten sharing the previous record's second.
fn lmts(rng: &mut Rng, n: usize, end: DateTime) -> Vec<DateTime> {
    let span = YEARS * 365 * DAY;
    let mut times: Vec<i64> = (0..n).map(|_| rng.random_range(0..span)).collect();
    times.sort_unstable();
    let mut out: Vec<DateTime> = Vec::with_capacity(n);
    for (i, t) in times.into_iter().enumerate() {
        if i > 0 && rng.random_bool(0.1) {
            out.push(out[i - 1]);
        } else {
            out.push(end.add_secs(t - span));
        }
    }
    out
}

fn person(rng: &mut Rng) -> (String, String) {
    let first = pick(rng, FIRST_NAMES);
    (
        first.to_string(),
        format!("{first} {}", pick(rng, SURNAMES)),
    )
}

fn company(rng: &mut Rng) -> String {
    match rng.random_range(0..4) {
        0 => format!("{} {}", pick(rng, SURNAMES), pick(rng, COMPANY_TRADES)),
        1 => format!(
            "{} & {} {}",
            pick(rng, SURNAMES),
            pick(rng, SURNAMES),
            pick(rng, COMPANY_SUFFIXES)
        ),
        _ => format!(
            "{} {} {}",
            pick(rng, COMPANY_WORDS),
            pick(rng, COMPANY_TRADES),
            pick(rng, COMPANY_SUFFIXES)
        ),
    }
}

fn street(rng: &mut Rng) -> String {
    format!(
        "{} {} {}",
        rng.random_range(1..400),
        pick(rng, STREETS),
        pick(rng, STREET_TYPES)
    )
}

fn phone(rng: &mut Rng) -> String {
    format!(
        "0{} {:03} {:04}",
        rng.random_range(2..10),
        rng.random_range(200..1000),
        rng.random_range(0..10_000)
    )
}

/// A New Zealand-style bank account number (`12-3456-7890123-00`).
fn bank_account(rng: &mut Rng) -> String {
    format!(
        "{:02}-{:04}-{:07}-{:02}",
        rng.random_range(1..40),
        rng.random_range(0..10_000),
        rng.random_range(0..10_000_000),
        rng.random_range(0..100)
    )
}

fn prose(rng: &mut Rng, words: std::ops::Range<usize>) -> String {
    let n = rng.random_range(words);
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let w = pick(rng, PROSE);
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push_str(w);
        }
    }
    out
}

/// A unique code of at most `max` characters made from `base`'s letters plus a number.
fn unique_code(base: &str, max: usize, used: &mut std::collections::BTreeSet<String>) -> String {
    let letters: String = base
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .take(max.saturating_sub(2).min(6))
        .collect();
    let mut n = 1u64;
    loop {
        let suffix = n.to_string();
        let keep = letters.len().min(max.saturating_sub(suffix.len()));
        let code = format!("{}{suffix}", &letters[..keep]);
        if used.insert(code.clone()) {
            return code;
        }
        n += 1;
    }
}

fn fresh(t: &'static TableSchema, seq: usize, lmt: DateTime) -> Record {
    let mut rec = Record::blank(t);
    rec.set(schema::SEQ, &seq.to_string());
    rec.set(schema::LMT, &lmt.to_string());
    rec
}

/// Generates a whole dataset in memory (meant for small test datasets).
pub fn generate(spec: &GenSpec) -> Dataset {
    let m = masters(spec);
    let transactions: Vec<Record> = Transactions::new(&m, spec).collect();
    let payments: Vec<Record> = others::Payments::new(spec).collect();
    let mut tables = m.tables.clone();
    tables.insert("Transaction".to_string(), transactions);
    tables.insert("Payments".to_string(), payments);
    Dataset { tables }
}

fn unwritable(path: &std::path::Path, e: Unwritable) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes one table's export document of `count` records made by `records`, one record at a
/// time; returns the bytes written.
fn stream_table(
    dir: &std::path::Path,
    info: &crate::schema::TableInfo,
    count: usize,
    records: impl Iterator<Item = Record>,
) -> Result<u64, DataError> {
    let path = dir.join(format!("{}.xml", info.element));
    let file = std::fs::File::create(&path).map_err(|e| DataError::io(&path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut bytes = 0u64;
    let n = count.to_string();
    let mut head = XmlWriter::new(Style::EXPORT, 128);
    let attrs = [
        ("name", info.name),
        ("count", &n),
        ("start", "0"),
        ("found", &n),
    ];
    head.open("table", &attrs)
        .expect("table names and numbers are plain ASCII");
    let mut tail = XmlWriter::fragment(Style::EXPORT, 1);
    tail.close("table");
    let mut write = |s: &str| -> Result<(), DataError> {
        bytes += s.len() as u64;
        out.write_all(s.as_bytes())
            .map_err(|e| DataError::io(&path, e))
    };
    write(&head.finish())?;
    let mut body = XmlWriter::fragment(Style::EXPORT, 1);
    for (i, record) in records.enumerate() {
        write_record(&mut body, &record, Flavour::Verbose).map_err(|e| unwritable(&path, e))?;
        if i % 64 == 63 {
            write(&std::mem::replace(&mut body, XmlWriter::fragment(Style::EXPORT, 1)).finish())?;
        }
    }
    write(&body.finish())?;
    write(&tail.finish())?;
    out.flush().map_err(|e| DataError::io(&path, e))?;
    Ok(bytes)
}

/// Writes a generated dataset to `dir` (one verbose export per table), streaming the
/// transactions and payments so memory stays bounded by the master data. The bytes equal those of
/// `write_dir(&generate(spec), dir)`.
pub fn write_generated(spec: &GenSpec, dir: &std::path::Path) -> Result<u64, DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let m = masters(spec);
    let mut bytes = 0u64;
    for (name, records) in &m.tables {
        let schema = schema::schema_by_name(name).expect("master tables are served tables");
        let path = dir.join(format!("{}.xml", schema.info.element));
        let doc = write_table(
            schema.info,
            records.iter(),
            0,
            records.len() as u64,
            Flavour::Verbose,
        )
        .map_err(|e| unwritable(&path, e))?;
        std::fs::write(&path, &doc).map_err(|e| DataError::io(&path, e))?;
        bytes += doc.len() as u64;
    }
    bytes += stream_table(
        dir,
        schema::TRANSACTION.info,
        spec.transactions,
        Transactions::new(&m, spec),
    )?;
    bytes += stream_table(
        dir,
        schema::PAYMENTS.info,
        spec.size("Payments"),
        others::Payments::new(spec),
    )?;
    Ok(bytes)
}
