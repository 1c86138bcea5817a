//! The scale benchmark: for each size it generates a document (5,000 names, 2,000 products,
//! 500 jobs, 80 accounts and N transactions with their lines), serves it with `mwsim serve
//! --data`, keeps `main` on `mwsim git-serve` over HTTP with an API key, and runs the real
//! `mwsync` binary as a child process, measuring each phase's wall time and peak RSS (from
//! `wait4` in a small reporter process, and mwsync's own from its `VmHWM`). Baselines come
//! from the same run: `git fast-import` of the same final tree.
//!
//! Phases per size: first sync; fast-import of its tree; an idle `run --once`; SIGTERM during
//! a first sync (latency to exit); SIGKILL at half of a first sync and the resume, checked
//! against the simulator's own layout of the generated files (main equals the server) and
//! against history (every record created exactly once); 100 edits and `run --once`, twice:
//! first spread over the table (every N/100-th transaction, so 10 shard directories at 10k
//! and 100 from 100k on), then of one shape at every size (10 records in each of 10 shards
//! spread over the table), so that the second line compares sizes with commits of the same
//! shape; each line says how many records and shard directories the run's commits changed,
//! the baseline (plain `git push` of the same commits, from the remote to a copy of it as it
//! was before the run, through the same server), the floor of any push there (the walk of
//! the whole previous tree that receive-pack's connectivity check makes, timed on the remote
//! just before the run), whether the cache's packs were rolled up in the run, and checks
//! `main` against the server with the edited records as the fake lays them out;
//! `sync --full --check`; the largest directory on `main` and the largest push (remote packs,
//! with the remote's auto-gc off so each push keeps its pack).
//!
//! Run: `cargo bench -p mwsync --bench scale` (10k and 200k transactions), or
//! `cargo bench -p mwsync --bench scale -- --sizes 10000,200000,1000000`.
//!
//! `-- --gateway [1,4,8]` runs instead, per size, a first sync direct to `git-serve` and one
//! through the upload gateway (`deno serve gateway/main.ts`, the pinned Deno, KV in a file)
//! per number of concurrent batches, each checked against the simulator's layout. At 1M it
//! needs about 9 GB of temporary disk while the fake loads the generated files (they are
//! removed once loaded) and 2.5 GB of memory for the fake; `MWSYNC_SCALE_DIR` picks the
//! scratch directory (default: the system's temporary directory). Each size's logs stay in
//! `mwsync-scale-N-logs` there. It owns measuring only.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

const USER: &str = "Admin";
const PASSWORD: &str = "scale-pw-3c1";
const GIT_KEY: &str = "scale-git-key-8d2";
/// The generated history ends at 2026-06-30 12:00:00; the server's clock starts after it, so
/// an idle poll finds nothing stamped at or after its marker.
const CLOCK_START: &str = "20260701000000";
const TABLES: [&str; 5] = ["Account", "Name", "Product", "Job", "Transaction"];
const CHECKPOINT: u64 = 1000;

/// What a child process did: seconds, peak RSS in MiB and CPU seconds (both counting the
/// children it waited for, such as the git it runs), its own peak RSS and CPU as last sampled
/// (`None` when not measured, or when it ended before a sample), exit code.
struct Ran {
    secs: f64,
    rss_mib: f64,
    cpu_secs: f64,
    own: Option<(f64, f64)>,
    code: i32,
}

/// The first argument that makes this binary the reporter of `measured`.
const MEASURE: &str = "--measure-child";

/// `cmd` run through this binary as a small reporter process that waits for it and writes its
/// figures to `report`. A child exec'd straight from the bench starts its `ru_maxrss` at the
/// bench's own high-water mark (Linux carries the old image's peak across `exec`), so a figure
/// below the bench's would never show; the reporter's image is a few MiB.
fn measured(cmd: &Command, report: &Path) -> Command {
    let mut out = Command::new(std::env::current_exe().expect("the bench knows its binary"));
    out.arg(MEASURE)
        .arg(report)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        out.current_dir(d);
    }
    out
}

/// The process `pid`'s own (peak RSS in KiB, user + system CPU in seconds) from `/proc`, or
/// `None` once it has exited.
fn own_usage(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kib, cpu_secs(pid)?))
}

/// User + system CPU seconds of `pid` itself, from `/proc/PID/stat`.
fn cpu_secs(pid: u32) -> Option<f64> {
    cpu_ticks(pid, 2)
}

/// User + system CPU seconds of `pid` and of the children it has waited for (the git a
/// server runs for each request).
fn cpu_secs_with_children(pid: u32) -> Option<f64> {
    cpu_ticks(pid, 4)
}

/// The sum of `fields` CPU fields of `/proc/PID/stat` from utime on, in seconds.
fn cpu_ticks(pid: u32, fields: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime, stime, cutime and cstime are fields 14 to 17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let all: Vec<&str> = rest.split(' ').collect();
    let mut ticks = 0.0;
    for f in all.get(11..11 + fields)? {
        ticks += f.parse::<f64>().ok()?;
    }
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// The reporter's side of `measured`: runs `args` = [report, program, args...] with this
/// process's standard streams, writes its figures to the report and exits with its code.
fn report_child(args: &[String]) -> ! {
    let (report, program, rest) = match args {
        [report, program, rest @ ..] => (report, program, rest),
        _ => panic!("{MEASURE} takes a report path and a command"),
    };
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .expect("the measured command starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let sampler = std::thread::spawn(move || {
        // The process's own figures, without the git it runs; they are gone once the process
        // exits, so the last reading stands (peak RSS is a high-water mark already).
        let mut last = None;
        while let Some(now) = own_usage(pid) {
            // Between the reporter's fork and the exec the child has no memory of its own yet.
            if now.0 > 0.0 {
                last = Some(now);
            }
            if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                break;
            }
        }
        last
    });
    let ran = wait(child, Instant::now());
    let _ = tx.send(());
    let own = sampler.join().expect("the sampler ends");
    let own = own.map_or_else(|| "-".to_string(), |(kib, cpu)| format!("{kib} {cpu}"));
    std::fs::write(
        report,
        format!("{} {} {own}", ran.rss_mib * 1024.0, ran.cpu_secs),
    )
    .expect("the report is written");
    std::process::exit(ran.code)
}

/// Runs `cmd` through the reporter with the given standard streams and waits for it.
fn run_measured(cmd: &Command, stdin: Stdio, stderr: Stdio, report: &Path) -> Ran {
    let mut wrapped = measured(cmd, report);
    wrapped.stdin(stdin).stdout(Stdio::null()).stderr(stderr);
    let started = Instant::now();
    let child = wrapped.spawn().expect("the reporter starts");
    let ran = wait(child, started);
    let text = std::fs::read_to_string(report)
        .unwrap_or_else(|e| panic!("no figures reported in {}: {e}", report.display()));
    let _ = std::fs::remove_file(report);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Ran {
        rss_mib: v[0] / 1024.0,
        cpu_secs: v[1],
        own: (v.len() == 4).then(|| (v[2] / 1024.0, v[3])),
        ..ran
    }
}

/// Waits for `child` with `wait4`: its exit, its peak RSS and its CPU time, both counting the
/// children it waited for.
fn wait(child: Child, started: Instant) -> Ran {
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which nothing else
    // waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4 failed");
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ran {
        secs: started.elapsed().as_secs_f64(),
        rss_mib: usage.ru_maxrss as f64 / 1024.0,
        cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime),
        own: None,
        code,
    }
}

/// The servers of one size.
struct World {
    dir: PathBuf,
    sim: Child,
    sim_url: String,
    git: Child,
    git_url: String,
    mwsync: PathBuf,
    http: reqwest::Client,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
        let _ = self.git.kill();
        let _ = self.git.wait();
    }
}

/// Starts `cmd`, its standard error into `log`, and returns it with the URL from its
/// `listening on http://ADDR` line.
fn serve(mut cmd: Command, log: &Path) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("a server log"))
        .spawn()
        .expect("the server starts");
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("the server prints its address");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl World {
    /// A bare repository `name` on the git server, keeping every pushed pack.
    fn remote(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.join("git").join(name);
        git(
            &self.dir,
            &["init", "--quiet", "--bare", &path.to_string_lossy()],
        );
        git(&path, &["config", "receive.autogc", "false"]);
        (path, format!("{}/{name}", self.git_url))
    }

    /// The `mwsync` command against `remote_url` with cache `cache`.
    fn mwsync(&self, args: &[&str], remote_url: &str, cache: &Path) -> Command {
        let mut cmd = Command::new(&self.mwsync);
        cmd.args(args)
            .env(
                "MWSYNC_MONEYWORKS_URL",
                self.sim_url
                    .replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1)
                    + "/REST/Acme.moneyworks",
            )
            .env("MWSYNC_GIT_URL", remote_url)
            .env("MWSYNC_GIT_API_KEY", GIT_KEY)
            .env("MWSYNC_CACHE_DIR", cache)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// Runs mwsync to the end, its log into `log`.
    fn run(&self, args: &[&str], remote_url: &str, cache: &Path, log: &str) -> Ran {
        let cmd = self.mwsync(args, remote_url, cache);
        let file = std::fs::File::create(self.dir.join(log)).expect("log file");
        run_measured(
            &cmd,
            Stdio::null(),
            file.into(),
            &self.dir.join(format!("{log}.rss")),
        )
    }

    /// The fake's CPU seconds so far.
    fn fake_cpu(&self) -> f64 {
        cpu_secs(self.sim.id()).expect("the fake is running")
    }

    /// The git server's CPU seconds so far, with the git it ran for finished requests.
    fn git_server_cpu(&self) -> f64 {
        cpu_secs_with_children(self.git.id()).expect("the git server is running")
    }

    async fn requests(&self) -> u64 {
        let text = self
            .http
            .get(format!("{}/_sim/requests", self.sim_url))
            .send()
            .await
            .expect("the fake answers")
            .text()
            .await
            .expect("a body");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        v["total"].as_u64().expect("a total")
    }

    async fn edit(&self, seq: u64, description: &str) {
        let body =
            serde_json::json!({"key": seq.to_string(), "fields": {"description": description}});
        let r = self
            .http
            .post(format!("{}/_sim/records/transaction", self.sim_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the fake answers");
        assert!(r.status().is_success(), "edit {seq}: {}", r.status());
    }

    /// Transaction `seq` as the fake holds it now, by the simulator's own layout: its path
    /// and git blob id.
    async fn transaction_blob(&self, seq: u64) -> (String, [u8; 20]) {
        let r = self
            .http
            .get(format!("{}/_sim/records/transaction/{seq}", self.sim_url))
            .send()
            .await
            .expect("the fake answers");
        assert!(r.status().is_success(), "record {seq}: {}", r.status());
        let bytes = r.text().await.expect("a body");
        let mut h = Sha1::new();
        h.update(format!("blob {}\0", bytes.len()).as_bytes());
        h.update(bytes.as_bytes());
        let table =
            mwsync_sim::schema::table_info("Transaction").expect("the catalogue has Transaction");
        let path = mwsync_sim::layout::path(table, &mwsync_sim::layout::RecordKey::Seq(seq));
        (path, h.finalize().into())
    }
}

/// The bytes of every `.pack` under `repo`'s `objects/pack`, largest first.
fn pack_sizes(repo: &Path) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(repo.join("objects/pack"))
        .map(|it| {
            it.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

/// Writes a `git fast-import` stream of `repo`'s `main` tree (one commit) to `stream`.
fn fast_import_stream(repo: &Path, stream: &Path) -> usize {
    let listing = git(repo, &["ls-tree", "-r", "--full-tree", "main"]);
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((meta.split(' ').nth(2)?, path))
        })
        .collect();
    let mut cat = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git cat-file starts");
    let mut input = cat.stdin.take().expect("stdin");
    let ids: Vec<String> = entries.iter().map(|(id, _)| (*id).to_string()).collect();
    let feeder = std::thread::spawn(move || {
        for id in ids {
            writeln!(input, "{id}").expect("cat-file reads");
        }
    });
    let mut reader = BufReader::with_capacity(1 << 20, cat.stdout.take().expect("stdout"));
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(stream).expect("stream file"),
    );
    for (i, _) in entries.iter().enumerate() {
        let mut header = String::new();
        reader.read_line(&mut header).expect("cat-file header");
        let size: usize = header
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("a blob size");
        let mut body = vec![0u8; size + 1];
        std::io::Read::read_exact(&mut reader, &mut body).expect("blob body");
        write!(out, "blob\nmark :{}\ndata {size}\n", i + 1).expect("write");
        out.write_all(&body[..size]).expect("write");
        out.write_all(b"\n").expect("write");
    }
    feeder.join().expect("feeder");
    let _ = cat.wait();
    out.write_all(
        b"commit refs/heads/main\ncommitter bench <bench@localhost> 1700000000 +0000\ndata 6\nscale\n",
    )
    .expect("write");
    for (i, (_, path)) in entries.iter().enumerate() {
        writeln!(out, "M 100644 :{} {path}", i + 1).expect("write");
    }
    out.write_all(b"\n").expect("write");
    out.flush().expect("flush");
    entries.len()
}

/// The record files the generated data gives, by the simulator's own layout: path → git blob
/// id. Independent of the engine.
fn expected_tree(data: &Path) -> HashMap<String, [u8; 20]> {
    let mut out = HashMap::new();
    mwsync_sim::data::stream_dir(data, &mut |table, record| {
        if TABLES.contains(&table) {
            let path = mwsync_sim::layout::record_path(&record).map_err(|e| e.to_string())?;
            let bytes = mwsync_sim::layout::canonical_xml(&record).map_err(|e| e.to_string())?;
            let mut h = Sha1::new();
            h.update(format!("blob {}\0", bytes.len()).as_bytes());
            h.update(bytes.as_bytes());
            out.insert(path, h.finalize().into());
        }
        Ok(())
    })
    .expect("the generated data streams");
    out
}

fn hex(id: &[u8; 20]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records on `main` that differ from `want` (missing, extra or other bytes).
fn tree_differences(repo: &Path, want: &HashMap<String, [u8; 20]>) -> usize {
    let listing = git(repo, &["ls-tree", "-r", "--full-tree", "main"]);
    let mut seen = 0usize;
    let mut differ = 0usize;
    for line in listing.lines() {
        let Some((meta, path)) = line.split_once('\t') else {
            continue;
        };
        if path.starts_with(".mwsync/") {
            continue;
        }
        let id = meta.split(' ').nth(2).unwrap_or_default();
        match want.get(path) {
            Some(w) if hex(w) == id => seen += 1,
            _ => differ += 1,
        }
    }
    differ + (want.len() - seen)
}

/// (records added more than once, records never added) in `main`'s history.
fn creation_counts(repo: &Path, want: &HashMap<String, [u8; 20]>) -> (usize, usize) {
    let log = git(
        repo,
        &[
            "log",
            "--format=",
            "--raw",
            "--no-renames",
            "--no-abbrev",
            "--diff-filter=A",
            "main",
        ],
    );
    let mut adds: HashMap<&str, u32> = HashMap::new();
    for line in log.lines() {
        if let Some((_, path)) = line.split_once('\t')
            && !path.starts_with(".mwsync/")
        {
            *adds.entry(path).or_default() += 1;
        }
    }
    let twice = adds.values().filter(|n| **n > 1).count();
    let never = want
        .keys()
        .filter(|p| !adds.contains_key(p.as_str()))
        .count();
    (twice, never)
}

/// The most entries any directory on `main` holds.
fn largest_directory(repo: &Path) -> usize {
    let listing = git(
        repo,
        &["ls-tree", "-r", "-t", "--name-only", "--full-tree", "main"],
    );
    let mut per_dir: HashMap<&str, usize> = HashMap::new();
    for path in listing.lines() {
        let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
        *per_dir.entry(parent).or_default() += 1;
    }
    per_dir.values().copied().max().unwrap_or(0)
}

/// Commits on `repo`'s main (0 when there is none yet).
fn commits(repo: &Path) -> u64 {
    Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-list", "--count", "main"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

fn mwsim_binary(mwsync: &Path) -> PathBuf {
    let dir = mwsync.parent().expect("the binary has a directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "mwsync-sim", "--bin", "mwsim"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building mwsim failed");
    dir.join("mwsim")
}

/// "peak RSS T MiB (mwsync alone O MiB)": T counts the git it runs.
fn rss(ran: &Ran) -> String {
    match ran.own {
        Some((mib, _)) => format!(
            "peak RSS {:.0} MiB (mwsync alone {mib:.0} MiB)",
            ran.rss_mib
        ),
        None => format!("peak RSS {:.0} MiB", ran.rss_mib),
    }
}

/// "CPU T s (mwsync alone O s)": T counts the git it runs.
fn cpu(ran: &Ran) -> String {
    match ran.own {
        Some((_, secs)) => format!("CPU {:.1} s (mwsync alone {secs:.1} s)", ran.cpu_secs),
        None => format!("CPU {:.1} s", ran.cpu_secs),
    }
}

fn line(label: &str, value: String) {
    println!("  {label:<44} {value}");
}

/// Generates the document of `n` transactions and starts its servers; returns them, the
/// scratch directory and the expected tree.
fn setup(
    n: u64,
    scratch: &Path,
    mwsim: &Path,
    mwsync: &Path,
) -> (World, PathBuf, HashMap<String, [u8; 20]>) {
    let dir = scratch.join(format!("mwsync-scale-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("git")).expect("scratch directory");
    let data = dir.join("data");
    let generated = Command::new(mwsim)
        .args([
            "generate",
            "--seed",
            "1",
            "--names",
            "5000",
            "--products",
            "2000",
        ])
        .args([
            "--jobs",
            "500",
            "--accounts",
            "80",
            "--transactions",
            &n.to_string(),
        ])
        .arg("--out")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .status()
        .expect("mwsim generate runs");
    assert!(generated.success());
    let loading = Instant::now();
    let mut sim = Command::new(mwsim);
    sim.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--user",
        USER,
        "--password",
        PASSWORD,
    ])
    .args(["--clock", "real", "--clock-start", CLOCK_START])
    .arg("--data")
    .arg(&data)
    .env("RUST_LOG", "warn");
    let (sim, sim_url) = serve(sim, &dir.join("fake.log"));
    let load_secs = loading.elapsed().as_secs_f64();
    let mut gs = Command::new(mwsim);
    gs.args(["git-serve", "--api-key", GIT_KEY, "--root"])
        .arg(dir.join("git"))
        .env("RUST_LOG", "warn");
    let (git_child, git_url) = serve(gs, &dir.join("git-server.log"));
    let w = World {
        dir: dir.clone(),
        sim,
        sim_url,
        git: git_child,
        git_url,
        mwsync: mwsync.to_path_buf(),
        http: reqwest::Client::new(),
    };
    let want = expected_tree(&data);
    // The fake holds what it loaded, so the generated files (9 GB at 1M) go now.
    let _ = std::fs::remove_dir_all(&data);
    println!(
        "{n} transactions: {} records (fake loaded in {load_secs:.1} s)",
        want.len()
    );
    (w, dir, want)
}

async fn size(n: u64, scratch: &Path, mwsim: &Path, mwsync: &Path) {
    let (w, dir, mut want) = setup(n, scratch, mwsim, mwsync);
    let records = want.len() as u64;

    // First sync.
    let (repo, url) = w.remote("main.git");
    let cache = dir.join("cache");
    let (fake_before, server_before) = (w.fake_cpu(), w.git_server_cpu());
    let first = w.run(&["run", "--once"], &url, &cache, "first.log");
    let fake_first = w.fake_cpu() - fake_before;
    let server_first = w.git_server_cpu() - server_before;
    assert_eq!(
        first.code,
        0,
        "first sync failed; see {}",
        dir.join("first.log").display()
    );
    // One push may carry several checkpoints; each push of 100 objects or more stays a pack
    // on the remote (its auto-gc is off).
    let (made, pushed) = (commits(&repo), pack_sizes(&repo).len());
    line(
        "first sync",
        format!(
            "{:.1} s, {:.0} records/s, {}, {made} commits in {pushed} pushes",
            first.secs,
            records as f64 / first.secs,
            rss(&first)
        ),
    );

    // git fast-import of the same tree.
    let stream = dir.join("tree.fi");
    fast_import_stream(&repo, &stream);
    let fi_repo = dir.join("fast-import.git");
    git(
        &dir,
        &["init", "--quiet", "--bare", &fi_repo.to_string_lossy()],
    );
    let mut fi = Command::new("git");
    fi.arg("-C").arg(&fi_repo).args(["fast-import", "--quiet"]);
    let fi = run_measured(
        &fi,
        std::fs::File::open(&stream).expect("stream").into(),
        Stdio::inherit(),
        &dir.join("fast-import.rss"),
    );
    assert_eq!(fi.code, 0, "fast-import failed");
    let _ = std::fs::remove_file(&stream);
    let _ = std::fs::remove_dir_all(&fi_repo);
    line(
        "git fast-import of the same tree",
        format!(
            "{:.1} s, peak RSS {:.0} MiB; first sync / fast-import = {:.2}x",
            fi.secs,
            fi.rss_mib,
            first.secs / fi.secs
        ),
    );
    line(
        "first sync's CPU (fast-import's)",
        format!(
            "{}, the fake {fake_first:.1} s, the git server {server_first:.1} s (fast-import {:.1} s)",
            cpu(&first),
            fi.cpu_secs
        ),
    );
    let pushes_mib: Vec<f64> = pack_sizes(&repo)
        .iter()
        .map(|b| *b as f64 / 1_048_576.0)
        .collect();
    line(
        "largest push (pack on the remote)",
        format!("{:.1} MiB", pushes_mib.first().copied().unwrap_or(0.0)),
    );
    line(
        "largest directory on main",
        format!("{} entries", largest_directory(&repo)),
    );

    // Idle run.
    let before = w.requests().await;
    let idle = w.run(&["run", "--once"], &url, &cache, "idle.log");
    assert_eq!(idle.code, 0, "idle run failed");
    line(
        "idle run --once",
        format!(
            "{:.2} s, {} requests, {}",
            idle.secs,
            w.requests().await - before,
            rss(&idle)
        ),
    );

    // SIGTERM during a first sync.
    let (term_repo, term_url) = w.remote("term.git");
    let mut cmd = w.mwsync(&["run"], &term_url, &dir.join("cache-term"));
    cmd.stderr(std::fs::File::create(dir.join("term.log")).expect("log"));
    let started = Instant::now();
    let child = cmd.spawn().expect("mwsync starts");
    while commits(&term_repo) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "no checkpoint in an hour"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    let signalled = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let term = wait(child, signalled);
    line(
        "SIGTERM during a first sync",
        format!(
            "stopped {:.2} s after the signal, exit code {}",
            term.secs, term.code
        ),
    );

    let _ = std::fs::remove_dir_all(&term_repo);
    let _ = std::fs::remove_dir_all(dir.join("cache-term"));

    // SIGKILL at half of a first sync, then the resume.
    let (kill_repo, kill_url) = w.remote("kill.git");
    let kill_cache = dir.join("cache-kill");
    let mut cmd = w.mwsync(&["run", "--once"], &kill_url, &kill_cache);
    cmd.stderr(std::fs::File::create(dir.join("kill.log")).expect("log"));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("mwsync starts");
    let half = records.div_ceil(CHECKPOINT) / 2;
    while commits(&kill_repo) < half.max(1) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the sync ended before half"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let kill_secs = started.elapsed().as_secs_f64();
    let killed_at = commits(&kill_repo);
    let resumed = w.run(&["run", "--once"], &kill_url, &kill_cache, "resume.log");
    assert_eq!(resumed.code, 0, "the resume failed");
    let differ = tree_differences(&kill_repo, &want);
    let (twice, never) = creation_counts(&kill_repo, &want);
    line(
        "SIGKILL at half a first sync, then resume",
        format!(
            "killed after {killed_at} of ~{} commits ({:.1} s); resume {:.1} s, {}; main vs server: {differ} differ; created twice: {twice}, never: {never}",
            records.div_ceil(CHECKPOINT),
            kill_secs,
            resumed.secs,
            rss(&resumed)
        ),
    );
    line(
        "first sync's main vs server",
        format!("{} differ", tree_differences(&repo, &want)),
    );

    // 100 edits spread over the table, then a run; then 100 edits of one shape at every
    // size (10 records in each of 10 shards spread over the table), then another run.
    let count = n.min(100);
    let spread: Vec<u64> = (0..count).map(|i| 1 + i * (n / count)).collect();
    edits_step(
        &w,
        (&repo, &url, &cache),
        &mut want,
        "100 edits, run --once",
        &spread,
        "scale edit",
        "edits.log",
    )
    .await;
    edits_step(
        &w,
        (&repo, &url, &cache),
        &mut want,
        "100 edits, 10 shards x 10, run --once",
        &shaped_edits(n),
        "scale shaped edit",
        "edits-shaped.log",
    )
    .await;

    // sync --full --check.
    let fake_before = w.fake_cpu();
    let check = w.run(&["sync", "--full", "--check"], &url, &cache, "check.log");
    let fake_check = w.fake_cpu() - fake_before;
    line(
        "sync --full --check",
        format!(
            "{:.1} s ({:.2}x the first sync), exit code {}, {}, {}, the fake {fake_check:.1} s",
            check.secs,
            check.secs / first.secs,
            check.code,
            rss(&check),
            cpu(&check)
        ),
    );
    drop(w);
    keep_logs(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The transactions of the edits of one shape at every size: 10 records (10 apart) in each
/// of 10 shard directories of 100 sequence numbers spread evenly over the table's full
/// shards; fewer when the table has fewer than 10 full shards.
fn shaped_edits(n: u64) -> Vec<u64> {
    let full = (n / 100).max(1);
    let shards: BTreeSet<u64> = (0..10).map(|k| k * full / 10).collect();
    shards
        .into_iter()
        .flat_map(|s| (0..10).map(move |j| s * 100 + 5 + j * 10))
        .filter(|seq| *seq <= n)
        .collect()
}

/// Edits the transactions `seqs` on the fake (description `{text} {i}`), runs `run --once`
/// and prints its line: wall time, requests, commits, peak RSS, the records and shard
/// directories its commits changed on `main`, and `main` against the server (`want`, updated
/// with the edited records as the fake now lays them out).
async fn edits_step(
    w: &World,
    (repo, url, cache): (&Path, &str, &Path),
    want: &mut HashMap<String, [u8; 20]>,
    label: &str,
    seqs: &[u64],
    text: &str,
    log: &str,
) {
    for (i, seq) in seqs.iter().enumerate() {
        w.edit(*seq, &format!("{text} {i}")).await;
        let (path, id) = w.transaction_blob(*seq).await;
        assert_ne!(
            want.insert(path, id),
            Some(id),
            "the fake's transaction {seq} did not change with its edit"
        );
    }
    let before = w.requests().await;
    let before_commits = commits(repo);
    let tip = git(repo, &["rev-parse", "main"]);
    // The baseline: a copy of the remote as it is now (a local clone hard-links the packs),
    // to which plain `git push` sends the same commits once mwsync has made them.
    let copy = repo.with_file_name("baseline.git");
    let _ = std::fs::remove_dir_all(&copy);
    git(
        &w.dir,
        &[
            "clone",
            "--quiet",
            "--bare",
            &repo.to_string_lossy(),
            &copy.to_string_lossy(),
        ],
    );
    git(&copy, &["config", "receive.autogc", "false"]);
    // The floor of any push to this remote: the connectivity check a stock receive-pack runs
    // on each one walks the whole tree of the tip it builds on. The same walk, for the tip's
    // own commit, timed here (it also brings the remote's packs into the page cache, as a
    // server taking pushes all day has them).
    let walking = Instant::now();
    git(
        repo,
        &[
            "rev-list",
            "--objects",
            "--quiet",
            "main",
            "--not",
            "main~1",
        ],
    );
    let walk = walking.elapsed().as_secs_f64();
    let packs_before = pack_sizes(&cache.join("repo.git")).len();
    let ran = w.run(&["run", "--once"], url, cache, log);
    assert_eq!(ran.code, 0, "the run after the edits failed; see {log}");
    let packs_after = pack_sizes(&cache.join("repo.git")).len();
    let rolled_up = if packs_after < packs_before {
        format!(", the cache's packs rolled up ({packs_before} to {packs_after})")
    } else {
        String::new()
    };
    let copy_url = format!("{}/baseline.git", w.git_url);
    let header = format!("http.extraHeader=Authorization: Bearer {GIT_KEY}");
    let pushing = Instant::now();
    git(
        repo,
        &["-c", &header, "push", "--quiet", &copy_url, "main:main"],
    );
    let plain_push = pushing.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&copy);
    let changed = git(repo, &["diff", "--name-only", tip.trim(), "main"]);
    let records: Vec<&str> = changed
        .lines()
        .filter(|p| !p.starts_with(".mwsync/"))
        .collect();
    let shards: BTreeSet<&str> = records
        .iter()
        .map(|p| p.rsplit_once('/').map_or("", |(d, _)| d))
        .collect();
    line(
        label,
        format!(
            "{:.2} s, {} requests, {} commits, {}; {} records in {} shard directories; plain `git push` of the same commits {plain_push:.2} s; the server's connectivity walk of one commit (`git rev-list --objects main --not main~1`) {walk:.2} s{rolled_up}; main vs server: {} differ",
            ran.secs,
            w.requests().await - before,
            commits(repo) - before_commits,
            rss(&ran),
            records.len(),
            shards.len(),
            tree_differences(repo, want)
        ),
    );
}

/// Moves the logs of `dir` to `dir` + `-logs` (replacing an older copy), so each phase's log
/// can still be read once the repositories are gone.
fn keep_logs(dir: &Path) {
    let mut name = dir.as_os_str().to_owned();
    name.push("-logs");
    let logs = PathBuf::from(name);
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).expect("a log directory");
    for entry in std::fs::read_dir(dir)
        .expect("the scratch directory lists")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "log") {
            let _ = std::fs::rename(&path, logs.join(entry.file_name()));
        }
    }
    println!("  logs in {}", logs.display());
}

/// The gateway's token in the gateway mode (the service key stays `GIT_KEY`).
const GATEWAY_TOKEN: &str = "scale-gateway-token-61e0c";

/// Starts `deno serve gateway/main.ts` on a free port in front of the git server, its KV in
/// a file in `dir`; returns it with its URL. The caller kills and waits for it.
#[allow(clippy::zombie_processes)]
fn start_gateway(deno: &str, git_url: &str, dir: &Path) -> (Child, String) {
    let log = dir.join("gateway.log");
    let mut child = Command::new(deno)
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args([
            "--allow-net",
            "--allow-env",
            "--allow-read",
            "--allow-write",
        ])
        .arg("main.ts")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway"))
        .env("NO_COLOR", "1")
        .env("GIT_SERVICE_URL", git_url)
        .env("GIT_SERVICE_KEY", GIT_KEY)
        .env("GATEWAY_TOKEN", GATEWAY_TOKEN)
        .env("GATEWAY_KV_PATH", dir.join("gateway-kv.sqlite3"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("deno serve starts");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| {
            let at = l.find("http://127.0.0.1:")?;
            Some(l[at..].trim().trim_end_matches('/').to_string())
        }) {
            return (child, url);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway did not start:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The gateway mode: one first sync of `n` transactions direct to `git-serve`, then one
/// through the gateway per concurrency, each into a new repository with a new cache, all in
/// this run; each result is checked against the simulator's layout.
async fn gateway_size(
    n: u64,
    concurrencies: &[usize],
    scratch: &Path,
    mwsim: &Path,
    mwsync: &Path,
) {
    let deno = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-deno"))
        .output()
        .expect("scripts/install-deno runs");
    assert!(deno.status.success(), "installing the pinned Deno failed");
    let deno = String::from_utf8_lossy(&deno.stdout).trim().to_string();
    let (w, dir, want) = setup(n, scratch, mwsim, mwsync);
    let records = want.len() as f64;
    let (repo, url) = w.remote("direct.git");
    let direct = w.run(
        &["run", "--once"],
        &url,
        &dir.join("cache-direct"),
        "direct.log",
    );
    assert_eq!(
        direct.code, 0,
        "the direct first sync failed; see direct.log"
    );
    line(
        "first sync direct to git-serve",
        format!(
            "{:.1} s, {:.0} records/s, {}, {} commits, {} differ",
            direct.secs,
            records / direct.secs,
            rss(&direct),
            commits(&repo),
            tree_differences(&repo, &want)
        ),
    );
    // Each run's repository and cache go once measured, so the disk holds one at a time.
    let _ = std::fs::remove_dir_all(&repo);
    let _ = std::fs::remove_dir_all(dir.join("cache-direct"));
    let (mut gateway, gateway_url) = start_gateway(&deno, &w.git_url, &dir);
    for &c in concurrencies {
        let name = format!("gateway-{c}");
        let (repo, _) = w.remote(&format!("{name}.git"));
        let mut cmd = w.mwsync(
            &["run", "--once"],
            &format!("gateway+{gateway_url}/git/{name}.git#main"),
            &dir.join(format!("cache-{name}")),
        );
        cmd.env("MWSYNC_GIT_API_KEY", GATEWAY_TOKEN)
            .env("MWSYNC_GATEWAY_CONCURRENCY", c.to_string());
        // Under the reporter, as the direct run: a child exec'd straight from the bench would
        // start its peak RSS at the bench's own.
        let ran = run_measured(
            &cmd,
            Stdio::null(),
            std::fs::File::create(dir.join(format!("{name}.log")))
                .expect("log")
                .into(),
            &dir.join(format!("{name}.rss")),
        );
        assert_eq!(
            ran.code, 0,
            "the first sync through the gateway failed; see {name}.log"
        );
        line(
            &format!("first sync via the gateway, {c} batch(es) at once"),
            format!(
                "{:.1} s, {:.0} records/s, {:.2}x direct, {}, {} commits, {} differ",
                ran.secs,
                records / ran.secs,
                ran.secs / direct.secs,
                rss(&ran),
                commits(&repo),
                tree_differences(&repo, &want)
            ),
        );
        let _ = std::fs::remove_dir_all(&repo);
        let _ = std::fs::remove_dir_all(dir.join(format!("cache-{name}")));
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == MEASURE) {
        report_child(&args[2..]);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench(args));
}

async fn bench(args: Vec<String>) {
    let sizes: Vec<u64> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map_or_else(
            || vec![10_000, 200_000],
            |s| {
                s.split(',')
                    .map(|n| n.trim().parse().expect("--sizes takes numbers"))
                    .collect()
            },
        );
    let scratch =
        std::env::var_os("MWSYNC_SCALE_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let mwsync = PathBuf::from(env!("CARGO_BIN_EXE_mwsync"));
    let mwsim = mwsim_binary(&mwsync);
    // `--gateway [1,4,8]`: first syncs through the upload gateway instead of the other phases.
    let gateway: Option<Vec<usize>> = args.iter().position(|a| a == "--gateway").map(|i| {
        args.get(i + 1)
            .filter(|s| !s.starts_with("--"))
            .map_or_else(
                || vec![1, 4, 8],
                |s| {
                    s.split(',')
                        .map(|n| n.trim().parse().expect("--gateway takes concurrencies"))
                        .collect()
                },
            )
    });
    for n in sizes {
        match &gateway {
            Some(c) => gateway_size(n, c, &scratch, &mwsim, &mwsync).await,
            None => size(n, &scratch, &mwsim, &mwsync).await,
        }
    }
}
