//! The `import` command: reads `<table>` or `<import>` XML, matches records (Names, Products,
//! Jobs and Accounts on `code`, Transactions on `seqnum`), creates or updates them with
//! normalised values, works out `work-it-out` fields, evaluates `calculated` ones, checks that
//! a transaction's Detail lines sum to its gross and refuses changes to posted transactions.
//! An import is all or nothing: on any error nothing is stored. It must not know HTTP;
//! errors are returned as the text that follows `[ERROR] `.

use std::collections::{BTreeMap, BTreeSet};

use mwsync::mwtime::MwTime;
use mwsync::record::{Field, LMT_FIELD, Record, Row, SEQ_FIELD, Value};
use mwsync::xmltree::{self, Element};

use super::db::{Db, RecordEnv, TableData, set_field};
use super::search;
use crate::schema::{self, SubfileSchema, TableSchema, format_scaled, parse_scaled};

/// Transaction types the simulator accepts.
pub const TRANSACTION_TYPES: &[&str] = &[
    "CP", "CR", "CI", "CII", "CIC", "DI", "DII", "DIC", "JN", "JNS", "POI", "POC", "SOI", "SOC",
    "QU",
];

/// Runs an import of `body`. `url_return_seq` is the `return_seq=true` URL parameter. On
/// success returns the reply text: the last sequence number when asked for, else a summary.
pub fn import(
    db: &mut Db,
    body: &str,
    url_return_seq: bool,
    now: MwTime,
) -> Result<String, String> {
    let root = xmltree::parse(body).map_err(|e| format!("Malformed XML: {e}"))?;
    let tables: Vec<&Element> = if root.name.eq_ignore_ascii_case("table") {
        vec![&root]
    } else if root.name.eq_ignore_ascii_case("import") {
        let mut tables = Vec::new();
        for child in &root.children {
            if !child.name.eq_ignore_ascii_case("table") {
                return Err(format!(
                    "Malformed import: <import> may hold only <table> elements, not <{}>",
                    child.name
                ));
            }
            tables.push(child);
        }
        tables
    } else {
        return Err(format!(
            "Malformed import: the root element must be <table> or <import>, not <{}>",
            root.name
        ));
    };
    let mut work = Work {
        db,
        staged: BTreeMap::new(),
        next_detail_seq: db.next_detail_seq,
        now,
    };
    let mut created = 0u64;
    let mut updated = 0u64;
    let mut last_seq = None;
    let mut return_seq = url_return_seq;
    for table_el in tables {
        let name = table_el
            .attr("name")
            .ok_or("Malformed import: a <table> has no name attribute")?;
        let schema = schema::schema_by_name(name).ok_or(format!("Unknown table: {name}"))?;
        let opts = TableOpts {
            update: is_true(table_el.attr("update")),
            seqnum: table_el.attr("seqnum").map(str::to_string),
            create_names: is_true(table_el.attr("create_names")),
            tolerance: match table_el.attr("rounding_tolerance") {
                Some(t) => parse_scaled(t.trim(), 2)
                    .ok_or(format!("Bad rounding_tolerance `{t}`"))?
                    .abs(),
                None => 0,
            },
        };
        return_seq |= is_true(table_el.attr("return_seq"));
        for (index, record_el) in table_el.children.iter().enumerate() {
            let at = format!("{} record {}", schema.table.name, index + 1);
            let (seq, was_new) = work
                .import_record(schema, &opts, record_el)
                .map_err(|e| format!("{at}: {e}"))?;
            if was_new {
                created += 1;
            } else {
                updated += 1;
            }
            last_seq = Some(seq);
        }
    }
    let Work {
        staged,
        next_detail_seq,
        ..
    } = work;
    for (_, data) in staged {
        db.install(data);
    }
    db.next_detail_seq = next_detail_seq;
    if return_seq {
        Ok(last_seq.unwrap_or(0).to_string())
    } else {
        Ok(format!("created {created}; updated {updated}"))
    }
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
}

struct TableOpts {
    update: bool,
    seqnum: Option<String>,
    create_names: bool,
    tolerance: i128,
}

/// An import in progress: tables it touched are copied, changed, and installed at the end.
struct Work<'a> {
    db: &'a Db,
    staged: BTreeMap<&'static str, TableData>,
    next_detail_seq: u64,
    now: MwTime,
}

impl Work<'_> {
    fn table(&mut self, schema: &'static TableSchema) -> &mut TableData {
        let db = self.db;
        self.staged.entry(schema.table.name).or_insert_with(|| {
            db.table(schema.table.name)
                .expect("every schema table is in the document")
                .clone()
        })
    }

    fn import_record(
        &mut self,
        schema: &'static TableSchema,
        opts: &TableOpts,
        el: &Element,
    ) -> Result<(u64, bool), String> {
        if !el.name.eq_ignore_ascii_case(schema.table.element) {
            return Err(format!(
                "expected a <{}> element, found <{}>",
                schema.table.element, el.name
            ));
        }
        let now = self.now;
        let data = self.table(schema);
        let existing = match data.code_field() {
            Some(code_field) => {
                let code = child_text(el, code_field).unwrap_or_default();
                let def = schema
                    .field(code_field)
                    .expect("code field is in the schema");
                let code = schema::normalize(def, &code)?;
                if code.is_empty() {
                    return Err(format!("the record has no {code_field}"));
                }
                match data.find(&code) {
                    Some(seq) if opts.update => Some(seq),
                    Some(_) => {
                        return Err(format!(
                            "Duplicate code: {code} already exists (use update=\"true\")"
                        ));
                    }
                    None => None,
                }
            }
            None => {
                let seqnum = el
                    .attr("seqnum")
                    .map(str::to_string)
                    .or_else(|| opts.seqnum.clone())
                    .or_else(|| {
                        opts.update
                            .then(|| child_text(el, SEQ_FIELD))
                            .flatten()
                            .filter(|s| !s.trim().is_empty())
                    });
                match seqnum {
                    Some(s) => {
                        let seq = s
                            .trim()
                            .parse::<u64>()
                            .map_err(|_| format!("seqnum `{s}` is not a sequence number"))?;
                        if !data.records.contains_key(&seq) {
                            return Err(format!(
                                "there is no {} with sequence number {seq}",
                                schema.table.name
                            ));
                        }
                        Some(seq)
                    }
                    None => None,
                }
            }
        };
        let (mut record, seq) = match existing {
            Some(seq) => {
                let record = data.records[&seq].clone();
                if record.text("status") == Some("P") && schema.table.name == "Transaction" {
                    return Err(format!("Transaction {seq} is posted and cannot be changed"));
                }
                (record, seq)
            }
            None => {
                let mut record = schema::blank_record(schema);
                let seq = data.next_seq;
                record.set_text(SEQ_FIELD, &seq.to_string());
                (record, seq)
            }
        };
        let is_new = existing.is_none();
        let mut woo = BTreeSet::new();
        let mut given = BTreeSet::new();
        let mut new_rows: Option<Vec<RowInput>> = None;
        for child in &el.children {
            let name = child.name.to_ascii_lowercase();
            if is_true(child.attr("system")) {
                continue;
            }
            if name == "subfile" {
                let sub = schema
                    .subfile
                    .as_ref()
                    .filter(|s| {
                        child
                            .attr("name")
                            .is_some_and(|n| n.eq_ignore_ascii_case(s.name))
                    })
                    .ok_or_else(|| {
                        format!(
                            "{} has no subfile called {}",
                            schema.table.name,
                            child.attr("name").unwrap_or("(unnamed)")
                        )
                    })?;
                new_rows = Some(read_rows(sub, child)?);
                continue;
            }
            let def = match schema.field(&name) {
                Some(def) => def,
                None if record.field(&name).is_some() => {
                    set_field(schema, &mut record, &name, &child.text)?;
                    continue;
                }
                None => {
                    return Err(format!(
                        "Unknown field: {} has no field called {name}",
                        schema.table.name
                    ));
                }
            };
            if def.system {
                continue;
            }
            given.insert(def.name);
            if is_true(child.attr("work-it-out")) {
                woo.insert(def.name);
            } else if is_true(child.attr("calculated")) {
                let expr = search::parse(&child.text).map_err(|e| format!("{name}: {e}"))?;
                let value = expr
                    .eval(&RecordEnv {
                        record: &record,
                        schema,
                        now,
                    })
                    .map_err(|e| format!("{name}: {e}"))?;
                set_field(schema, &mut record, &name, &search::display(&value))?;
            } else {
                set_field(schema, &mut record, &name, &child.text)?;
            }
        }
        if schema.table.name == "Transaction" {
            self.finish_transaction(
                schema,
                opts,
                &mut record,
                seq,
                is_new,
                &woo,
                &given,
                new_rows,
            )?;
        } else if let Some(field) = woo.first() {
            return Err(format!("cannot work out {field} in {}", schema.table.name));
        }
        record.set_text(LMT_FIELD, &now.to_string());
        self.table(schema).put(record);
        Ok((seq, is_new))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_transaction(
        &mut self,
        schema: &'static TableSchema,
        opts: &TableOpts,
        record: &mut Record,
        seq: u64,
        is_new: bool,
        woo: &BTreeSet<&'static str>,
        given: &BTreeSet<&'static str>,
        new_rows: Option<Vec<RowInput>>,
    ) -> Result<(), String> {
        let sub = schema
            .subfile
            .as_ref()
            .expect("Transaction has its Detail subfile");
        let now = self.now;
        let kind = record.text("type").unwrap_or_default().to_string();
        if !TRANSACTION_TYPES.contains(&kind.as_str()) {
            return Err(format!(
                "Invalid transaction type `{kind}` (known: {})",
                TRANSACTION_TYPES.join(", ")
            ));
        }
        if is_new {
            record.set_text("status", "U");
            let (y, mo, d, ..) = now.parts();
            record.set_text("enterdate", &format!("{y:04}{mo:02}{d:02}"));
            if !given.contains("transdate") || record.text("transdate") == Some("") {
                record.set_text("transdate", &format!("{y:04}{mo:02}{d:02}"));
            }
        }
        let transdate = record.text("transdate").unwrap_or_default().to_string();
        let date = MwTime::parse(&format!("{transdate}000000"))
            .map_err(|_| format!("Invalid transaction date `{transdate}`"))?;
        for field in woo {
            match *field {
                "ourref" => {
                    let next = self
                        .table(schema)
                        .records
                        .values()
                        .filter_map(|r| r.text("ourref")?.trim().parse::<u64>().ok())
                        .max()
                        .unwrap_or(0)
                        + 1;
                    record.set_text("ourref", &next.to_string());
                }
                "duedate" => {
                    let (y, mo, d, ..) = date.add_secs(30 * 86_400).parts();
                    record.set_text("duedate", &format!("{y:04}{mo:02}{d:02}"));
                }
                "period" => {}
                "gross" | "taxamount" | "netamount" => {}
                other => return Err(format!("cannot work out {other} in Transaction")),
            }
        }
        if woo.contains("period") || (is_new && !given.contains("period")) {
            let (y, mo, ..) = date.parts();
            record.set_text("period", &((y - 2000) * 100 + i64::from(mo)).to_string());
        }
        let namecode = record.text("namecode").unwrap_or_default().to_string();
        let needs_name = ["DI", "CI", "SO", "PO", "QU"]
            .iter()
            .any(|p| kind.starts_with(p));
        if needs_name {
            let names = schema::schema_by_name("Name").expect("Name is served");
            if self.table(names).find(&namecode).is_none() {
                if opts.create_names && !namecode.is_empty() {
                    let mut name = schema::blank_record(names);
                    let data = self.table(names);
                    let name_seq = data.next_seq;
                    name.set_text(SEQ_FIELD, &name_seq.to_string());
                    set_field(names, &mut name, "code", &namecode)?;
                    set_field(names, &mut name, "name", &namecode)?;
                    name.set_text(LMT_FIELD, &now.to_string());
                    data.put(name);
                } else {
                    return Err(format!("Invalid name code `{namecode}`"));
                }
            }
        }
        if let Some(rows) = new_rows {
            let mut built = Vec::with_capacity(rows.len());
            for (i, input) in rows.into_iter().enumerate() {
                let mut row = input.row;
                work_out_row(&mut row, &input.woo)?;
                set_row(
                    &mut row,
                    "detail.sequencenumber",
                    &self.next_detail_seq.to_string(),
                );
                self.next_detail_seq += 1;
                set_row(&mut row, "detail.parentseq", &seq.to_string());
                if !input.given.contains("detail.sort") {
                    set_row(&mut row, "detail.sort", &i.to_string());
                }
                built.push(row);
            }
            for field in &mut record.fields {
                if field.name.eq_ignore_ascii_case(sub.name) {
                    field.value = Value::Subfile(built);
                    break;
                }
            }
        }
        let rows = super::db::rows(record).to_vec();
        if rows.is_empty() {
            return Err("Transaction has no detail lines".to_string());
        }
        let sum = |name: &str| -> i128 {
            rows.iter()
                .map(|r| parse_scaled(row_text(r, name), 2).unwrap_or(0))
                .sum()
        };
        let (gross, tax, net) = (sum("detail.gross"), sum("detail.tax"), sum("detail.net"));
        if woo.contains("gross") || (!given.contains("gross") && is_new) {
            record.set_text("gross", &format_scaled(gross, 2));
        }
        record.set_text("taxamount", &format_scaled(tax, 2));
        record.set_text("netamount", &format_scaled(net, 2));
        let stated = parse_scaled(record.text("gross").unwrap_or("0"), 2).unwrap_or(0);
        if (stated - gross).abs() > opts.tolerance {
            return Err(format!(
                "Details don't match gross: the lines sum to {} but gross is {}",
                format_scaled(gross, 2),
                format_scaled(stated, 2)
            ));
        }
        Ok(())
    }
}

struct RowInput {
    row: Row,
    woo: BTreeSet<&'static str>,
    given: BTreeSet<&'static str>,
}

fn read_rows(sub: &SubfileSchema, el: &Element) -> Result<Vec<RowInput>, String> {
    let row_element = sub.name.to_ascii_lowercase();
    let mut rows = Vec::with_capacity(el.children.len());
    for row_el in &el.children {
        if !row_el.name.eq_ignore_ascii_case(&row_element) {
            return Err(format!(
                "subfile {} holds <{}>, expected <{row_element}>",
                sub.name, row_el.name
            ));
        }
        if is_true(row_el.attr("system")) {
            continue;
        }
        let mut input = RowInput {
            row: schema::blank_row(sub),
            woo: BTreeSet::new(),
            given: BTreeSet::new(),
        };
        for field_el in &row_el.children {
            let name = field_el.name.to_ascii_lowercase();
            let def = sub
                .field(&name)
                .ok_or_else(|| format!("Unknown field: {} has no field called {name}", sub.name))?;
            if def.system || is_true(field_el.attr("system")) {
                continue;
            }
            if is_true(field_el.attr("calculated")) {
                return Err(format!(
                    "{name}: calculated detail fields are not supported"
                ));
            }
            input.given.insert(def.name);
            if is_true(field_el.attr("work-it-out")) {
                input.woo.insert(def.name);
                continue;
            }
            let value = schema::normalize(def, &field_el.text)?;
            set_row(&mut input.row, def.name, &value);
        }
        rows.push(input);
    }
    Ok(rows)
}

fn row_text<'a>(row: &'a Row, name: &str) -> &'a str {
    row.fields
        .iter()
        .find(|f| f.name == name)
        .map(super::db::text_of)
        .unwrap_or("")
}

fn set_row(row: &mut Row, name: &str, value: &str) {
    match row.fields.iter_mut().find(|f| f.name == name) {
        Some(f) => f.value = Value::Text(value.to_string()),
        None => row.fields.push(Field {
            name: name.to_string(),
            system: false,
            value: Value::Text(value.to_string()),
        }),
    }
}

/// Fills a line's net, tax and gross from the other two: asked-for `work-it-out` fields, and a
/// zero gross (or net) beside a non-zero net (or gross).
fn work_out_row(row: &mut Row, woo: &BTreeSet<&'static str>) -> Result<(), String> {
    let get = |row: &Row, n: &str| parse_scaled(row_text(row, n), 2).unwrap_or(0);
    let (net, tax, gross) = (
        get(row, "detail.net"),
        get(row, "detail.tax"),
        get(row, "detail.gross"),
    );
    if woo.contains("detail.gross") || (gross == 0 && net != 0) {
        set_row(row, "detail.gross", &format_scaled(net + tax, 2));
    } else if woo.contains("detail.net") || (net == 0 && gross != 0) {
        set_row(row, "detail.net", &format_scaled(gross - tax, 2));
    } else if woo.contains("detail.tax") {
        set_row(row, "detail.tax", &format_scaled(gross - net, 2));
    }
    for field in woo {
        if !matches!(*field, "detail.gross" | "detail.net" | "detail.tax") {
            return Err(format!("cannot work out {field} in a Detail line"));
        }
    }
    Ok(())
}

fn child_text(el: &Element, name: &str) -> Option<String> {
    el.children
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .map(|c| c.text.clone())
}
