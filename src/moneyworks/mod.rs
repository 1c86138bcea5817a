//! The seam between the engine and a MoneyWorks Datacentre: the `MoneyWorks` trait, the
//! request and reply types it speaks, and its error classification. It must not hold any
//! sync policy; the HTTP implementation lives in `client` (over `transport`), reply parsing
//! in `xml`.

pub mod client;
pub mod transport;
pub mod xml;

use std::future::Future;

use crate::error::{Classify, ErrorClass};
use crate::record::{Record, TableInfo};

/// What an export returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportFormat {
    /// `format=xml-verbose`: every field, system fields flagged.
    Verbose,
    /// A custom template such as `[sequencenumber]\t[lastmodifiedtime]\n`.
    Custom(String),
}

/// Sort direction of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

/// One `export` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportQuery {
    /// The table.
    pub table: &'static TableInfo,
    /// A MoneyWorks search expression, unencoded.
    pub search: Option<String>,
    /// A sort expression, unencoded.
    pub sort: Option<String>,
    /// Sort direction.
    pub direction: Direction,
    /// Offset of the first record.
    pub start: u64,
    /// Maximum number of records.
    pub limit: Option<u32>,
    /// Output format.
    pub format: ExportFormat,
}

/// A parsed verbose-XML export reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPage {
    /// The usable records in this reply.
    pub records: Vec<Record>,
    /// Records of this reply that cannot be used, each with what is known of it: they are
    /// quarantined, and the rest of the page goes on.
    pub rejected: Vec<xml::RejectedRecord>,
    /// Offset of the first record (`start`).
    pub start: u64,
    /// Records matching the search in total (`found`).
    pub found: u64,
}

/// A MoneyWorks error, classified for retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MwError {
    /// The server's licensed concurrent users are all busy.
    #[error(
        "MoneyWorks refused the request: its licensed concurrent users are all busy (HTTP 500)"
    )]
    LicenceLimit,
    /// Credentials were refused (`DoConnect failed -1` and friends).
    #[error(
        "MoneyWorks refused the login ({detail}); check the user, password and document in the MoneyWorks URL"
    )]
    Auth {
        /// What the server said, secrets removed.
        detail: String,
    },
    /// The request timed out or the connection failed.
    #[error("could not reach MoneyWorks at {endpoint}: {detail}")]
    Transport {
        /// Scheme, host and port, no credentials.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
    /// An HTTP error status other than the cases above.
    #[error("MoneyWorks answered HTTP {status} to `{command}`: {body}")]
    Http {
        /// The command (`export`, `import`, ...).
        command: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The reply could not be understood (malformed, truncated or the wrong shape).
    #[error("MoneyWorks sent an unusable reply to `{command}`: {detail}")]
    InvalidReply {
        /// The command.
        command: String,
        /// What was wrong, with the position where known.
        detail: String,
    },
    /// The server rejected imported data (`[ERROR] ...` in reply to an import).
    #[error("MoneyWorks rejected the import: {message}")]
    Rejected {
        /// The server's message, starting after `[ERROR]`.
        message: String,
    },
    /// The server answered `[ERROR] ...` to a read (an export or an evaluate): the read
    /// failed, nothing was changed.
    #[error("MoneyWorks could not carry out the `{command}`: it answered [ERROR] {message}")]
    ErrorReply {
        /// The command (`export`, `evaluate`).
        command: String,
        /// The server's message, starting after `[ERROR]`.
        message: String,
    },
    /// The reply was larger than the configured cap; it was not read further and is not
    /// asked for again.
    #[error(
        "MoneyWorks' reply to `{command}` is larger than max_reply_mb = {limit_mb} MB, so mwsync stopped reading it. \
         Lower page_size in .mwsync/config.toml (through the changes branch) or raise max_reply_mb (MWSYNC_MAX_REPLY_MB) and restart"
    )]
    TooLarge {
        /// The command.
        command: String,
        /// The cap, in megabytes.
        limit_mb: u64,
    },
}

impl Classify for MwError {
    fn class(&self) -> ErrorClass {
        match self {
            MwError::LicenceLimit
            | MwError::Transport { .. }
            | MwError::InvalidReply { .. }
            | MwError::ErrorReply { .. } => ErrorClass::Retryable,
            MwError::Http { status, .. } if *status >= 500 => ErrorClass::Retryable,
            MwError::Http { .. } | MwError::Auth { .. } | MwError::Rejected { .. } => {
                ErrorClass::Invalid
            }
            // Asking again would download the same oversized reply again.
            MwError::TooLarge { .. } => ErrorClass::NeedsHuman,
        }
    }
}

/// What the engine needs from a MoneyWorks server. Implemented over HTTP by
/// [`client::HttpMoneyWorks`]; tests may implement it directly.
pub trait MoneyWorks: Send + Sync + 'static {
    /// Runs a verbose-XML export and parses the reply.
    fn export(
        &self,
        query: &ExportQuery,
    ) -> impl Future<Output = Result<ExportPage, MwError>> + Send;
    /// Runs an export with a custom format and returns the raw text.
    fn export_text(
        &self,
        query: &ExportQuery,
    ) -> impl Future<Output = Result<String, MwError>> + Send;
    /// Posts an import body. Returns the plain-text reply; `[ERROR]` replies are `Rejected`.
    fn import(&self, body: &str) -> impl Future<Output = Result<String, MwError>> + Send;
    /// Evaluates an expression and returns the plain-text result.
    fn evaluate(&self, expr: &str) -> impl Future<Output = Result<String, MwError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each MoneyWorks failure says what happened and leaves "will retry" to the retry
    /// layer, which knows; and each is classed by what can fix it.
    #[test]
    fn failures_read_well_and_are_classed() {
        assert_eq!(
            MwError::LicenceLimit.to_string(),
            "MoneyWorks refused the request: its licensed concurrent users are all busy (HTTP 500)"
        );
        let cases = [
            (MwError::LicenceLimit, ErrorClass::Retryable),
            (
                MwError::ErrorReply {
                    command: "export".into(),
                    message: "x".into(),
                },
                ErrorClass::Retryable,
            ),
            (
                MwError::Rejected {
                    message: "x".into(),
                },
                ErrorClass::Invalid,
            ),
            (
                MwError::Auth {
                    detail: "DoConnect failed -1".into(),
                },
                ErrorClass::Invalid,
            ),
            (
                MwError::TooLarge {
                    command: "export".into(),
                    limit_mb: 256,
                },
                ErrorClass::NeedsHuman,
            ),
        ];
        for (e, class) in cases {
            assert_eq!(e.class(), class, "{e}");
        }
    }
}
