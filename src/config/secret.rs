//! Secrets (passwords and API keys) as a type that cannot be printed: `Debug` and `Display`
//! show `***`. It owns that guarantee; it must not hand the value out except through
//! [`Secret::expose`], for the one place that sends it.

use std::fmt;

/// A secret string. It prints as `***` in `Debug` and `Display`, so it cannot leak into logs
/// or error messages by accident; [`Secret::expose`] is the only way to read it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How clap reads a secret from a flag value or an environment variable.
impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

/// How the `--config` file gives a secret: a plain TOML string.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}
