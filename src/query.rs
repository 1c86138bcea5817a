//! The MoneyWorks requests mwsync makes, as data: the modified-since page, the tie pass of
//! one second, key-set pages by sequence number, one record by key, the fingerprint format
//! and the clock expression. Pure; it must not send anything or judge replies.

use crate::moneyworks::{Direction, ExportFormat, ExportQuery};
use crate::mwtime::MwTime;
use crate::record::{KeyField, RecordKey, TableInfo};

/// The expression that reads the server clock.
pub const CLOCK_EXPRESSION: &str = "DateToText(Time(), DateFormYYYYMMDDHHMMSS)";

/// Lines per fingerprint page (fingerprints are short; they are not record pages).
pub const FINGERPRINT_PAGE: u32 = 2000;

/// The stamp in fingerprints, formatted explicitly: a bare `[lastmodifiedtime]` may come out
/// in the server's local date format, which would make every record look changed.
const STAMP: &str = "DateToText(lastmodifiedtime, DateFormYYYYMMDDHHMMSS)";

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

/// A MoneyWorks search that finds exactly one record by key (case-insensitive text
/// comparison is filtered afterwards).
pub fn key_search(table: &TableInfo, key: &RecordKey) -> String {
    match (table.key, key) {
        (KeyField::Code(field), RecordKey::Code(code)) if !code.contains('`') => {
            format!("{field} = `{code}`")
        }
        (KeyField::Code(field), RecordKey::Code(code)) => {
            format!(
                "{field} = \"{}\"",
                code.replace('\\', "\\\\").replace('"', "\\\"")
            )
        }
        (_, RecordKey::Seq(n)) => format!("SequenceNumber = {n}"),
        (KeyField::Seq, RecordKey::Code(c)) => format!("SequenceNumber = {c}"),
    }
}

/// The export of one record by key (a few, in case a code matches in other letter cases).
pub fn by_key(table: &'static TableInfo, key: &RecordKey) -> ExportQuery {
    ExportQuery {
        table,
        search: Some(key_search(table, key)),
        sort: None,
        direction: Direction::Ascending,
        start: 0,
        limit: Some(10),
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

    /// Key searches quote codes safely.
    #[test]
    fn key_searches() {
        let name = table_info("Name").expect("known");
        assert_eq!(
            key_search(name, &RecordKey::Code("AC ME".into())),
            "code = `AC ME`"
        );
        assert_eq!(
            key_search(name, &RecordKey::Code("A`\"B".into())),
            "code = \"A`\\\"B\""
        );
        let tx = table_info("Transaction").expect("known");
        assert_eq!(key_search(tx, &RecordKey::Seq(9)), "SequenceNumber = 9");
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
