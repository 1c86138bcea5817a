//! Golden files: the exact shape of what lands on `main` (file layout, canonical record
//! bytes, commit messages) for a small fixed document. Expected text lives in
//! `tests/golden/*.txt`; `[..]` matches anything up to the end of a line's next literal text.
//! `BLESS=1 cargo test -p mwsync --test main golden` rewrites the files; review the diff.

use std::path::PathBuf;

use mwsync::config::RepoConfigFile;
use mwsync::record::RecordKey;
use mwsync_sim::layout;

use crate::support::{Harness, StoreKind, sim_builder};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// True when `actual` matches `expected`, where `[..]` in `expected` matches any text
/// within one line.
fn matches(expected: &str, actual: &str) -> bool {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    e.len() == a.len() && e.iter().zip(&a).all(|(e, a)| line_matches(e, a))
}

fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let Some(mut rest) = line.strip_prefix(parts[0]) else {
        return false;
    };
    for (i, part) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn check(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if !matches(&expected, actual) {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
            .unified_diff()
            .header("expected", "actual")
            .to_string();
        panic!("{name} differs from its golden file (BLESS=1 to accept):\n{diff}");
    }
}

/// The wildcard matcher accepts what it should and nothing more.
#[test]
fn wildcards_match_within_a_line() {
    assert!(line_matches(
        "commit [..] on main",
        "commit 0123abc on main"
    ));
    assert!(line_matches("a[..]", "abc"));
    assert!(!line_matches(
        "commit [..] on main",
        "commit 0123abc on dev"
    ));
    assert!(!matches("a\nb", "a"));
}

/// A first sync of a small fixed document lays out `main` and words its commit exactly so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_layout_and_message() {
    let repo = RepoConfigFile {
        tables: vec!["Name".into(), "Account".into()],
        ..RepoConfigFile::default()
    };
    let mut h = Harness::start(
        sim_builder().seed(11).names(2).accounts(1),
        StoreKind::Memory,
        repo,
    )
    .await;
    h.sim.upsert(
        "Name",
        "ACME",
        &[("name", "Acme & Sons"), ("phone", "555 0100")],
    );
    h.cycle().await.expect("first sync");
    h.sim.advance(60);
    h.sim.upsert("Name", "ACME", &[("phone", "555 0199")]);
    h.cycle().await.expect("second poll");
    let files = h.main_files();
    let mut tree = String::new();
    for (path, bytes) in &files {
        tree.push_str(&format!("{path} {} bytes\n", bytes.len()));
    }
    check("first_sync_tree.txt", &tree);
    let acme = files
        .iter()
        .find(|(p, _)| p.ends_with("/ACME.xml"))
        .expect("ACME is on main");
    check("acme_record.xml.txt", &String::from_utf8_lossy(acme.1));
    let mut log = String::new();
    for info in h.repo.log("main") {
        log.push_str(&format!(
            "commit with {} parent(s) by {}\n\n{}\n",
            info.parents.len(),
            info.author,
            info.message
        ));
    }
    check("first_sync_log.txt", &log);
}

/// Codes that stress the key encoding: lowercase letters, `/`, `%`, `~`, a space, non-ASCII
/// letters and Windows device names (escaped or, in lowercase, not needing it).
const AWKWARD_CODES: &[&str] = &[
    "acme", "A/B", "50%", "A~B", "A B", "Äpfel", "日本", "CON", "COM1", "lpt1", "Nul",
];

/// A fake document holding exactly one Name per awkward code, with fixed values.
async fn awkward_sim() -> mwsync_sim::fake::Sim {
    let sim = sim_builder().start().await;
    for code in AWKWARD_CODES {
        sim.upsert(
            "Name",
            code,
            &[("name", &format!("{code} Ltd")), ("phone", "555 0100")],
        );
    }
    sim
}

/// Record files as the golden text: `== path`, then the file's bytes, per file.
fn render(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> String {
    let mut out = String::new();
    for (path, bytes) in files {
        out.push_str(&format!("== {path}\n{}", String::from_utf8_lossy(&bytes)));
    }
    out
}

/// The engine files awkward codes at exactly the paths and bytes written out in the golden
/// file, end to end through a first sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_codes_land_as_written_out() {
    let repo = RepoConfigFile {
        tables: vec!["Name".into()],
        ..RepoConfigFile::default()
    };
    let mut h = Harness::start(sim_builder(), StoreKind::Memory, repo).await;
    for code in AWKWARD_CODES {
        h.sim.upsert(
            "Name",
            code,
            &[("name", &format!("{code} Ltd")), ("phone", "555 0100")],
        );
    }
    h.cycle().await.expect("first sync");
    check("awkward_codes.txt", &render(h.main_records()));
    for code in AWKWARD_CODES {
        let table = mwsync::record::table_info("Name").expect("known");
        let path = mwsync::record::record_path(table, &RecordKey::Code(code.to_string()));
        assert!(h.main_records().contains_key(&path), "{code} at {path}");
    }
}

/// The simulator's own layout gives the same paths and bytes as the golden file, so the
/// oracle the scenarios use agrees with the literal expectation too.
#[tokio::test]
async fn simulator_layout_matches_the_awkward_golden_file() {
    let sim = awkward_sim().await;
    let files: std::collections::BTreeMap<String, Vec<u8>> = sim
        .records("Name")
        .iter()
        .map(|r| {
            let path = layout::record_path(r).expect("keyed");
            let bytes = layout::canonical_xml(r).expect("writable").into_bytes();
            (path, bytes)
        })
        .collect();
    assert_eq!(files.len(), AWKWARD_CODES.len());
    if std::env::var_os("BLESS").is_none() {
        check("awkward_codes.txt", &render(files));
    }
}
