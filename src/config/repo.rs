//! The repo config: `.mwsync/config.toml` on `main`, what to sync and how often. It owns the
//! file's fields, defaults, canonical text and validation; it holds no secrets and must not
//! read anything but the text it is given.

use serde::{Deserialize, Serialize};

use super::{ConfigError, bad, toml_error};
use crate::record::{TableInfo, table_info};

/// The repo config file on `main`.
pub const REPO_CONFIG_PATH: &str = ".mwsync/config.toml";

/// How a full sync treats differences between MoneyWorks and `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FullSyncMode {
    /// Commit the fixes.
    #[default]
    Apply,
    /// Commit nothing and fail with the list of differences.
    Check,
}

/// `.mwsync/config.toml` as written on `main`. Carries no secrets. Every field has a default,
/// so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepoConfigFile {
    /// MoneyWorks tables to keep in step, by internal name.
    pub tables: Vec<String>,
    /// Records per export page, 10 to 100.
    pub page_size: u32,
    /// Seconds between polls. MoneyWorks advises against polling more often than every 10 minutes.
    pub poll_interval_secs: u64,
    /// Most records per commit during a pull; each checkpoint is pushed before the next.
    pub checkpoint_records: u32,
    /// Extra seconds to re-read before the marker on each poll, for servers whose records
    /// become visible after their modification stamp.
    pub lookback_secs: u64,
    /// Seconds between fingerprint scans that find deleted and otherwise missed records
    /// (0 turns them off).
    pub fingerprint_interval_secs: u64,
    /// Largest share (percent) of a table a single scan may delete before mwsync stops and
    /// asks a human.
    pub max_delete_percent: u32,
    /// Most files one write on `changes` may change; a larger write is refused as a whole
    /// before anything is read or sent, so no write holds MoneyWorks or memory for long.
    pub max_write_files: u32,
    /// Full-sync settings.
    pub full_sync: FullSyncFile,
}

/// The `[full_sync]` table of the repo config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FullSyncFile {
    /// `apply` commits fixes; `check` only reports differences.
    pub mode: FullSyncMode,
    /// Any new value here (for example a date or a ticket number) requests one full sync.
    pub request: String,
}

fn default_tables() -> Vec<String> {
    ["Account", "Name", "Product", "Job", "Transaction"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Default records per page.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Default seconds between polls (the interval MoneyWorks recommends as a minimum).
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 600;
/// Default records per checkpoint commit.
pub const DEFAULT_CHECKPOINT_RECORDS: u32 = 1000;
/// Default seconds between fingerprint scans (one day).
pub const DEFAULT_FINGERPRINT_INTERVAL_SECS: u64 = 86_400;
/// Default largest share of a table one scan may delete.
pub const DEFAULT_MAX_DELETE_PERCENT: u32 = 20;
/// Default most files one write may change.
pub const DEFAULT_MAX_WRITE_FILES: u32 = 1000;

impl Default for RepoConfigFile {
    fn default() -> Self {
        RepoConfigFile {
            tables: default_tables(),
            page_size: DEFAULT_PAGE_SIZE,
            poll_interval_secs: DEFAULT_POLL_INTERVAL_SECS,
            checkpoint_records: DEFAULT_CHECKPOINT_RECORDS,
            lookback_secs: 0,
            fingerprint_interval_secs: DEFAULT_FINGERPRINT_INTERVAL_SECS,
            max_delete_percent: DEFAULT_MAX_DELETE_PERCENT,
            max_write_files: DEFAULT_MAX_WRITE_FILES,
            full_sync: FullSyncFile::default(),
        }
    }
}

impl Default for FullSyncFile {
    fn default() -> Self {
        FullSyncFile {
            mode: FullSyncMode::Apply,
            request: String::new(),
        }
    }
}

/// The validated repo config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConfig {
    /// The file form it came from (what is written back to `main`).
    pub file: RepoConfigFile,
    /// The tracked tables, in the order given.
    pub tables: Vec<&'static TableInfo>,
}

impl RepoConfigFile {
    /// Checks every value and resolves table names.
    pub fn validate(self) -> Result<RepoConfig, ConfigError> {
        if !(10..=100).contains(&self.page_size) {
            return Err(bad("page_size", self.page_size, "out of range 10..=100"));
        }
        if self.poll_interval_secs == 0 || self.poll_interval_secs > 7 * 86_400 {
            return Err(bad(
                "poll_interval_secs",
                self.poll_interval_secs,
                "out of range 1..=604800",
            ));
        }
        if !(1..=1_000_000).contains(&self.checkpoint_records) {
            return Err(bad(
                "checkpoint_records",
                self.checkpoint_records,
                "out of range 1..=1000000",
            ));
        }
        if self.lookback_secs > 86_400 {
            return Err(bad(
                "lookback_secs",
                self.lookback_secs,
                "out of range 0..=86400",
            ));
        }
        if self.max_delete_percent > 100 {
            return Err(bad(
                "max_delete_percent",
                self.max_delete_percent,
                "out of range 0..=100",
            ));
        }
        if !(1..=100_000).contains(&self.max_write_files) {
            return Err(bad(
                "max_write_files",
                self.max_write_files,
                "out of range 1..=100000",
            ));
        }
        if self.tables.is_empty() {
            return Err(bad("tables", "[]", "empty; name at least one table"));
        }
        let mut tables: Vec<&'static TableInfo> = Vec::new();
        for name in &self.tables {
            let known: Vec<&str> = crate::record::TABLES.iter().map(|t| t.name).collect();
            let table = table_info(name).ok_or_else(|| {
                bad(
                    "tables",
                    format!("{name:?}"),
                    format!("not a known table; known: {}", known.join(", ")),
                )
            })?;
            if tables.contains(&table) {
                return Err(bad("tables", format!("{name:?}"), "listed twice"));
            }
            tables.push(table);
        }
        Ok(RepoConfig { file: self, tables })
    }

    /// Parses the TOML text of `.mwsync/config.toml`; `origin` names where it came from.
    pub fn parse(text: &str, origin: &str) -> Result<RepoConfigFile, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: origin.to_string(),
            detail: toml_error(text, &e),
        })
    }

    /// The canonical TOML text, as committed to `main`.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self)
            .expect("the repo config always serialises because it holds only plain values");
        format!("# mwsync repo config. No secrets here. See docs/configuration.md.\n{body}")
    }
}

impl RepoConfig {
    /// A short stable hash of the canonical file text, for commit trailers.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.file.to_toml().as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each class of bad repo config is refused naming the field: unknown table, duplicate,
    /// unknown key, bad type.
    #[test]
    fn repo_config_errors_name_the_problem() {
        let unknown = RepoConfigFile {
            tables: vec!["Nmae".into()],
            ..RepoConfigFile::default()
        };
        assert!(
            unknown
                .validate()
                .expect_err("unknown")
                .to_string()
                .contains("\"Nmae\" is not a known table")
        );
        let twice = RepoConfigFile {
            tables: vec!["Name".into(), "name".into()],
            ..RepoConfigFile::default()
        };
        assert!(
            twice
                .validate()
                .expect_err("dup")
                .to_string()
                .contains("listed twice")
        );
        let err =
            RepoConfigFile::parse("page_sise = 10\n", ".mwsync/config.toml").expect_err("typo");
        assert!(err.to_string().contains("page_sise"), "{err}");
        let err = RepoConfigFile::parse("page_size = \"ten\"\n", ".mwsync/config.toml")
            .expect_err("type");
        assert!(err.to_string().contains(".mwsync/config.toml"), "{err}");
    }

    /// The canonical repo config text parses back to the same value and holds no secret field.
    #[test]
    fn repo_config_round_trips() {
        let file = RepoConfigFile::default();
        let text = file.to_toml();
        assert_eq!(RepoConfigFile::parse(&text, "x").expect("parses"), file);
        assert!(!text.contains("password") && !text.contains("key"));
    }
}
