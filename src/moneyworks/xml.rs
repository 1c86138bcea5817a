//! Parsing of MoneyWorks export replies (`<table name count start found>` with lowercase
//! record elements). It owns the checks that keep a malformed reply from ever reaching git:
//! a reply that is not well-formed, or not the shape asked for, is refused whole; one record
//! that is not a usable record is set aside with what can be read of it (sequence number,
//! key, stamp), so the rest of the page goes on. It must not do I/O.

use crate::mwtime::MwTime;
use crate::record::{KeyField, LMT_FIELD, Record, SEQ_FIELD, TableInfo, table_info};
use crate::recordxml::FastReader;
use crate::xmltree::{self, Element};

/// A record of a reply that cannot be used, with what could be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// Its position in the reply, from 1.
    pub position: usize,
    /// Its sequence number, when readable.
    pub seq: Option<u64>,
    /// Its code (code-keyed tables), when readable and not empty.
    pub key: Option<String>,
    /// Its LastModifiedTime, when readable, so paging can step past it.
    pub modified: Option<MwTime>,
    /// What is wrong with it.
    pub reason: String,
}

impl RejectedRecord {
    /// What can be read of `el`, a record element of `table` that is unusable for `reason`.
    pub fn from_element(
        table: &TableInfo,
        el: &Element,
        position: usize,
        reason: String,
    ) -> RejectedRecord {
        let text = |name: &str| {
            el.children
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name) && c.children.is_empty())
                .map(|c| c.text.trim().to_string())
        };
        let key = match table.key {
            KeyField::Code(field) => text(field).filter(|k| !k.is_empty()),
            KeyField::Seq => None,
        };
        RejectedRecord {
            position,
            seq: text(SEQ_FIELD).and_then(|s| s.parse().ok()),
            key,
            modified: text(LMT_FIELD).and_then(|t| MwTime::parse(&t).ok()),
            reason,
        }
    }
}

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
    /// The usable records, in document order.
    pub records: Vec<Record>,
    /// The unusable ones, in document order.
    pub rejected: Vec<RejectedRecord>,
}

/// Parses an export reply. When `expected` is given, the root must name that table.
/// Refuses truncated or malformed XML, a wrong root, and a `count` that disagrees with the
/// records present. A record that is not the shape of a record, or has no sequence number,
/// is set aside in `rejected`.
pub fn parse_export(
    body: &str,
    expected: Option<&'static TableInfo>,
) -> Result<ExportDocument, String> {
    match parse_plain_export(body, expected) {
        Some(doc) => Ok(doc),
        None => parse_tree_export(body, expected),
    }
}

/// [`parse_export`] through an element tree: every document, every error, every rejected
/// record.
pub(crate) fn parse_tree_export(
    body: &str,
    expected: Option<&'static TableInfo>,
) -> Result<ExportDocument, String> {
    let root = xmltree::parse(body).map_err(|e| e.to_string())?;
    let header = header(&root.name, |a| root.attr(a), expected)?;
    let mut records = Vec::with_capacity(root.children.len());
    let mut rejected = Vec::new();
    for (i, el) in root.children.iter().enumerate() {
        let reject = |reason: String| RejectedRecord::from_element(header.0, el, i + 1, reason);
        match Record::from_element(header.0, el) {
            Ok(record) if record.seq().is_some() => records.push(record),
            Ok(_) => rejected.push(reject(format!("it has no numeric <{SEQ_FIELD}>"))),
            Err(e) => rejected.push(reject(e.to_string())),
        }
    }
    document(header, records, rejected)
}

/// The fast path of [`parse_export`]: a page whose every record is plain and usable, read
/// without an element tree. `None` sends the page down the tree path, which gives the
/// errors and the rejected records.
pub(crate) fn parse_plain_export(
    body: &str,
    expected: Option<&'static TableInfo>,
) -> Option<ExportDocument> {
    let (reader, root) = FastReader::open(body)?;
    let header = header(&root.name, |a| root.attr(a), expected).ok()?;
    let table = header.0;
    let records: Vec<Record> = reader
        .records(table.element)?
        .into_iter()
        .map(|fields| Record { table, fields })
        .collect();
    if records.iter().any(|r| r.seq().is_none()) {
        return None;
    }
    document(header, records, Vec::new()).ok()
}

type Header = (&'static TableInfo, u64, u64, u64);

/// The table, `count`, `start` and `found` of a `<table>` root named `name`.
fn header<'a>(
    name: &str,
    attr: impl Fn(&str) -> Option<&'a str>,
    expected: Option<&'static TableInfo>,
) -> Result<Header, String> {
    if name != "table" {
        return Err(format!("the root element is <{name}>, expected <table>"));
    }
    let table_name = attr("name").ok_or("<table> has no name attribute")?;
    let table = table_info(table_name)
        .ok_or_else(|| format!("<table name=\"{table_name}\"> is not a table mwsync knows"))?;
    if let Some(expected) = expected
        && expected.name != table.name
    {
        return Err(format!(
            "asked for table {} but the reply is for {}",
            expected.name, table.name
        ));
    }
    let number = |a: &str| -> Result<u64, String> {
        let raw = attr(a).ok_or_else(|| format!("<table> has no {a} attribute"))?;
        raw.trim()
            .parse()
            .map_err(|_| format!("<table {a}=\"{raw}\"> is not a number"))
    };
    Ok((table, number("count")?, number("start")?, number("found")?))
}

fn document(
    (table, count, start, found): Header,
    records: Vec<Record>,
    rejected: Vec<RejectedRecord>,
) -> Result<ExportDocument, String> {
    let held = records.len() + rejected.len();
    if held as u64 != count {
        return Err(format!(
            "count=\"{count}\" but the reply holds {held} records"
        ));
    }
    Ok(ExportDocument {
        table,
        count,
        start,
        found,
        records,
        rejected,
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
                &PAGE.replace("name=\"Name\"", "name=\"Product\"")[..],
                "asked for table Name",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_export(body, table_info("name")).expect_err(needle);
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    /// One unusable record is set aside with its sequence number, key, stamp and reason,
    /// and the good records of the page are kept: a nested element, a field name outside
    /// `[a-z0-9._]`, a missing sequence number.
    #[test]
    fn one_bad_record_does_not_spoil_the_page() {
        let good = "<name><sequencenumber>1</sequencenumber><lastmodifiedtime>20240101000000</lastmodifiedtime><code>A</code></name>";
        let cases = [
            (
                "<name><sequencenumber>2</sequencenumber><lastmodifiedtime>20240101000001</lastmodifiedtime><code>B</code><phone><x>1</x></phone></name>",
                (
                    Some(2),
                    Some("B"),
                    "not a Name record: field <phone> holds elements",
                ),
            ),
            (
                "<name><sequencenumber>3</sequencenumber><lastmodifiedtime>20240101000002</lastmodifiedtime><code>C</code><Bad-Name>1</Bad-Name></name>",
                (
                    Some(3),
                    Some("C"),
                    "not a Name record: <Bad-Name> is not a field name",
                ),
            ),
            (
                "<name><lastmodifiedtime>20240101000003</lastmodifiedtime><code>D</code></name>",
                (None, Some("D"), "it has no numeric <sequencenumber>"),
            ),
        ];
        for (bad, (seq, key, reason)) in cases {
            let body = format!(
                "<table name=\"Name\" count=\"2\" start=\"0\" found=\"2\">{good}{bad}</table>"
            );
            let doc = parse_export(&body, table_info("name")).expect("the page parses");
            assert_eq!(doc.records.len(), 1, "{bad}");
            let r = &doc.rejected[0];
            assert_eq!(
                (r.position, r.seq, r.key.as_deref(), r.reason.as_str()),
                (2, seq, key, reason)
            );
            assert!(
                r.modified.is_some(),
                "the stamp is read so paging can step past"
            );
        }
    }
}
