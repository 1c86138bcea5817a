//! The MoneyWorks requests mwsync makes, as data: the modified-since page, the tie pass of
//! one second, key-set pages by sequence number, a batch of records by sequence number or
//! code, the fingerprint format and the clock expression. Pure; it must not send anything
//! or judge replies.

use crate::moneyworks::{Direction, ExportFormat, ExportQuery};
use crate::mwtime::MwTime;
use crate::record::{KeyField, TableInfo};

/// The expression that reads the server clock.
pub const CLOCK_EXPRESSION: &str = "DateToText(Time(), DateFormYYYYMMDDHHMMSS)";

/// Lines per fingerprint page (fingerprints are short; they are not record pages).
pub const FINGERPRINT_PAGE: u32 = 2000;

/// The stamp in fingerprints, formatted explicitly: a bare `[lastmodifiedtime]` may come out
/// in the server's local date format, which would make every record look changed.
const STAMP: &str = "DateToText(lastmodifiedtime, DateFormYYYYMMDDHHMMSS)";

/// One `evaluate` that answers an idle poll: the server clock, then for each table whether
/// any record was modified at or after its start (the sequence number of one such record, or
/// nothing), separated by `|`. Parsed by [`parse_changes`].
pub fn changes_expression(tables: &[(&TableInfo, MwTime)]) -> String {
    let mut expr = CLOCK_EXPRESSION.to_string();
    for (table, since) in tables {
        expr.push_str(&format!(
            " + \"|\" + Find(\"{}.sequencenumber\", `{}`, 1, \",\")",
            table.element,
            modified_since(*since)
        ));
    }
    expr
}

/// The clock and, per table in the order asked, whether anything changed, from the reply to
/// [`changes_expression`] over `tables` tables. `None` when the reply has another shape.
pub fn parse_changes(reply: &str, tables: usize) -> Option<(MwTime, Vec<bool>)> {
    let parts: Vec<&str> = reply.trim().split('|').collect();
    if parts.len() != tables + 1 {
        return None;
    }
    let now = MwTime::parse(parts[0].trim()).ok()?;
    let changed = parts[1..]
        .iter()
        .map(|p| {
            let p = p.trim();
            (p.is_empty() || p.bytes().all(|b| b.is_ascii_digit())).then_some(!p.is_empty())
        })
        .collect::<Option<Vec<bool>>>()?;
    Some((now, changed))
}

/// The search for records modified at or after `t`.
pub fn modified_since(t: MwTime) -> String {
    format!("LastModifiedTime >= TextToDate(\"{t}\", DateFormYYYYMMDDHHMMSS)")
}

/// The search for the records modified within second `t` with a sequence number above `after`.
pub fn tie_search(t: MwTime, after: u64) -> String {
    format!(
        "LastModifiedTime >= TextToDate(\"{t}\", DateFormYYYYMMDDHHMMSS) and LastModifiedTime < TextToDate(\"{}\", DateFormYYYYMMDDHHMMSS) and SequenceNumber > {after}",
        t.add_secs(1)
    )
}

/// A page of `table` modified at or after `cursor` (everything when `None`), oldest first,
/// always from the start: a key-set restart, never an offset.
pub fn modified_page(table: &'static TableInfo, cursor: Option<MwTime>, limit: u32) -> ExportQuery {
    ExportQuery {
        table,
        search: cursor.map(modified_since),
        sort: Some("LastModifiedTime".into()),
        direction: Direction::Ascending,
        start: 0,
        limit: Some(limit),
        format: ExportFormat::Verbose,
    }
}

/// A page of the records modified within second `t` after sequence number `after`.
pub fn tie_page(table: &'static TableInfo, t: MwTime, after: u64, limit: u32) -> ExportQuery {
    ExportQuery {
        table,
        search: Some(tie_search(t, after)),
        sort: Some("SequenceNumber".into()),
        direction: Direction::Ascending,
        start: 0,
        limit: Some(limit),
        format: ExportFormat::Verbose,
    }
}

/// A page of `table` after sequence number `after`, in sequence order: key-set paging that
/// edits and deletes during the scan cannot shift.
pub fn seq_page(
    table: &'static TableInfo,
    after: u64,
    limit: u32,
    format: ExportFormat,
) -> ExportQuery {
    ExportQuery {
        table,
        search: Some(format!("SequenceNumber > {after}")),
        sort: Some("SequenceNumber".into()),
        direction: Direction::Ascending,
        start: 0,
        limit: Some(limit),
        format,
    }
}

/// The records of `table` with sequence numbers `first..=last`, in sequence order: how scans
/// re-read what differs, a range per request rather than a record per request.
pub fn seq_range(table: &'static TableInfo, first: u64, last: u64, limit: u32) -> ExportQuery {
    ExportQuery {
        table,
        search: Some(format!(
            "SequenceNumber >= {first} and SequenceNumber <= {last}"
        )),
        sort: Some("SequenceNumber".into()),
        direction: Direction::Ascending,
        start: 0,
        limit: Some(limit),
        format: ExportFormat::Verbose,
    }
}

/// The custom export format for fingerprints of `table`.
pub fn fingerprint_format(table: &TableInfo) -> String {
    match table.key {
        KeyField::Code(field) => format!("[sequencenumber]\\t[{STAMP}]\\t[{field}]\\n"),
        KeyField::Seq => format!("[sequencenumber]\\t[{STAMP}]\\n"),
    }
}

/// `text` as a MoneyWorks string constant: in backquotes, or in double quotes with `\` and
/// `"` escaped when it holds a backquote or a backslash (which starts an escape).
fn quoted(text: &str) -> String {
    if text.contains('`') || text.contains('\\') {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("`{text}`")
    }
}

/// The search for the records of `table` with any of the sequence numbers `seqs` (a run of
/// consecutive numbers as one range) or any of the codes `codes`. Codes compare the way
/// MoneyWorks compares text, without regard to letter case, so the caller sorts out exact
/// matches; a code holding `@`, which `=` takes as a wildcard, is compared by `>=` and `<=`
/// instead. `None` when there is nothing to find.
pub fn identity_search(table: &TableInfo, seqs: &[u64], codes: &[String]) -> Option<String> {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut terms = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        terms.push(if i == j {
            format!("SequenceNumber = {}", sorted[i])
        } else {
            format!(
                "(SequenceNumber >= {} and SequenceNumber <= {})",
                sorted[i], sorted[j]
            )
        });
        i = j + 1;
    }
    if let KeyField::Code(field) = table.key {
        for code in codes {
            let q = quoted(code);
            terms.push(if code.contains('@') {
                format!("({field} >= {q} and {field} <= {q})")
            } else {
                format!("{field} = {q}")
            });
        }
    }
    (!terms.is_empty()).then(|| terms.join(" or "))
}

/// The export of a batch of records by sequence number or code (see [`identity_search`]),
/// in sequence order and without a limit: the search bounds the reply.
pub fn by_identities(table: &'static TableInfo, seqs: &[u64], codes: &[String]) -> ExportQuery {
    ExportQuery {
        table,
        search: identity_search(table, seqs, codes),
        sort: Some("SequenceNumber".into()),
        direction: Direction::Ascending,
        start: 0,
        limit: None,
        format: ExportFormat::Verbose,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::table_info;

    /// Searches use TextToDate with the 14-digit format, and tie passes bound one second.
    #[test]
    fn searches_are_exact() {
        let t = MwTime::parse("20240101235959").expect("valid");
        assert_eq!(
            modified_since(t),
            "LastModifiedTime >= TextToDate(\"20240101235959\", DateFormYYYYMMDDHHMMSS)"
        );
        assert_eq!(
            tie_search(t, 7),
            "LastModifiedTime >= TextToDate(\"20240101235959\", DateFormYYYYMMDDHHMMSS) and LastModifiedTime < TextToDate(\"20240102000000\", DateFormYYYYMMDDHHMMSS) and SequenceNumber > 7"
        );
    }

    /// Batched searches join runs of sequence numbers into ranges and quote codes safely,
    /// comparing a code with `@` without the wildcard.
    #[test]
    fn identity_searches() {
        let name = table_info("Name").expect("known");
        assert_eq!(
            identity_search(name, &[9, 3, 4, 5, 7], &[]).as_deref(),
            Some(
                "(SequenceNumber >= 3 and SequenceNumber <= 5) or SequenceNumber = 7 or SequenceNumber = 9"
            )
        );
        assert_eq!(
            identity_search(name, &[], &["AC ME".into(), "A`\"B".into(), "A@B".into()]).as_deref(),
            Some("code = `AC ME` or code = \"A`\\\"B\" or (code >= `A@B` and code <= `A@B`)")
        );
        let tx = table_info("Transaction").expect("known");
        assert_eq!(
            identity_search(tx, &[2], &["X".into()]).as_deref(),
            Some("SequenceNumber = 2")
        );
        assert_eq!(identity_search(tx, &[], &[]), None);
    }

    /// The fingerprint format names the stamp explicitly and the code for code-keyed tables.
    #[test]
    fn fingerprint_formats() {
        let name = table_info("Name").expect("known");
        assert_eq!(
            fingerprint_format(name),
            "[sequencenumber]\\t[DateToText(lastmodifiedtime, DateFormYYYYMMDDHHMMSS)]\\t[code]\\n"
        );
    }
}
