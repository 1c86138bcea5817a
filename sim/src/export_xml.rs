//! Writes records in the MoneyWorks export reply shape (`<table name count start found>`,
//! lowercase elements, `system="true"` in verbose output) through the simulator's one XML
//! writer. Shared by the fake server and the dataset tools; it must not decide which records
//! are exported.

use crate::record::{FieldView, Record};
use crate::schema::TableInfo;
use crate::xml::{Forbidden, Style, XmlWriter};

/// Which XML export flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Every field; system fields and system rows carry `system="true"`.
    Verbose,
    /// Drops blank, zero and system fields and system detail lines (also `format=xml`).
    Terse,
}

/// A value an export cannot carry, with the record and field that hold it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} record {seq}, field {field}: {source}")]
pub struct Unwritable {
    /// The table.
    pub table: &'static str,
    /// The record's sequence number.
    pub seq: u64,
    /// The field.
    pub field: String,
    /// The character.
    pub source: Forbidden,
}

/// Writes an export document holding `records` of `table`, with the given paging attributes.
pub fn write_table<'a>(
    table: &TableInfo,
    records: impl ExactSizeIterator<Item = &'a Record>,
    start: u64,
    found: u64,
    flavour: Flavour,
) -> Result<String, Unwritable> {
    let mut w = XmlWriter::new(Style::EXPORT, 128 + records.len() * 512);
    let count = records.len().to_string();
    let (start, found) = (start.to_string(), found.to_string());
    let attrs = [
        ("name", table.name),
        ("count", count.as_str()),
        ("start", start.as_str()),
        ("found", found.as_str()),
    ];
    w.open("table", &attrs)
        .expect("table names and numbers are plain ASCII");
    for record in records {
        write_record(&mut w, record, flavour)?;
    }
    w.close("table");
    Ok(w.finish())
}

/// Writes one record element at the writer's current depth.
pub fn write_record(
    w: &mut XmlWriter,
    record: &Record,
    flavour: Flavour,
) -> Result<(), Unwritable> {
    let element = record.info().element;
    let fail = |field: &str, source: Forbidden| Unwritable {
        table: record.info().name,
        seq: record.seq().unwrap_or(0),
        field: field.to_string(),
        source,
    };
    w.open(element, &[]).map_err(|e| fail(element, e))?;
    for view in record.fields() {
        match view {
            FieldView::Text { name, system, text } => {
                if flavour == Flavour::Terse && (system || is_blank_or_zero(text)) {
                    continue;
                }
                leaf(w, name, system, text).map_err(|e| fail(name, e))?;
            }
            FieldView::Subfile { sub, rows } => {
                let shown: Vec<_> = rows
                    .iter()
                    .filter(|r| flavour == Flavour::Verbose || !r.system)
                    .collect();
                if flavour == Flavour::Terse && shown.is_empty() {
                    continue;
                }
                w.open("subfile", &[("name", sub.name)])
                    .map_err(|e| fail(sub.name, e))?;
                let row_element = sub.row_element();
                for row in shown {
                    let attrs: &[(&str, &str)] = if row.system {
                        &[("system", "true")]
                    } else {
                        &[]
                    };
                    w.open(&row_element, attrs)
                        .map_err(|e| fail(&row_element, e))?;
                    for (name, system, text) in row.fields(sub) {
                        if flavour == Flavour::Terse && (system || is_blank_or_zero(text)) {
                            continue;
                        }
                        leaf(w, name, system, text).map_err(|e| fail(name, e))?;
                    }
                    w.close(&row_element);
                }
                w.close("subfile");
            }
        }
    }
    w.close(element);
    Ok(())
}

fn leaf(w: &mut XmlWriter, name: &str, system: bool, text: &str) -> Result<(), Forbidden> {
    let attrs: &[(&str, &str)] = if system { &[("system", "true")] } else { &[] };
    w.leaf(name, attrs, text)
}

fn is_blank_or_zero(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || (t.parse::<f64>().is_ok_and(|v| v == 0.0) && !t.chars().any(|c| c.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::NAME;

    /// Verbose exports write every field with system flags; terse ones drop blank, zero and
    /// system fields.
    #[test]
    fn verbose_and_terse() {
        let mut rec = Record::blank(&NAME);
        rec.set(crate::schema::SEQ, "1");
        rec.set(NAME.index("code").expect("code"), "A&B");
        let xml = write_table(NAME.info, [&rec].into_iter(), 0, 1, Flavour::Verbose).expect("ok");
        assert!(xml.starts_with("<?xml version=\"1.0\"?>\n<table name=\"Name\" count=\"1\" start=\"0\" found=\"1\">\n  <name>\n    <sequencenumber system=\"true\">1</sequencenumber>\n"), "{xml}");
        assert!(
            xml.contains("    <code>A&amp;B</code>\n    <colour>0</colour>\n"),
            "{xml}"
        );
        let terse = write_table(NAME.info, [&rec].into_iter(), 0, 1, Flavour::Terse).expect("ok");
        assert!(
            !terse.contains("sequencenumber") && !terse.contains("<phone>"),
            "{terse}"
        );
        assert!(terse.contains("<code>A&amp;B</code>"));
    }
}
