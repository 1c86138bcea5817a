//! Recovery classes shared by every error in the engine. It owns the classification only;
//! each module keeps its own `thiserror` enum and maps it here, so retry policy matches on a
//! class and never on message strings.

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
