//! How write-back compares values, pure: only importable (non-system) fields count, numbers
//! compare by value the way MoneyWorks rewrites them (`1.5` = `1.500000`), line breaks
//! compare as the CR MoneyWorks stores, and codes match without regard to letter case as
//! MoneyWorks matches them. It owns those rules and verification of a re-read record against
//! what was asked; it must not decide what to import.

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
/// (`1.5` = `1.500000`), text with its line breaks as CR (MoneyWorks stores a line break as
/// CR, so a writer's LF or CRLF is the same value), everything else exactly.
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
    stored_line_breaks(value)
}

/// `text` with every line break (LF, CRLF or CR) as the CR MoneyWorks stores.
pub(crate) fn stored_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\r").replace('\n', "\r")
}

/// Fields as they are sent to MoneyWorks: text with its line breaks as CR, recursively.
pub(crate) fn for_import(fields: &[Field]) -> Vec<Field> {
    fields
        .iter()
        .map(|f| Field {
            name: f.name.clone(),
            system: f.system,
            value: match &f.value {
                Value::Text(t) => Value::Text(stored_line_breaks(t)),
                Value::Subfile(rows) => Value::Subfile(
                    rows.iter()
                        .map(|r| Row {
                            system: r.system,
                            fields: for_import(&r.fields),
                        })
                        .collect(),
                ),
            },
        })
        .collect()
}

/// A code folded for comparison without regard to letter case, as MoneyWorks matches codes.
pub(crate) fn fold_case(code: &str) -> String {
    code.chars().flat_map(char::to_lowercase).collect()
}

/// True when two codes are different texts that MoneyWorks takes for the same code.
pub(crate) fn case_twins(a: &str, b: &str) -> bool {
    a != b && fold_case(a) == fold_case(b)
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

/// The importable fields whose normalised values differ between `a` and `b` (a field only
/// one of them has differs too), in `b`'s order, then those only `a` has.
pub(crate) fn differing(a: &[Field], b: &[Field]) -> Vec<String> {
    let (a, b) = (normalised(a), normalised(b));
    let mut names: Vec<String> = b
        .iter()
        .filter(|f| find(&a, &f.name) != Some(*f))
        .map(|f| f.name.clone())
        .collect();
    names.extend(
        a.iter()
            .filter(|f| find(&b, &f.name).is_none())
            .map(|f| f.name.clone()),
    );
    names
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
                ..FieldReport::default()
            })
        })
        .collect()
}
