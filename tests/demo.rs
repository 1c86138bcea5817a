//! `mwsync demo` as a user runs it: the banner names the status page, the writer's edits
//! reach `main`, a conflicting one is reported with its fields, and a second run in the same
//! directory starts cleanly.

use std::process::{Command, Stdio};

fn demo(dir: &std::path::Path, polls: u32) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mwsync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MWSYNC_") {
            c.env_remove(k);
        }
    }
    let out = c
        .args([
            "demo",
            "--interval-secs",
            "1",
            "--status-port",
            "0",
            "--polls",
        ])
        .arg(polls.to_string())
        .arg("--dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The demo plays both halves (a write reaching main, a conflict and its report) and a
/// re-run in the same directory warns of nothing, no clock regression included.
#[test]
fn the_demo_shows_both_halves_and_reruns_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, out, err) = demo(dir.path(), 12);
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
