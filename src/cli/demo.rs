//! `mwsync demo`: the embedded default. Starts the fake MoneyWorks in-process with sample
//! data and a local bare git repository, runs the daemon with a short interval, and edits a
//! record now and then so incremental polls show in the log. Binary-only.

use std::path::PathBuf;

use clap::Args;

/// Flags of `mwsync demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps its bare repository and cache.
    #[arg(long, default_value = "mwsync-demo")]
    dir: PathBuf,
    /// Seconds between polls.
    #[arg(long, default_value_t = 5)]
    interval_secs: u64,
    /// Stop after this many polls (runs until Ctrl-C when absent).
    #[arg(long)]
    polls: Option<u64>,
}

/// Runs the demo; returns the exit code.
pub async fn run(_args: DemoArgs) -> u8 {
    eprintln!("mwsync demo: not wired yet");
    super::EXIT_OTHER
}
