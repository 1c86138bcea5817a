//! How write-back compares values, pure: only importable (non-system) fields count, and
//! numbers compare by value the way MoneyWorks rewrites them (`1.5` = `1.500000`). It owns
//! those rules and verification of a re-read record against what was asked; it must not
//! decide what to import.

use std::collections::BTreeMap;

use super::plan::PlannedRecord;
use super::status::FieldReport;
use crate::record::{Field, Record, Row, Value};

/// Importable (non-system) fields, recursively, for comparison.
pub(crate) fn importable(fields: &[Field]) -> Vec<Field> {
    fields
        .iter()
        .filter(|f| !f.system)
        .map(|f| Field {
            name: f.name.clone(),
            system: false,
            value: match &f.value {
                Value::Text(t) => Value::Text(t.clone()),
                Value::Subfile(rows) => Value::Subfile(
                    rows.iter()
                        .filter(|r| !r.system)
                        .map(|r| Row {
                            system: false,
                            fields: importable(&r.fields),
                        })
                        .collect(),
                ),
            },
        })
        .collect()
}

pub(crate) fn system_values(fields: &[Field]) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter(|f| f.system)
        .filter_map(|f| match &f.value {
            Value::Text(t) => Some((f.name.clone(), t.clone())),
            Value::Subfile(_) => None,
        })
        .collect()
}

/// Normalises a value the way MoneyWorks rewrites it: numbers compare by value
/// (`1.5` = `1.500000`), everything else exactly.
pub fn normalise(value: &str) -> String {
    let t = value.trim();
    let numeric = !t.is_empty()
        && t.trim_start_matches('-').split('.').count() <= 2
        && t.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && t.trim_start_matches('-')
            .chars()
            .any(|c| c.is_ascii_digit());
    if numeric && t.contains('.') {
        let trimmed = t.trim_end_matches('0').trim_end_matches('.');
        let s = if trimmed == "-0" || trimmed.is_empty() {
            "0"
        } else {
            trimmed
        };
        return s.to_string();
    }
    if numeric {
        return t.to_string();
    }
    value.to_string()
}

pub(crate) fn normalised(fields: &[Field]) -> Vec<Field> {
    importable(fields)
        .into_iter()
        .map(|mut f| {
            match &mut f.value {
                Value::Text(t) => *t = normalise(t),
                Value::Subfile(rows) => {
                    for r in rows.iter_mut() {
                        r.fields = normalised(&r.fields);
                    }
                }
            }
            f
        })
        .collect()
}

pub(crate) fn find<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name == name)
}

pub(crate) fn field_text(fields: &[Field], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| match &f.value {
            Value::Text(t) => t.clone(),
            Value::Subfile(rows) => format!("({} rows)", rows.len()),
        })
}

/// Fields of `asked` (only those named) that `got` does not hold after normalisation.
pub fn verify(asked: &PlannedRecord, got: &Record) -> Vec<FieldReport> {
    let want = normalised(&asked.desired.fields);
    let have = normalised(&got.fields);
    asked
        .fields
        .iter()
        .filter_map(|name| {
            let a = want.iter().find(|f| &f.name == name);
            let h = have.iter().find(|f| &f.name == name);
            (a != h).then(|| FieldReport {
                field: name.clone(),
                asked: field_text(&want, name),
                server: field_text(&have, name),
                base: None,
            })
        })
        .collect()
}
