//! The `export` command: picks a table's records by `search`, orders them by `sort` and
//! `direction` (sequence order when unsorted, and for ties), pages them with `start` and
//! `limit` (all three through `select`, which serves index-shaped searches from indexes),
//! and writes them as XML (terse or verbose), a custom `[field]` template, or the
//! default tab-separated text. It must not change records; errors are returned as the text
//! that follows `[ERROR] `.

use std::collections::BTreeMap;

use crate::time::DateTime;

use super::db::{Db, Doc, RecordEnv};
use super::search::{self, Expr, Template};
use super::select::{Query, select};
use crate::export_xml::{Flavour, write_table};
use crate::record::{FieldView, Record};
use crate::schema::TableSchema;

/// A successful export: the content type and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReply {
    /// `text/xml` for XML formats, else `text/plain`.
    pub content_type: &'static str,
    /// The reply body.
    pub body: String,
}

/// The parsed parameters of one export request.
struct Request<'p> {
    search: Option<Expr>,
    sort: Option<Expr>,
    descending: bool,
    start: u64,
    limit: Option<u64>,
    format: &'p str,
    template: Option<Template>,
}

impl<'p> Request<'p> {
    fn parse(params: &'p BTreeMap<String, String>, schema: &TableSchema) -> Result<Self, String> {
        let expr = |name: &str, what: &str| -> Result<Option<Expr>, String> {
            match params.get(name).map(|s| s.trim()) {
                Some(s) if !s.is_empty() => search::parse(s, schema)
                    .map(Some)
                    .map_err(|e| format!("Bad {what} expression: {e}")),
                _ => Ok(None),
            }
        };
        let descending = match params.get("direction").map(|d| d.to_ascii_lowercase()) {
            None => false,
            Some(d) if d.is_empty() || d == "ascending" => false,
            Some(d) if d == "descending" => true,
            Some(d) => {
                return Err(format!(
                    "Bad parameter: direction={d} (use ascending or descending)"
                ));
            }
        };
        let format = params.get("format").map(String::as_str).unwrap_or("");
        let template = match format {
            "" | "xml" | "xml-terse" | "xml-verbose" => None,
            custom => Some(
                search::parse_template(custom, schema).map_err(|e| format!("Bad format: {e}"))?,
            ),
        };
        Ok(Request {
            search: expr("search", "search")?,
            sort: expr("sort", "sort")?,
            descending,
            start: number_param(params, "start")?.unwrap_or(0),
            limit: number_param(params, "limit")?,
            format,
            template,
        })
    }
}

/// Runs an export. `params` are the decoded request parameters (names lowercase).
pub fn export(
    db: &Db,
    params: &BTreeMap<String, String>,
    now: DateTime,
) -> Result<ExportReply, String> {
    let table_name = params
        .get("table")
        .filter(|t| !t.is_empty())
        .ok_or("Missing parameter: export needs table=")?;
    let data = db
        .table(table_name)
        .map_err(|_| format!("Unknown table: {table_name}"))?;
    let schema = data.schema;
    let req = Request::parse(params, schema)?;
    let doc = Doc { db, now };
    let query = Query {
        search: req.search,
        sort: req.sort,
        descending: req.descending,
    };
    let start = usize::try_from(req.start).unwrap_or(usize::MAX);
    let limit = req.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let page = select(data, &query, start, limit, &doc)?;
    let xml = |flavour| {
        write_table(
            schema.info,
            page.records.iter().copied(),
            req.start,
            page.found,
            flavour,
        )
        .map_err(|e| e.to_string())
    };
    let body = match (req.format, &req.template) {
        ("xml" | "xml-terse", _) => xml(Flavour::Terse)?,
        ("xml-verbose", _) => xml(Flavour::Verbose)?,
        (_, Some(template)) => {
            let mut out = String::with_capacity(page.records.len() * 32);
            for record in &page.records {
                let env = RecordEnv {
                    record,
                    now,
                    doc: Some(&doc),
                };
                let line = template
                    .render(&env)
                    .map_err(|e| format!("Bad format: {e}"))?;
                out.push_str(&line);
            }
            out
        }
        _ => tab_separated(&page.records),
    };
    let content_type = if matches!(req.format, "xml" | "xml-terse" | "xml-verbose") {
        "text/xml"
    } else {
        "text/plain"
    };
    Ok(ExportReply { content_type, body })
}

fn number_param(params: &BTreeMap<String, String>, name: &str) -> Result<Option<u64>, String> {
    match params.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("Bad parameter: {name}={v} is not a whole number")),
    }
}

/// The default (no `format`) reply: every text field of each record, tab-separated, one
/// record per line, values as stored (real servers localise dates here).
fn tab_separated(page: &[&Record]) -> String {
    let mut out = String::new();
    for record in page {
        let mut first = true;
        for view in record.fields() {
            let FieldView::Text { text, .. } = view else {
                continue;
            };
            if !first {
                out.push('\t');
            }
            first = false;
            out.push_str(&text.replace(['\t', '\r', '\n'], " "));
        }
        out.push('\n');
    }
    out
}
