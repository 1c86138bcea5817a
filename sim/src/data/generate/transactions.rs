//! The generator's transactions: invoices, bills, receipts and payments with balanced Detail
//! lines that reference the master data, made one at a time from their own seeded stream so
//! any number can be written without holding them. It must not make master data.

use rand::Rng as _;

use super::super::keyed::{Keyed, Rng, pick};
use super::super::words::*;
use super::masters::Masters;
use super::{AP, AR, BANK, DAY, GenSpec, SALES_ACCOUNTS, YEARS, date, fresh, money, prose, qty};
use super::{set, set_line, street, table};
use crate::record::{Record, Row};
use crate::schema::format_scaled;
use crate::time::DateTime;

/// Makes transactions one at a time from a seeded stream.
pub(crate) struct Transactions<'m> {
    masters: &'m Masters,
    spec: GenSpec,
    rng: Rng,
    next: usize,
    detail_seq: u64,
    prev_lmt: Option<DateTime>,
    refs: [u64; 4],
}

/// What one transaction is, decided before its lines.
struct Plan<'m> {
    seq: usize,
    kind: &'static str,
    transdate: DateTime,
    lmt: DateTime,
    party: Option<&'m (String, String, String)>,
    recent: bool,
    posted: bool,
}

impl<'m> Transactions<'m> {
    pub(crate) fn new(masters: &'m Masters, spec: &GenSpec) -> Transactions<'m> {
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

    /// Dates, type, party and posting of transaction `seq`.
    fn plan(&mut self, seq: usize) -> Plan<'m> {
        let m = self.masters;
        let rng = &mut self.rng;
        let n = self.spec.transactions as i64;
        let span = YEARS * 365 * DAY;
        // Transaction dates advance with the sequence number; modification follows entry.
        let base = self
            .spec
            .end
            .add_secs(-span + (seq as i64 - 1) * span / n.max(1));
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
        let parties = if is_sale(kind) {
            &m.customers
        } else {
            &m.suppliers
        };
        let party = if parties.is_empty() {
            None
        } else {
            Some(&parties[rng.random_range(0..parties.len())])
        };
        let recent = self.spec.end.secs() - lmt.secs() < 60 * DAY;
        let posted = !rng.random_bool(if recent { 0.5 } else { 0.05 });
        Plan {
            seq,
            kind,
            transdate,
            lmt,
            party,
            recent,
            posted,
        }
    }

    /// Detail line `position` of transaction `seq`, with its net and tax in cents.
    fn line(&mut self, seq: usize, position: usize, sale: bool) -> (Row, i64, i64) {
        let m = self.masters;
        let sub = table("Transaction")
            .subfile
            .as_ref()
            .expect("the Transaction schema has a Detail subfile");
        let mut row = Row::blank(sub);
        let f = &mut row;
        self.detail_seq += 1;
        let rng = &mut self.rng;
        let taxed = rng.random_bool(0.85);
        let (account, net, desc, stock) = if sale && !m.products.is_empty() && rng.random_bool(0.6)
        {
            let (code, price, desc) = &m.products[rng.random_range(0..m.products.len())];
            let q = rng.random_range(1..25i64);
            set_line(f, "detail.stockqty", qty(q));
            set_line(
                f,
                "detail.unitprice",
                format_scaled(i128::from(*price) * 10_000, 6),
            );
            set_line(f, "detail.saleunit", "ea");
            ("4000".to_string(), price * q, desc.clone(), code.clone())
        } else if sale {
            let acct = pick(rng, SALES_ACCOUNTS).to_string();
            let net = rng.random_range(500..500_000i64);
            (acct, net, prose(rng, 2..7), String::new())
        } else {
            let acct = m.expense_accounts[rng.random_range(0..m.expense_accounts.len())].clone();
            let net = rng.random_range(500..300_000i64);
            (acct, net, prose(rng, 2..7), String::new())
        };
        let tax = if taxed { (net * 15 + 50) / 100 } else { 0 };
        set_line(f, "detail.sequencenumber", self.detail_seq.to_string());
        set_line(f, "detail.parentseq", seq.to_string());
        set_line(f, "detail.sort", position.to_string());
        set_line(f, "detail.account", account);
        set_line(f, "detail.taxcode", if taxed { "G" } else { "E" });
        set_line(f, "detail.net", money(net));
        set_line(f, "detail.tax", money(tax));
        set_line(f, "detail.gross", money(net + tax));
        set_line(f, "detail.description", desc);
        set_line(f, "detail.stockcode", stock);
        if !m.jobs.is_empty() && rng.random_bool(0.15) {
            let (job, _) = &m.jobs[rng.random_range(0..m.jobs.len())];
            set_line(f, "detail.jobcode", job.clone());
        }
        set_line(
            f,
            if sale {
                "detail.credit"
            } else {
                "detail.debit"
            },
            money(net),
        );
        (row, net, tax)
    }

    /// The transaction record around its lines.
    fn header(&mut self, plan: &Plan<'_>, rows: Vec<Row>, net_sum: i64, tax_sum: i64) -> Record {
        let (kind, transdate) = (plan.kind, plan.transdate);
        let gross = net_sum + tax_sum;
        let mut rec = fresh(table("Transaction"), plan.seq, plan.lmt);
        let f = &mut rec;
        let slot = match kind {
            "DII" => 0,
            "CII" => 1,
            "CR" => 2,
            _ => 3,
        };
        self.refs[slot] += 1;
        let rng = &mut self.rng;
        set(f, "ourref", self.refs[slot].to_string());
        set(f, "transdate", date(transdate));
        set(f, "enterdate", date(transdate));
        if matches!(kind, "DII" | "CII") {
            set(f, "duedate", date(transdate.add_secs(30 * DAY)));
        }
        let c = transdate.civil();
        set(
            f,
            "period",
            ((c.year - 2000) * 100 + i64::from(c.month)).to_string(),
        );
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
        if let Some((code, company, _)) = plan.party {
            set(f, "namecode", code.clone());
            set(f, "tofrom", company.clone());
        }
        set(f, "description", prose(rng, 2..8));
        set(f, "gross", money(gross));
        set(f, "taxamount", money(tax_sum));
        set(f, "contra", contra(kind));
        set(f, "status", if plan.posted { "P" } else { "U" });
        set(f, "exchangerate", qty(1));
        if plan.posted && matches!(kind, "DII" | "CII") && !plan.recent && rng.random_bool(0.9) {
            set(f, "amtpaid", money(gross));
            let paid = transdate.add_secs(rng.random_range(1..40) * DAY);
            set(f, "datepaid", date(paid));
        } else if matches!(kind, "CR" | "CP") {
            set(f, "amtpaid", money(gross));
            set(f, "datepaid", date(transdate));
        }
        if kind == "DII" && rng.random_bool(0.3) {
            let address = format!("{}\r{}", street(rng), pick(rng, TOWNS));
            set(f, "deliveryaddress", address);
        }
        set(f, "colour", rng.random_range(0..8).to_string());
        set(f, "enteredby", "ADM");
        if plan.posted {
            set(f, "postedby", "ADM");
            set(f, "timeposted", plan.lmt.to_string());
        }
        let period = rec.text("period").unwrap_or_default().to_string();
        let rows = rows
            .into_iter()
            .map(|mut row| {
                set_line(&mut row, "detail.transactiontype", &kind[..2]);
                set_line(&mut row, "detail.period", period.clone());
                row
            })
            .collect();
        rec.set_rows(rows);
        rec
    }
}

fn is_sale(kind: &str) -> bool {
    matches!(kind, "DII" | "CR")
}

/// The contra account of a transaction type: debtors, creditors or the bank.
fn contra(kind: &str) -> &'static str {
    match kind {
        "DII" => AR,
        "CII" => AP,
        _ => BANK,
    }
}

impl Iterator for Transactions<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.next >= self.spec.transactions {
            return None;
        }
        self.next += 1;
        let plan = self.plan(self.next);
        let count = self.rng.random_range(1..6);
        let mut rows = Vec::with_capacity(count);
        let (mut net_sum, mut tax_sum) = (0i64, 0i64);
        for position in 0..count {
            let (row, net, tax) = self.line(plan.seq, position, is_sale(plan.kind));
            net_sum += net;
            tax_sum += tax;
            rows.push(row);
        }
        Some(self.header(&plan, rows, net_sum, tax_sum))
    }
}
