//! Recovery classes shared by every error in the engine: one taxonomy, by what can fix a
//! failure. It owns the classification only; each module keeps its own `thiserror` enum and
//! maps it here, so retry policy, quarantine, parking and exit codes match on a class and
//! never on message strings.

/// What can fix an error, and so what the caller does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: the same request may succeed later (licence limit, timeout, truncated
    /// reply, an `[ERROR]` answer to an export). Retried with backoff; the daemon goes on.
    Retryable,
    /// One record is unusable (it cannot be parsed, keyed or written as XML). It is
    /// quarantined and everything else goes on; it is retried at every fingerprint scan.
    Record,
    /// Someone else changed what we were about to change (a compare-and-swap lost). The
    /// caller resolves it (adopt mwsync's own earlier push, or stop for a human).
    Conflict,
    /// Input or configuration is wrong, credentials included: exit code 2.
    Invalid,
    /// Only a human can fix it (`main` moved, the remote refuses a push for good, a mass
    /// delete): exit code 3, or a parked state on `/status` while the daemon keeps running.
    NeedsHuman,
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
            ErrorClass::Record => "record",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Invalid => "invalid",
            ErrorClass::NeedsHuman => "needs_human",
        }
    }

    /// What an operator does about an error of this class, in one sentence.
    pub fn action(self) -> &'static str {
        match self {
            ErrorClass::Retryable => {
                "nothing yet: mwsync retries by itself; if this persists, run `mwsync doctor` to see whether MoneyWorks and the git remote are reachable"
            }
            ErrorClass::Record => {
                "look at the record /status lists under quarantined and correct it in MoneyWorks; mwsync reads it again at each fingerprint scan"
            }
            ErrorClass::Conflict => {
                "nothing: mwsync re-reads and tries again; if it repeats, check who else writes the same branch"
            }
            ErrorClass::Invalid => {
                "correct the setting, credentials or input the message names, then restart mwsync"
            }
            ErrorClass::NeedsHuman => {
                "a human must act: do what the message says; a parked daemon goes on by itself once the cause is fixed, a stopped one needs a restart"
            }
        }
    }
}
