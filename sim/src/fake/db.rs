//! The fake document's records: one table of records per served schema table, in sequence
//! order, with a code index for code-keyed tables. It owns sequence numbers, stamping
//! `lastmodifiedtime`, fitting loaded records to the schema, direct edits (the admin API and
//! the builder) and the view of a record that search expressions read. It must not know HTTP
//! or reply formats.

use std::collections::BTreeMap;

use mwsync::error::{Classify, ErrorClass};
use mwsync::mwtime::MwTime;
use mwsync::record::{Field, KeyField, LMT_FIELD, Record, SEQ_FIELD, Value};

use super::search::{Env, Val};
use crate::data::Dataset;
use crate::schema::{self, FieldDef, FieldKind, TableSchema};

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

    /// The code field of a code-keyed table.
    pub fn code_field(&self) -> Option<&'static str> {
        match self.schema.table.key {
            KeyField::Code(f) => Some(f),
            KeyField::Seq => None,
        }
    }

    /// The sequence number of the record with `key`: its code, or its decimal sequence number.
    pub fn find(&self, key: &str) -> Option<u64> {
        match self.code_field() {
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
        if let Some(f) = self.code_field() {
            if let Some(old) = self.records.get(&seq).and_then(|r| r.text(f)) {
                self.codes.remove(old);
            }
            if let Some(code) = record.text(f) {
                self.codes.insert(code.to_string(), seq);
            }
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.records.insert(seq, record);
    }

    /// Removes the record with sequence number `seq`.
    pub fn remove(&mut self, seq: u64) -> Option<Record> {
        let record = self.records.remove(&seq)?;
        if let Some(code) = self.code_field().and_then(|f| record.text(f)) {
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
                .map(|s| (s.table.name, TableData::new(s)))
                .collect(),
            next_detail_seq: 1,
        }
    }
}

impl Db {
    /// A document holding `ds`, each record fitted to the schema: schema fields in schema
    /// order (missing ones blank), then any other fields the data carried, as they were.
    /// Records without a sequence number get the next free one, records without a
    /// modification time get `now`.
    pub fn load(ds: &Dataset, now: MwTime) -> Result<Db, SimError> {
        let mut db = Db::default();
        for (name, records) in &ds.tables {
            let data = db.table_mut(name)?;
            for record in records {
                let mut fitted = fit(data.schema, record);
                if fitted.seq().is_none() {
                    fitted.set_text(SEQ_FIELD, &data.next_seq.to_string());
                }
                if fitted.last_modified().is_none() {
                    fitted.set_text(LMT_FIELD, &now.to_string());
                }
                data.put(fitted);
            }
        }
        let max_detail = db
            .tables
            .values()
            .flat_map(|t| t.records.values())
            .flat_map(|r| rows(r).iter())
            .filter_map(|row| {
                row.fields
                    .iter()
                    .find(|f| f.name == "detail.sequencenumber")
                    .and_then(|f| text_of(f).parse::<u64>().ok())
            })
            .max()
            .unwrap_or(0);
        db.next_detail_seq = max_detail + 1;
        Ok(db)
    }

    /// The table called `name` (case-insensitive).
    pub fn table(&self, name: &str) -> Result<&TableData, SimError> {
        let schema =
            schema::schema_by_name(name).ok_or_else(|| SimError::UnknownTable(name.to_string()))?;
        self.tables
            .get(schema.table.name)
            .ok_or_else(|| SimError::UnknownTable(name.to_string()))
    }

    /// The table called `name` (case-insensitive), for changing.
    pub fn table_mut(&mut self, name: &str) -> Result<&mut TableData, SimError> {
        let schema =
            schema::schema_by_name(name).ok_or_else(|| SimError::UnknownTable(name.to_string()))?;
        self.tables
            .get_mut(schema.table.name)
            .ok_or_else(|| SimError::UnknownTable(name.to_string()))
    }

    /// Puts `data` in place of the table it holds (how an import commits its work).
    pub fn install(&mut self, data: TableData) {
        self.tables.insert(data.schema.table.name, data);
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
        now: MwTime,
    ) -> Result<(u64, MwTime), SimError> {
        let data = self.table_mut(table)?;
        let (mut record, seq) = match data.find(key) {
            Some(seq) => (data.records[&seq].clone(), seq),
            None => {
                let mut record = schema::blank_record(data.schema);
                let seq = match data.code_field() {
                    Some(code_field) => {
                        let def = data.schema.field(code_field).expect("code field in schema");
                        let code = schema::normalize(def, key).map_err(SimError::Invalid)?;
                        if code.is_empty() {
                            return Err(SimError::Invalid(format!(
                                "a new {} record needs a non-empty {code_field}",
                                data.schema.table.name
                            )));
                        }
                        record.set_text(code_field, &code);
                        data.next_seq
                    }
                    None if key.trim().is_empty() => data.next_seq,
                    None => {
                        return Err(SimError::NoRecord {
                            table: data.schema.table.name.to_string(),
                            key: key.to_string(),
                        });
                    }
                };
                record.set_text(SEQ_FIELD, &seq.to_string());
                (record, seq)
            }
        };
        for (name, value) in fields {
            let name = name.to_ascii_lowercase();
            if name == SEQ_FIELD || name == LMT_FIELD {
                return Err(SimError::Invalid(format!(
                    "{name} is maintained by the server and cannot be set"
                )));
            }
            if Some(name.as_str()) == data.code_field()
                && data.find(value).is_some_and(|other| other != seq)
            {
                return Err(SimError::Invalid(format!(
                    "code `{value}` is already in use"
                )));
            }
            set_field(data.schema, &mut record, &name, value).map_err(SimError::Invalid)?;
        }
        record.set_text(LMT_FIELD, &now.to_string());
        data.put(record);
        Ok((seq, now))
    }
}

/// The rows of a record's subfile (empty when it has none).
pub fn rows(record: &Record) -> &[mwsync::record::Row] {
    record
        .fields
        .iter()
        .find_map(|f| match &f.value {
            Value::Subfile(rows) => Some(rows.as_slice()),
            Value::Text(_) => None,
        })
        .unwrap_or(&[])
}

/// The text of a text field (empty for a subfile).
pub fn text_of(field: &Field) -> &str {
    match &field.value {
        Value::Text(t) => t,
        Value::Subfile(_) => "",
    }
}

/// Sets field `name` of `record` to `value` normalised by its schema type. Fields the schema
/// does not know are accepted only when the record already carries them (loaded data).
pub fn set_field(
    schema: &TableSchema,
    record: &mut Record,
    name: &str,
    value: &str,
) -> Result<(), String> {
    if let Some(i) = schema
        .fields
        .iter()
        .position(|f| f.name.eq_ignore_ascii_case(name))
    {
        let def = &schema.fields[i];
        let stored = schema::normalize(def, value)?;
        // Stored records are in schema order, so the field is usually at the same index.
        match record.fields.get_mut(i).filter(|f| f.name == def.name) {
            Some(field) => field.value = Value::Text(stored),
            None => record.set_text(def.name, &stored),
        }
        return Ok(());
    }
    let stored = match schema.field(name) {
        Some(def) => schema::normalize(def, value)?,
        None if record
            .field(name)
            .is_some_and(|f| matches!(f.value, Value::Text(_))) =>
        {
            value.to_string()
        }
        None => {
            return Err(format!(
                "Unknown field: {} has no field called {name}",
                schema.table.name
            ));
        }
    };
    record.set_text(name, &stored);
    Ok(())
}

/// Fits `record` to `schema`: schema fields in order (blank when missing), then the extras.
fn fit(schema: &'static TableSchema, record: &Record) -> Record {
    let mut out = schema::blank_record(schema);
    for field in &mut out.fields {
        if let Some(given) = record.field(&field.name) {
            field.value = given.value.clone();
        }
    }
    for extra in &record.fields {
        if out.field(&extra.name).is_none() {
            out.fields.push(extra.clone());
        }
    }
    out
}

/// What a search reads from one record: typed fields by the schema, and the clock.
pub struct RecordEnv<'a> {
    /// The record.
    pub record: &'a Record,
    /// Its table's schema.
    pub schema: &'static TableSchema,
    /// The server's current time.
    pub now: MwTime,
}

/// The typed value of stored `text` of a field of `kind`.
pub fn typed(kind: Option<FieldKind>, text: &str) -> Val {
    match kind {
        Some(FieldKind::Integer | FieldKind::Decimal { .. }) => {
            Val::Num(text.trim().parse::<f64>().unwrap_or(0.0))
        }
        Some(FieldKind::Boolean) => Val::Bool(text.trim() == "1"),
        Some(FieldKind::Date) => match MwTime::parse(&format!("{}000000", text.trim())) {
            Ok(t) => Val::DateTime(t),
            Err(_) => Val::Text(String::new()),
        },
        Some(FieldKind::DateTime) => match MwTime::parse(text.trim()) {
            Ok(t) => Val::DateTime(t),
            Err(_) => Val::Text(String::new()),
        },
        Some(FieldKind::Text { .. }) | None => Val::Text(text.to_string()),
    }
}

impl Env for RecordEnv<'_> {
    fn field(&self, name: &str) -> Option<Val> {
        let field = self.record.field(name)?;
        if matches!(field.value, Value::Subfile(_)) {
            return None;
        }
        let def: Option<&FieldDef> = self.schema.field(name);
        Some(typed(def.map(|d| d.kind), text_of(field)))
    }

    fn now(&self) -> MwTime {
        self.now
    }

    fn table(&self) -> Option<&str> {
        Some(self.schema.table.element)
    }

    fn is_datetime_field(&self, name: &str) -> bool {
        self.schema
            .field(name)
            .is_some_and(|d| d.kind == FieldKind::DateTime)
    }
}

/// What `evaluate` reads: no record, only the clock.
pub struct ClockEnv(pub MwTime);

impl Env for ClockEnv {
    fn field(&self, _name: &str) -> Option<Val> {
        None
    }
    fn now(&self) -> MwTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> MwTime {
        MwTime::parse(s).expect("valid test time")
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
