//! Recovery classes shared by every error in the engine. It owns the classification only;
//! each module keeps its own `thiserror` enum and maps it here, so retry policy matches on a
//! class and never on message strings.

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: the same request may succeed later (licence limit, timeout, truncated reply).
    Retryable,
    /// Credentials were refused; retrying with the same ones will not help.
    Unauthenticated,
    /// Someone else changed what we were about to change (a compare-and-swap lost).
    Conflict,
    /// Input or configuration is wrong; a human must correct it.
    Invalid,
    /// The daemon must stop and a human must look (for example `main` moved without us).
    Fatal,
}

/// Implemented by every error type the engine can surface.
pub trait Classify {
    /// The recovery class of this error.
    fn class(&self) -> ErrorClass;
}

impl ErrorClass {
    /// The class as `/status`, `/metrics` and the logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Unauthenticated => "unauthenticated",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Invalid => "invalid",
            ErrorClass::Fatal => "fatal",
        }
    }

    /// What an operator does about an error of this class, in one sentence.
    pub fn action(self) -> &'static str {
        match self {
            ErrorClass::Retryable => {
                "nothing yet: mwsync retries by itself; if this persists, run `mwsync doctor` to see whether MoneyWorks and the git remote are reachable"
            }
            ErrorClass::Unauthenticated => {
                "correct the credentials (the MoneyWorks URL's login, the folder login or the git API key), then restart mwsync"
            }
            ErrorClass::Conflict => {
                "nothing: mwsync re-reads and tries again; if it repeats, check who else writes the same branch"
            }
            ErrorClass::Invalid => {
                "correct the setting or input the message names, then restart mwsync"
            }
            ErrorClass::Fatal => {
                "mwsync stopped for a human: do what the message says, then restart it"
            }
        }
    }
}
