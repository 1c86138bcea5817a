//! `mwsim serve`: flags, and running the server until interrupted.

use std::path::PathBuf;

use crate::time::DateTime;

use super::{ClockMode, Sim};

/// Flags of `mwsim serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:6710")]
    pub addr: std::net::SocketAddr,
    /// Seed of the generated sample data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Load records from the verbose-XML export files in this directory instead.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Generated Names.
    #[arg(long, default_value_t = 20)]
    pub names: usize,
    /// Generated Accounts.
    #[arg(long, default_value_t = 30)]
    pub accounts: usize,
    /// Generated Products.
    #[arg(long, default_value_t = 15)]
    pub products: usize,
    /// Generated Jobs.
    #[arg(long, default_value_t = 5)]
    pub jobs: usize,
    /// Generated Transactions.
    #[arg(long, default_value_t = 60)]
    pub transactions: usize,
    /// The generated size of any other table, as `TABLE=N` (repeatable).
    #[arg(long = "size", value_name = "TABLE=N", value_parser = crate::data::parse_size)]
    pub sizes: Vec<(String, usize)>,
    /// Document path clients must name.
    #[arg(long, default_value = "Acme.moneyworks")]
    pub document: String,
    /// Document user.
    #[arg(long, default_value = "Admin")]
    pub user: String,
    /// Document password.
    #[arg(
        long,
        env = "MWSIM_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub password: String,
    /// Require this folder login (Datacentre realm) too.
    #[arg(long, requires = "folder_password")]
    pub folder: Option<String>,
    /// Password of the folder login.
    #[arg(long, env = "MWSIM_FOLDER_PASSWORD", hide_env_values = true)]
    pub folder_password: Option<String>,
    /// `manual`: the clock moves only through `/_sim/clock`; `real`: it follows elapsed
    /// time from `--clock-start`.
    #[arg(long, value_enum, default_value_t = ClockMode::Manual)]
    pub clock: ClockMode,
    /// Start value of the clock, YYYYMMDDHHMMSS (generated data ends there).
    #[arg(long, default_value = "20260630120000")]
    pub clock_start: DateTime,
    /// HTTP status of a refused login.
    #[arg(long, default_value_t = 401)]
    pub auth_fail_status: u16,
}

/// Runs the fake server until interrupted (Ctrl-C). Prints `listening on http://ADDR` on
/// stdout once it accepts connections.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut builder = Sim::builder()
        .addr(args.addr)
        .seed(args.seed)
        .names(args.names)
        .accounts(args.accounts)
        .products(args.products)
        .jobs(args.jobs)
        .transactions(args.transactions)
        .sizes(args.sizes.iter().cloned())
        .document(&args.document)
        .login(&args.user, &args.password)
        .clock(args.clock_start)
        .clock_mode(args.clock)
        .auth_fail_status(axum::http::StatusCode::from_u16(args.auth_fail_status)?);
    if let (Some(folder), Some(password)) = (&args.folder, &args.folder_password) {
        builder = builder.folder(folder, password);
    }
    if let Some(dir) = &args.data {
        builder = builder.data_dir(dir);
    }
    let sim = builder.try_start().await?;
    println!("listening on {}", sim.base_url());
    tracing::info!(
        "serving document {} at {}",
        sim.state().config.document,
        sim.url()
    );
    tokio::signal::ctrl_c().await?;
    drop(sim);
    Ok(())
}
