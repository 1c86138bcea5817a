//! What an import does to a transaction beyond setting fields: the type check, the values a
//! new one gets (status, dates, period), the header fields it may work out, names it may
//! create, its Detail lines (sequence numbers, sort order, worked-out net, tax and gross) and
//! the check that the lines sum to the gross. It must not parse the import body.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use super::{Asked, TableOpts, Work};
use crate::record::{Record, Row};
use crate::schema::{
    self, FieldKind, LMT, SEQ, SubfileSchema, TRANSACTION, format_scaled, parse_scaled,
};
use crate::time::DateTime;
use crate::xml::Element;

/// Transaction types the simulator accepts.
pub const TRANSACTION_TYPES: &[&str] = &[
    "CP", "CR", "CI", "CII", "CIC", "DI", "DII", "DIC", "JN", "JNS", "POI", "POC", "SOI", "SOC",
    "QU",
];

/// Types whose name code must name an existing Name (by prefix).
const NEEDS_NAME: &[&str] = &["DI", "CI", "SO", "PO", "QU"];

/// Indexes of the Transaction and Detail fields the import rules use, resolved once.
struct Fields {
    kind: usize,
    status: usize,
    enterdate: usize,
    transdate: usize,
    duedate: usize,
    period: usize,
    ourref: usize,
    namecode: usize,
    gross: usize,
    taxamount: usize,
    contra: usize,
    line_seq: usize,
    line_parent: usize,
    line_sort: usize,
    line_net: usize,
    line_tax: usize,
    line_gross: usize,
    line_account: usize,
    line_taxcode: usize,
    line_type: usize,
    line_period: usize,
    line_debit: usize,
    line_credit: usize,
}

static F: LazyLock<Fields> = LazyLock::new(|| {
    let tx = |name: &str| {
        TRANSACTION
            .index(name)
            .expect("the Transaction schema has every field the import rules use")
    };
    let line = |name: &str| {
        TRANSACTION
            .subfile
            .as_ref()
            .and_then(|s| s.index(name))
            .expect("the Detail schema has every field the import rules use")
    };
    Fields {
        kind: tx("type"),
        status: tx("status"),
        enterdate: tx("enterdate"),
        transdate: tx("transdate"),
        duedate: tx("duedate"),
        period: tx("period"),
        ourref: tx("ourref"),
        namecode: tx("namecode"),
        gross: tx("gross"),
        taxamount: tx("taxamount"),
        contra: tx("contra"),
        line_seq: line("detail.sequencenumber"),
        line_parent: line("detail.parentseq"),
        line_sort: line("detail.sort"),
        line_net: line("detail.net"),
        line_tax: line("detail.tax"),
        line_gross: line("detail.gross"),
        line_account: line("detail.account"),
        line_taxcode: line("detail.taxcode"),
        line_type: line("detail.transactiontype"),
        line_period: line("detail.period"),
        line_debit: line("detail.debit"),
        line_credit: line("detail.credit"),
    }
});

/// True when the transaction is posted (status `P`).
pub fn is_posted(record: &Record) -> bool {
    record.get(F.status) == "P"
}

/// One Detail line of an import body: its values and what it asked to have worked out.
pub struct RowInput {
    row: Row,
    woo: BTreeSet<&'static str>,
    given: BTreeSet<&'static str>,
}

/// Reads the rows of a `<subfile>` element, skipping system rows and fields.
pub fn read_rows(sub: &'static SubfileSchema, el: &Element) -> Result<Vec<RowInput>, String> {
    let row_element = sub.row_element();
    let mut rows = Vec::with_capacity(el.children.len());
    for row_el in &el.children {
        if !row_el.name.eq_ignore_ascii_case(&row_element) {
            return Err(format!(
                "subfile {} holds <{}>, expected <{row_element}>",
                sub.name, row_el.name
            ));
        }
        if row_el.flag("system") {
            continue;
        }
        let mut input = RowInput {
            row: Row::blank(sub),
            woo: BTreeSet::new(),
            given: BTreeSet::new(),
        };
        for field_el in &row_el.children {
            let name = field_el.name.to_ascii_lowercase();
            let ix = sub
                .index(&name)
                .ok_or_else(|| format!("Unknown field: {} has no field called {name}", sub.name))?;
            let def = &sub.fields[ix];
            if def.system || field_el.flag("system") {
                continue;
            }
            if field_el.flag("calculated") {
                return Err(format!(
                    "{name}: calculated detail fields are not supported"
                ));
            }
            input.given.insert(def.name);
            if field_el.flag("work-it-out") {
                input.woo.insert(def.name);
                continue;
            }
            let text = match def.kind {
                FieldKind::Text { .. } => super::stored_line_breaks(&field_el.text),
                _ => field_el.text.as_str().into(),
            };
            input.row.set(ix, &schema::normalize(def, &text)?);
        }
        rows.push(input);
    }
    Ok(rows)
}

impl Work<'_> {
    pub(super) fn finish_transaction(
        &mut self,
        opts: &TableOpts,
        record: &mut Record,
        is_new: bool,
        mut asked: Asked,
    ) -> Result<(), String> {
        let kind = record.get(F.kind).to_string();
        if !TRANSACTION_TYPES.contains(&kind.as_str()) {
            return Err(format!(
                "Invalid transaction type `{kind}` (known: {})",
                TRANSACTION_TYPES.join(", ")
            ));
        }
        if is_new {
            let today = self.now.date_text();
            record.set(F.status, "U");
            record.set(F.enterdate, &today);
            if !asked.given.contains("transdate") || record.get(F.transdate).is_empty() {
                record.set(F.transdate, &today);
            }
        }
        let transdate = record.get(F.transdate).to_string();
        let date = DateTime::parse_date(&transdate)
            .map_err(|_| format!("Invalid transaction date `{transdate}`"))?;
        self.work_out_header(record, date, is_new, &asked)?;
        if NEEDS_NAME.iter().any(|p| kind.starts_with(p)) {
            self.check_name(opts, record.get(F.namecode))?;
        }
        if let Some(rows) = asked.rows.take() {
            let seq = record
                .seq()
                .expect("an imported record has its sequence number set");
            let line = Line {
                parent: seq,
                kind: &kind,
                date,
                period: record.get(F.period),
            };
            let built = rows
                .into_iter()
                .enumerate()
                .map(|(i, input)| self.build_row(input, &line, i))
                .collect::<Result<_, _>>()?;
            record.set_rows(built);
        }
        check_totals(record, opts, is_new, &asked)
    }

    /// The header fields an import may ask to have worked out, and the period of a new
    /// transaction.
    fn work_out_header(
        &mut self,
        record: &mut Record,
        date: DateTime,
        is_new: bool,
        asked: &Asked,
    ) -> Result<(), String> {
        for field in &asked.woo {
            match *field {
                "ourref" => {
                    let ourref = F.ourref;
                    let next = self
                        .table(&TRANSACTION)
                        .records()
                        .iter()
                        .filter_map(|r| r.get(ourref).trim().parse::<u64>().ok())
                        .max()
                        .unwrap_or(0)
                        + 1;
                    record.set(ourref, &next.to_string());
                }
                "duedate" => record.set(F.duedate, &date.add_secs(30 * 86_400).date_text()),
                "contra" => {
                    let contra = self.contra_for(record.get(F.kind), record.get(F.namecode))?;
                    record.set(F.contra, &contra);
                }
                "period" | "gross" | "taxamount" => {}
                other => return Err(format!("cannot work out {other} in Transaction")),
            }
        }
        if asked.woo.contains("period") || (is_new && !asked.given.contains("period")) {
            let c = date.civil();
            record.set(
                F.period,
                &((c.year - 2000) * 100 + i64::from(c.month)).to_string(),
            );
        }
        Ok(())
    }

    /// Refuses a name code that names no Name, or creates it with `create_names="true"`.
    fn check_name(&mut self, opts: &TableOpts, namecode: &str) -> Result<(), String> {
        let names = &schema::NAME;
        let now = self.now;
        let data = self.table(names);
        if data.find(namecode).is_some() {
            return Ok(());
        }
        if !opts.create_names || namecode.is_empty() {
            return Err(format!("Invalid name code `{namecode}`"));
        }
        let mut name = Record::blank(names);
        name.set(SEQ, &data.next_seq().to_string());
        super::set_field(&mut name, "code", namecode)?;
        super::set_field(&mut name, "name", namecode)?;
        name.set(LMT, &now.to_string());
        self.put(names, name);
        Ok(())
    }

    /// A stored Detail line from an input row: worked-out tax code and amounts, its own
    /// sequence number, its parent, the type and period it shares with its transaction and,
    /// unless given, its position as the sort order.
    fn build_row(
        &mut self,
        input: RowInput,
        line: &Line<'_>,
        position: usize,
    ) -> Result<Row, String> {
        let mut row = input.row;
        let woo = &input.woo;
        if woo.contains("detail.taxcode") {
            let code = self.account_taxcode(row.get(F.line_account))?;
            row.set(F.line_taxcode, &code);
        }
        let rate = if woo.contains("detail.tax") {
            Some(self.tax_rate(row.get(F.line_taxcode), line.date)?)
        } else {
            None
        };
        work_out_row(&mut row, woo, rate)?;
        row.set(F.line_seq, &self.db.next_detail_seq.to_string());
        self.db.next_detail_seq += 1;
        row.set(F.line_parent, &line.parent.to_string());
        row.set(F.line_type, &line.kind.chars().take(2).collect::<String>());
        row.set(F.line_period, line.period);
        // The line's posting side, as the generator writes it: sales credit their account,
        // everything else debits it.
        let sale = ["DI", "CR", "SO", "QU"]
            .iter()
            .any(|p| line.kind.starts_with(p));
        let (side, other) = if sale {
            (F.line_credit, F.line_debit)
        } else {
            (F.line_debit, F.line_credit)
        };
        let net = row.get(F.line_net).to_string();
        row.set(side, &net);
        row.set(other, "0.00");
        if !input.given.contains("detail.sort") {
            row.set(F.line_sort, &position.to_string());
        }
        Ok(row)
    }

    /// The default tax code of the account a line names: the code as given, or (for an
    /// `account-department` code) the part before the last `-`.
    fn account_taxcode(&self, account: &str) -> Result<String, String> {
        let accounts = self.table(&schema::ACCOUNT);
        let taxcode = schema::ACCOUNT
            .index("taxcode")
            .expect("the Account schema has taxcode");
        let seq = accounts.find(account).or_else(|| {
            let (code, _dept) = account.rsplit_once('-')?;
            accounts.find(code)
        });
        let record = seq.and_then(|s| accounts.get(s)).ok_or_else(|| {
            format!("cannot work out detail.taxcode: there is no account `{account}`")
        })?;
        Ok(record.get(taxcode).to_string())
    }

    /// The rate of tax code `code` on `date`, scaled by 10^6 (`15.000000` is 15_000_000): the
    /// TaxRate record's `rate1` before its changeover `date`, `rate2` on or after it (and
    /// when it has no changeover date). A blank code has no tax.
    fn tax_rate(&self, code: &str, date: DateTime) -> Result<i128, String> {
        if code.trim().is_empty() {
            return Ok(0);
        }
        let rates = self.table(&schema::TAXRATE);
        let field = |name: &str| {
            schema::TAXRATE
                .index(name)
                .expect("the TaxRate schema has date, rate1 and rate2")
        };
        let record = rates.find(code).and_then(|s| rates.get(s)).ok_or_else(|| {
            format!("cannot work out detail.tax: there is no TaxRate record for tax code `{code}`")
        })?;
        let changeover = DateTime::parse_date(record.get(field("date")).trim()).ok();
        let rate = match changeover {
            Some(change) if date < change => record.get(field("rate1")),
            _ => record.get(field("rate2")),
        };
        Ok(parse_scaled(rate.trim(), 6).unwrap_or(0))
    }

    /// The contra account of a new transaction: the Name's receivables or payables account
    /// for invoices, orders and quotes (the Account with system type `AR` or `AP` when the
    /// Name has none), and the first bank account (`BK`) for cash transactions.
    fn contra_for(&self, kind: &str, namecode: &str) -> Result<String, String> {
        let sale = ["DI", "SO", "QU"].iter().any(|p| kind.starts_with(p));
        let purchase = ["CI", "PO"].iter().any(|p| kind.starts_with(p));
        let system = if sale {
            "AR"
        } else if purchase {
            "AP"
        } else if kind.starts_with("CP") || kind.starts_with("CR") {
            "BK"
        } else {
            return Err(format!("cannot work out contra for a {kind} transaction"));
        };
        if sale || purchase {
            let names = self.table(&schema::NAME);
            let field = if sale { "recaccount" } else { "payaccount" };
            let ix = schema::NAME
                .index(field)
                .expect("the Name schema has recaccount and payaccount");
            if let Some(code) = names
                .find(namecode)
                .and_then(|s| names.get(s))
                .map(|r| r.get(ix))
                .filter(|c| !c.trim().is_empty())
            {
                return Ok(code.to_string());
            }
        }
        let accounts = self.table(&schema::ACCOUNT);
        let (sys_ix, code_ix) = (
            schema::ACCOUNT
                .index("system")
                .expect("the Account schema has system"),
            schema::ACCOUNT.code.expect("accounts are keyed by code"),
        );
        accounts
            .records()
            .iter()
            .find(|r| r.get(sys_ix).trim() == system)
            .map(|r| r.get(code_ix).to_string())
            .ok_or_else(|| format!("cannot work out contra: no account has system type {system}"))
    }
}

/// What the lines of one transaction share.
struct Line<'k> {
    parent: u64,
    kind: &'k str,
    date: DateTime,
    period: &'k str,
}

fn money(text: &str) -> i128 {
    parse_scaled(text, 2).unwrap_or(0)
}

/// Fills a line's net, tax and gross: with `rate` (the tax code's rate scaled by 10^6, when
/// `detail.tax` is to be worked out) the tax from the net, or from the gross when no net is
/// given; then the gross from net and tax (asked for, or a zero gross beside a non-zero net)
/// or the net from gross and tax. Without a rate, an asked-for tax is gross minus net.
fn work_out_row(
    row: &mut Row,
    woo: &BTreeSet<&'static str>,
    rate: Option<i128>,
) -> Result<(), String> {
    let (net_ix, tax_ix, gross_ix) = (F.line_net, F.line_tax, F.line_gross);
    let (net, mut tax, gross) = (
        money(row.get(net_ix)),
        money(row.get(tax_ix)),
        money(row.get(gross_ix)),
    );
    if let Some(rate) = rate {
        tax = if net != 0 {
            div_round(net * rate, 100_000_000)
        } else {
            div_round(gross * rate, 100_000_000 + rate)
        };
        row.set(tax_ix, &format_scaled(tax, 2));
    }
    if woo.contains("detail.gross") || (gross == 0 && net != 0) {
        row.set(gross_ix, &format_scaled(net + tax, 2));
    } else if woo.contains("detail.net") || (net == 0 && gross != 0) {
        row.set(net_ix, &format_scaled(gross - tax, 2));
    } else if woo.contains("detail.tax") && rate.is_none() {
        row.set(tax_ix, &format_scaled(gross - net, 2));
    }
    match woo.iter().find(|f| {
        !matches!(
            **f,
            "detail.gross" | "detail.net" | "detail.tax" | "detail.taxcode"
        )
    }) {
        Some(field) => Err(format!("cannot work out {field} in a Detail line")),
        None => Ok(()),
    }
}

/// `n / d` rounded half away from zero (`d` > 0).
fn div_round(n: i128, d: i128) -> i128 {
    let q = n.abs() * 2 + d;
    let r = q / (2 * d);
    if n < 0 { -r } else { r }
}

/// Sets the tax total from the lines (and the gross, when asked or new) and refuses
/// lines that do not sum to the gross within the tolerance.
fn check_totals(
    record: &mut Record,
    opts: &TableOpts,
    is_new: bool,
    asked: &Asked,
) -> Result<(), String> {
    if record.rows().is_empty() {
        return Err("Transaction has no detail lines".to_string());
    }
    let sum = |ix: usize| -> i128 { record.rows().iter().map(|r| money(r.get(ix))).sum() };
    let (gross, tax) = (sum(F.line_gross), sum(F.line_tax));
    if asked.woo.contains("gross") || (!asked.given.contains("gross") && is_new) {
        record.set(F.gross, &format_scaled(gross, 2));
    }
    record.set(F.taxamount, &format_scaled(tax, 2));
    let stated = money(record.get(F.gross));
    if (stated - gross).abs() > opts.tolerance {
        return Err(format!(
            "Details don't match gross: the lines sum to {} but gross is {}",
            format_scaled(gross, 2),
            format_scaled(stated, 2)
        ));
    }
    Ok(())
}
