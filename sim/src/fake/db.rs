//! The fake document's records: one table of records per served schema table, in sequence
//! order, with a code index for code-keyed tables. It owns sequence numbers, stamping
//! `lastmodifiedtime`, taking in loaded records, direct edits (the admin API and the builder)
//! and the view of a record that search expressions read. It must not know HTTP or reply
//! formats.

use std::collections::BTreeMap;

use super::search::{Env, Scope, Slot, Val};
use crate::data::Dataset;
use crate::error::{Classify, ErrorClass};
use crate::record::Record;
use crate::schema::{self, FieldKind, LMT, SEQ, TableSchema};
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

/// The records of one table.
#[derive(Debug, Clone)]
pub struct TableData {
    /// The table's schema.
    pub schema: &'static TableSchema,
    /// Records by sequence number.
    pub records: BTreeMap<u64, Record>,
    /// Sequence number by code, for code-keyed tables (codes match exactly).
    pub codes: BTreeMap<String, u64>,
    /// The next sequence number to hand out.
    pub next_seq: u64,
}

impl TableData {
    fn new(schema: &'static TableSchema) -> TableData {
        TableData {
            schema,
            records: BTreeMap::new(),
            codes: BTreeMap::new(),
            next_seq: 1,
        }
    }

    /// The sequence number of the record with `key`: its code, or its decimal sequence number.
    pub fn find(&self, key: &str) -> Option<u64> {
        match self.schema.code {
            Some(_) => self.codes.get(key).copied(),
            None => key
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| self.records.contains_key(s)),
        }
    }

    /// Stores `record` (whose sequence number is set), replacing any with the same number.
    pub fn put(&mut self, record: Record) {
        let seq = record
            .seq()
            .expect("stored records always carry a sequence number");
        if let Some(old) = self.records.get(&seq).and_then(Record::code) {
            self.codes.remove(old);
        }
        if let Some(code) = record.code() {
            self.codes.insert(code.to_string(), seq);
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.records.insert(seq, record);
    }

    /// Removes the record with sequence number `seq`.
    pub fn remove(&mut self, seq: u64) -> Option<Record> {
        let record = self.records.remove(&seq)?;
        if let Some(code) = record.code() {
            self.codes.remove(code);
        }
        Some(record)
    }
}

/// The whole fake document.
#[derive(Debug, Clone)]
pub struct Db {
    tables: BTreeMap<&'static str, TableData>,
    /// The next `detail.sequencenumber` to hand out.
    pub next_detail_seq: u64,
}

impl Default for Db {
    fn default() -> Db {
        Db {
            tables: schema::all()
                .iter()
                .map(|s| (s.info.name, TableData::new(s)))
                .collect(),
            next_detail_seq: 1,
        }
    }
}

impl Db {
    /// A document holding `ds`. Records without a sequence number get the next free one,
    /// records without a modification time get `now`.
    pub fn load(ds: &Dataset, now: DateTime) -> Result<Db, SimError> {
        let mut db = Db::default();
        let mut max_detail = 0;
        for (name, records) in &ds.tables {
            let data = db.table_mut(name)?;
            for record in records {
                if record.info().name != data.schema.info.name {
                    return Err(SimError::Invalid(format!(
                        "the dataset files a {} record under {name}",
                        record.info().name
                    )));
                }
                let mut record = record.clone();
                if record.seq().is_none() {
                    record.set(SEQ, &data.next_seq.to_string());
                }
                if record.modified().is_none() {
                    record.set(LMT, &now.to_string());
                }
                max_detail = max_detail.max(max_row_seq(&record));
                data.put(record);
            }
        }
        db.next_detail_seq = max_detail + 1;
        Ok(db)
    }

    /// The table called `name` (case-insensitive).
    pub fn table(&self, name: &str) -> Result<&TableData, SimError> {
        let schema =
            schema::schema_by_name(name).ok_or_else(|| SimError::UnknownTable(name.to_string()))?;
        self.tables
            .get(schema.info.name)
            .ok_or_else(|| SimError::UnknownTable(name.to_string()))
    }

    /// The table called `name` (case-insensitive), for changing.
    pub fn table_mut(&mut self, name: &str) -> Result<&mut TableData, SimError> {
        let schema =
            schema::schema_by_name(name).ok_or_else(|| SimError::UnknownTable(name.to_string()))?;
        self.tables
            .get_mut(schema.info.name)
            .ok_or_else(|| SimError::UnknownTable(name.to_string()))
    }

    /// Puts `data` in place of the table it holds (how an import commits its work).
    pub fn install(&mut self, data: TableData) {
        self.tables.insert(data.schema.info.name, data);
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
            Some(seq) => (data.records[&seq].clone(), seq),
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

/// What a search reads from one record: typed fields by the schema, and the clock.
pub struct RecordEnv<'a> {
    /// The record.
    pub record: &'a Record,
    /// The server's current time.
    pub now: DateTime,
}

/// The typed value of stored `text` of a field of `kind` (`None`: a field the schema lacks).
pub fn typed(kind: Option<FieldKind>, text: &str) -> Val {
    match kind {
        Some(FieldKind::Integer | FieldKind::Decimal { .. }) => {
            Val::Num(text.trim().parse::<f64>().unwrap_or(0.0))
        }
        Some(FieldKind::Boolean) => Val::Bool(text.trim() == "1"),
        Some(FieldKind::Date) => match DateTime::parse_date(text.trim()) {
            Ok(t) => Val::DateTime(t),
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
}

/// What `evaluate` reads: no record, only the clock.
pub struct ClockEnv(pub DateTime);

impl Env for ClockEnv {
    fn value(&self, _index: usize) -> Val {
        Val::Text(String::new())
    }
    fn now(&self) -> DateTime {
        self.0
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
        let rec = &db.table("name").expect("served").records[&1];
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
