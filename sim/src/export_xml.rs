//! Writes records in the MoneyWorks export reply shape (`<table name count start found>`,
//! lowercase elements, `system="true"` in verbose output). Shared by the fake server and the
//! dataset tools; it must not decide which records are exported.

use mwsync::record::{Field, Record, TableInfo, Value};
use mwsync::xmltree::escape_text;

/// Which XML export flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Every field; system fields and system rows carry `system="true"`.
    Verbose,
    /// Drops blank, zero and system fields and system detail lines (also `format=xml`).
    Terse,
}

/// Writes an export document holding `records` of `table`, with the given paging attributes.
pub fn write_table<'a>(
    table: &TableInfo,
    records: impl ExactSizeIterator<Item = &'a Record>,
    start: u64,
    found: u64,
    flavour: Flavour,
) -> String {
    let mut out = String::with_capacity(128 + records.len() * 512);
    out.push_str("<?xml version=\"1.0\"?>\n");
    out.push_str(&format!(
        "<table name=\"{}\" count=\"{}\" start=\"{start}\" found=\"{found}\">\n",
        table.name,
        records.len()
    ));
    for record in records {
        write_record(&mut out, table.element, &record.fields, flavour, 1);
    }
    out.push_str("</table>\n");
    out
}

fn write_record(out: &mut String, element: &str, fields: &[Field], flavour: Flavour, depth: usize) {
    indent(out, depth);
    out.push('<');
    out.push_str(element);
    out.push_str(">\n");
    write_fields(out, fields, flavour, depth + 1);
    indent(out, depth);
    out.push_str("</");
    out.push_str(element);
    out.push_str(">\n");
}

fn is_blank_or_zero(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || (t.parse::<f64>().is_ok_and(|v| v == 0.0) && !t.chars().any(|c| c.is_ascii_alphabetic()))
}

fn write_fields(out: &mut String, fields: &[Field], flavour: Flavour, depth: usize) {
    for field in fields {
        if flavour == Flavour::Terse && field.system {
            continue;
        }
        match &field.value {
            Value::Text(text) => {
                if flavour == Flavour::Terse && is_blank_or_zero(text) {
                    continue;
                }
                indent(out, depth);
                out.push('<');
                out.push_str(&field.name);
                if field.system {
                    out.push_str(" system=\"true\"");
                }
                out.push('>');
                escape_text(out, text);
                out.push_str("</");
                out.push_str(&field.name);
                out.push_str(">\n");
            }
            Value::Subfile(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .filter(|r| flavour == Flavour::Verbose || !r.system)
                    .collect();
                if flavour == Flavour::Terse && rows.is_empty() {
                    continue;
                }
                indent(out, depth);
                out.push_str("<subfile name=\"");
                escape_text(out, &field.name);
                out.push_str("\">\n");
                let row_element = field.name.to_ascii_lowercase();
                for row in rows {
                    indent(out, depth + 1);
                    out.push('<');
                    out.push_str(&row_element);
                    if row.system {
                        out.push_str(" system=\"true\"");
                    }
                    out.push_str(">\n");
                    write_fields(out, &row.fields, flavour, depth + 2);
                    indent(out, depth + 1);
                    out.push_str("</");
                    out.push_str(&row_element);
                    out.push_str(">\n");
                }
                indent(out, depth);
                out.push_str("</subfile>\n");
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwsync::moneyworks::xml::parse_export;
    use mwsync::record::table_info;

    /// A verbose export written here parses back with the engine's reply parser, unchanged.
    #[test]
    fn verbose_round_trips_through_the_engine_parser() {
        let table = table_info("name").expect("known");
        let rec = Record::from_xml(
            table,
            "<name><sequencenumber system=\"true\">1</sequencenumber><code>A&amp;B</code><phone></phone></name>",
        )
        .expect("valid");
        let xml = write_table(table, [&rec].into_iter(), 0, 1, Flavour::Verbose);
        let doc = parse_export(&xml, Some(table)).expect("parses");
        assert_eq!(doc.records, vec![rec.clone()]);
        let terse = write_table(table, [&rec].into_iter(), 0, 1, Flavour::Terse);
        assert!(
            !terse.contains("sequencenumber") && !terse.contains("phone"),
            "{terse}"
        );
    }
}
