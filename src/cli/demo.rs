//! `mwsync demo`: the embedded default. Starts the fake MoneyWorks in-process with sample
//! data and a local bare git repository, runs the daemon with the status page on, and plays
//! both halves: a MoneyWorks user who edits a record now and then, and a writer who edits a
//! record on `changes` and waits for it to reach `main` (once in a while in conflict with
//! the MoneyWorks user, to show the report). The fake's records are kept in the demo
//! directory, so a re-run carries on where the last one stopped. Binary-only: the engine
//! library must not depend on the simulator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mwsync::config::{LogFormat, Secret, Settings};
use mwsync::daemon::RunOptions;
use mwsync::events::{Event, Events};
use mwsync::mwtime::MwTime;
use mwsync::record::{RecordKey, record_path, table_info};
use mwsync::state::{STATE_PATH, SyncState};
use mwsync::writeback::{FileResult, WriteReport};
use mwsync_sim::data::{Dataset, write_dir};
use mwsync_sim::fake::{ClockMode, Sim};
use mwsync_sim::time::DateTime;

/// The demo document's login (a throwaway in-process server).
const DEMO_USER: &str = "Demo";
const DEMO_PASSWORD: &str = "demo-only-password";
/// The fake's first clock reading in a new demo directory.
const FIRST_START: &str = "20260601090000";

/// Flags of `mwsync demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps its bare repository, its cache and the fake's records.
    #[arg(long, default_value = "mwsync-demo")]
    dir: PathBuf,
    /// Seconds between polls.
    #[arg(long, default_value_t = 5)]
    interval_secs: u64,
    /// Stop after this many polls (runs until Ctrl-C when absent).
    #[arg(long)]
    polls: Option<u64>,
    /// Seed for the sample data of a new demo directory.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Port of the status page (0 picks a free one).
    #[arg(long, default_value_t = 8686)]
    status_port: u16,
}

/// Runs `git` with `args` in `cwd` (or for `--git-dir` given in `args`).
fn git(cwd: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("git")
        .current_dir(cwd)
        .args([
            "-c",
            "user.name=Demo writer",
            "-c",
            "user.email=writer@demo.invalid",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        // Some refusals (`nothing to commit`) are said on stdout only.
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            if stderr.is_empty() { stdout } else { stderr }
        ))
    }
}

fn init_bare(path: &Path) -> Result<(), String> {
    if path.join("HEAD").exists() {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    git(
        parent,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            &path.display().to_string(),
        ],
    )
    .map(|_| ())
}

/// Where the demo keeps things.
struct Layout {
    remote: PathBuf,
    data: PathBuf,
    writer: PathBuf,
}

/// Runs the demo; returns the exit code.
pub async fn run(args: DemoArgs) -> u8 {
    super::init_logging(LogFormat::Human);
    let dir = match prepare_dir(&args.dir) {
        Ok(dir) => dir,
        Err(code) => return code,
    };
    let layout = Layout {
        remote: dir.join("books.git"),
        data: dir.join("moneyworks"),
        writer: dir.join("writer"),
    };
    if let Err(e) = init_bare(&layout.remote) {
        eprintln!("mwsync demo: {e}");
        return super::EXIT_OTHER;
    }
    let sim = match start_sim(args.seed, &layout).await {
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
        git_url: Some(layout.remote.display().to_string()),
        cache_dir: Some(dir.join("cache")),
        status_addr: Some(format!("127.0.0.1:{}", args.status_port)),
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
    let daemon = match super::Daemon::start(&cfg).await {
        Ok(d) => d,
        Err(code) => return code,
    };
    let page = daemon
        .status_addr
        .map_or_else(|| "(off)".to_string(), |a| format!("http://{a}/"));
    println!("mwsync demo");
    println!("  status page     : {page}");
    println!("  fake MoneyWorks : {} (in this process)", sim.url());
    println!("  git repository  : {}", layout.remote.display());
    println!(
        "  look at it with : git --git-dir {} log --stat",
        layout.remote.display()
    );
    println!(
        "  stop with Ctrl-C; a MoneyWorks user edits a record now and then, and a writer edits one on `changes`"
    );
    let interval = Duration::from_secs(args.interval_secs.max(1));
    let reports = report_writes(&daemon.events);
    let actors = spawn_actors(sim, layout, interval);
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
    actors.abort();
    reports.abort();
    println!(
        "mwsync demo stopped; the repository stays at {}",
        dir.join("books.git").display()
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

/// The latest MoneyWorks time the repository has seen: its state's server times.
fn last_seen_on_main(remote: &Path) -> Option<MwTime> {
    let text = git(
        remote,
        &[
            "--git-dir",
            &remote.display().to_string(),
            "show",
            &format!("main:{STATE_PATH}"),
        ],
    )
    .ok()?;
    let state = SyncState::parse(&text, STATE_PATH).ok()?;
    state.tables.values().filter_map(|t| t.server_time).max()
}

/// The fake MoneyWorks on the real clock: the records of the last run when the demo
/// directory has them (with the clock just after anything the repository has seen, so the
/// re-run starts without a clock regression), otherwise new sample data.
async fn start_sim(seed: u64, layout: &Layout) -> anyhow::Result<Sim> {
    let first = DateTime::parse(FIRST_START).expect("a fixed valid start time");
    let seen = last_seen_on_main(&layout.remote)
        .and_then(|t| DateTime::parse(&t.to_string()).ok())
        .map(|t| t.add_secs(1));
    let builder = Sim::builder()
        .seed(seed)
        .names(25)
        .accounts(15)
        .products(12)
        .jobs(5)
        .transactions(80)
        .document("Demo.moneyworks")
        .login(DEMO_USER, DEMO_PASSWORD)
        .clock_mode(ClockMode::Real);
    let builder = if layout.data.is_dir() {
        builder
            .data_dir(&layout.data)
            .clock(seen.unwrap_or(first).max(first))
    } else {
        builder.clock(first)
    };
    let sim = builder.try_start().await?;
    save(&sim, &layout.data);
    Ok(sim)
}

/// Keeps the fake's records in the demo directory for the next run.
fn save(sim: &Sim, dir: &Path) {
    let mut ds = Dataset::default();
    for schema in mwsync_sim::schema::SERVED.iter() {
        ds.tables
            .insert(schema.info.name.to_string(), sim.records(schema.info.name));
    }
    if let Err(e) = write_dir(&ds, dir) {
        tracing::warn!(
            "demo: cannot keep the fake's records in {}: {e}",
            dir.display()
        );
    }
}

/// Prints each write-back report as it reaches `main`.
fn report_writes(events: &Events) -> tokio::task::JoinHandle<()> {
    let mut rx = events.subscribe();
    tokio::spawn(async move {
        while let Ok(item) = rx.recv().await {
            if let Event::WriteStatus { report } = &item.event {
                print_report(report);
            }
        }
    })
}

fn print_report(report: &WriteReport) {
    println!(
        "demo: mwsync answered the write changes@{}: {:?}",
        &report.commit[..10.min(report.commit.len())],
        report.outcome
    );
    for f in &report.files {
        if f.result == FileResult::Applied || f.result == FileResult::AlreadyApplied {
            continue;
        }
        println!("        {} {:?}: {}", f.path, f.result, f.reason);
        for field in &f.fields {
            let show =
                |v: &Option<String>| v.as_deref().map_or("(none)".into(), |v| format!("{v:?}"));
            println!(
                "          {}: base {}, MoneyWorks {}, asked {}",
                field.field,
                show(&field.base),
                show(&field.server),
                show(&field.asked)
            );
        }
    }
    println!(
        "        the writer now: {}",
        mwsync::status::write_action(report.outcome)
    );
}

/// The MoneyWorks user and the writer, taking turns every one and a half intervals: the user
/// edits a phone, then the writer edits a record on `changes`; every third write is made to
/// conflict with the user.
fn spawn_actors(sim: Sim, layout: Layout, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let names: Vec<String> = sim
            .records("Name")
            .iter()
            .filter_map(|r| r.text("code").map(str::to_string))
            .collect();
        if names.is_empty() {
            return;
        }
        let mut n: u64 = 0;
        loop {
            tokio::time::sleep(interval + interval / 2).await;
            n += 1;
            let code = &names[(n as usize * 7) % names.len()];
            if n.is_multiple_of(2) {
                let conflict = (n / 2).is_multiple_of(3);
                if let Err(e) = play_writer(&sim, &layout, code, n, conflict, interval).await {
                    tracing::warn!("demo: the writer gave up: {e}");
                }
            } else {
                let phone = format!("04 555 {:04}", (n * 37) % 10_000);
                match sim.state().try_upsert("Name", code, &[("phone", &phone)]) {
                    Ok(_) => tracing::info!(
                        "demo: a MoneyWorks user changed the phone of {code} to {phone}"
                    ),
                    Err(e) => tracing::warn!("demo: could not edit {code}: {e}"),
                }
            }
            save(&sim, &layout.data);
        }
    })
}

/// The writer: a clone of the repository, `changes` reset to `main`, one field of `code`
/// edited, pushed, and watched until `main` has it. With `conflict`, the MoneyWorks user
/// edits the same field before the push.
async fn play_writer(
    sim: &Sim,
    layout: &Layout,
    code: &str,
    n: u64,
    conflict: bool,
    interval: Duration,
) -> Result<(), String> {
    let remote = layout.remote.display().to_string();
    let work = layout.writer.clone();
    let path = record_path(
        table_info("Name").expect("Name is a known table"),
        &RecordKey::Code(code.to_string()),
    );
    let phone = format!("09 777 {:04}", (n * 53) % 10_000);
    let prepared = {
        let (work, remote, path, phone) =
            (work.clone(), remote.clone(), path.clone(), phone.clone());
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            if !work.join(".git").exists() {
                git(
                    work.parent().unwrap_or(Path::new(".")),
                    &["clone", "--quiet", &remote, &work.display().to_string()],
                )?;
            }
            git(&work, &["fetch", "--quiet", "origin"])?;
            git(
                &work,
                &["checkout", "--quiet", "-B", "changes", "origin/main"],
            )?;
            let file = work.join(&path);
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{path}: {e}"))?;
            let edited: Vec<String> = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("<phone>") {
                        format!("  <phone>{phone}</phone>")
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            let edited = edited.join("\n") + "\n";
            if edited == text {
                return Err(format!(
                    "{path} already has the phone {phone} (an earlier run in this directory wrote it)"
                ));
            }
            std::fs::write(&file, edited).map_err(|e| format!("{path}: {e}"))?;
            git(
                &work,
                &[
                    "commit",
                    "--quiet",
                    "-am",
                    &format!("Phone of {path} from the CRM"),
                ],
            )?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    };
    prepared?;
    if conflict {
        let theirs = format!("04 555 {:04}", (n * 41) % 10_000);
        sim.state()
            .try_upsert("Name", code, &[("phone", &theirs)])
            .map_err(|e| e.to_string())?;
        tracing::info!(
            "demo: a MoneyWorks user changed the phone of {code} to {theirs} while the writer was editing it"
        );
    }
    let pushed = {
        let work = work.clone();
        tokio::task::spawn_blocking(move || {
            git(&work, &["push", "--quiet", "--force", "origin", "changes"])?;
            git(&work, &["rev-parse", "HEAD"])
        })
        .await
        .map_err(|e| e.to_string())??
    };
    tracing::info!(
        "demo: the writer pushed changes@{} setting the phone of {code} to {phone}{}",
        &pushed[..10.min(pushed.len())],
        if conflict {
            " (this one will conflict)"
        } else {
            ""
        }
    );
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let bare = layout.remote.clone();
        let id = pushed.clone();
        let merged = tokio::task::spawn_blocking(move || {
            git(
                &bare,
                &[
                    "--git-dir",
                    &bare.display().to_string(),
                    "merge-base",
                    "--is-ancestor",
                    &id,
                    "main",
                ],
            )
            .is_ok()
        })
        .await
        .unwrap_or(false);
        if merged {
            println!(
                "demo: the writer's commit {} reached main after {} s: MoneyWorks has it",
                &pushed[..10.min(pushed.len())],
                started.elapsed().as_secs()
            );
            return Ok(());
        }
        if conflict && started.elapsed() > interval * 3 {
            // It never will: the report (printed above) says why.
            return Ok(());
        }
        if started.elapsed() > interval * 10 {
            return Err(format!(
                "changes@{} did not reach main",
                &pushed[..10.min(pushed.len())]
            ));
        }
    }
}
