//! `mwsync demo` as a user runs it: the banner names the status page, the writer's edits
//! reach `main`, a conflicting one is reported with its fields, and a second run in the same
//! directory starts cleanly.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo_cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mwsync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MWSYNC_") {
            c.env_remove(k);
        }
    }
    c.args([
        "demo",
        "--interval-secs",
        "1",
        "--status-port",
        "0",
        "--dir",
    ])
    .arg(dir)
    .env("RUST_LOG", "info")
    .stdin(Stdio::null());
    c
}

/// Runs the demo for `polls` polls.
fn demo(dir: &Path, polls: u32) -> (i32, String, String) {
    let out = demo_cmd(dir)
        .args(["--polls", &polls.to_string()])
        .output()
        .expect("the demo runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs the demo until its output has shown `until` (at most 120 s), then stops it as Ctrl-C
/// would (SIGTERM).
fn demo_until(dir: &Path, until: &str) -> (i32, String, String) {
    let mut child = demo_cmd(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo runs");
    let mut stderr = child.stderr.take().expect("piped");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !out.contains(until) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => break,
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("the demo stops");
    out.extend(rx.iter().map(|l| l + "\n"));
    (
        status.code().unwrap_or(-1),
        out,
        err.join().expect("stderr read"),
    )
}

/// The demo plays both halves (a write reaching main, a conflict and its report) and a
/// re-run in the same directory warns of nothing, no clock regression included.
#[test]
fn the_demo_shows_both_halves_and_reruns_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, out, err) = demo_until(dir.path(), "redo your edit");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("status page     : http://127.0.0.1:"), "{out}");
    assert!(out.contains("reached main after"), "{out}\n{err}");
    assert!(out.contains(": Conflict"), "{out}\n{err}");
    assert!(out.contains("phone: base \""), "{out}");
    assert!(out.contains("redo your edit"), "{out}");
    let (code, out, err) = demo(dir.path(), 3);
    assert_eq!(code, 0, "{out}\n{err}");
    for bad in ["WARN", "ERROR", "went back"] {
        assert!(!err.contains(bad), "the re-run says {bad}:\n{err}");
    }
    assert!(err.contains("poll finished"), "{err}");
}
