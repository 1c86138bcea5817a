//! The simulator's recovery classes: every error type of the simulator says whether trying
//! again could help. It owns the class names only; it must not know any error type.

/// What a caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The same request may succeed later.
    Retryable,
    /// Credentials were refused.
    Unauthenticated,
    /// Someone else changed the thing first.
    Conflict,
    /// The input was wrong; repeating it gives the same answer.
    Invalid,
    /// Something outside the input is broken (a file, a process).
    Fatal,
}

/// An error that knows its recovery class.
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;
}
