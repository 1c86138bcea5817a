//! Parsing of MoneyWorks export replies (`<table name count start found>` with lowercase
//! record elements). It owns the checks that keep a malformed reply from ever reaching git;
//! it must not do I/O.

use crate::record::{Record, TableInfo, table_info};
use crate::xmltree;

/// A parsed export document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDocument {
    /// The table named by the root's `name` attribute.
    pub table: &'static TableInfo,
    /// `count`: records in this document.
    pub count: u64,
    /// `start`: offset of the first record.
    pub start: u64,
    /// `found`: records matching the search in total.
    pub found: u64,
    /// The records, in document order.
    pub records: Vec<Record>,
}

/// Parses an export reply. When `expected` is given, the root must name that table.
/// Refuses truncated or malformed XML, a wrong root, a `count` that disagrees with the
/// records present, and records without a sequence number.
pub fn parse_export(
    body: &str,
    expected: Option<&'static TableInfo>,
) -> Result<ExportDocument, String> {
    let root = xmltree::parse(body).map_err(|e| e.to_string())?;
    if root.name != "table" {
        return Err(format!(
            "the root element is <{}>, expected <table>",
            root.name
        ));
    }
    let name = root.attr("name").ok_or("<table> has no name attribute")?;
    let table = table_info(name)
        .ok_or_else(|| format!("<table name=\"{name}\"> is not a table mwsync knows"))?;
    if let Some(expected) = expected
        && expected.name != table.name
    {
        return Err(format!(
            "asked for table {} but the reply is for {}",
            expected.name, table.name
        ));
    }
    let number = |attr: &str| -> Result<u64, String> {
        let raw = root
            .attr(attr)
            .ok_or_else(|| format!("<table> has no {attr} attribute"))?;
        raw.trim()
            .parse()
            .map_err(|_| format!("<table {attr}=\"{raw}\"> is not a number"))
    };
    let (count, start, found) = (number("count")?, number("start")?, number("found")?);
    let mut records = Vec::with_capacity(root.children.len());
    for (i, el) in root.children.iter().enumerate() {
        let record =
            Record::from_element(table, el).map_err(|e| format!("record {}: {e}", i + 1))?;
        if record.seq().is_none() {
            return Err(format!("record {} has no numeric <sequencenumber>", i + 1));
        }
        records.push(record);
    }
    if records.len() as u64 != count {
        return Err(format!(
            "count=\"{count}\" but the reply holds {} records",
            records.len()
        ));
    }
    Ok(ExportDocument {
        table,
        count,
        start,
        found,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0"?>
<table name="Name" count="1" start="0" found="6">
 <name><sequencenumber system="true">3</sequencenumber><code>AUTUMN</code></name>
</table>"#;

    /// A well-formed page parses with its paging attributes.
    #[test]
    fn parses_a_page() {
        let doc = parse_export(PAGE, table_info("name")).expect("valid page");
        assert_eq!((doc.count, doc.start, doc.found), (1, 0, 6));
        assert_eq!(doc.records[0].text("code"), Some("AUTUMN"));
    }

    /// Each class of bad reply is refused with a reason that names it.
    #[test]
    fn refuses_bad_replies() {
        let cases = [
            (&PAGE[..PAGE.len() - 20], "truncated"),
            (
                "<tabel name=\"Name\" count=\"0\" start=\"0\" found=\"0\"/>",
                "expected <table>",
            ),
            (
                &PAGE.replace("count=\"1\"", "count=\"2\"")[..],
                "holds 1 records",
            ),
            (
                &PAGE.replace("<sequencenumber system=\"true\">3</sequencenumber>", "")[..],
                "no numeric",
            ),
            (
                &PAGE.replace("name=\"Name\"", "name=\"Product\"")[..],
                "asked for table Name",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_export(body, table_info("name")).expect_err(needle);
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
