//! Configuration: the daemon config (endpoints and secrets, from flags, environment and an
//! optional TOML file, in that precedence) and the repo config (`.mwsync/config.toml` on
//! `main`, no secrets). It owns parsing, layering and validation into typed values; it must
//! not touch the network or git.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Classify, ErrorClass};
use crate::record::{TableInfo, table_info};

/// The repo config file on `main`.
pub const REPO_CONFIG_PATH: &str = ".mwsync/config.toml";

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

fn bad(field: &str, value: impl fmt::Display, problem: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        field: field.to_string(),
        value: value.to_string(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Repo config

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

// ---------------------------------------------------------------------------------------------
// Daemon config

/// How the git API key is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GitAuthKind {
    /// `Authorization: Basic base64(user:key)`.
    #[default]
    Basic,
    /// `Authorization: Bearer key`.
    Bearer,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Sentences for people.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Daemon settings before validation. Each source (flags, environment, file) fills one of
/// these; [`Settings::layered`] merges them with the first source winning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// MoneyWorks document URL with document credentials: `https://user:pass@host:6710/REST/Acme.moneyworks`.
    pub moneyworks_url: Option<String>,
    /// Datacentre folder login name (when the server wants folder credentials).
    pub moneyworks_folder: Option<String>,
    /// Datacentre folder password.
    pub moneyworks_folder_password: Option<String>,
    /// Git remote URL; the branch follows `#` (default `main`).
    pub git_url: Option<String>,
    /// The git API key.
    pub git_api_key: Option<String>,
    /// A file holding the git API key (first line).
    pub git_api_key_file: Option<PathBuf>,
    /// `basic` or `bearer`.
    pub git_auth: Option<GitAuthKind>,
    /// The user name sent with Basic auth.
    pub git_user: Option<String>,
    /// The branch writers push changes to.
    pub changes_branch: Option<String>,
    /// Directory for the bare local git cache.
    pub cache_dir: Option<PathBuf>,
    /// Address for the local status server (`127.0.0.1:8686`); off when absent.
    pub status_addr: Option<String>,
    /// `human` or `json`.
    pub log_format: Option<LogFormat>,
    /// Seconds before a MoneyWorks request is abandoned.
    pub request_timeout_secs: Option<u64>,
    /// Initial repo config, used only when `main` has none yet.
    pub tables: Option<Vec<String>>,
    /// Initial page size.
    pub page_size: Option<u32>,
    /// Initial poll interval.
    pub poll_interval_secs: Option<u64>,
    /// Initial checkpoint size.
    pub checkpoint_records: Option<u32>,
}

macro_rules! layer {
    ($self:ident, $lower:ident, $($f:ident),*) => {
        Settings { $($f: $self.$f.or($lower.$f)),* }
    };
}

/// Environment variable names, one per setting.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("MWSYNC_MONEYWORKS_URL", "moneyworks_url"),
    ("MWSYNC_MONEYWORKS_FOLDER", "moneyworks_folder"),
    (
        "MWSYNC_MONEYWORKS_FOLDER_PASSWORD",
        "moneyworks_folder_password",
    ),
    ("MWSYNC_GIT_URL", "git_url"),
    ("MWSYNC_GIT_API_KEY", "git_api_key"),
    ("MWSYNC_GIT_API_KEY_FILE", "git_api_key_file"),
    ("MWSYNC_GIT_AUTH", "git_auth"),
    ("MWSYNC_GIT_USER", "git_user"),
    ("MWSYNC_CHANGES_BRANCH", "changes_branch"),
    ("MWSYNC_CACHE_DIR", "cache_dir"),
    ("MWSYNC_STATUS_ADDR", "status_addr"),
    ("MWSYNC_LOG_FORMAT", "log_format"),
    ("MWSYNC_REQUEST_TIMEOUT_SECS", "request_timeout_secs"),
    ("MWSYNC_PAGE_SIZE", "page_size"),
    ("MWSYNC_POLL_INTERVAL_SECS", "poll_interval_secs"),
    ("MWSYNC_CHECKPOINT_RECORDS", "checkpoint_records"),
    ("MWSYNC_TABLES", "tables"),
];

impl Settings {
    /// Fills every unset value of `self` from `lower`.
    pub fn layered(self, lower: Settings) -> Settings {
        layer!(
            self,
            lower,
            moneyworks_url,
            moneyworks_folder,
            moneyworks_folder_password,
            git_url,
            git_api_key,
            git_api_key_file,
            git_auth,
            git_user,
            changes_branch,
            cache_dir,
            status_addr,
            log_format,
            request_timeout_secs,
            tables,
            page_size,
            poll_interval_secs,
            checkpoint_records
        )
    }

    /// Reads a TOML config file.
    pub fn from_file_text(text: &str, path: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: path.to_string(),
            detail: toml_error(text, &e),
        })
    }

    /// Reads the `MWSYNC_*` variables from `vars` (pass `std::env::vars()`).
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        for (key, value) in vars {
            let Some((_, field)) = ENV_VARS.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            let shown = if key.contains("PASSWORD") || key.ends_with("API_KEY") {
                "***".to_string()
            } else {
                value.clone()
            };
            let num = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad(&key, &shown, "not a whole number"))
            };
            match *field {
                "moneyworks_url" => s.moneyworks_url = Some(value),
                "moneyworks_folder" => s.moneyworks_folder = Some(value),
                "moneyworks_folder_password" => s.moneyworks_folder_password = Some(value),
                "git_url" => s.git_url = Some(value),
                "git_api_key" => s.git_api_key = Some(value),
                "git_api_key_file" => s.git_api_key_file = Some(PathBuf::from(value)),
                "git_auth" => {
                    s.git_auth = Some(match value.trim() {
                        "basic" => GitAuthKind::Basic,
                        "bearer" => GitAuthKind::Bearer,
                        _ => return Err(bad(&key, &shown, "not one of basic, bearer")),
                    })
                }
                "git_user" => s.git_user = Some(value),
                "changes_branch" => s.changes_branch = Some(value),
                "cache_dir" => s.cache_dir = Some(PathBuf::from(value)),
                "status_addr" => s.status_addr = Some(value),
                "log_format" => {
                    s.log_format = Some(match value.trim() {
                        "human" => LogFormat::Human,
                        "json" => LogFormat::Json,
                        _ => return Err(bad(&key, &shown, "not one of human, json")),
                    })
                }
                "request_timeout_secs" => s.request_timeout_secs = Some(num(&value)?),
                "page_size" => {
                    s.page_size = Some(
                        u32::try_from(num(&value)?).map_err(|_| bad(&key, &shown, "too large"))?,
                    )
                }
                "poll_interval_secs" => s.poll_interval_secs = Some(num(&value)?),
                "checkpoint_records" => {
                    s.checkpoint_records = Some(
                        u32::try_from(num(&value)?).map_err(|_| bad(&key, &shown, "too large"))?,
                    )
                }
                "tables" => {
                    s.tables = Some(
                        value
                            .split(',')
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty())
                            .collect(),
                    )
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Validates everything into a [`DaemonConfig`]. `read_key_file` reads the API key file
    /// (injected so validation stays free of I/O in tests).
    pub fn validate(
        self,
        read_key_file: impl Fn(&std::path::Path) -> std::io::Result<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        let mw_url = self.moneyworks_url.ok_or_else(|| ConfigError::Missing {
            field: "moneyworks_url".into(),
            hint:
                "pass --moneyworks-url, set MWSYNC_MONEYWORKS_URL, or put it in the --config file"
                    .into(),
        })?;
        let folder = match (self.moneyworks_folder, self.moneyworks_folder_password) {
            (Some(name), Some(pw)) => Some((name, Secret::new(pw))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    field: "moneyworks_folder_password".into(),
                    hint: "a folder login needs its password (MWSYNC_MONEYWORKS_FOLDER_PASSWORD)"
                        .into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    field: "moneyworks_folder".into(),
                    hint: "a folder password needs the folder name (MWSYNC_MONEYWORKS_FOLDER)"
                        .into(),
                });
            }
        };
        let moneyworks = MoneyWorksEndpoint::parse(&mw_url, folder)?;
        let git_url = self.git_url.ok_or_else(|| ConfigError::Missing {
            field: "git_url".into(),
            hint: "pass --git-url, set MWSYNC_GIT_URL, or put it in the --config file".into(),
        })?;
        let git = GitTarget::parse(&git_url)?;
        let api_key = match (self.git_api_key, self.git_api_key_file) {
            (Some(k), _) if k.trim().is_empty() => {
                return Err(bad(
                    "git_api_key",
                    "(empty)",
                    "empty; unset it or give the key",
                ));
            }
            (Some(k), _) => Some(Secret::new(k.trim())),
            (None, Some(path)) => {
                let text = read_key_file(&path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    detail: format!("cannot read the git API key file: {e}"),
                })?;
                let key = text.lines().next().unwrap_or("").trim().to_string();
                if key.is_empty() {
                    return Err(bad(
                        "git_api_key_file",
                        path.display(),
                        "an empty file; put the key on its first line",
                    ));
                }
                Some(Secret::new(key))
            }
            (None, None) => None,
        };
        if api_key.is_none() && (git.url.starts_with("http://") || git.url.starts_with("https://"))
        {
            return Err(ConfigError::Missing {
                field: "git_api_key".into(),
                hint: "an http(s) git URL needs an API key: set MWSYNC_GIT_API_KEY or MWSYNC_GIT_API_KEY_FILE".into(),
            });
        }
        let changes_branch = self.changes_branch.unwrap_or_else(|| "changes".into());
        validate_branch("changes_branch", &changes_branch)?;
        if changes_branch == git.branch {
            return Err(bad(
                "changes_branch",
                &changes_branch,
                format!("the same as the sync branch `{}`", git.branch),
            ));
        }
        let cache_dir = self.cache_dir.ok_or_else(|| ConfigError::Missing {
            field: "cache_dir".into(),
            hint: "pass --cache-dir or set MWSYNC_CACHE_DIR (a directory mwsync may create)".into(),
        })?;
        let status_addr = match self.status_addr {
            Some(a) => Some(
                a.parse::<std::net::SocketAddr>()
                    .map_err(|_| bad("status_addr", &a, "not an address like 127.0.0.1:8686"))?,
            ),
            None => None,
        };
        let request_timeout_secs = self.request_timeout_secs.unwrap_or(60);
        if !(1..=3600).contains(&request_timeout_secs) {
            return Err(bad(
                "request_timeout_secs",
                request_timeout_secs,
                "out of range 1..=3600",
            ));
        }
        let defaults = RepoConfigFile::default();
        let initial_repo = RepoConfigFile {
            tables: self.tables.unwrap_or(defaults.tables.clone()),
            page_size: self.page_size.unwrap_or(defaults.page_size),
            poll_interval_secs: self
                .poll_interval_secs
                .unwrap_or(defaults.poll_interval_secs),
            checkpoint_records: self
                .checkpoint_records
                .unwrap_or(defaults.checkpoint_records),
            ..defaults
        }
        .validate()?;
        Ok(DaemonConfig {
            moneyworks,
            git,
            api_key,
            git_auth: self.git_auth.unwrap_or_default(),
            git_user: self.git_user.unwrap_or_else(|| "mwsync".into()),
            changes_branch,
            cache_dir,
            status_addr,
            log_format: self.log_format.unwrap_or_default(),
            request_timeout_secs,
            initial_repo,
        })
    }
}

/// A TOML error as "line L, column C: message", without the quoted source line that the
/// library's own text includes: that line may hold a password or an API key.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
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

fn validate_branch(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            name,
            "not a valid branch name (letters, digits, - _ . /)",
        ))
    }
}

/// Where MoneyWorks is and how to log in. `Debug` never shows passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyWorksEndpoint {
    /// `scheme://host:port`, no credentials.
    pub origin: String,
    /// The document path as the user wrote it after `/REST/`, decoded (`Acme.moneyworks`,
    /// `Folder/sub folder/Doc.moneyworks`).
    pub document: String,
    /// Document login name.
    pub user: String,
    /// Document password.
    pub password: Secret,
    /// Folder (Datacentre realm) login, when the server needs one.
    pub folder: Option<(String, Secret)>,
}

impl MoneyWorksEndpoint {
    /// Parses `http(s)://user:pass@host:port/REST/Document.moneyworks`.
    pub fn parse(
        url_text: &str,
        folder: Option<(String, Secret)>,
    ) -> Result<MoneyWorksEndpoint, ConfigError> {
        let masked = mask_url(url_text);
        let field = "moneyworks_url";
        let url = url::Url::parse(url_text)
            .map_err(|e| bad(field, &masked, format!("not a URL ({e})")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad(field, &masked, "not http:// or https://"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad(field, &masked, "missing a host"))?;
        // MoneyWorks listens on 6710 unless the administrator changed it; a URL without a
        // port means that, not the scheme's 80 or 443.
        let port = url.port().unwrap_or(6710);
        let origin = format!("{}://{}:{}", url.scheme(), host, port);
        let path = url.path();
        let document_enc = path
            .strip_prefix("/REST/")
            .ok_or_else(|| {
                bad(
                    field,
                    &masked,
                    "its path must be /REST/<document>, e.g. /REST/Acme.moneyworks",
                )
            })?
            .trim_end_matches('/');
        let document = percent_encoding::percent_decode_str(document_enc)
            .decode_utf8()
            .map_err(|_| {
                bad(
                    field,
                    &masked,
                    "the document path is not UTF-8 once decoded",
                )
            })?
            .to_string();
        if document.is_empty() {
            return Err(bad(field, &masked, "it names no document after /REST/"));
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .to_string();
        if user.is_empty() {
            return Err(bad(
                field,
                &masked,
                "it carries no document user; write https://user:password@host:6710/REST/Document",
            ));
        }
        let password = url
            .password()
            .map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .to_string()
            })
            .unwrap_or_default();
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(field, &masked, "it must not have a query or fragment"));
        }
        Ok(MoneyWorksEndpoint {
            origin,
            document,
            user,
            password: Secret::new(password),
            folder,
        })
    }

    /// The URL without credentials, for logs.
    pub fn display_url(&self) -> String {
        format!("{}/REST/{}", self.origin, encode_document(&self.document))
    }
}

/// Percent-encodes a document path for a REST URL; `/` between folders becomes `%2F`.
pub fn encode_document(document: &str) -> String {
    percent_encoding::utf8_percent_encode(document, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_")
}

/// Replaces the password in a URL with `***`, for messages. Works on text that is not a
/// valid URL too.
pub fn mask_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{}:***@{}",
                &text[..scheme_end + 3],
                user,
                &rest[at + 1..]
            )
        }
        None => text.to_string(),
    }
}

/// The git remote and the branch mwsync owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTarget {
    /// Local path, `file://` or `http(s)://` URL, without the fragment.
    pub url: String,
    /// The sync branch, from the fragment (default `main`).
    pub branch: String,
}

impl GitTarget {
    /// Parses `URL[#branch]`. Refuses credentials in the URL: the API key goes separately.
    pub fn parse(text: &str) -> Result<GitTarget, ConfigError> {
        let (url, branch) = match text.split_once('#') {
            Some((u, b)) => (u.to_string(), b.to_string()),
            None => (text.to_string(), "main".to_string()),
        };
        if url.is_empty() {
            return Err(bad("git_url", mask_url(text), "empty"));
        }
        if url.contains("://") {
            let scheme = &url[..url.find("://").unwrap_or(0)];
            if !["http", "https", "file"].contains(&scheme) {
                return Err(bad(
                    "git_url",
                    mask_url(text),
                    "not a local path, file://, http:// or https:// URL",
                ));
            }
            if mask_url(&url) != url {
                return Err(bad(
                    "git_url",
                    mask_url(text),
                    "carrying credentials; give the API key in MWSYNC_GIT_API_KEY instead",
                ));
            }
        }
        validate_branch("git_url branch", &branch)?;
        Ok(GitTarget { url, branch })
    }
}

/// The validated daemon config. `Debug` masks secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// MoneyWorks endpoint and credentials.
    pub moneyworks: MoneyWorksEndpoint,
    /// The git remote and sync branch.
    pub git: GitTarget,
    /// The git API key, if any.
    pub api_key: Option<Secret>,
    /// How the key is sent.
    pub git_auth: GitAuthKind,
    /// User name for Basic auth.
    pub git_user: String,
    /// The branch writers push to.
    pub changes_branch: String,
    /// The bare cache directory.
    pub cache_dir: PathBuf,
    /// The status server address, if on.
    pub status_addr: Option<std::net::SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Seconds before a MoneyWorks request is abandoned.
    pub request_timeout_secs: u64,
    /// Repo config to write when `main` has none.
    pub initial_repo: RepoConfig,
}

impl DaemonConfig {
    /// Every secret this config holds, for scrubbing and for tests that prove none leaks.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![];
        if !self.moneyworks.password.expose().is_empty() {
            out.push(self.moneyworks.password.expose().to_string());
        }
        if let Some((_, pw)) = &self.moneyworks.folder {
            out.push(pw.expose().to_string());
        }
        if let Some(k) = &self.api_key {
            out.push(k.expose().to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            moneyworks_url: Some(
                "https://admin:s3cret@mw.example:6710/REST/Acme.moneyworks".into(),
            ),
            git_url: Some("/srv/git/books.git".into()),
            cache_dir: Some("/var/cache/mwsync".into()),
            ..Settings::default()
        }
    }

    fn no_file(_: &std::path::Path) -> std::io::Result<String> {
        Err(std::io::Error::other("no file in this test"))
    }

    /// A page size outside 10..=100 is refused with the exact message the docs promise.
    #[test]
    fn page_size_out_of_range_names_field_value_and_range() {
        let err = Settings {
            page_size: Some(5),
            ..base()
        }
        .validate(no_file)
        .expect_err("5 is too small");
        assert_eq!(err.to_string(), "page_size = 5 is out of range 10..=100");
    }

    /// Flags beat environment, which beats the file.
    #[test]
    fn layers_in_precedence_order() {
        let flags = Settings {
            page_size: Some(20),
            ..Settings::default()
        };
        let env = Settings::from_env([
            ("MWSYNC_PAGE_SIZE".to_string(), "30".to_string()),
            ("MWSYNC_POLL_INTERVAL_SECS".into(), "700".into()),
        ])
        .expect("valid env");
        let file = Settings::from_file_text(
            "poll_interval_secs = 800\ncheckpoint_records = 9\n",
            "f.toml",
        )
        .expect("valid file");
        let merged = flags.layered(env).layered(file).layered(base());
        let cfg = merged.validate(no_file).expect("valid");
        assert_eq!(cfg.initial_repo.file.page_size, 20);
        assert_eq!(cfg.initial_repo.file.poll_interval_secs, 700);
        assert_eq!(cfg.initial_repo.file.checkpoint_records, 9);
    }

    /// The MoneyWorks URL yields origin, document and credentials, and no message shows the password.
    #[test]
    fn moneyworks_url_is_parsed_and_masked() {
        let cfg = base().validate(no_file).expect("valid");
        assert_eq!(cfg.moneyworks.origin, "https://mw.example:6710");
        assert_eq!(cfg.moneyworks.document, "Acme.moneyworks");
        assert_eq!(cfg.moneyworks.user, "admin");
        assert_eq!(cfg.moneyworks.password.expose(), "s3cret");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let err = Settings {
            moneyworks_url: Some("ftp://admin:s3cret@h/REST/A".into()),
            ..base()
        }
        .validate(no_file)
        .expect_err("ftp is refused");
        assert!(
            err.to_string().contains("moneyworks_url") && !err.to_string().contains("s3cret"),
            "{err}"
        );
        let sub = MoneyWorksEndpoint::parse(
            "http://u:p@h:6710/REST/Folder%2Fsub%20folder%2FDoc.moneyworks",
            None,
        )
        .expect("valid");
        assert_eq!(sub.document, "Folder/sub folder/Doc.moneyworks");
        let no_port = MoneyWorksEndpoint::parse("https://u:p@mw.example/REST/A.moneyworks", None)
            .expect("valid");
        assert_eq!(no_port.origin, "https://mw.example:6710");
        assert_eq!(
            encode_document(&sub.document),
            "Folder%2Fsub%20folder%2FDoc.moneyworks"
        );
    }

    /// The git URL's fragment names the branch, and credentials in it are refused unseen.
    #[test]
    fn git_url_branch_and_credentials() {
        assert_eq!(
            GitTarget::parse("https://git.example/books.git#sync")
                .expect("valid")
                .branch,
            "sync"
        );
        assert_eq!(
            GitTarget::parse("/srv/books.git").expect("valid").branch,
            "main"
        );
        let err = GitTarget::parse("https://me:tok@git.example/b.git").expect_err("credentials");
        assert!(!err.to_string().contains("tok"), "{err}");
        assert!(GitTarget::parse("/srv/b.git#bad..name").is_err());
        let err = Settings {
            git_url: Some("https://git.example/b.git".into()),
            ..base()
        }
        .validate(no_file)
        .expect_err("needs a key");
        assert!(err.to_string().contains("MWSYNC_GIT_API_KEY"), "{err}");
    }

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

    /// A config file error names the line but never repeats its text, which may hold a secret.
    #[test]
    fn config_file_errors_do_not_echo_secrets() {
        let err = Settings::from_file_text(
            "git_url = \"/srv/b.git\"\nmoneyworks_password = \"s3cret-value\"\n",
            "/etc/mwsync.toml",
        )
        .expect_err("unknown key");
        let text = err.to_string();
        assert!(
            text.contains("/etc/mwsync.toml") && text.contains("line 2"),
            "{text}"
        );
        assert!(!text.contains("s3cret-value"), "{text}");
        let err = Settings::from_file_text("git_api_key = tok-unquoted-123\n", "f")
            .expect_err("bad value");
        assert!(!err.to_string().contains("tok-unquoted-123"), "{err}");
    }

    /// An empty or missing key file is refused with the file named.
    #[test]
    fn key_file_problems_are_named() {
        let s = Settings {
            git_api_key_file: Some("/etc/mwsync/key".into()),
            ..base()
        };
        let err = s.clone().validate(|_| Ok("\n".into())).expect_err("empty");
        assert!(err.to_string().contains("/etc/mwsync/key"), "{err}");
        let cfg = s
            .clone()
            .validate(|_| Ok("abc123\n".into()))
            .expect("valid");
        let err = Settings {
            git_api_key: Some("  ".into()),
            ..s
        }
        .validate(no_file)
        .expect_err("empty key");
        assert!(err.to_string().contains("git_api_key"), "{err}");
        assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("abc123"));
    }
}
