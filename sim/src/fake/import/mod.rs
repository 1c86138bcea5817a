//! The `import` command: reads `<table>` or `<import>` XML, matches records (code-keyed
//! tables on their code, `taxcode` or `initials`, without regard to letter case; the others on
//! `seqnum`), creates or updates them with normalised values (line breaks stored as CR),
//! works out `work-it-out` fields, evaluates `calculated` ones, and hands transactions to
//! `transaction` for their own rules. An import is all or nothing: on any error what it stored
//! is undone from its journal. It must not know HTTP; errors are returned as the text that
//! follows `[ERROR] `.

mod transaction;

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::db::{Db, RecordEnv, TableData, set_field};
use super::search;
use crate::record::Record;
use crate::schema::{self, FieldKind, LMT, SEQ, TableSchema, parse_scaled};
use crate::time::DateTime;
use crate::xml::{self, Element};

pub use transaction::TRANSACTION_TYPES;
use transaction::{RowInput, read_rows};

/// Runs an import of `body`. `url_return_seq` is the `return_seq=true` URL parameter. On
/// success returns the reply text: the last sequence number when asked for, else a summary.
pub fn import(
    db: &mut Db,
    body: &str,
    url_return_seq: bool,
    now: DateTime,
) -> Result<String, String> {
    let root = xml::parse(body).map_err(|e| format!("Malformed XML: {e}"))?;
    let tables = table_elements(&root)?;
    let mut work = Work {
        start_detail_seq: db.next_detail_seq,
        db,
        undo: Vec::new(),
        now,
    };
    match work.run(&tables, url_return_seq) {
        Ok(reply) => Ok(reply),
        Err(e) => {
            work.rollback();
            Err(e)
        }
    }
}

/// The `<table>` elements of a body: the root itself, or the children of `<import>`.
fn table_elements(root: &Element) -> Result<Vec<&Element>, String> {
    if root.name.eq_ignore_ascii_case("table") {
        return Ok(vec![root]);
    }
    if !root.name.eq_ignore_ascii_case("import") {
        return Err(format!(
            "Malformed import: the root element must be <table> or <import>, not <{}>",
            root.name
        ));
    }
    root.children
        .iter()
        .map(|child| {
            if child.name.eq_ignore_ascii_case("table") {
                Ok(child)
            } else {
                Err(format!(
                    "Malformed import: <import> may hold only <table> elements, not <{}>",
                    child.name
                ))
            }
        })
        .collect()
}

/// The attributes of one `<table>`.
struct TableOpts {
    update: bool,
    seqnum: Option<String>,
    create_names: bool,
    tolerance: i128,
}

impl TableOpts {
    fn of(el: &Element) -> Result<TableOpts, String> {
        Ok(TableOpts {
            update: el.flag("update"),
            seqnum: el.attr("seqnum").map(str::to_string),
            create_names: el.flag("create_names"),
            tolerance: match el.attr("rounding_tolerance") {
                Some(t) => parse_scaled(t.trim(), 2)
                    .ok_or(format!("Bad rounding_tolerance `{t}`"))?
                    .abs(),
                None => 0,
            },
        })
    }
}

/// What one record element asked for besides plain values.
#[derive(Default)]
struct Asked {
    /// Fields given with `work-it-out="true"`.
    woo: BTreeSet<&'static str>,
    /// Fields given at all (work-it-out included).
    given: BTreeSet<&'static str>,
    /// The Detail rows, when the element held a subfile.
    rows: Option<Vec<RowInput>>,
}

/// An import in progress. Every record it stores is journalled with what it replaced, so a
/// failed import puts the document back exactly as it was, at a cost in proportion to what
/// the import touched, not to the size of the tables.
struct Work<'a> {
    db: &'a mut Db,
    undo: Vec<Undo>,
    start_detail_seq: u64,
    now: DateTime,
}

/// What one stored record replaced.
struct Undo {
    table: &'static str,
    seq: u64,
    old: Option<Record>,
    next_seq: u64,
}

impl Work<'_> {
    fn run(&mut self, tables: &[&Element], url_return_seq: bool) -> Result<String, String> {
        let (mut created, mut updated) = (0u64, 0u64);
        let mut last_seq = None;
        let mut return_seq = url_return_seq;
        for table_el in tables {
            let name = table_el
                .attr("name")
                .ok_or("Malformed import: a <table> has no name attribute")?;
            let schema = schema::schema_by_name(name).ok_or(format!("Unknown table: {name}"))?;
            let opts = TableOpts::of(table_el)?;
            return_seq |= table_el.flag("return_seq");
            for (index, record_el) in table_el.children.iter().enumerate() {
                let at = format!("{} record {}", schema.info.name, index + 1);
                let (seq, was_new) = self
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
        Ok(if return_seq {
            last_seq.unwrap_or(0).to_string()
        } else {
            format!("created {created}; updated {updated}")
        })
    }

    fn table(&self, schema: &'static TableSchema) -> &TableData {
        self.db
            .table(schema.info.name)
            .expect("every schema table is in the document")
    }

    /// Stores `record`, journalling what it replaces.
    fn put(&mut self, schema: &'static TableSchema, record: Record) {
        let data = self
            .db
            .table_mut(schema.info.name)
            .expect("every schema table is in the document");
        let next_seq = data.next_seq();
        let seq = record
            .seq()
            .expect("imported records have their number set");
        let old = data.put(record);
        self.undo.push(Undo {
            table: schema.info.name,
            seq,
            old,
            next_seq,
        });
    }

    /// Puts back everything this import stored.
    fn rollback(&mut self) {
        while let Some(u) = self.undo.pop() {
            let data = self
                .db
                .table_mut(u.table)
                .expect("journalled tables are in the document");
            match u.old {
                Some(old) => {
                    data.put(old);
                }
                None => {
                    data.remove(u.seq);
                }
            }
            data.restore_next_seq(u.next_seq);
        }
        self.db.next_detail_seq = self.start_detail_seq;
    }

    fn import_record(
        &mut self,
        schema: &'static TableSchema,
        opts: &TableOpts,
        el: &Element,
    ) -> Result<(u64, bool), String> {
        if !el.name.eq_ignore_ascii_case(schema.info.element) {
            return Err(format!(
                "expected a <{}> element, found <{}>",
                schema.info.element, el.name
            ));
        }
        let existing = self.existing(schema, opts, el)?;
        let (mut record, seq) = match existing {
            Some(seq) => {
                let record = self
                    .table(schema)
                    .get(seq)
                    .expect("existing returns stored numbers")
                    .clone();
                if schema.info.name == "Transaction" && transaction::is_posted(&record) {
                    return Err(format!("Transaction {seq} is posted and cannot be changed"));
                }
                (record, seq)
            }
            None => {
                let mut record = Record::blank(schema);
                let seq = self.table(schema).next_seq();
                record.set(SEQ, &seq.to_string());
                (record, seq)
            }
        };
        let is_new = existing.is_none();
        let stored_code = schema.code.map(|ix| record.get(ix).to_string());
        let asked = self.apply_fields(&mut record, el)?;
        // The code matched without regard to case; the record keeps its own spelling.
        if let (Some(ix), Some(code), false) = (schema.code, stored_code, is_new) {
            record.set(ix, &code);
        }
        if schema.info.name == "Transaction" {
            self.finish_transaction(opts, &mut record, is_new, asked)?;
        } else if let Some(field) = asked.woo.first() {
            return Err(format!("cannot work out {field} in {}", schema.info.name));
        }
        record.set(LMT, &self.now.to_string());
        self.put(schema, record);
        Ok((seq, is_new))
    }

    /// The sequence number of the record `el` updates, or `None` when it creates one.
    fn existing(
        &mut self,
        schema: &'static TableSchema,
        opts: &TableOpts,
        el: &Element,
    ) -> Result<Option<u64>, String> {
        let data = self.table(schema);
        if let Some(ix) = schema.code {
            let def = &schema.fields[ix];
            let given = el.child(def.name).map_or("", |c| c.text.as_str());
            let code = schema::normalize(def, given)?;
            if code.is_empty() {
                return Err(format!("the record has no {}", def.name));
            }
            return match find_code(data, &code) {
                Some(seq) if opts.update => Ok(Some(seq)),
                Some(_) => Err(format!(
                    "Duplicate code: {code} already exists (use update=\"true\")"
                )),
                None => Ok(None),
            };
        }
        let seqnum = el.attr("seqnum").or(opts.seqnum.as_deref()).or_else(|| {
            let given = el.child(schema.fields[SEQ].name).map(|c| c.text.as_str());
            given.filter(|s| opts.update && !s.trim().is_empty())
        });
        let Some(s) = seqnum else {
            return Ok(None);
        };
        let seq = s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("seqnum `{s}` is not a sequence number"))?;
        if data.get(seq).is_none() {
            return Err(format!(
                "there is no {} with sequence number {seq}",
                schema.info.name
            ));
        }
        Ok(Some(seq))
    }

    /// Sets the plain and calculated fields of `el` on `record` in document order, and
    /// collects what else it asked for.
    fn apply_fields(&self, record: &mut Record, el: &Element) -> Result<Asked, String> {
        let schema = record.schema();
        let mut asked = Asked::default();
        for child in &el.children {
            let name = child.name.to_ascii_lowercase();
            if child.flag("system") {
                continue;
            }
            if name == "subfile" {
                let sub = schema.subfile_named(child.attr("name"))?;
                asked.rows = Some(read_rows(sub, child)?);
                continue;
            }
            let Some(def) = schema.field(&name) else {
                set_field(record, &name, &child.text)?;
                continue;
            };
            if def.system {
                continue;
            }
            asked.given.insert(def.name);
            if child.flag("work-it-out") {
                asked.woo.insert(def.name);
            } else if child.flag("calculated") {
                let expr =
                    search::parse(&child.text, schema).map_err(|e| format!("{name}: {e}"))?;
                let env = RecordEnv {
                    record,
                    now: self.now,
                    doc: None,
                };
                let value = expr.eval(&env).map_err(|e| format!("{name}: {e}"))?;
                set_field(record, &name, &search::display(&value))?;
            } else if matches!(def.kind, FieldKind::Text { .. }) {
                set_field(record, &name, &stored_line_breaks(&child.text))?;
            } else {
                set_field(record, &name, &child.text)?;
            }
        }
        Ok(asked)
    }
}

/// The record whose code equals `code` without regard to letter case, as MoneyWorks matches
/// codes on import: the exact code first, then any other spelling (the folded-code index).
fn find_code(data: &TableData, code: &str) -> Option<u64> {
    data.find(code)
        .or_else(|| data.codes_folded(&search::fold(code)).first().copied())
}

/// `text` with its line breaks as MoneyWorks stores them: CR, whether it was sent as LF,
/// CRLF or CR.
pub(super) fn stored_line_breaks(text: &str) -> Cow<'_, str> {
    if text.contains('\n') {
        Cow::Owned(text.replace("\r\n", "\r").replace('\n', "\r"))
    } else {
        Cow::Borrowed(text)
    }
}
