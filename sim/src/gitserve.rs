//! A real git smart-HTTP server for end-to-end runs: it serves the bare repositories under a
//! root directory by running `git http-backend` as a CGI program, and refuses every request
//! that does not carry the API key (as the HTTP Basic password, any user, or a Bearer token).
//!
//! It owns only the HTTP side (authentication, CGI environment, streaming); git itself
//! decides everything about repositories. A refused request gets 401 with an empty body, so
//! nothing about the repositories leaks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// Flags of `mwsim git-serve`.
#[derive(clap::Args, Debug)]
pub struct GitServeArgs {
    /// Directory whose bare repositories are served (`<root>/<name>` is `http://ADDR/<name>`).
    #[arg(long)]
    pub root: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// The API key every request must carry.
    #[arg(long, env = "MWSIM_GIT_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// Serves until interrupted. Prints exactly one stdout line, `listening on http://ADDR`,
/// once it accepts connections.
pub async fn serve(args: GitServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.root.is_dir(),
        "--root {} is not a directory",
        args.root.display()
    );
    anyhow::ensure!(!args.api_key.is_empty(), "--api-key must not be empty");
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    let app = router(&args.root, &args.api_key);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, serve until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}

/// A git HTTP server on its own thread and runtime, for tests: a test whose engine blocks
/// its own runtime on git command-line calls cannot deadlock it.
#[derive(Debug)]
pub struct GitServer {
    /// Where it listens.
    addr: SocketAddr,
    /// The served root.
    root: PathBuf,
    /// Tells the server to stop.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitServer {
    /// Starts serving the bare repositories under `root` on a free loopback port.
    pub fn start(root: &Path, api_key: &str) -> std::io::Result<GitServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = router(root, api_key);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mwsim-git-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("git server cannot listen: {e}");
                            return;
                        }
                    };
                    let shutdown = async {
                        // A dropped sender also means stop.
                        let _ = stopped.await;
                    };
                    if let Err(e) = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!("git server stopped: {e}");
                    }
                });
            })?;
        Ok(GitServer {
            addr,
            root: root.to_path_buf(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URL of repository `repo` (a directory under the root).
    pub fn url(&self, repo: &str) -> String {
        format!("http://{}/{}", self.addr, repo.trim_start_matches('/'))
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates an empty bare repository `repo` under the root and returns its path.
    pub fn init_bare(&self, repo: &str) -> std::io::Result<PathBuf> {
        let path = self.root.join(repo);
        std::fs::create_dir_all(&path)?;
        let status = neutral_git(&self.root)
            .arg("init")
            .arg("--bare")
            .arg("--quiet")
            .arg("--initial-branch=main")
            .arg(&path)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "git init --bare {} failed with {status}",
                path.display()
            )));
        }
        Ok(path)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A `git` command that reads no system or user configuration.
fn neutral_git(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", home);
    cmd
}

/// What every request handler needs.
struct Ctx {
    /// The served root.
    root: PathBuf,
    /// The key.
    api_key: String,
}

/// The whole server: one handler for every path.
fn router(root: &Path, api_key: &str) -> Router {
    let ctx = Arc::new(Ctx {
        root: root.to_path_buf(),
        api_key: api_key.to_string(),
    });
    Router::new().fallback(handle).with_state(ctx)
}

/// Compares without an early exit, so timing reveals nothing about the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when the request carries the key as Basic password or Bearer token.
fn authorized(headers: &HeaderMap, key: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, rest)) = value.trim().split_once(' ') else {
        return false;
    };
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return same(rest.as_bytes(), key.as_bytes());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        return match decoded.iter().position(|&b| b == b':') {
            Some(i) => same(&decoded[i + 1..], key.as_bytes()),
            None => false,
        };
    }
    false
}

/// The 401 reply: no body, only the challenge git needs.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"mwsync-sim\"")],
        Body::empty(),
    )
        .into_response()
}

/// Runs one request through `git http-backend`.
async fn handle(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    if !authorized(req.headers(), &ctx.api_key) {
        return unauthorized();
    }
    let path = req.uri().path().to_string();
    if path.split('/').any(|p| p == "..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    match run_cgi(&ctx, req, &path).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("git http-backend failed for {path}: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Spawns the CGI program, streams the request body in and the reply out.
async fn run_cgi(ctx: &Ctx, req: Request, path: &str) -> std::io::Result<Response> {
    let mut child = backend_command(ctx, &req, path).spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin pipe"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    if let Some(mut stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut s = String::new();
            if stderr.read_to_string(&mut s).await.is_ok() && !s.trim().is_empty() {
                tracing::debug!("git http-backend: {}", s.trim());
            }
        });
    }
    let mut body = req.into_body().into_data_stream();
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Dropping stdin closes it, which ends the request body for the backend.
    });
    let mut reader = BufReader::new(stdout);
    let (status, headers) = cgi_headers(&mut reader).await?;
    let mut response = Response::new(Body::from_stream(body_stream(reader, child)));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// `git http-backend` with a clean git environment and the CGI variables of `req`.
fn backend_command(ctx: &Ctx, req: &Request, path: &str) -> tokio::process::Command {
    let headers = req.headers();
    let text = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut cmd = tokio::process::Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("http-backend")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", &ctx.root)
        .env("GIT_PROJECT_ROOT", &ctx.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("REQUEST_METHOD", req.method().as_str())
        .env("QUERY_STRING", req.uri().query().unwrap_or(""))
        .env("REMOTE_USER", "mwsync")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (header, var) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_LENGTH, "CONTENT_LENGTH"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
        (HeaderName::from_static("git-protocol"), "GIT_PROTOCOL"),
    ] {
        if let Some(v) = text(header) {
            cmd.env(var, v);
        }
    }
    cmd
}

/// Reads the CGI header block: the `Status:` line and the other headers, up to the blank line.
async fn cgi_headers<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<(StatusCode, HeaderMap)> {
    let mut status = StatusCode::OK;
    let mut out_headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("200");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out_headers.append(n, v);
        }
    }
    Ok((status, out_headers))
}

/// The rest of the backend's output as a body stream; the process is reaped at its end.
fn body_stream(
    reader: BufReader<tokio::process::ChildStdout>,
    child: tokio::process::Child,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(Some((reader, child)), |state| async move {
        let (mut reader, mut child) = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => {
                // Reap the backend; its exit status was already expressed in the reply.
                let _ = child.wait().await;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some((reader, child))))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(v).expect("ascii"),
        );
        h
    }

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// The key is accepted as Basic password with any user or as a Bearer token, and nothing
    /// else passes.
    #[test]
    fn only_the_key_authorizes() {
        let key = "k-123";
        assert!(authorized(&with_auth(&basic("anyone:k-123")), key));
        assert!(authorized(&with_auth(&basic(":k-123")), key));
        assert!(authorized(&with_auth("Bearer k-123"), key));
        assert!(authorized(&with_auth("bearer k-123"), key));
        assert!(!authorized(&HeaderMap::new(), key));
        assert!(!authorized(&with_auth(&basic("k-123:wrong")), key));
        assert!(!authorized(&with_auth(&basic("k-123")), key));
        assert!(!authorized(&with_auth("Bearer k-12"), key));
        assert!(!authorized(&with_auth("Basic !!notbase64"), key));
        assert!(!authorized(&with_auth("Digest k-123"), key));
        assert!(!authorized(&with_auth("k-123"), key));
    }
}
