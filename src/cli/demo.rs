//! `mwsync demo`: the embedded default. Starts the fake MoneyWorks in-process with sample
//! data and a local bare git repository, runs the daemon with a short interval, and edits a
//! record now and then so incremental polls show in the log. Binary-only: the engine library
//! must not depend on the simulator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mwsync::config::{LogFormat, Secret, Settings};
use mwsync::daemon::RunOptions;
use mwsync_sim::fake::{ClockMode, Sim};
use mwsync_sim::time::DateTime;

/// The demo document's login (a throwaway in-process server).
const DEMO_USER: &str = "Demo";
const DEMO_PASSWORD: &str = "demo-only-password";

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
    /// Seed for the sample data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn init_bare(path: &Path) -> Result<(), String> {
    if path.join("HEAD").exists() {
        return Ok(());
    }
    let out = std::process::Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git init --bare {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs the demo; returns the exit code.
pub async fn run(args: DemoArgs) -> u8 {
    super::init_logging(LogFormat::Human);
    let dir = match prepare_dir(&args.dir) {
        Ok(dir) => dir,
        Err(code) => return code,
    };
    let remote = dir.join("books.git");
    if let Err(e) = init_bare(&remote) {
        eprintln!("mwsync demo: {e}");
        return super::EXIT_OTHER;
    }
    let sim = match start_sim(args.seed).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("mwsync demo: cannot start the fake MoneyWorks: {e:#}");
            return super::EXIT_OTHER;
        }
    };
    let settings = Settings {
        moneyworks_url: Some(Secret::new(sim.url().replacen(
            "http://",
            &format!("http://{DEMO_USER}:{DEMO_PASSWORD}@"),
            1,
        ))),
        git_url: Some(remote.display().to_string()),
        cache_dir: Some(dir.join("cache")),
        status_addr: Some("127.0.0.1:0".into()),
        poll_interval_secs: Some(args.interval_secs.max(1)),
        ..Settings::default()
    };
    let cfg = match settings.validate(|p| std::fs::read_to_string(p)) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("mwsync demo: {e}");
            return super::EXIT_INVALID;
        }
    };
    println!("mwsync demo");
    println!("  fake MoneyWorks : {} (in this process)", sim.url());
    println!("  git repository  : {}", remote.display());
    println!(
        "  look at it with : git --git-dir {} log --stat",
        remote.display()
    );
    println!("  stop with Ctrl-C; a MoneyWorks user edits a record every few seconds");
    let editor = spawn_editor(&sim, Duration::from_secs(args.interval_secs.max(1)));
    let daemon = match super::Daemon::start(&cfg).await {
        Ok(d) => d,
        Err(code) => return code,
    };
    let code = daemon
        .run(
            &cfg,
            RunOptions {
                once: false,
                max_polls: args.polls,
                count_records: true,
            },
        )
        .await;
    editor.abort();
    println!(
        "mwsync demo stopped; the repository stays at {}",
        remote.display()
    );
    code
}

/// Creates the demo directory and returns its absolute path, or the exit code.
fn prepare_dir(dir: &Path) -> Result<PathBuf, u8> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("mwsync demo: cannot create {}: {e}", dir.display());
        return Err(super::EXIT_INVALID);
    }
    std::fs::canonicalize(dir).map_err(|e| {
        eprintln!("mwsync demo: cannot resolve {}: {e}", dir.display());
        super::EXIT_INVALID
    })
}

/// The fake MoneyWorks with the demo's sample data, on the real clock.
async fn start_sim(seed: u64) -> anyhow::Result<Sim> {
    let start = DateTime::parse("20260601090000").expect("a fixed valid start time");
    Sim::builder()
        .seed(seed)
        .names(25)
        .accounts(15)
        .products(12)
        .jobs(5)
        .transactions(80)
        .document("Demo.moneyworks")
        .login(DEMO_USER, DEMO_PASSWORD)
        .clock(start)
        .clock_mode(ClockMode::Real)
        .try_start()
        .await
}

/// A MoneyWorks user who changes a name's phone every one and a half intervals.
fn spawn_editor(sim: &Sim, interval: Duration) -> tokio::task::JoinHandle<()> {
    let state = sim.state().clone();
    let names: Vec<String> = sim
        .records("Name")
        .iter()
        .filter_map(|r| r.text("code").map(str::to_string))
        .collect();
    tokio::spawn(async move {
        let mut n: u64 = 0;
        loop {
            tokio::time::sleep(interval + interval / 2).await;
            n += 1;
            let Some(code) = names.get((n as usize * 7) % names.len().max(1)) else {
                return;
            };
            let phone = format!("04 555 {:04}", (n * 37) % 10_000);
            match state.try_upsert("Name", code, &[("phone", &phone)]) {
                Ok(_) => {
                    tracing::info!("demo: a MoneyWorks user changed the phone of {code} to {phone}")
                }
                Err(e) => tracing::warn!("demo: could not edit {code}: {e}"),
            }
        }
    })
}
