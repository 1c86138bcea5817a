//! Command-line surface of the `mwsync` binary (binary-only, not part of the engine
//! library): subcommands, flags → settings, logging set-up and exit codes. It must not hold
//! sync logic.

mod bar;
#[cfg(feature = "demo")]
mod demo;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mwsync::config::{DaemonArgs, DaemonConfig, FullSyncMode, LogFormat};
use mwsync::daemon::{ProductionMoneyWorks, RunOptions, connect, run};
use mwsync::engine::{Engine, EngineError};
use mwsync::error::{Classify, ErrorClass};
use mwsync::events::Events;
use mwsync::http::ServeOptions;
use mwsync::metrics::Metrics;
use mwsync::record::{KeyField, RecordKey, TABLES, record_path, table_info};
use mwsync::status::Board;
use mwsync::store::git::GitStore;
use tokio_util::sync::CancellationToken;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a one-shot command met a failure that may pass (run it again later), or an
/// unexpected internal error.
pub const EXIT_OTHER: u8 = 1;
/// Exit code: invalid configuration or input (credentials and typos included).
pub const EXIT_INVALID: u8 = 2;
/// Exit code: a human is needed (`main` moved, the remote refuses pushes, ...).
pub const EXIT_NEEDS_HUMAN: u8 = 3;
/// Exit code: a full sync in check mode found differences.
pub const EXIT_DRIFT: u8 = 4;

/// mwsync keeps a git repository and a MoneyWorks Datacentre document in step.
#[derive(Parser, Debug)]
#[command(name = "mwsync", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Poll MoneyWorks and commit changes to git, until stopped (Ctrl-C or SIGTERM).
    Run {
        /// Do one cycle and exit.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        conn: DaemonArgs,
    },
    /// Accept the remote sync branch's current tip as mwsync's own, after a human checked it.
    Rebaseline {
        #[command(flatten)]
        conn: DaemonArgs,
    },
    /// Re-read every record and compare with the repository: `--check` only reports
    /// differences (exit 4 when there are any), otherwise they are committed.
    Sync {
        /// Required: a full sync (the only kind this command runs).
        #[arg(long)]
        full: bool,
        /// Commit nothing; fail with the list of differences.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        conn: DaemonArgs,
    },
    /// Check the configuration, MoneyWorks, the git remote and the cache before running;
    /// prints one PASS or FAIL line per check, with the remedy, and exits 1 if any fails.
    /// It never writes to main or to MoneyWorks.
    Doctor {
        /// Fail the cache check below this much free space, in megabytes.
        #[arg(long, default_value_t = mwsync::doctor::DEFAULT_MIN_FREE_MB)]
        min_free_mb: u64,
        #[command(flatten)]
        conn: DaemonArgs,
    },
    /// Print the path of a record's file on main: `mwsync path Name ACME`, `mwsync path
    /// Transaction 12345` (see docs/paths.md).
    Path {
        /// The table (Name, Transaction, ...; any letter case).
        table: String,
        /// The record's code, or its sequence number for tables filed by number.
        key: String,
    },
    /// Run against an embedded fake MoneyWorks and a local bare git repository.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
}

/// Loads the daemon config and sets up logging, or reports the problem and gives the exit
/// code.
fn load_and_log(conn: &DaemonArgs) -> Result<DaemonConfig, u8> {
    match conn.load(|p| std::fs::read_to_string(p)) {
        Ok(cfg) => {
            init_logging(cfg.log_format);
            Ok(cfg)
        }
        Err(e) => {
            eprintln!("mwsync: invalid configuration: {e}");
            Err(EXIT_INVALID)
        }
    }
}

/// Loads the config and builds the production engine, or reports why not with the exit code.
fn connect_engine(
    conn: &DaemonArgs,
) -> Result<(DaemonConfig, Engine<ProductionMoneyWorks, GitStore>), u8> {
    let cfg = load_and_log(conn)?;
    match connect(&cfg, Events::new(), Arc::new(Metrics::new())) {
        Ok(engine) => Ok((cfg, engine)),
        Err(e) => Err(report(&e)),
    }
}
/// Sets up logging once: human sentences by default, JSON lines on request.
pub fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_writer(bar::make_writer)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The exit code for an engine error, by its class.
pub fn exit_code(e: &EngineError) -> u8 {
    match (e, e.class()) {
        (EngineError::Drift { .. }, _) => EXIT_DRIFT,
        (_, ErrorClass::Invalid) => EXIT_INVALID,
        (_, ErrorClass::NeedsHuman) => EXIT_NEEDS_HUMAN,
        _ => EXIT_OTHER,
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("stopping after the current step");
        token.cancel();
    });
}

/// Runs the chosen subcommand and returns the process exit code.
pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run { once, conn } => {
            let cfg = match load_and_log(&conn) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let daemon = match Daemon::start(&cfg).await {
                Ok(d) => d,
                Err(code) => return code,
            };
            daemon
                .run(
                    &cfg,
                    RunOptions {
                        once,
                        max_polls: None,
                        count_records: cfg.status_addr.is_some(),
                    },
                )
                .await
        }
        Command::Rebaseline { conn } => {
            let (cfg, mut engine) = match connect_engine(&conn) {
                Ok(pair) => pair,
                Err(code) => return code,
            };
            match engine.rebaseline().await {
                Ok(Some(tip)) => {
                    println!(
                        "mwsync now treats {} of `{}` as its own; polling resumes from its state",
                        tip, cfg.git.branch
                    );
                    EXIT_OK
                }
                Ok(None) => {
                    println!(
                        "`{}` does not exist on the remote; the next run creates it",
                        cfg.git.branch
                    );
                    EXIT_OK
                }
                Err(e) => report(&e),
            }
        }
        Command::Sync { full, check, conn } => {
            if !full {
                eprintln!("mwsync: `sync` needs --full (add --check to only compare)");
                return EXIT_INVALID;
            }
            let (_, mut engine) = match connect_engine(&conn) {
                Ok(pair) => pair,
                Err(code) => return code,
            };
            let shutdown = CancellationToken::new();
            cancel_on_signals(shutdown.clone());
            engine.set_shutdown(shutdown);
            let mode = if check {
                FullSyncMode::Check
            } else {
                FullSyncMode::Apply
            };
            match engine.full_sync(mode, None).await {
                Ok(_) if mode == FullSyncMode::Check => {
                    println!(
                        "full sync check finished: main holds what MoneyWorks holds (nothing was committed)"
                    );
                    EXIT_OK
                }
                Ok(0) => {
                    println!("full sync finished: main already held what MoneyWorks holds");
                    EXIT_OK
                }
                Ok(n) => {
                    println!(
                        "full sync finished: {n} records differed from MoneyWorks and are corrected on main"
                    );
                    EXIT_OK
                }
                Err(e) => report(&e),
            }
        }
        Command::Doctor { min_free_mb, conn } => {
            let loaded = conn.load(|p| std::fs::read_to_string(p));
            let report =
                mwsync::doctor::run(loaded, &mwsync::doctor::DoctorOptions { min_free_mb }).await;
            print!("{}", report.text());
            if report.passed() { EXIT_OK } else { EXIT_OTHER }
        }
        Command::Path { table, key } => print_path(&table, &key),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args).await,
    }
}

/// `mwsync path TABLE KEY`: the record's file on `main`, or why there is none.
fn print_path(table: &str, key: &str) -> u8 {
    let Some(info) = table_info(table) else {
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        eprintln!(
            "mwsync: {table:?} is not a table mwsync can track; the tables are {}",
            names.join(", ")
        );
        return EXIT_INVALID;
    };
    let key = match info.key {
        KeyField::Seq => match key.trim_start_matches('#').parse::<u64>() {
            Ok(n) => RecordKey::Seq(n),
            Err(_) => {
                eprintln!(
                    "mwsync: {} records are filed by sequence number, and {key:?} is not one",
                    info.name
                );
                return EXIT_INVALID;
            }
        },
        KeyField::Code(field) => {
            if key.is_empty() {
                eprintln!(
                    "mwsync: {} records are filed by their {field}, which is empty",
                    info.name
                );
                return EXIT_INVALID;
            }
            RecordKey::Code(key.to_string())
        }
    };
    println!("{}", record_path(info, &key));
    EXIT_OK
}

fn report(e: &EngineError) -> u8 {
    if e.class() == ErrorClass::Retryable {
        eprintln!("mwsync: {e}\nmwsync: this may pass by itself; run the command again later");
    } else {
        eprintln!("mwsync: {e}");
    }
    exit_code(e)
}

/// A daemon about to run: its bus, its status board, and the status server if configured.
pub struct Daemon {
    /// The event bus.
    pub events: Events,
    /// The status board (and metrics).
    pub board: Board,
    /// Where the status server listens, if it does (the demo prints it).
    #[cfg_attr(not(feature = "demo"), allow(dead_code))]
    pub status_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
}

impl Daemon {
    /// Creates the bus and the board, and starts the status server when `cfg` asks for one;
    /// on failure reports why and gives the exit code.
    pub async fn start(cfg: &DaemonConfig) -> Result<Daemon, u8> {
        let events = Events::new();
        let board = Board::new(events.instance(), &cfg.git.branch, &cfg.changes_branch);
        events.observe(Arc::new(board.clone()));
        let shutdown = CancellationToken::new();
        cancel_on_signals(shutdown.clone());
        let mut status_addr = None;
        if let Some(addr) = cfg.status_addr {
            let options = ServeOptions {
                keepalive: Duration::from_secs(cfg.status_keepalive_secs),
            };
            match mwsync::http::serve(
                addr,
                board.clone(),
                events.clone(),
                options,
                shutdown.clone(),
            )
            .await
            {
                Ok(bound) => {
                    tracing::info!(
                        "status page on http://{bound}/ (also /status, /events, /healthz, /metrics)"
                    );
                    status_addr = Some(bound);
                }
                Err(e) => {
                    eprintln!("mwsync: cannot serve status on {addr}: {e}");
                    return Err(EXIT_INVALID);
                }
            }
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr())
            && cfg.log_format == LogFormat::Human
        {
            bar::draw(&events);
        }
        Ok(Daemon {
            events,
            board,
            status_addr,
            shutdown,
        })
    }

    /// Runs the daemon until it stops; returns the exit code.
    pub async fn run(self, cfg: &DaemonConfig, options: RunOptions) -> u8 {
        let mut engine = match connect(cfg, self.events.clone(), self.board.metrics().clone()) {
            Ok(e) => e,
            Err(e) => return report(&e),
        };
        tracing::info!(moneyworks = %cfg.moneyworks.display_url(), branch = %cfg.git.branch, "mwsync starting");
        let result = run(&mut engine, &options, &self.board, &self.shutdown).await;
        self.shutdown.cancel();
        match result {
            Ok(()) => EXIT_OK,
            Err(e) => report(&e),
        }
    }
}
