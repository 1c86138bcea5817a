//! The upload gateway's own suite (`gateway/`, TypeScript on Deno) run as part of
//! `cargo test`: the pinned Deno from `scripts/install-deno`, then format, lint and type
//! checks and `deno test` against a real `git http-backend`. It owns only running that
//! suite; the gateway's tests live in `gateway/test/`.

use std::path::Path;
use std::process::Command;

/// The pinned Deno binary, installed from the npm registry on first use.
pub fn deno() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/install-deno"))
        .output()
        .expect("scripts/install-deno runs");
    assert!(
        out.status.success(),
        "installing the pinned Deno failed (npm and the npm registry are needed):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("the script prints a path")
        .trim()
        .to_string()
}

/// The gateway passes `deno fmt --check`, `deno lint`, `deno check` and its whole `deno test`.
#[test]
fn gateway_suite_passes() {
    let deno = deno();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway");
    for args in [
        &["fmt", "--check"][..],
        &["lint"],
        &["check", "main.ts", "src", "test"],
        &["test", "-P"],
    ] {
        let out = Command::new(&deno)
            .args(args)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("deno runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "deno {}:\n{text}", args.join(" "));
        if args[0] == "test" {
            let summary = text
                .lines()
                .find(|l| l.starts_with("ok |"))
                .expect("deno test prints its summary");
            eprintln!("gateway: {summary}");
        }
    }
}
