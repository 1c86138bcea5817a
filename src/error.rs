//! Recovery classes shared by every error in the engine: one taxonomy, by what can fix a
//! failure. It owns the classification only; each module keeps its own `thiserror` enum and
//! maps it here, so retry policy, quarantine, parking and exit codes match on a class and
//! never on message strings.

/// What can fix an error, and so what the caller does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
