//! The fake document's records: one table of records per served schema table, in sequence
//! order, with indexes on the code (exact and as searches fold it) and on the modification
//! time. It owns sequence numbers, stamping `lastmodifiedtime`, taking in loaded records,
//! direct edits (the admin API and the builder) and the view of a record that search
//! expressions read. It must not know HTTP or reply formats.

use std::collections::BTreeMap;

use super::index::RankIndex;
use super::search::{self, Database, Env, Scope, Slot, Val};
use super::select::{Query, select};
use crate::data::Dataset;
use crate::error::{Classify, ErrorClass};
use crate::record::Record;
use crate::schema::{self, FieldDef, FieldKind, LMT, SEQ, TableSchema};
use crate::time::DateTime;

/// Why a direct edit or a load was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The table is not one the simulator serves.
    #[error("the simulator does not serve a table called `{0}`")]
    UnknownTable(String),
    /// No record has that key.
    #[error("{table} has no record with key `{key}`")]
    NoRecord {
        /// Table name.
        table: String,
        /// The key asked for.
        key: String,
    },
    /// A field name or value was refused.
    #[error("{0}")]
    Invalid(String),
}

impl Classify for SimError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// The records of one table, in sequence order, with the indexes pages are served from.
#[derive(Debug, Clone)]
pub struct TableData {
    /// The table's schema.
    pub schema: &'static TableSchema,
    /// Records sorted by sequence number, so a sequence range is a slice found by binary search.
    records: Vec<Record>,
    /// The indexes.
    idx: Indexes,
    /// The next sequence number to hand out.
    next_seq: u64,
}

/// The indexes of one table beside its records.
#[derive(Debug, Clone, Default)]
struct Indexes {
    /// Sequence number by code, for code-keyed tables (codes match exactly).
    codes: BTreeMap<String, u64>,
    /// Sequence numbers by code folded as `=` folds text, for searches such as `code = "x"`.
    folded: BTreeMap<String, Vec<u64>>,
    /// (modification time in seconds, sequence number) of every record.
    by_lmt: RankIndex<(i64, u64)>,
}

impl Indexes {
    fn add(&mut self, record: &Record, seq: u64) {
        if let Some(code) = record.code() {
            self.codes.insert(code.to_string(), seq);
            let seqs = self.folded.entry(search::fold(code)).or_default();
            if let Err(at) = seqs.binary_search(&seq) {
                seqs.insert(at, seq);
            }
        }
        self.by_lmt.insert(lmt_key(record, seq));
    }

    fn drop(&mut self, record: &Record, seq: u64) {
        if let Some(code) = record.code() {
            if self.codes.get(code) == Some(&seq) {
                self.codes.remove(code);
            }
            self.unfold(code, seq);
        }
        self.by_lmt.remove(&lmt_key(record, seq));
    }

    /// Drops what `old` put in the indexes that `new` (already added) did not.
    fn drop_old(&mut self, old: &Record, new: &Record, seq: u64) {
        if let Some(code) = old.code()
            && new.code() != Some(code)
        {
            if self.codes.get(code) == Some(&seq) {
                self.codes.remove(code);
            }
            if new.code().map(search::fold) != Some(search::fold(code)) {
                self.unfold(code, seq);
            }
        }
        if lmt_key(old, seq) != lmt_key(new, seq) {
            self.by_lmt.remove(&lmt_key(old, seq));
        }
    }

    fn unfold(&mut self, code: &str, seq: u64) {
        let folded = search::fold(code);
        if let Some(seqs) = self.folded.get_mut(&folded) {
            seqs.retain(|s| *s != seq);
            if seqs.is_empty() {
                self.folded.remove(&folded);
            }
        }
    }
}

/// The index key of a record's modification time (records without one sort first).
fn lmt_key(record: &Record, seq: u64) -> (i64, u64) {
    (record.modified().map_or(i64::MIN, DateTime::secs), seq)
}

impl TableData {
    fn new(schema: &'static TableSchema) -> TableData {
        TableData {
            schema,
            records: Vec::new(),
            idx: Indexes::default(),
            next_seq: 1,
        }
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the table has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records in sequence order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The next sequence number the table will hand out.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn position(&self, seq: u64) -> Result<usize, usize> {
        self.records
            .binary_search_by_key(&seq, |r| r.seq().unwrap_or(0))
    }

    /// The record with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Option<&Record> {
        self.position(seq).ok().map(|i| &self.records[i])
    }

    /// The position in sequence order of the first record whose number is at least `seq`.
    pub fn seq_rank(&self, seq: u64) -> usize {
        self.records.partition_point(|r| r.seq().unwrap_or(0) < seq)
    }

    /// The modification-time index.
    pub fn by_lmt(&self) -> &RankIndex<(i64, u64)> {
        &self.idx.by_lmt
    }

    /// Sequence numbers of the records whose code folds to `folded`.
    pub fn codes_folded(&self, folded: &str) -> &[u64] {
        self.idx.folded.get(folded).map_or(&[], Vec::as_slice)
    }

    /// The sequence number of the record with `key`: its code, or its decimal sequence number.
    pub fn find(&self, key: &str) -> Option<u64> {
        match self.schema.code {
            Some(_) => self.idx.codes.get(key).copied(),
            None => key
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| self.get(*s).is_some()),
        }
    }

    /// Stores `record` (whose sequence number is set), replacing any with the same number,
    /// and returns the record it replaced.
    pub fn put(&mut self, record: Record) -> Option<Record> {
        let seq = record
            .seq()
            .expect("stored records always carry a sequence number");
        self.next_seq = self.next_seq.max(seq + 1);
        self.idx.add(&record, seq);
        match self.position(seq) {
            Ok(i) => {
                let old = std::mem::replace(&mut self.records[i], record);
                self.idx.drop_old(&old, &self.records[i], seq);
                Some(old)
            }
            Err(i) => {
                self.records.insert(i, record);
                None
            }
        }
    }

    /// Removes the record with sequence number `seq`.
    pub fn remove(&mut self, seq: u64) -> Option<Record> {
        let i = self.position(seq).ok()?;
        let record = self.records.remove(i);
        self.idx.drop(&record, seq);
        Some(record)
    }

    /// Puts back the next sequence number an undone import had moved on.
    pub fn restore_next_seq(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
    }

    /// Takes in loaded records in any order, then sorts them and builds the indexes once. A
    /// later record with the same sequence number replaces an earlier one.
    fn load(&mut self, mut loaded: Vec<Record>) {
        loaded.sort_by_key(|r| r.seq().unwrap_or(0));
        let mut records: Vec<Record> = Vec::with_capacity(loaded.len());
        for record in loaded {
            match records.last_mut() {
                Some(last) if last.seq() == record.seq() => *last = record,
                _ => records.push(record),
            }
        }
        let mut lmts = Vec::with_capacity(records.len());
        for record in &records {
            let seq = record.seq().unwrap_or(0);
            if let Some(code) = record.code() {
                self.idx.codes.insert(code.to_string(), seq);
                self.idx
                    .folded
                    .entry(search::fold(code))
                    .or_default()
                    .push(seq);
            }
            lmts.push(lmt_key(record, seq));
        }
        lmts.sort_unstable();
        self.idx.by_lmt = RankIndex::from_sorted(lmts);
        self.next_seq = records.last().and_then(Record::seq).map_or(1, |s| s + 1);
        self.records = records;
    }
}

/// The whole fake document.
#[derive(Debug, Clone)]
pub struct Db {
    tables: Vec<TableData>,
    /// The next `detail.sequencenumber` to hand out.
    pub next_detail_seq: u64,
}

impl Default for Db {
    fn default() -> Db {
        Db {
            tables: schema::all().iter().map(|s| TableData::new(s)).collect(),
            next_detail_seq: 1,
        }
    }
}

/// Fills in what a loaded record may lack: a sequence number (the next free one) and a
/// modification time (`now`).
pub struct Loader {
    db: Db,
    pending: Vec<Vec<Record>>,
    next: Vec<u64>,
    max_detail: u64,
    now: DateTime,
}

impl Loader {
    /// A loader into an empty document; records without a modification time get `now`.
    pub fn new(now: DateTime) -> Loader {
        let db = Db::default();
        let n = db.tables.len();
        Loader {
            db,
            pending: vec![Vec::new(); n],
            next: vec![1; n],
            max_detail: 0,
            now,
        }
    }

    /// Takes one record of the table called `table`.
    pub fn add(&mut self, table: &str, mut record: Record) -> Result<(), SimError> {
        let t = self.db.position(table)?;
        let schema = self.db.tables[t].schema;
        if record.info().name != schema.info.name {
            return Err(SimError::Invalid(format!(
                "the dataset files a {} record under {table}",
                record.info().name
            )));
        }
        match record.seq() {
            Some(seq) => self.next[t] = self.next[t].max(seq + 1),
            None => {
                record.set(SEQ, &self.next[t].to_string());
                self.next[t] += 1;
            }
        }
        if record.modified().is_none() {
            record.set(LMT, &self.now.to_string());
        }
        self.max_detail = self.max_detail.max(max_row_seq(&record));
        self.pending[t].push(record);
        Ok(())
    }

    /// The document.
    pub fn finish(mut self) -> Db {
        for (t, records) in self.pending.into_iter().enumerate() {
            self.db.tables[t].load(records);
        }
        self.db.next_detail_seq = self.max_detail + 1;
        self.db
    }
}

impl Db {
    /// A document holding `ds`. Records without a sequence number get the next free one,
    /// records without a modification time get `now`.
    pub fn load(ds: &Dataset, now: DateTime) -> Result<Db, SimError> {
        let mut loader = Loader::new(now);
        for (name, records) in &ds.tables {
            for record in records {
                loader.add(name, record.clone())?;
            }
        }
        Ok(loader.finish())
    }

    fn position(&self, name: &str) -> Result<usize, SimError> {
        self.tables
            .iter()
            .position(|t| t.schema.info.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| SimError::UnknownTable(name.to_string()))
    }

    /// The table called `name` (case-insensitive).
    pub fn table(&self, name: &str) -> Result<&TableData, SimError> {
        let t = self.position(name)?;
        Ok(&self.tables[t])
    }

    /// The table called `name` (case-insensitive), for changing.
    pub fn table_mut(&mut self, name: &str) -> Result<&mut TableData, SimError> {
        let t = self.position(name)?;
        Ok(&mut self.tables[t])
    }

    /// Every table, in catalogue order.
    pub fn tables(&self) -> &[TableData] {
        &self.tables
    }

    /// Creates or updates the record with `key` (a code, or a sequence number; an empty key
    /// creates a new record of a sequence-keyed table), setting `fields` after normalising
    /// them, and stamps it with `now`. System fields other than `sequencenumber` and
    /// `lastmodifiedtime` may be set this way (e.g. a transaction's `status`).
    pub fn upsert(
        &mut self,
        table: &str,
        key: &str,
        fields: &[(&str, &str)],
        now: DateTime,
    ) -> Result<(u64, DateTime), SimError> {
        let data = self.table_mut(table)?;
        let (mut record, seq) = match data.find(key) {
            Some(seq) => (
                data.get(seq).expect("find returns stored numbers").clone(),
                seq,
            ),
            None => (new_record(data, key)?, data.next_seq),
        };
        for (name, value) in fields {
            let ix = data.schema.index(name);
            if ix == Some(SEQ) || ix == Some(LMT) {
                return Err(SimError::Invalid(format!(
                    "{} is maintained by the server and cannot be set",
                    name.to_ascii_lowercase()
                )));
            }
            if ix.is_some() && ix == data.schema.code && data.find(value).is_some_and(|o| o != seq)
            {
                return Err(SimError::Invalid(format!(
                    "code `{value}` is already in use"
                )));
            }
            set_field(&mut record, name, value).map_err(SimError::Invalid)?;
        }
        record.set(LMT, &now.to_string());
        data.put(record);
        Ok((seq, now))
    }
}

/// A new record for `key` in `data`, its code and sequence number set.
fn new_record(data: &TableData, key: &str) -> Result<Record, SimError> {
    let mut record = Record::blank(data.schema);
    match data.schema.code {
        Some(ix) => {
            let def = &data.schema.fields[ix];
            let code = schema::normalize(def, key).map_err(SimError::Invalid)?;
            if code.is_empty() {
                return Err(SimError::Invalid(format!(
                    "a new {} record needs a non-empty {}",
                    data.schema.info.name, def.name
                )));
            }
            record.set(ix, &code);
        }
        None if key.trim().is_empty() => {}
        None => {
            return Err(SimError::NoRecord {
                table: data.schema.info.name.to_string(),
                key: key.to_string(),
            });
        }
    }
    record.set(SEQ, &data.next_seq.to_string());
    Ok(record)
}

/// The largest `detail.sequencenumber` of a record's rows.
fn max_row_seq(record: &Record) -> u64 {
    let Some(ix) = record
        .schema()
        .subfile
        .as_ref()
        .and_then(|s| s.index("detail.sequencenumber"))
    else {
        return 0;
    };
    record
        .rows()
        .iter()
        .filter_map(|row| row.get(ix).trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// Sets field `name` of `record` to `value` normalised by its schema type. Fields the schema
/// does not know are accepted only when the record already carries them (loaded data).
pub fn set_field(record: &mut Record, name: &str, value: &str) -> Result<(), String> {
    let schema = record.schema();
    if let Some(ix) = schema.index(name) {
        let stored = schema::normalize(&schema.fields[ix], value)?;
        record.set(ix, &stored);
        return Ok(());
    }
    if record.set_extra(name, value) {
        return Ok(());
    }
    Err(format!(
        "Unknown field: {} has no field called {}",
        schema.info.name,
        name.to_ascii_lowercase()
    ))
}

/// What a search reads from one record: typed fields by the schema, the clock, and the
/// document for `Find` and the schema functions (`None` where it cannot be offered, as
/// inside an import that is changing the document).
pub struct RecordEnv<'a> {
    /// The record.
    pub record: &'a Record,
    /// The server's current time.
    pub now: DateTime,
    /// The document.
    pub doc: Option<&'a Doc<'a>>,
}

/// The typed value of stored `text` of a field of `kind` (`None`: a field the schema lacks).
pub fn typed(kind: Option<FieldKind>, text: &str) -> Val {
    match kind {
        Some(FieldKind::Integer | FieldKind::Short | FieldKind::Decimal { .. }) => {
            Val::Num(text.trim().parse::<f64>().unwrap_or(0.0))
        }
        Some(FieldKind::Boolean) => Val::Bool(text.trim() == "1"),
        Some(FieldKind::Date) => match DateTime::parse_date(text.trim()) {
            Ok(t) => Val::Date(t),
            Err(_) => Val::Text(String::new()),
        },
        Some(FieldKind::DateTime) => match DateTime::parse(text.trim()) {
            Ok(t) => Val::DateTime(t),
            Err(_) => Val::Text(String::new()),
        },
        Some(FieldKind::Text { .. }) | None => Val::Text(text.to_string()),
    }
}

impl Env for RecordEnv<'_> {
    fn value(&self, index: usize) -> Val {
        let kind = self.record.schema().fields[index].kind;
        typed(Some(kind), self.record.get(index))
    }

    fn extra(&self, name: &str) -> Option<Val> {
        self.record.extra(name).map(|t| typed(None, t))
    }

    fn now(&self) -> DateTime {
        self.now
    }

    fn stored(&self, index: usize) -> Option<&str> {
        Some(self.record.get(index))
    }

    fn database(&self) -> Option<&dyn Database> {
        self.doc.map(|d| d as &dyn Database)
    }
}

impl Scope for TableSchema {
    fn slot(&self, name: &str) -> Option<Slot> {
        let index = self.index(name)?;
        Some(Slot {
            index,
            datetime: self.fields[index].kind == FieldKind::DateTime,
        })
    }

    fn table(&self) -> Option<&str> {
        Some(self.info.element)
    }

    fn subfile_of(&self, name: &str) -> Option<&'static str> {
        let sub = self.subfile.as_ref()?;
        sub.index(name).map(|_| sub.name)
    }
}

/// The document at one moment: what `Find` and the schema functions read.
pub struct Doc<'a> {
    /// The records.
    pub db: &'a Db,
    /// The server's current time.
    pub now: DateTime,
}

/// What `evaluate` reads: no record, the clock and the document.
pub struct DocEnv<'a>(pub Doc<'a>);

impl Env for DocEnv<'_> {
    fn value(&self, _index: usize) -> Val {
        Val::Text(String::new())
    }
    fn now(&self) -> DateTime {
        self.0.now
    }
    fn database(&self) -> Option<&dyn Database> {
        Some(&self.0)
    }
}

/// The schema of a file name as `GetDatabaseFields` and friends take it: a table, or
/// `Detail` for the Transaction lines.
fn file_fields(file: &str) -> Result<(&'static str, &'static [FieldDef]), String> {
    if file.eq_ignore_ascii_case("detail") {
        let sub = schema::TRANSACTION
            .subfile
            .as_ref()
            .expect("the Transaction schema has its Detail subfile");
        return Ok((sub.name, sub.fields));
    }
    schema::schema_by_name(file)
        .map(|s| (s.info.name, s.fields))
        .ok_or_else(|| format!("there is no file called `{file}`"))
}

/// A field name without the `detail.` prefix Detail fields carry in the schema.
fn short_name(def: &FieldDef) -> &'static str {
    def.name.strip_prefix("detail.").unwrap_or(def.name)
}

impl Database for Doc<'_> {
    fn files(&self) -> Vec<String> {
        self.db
            .tables()
            .iter()
            .map(|t| t.schema.info.name.to_string())
            .collect()
    }

    fn fields(&self, file: &str) -> Result<Vec<String>, String> {
        let (_, defs) = file_fields(file)?;
        Ok(defs.iter().map(|d| short_name(d).to_string()).collect())
    }

    fn field_size(&self, file: &str, field: &str) -> Result<Val, String> {
        let (name, defs) = file_fields(file)?;
        let def = defs
            .iter()
            .find(|d| {
                short_name(d).eq_ignore_ascii_case(field) || d.name.eq_ignore_ascii_case(field)
            })
            .ok_or_else(|| format!("{name} has no field called `{field}`"))?;
        Ok(match def.kind {
            FieldKind::Text { max_len } => Val::Num(max_len as f64),
            FieldKind::Short => Val::Text("SHORT".into()),
            FieldKind::Integer => Val::Text("LONG".into()),
            FieldKind::Decimal { .. } => Val::Text("DOUBLE".into()),
            FieldKind::Boolean => Val::Text("BOOLEAN".into()),
            FieldKind::Date => Val::Text("DATE".into()),
            FieldKind::DateTime => Val::Text("TIME".into()),
        })
    }

    fn find(
        &self,
        file: &str,
        expr: Option<&str>,
        search: &str,
        limit: usize,
        delim: &str,
        sort: Option<&str>,
    ) -> Result<Val, String> {
        let data = self
            .db
            .table(file)
            .map_err(|_| format!("there is no file called `{file}`"))?;
        let schema = data.schema;
        let parse = |text: &str, what: &str| {
            search::parse(text, schema).map_err(|e| format!("bad {what} expression: {e}"))
        };
        let search = match search.trim() {
            "" => None,
            text => Some(parse(text, "search")?),
        };
        let (sort, descending) = match sort.map(str::trim) {
            None | Some("") => (None, false),
            Some(text) => match text.strip_suffix('-') {
                Some(field) => (Some(parse(field, "sort")?), true),
                None => (Some(parse(text, "sort")?), false),
            },
        };
        let query = Query {
            search,
            sort,
            descending,
        };
        let Some(expr) = expr else {
            let page = select(data, &query, 0, Some(0), self)?;
            return Ok(Val::Num(page.found as f64));
        };
        let expr = parse(expr, "field")?;
        let page = select(data, &query, 0, Some(limit), self)?;
        let bare = expr.bare_field();
        let mut out = String::new();
        for (i, record) in page.records.iter().enumerate() {
            if i > 0 {
                out.push_str(delim);
            }
            match bare {
                Some(ix) => out.push_str(record.get(ix)),
                None => {
                    let env = RecordEnv {
                        record,
                        now: self.now,
                        doc: Some(self),
                    };
                    let v = expr.eval(&env).map_err(|e| e.to_string())?;
                    out.push_str(&search::display(&v));
                }
            }
        }
        Ok(Val::Text(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime {
        DateTime::parse(s).expect("valid test time")
    }

    /// Direct edits create, update and stamp records; bad fields and keys are refused.
    #[test]
    fn upsert_creates_updates_and_refuses() {
        let mut db = Db::default();
        let (seq, lmt) = db
            .upsert("name", "ACME", &[("phone", "555")], t("20240101000000"))
            .expect("creates");
        assert_eq!((seq, lmt), (1, t("20240101000000")));
        let (again, _) = db
            .upsert(
                "Name",
                "ACME",
                &[("creditlimit", "12.5")],
                t("20240102000000"),
            )
            .expect("updates");
        assert_eq!(again, 1);
        let rec = db.table("name").expect("served").get(1).expect("stored");
        assert_eq!(rec.text("phone"), Some("555"));
        assert_eq!(rec.text("creditlimit"), Some("12.50"));
        assert_eq!(rec.text("lastmodifiedtime"), Some("20240102000000"));
        assert!(
            db.upsert("name", "ACME", &[("nosuch", "1")], t("20240103000000"))
                .is_err()
        );
        assert!(db.upsert("name", "", &[], t("20240103000000")).is_err());
        assert!(db.upsert("ledger", "X", &[], t("20240103000000")).is_err());
        assert!(
            db.upsert("transaction", "99", &[], t("20240103000000"))
                .is_err()
        );
        assert!(
            db.upsert(
                "name",
                "ACME",
                &[("lastmodifiedtime", "20200101000000")],
                t("20240103000000")
            )
            .is_err()
        );
    }
}
