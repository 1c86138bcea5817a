//! Benchmark of the fake MoneyWorks at size: for each number of transactions (with their
//! Detail lines) it generates the verbose-XML files, loads them as `mwsim serve --data` does
//! (in a child process, so the peak memory from `wait4` is the load's own), and times the
//! first, middle and last modified-since page of 100 records as mwsync asks for them. It
//! prints the load time, the peak RSS against the XML size, and each page's cost, with the
//! last page's cost against the smallest size's. It owns measuring only; it must not write
//! outside a temporary directory.
//!
//! Run: `cargo bench -p mwsync-sim --bench fake` (sizes 10k, 200k and 1M transactions;
//! `MWSIM_BENCH_SIZES=10000,200000` for others).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use mwsync_sim::fake::Sim;
use mwsync_sim::fake::export::export;
use mwsync_sim::time::DateTime;

/// Times each page is asked for; the median is reported.
const REPEATS: usize = 15;
/// Records per page.
const PAGE: usize = 100;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("bench directory is readable")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

/// Runs `cmd`, waits with `wait4` and returns (seconds, peak RSS in KiB, stdout).
fn run(mut cmd: Command) -> (f64, i64, String) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("the benchmark can start its child process");
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).expect("child output is text");
        out
    });
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which nothing else
    // waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(rc, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed with status {status}"
    );
    // Reaped by wait4 above; dropping the handle does not wait again.
    drop(child);
    (secs, usage.ru_maxrss, reader.join().expect("reader thread"))
}

fn generate(dir: &Path, transactions: usize) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mwsim"));
    cmd.args([
        "generate",
        "--seed",
        "1",
        "--names",
        "5000",
        "--products",
        "2000",
    ])
    .args(["--jobs", "500", "--accounts", "80"])
    .args(["--transactions", &transactions.to_string()])
    .arg("--out")
    .arg(dir)
    .env("RUST_LOG", "warn");
    cmd
}

/// The modified-since page mwsync asks for, from `t`.
fn page_params(t: DateTime) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    p.insert("table".into(), "transaction".into());
    p.insert(
        "search".into(),
        format!("LastModifiedTime >= TextToDate(\"{t}\", DateFormYYYYMMDDHHMMSS)"),
    );
    p.insert("sort".into(), "LastModifiedTime".into());
    p.insert("direction".into(), "ascending".into());
    p.insert("start".into(), "0".into());
    p.insert("limit".into(), PAGE.to_string());
    p.insert("format".into(), "xml-verbose".into());
    p
}

/// Child process: load `dir`, print `load_secs first_ms middle_ms last_ms`.
fn measure(dir: &Path) {
    let started = Instant::now();
    let (state, _) = Sim::builder()
        .data_dir(dir)
        .build_state()
        .expect("the generated data loads");
    let load = started.elapsed().as_secs_f64();
    let now = state.clock.now();
    let db = state.db();
    let table = db.table("Transaction").expect("served");
    let n = table.len();
    let at = |i: usize| {
        let (secs, _) = table
            .by_lmt()
            .get(i.min(n.saturating_sub(1)))
            .expect("the table has records");
        DateTime::from_secs(secs)
    };
    let mut costs = Vec::new();
    for t in [at(0), at(n / 2), at(n.saturating_sub(PAGE))] {
        let params = page_params(t);
        let mut times: Vec<f64> = (0..REPEATS)
            .map(|_| {
                let started = Instant::now();
                let reply = export(&db, &params, now).expect("the page exports");
                assert!(reply.body.contains("<transaction>"), "a page of records");
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        costs.push(times[REPEATS / 2]);
    }
    println!("{load} {} {} {}", costs[0], costs[1], costs[2]);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        measure(Path::new(&args[2]));
        return;
    }
    let sizes: Vec<usize> = std::env::var("MWSIM_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,200000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("MWSIM_BENCH_SIZES is a list of numbers")
        })
        .collect();
    let root = tempfile::tempdir().expect("a temporary directory");
    println!(
        "fake benchmark: modified-since pages of {PAGE} records (median of {REPEATS}), \
         Transaction with Detail lines"
    );
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "txns",
        "XML MB",
        "gen s",
        "load s",
        "peak MiB",
        "RSS/XML",
        "first ms",
        "middle ms",
        "last ms",
        "last/first size"
    );
    let mut smallest_last = None;
    for n in sizes {
        let dir: PathBuf = root.path().join(format!("tx{n}"));
        let (gen_secs, _, _) = run(generate(&dir, n));
        let bytes = dir_bytes(&dir);
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.arg("--measure").arg(&dir);
        let (_, peak_kib, out) = run(cmd);
        let v: Vec<f64> = out
            .split_whitespace()
            .map(|x| x.parse().expect("the child prints numbers"))
            .collect();
        let last = v[3];
        let base = *smallest_last.get_or_insert(last);
        let peak = peak_kib as f64 * 1024.0;
        println!(
            "{n:>9} {:>9.1} {gen_secs:>9.1} {:>9.1} {:>10.1} {:>8.2}x {:>10.3} {:>10.3} {:>10.3} {:>9.2}x",
            bytes as f64 / 1e6,
            v[0],
            peak / (1024.0 * 1024.0),
            peak / bytes as f64,
            v[1],
            v[2],
            last,
            last / base
        );
        std::fs::remove_dir_all(&dir).expect("the bench cleans up");
    }
}
