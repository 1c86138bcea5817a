//! The generator's master data: a chart of accounts, customers and suppliers, products and
//! jobs, each from the one seeded stream in a fixed order, plus the references transactions
//! draw on. It must not make transactions.

use std::collections::BTreeMap;

use rand::Rng as _;

use super::super::keyed::{Keyed, Rng, pick};
use super::super::words::*;
use super::{
    AP, AR, CHART, DAY, EXPENSE_ACCOUNTS, GenSpec, MIN_ACCOUNTS, bank_account, company, date,
    fresh, lmts, money, person, phone, prose, qty, set, street, table, unique_code,
};
use crate::record::Record;
use crate::schema::format_scaled;

/// (code, company, contact) of a customer or supplier.
pub(super) type Parties = Vec<(String, String, String)>;

/// Master data kept while transactions are made: the codes they may reference. `tables`
/// holds every table but Transaction and Payments, which are streamed.
pub(crate) struct Masters {
    /// Account, Name, Product and Job records, keyed by table name.
    pub tables: BTreeMap<String, Vec<Record>>,
    pub(super) customers: Parties,
    pub(super) suppliers: Parties,
    pub(super) products: Vec<(String, i64, String)>,
    pub(super) jobs: Vec<(String, String)>,
    pub(super) expense_accounts: Vec<String>,
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
        let f = &mut rec;
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
pub(crate) fn masters(spec: &GenSpec) -> Masters {
    let keyed = Keyed::new(spec.seed, "generate");
    let mut rng = keyed.rng("masters", b"");
    let (account_recs, expense_accounts) = accounts(&mut rng, spec);
    let (names, customers, suppliers) = names(&mut rng, spec);
    let (products, product_refs) = products(&mut rng, spec, &suppliers);
    let (jobs, job_refs) = jobs(&mut rng, spec, &customers);
    let mut tables = BTreeMap::new();
    tables.insert("Account".to_string(), account_recs);
    tables.insert("Name".to_string(), names);
    tables.insert("Product".to_string(), products);
    tables.insert("Job".to_string(), jobs);
    let mut m = Masters {
        tables,
        customers,
        suppliers,
        products: product_refs,
        jobs: job_refs,
        expense_accounts,
    };
    for (name, records) in super::others::others(spec, &m) {
        m.tables.insert(name.to_string(), records);
    }
    m
}

/// Customers and suppliers: their records, and the (code, company, contact) of each kind.
fn names(rng: &mut Rng, spec: &GenSpec) -> (Vec<Record>, Parties, Parties) {
    let mut used = std::collections::BTreeSet::new();
    let mut names = Vec::with_capacity(spec.names);
    let (mut customers, mut suppliers) = (Vec::new(), Vec::new());
    for (i, lmt) in lmts(rng, spec.names, spec.end).into_iter().enumerate() {
        let mut rec = fresh(table("Name"), i + 1, lmt);
        let f = &mut rec;
        let company = company(rng);
        let code = unique_code(&company, 11, &mut used);
        let (first, contact) = person(rng);
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
        set(f, "position", pick(rng, POSITIONS));
        set(f, "salutation", first.clone());
        addresses_and_contacts(f, rng, &company, &first, i + 1);
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
        set(f, "bankaccountnumber", bank_account(rng));
        set(
            f,
            "accountname",
            company.chars().take(21).collect::<String>().trim_end(),
        );
        set(f, "recaccount", if cust > 0 { AR } else { "" });
        set(f, "payaccount", if supp > 0 { AP } else { "" });
        set(f, "colour", rng.random_range(0..8).to_string());
        if rng.random_bool(0.2) {
            set(f, "comment", prose(rng, 4..16));
        }
        if cust > 0 {
            customers.push((code.clone(), company.clone(), contact.clone()));
        }
        if supp > 0 {
            suppliers.push((code, company, contact));
        }
        names.push(rec);
    }

    (names, customers, suppliers)
}

/// A Name's addresses, phones, email and web site, in the order the stream draws them.
fn addresses_and_contacts(f: &mut Record, rng: &mut Rng, company: &str, first: &str, n: usize) {
    set(f, "address1", street(rng));
    set(f, "address2", pick(rng, TOWNS));
    set(f, "address3", "");
    set(f, "address4", "New Zealand");
    set(
        f,
        "postcode",
        format!("{:04}", rng.random_range(100..10_000)),
    );
    set(f, "state", pick(rng, STATES));
    if rng.random_bool(0.3) {
        set(f, "delivery1", street(rng));
        set(f, "delivery2", pick(rng, TOWNS));
    }
    set(f, "phone", phone(rng));
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
    let domain = format!("{domain_word}{n}.{}", pick(rng, EMAIL_DOMAINS));
    set(
        f,
        "email",
        format!("{}@{domain}", first.to_ascii_lowercase()),
    );
    if rng.random_bool(0.6) {
        set(f, "weburl", format!("www.{domain}"));
    }
}

/// Products: their records, and the (code, sell price in cents, description) of each.
fn products(
    rng: &mut Rng,
    spec: &GenSpec,
    suppliers: &Parties,
) -> (Vec<Record>, Vec<(String, i64, String)>) {
    let mut used = std::collections::BTreeSet::new();
    let mut products = Vec::with_capacity(spec.products);
    let mut product_refs = Vec::with_capacity(spec.products);
    for (i, lmt) in lmts(rng, spec.products, spec.end).into_iter().enumerate() {
        let mut rec = fresh(table("Product"), i + 1, lmt);
        let f = &mut rec;
        let noun = pick(rng, PRODUCT_NOUNS);
        let desc = format!("{} {noun}", pick(rng, PRODUCT_ADJECTIVES));
        let code = unique_code(noun, 31, &mut used);
        let unit = pick(rng, UNITS);
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

    (products, product_refs)
}

/// Jobs: their records, and the (code, client code) of each.
fn jobs(
    rng: &mut Rng,
    spec: &GenSpec,
    customers: &Parties,
) -> (Vec<Record>, Vec<(String, String)>) {
    let mut jobs = Vec::with_capacity(spec.jobs);
    let mut job_refs = Vec::with_capacity(spec.jobs);
    for (i, lmt) in lmts(rng, spec.jobs, spec.end).into_iter().enumerate() {
        let mut rec = fresh(table("Job"), i + 1, lmt);
        let f = &mut rec;
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
                pick(rng, STREETS),
                pick(
                    rng,
                    ["Fit-out", "Renovation", "Supply", "Maintenance", "Install"].as_slice()
                )
            ),
        );
        if let Some((c, _, contact)) = &client {
            set(f, "client", c.clone());
            set(f, "contact", contact.clone());
        }
        set(f, "phone", phone(rng));
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

    (jobs, job_refs)
}
