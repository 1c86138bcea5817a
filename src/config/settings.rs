//! The daemon settings: where MoneyWorks and git are, how to log in, where the cache lives,
//! and the repo config to start from. Each setting is declared once, in [`Settings`]: clap
//! reads its flag and its `MWSYNC_*` variable (flags win), serde reads its key in the
//! `--config` file, and [`DaemonArgs::load`] merges the file under both and validates the
//! result into a [`DaemonConfig`]. It must not touch the network or git.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::endpoints::validate_branch;
use super::{
    ConfigError, GitTarget, MoneyWorksEndpoint, RepoConfig, RepoConfigFile, Secret, bad, toml_error,
};

/// How the git API key is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GitAuthKind {
    /// `Authorization: Basic base64(user:key)`.
    #[default]
    Basic,
    /// `Authorization: Bearer key`.
    Bearer,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Sentences for people.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Daemon settings before validation, one field per setting. The field name is the
/// `--config` file's key, the flag is the name with dashes, and `env` names the variable.
/// A hidden flag is a secret: it is accepted only from the environment or the file, since
/// every user of the machine can read a command line. No value is ever shown in `--help`.
/// `Debug` shows secrets (the MoneyWorks URL included, as it carries the password) as `***`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// MoneyWorks document URL with credentials: https://user:pass@host:6710/REST/Acme.moneyworks
    #[arg(
        long,
        env = "MWSYNC_MONEYWORKS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub moneyworks_url: Option<Secret>,
    /// Datacentre folder login name, when the server needs one.
    #[arg(long, env = "MWSYNC_MONEYWORKS_FOLDER", hide_env_values = true)]
    pub moneyworks_folder: Option<String>,
    /// Datacentre folder password (environment or file only).
    #[arg(
        long,
        env = "MWSYNC_MONEYWORKS_FOLDER_PASSWORD",
        hide = true,
        hide_env_values = true
    )]
    pub moneyworks_folder_password: Option<Secret>,
    /// Git remote (path, file://, http(s)://), branch after '#' (default main).
    #[arg(
        long,
        env = "MWSYNC_GIT_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub git_url: Option<String>,
    /// The git API key (environment or file only).
    #[arg(long, env = "MWSYNC_GIT_API_KEY", hide = true, hide_env_values = true)]
    pub git_api_key: Option<Secret>,
    /// A file holding the git API key (prefer this or MWSYNC_GIT_API_KEY over flags).
    #[arg(
        long,
        env = "MWSYNC_GIT_API_KEY_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub git_api_key_file: Option<PathBuf>,
    /// How the API key is sent: basic (as the password) or bearer.
    #[arg(long, env = "MWSYNC_GIT_AUTH", value_enum, hide_env_values = true)]
    pub git_auth: Option<GitAuthKind>,
    /// User name sent with Basic auth.
    #[arg(long, env = "MWSYNC_GIT_USER", hide_env_values = true)]
    pub git_user: Option<String>,
    /// Upload batches in flight at once, 1-64 (a gateway+http(s) git URL only).
    #[arg(
        long,
        env = "MWSYNC_GATEWAY_CONCURRENCY",
        value_name = "N",
        value_parser = whole_number::<usize>,
        hide_env_values = true
    )]
    pub gateway_concurrency: Option<usize>,
    /// Largest upload batch in bytes before compression, 65536-67108864, never above the
    /// gateway's own cap (a gateway+http(s) git URL only).
    #[arg(
        long,
        env = "MWSYNC_GATEWAY_BATCH_BYTES",
        value_name = "BYTES",
        value_parser = whole_number::<usize>,
        hide_env_values = true
    )]
    pub gateway_batch_bytes: Option<usize>,
    /// The branch writers push changes to.
    #[arg(long, env = "MWSYNC_CHANGES_BRANCH", hide_env_values = true)]
    pub changes_branch: Option<String>,
    /// Directory for the bare local git cache.
    #[arg(
        long,
        env = "MWSYNC_CACHE_DIR",
        value_name = "DIR",
        value_parser = any_path,
        hide_env_values = true
    )]
    pub cache_dir: Option<PathBuf>,
    /// Serve the status page, /status, /events, /healthz and /metrics here, e.g. 127.0.0.1:8686.
    #[arg(
        long,
        env = "MWSYNC_STATUS_ADDR",
        value_name = "ADDR",
        hide_env_values = true
    )]
    pub status_addr: Option<String>,
    /// Seconds of silence on /events before a keep-alive comment, 1-3600.
    #[arg(
        long,
        env = "MWSYNC_STATUS_KEEPALIVE_SECS",
        value_name = "SECS",
        value_parser = whole_number::<u64>,
        hide_env_values = true
    )]
    pub status_keepalive_secs: Option<u64>,
    /// Author and committer of mwsync's commits on main.
    #[arg(
        long,
        env = "MWSYNC_COMMIT_AUTHOR",
        value_name = "NAME <EMAIL>",
        hide_env_values = true
    )]
    pub commit_author: Option<String>,
    /// Log format: human or json.
    #[arg(long, env = "MWSYNC_LOG_FORMAT", value_enum, hide_env_values = true)]
    pub log_format: Option<LogFormat>,
    /// Create the sync branch even when the git remote has other branches (otherwise a
    /// missing branch is refused as a likely typo).
    #[arg(
        long,
        env = "MWSYNC_CREATE_BRANCH",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        hide_env_values = true
    )]
    pub create_branch: Option<bool>,
    /// Largest MoneyWorks reply read, in megabytes (default 256); a larger one is refused.
    #[arg(
        long,
        env = "MWSYNC_MAX_REPLY_MB",
        value_name = "MB",
        value_parser = whole_number::<u64>,
        hide_env_values = true
    )]
    pub max_reply_mb: Option<u64>,
    /// Seconds before a MoneyWorks request is abandoned (default 60).
    #[arg(
        long,
        env = "MWSYNC_REQUEST_TIMEOUT_SECS",
        value_name = "SECS",
        value_parser = whole_number::<u64>,
        hide_env_values = true
    )]
    pub request_timeout_secs: Option<u64>,
    /// Initial tables, comma-separated (used only until main has a config).
    #[arg(
        long,
        env = "MWSYNC_TABLES",
        value_delimiter = ',',
        value_parser = trimmed,
        hide_env_values = true
    )]
    pub tables: Option<Vec<String>>,
    /// Initial records per page, 10-100.
    #[arg(long, env = "MWSYNC_PAGE_SIZE", value_parser = whole_number::<u32>, hide_env_values = true)]
    pub page_size: Option<u32>,
    /// Initial seconds between polls.
    #[arg(
        long,
        env = "MWSYNC_POLL_INTERVAL_SECS",
        value_parser = whole_number::<u64>,
        hide_env_values = true
    )]
    pub poll_interval_secs: Option<u64>,
    /// Initial records per checkpoint commit.
    #[arg(
        long,
        env = "MWSYNC_CHECKPOINT_RECORDS",
        value_parser = whole_number::<u32>,
        hide_env_values = true
    )]
    pub checkpoint_records: Option<u32>,
}

/// The default of a setting as `--help` shows it, from the same constants validation uses.
fn shown_default(id: &str) -> String {
    let repo = RepoConfigFile::default();
    match id {
        "moneyworks_url" | "git_url" | "cache_dir" => "required".into(),
        "moneyworks_folder" | "moneyworks_folder_password" => "none".into(),
        "git_api_key" | "git_api_key_file" => "none; required for an http(s) git URL".into(),
        "git_auth" => "basic".into(),
        "git_user" => crate::store::git::DEFAULT_USER.into(),
        "gateway_concurrency" => DEFAULT_GATEWAY_CONCURRENCY.to_string(),
        "gateway_batch_bytes" => DEFAULT_GATEWAY_BATCH_BYTES.to_string(),
        "changes_branch" => DEFAULT_CHANGES_BRANCH.into(),
        "status_addr" => "off".into(),
        "status_keepalive_secs" => crate::http::sse::DEFAULT_KEEPALIVE_SECS.to_string(),
        "commit_author" => CommitAuthor::default().to_string(),
        "log_format" => "human".into(),
        "request_timeout_secs" => DEFAULT_REQUEST_TIMEOUT_SECS.to_string(),
        "max_reply_mb" => DEFAULT_MAX_REPLY_MB.to_string(),
        "create_branch" => "false".into(),
        "tables" => repo.tables.join(","),
        "page_size" => repo.page_size.to_string(),
        "poll_interval_secs" => repo.poll_interval_secs.to_string(),
        "checkpoint_records" => repo.checkpoint_records.to_string(),
        other => format!("(no default recorded for {other})"),
    }
}

/// Upload batches in flight at once through a gateway unless configured otherwise.
pub const DEFAULT_GATEWAY_CONCURRENCY: usize = 4;
/// The largest upload batch (before compression) unless configured otherwise: half the
/// gateway's default cap of 8 MiB, so one batch stays well inside a request's limits.
pub const DEFAULT_GATEWAY_BATCH_BYTES: usize = 4 << 20;

/// The branch writers push to unless configured otherwise.
pub const DEFAULT_CHANGES_BRANCH: &str = "changes";

/// Who authors and commits mwsync's commits on `main`: `Name <email>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitAuthor {
    /// The name.
    pub name: String,
    /// The email address.
    pub email: String,
}

impl Default for CommitAuthor {
    fn default() -> Self {
        CommitAuthor {
            name: crate::store::git::AUTHOR_NAME.into(),
            email: crate::store::git::AUTHOR_EMAIL.into(),
        }
    }
}

impl std::fmt::Display for CommitAuthor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

impl CommitAuthor {
    /// Parses `Name <email>`: a non-empty name and an address between angle brackets, with
    /// no angle brackets or line breaks anywhere else (git would refuse or mangle them).
    pub fn parse(text: &str) -> Result<CommitAuthor, String> {
        let shape = "not of the form `Name <email>`, e.g. `mwsync at Acme <it@acme.example>`";
        if text.contains(['\n', '\r', '\0']) {
            return Err(shape.into());
        }
        let (name, rest) = text.trim().split_once('<').ok_or(shape)?;
        let email = rest.strip_suffix('>').ok_or(shape)?;
        let (name, email) = (name.trim(), email.trim());
        let bad = |s: &str| s.is_empty() || s.contains(['<', '>', '\n', '\r', '\0']);
        if bad(name) || bad(email) {
            return Err(shape.into());
        }
        Ok(CommitAuthor {
            name: name.into(),
            email: email.into(),
        })
    }
}

/// A number from a flag or a variable, spaces around it allowed.
fn whole_number<T: FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| "not a whole number in range".to_string())
}

/// A path from a flag or a variable, empty included, so that validation can refuse an
/// empty one with a message naming the variable.
fn any_path(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

/// A list item from a flag or a variable, without the spaces around it.
fn trimmed(text: &str) -> Result<String, String> {
    Ok(text.trim().to_string())
}

/// The daemon settings of one command line: what clap read from flags and `MWSYNC_*`
/// variables, and the `--config` file they are merged over by [`DaemonArgs::load`]. Use it
/// with `#[command(flatten)]`.
#[derive(Clone)]
pub struct DaemonArgs {
    config: Option<PathBuf>,
    /// The settings as flags and environment gave them (for `Debug`, which masks secrets).
    given: Settings,
    /// What clap matched, so that only the settings actually given override the file.
    matches: ArgMatches,
}

impl std::fmt::Debug for DaemonArgs {
    // `ArgMatches` would print raw values, secrets included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonArgs")
            .field("config", &self.config)
            .field("given", &self.given)
            .finish()
    }
}

const CONFIG_ARG: &str = "config";

impl Args for DaemonArgs {
    fn augment_args(cmd: Command) -> Command {
        let mut cmd = Settings::augment_args(cmd);
        let ids: Vec<String> = Settings::augment_args(Command::new("mwsync"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        let mut secrets = String::from(
            "Secrets are read only from the environment or the --config file, never from flags:\n",
        );
        for id in &ids {
            let default = shown_default(id);
            cmd = cmd.mut_arg(id, |a| {
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                if a.is_hide_set() {
                    let env = a
                        .get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    secrets.push_str(&format!("  {env:<36} {help} [default: {default}]\n"));
                }
                a.help(format!("{help} [default: {default}]"))
            });
        }
        cmd.arg(
            clap::Arg::new(CONFIG_ARG)
                .long(CONFIG_ARG)
                .env("MWSYNC_CONFIG")
                .hide_env_values(true)
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("A TOML file with any of these settings (lowest precedence) [default: none]"),
        )
        .after_help(secrets)
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        DaemonArgs::augment_args(cmd)
    }
}

impl FromArgMatches for DaemonArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        refuse_secrets_on_the_command_line(matches)?;
        Ok(DaemonArgs {
            config: matches.get_one::<PathBuf>(CONFIG_ARG).cloned(),
            given: Settings::from_arg_matches(matches)?,
            matches: matches.clone(),
        })
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = DaemonArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

/// Refuses a hidden (secret) setting given as a flag, without repeating its value.
fn refuse_secrets_on_the_command_line(matches: &ArgMatches) -> Result<(), clap::Error> {
    let cmd = Settings::augment_args(Command::new("mwsync"));
    for arg in cmd.get_arguments().filter(|a| a.is_hide_set()) {
        let id = arg.get_id().as_str();
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--{} is not accepted on the command line, where every user of the machine can read it; set {env} or put {id} in the --config file\n",
                    arg.get_long().unwrap_or(id)
                ),
            ));
        }
    }
    Ok(())
}

impl DaemonArgs {
    /// The one place where the sources meet: the `--config` file, then the environment
    /// over it, then flags over both; validated before any network access. `read_file`
    /// reads the config file and the API key file (injected so tests need no files).
    pub fn load(
        &self,
        read_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        self.settings(&read_file)?.validate(read_file)
    }

    /// The merged settings, not yet validated.
    pub fn settings(
        &self,
        read_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Settings, ConfigError> {
        let mut merged = match &self.config {
            Some(path) => {
                let shown = path.display().to_string();
                let text = read_file(path).map_err(|e| ConfigError::File {
                    path: shown.clone(),
                    detail: e.to_string(),
                })?;
                Settings::from_file_text(&text, &shown)?
            }
            None => Settings::default(),
        };
        // Overwrites exactly the settings that a flag or a variable gave.
        merged
            .update_from_arg_matches(&self.matches)
            .expect("these matches already parsed into Settings when the command line was read");
        Ok(merged)
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
    /// Upload batches in flight at once (used with a gateway URL).
    pub gateway_concurrency: usize,
    /// Largest upload batch in bytes before compression (used with a gateway URL).
    pub gateway_batch_bytes: usize,
    /// The branch writers push to.
    pub changes_branch: String,
    /// The bare cache directory.
    pub cache_dir: PathBuf,
    /// The status server address, if on.
    pub status_addr: Option<std::net::SocketAddr>,
    /// Seconds of silence on `/events` before a keep-alive comment.
    pub status_keepalive_secs: u64,
    /// Author and committer of mwsync's commits.
    pub commit_author: CommitAuthor,
    /// Log format.
    pub log_format: LogFormat,
    /// Seconds before a MoneyWorks request is abandoned.
    pub request_timeout_secs: u64,
    /// Create the sync branch even when the remote has other branches.
    pub create_branch: bool,
    /// Largest MoneyWorks reply read, in bytes.
    pub max_reply_bytes: u64,
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

/// Default seconds before a MoneyWorks request is abandoned.
const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 60;
/// Default largest MoneyWorks reply, in megabytes.
const DEFAULT_MAX_REPLY_MB: u64 = 256;

impl Settings {
    /// Reads a TOML config file; `path` names it in errors, which never quote its lines.
    pub fn from_file_text(text: &str, path: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: path.to_string(),
            detail: toml_error(text, &e),
        })
    }

    /// Validates everything into a [`DaemonConfig`]. `read_key_file` reads the API key file
    /// (injected so validation stays free of I/O in tests).
    pub fn validate(
        self,
        read_key_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        let moneyworks = self.moneyworks()?;
        let git_url = self
            .git_url
            .as_deref()
            .ok_or_else(|| ConfigError::Missing {
                field: "git_url".into(),
                hint: "pass --git-url, set MWSYNC_GIT_URL, or put it in the --config file".into(),
            })?;
        let git = GitTarget::parse(git_url)?;
        let api_key = self.api_key(&read_key_file)?;
        if api_key.is_none() && (git.url.starts_with("http://") || git.url.starts_with("https://"))
        {
            return Err(ConfigError::Missing {
                field: "git_api_key".into(),
                hint: "an http(s) git URL needs an API key: set MWSYNC_GIT_API_KEY or MWSYNC_GIT_API_KEY_FILE".into(),
            });
        }
        let changes_branch = self
            .changes_branch
            .clone()
            .unwrap_or_else(|| DEFAULT_CHANGES_BRANCH.into());
        validate_branch("changes_branch", &changes_branch)?;
        if changes_branch == git.branch {
            return Err(bad(
                "changes_branch",
                &changes_branch,
                format!("the same as the sync branch `{}`", git.branch),
            ));
        }
        let cache_dir = self.cache_dir.clone().ok_or_else(|| ConfigError::Missing {
            field: "cache_dir".into(),
            hint: "pass --cache-dir or set MWSYNC_CACHE_DIR (a directory mwsync may create)".into(),
        })?;
        if cache_dir.as_os_str().to_string_lossy().trim().is_empty() {
            // An empty MWSYNC_CACHE_DIR would otherwise mean the current directory.
            return Err(bad(
                "cache_dir",
                "(empty)",
                "empty; give a directory mwsync may create, or unset MWSYNC_CACHE_DIR",
            ));
        }
        Ok(DaemonConfig {
            moneyworks,
            git,
            api_key,
            git_auth: self.git_auth.unwrap_or_default(),
            git_user: self.git_user.clone().unwrap_or_else(|| "mwsync".into()),
            gateway_concurrency: self.gateway_concurrency()?,
            gateway_batch_bytes: self.gateway_batch_bytes()?,
            changes_branch,
            cache_dir,
            status_addr: self.status_addr()?,
            status_keepalive_secs: self.status_keepalive_secs()?,
            commit_author: match &self.commit_author {
                None => CommitAuthor::default(),
                Some(text) => CommitAuthor::parse(text)
                    .map_err(|problem| bad("commit_author", format!("{text:?}"), problem))?,
            },
            log_format: self.log_format.unwrap_or_default(),
            request_timeout_secs: self.request_timeout_secs()?,
            create_branch: self.create_branch.unwrap_or(false),
            max_reply_bytes: self.max_reply_mb()? * crate::moneyworks::transport::MB,
            initial_repo: self.initial_repo()?,
        })
    }

    fn moneyworks(&self) -> Result<MoneyWorksEndpoint, ConfigError> {
        let url =
            self.moneyworks_url.as_ref().ok_or_else(|| {
                ConfigError::Missing {
            field: "moneyworks_url".into(),
            hint:
                "pass --moneyworks-url, set MWSYNC_MONEYWORKS_URL, or put it in the --config file"
                    .into(),
        }
            })?;
        let folder = match (&self.moneyworks_folder, &self.moneyworks_folder_password) {
            (Some(name), Some(pw)) => Some((name.clone(), pw.clone())),
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
        MoneyWorksEndpoint::parse(url.expose(), folder)
    }

    fn api_key(
        &self,
        read_key_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        match (&self.git_api_key, &self.git_api_key_file) {
            (Some(k), _) if k.expose().trim().is_empty() => Err(bad(
                "git_api_key",
                "(empty)",
                "empty; unset it or give the key",
            )),
            (Some(k), _) => Ok(Some(Secret::new(k.expose().trim()))),
            (None, Some(path)) => {
                let text = read_key_file(path).map_err(|e| ConfigError::KeyFile {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                let key = text.lines().next().unwrap_or("").trim().to_string();
                if key.is_empty() {
                    return Err(bad(
                        "git_api_key_file",
                        path.display(),
                        "an empty file; put the key on its first line",
                    ));
                }
                Ok(Some(Secret::new(key)))
            }
            (None, None) => Ok(None),
        }
    }

    fn status_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        self.status_addr
            .as_ref()
            .map(|a| {
                a.parse::<std::net::SocketAddr>()
                    .map_err(|_| bad("status_addr", a, "not an address like 127.0.0.1:8686"))
            })
            .transpose()
    }

    fn gateway_concurrency(&self) -> Result<usize, ConfigError> {
        let n = self
            .gateway_concurrency
            .unwrap_or(DEFAULT_GATEWAY_CONCURRENCY);
        if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad("gateway_concurrency", n, "out of range 1..=64"))
        }
    }

    fn gateway_batch_bytes(&self) -> Result<usize, ConfigError> {
        let n = self
            .gateway_batch_bytes
            .unwrap_or(DEFAULT_GATEWAY_BATCH_BYTES);
        if (65_536..=67_108_864).contains(&n) {
            Ok(n)
        } else {
            Err(bad(
                "gateway_batch_bytes",
                n,
                "out of range 65536..=67108864",
            ))
        }
    }

    fn status_keepalive_secs(&self) -> Result<u64, ConfigError> {
        let secs = self
            .status_keepalive_secs
            .unwrap_or(crate::http::sse::DEFAULT_KEEPALIVE_SECS);
        if (1..=3600).contains(&secs) {
            Ok(secs)
        } else {
            Err(bad("status_keepalive_secs", secs, "out of range 1..=3600"))
        }
    }

    fn request_timeout_secs(&self) -> Result<u64, ConfigError> {
        let secs = self
            .request_timeout_secs
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS);
        if (1..=3600).contains(&secs) {
            Ok(secs)
        } else {
            Err(bad("request_timeout_secs", secs, "out of range 1..=3600"))
        }
    }

    fn max_reply_mb(&self) -> Result<u64, ConfigError> {
        let mb = self.max_reply_mb.unwrap_or(DEFAULT_MAX_REPLY_MB);
        if (1..=16_384).contains(&mb) {
            Ok(mb)
        } else {
            Err(bad("max_reply_mb", mb, "out of range 1..=16384"))
        }
    }

    fn initial_repo(&self) -> Result<RepoConfig, ConfigError> {
        let defaults = RepoConfigFile::default();
        RepoConfigFile {
            tables: self.tables.clone().unwrap_or(defaults.tables.clone()),
            page_size: self.page_size.unwrap_or(defaults.page_size),
            poll_interval_secs: self
                .poll_interval_secs
                .unwrap_or(defaults.poll_interval_secs),
            checkpoint_records: self
                .checkpoint_records
                .unwrap_or(defaults.checkpoint_records),
            ..defaults
        }
        .validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            moneyworks_url: Some(Secret::new(
                "https://admin:s3cret@mw.example:6710/REST/Acme.moneyworks",
            )),
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
            moneyworks_url: Some(Secret::new("ftp://admin:s3cret@h/REST/A")),
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
            super::super::encode_document(&sub.document),
            "Folder%2Fsub%20folder%2FDoc.moneyworks"
        );
    }

    /// A `gateway+` URL names the gateway's API and repository; git reads without the prefix;
    /// malformed ones are refused naming what to write instead.
    #[test]
    fn gateway_urls() {
        let t =
            GitTarget::parse("gateway+https://gw.example/acme/git/books.git#sync").expect("valid");
        assert_eq!(t.url, "https://gw.example/acme/git/books.git");
        assert_eq!(t.branch, "sync");
        let gw = t.gateway.expect("a gateway");
        assert_eq!(
            (gw.api.as_str(), gw.repo.as_str()),
            ("https://gw.example/acme", "books.git")
        );
        assert!(
            GitTarget::parse("https://gw.example/git/books.git")
                .expect("valid")
                .gateway
                .is_none()
        );
        for bad in [
            "gateway+https://gw.example/books.git",
            "gateway+https://gw.example/git/",
            "gateway+file:///srv/git/books.git",
            "gateway+/srv/git/books.git",
            "gateway+https://gw.example/git/../x",
        ] {
            let err = GitTarget::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("git_url"), "{bad}: {err}");
        }
        let err = GitTarget::parse("gateway+https://me:tok@gw.example/git/b.git")
            .expect_err("credentials");
        assert!(!err.to_string().contains("tok"), "{err}");
        let cfg = Settings {
            git_url: Some("gateway+http://127.0.0.1:8787/git/books.git".into()),
            git_api_key: Some(Secret::new("gateway-token-123456")),
            ..base()
        }
        .validate(no_file)
        .expect("valid");
        assert_eq!(
            (cfg.gateway_concurrency, cfg.gateway_batch_bytes),
            (DEFAULT_GATEWAY_CONCURRENCY, DEFAULT_GATEWAY_BATCH_BYTES)
        );
        for (c, b) in [(Some(0), None), (Some(65), None), (None, Some(1000))] {
            let err = Settings {
                gateway_concurrency: c,
                gateway_batch_bytes: b,
                ..base()
            }
            .validate(no_file)
            .expect_err("out of range");
            assert!(err.to_string().contains("gateway_"), "{err}");
        }
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

    /// An empty `MWSYNC_CACHE_DIR` is refused rather than taken as the current directory.
    #[test]
    fn an_empty_cache_dir_is_refused() {
        let err = Settings {
            cache_dir: Some("".into()),
            ..base()
        }
        .validate(no_file)
        .expect_err("empty");
        assert_eq!(
            err.to_string(),
            "cache_dir = (empty) is empty; give a directory mwsync may create, or unset MWSYNC_CACHE_DIR"
        );
    }

    /// An empty or missing key file is refused with the file named, as a key file.
    #[test]
    fn key_file_problems_are_named() {
        let s = Settings {
            git_api_key_file: Some("/etc/mwsync/key".into()),
            ..base()
        };
        let missing = s.clone().validate(no_file).expect_err("unreadable");
        assert_eq!(
            missing.to_string(),
            "cannot read the git API key file /etc/mwsync/key (git_api_key_file): no file in this test"
        );
        let err = s.clone().validate(|_| Ok("\n".into())).expect_err("empty");
        assert!(err.to_string().contains("/etc/mwsync/key"), "{err}");
        let cfg = s
            .clone()
            .validate(|_| Ok("abc123\n".into()))
            .expect("valid");
        let err = Settings {
            git_api_key: Some(Secret::new("  ")),
            ..s
        }
        .validate(no_file)
        .expect_err("empty key");
        assert!(err.to_string().contains("git_api_key"), "{err}");
        assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("abc123"));
    }

    fn parse(args: &[&str]) -> Result<DaemonArgs, clap::Error> {
        let cmd = DaemonArgs::augment_args(Command::new("mwsync"));
        let matches = cmd.try_get_matches_from(args)?;
        DaemonArgs::from_arg_matches(&matches)
    }

    /// Flags beat the `--config` file, which fills in what no flag gave. (The environment
    /// sits between them; the process scenarios pin that with real variables.)
    #[test]
    fn flags_are_merged_over_the_file() {
        let args =
            parse(&["mwsync", "--page-size", " 20", "--config", "/etc/f.toml"]).expect("parses");
        let file = "page_size = 30\npoll_interval_secs = 800\ngit_url = \"/srv/b.git\"\n";
        let merged = args
            .settings(|p| {
                assert_eq!(p, Path::new("/etc/f.toml"));
                Ok(file.into())
            })
            .expect("valid file");
        assert_eq!(merged.page_size, Some(20));
        assert_eq!(merged.git_url.as_deref(), Some("/srv/b.git"));
        if std::env::var_os("MWSYNC_POLL_INTERVAL_SECS").is_none() {
            assert_eq!(merged.poll_interval_secs, Some(800));
        }
        let err = parse(&["mwsync", "--config", "/nope"])
            .expect("parses")
            .load(|_| Err(std::io::Error::other("no such file")))
            .expect_err("unreadable file");
        assert_eq!(
            err.to_string(),
            "cannot use config file /nope: no such file"
        );
    }

    /// A secret given as a flag is refused without echoing it, and help never shows values.
    #[test]
    fn secrets_are_refused_on_the_command_line() {
        let err =
            parse(&["mwsync", "--git-api-key", "tok-on-the-command-line"]).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("--git-api-key is not accepted on the command line")
                && text.contains("MWSYNC_GIT_API_KEY"),
            "{text}"
        );
        assert!(!text.contains("tok-on-the-command-line"), "{text}");
        assert!(parse(&["mwsync", "--moneyworks-folder-password", "pw"]).is_err());
        let cmd = Settings::augment_args(Command::new("mwsync"));
        for arg in cmd.get_arguments() {
            assert!(
                arg.is_hide_env_values_set(),
                "--help would show the value of {}",
                arg.get_id()
            );
            assert!(
                arg.get_env().is_some(),
                "{} has no environment variable",
                arg.get_id()
            );
        }
    }

    /// `--help` shows every setting with its variable and its default, and lists the secrets
    /// that have no flag with their variables.
    #[test]
    fn help_lists_every_setting_with_variable_and_default() {
        let mut cmd = DaemonArgs::augment_args(Command::new("run"));
        let help = cmd.render_long_help().to_string();
        let settings = Settings::augment_args(Command::new("mwsync"));
        for arg in settings.get_arguments() {
            let env = arg
                .get_env()
                .expect("every setting has a variable")
                .to_string_lossy()
                .into_owned();
            assert!(help.contains(&env), "{env} missing from --help:\n{help}");
            assert!(
                !shown_default(arg.get_id().as_str()).starts_with("(no default"),
                "{} has no default for --help",
                arg.get_id()
            );
        }
        for shown in [
            "[env: MWSYNC_PAGE_SIZE]",
            "[default: 50]",
            "[default: mwsync <mwsync@localhost>]",
            "MWSYNC_GIT_API_KEY",
            "MWSYNC_MONEYWORKS_FOLDER_PASSWORD",
            "never from flags",
        ] {
            assert!(help.contains(shown), "{shown} missing from --help:\n{help}");
        }
    }

    /// A commit author is `Name <email>`; anything else is refused with the shape expected.
    #[test]
    fn commit_author_is_name_and_email() {
        let cfg = Settings {
            commit_author: Some(" mwsync at Acme <it@acme.example> ".into()),
            ..base()
        }
        .validate(no_file)
        .expect("valid");
        assert_eq!(
            cfg.commit_author,
            CommitAuthor {
                name: "mwsync at Acme".into(),
                email: "it@acme.example".into()
            }
        );
        for text in ["it@acme.example", "<it@acme.example>", "A <b> c", "A <b\n>"] {
            let err = Settings {
                commit_author: Some(text.into()),
                ..base()
            }
            .validate(no_file)
            .expect_err("refused");
            assert!(
                err.to_string().starts_with("commit_author = ")
                    && err.to_string().contains("`Name <email>`"),
                "{err}"
            );
        }
    }

    /// No settings struct shows a secret in `Debug`: not the MoneyWorks password (inside
    /// its URL), the folder password or the git API key.
    #[test]
    fn debug_never_shows_secrets() {
        let settings = Settings {
            moneyworks_folder: Some("Clients".into()),
            moneyworks_folder_password: Some(Secret::new("folder-pw-77")),
            git_api_key: Some(Secret::new("api-key-88")),
            ..base()
        };
        let args = parse(&[
            "mwsync",
            "--moneyworks-url",
            "https://admin:s3cret@h/REST/A.moneyworks",
        ])
        .expect("parses");
        let cfg = settings.clone().validate(no_file).expect("valid");
        let shown = [
            format!("{settings:?}"),
            format!("{args:?}"),
            format!("{cfg:?}"),
            format!("{:?}", cfg.moneyworks),
            format!("{:?}", cfg.git),
            format!("{:?}", cfg.api_key),
        ];
        for text in &shown {
            for secret in ["s3cret", "folder-pw-77", "api-key-88"] {
                assert!(!text.contains(secret), "{secret} shown in {text}");
            }
        }
        assert_eq!(cfg.secrets(), vec!["s3cret", "folder-pw-77", "api-key-88"]);
    }
}
