//! The seeded dataset generator: a chart of accounts, customers and suppliers with contacts,
//! products, jobs and balanced transactions, as records in the simulator's schema order. It
//! owns what a generated record holds; it must not decide file layout beyond streaming one
//! table's export document, and all randomness comes from the spec's seed.

use std::collections::BTreeMap;
use std::io::Write;

use mwsync::mwtime::MwTime;
use mwsync::record::{Field, Record, Row, Value};
use rand::Rng as _;

use super::keyed::{Keyed, Rng, pick};
use super::words::*;
use super::{DataError, Dataset};
use crate::export_xml::{Flavour, write_table};
use crate::schema::{self, TableSchema, format_scaled};

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
    /// Modification times are spread over years ending here.
    pub end: MwTime,
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
            end: MwTime::from_parts(2026, 6, 30, 12, 0, 0)
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
    schema::schema_by_name(name)
        .expect("the simulator schema serves Account, Name, Product, Job and Transaction")
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

/// Sets an existing field; fields the schema does not have are skipped, so the generator
/// follows the schema rather than adding to it.
fn set(fields: &mut [Field], name: &str, value: impl Into<String>) {
    if let Some(f) = fields.iter_mut().find(|f| f.name == name) {
        f.value = Value::Text(value.into());
    }
}

fn money(cents: i64) -> String {
    format_scaled(i128::from(cents), 2)
}

fn qty(units: i64) -> String {
    format_scaled(i128::from(units) * 1_000_000, 6)
}

fn date(t: MwTime) -> String {
    t.to_string()[..8].to_string()
}

/// Master data kept while transactions are made: the codes they may reference.
pub(super) struct Masters {
    /// Account, Name, Product and Job records, keyed by table name.
    pub tables: BTreeMap<String, Vec<Record>>,
    customers: Vec<(String, String, String)>,
    suppliers: Vec<(String, String, String)>,
    products: Vec<(String, i64, String)>,
    jobs: Vec<(String, String)>,
    expense_accounts: Vec<String>,
}

/// Modification times for `n` records of one table: random over the years before `end`,
/// sorted by sequence number, with about one in ten sharing the previous record's second.
fn lmts(rng: &mut Rng, n: usize, end: MwTime) -> Vec<MwTime> {
    let span = YEARS * 365 * DAY;
    let mut times: Vec<i64> = (0..n).map(|_| rng.random_range(0..span)).collect();
    times.sort_unstable();
    let mut out: Vec<MwTime> = Vec::with_capacity(n);
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

fn fresh(t: &'static TableSchema, seq: usize, lmt: MwTime) -> Record {
    let mut rec = schema::blank_record(t);
    set(&mut rec.fields, "sequencenumber", seq.to_string());
    set(&mut rec.fields, "lastmodifiedtime", lmt.to_string());
    rec
}

fn accounts(rng: &mut Rng, spec: &GenSpec) -> (Vec<Record>, Vec<String>) {
    let n = spec.accounts.max(MIN_ACCOUNTS);
    let times = lmts(rng, n, spec.end);
    let mut out = Vec::with_capacity(n);
    let mut expense = EXPENSE_ACCOUNTS
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    for (i, lmt) in times.into_iter().enumerate() {
        let mut rec = fresh(table("Account"), i + 1, lmt);
        let f = &mut rec.fields;
        let (code, kind, desc, system) = match CHART.get(i) {
            Some(&(c, k, d, s)) => (c.to_string(), k, d.to_string(), s),
            None => {
                let code = format!("{}", 8000 + (i - CHART.len()) * 5);
                let desc = format!("{} {}", pick(rng, PRODUCT_ADJECTIVES), "Expenses");
                (code, "EX", desc, "")
            }
        };
        if i >= CHART.len() || (kind == "EX" && i >= MIN_ACCOUNTS) {
            expense.push(code.clone());
        }
        set(f, "code", code.clone());
        set(f, "type", kind);
        set(f, "description", desc);
        set(f, "category", "");
        set(f, "taxcode", if kind == "BK" { "" } else { "G" });
        set(f, "system", system);
        set(f, "colour", rng.random_range(0..8).to_string());
        if kind == "BK" {
            set(f, "bankaccountnumber", bank_account(rng));
        }
        if rng.random_bool(0.1) {
            set(f, "comments", prose(rng, 3..10));
        }
        out.push(rec);
    }
    expense.sort();
    expense.dedup();
    (out, expense)
}

/// Builds the master tables (everything but transactions).
pub(super) fn masters(spec: &GenSpec) -> Masters {
    let keyed = Keyed::new(spec.seed, "generate");
    let mut rng = keyed.rng("masters", b"");
    let (account_recs, expense_accounts) = accounts(&mut rng, spec);

    let mut used = std::collections::BTreeSet::new();
    let mut names = Vec::with_capacity(spec.names);
    let (mut customers, mut suppliers) = (Vec::new(), Vec::new());
    for (i, lmt) in lmts(&mut rng, spec.names, spec.end).into_iter().enumerate() {
        let mut rec = fresh(table("Name"), i + 1, lmt);
        let f = &mut rec.fields;
        let company = company(&mut rng);
        let code = unique_code(&company, 11, &mut used);
        let (first, contact) = person(&mut rng);
        // Alternate so that small datasets always have both customers and suppliers.
        let role = if i % 10 == 9 { 2 } else { i % 2 };
        let (cust, supp) = match role {
            0 => (2, 0),
            1 => (0, 2),
            _ => (2, 2),
        };
        set(f, "code", code.clone());
        set(f, "name", company.clone());
        set(f, "contact", contact.clone());
        set(f, "position", pick(&mut rng, POSITIONS));
        set(f, "salutation", first.clone());
        set(f, "address1", street(&mut rng));
        set(f, "address2", pick(&mut rng, TOWNS));
        set(f, "address3", "");
        set(
            f,
            "postcode",
            format!("{:04}", rng.random_range(100..10_000)),
        );
        set(f, "state", pick(&mut rng, STATES));
        set(f, "country", "New Zealand");
        if rng.random_bool(0.3) {
            set(f, "delivery1", street(&mut rng));
            set(f, "delivery2", pick(&mut rng, TOWNS));
        }
        set(f, "phone", phone(&mut rng));
        if rng.random_bool(0.5) {
            set(
                f,
                "mobile",
                format!("021 {:07}", rng.random_range(0..10_000_000)),
            );
        }
        let domain_word: String = company
            .split(' ')
            .next()
            .unwrap_or("firm")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let domain = format!("{domain_word}{}.{}", i + 1, pick(&mut rng, EMAIL_DOMAINS));
        set(
            f,
            "email",
            format!("{}@{domain}", first.to_ascii_lowercase()),
        );
        if rng.random_bool(0.6) {
            set(f, "weburl", format!("www.{domain}"));
        }
        set(f, "customertype", cust.to_string());
        set(f, "suppliertype", supp.to_string());
        set(f, "debtorterms", if cust > 0 { "20" } else { "0" });
        set(f, "creditorterms", if supp > 0 { "20" } else { "0" });
        if cust > 0 {
            set(f, "creditlimit", money(rng.random_range(1..50) * 100_000));
        }
        set(f, "taxcode", "G");
        set(
            f,
            "taxnumber",
            format!(
                "{:03}-{:03}-{:03}",
                rng.random_range(10..150),
                rng.random_range(0..1000),
                rng.random_range(0..1000)
            ),
        );
        set(f, "bankaccountnumber", bank_account(&mut rng));
        set(f, "bankaccountname", company.clone());
        set(f, "recaccount", if cust > 0 { AR } else { "" });
        set(f, "payaccount", if supp > 0 { AP } else { "" });
        set(f, "colour", rng.random_range(0..8).to_string());
        if rng.random_bool(0.2) {
            set(f, "comment", prose(&mut rng, 4..16));
        }
        if cust > 0 {
            customers.push((code.clone(), company.clone(), contact.clone()));
        }
        if supp > 0 {
            suppliers.push((code, company, contact));
        }
        names.push(rec);
    }

    let mut used = std::collections::BTreeSet::new();
    let mut products = Vec::with_capacity(spec.products);
    let mut product_refs = Vec::with_capacity(spec.products);
    for (i, lmt) in lmts(&mut rng, spec.products, spec.end)
        .into_iter()
        .enumerate()
    {
        let mut rec = fresh(table("Product"), i + 1, lmt);
        let f = &mut rec.fields;
        let noun = pick(&mut rng, PRODUCT_NOUNS);
        let desc = format!("{} {noun}", pick(&mut rng, PRODUCT_ADJECTIVES));
        let code = unique_code(noun, 31, &mut used);
        let unit = pick(&mut rng, UNITS);
        let buy = rng.random_range(50..50_000i64);
        let sell = buy + buy * rng.random_range(10..80) / 100;
        set(f, "code", code.clone());
        set(f, "description", desc.clone());
        set(f, "type", "P");
        set(f, "category1", noun.split(' ').next().unwrap_or(noun));
        if let Some((supp, _, _)) = suppliers.get(rng.random_range(0..suppliers.len().max(1))) {
            set(f, "supplier", supp.clone());
            set(
                f,
                "suppliercode",
                format!("S{}", rng.random_range(1000..99_999)),
            );
        }
        set(
            f,
            "barcode",
            format!("{:013}", rng.random_range(0..10_000_000_000_000u64)),
        );
        set(f, "sellunit", unit);
        set(f, "buyunit", unit);
        set(f, "sellprice", format_scaled(i128::from(sell) * 10_000, 6));
        set(f, "buyprice", format_scaled(i128::from(buy) * 10_000, 6));
        set(f, "costprice", format_scaled(i128::from(buy) * 10_000, 6));
        set(f, "conversionfactor", qty(1));
        set(f, "salesacct", "4000");
        set(f, "stockacct", "1200");
        set(f, "cogacct", "5000");
        set(f, "selltaxcode", "G");
        set(f, "buytaxcode", "G");
        set(f, "reorderlevel", qty(rng.random_range(0..20)));
        set(f, "colour", rng.random_range(0..8).to_string());
        products.push(rec);
        product_refs.push((code, sell, desc));
    }

    let mut jobs = Vec::with_capacity(spec.jobs);
    let mut job_refs = Vec::with_capacity(spec.jobs);
    for (i, lmt) in lmts(&mut rng, spec.jobs, spec.end).into_iter().enumerate() {
        let mut rec = fresh(table("Job"), i + 1, lmt);
        let f = &mut rec.fields;
        let code = format!("J{:05}", i + 1);
        let client = customers
            .get(rng.random_range(0..customers.len().max(1)))
            .cloned();
        let start = lmt.add_secs(-rng.random_range(30..400) * DAY);
        set(f, "code", code.clone());
        set(
            f,
            "description",
            format!(
                "{} {}",
                pick(&mut rng, STREETS),
                pick(
                    &mut rng,
                    ["Fit-out", "Renovation", "Supply", "Maintenance", "Install"].as_slice()
                )
            ),
        );
        if let Some((c, _, contact)) = &client {
            set(f, "client", c.clone());
            set(f, "contact", contact.clone());
        }
        set(f, "phone", phone(&mut rng));
        set(
            f,
            "ordernum",
            format!("PO{}", rng.random_range(1000..99_999)),
        );
        set(f, "status", if rng.random_bool(0.3) { "CO" } else { "OP" });
        set(f, "manager", "ADM");
        set(f, "startdate", date(start));
        set(f, "targetdate", date(start.add_secs(90 * DAY)));
        set(f, "quote", money(rng.random_range(1000..200_000) * 100));
        set(f, "markup", qty(0));
        set(f, "colour", rng.random_range(0..8).to_string());
        jobs.push(rec);
        job_refs.push((code, client.map(|c| c.0).unwrap_or_default()));
    }

    let mut tables = BTreeMap::new();
    tables.insert("Account".to_string(), account_recs);
    tables.insert("Name".to_string(), names);
    tables.insert("Product".to_string(), products);
    tables.insert("Job".to_string(), jobs);
    Masters {
        tables,
        customers,
        suppliers,
        products: product_refs,
        jobs: job_refs,
        expense_accounts,
    }
}

/// Makes transactions one at a time from a seeded stream, so any number can be written
/// without holding them.
pub(super) struct Transactions<'m> {
    masters: &'m Masters,
    spec: GenSpec,
    rng: Rng,
    next: usize,
    detail_seq: u64,
    prev_lmt: Option<MwTime>,
    refs: [u64; 4],
}

impl<'m> Transactions<'m> {
    pub(super) fn new(masters: &'m Masters, spec: &GenSpec) -> Transactions<'m> {
        Transactions {
            masters,
            spec: spec.clone(),
            rng: Keyed::new(spec.seed, "generate").rng("transactions", b""),
            next: 0,
            detail_seq: 0,
            prev_lmt: None,
            refs: [10_000, 20_000, 30_000, 40_000],
        }
    }
}

impl Iterator for Transactions<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.next >= self.spec.transactions {
            return None;
        }
        self.next += 1;
        let i = self.next;
        let m = self.masters;
        let rng = &mut self.rng;
        let n = self.spec.transactions as i64;
        let span = YEARS * 365 * DAY;
        // Transaction dates advance with the sequence number; modification follows entry.
        let base = self
            .spec
            .end
            .add_secs(-span + (i as i64 - 1) * span / n.max(1));
        let transdate = base.add_secs(-rng.random_range(0..3 * DAY));
        let mut lmt = transdate.add_secs(rng.random_range(3600..20 * DAY));
        if lmt > self.spec.end {
            lmt = self.spec.end;
        }
        if let Some(prev) = self.prev_lmt
            && rng.random_bool(0.08)
        {
            lmt = prev;
        }
        self.prev_lmt = Some(lmt);

        let kind = match rng.random_range(0..10) {
            0..4 => "DII",
            4..6 => "CII",
            6..8 => "CR",
            _ => "CP",
        };
        let sale = matches!(kind, "DII" | "CR");
        let party = if sale { &m.customers } else { &m.suppliers };
        let party = if party.is_empty() {
            None
        } else {
            Some(&party[rng.random_range(0..party.len())])
        };
        let contra = match kind {
            "DII" => AR,
            "CII" => AP,
            _ => BANK,
        };
        let recent = self.spec.end.unix_secs() - lmt.unix_secs() < 60 * DAY;
        let posted = !rng.random_bool(if recent { 0.5 } else { 0.05 });

        let t = table("Transaction");
        let sub = t
            .subfile
            .as_ref()
            .expect("the Transaction schema has a Detail subfile");
        let lines = rng.random_range(1..6);
        let mut rows = Vec::with_capacity(lines);
        let (mut net_sum, mut tax_sum) = (0i64, 0i64);
        for line in 0..lines {
            let mut row: Row = schema::blank_row(sub);
            let f = &mut row.fields;
            self.detail_seq += 1;
            let taxed = rng.random_bool(0.85);
            let (account, net, desc, stock) =
                if sale && !m.products.is_empty() && rng.random_bool(0.6) {
                    let (code, price, desc) = &m.products[rng.random_range(0..m.products.len())];
                    let q = rng.random_range(1..25i64);
                    set(f, "detail.stockqty", qty(q));
                    set(
                        f,
                        "detail.unitprice",
                        format_scaled(i128::from(*price) * 10_000, 6),
                    );
                    set(f, "detail.saleunit", "ea");
                    ("4000".to_string(), price * q, desc.clone(), code.clone())
                } else if sale {
                    let acct = pick(rng, SALES_ACCOUNTS).to_string();
                    (
                        acct,
                        rng.random_range(500..500_000i64),
                        prose(rng, 2..7),
                        String::new(),
                    )
                } else {
                    let acct =
                        m.expense_accounts[rng.random_range(0..m.expense_accounts.len())].clone();
                    (
                        acct,
                        rng.random_range(500..300_000i64),
                        prose(rng, 2..7),
                        String::new(),
                    )
                };
            let tax = if taxed { (net * 15 + 50) / 100 } else { 0 };
            net_sum += net;
            tax_sum += tax;
            set(f, "detail.sequencenumber", self.detail_seq.to_string());
            set(f, "detail.parentseq", i.to_string());
            set(f, "detail.sort", line.to_string());
            set(f, "detail.account", account);
            set(f, "detail.taxcode", if taxed { "G" } else { "E" });
            set(f, "detail.net", money(net));
            set(f, "detail.tax", money(tax));
            set(f, "detail.gross", money(net + tax));
            set(f, "detail.description", desc);
            set(f, "detail.stockcode", stock);
            if !m.jobs.is_empty() && rng.random_bool(0.15) {
                let (job, _) = &m.jobs[rng.random_range(0..m.jobs.len())];
                set(f, "detail.jobcode", job.clone());
            }
            if sale {
                set(f, "detail.credit", money(net));
            } else {
                set(f, "detail.debit", money(net));
            }
            rows.push(row);
        }
        let gross = net_sum + tax_sum;

        let mut rec = fresh(t, i, lmt);
        let f = &mut rec.fields;
        let slot = match kind {
            "DII" => 0,
            "CII" => 1,
            "CR" => 2,
            _ => 3,
        };
        self.refs[slot] += 1;
        set(f, "ourref", self.refs[slot].to_string());
        set(f, "transdate", date(transdate));
        set(f, "enterdate", date(transdate));
        if matches!(kind, "DII" | "CII") {
            set(f, "duedate", date(transdate.add_secs(30 * DAY)));
        }
        let (y, mo, ..) = transdate.parts();
        set(f, "period", ((y - 2000) * 100 + i64::from(mo)).to_string());
        set(f, "type", kind);
        if kind == "CII" {
            set(
                f,
                "theirref",
                format!("INV-{}", rng.random_range(100..99_999)),
            );
        } else if kind == "DII" && rng.random_bool(0.4) {
            set(
                f,
                "theirref",
                format!("PO{}", rng.random_range(100..99_999)),
            );
        }
        if let Some((code, company, _)) = party {
            set(f, "namecode", code.clone());
            set(f, "tofrom", company.clone());
        }
        set(f, "description", prose(rng, 2..8));
        set(f, "gross", money(gross));
        set(f, "taxamount", money(tax_sum));
        set(f, "netamount", money(net_sum));
        set(f, "contra", contra);
        set(f, "status", if posted { "P" } else { "U" });
        set(f, "currency", "");
        set(f, "exchangerate", qty(1));
        if posted && matches!(kind, "DII" | "CII") && !recent && rng.random_bool(0.9) {
            set(f, "amtpaid", money(gross));
            set(
                f,
                "datepaid",
                date(transdate.add_secs(rng.random_range(1..40) * DAY)),
            );
        } else if matches!(kind, "CR" | "CP") {
            set(f, "amtpaid", money(gross));
            set(f, "datepaid", date(transdate));
        }
        if kind == "DII" && rng.random_bool(0.3) {
            set(
                f,
                "deliveryaddress",
                format!("{}\r{}", street(rng), pick(rng, TOWNS)),
            );
        }
        set(f, "colour", rng.random_range(0..8).to_string());
        set(f, "enteredby", "ADM");
        if posted {
            set(f, "postedby", "ADM");
            set(f, "timeposted", lmt.to_string());
        }
        if let Some(field) = f.iter_mut().find(|f| matches!(f.value, Value::Subfile(_))) {
            field.value = Value::Subfile(rows);
        }
        Some(rec)
    }
}

/// Generates a whole dataset in memory (meant for small test datasets).
pub fn generate(spec: &GenSpec) -> Dataset {
    let m = masters(spec);
    let transactions: Vec<Record> = Transactions::new(&m, spec).collect();
    let mut tables = m.tables.clone();
    tables.insert("Transaction".to_string(), transactions);
    Dataset { tables }
}

/// The body lines of one record as `write_table` writes them, without the document wrapper.
fn record_body(record: &Record) -> String {
    let doc = write_table(record.table, [record].into_iter(), 0, 1, Flavour::Verbose);
    let start = doc.match_indices('\n').nth(1).map_or(0, |(i, _)| i + 1);
    let end = doc.rfind("</table>").unwrap_or(doc.len());
    doc[start..end].to_string()
}

/// Writes a generated dataset to `dir` (one verbose export per table), streaming the
/// transactions so memory stays bounded by the master data. The bytes equal those of
/// `write_dir(&generate(spec), dir)`.
pub fn write_generated(spec: &GenSpec, dir: &std::path::Path) -> Result<u64, DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let m = masters(spec);
    let mut bytes = 0u64;
    for (name, records) in &m.tables {
        let info = mwsync::record::table_info(name).expect("master tables are engine tables");
        let doc = write_table(
            info,
            records.iter(),
            0,
            records.len() as u64,
            Flavour::Verbose,
        );
        let path = dir.join(format!("{}.xml", info.element));
        std::fs::write(&path, &doc).map_err(|e| DataError::io(&path, e))?;
        bytes += doc.len() as u64;
    }
    let info = mwsync::record::table_info("Transaction").expect("Transaction is an engine table");
    let path = dir.join(format!("{}.xml", info.element));
    let file = std::fs::File::create(&path).map_err(|e| DataError::io(&path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let n = spec.transactions;
    let head = format!(
        "<?xml version=\"1.0\"?>\n<table name=\"{}\" count=\"{n}\" start=\"0\" found=\"{n}\">\n",
        info.name
    );
    let mut write = |s: &str| -> Result<(), DataError> {
        bytes += s.len() as u64;
        out.write_all(s.as_bytes())
            .map_err(|e| DataError::io(&path, e))
    };
    write(&head)?;
    for record in Transactions::new(&m, spec) {
        write(&record_body(&record))?;
    }
    write("</table>\n")?;
    out.flush().map_err(|e| DataError::io(&path, e))?;
    Ok(bytes)
}
