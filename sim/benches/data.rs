//! Benchmark of `mwsim generate` and `mwsim anonymize` on at least 200 MB of XML, against a
//! baseline that reads and rewrites the same XML with quick-xml and replaces nothing. Each
//! phase runs as its own child process so its peak memory (maximum RSS from `wait4`) is its
//! own. It owns measuring only; it must not write outside a temporary directory.
//!
//! Run: `cargo bench -p mwsync-sim --bench data` (set `MWSIM_BENCH_MB` for another size).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One measured child process.
struct Phase {
    name: &'static str,
    secs: f64,
    bytes: u64,
    peak_kib: i64,
}

impl Phase {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }
}

/// (bytes, files) below `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    for e in std::fs::read_dir(dir).expect("bench directory is readable") {
        let e = e.expect("bench directory entry");
        let meta = e.metadata().expect("bench file metadata");
        if meta.is_dir() {
            let (b, f) = dir_size(&e.path());
            bytes += b;
            files += f;
        } else {
            bytes += meta.len();
            files += 1;
        }
    }
    (bytes, files)
}

fn dir_bytes(dir: &Path) -> u64 {
    dir_size(dir).0
}

/// Runs `cmd`, waits with `wait4` and returns (seconds, peak RSS in KiB).
fn run(mut cmd: Command) -> (f64, i64) {
    let started = Instant::now();
    let child = cmd
        .spawn()
        .expect("the benchmark can start its child process");
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which nothing else waits
    // for (the Child handle is never waited on, and dropping it does not reap).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(rc, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed with status {status}"
    );
    drop(child);
    (secs, usage.ru_maxrss)
}

fn mwsim(args: &[&str], out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mwsim"));
    cmd.args(args).arg("--out").arg(out).env("RUST_LOG", "warn");
    cmd
}

fn generate(dir: &Path, transactions: usize) -> Command {
    let n = transactions.to_string();
    mwsim(
        &[
            "generate",
            "--seed",
            "1",
            "--names",
            "5000",
            "--products",
            "2000",
            "--jobs",
            "500",
            "--accounts",
            "80",
            "--transactions",
            &n,
        ],
        dir,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--baseline-copy") {
        let bytes = mwsync_sim::data::copy_xml_dir(Path::new(&args[2]), Path::new(&args[3]))
            .expect("baseline copy succeeds");
        println!("{bytes}");
        return;
    }
    let target_mb: u64 = std::env::var("MWSIM_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(210);
    let root = tempfile::tempdir().expect("a temporary directory");
    let path = |leaf: &str| -> PathBuf { root.path().join(leaf) };

    // Calibrate bytes per transaction on a small run, then size the real one.
    run(generate(&path("calibrate"), 2000));
    let small = dir_bytes(&path("calibrate"));
    run(generate(&path("calibrate0"), 0));
    let fixed = dir_bytes(&path("calibrate0"));
    let per_tx = (small - fixed) / 2000;
    let n = ((target_mb * 1_000_000).saturating_sub(fixed) / per_tx.max(1) + 1) as usize;

    let gen_dir = path("generated");
    let (secs, peak) = run(generate(&gen_dir, n));
    let (bytes, files) = dir_size(&gen_dir);
    let mut phases = vec![Phase {
        name: "generate",
        secs,
        bytes,
        peak_kib: peak,
    }];

    let mut copy = Command::new(std::env::current_exe().expect("own path"));
    copy.arg("--baseline-copy").arg(&gen_dir).arg(path("copy"));
    let (secs, peak) = run(copy);
    phases.push(Phase {
        name: "baseline copy",
        secs,
        bytes,
        peak_kib: peak,
    });

    let input = gen_dir.to_str().expect("utf-8 temp path");
    let (secs, peak) = run(mwsim(
        &["anonymize", "--seed", "7", "--in", input],
        &path("anon"),
    ));
    phases.push(Phase {
        name: "anonymize",
        secs,
        bytes,
        peak_kib: peak,
    });
    let (secs, peak) = run(mwsim(
        &[
            "anonymize",
            "--seed",
            "7",
            "--shift-dates",
            "--scale-amounts",
            "--in",
            input,
        ],
        &path("anon-shift"),
    ));
    phases.push(Phase {
        name: "anonymize +shift+scale",
        secs,
        bytes,
        peak_kib: peak,
    });

    let base = phases[1].mb_per_s();
    println!(
        "data benchmark: {n} transactions, {:.1} MB of verbose XML ({files} files)",
        bytes as f64 / 1e6
    );
    println!(
        "{:<24} {:>9} {:>9} {:>14} {:>10}",
        "phase", "secs", "MB/s", "vs baseline", "peak MiB"
    );
    for p in &phases {
        println!(
            "{:<24} {:>9.2} {:>9.1} {:>13.2}x {:>10.1}",
            p.name,
            p.secs,
            p.mb_per_s(),
            p.mb_per_s() / base,
            p.peak_kib as f64 / 1024.0
        );
    }
}
