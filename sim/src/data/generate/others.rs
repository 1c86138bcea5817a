//! The generator's other tables: tax rates, departments, account categories, logins, and the
//! records that hang off the master data (contacts and memos of Names, stock and recipes of
//! Products, job sheets of Jobs), allocation rules, scripts' user records, and the payments
//! that link receipts to invoices (streamed, like transactions). Each table draws from its
//! own seeded stream, so its size never changes another table's records. It must not make
//! master data or transactions.

use rand::Rng as _;

use super::super::keyed::{Keyed, Rng, pick};
use super::super::words::*;
use super::masters::Masters;
use super::{DAY, GenSpec, date, fresh, lmts, money, person, phone, prose, qty, set, table};
use crate::record::Record;
use crate::schema::format_scaled;

/// The tax codes every generated document has: (code, rate before the changeover, rate
/// after it). `G` is New Zealand's GST, which rose from 12.5 % to 15 % on 2010-10-01.
const TAX_CODES: &[(&str, i64, i64)] = &[("G", 12_500_000, 15_000_000), ("E", 0, 0), ("Z", 0, 0)];
/// The GST changeover date.
const GST_CHANGE: &str = "20101001";

/// General's fixed entries: account categories (`C`), department classifications (`D`) and
/// department groups (`S`).
const GENERAL: &[(&str, &str)] = &[
    ("CADM", "Administration"),
    ("CSALE", "Sales"),
    ("CPROD", "Production"),
    ("DNTH", "North Region"),
    ("DSTH", "South Region"),
    ("SHQ", "Head Office"),
];

const DEPARTMENTS: &[(&str, &str, &str)] = &[
    ("HQ", "Head Office", "NTH"),
    ("AKL", "Auckland Branch", "NTH"),
    ("WLG", "Wellington Branch", "NTH"),
    ("CHC", "Christchurch Branch", "STH"),
    ("DUD", "Dunedin Branch", "STH"),
];

fn stream(spec: &GenSpec, table: &str) -> Rng {
    Keyed::new(spec.seed, "generate").rng("others", table.as_bytes())
}

/// Records `1..=n` of `name`, each made by `make` with its sequence number and stamp.
fn many(
    spec: &GenSpec,
    name: &str,
    n: usize,
    mut make: impl FnMut(&mut Rng, &mut Record, usize),
) -> Vec<Record> {
    let mut rng = stream(spec, name);
    let times = lmts(&mut rng, n, spec.end);
    times
        .into_iter()
        .enumerate()
        .map(|(i, lmt)| {
            let mut rec = fresh(table(name), i + 1, lmt);
            make(&mut rng, &mut rec, i);
            rec
        })
        .collect()
}

/// Every table besides Account, Name, Product, Job, Transaction and Payments, keyed by name.
pub(super) fn others(spec: &GenSpec, m: &Masters) -> Vec<(&'static str, Vec<Record>)> {
    let names = m.tables.get("Name").map_or(&[][..], Vec::as_slice);
    let products = m.tables.get("Product").map_or(&[][..], Vec::as_slice);
    vec![
        ("TaxRate", tax_rates(spec)),
        ("Department", departments(spec)),
        ("General", general(spec)),
        ("Login", logins(spec)),
        ("Contacts", contacts(spec, names)),
        ("Inventory", inventory(spec, products)),
        ("Memo", memos(spec, names)),
        ("JobSheet", job_sheets(spec, m)),
        ("Build", builds(spec, products)),
        ("AutoSplit", autosplits(spec, m)),
        ("User", users(spec)),
        ("User2", user2s(spec)),
    ]
}

fn tax_rates(spec: &GenSpec) -> Vec<Record> {
    many(spec, "TaxRate", TAX_CODES.len(), |_, f, i| {
        let (code, before, after) = TAX_CODES[i];
        set(f, "taxcode", code);
        set(f, "date", GST_CHANGE);
        set(f, "rate1", format_scaled(i128::from(before), 6));
        set(f, "rate2", format_scaled(i128::from(after), 6));
        set(f, "paidaccount", "2100");
        set(f, "recaccount", "2100");
    })
}

fn departments(spec: &GenSpec) -> Vec<Record> {
    let n = spec.size("Department").min(DEPARTMENTS.len());
    many(spec, "Department", n, |rng, f, i| {
        let (code, desc, class) = DEPARTMENTS[i];
        set(f, "code", code);
        set(f, "description", desc);
        set(f, "classification", class);
        if rng.random_bool(0.3) {
            set(f, "custom1", prose(rng, 1..2));
        }
    })
}

fn general(spec: &GenSpec) -> Vec<Record> {
    many(spec, "General", GENERAL.len(), |_, f, i| {
        let (code, desc) = GENERAL[i];
        set(f, "code", code);
        set(f, "description", desc);
    })
}

fn logins(spec: &GenSpec) -> Vec<Record> {
    many(spec, "Login", spec.size("Login"), |rng, f, i| {
        let (first, full) = person(rng);
        let initials = if i == 0 {
            "ADM".to_string()
        } else {
            let mut s: String = full
                .split(' ')
                .filter_map(|w| w.chars().next())
                .collect::<String>()
                .to_ascii_uppercase();
            s.push(char::from(b'0' + (i % 10) as u8));
            s
        };
        set(f, "initials", initials);
        set(f, "name", full.clone());
        set(
            f,
            "email",
            format!("{}@acme.example", first.to_ascii_lowercase()),
        );
        set(f, "role", if i == 0 { "ADM" } else { "STF" });
        set(f, "category", if i == 0 { "Admin" } else { "Staff" });
        set(f, "securitylevel", if i == 0 { "9" } else { "1" });
        set(f, "privileges", "Y".repeat(32));
    })
}

fn contacts(spec: &GenSpec, names: &[Record]) -> Vec<Record> {
    let n = if names.is_empty() {
        0
    } else {
        spec.size("Contacts")
    };
    let mut orders = vec![0usize; names.len()];
    many(spec, "Contacts", n, |rng, f, _| {
        let parent = rng.random_range(0..names.len());
        orders[parent] += 1;
        let (first, full) = person(rng);
        set(f, "parentseq", names[parent].seq().unwrap_or(0).to_string());
        set(f, "order", orders[parent].to_string());
        set(f, "contact", full);
        set(f, "salutation", first.clone());
        set(f, "position", pick(rng, POSITIONS));
        set(f, "ddi", phone(rng));
        set(
            f,
            "email",
            format!(
                "{}{}@example.com",
                first.to_ascii_lowercase(),
                rng.random_range(1..99)
            ),
        );
        set(f, "role", rng.random_range(0..4).to_string());
    })
}

fn inventory(spec: &GenSpec, products: &[Record]) -> Vec<Record> {
    let n = if products.is_empty() {
        0
    } else {
        spec.size("Inventory")
    };
    many(spec, "Inventory", n, |rng, f, i| {
        let product = &products[i % products.len()];
        set(f, "productseq", product.seq().unwrap_or(0).to_string());
        set(f, "location", pick(rng, TOWNS));
        set(f, "qty", qty(rng.random_range(0..200)));
        if rng.random_bool(0.2) {
            set(
                f,
                "identifier",
                format!("B{:06}", rng.random_range(0..1_000_000)),
            );
        }
    })
}

fn memos(spec: &GenSpec, names: &[Record]) -> Vec<Record> {
    let n = if names.is_empty() {
        0
    } else {
        spec.size("Memo")
    };
    many(spec, "Memo", n, |rng, f, _| {
        let name = &names[rng.random_range(0..names.len())];
        let when = name.modified().unwrap_or(spec.end);
        set(f, "nameseq", name.seq().unwrap_or(0).to_string());
        set(
            f,
            "date",
            date(when.add_secs(-rng.random_range(0..200) * DAY)),
        );
        if rng.random_bool(0.3) {
            set(
                f,
                "recalldate",
                date(when.add_secs(rng.random_range(1..60) * DAY)),
            );
        }
        set(f, "text", prose(rng, 4..16));
    })
}

fn job_sheets(spec: &GenSpec, m: &Masters) -> Vec<Record> {
    let n = if m.jobs.is_empty() {
        0
    } else {
        spec.size("JobSheet")
    };
    many(spec, "JobSheet", n, |rng, f, _| {
        let (job, _) = &m.jobs[rng.random_range(0..m.jobs.len())];
        let when = f.modified().unwrap_or(spec.end);
        let hours = rng.random_range(1..40i64);
        let cost = rng.random_range(2_000..9_000i64);
        set(f, "job", job.clone());
        set(f, "date", date(when.add_secs(-DAY)));
        set(f, "dateentered", date(when));
        set(f, "enteredby", "ADM");
        set(
            f,
            "resource",
            pick(rng, ["LABOUR", "TRAVEL", "HIRE"].as_slice()),
        );
        set(f, "qty", qty(hours));
        set(f, "units", "hr");
        set(f, "costprice", format_scaled(i128::from(cost) * 10_000, 6));
        set(
            f,
            "sellprice",
            format_scaled(i128::from(cost * 3 / 2) * 10_000, 6),
        );
        set(f, "status", if rng.random_bool(0.7) { "PR" } else { "PE" });
        set(f, "type", "EX");
        set(f, "account", "6800");
        set(f, "memo", prose(rng, 2..6));
        let c = when.civil();
        set(
            f,
            "period",
            ((c.year - 2000) * 100 + i64::from(c.month)).to_string(),
        );
    })
}

fn builds(spec: &GenSpec, products: &[Record]) -> Vec<Record> {
    let n = if products.len() < 2 {
        0
    } else {
        spec.size("Build")
    };
    let code = crate::schema::PRODUCT
        .code
        .expect("products are keyed by code");
    many(spec, "Build", n, |rng, f, _| {
        let built = &products[rng.random_range(0..products.len())];
        let part = &products[rng.random_range(0..products.len())];
        set(f, "productseq", built.seq().unwrap_or(0).to_string());
        set(
            f,
            "partcode",
            part.get(code).chars().take(19).collect::<String>(),
        );
        set(f, "qty", qty(rng.random_range(1..6)));
        if rng.random_bool(0.3) {
            set(f, "memo", prose(rng, 2..5));
        }
    })
}

fn autosplits(spec: &GenSpec, m: &Masters) -> Vec<Record> {
    let expense = &m.expense_accounts;
    many(spec, "AutoSplit", spec.size("AutoSplit"), |rng, f, i| {
        set(f, "matchname", format!("RULE{}", i + 1));
        set(
            f,
            "matchfunction",
            format!("Contains(description, `{}`)", pick(rng, COMPANY_WORDS)),
        );
        set(f, "priority", (i + 1).to_string());
        set(f, "splitmode", "1");
        if let Some(a) = expense.first() {
            set(f, "splitacct1", a.clone());
        }
        if let Some(a) = expense.get(1) {
            set(f, "splitacct2", a.clone());
        }
        set(f, "splitamount1", qty(rng.random_range(10..90)));
    })
}

fn users(spec: &GenSpec) -> Vec<Record> {
    many(spec, "User", spec.size("User"), |rng, f, i| {
        set(f, "key", format!("SCRIPT{}", i + 1));
        set(f, "data", prose(rng, 2..8));
    })
}

fn user2s(spec: &GenSpec) -> Vec<Record> {
    many(spec, "User2", spec.size("User2"), |rng, f, i| {
        set(f, "devkey", (65_536 + i).to_string());
        set(f, "key", format!("setting.{}", i + 1));
        set(f, "int1", rng.random_range(0..1000).to_string());
        set(f, "text1", prose(rng, 1..4));
        set(
            f,
            "date1",
            date(spec.end.add_secs(-rng.random_range(0..400) * DAY)),
        );
    })
}

/// Payments one at a time from their own stream: each links a receipt or payment
/// (`cashtrans`) to an invoice (`invoiceid`), both transaction sequence numbers.
pub(crate) struct Payments {
    rng: Rng,
    spec: GenSpec,
    next: usize,
    count: usize,
    prev: i64,
}

impl Payments {
    pub(crate) fn new(spec: &GenSpec) -> Payments {
        let count = if spec.transactions < 2 {
            0
        } else {
            spec.size("Payments")
        };
        Payments {
            rng: stream(spec, "Payments"),
            spec: spec.clone(),
            next: 0,
            count,
            prev: 0,
        }
    }
}

impl Iterator for Payments {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.next >= self.count {
            return None;
        }
        self.next += 1;
        let rng = &mut self.rng;
        let n = self.spec.transactions as u64;
        let span = super::YEARS * 365 * DAY;
        // Stamps advance with the sequence number, as payments are entered over the years.
        let base = -span + (self.next as i64) * span / self.count as i64;
        let at = (base - rng.random_range(0..DAY)).max(self.prev);
        self.prev = at;
        let lmt = self.spec.end.add_secs(at);
        let mut f = fresh(table("Payments"), self.next, lmt);
        let invoice = rng.random_range(1..=n);
        let cash = rng.random_range(1..=n);
        set(&mut f, "invoiceid", invoice.to_string());
        set(&mut f, "cashtrans", cash.to_string());
        set(&mut f, "amount", money(rng.random_range(1_000..500_000)));
        set(&mut f, "date", date(lmt));
        Some(f)
    }
}
