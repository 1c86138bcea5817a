//! Configuration, in four parts: the repo config on `main` (`repo`), the daemon settings from
//! flags, environment and the `--config` file, declared once and validated once
//! (`settings`), the MoneyWorks and git endpoints (`endpoints`) and secrets (`secret`). It owns
//! parsing, merging and validation into typed values and the shared error type; it must not
//! touch the network or git.

mod endpoints;
mod repo;
mod secret;
mod settings;

use std::fmt;

pub use endpoints::{
    GATEWAY_SCHEME_PREFIX, GatewayEndpoint, GitTarget, MoneyWorksEndpoint, encode_document,
    mask_url,
};
pub use repo::{
    DEFAULT_CHECKPOINT_RECORDS, DEFAULT_FINGERPRINT_INTERVAL_SECS, DEFAULT_MAX_DELETE_PERCENT,
    DEFAULT_PAGE_SIZE, DEFAULT_POLL_INTERVAL_SECS, FullSyncFile, FullSyncMode, REPO_CONFIG_PATH,
    RepoConfig, RepoConfigFile,
};
pub use secret::Secret;
pub use settings::{
    CommitAuthor, DEFAULT_CHANGES_BRANCH, DaemonArgs, DaemonConfig, GitAuthKind, LogFormat,
    Settings,
};

use crate::error::{Classify, ErrorClass};

/// A configuration value that is not allowed, or a config source that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside what is allowed.
    #[error("{field} = {value} is {problem}")]
    Value {
        /// The setting's name as the user writes it.
        field: String,
        /// The value given (secrets masked).
        value: String,
        /// What is wrong and what is allowed, e.g. `out of range 10..=100`.
        problem: String,
    },
    /// A required setting is absent.
    #[error("{field} is not set; {hint}")]
    Missing {
        /// The setting's name.
        field: String,
        /// Where it can be given.
        hint: String,
    },
    /// The git API key file cannot be read.
    #[error("cannot read the git API key file {path} (git_api_key_file): {detail}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// A config file that cannot be read or parsed.
    #[error("cannot use config file {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What went wrong (with line and column for syntax errors).
        detail: String,
    },
}

impl Classify for ConfigError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

pub(crate) fn bad(
    field: &str,
    value: impl fmt::Display,
    problem: impl Into<String>,
) -> ConfigError {
    ConfigError::Value {
        field: field.to_string(),
        value: value.to_string(),
        problem: problem.into(),
    }
}

/// A TOML error as "line L, column C: message", without the quoted source line that the
/// library's own text includes: that line may hold a password or an API key.
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}
