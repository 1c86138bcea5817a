//! The simulator's git smart-HTTP server: refusal without the key, and request bodies that
//! git compresses.

use mwsync_sim::gitserve::GitServer;

use super::git;

const KEY: &str = "serve-key-31a7";

/// CRC-32 (IEEE), bit by bit: small and only for building test bodies.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A gzip member holding `data` in one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("small test body");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x01];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Without the key every path gets 401 with an empty body; with it the refs are served.
#[tokio::test]
async fn refuses_without_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = GitServer::start(tmp.path(), KEY).expect("server");
    server.init_bare("r.git").expect("init");
    let http = reqwest::Client::new();
    let refs = format!("{}/info/refs?service=git-upload-pack", server.url("r.git"));
    for (auth, path) in [
        (None, refs.clone()),
        (Some("Bearer wrong"), refs.clone()),
        (Some("Basic bWU6d3Jvbmc="), refs.clone()),
        (None, format!("{}/HEAD", server.url("r.git"))),
        (None, server.url("missing.git")),
    ] {
        let mut req = http.get(&path);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.expect("reply");
        assert_eq!(resp.status(), 401, "{auth:?} {path}");
        assert!(resp.headers().contains_key("www-authenticate"));
        assert!(
            resp.bytes().await.expect("body").is_empty(),
            "{auth:?} {path}"
        );
    }
    let ok = http
        .get(&refs)
        .header("Authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .expect("reply");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["content-type"],
        "application/x-git-upload-pack-advertisement"
    );
}

/// A gzip-encoded request body (git compresses large fetch requests) reaches the backend
/// decoded: a protocol v2 `ls-refs` sent gzipped lists the branch.
#[tokio::test]
async fn gzip_request_bodies_are_decoded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = GitServer::start(tmp.path(), KEY).expect("server");
    let repo = server.init_bare("r.git").expect("init");
    let work = tmp.path().join("w");
    git(
        tmp.path(),
        &[
            "init",
            "--quiet",
            "--initial-branch=main",
            &work.to_string_lossy(),
        ],
    );
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "x",
        ],
    );
    git(&work, &["push", "--quiet", &repo.to_string_lossy(), "main"]);
    let tip = git(&work, &["rev-parse", "HEAD"]);

    let body = gzip_stored(b"0014command=ls-refs\n0000");
    let resp = reqwest::Client::new()
        .post(format!("{}/git-upload-pack", server.url("r.git")))
        .header("Authorization", format!("Bearer {KEY}"))
        .header("Content-Type", "application/x-git-upload-pack-request")
        .header("Content-Encoding", "gzip")
        .header("Git-Protocol", "version=2")
        .body(body)
        .send()
        .await
        .expect("reply");
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8_lossy(&resp.bytes().await.expect("body")).into_owned();
    assert!(
        text.contains(&format!("{} refs/heads/main", tip.trim())),
        "{text}"
    );
}
