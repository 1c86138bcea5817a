//! `mwsim`: the simulator's command line. It only parses arguments and hands each subcommand
//! to its module; behaviour lives in the library.

use clap::{Parser, Subcommand};

/// The mwsync simulator.
#[derive(Parser)]
#[command(
    name = "mwsim",
    version,
    about = "Simulator for mwsync: fake MoneyWorks, git HTTP server, test data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a fake MoneyWorks Datacentre over HTTP.
    Serve(mwsync_sim::fake::cli::ServeArgs),
    /// Serve bare git repositories over smart HTTP, guarded by an API key.
    GitServe(mwsync_sim::gitserve::GitServeArgs),
    /// Write a generated dataset as verbose-XML exports.
    Generate(mwsync_sim::data::GenerateArgs),
    /// Anonymize real exports or mwsync record files.
    Anonymize(mwsync_sim::data::AnonymizeArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => mwsync_sim::fake::cli::serve(args).await,
        Command::GitServe(args) => mwsync_sim::gitserve::serve(args).await,
        Command::Generate(args) => mwsync_sim::data::generate_cmd(args),
        Command::Anonymize(args) => mwsync_sim::data::anonymize_cmd(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mwsim: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
