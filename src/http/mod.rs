//! The local status server: `GET /` (the status page, a static file in the binary),
//! `/status` (JSON snapshot), `/events` (server-sent events, see `sse`), `/healthz` and
//! `/healthz/ready` (liveness and readiness) and `/metrics` (OpenMetrics text). It owns the
//! HTTP plumbing (hyper, no framework) and the routes; it must not change engine state.

pub mod sse;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::events::Events;
use crate::status::{Board, DaemonState};

/// The status page: one static HTML file with its script and styles inline.
pub const PAGE: &str = include_str!("page.html");

/// How the server behaves.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Silence on `/events` after which a keep-alive comment is sent.
    pub keepalive: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            keepalive: Duration::from_secs(sse::DEFAULT_KEEPALIVE_SECS),
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        content_type
            .parse()
            .expect("a static content type is a valid header value"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    r
}

fn sse(events: &Events, last: Option<&str>, options: &ServeOptions) -> Response<Body> {
    let stream = sse::event_stream(events, last, options.keepalive);
    let frames = futures_util::StreamExt::map(stream, |b| Ok::<_, Infallible>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        "text/event-stream".parse().expect("static header"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        "no-cache".parse().expect("static header"),
    );
    // Proxies such as nginx must not buffer the stream.
    h.insert("x-accel-buffering", "no".parse().expect("static header"));
    r
}

/// Binds `addr` and serves until `shutdown` is cancelled. Returns the bound address at once.
pub async fn serve(
    addr: SocketAddr,
    board: Board,
    events: Events,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let board = board.clone();
            let events = events.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let board = board.clone();
                    let events = events.clone();
                    async move { Ok::<_, Infallible>(route(&req, &board, &events, &options)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    });
    Ok(local)
}

/// The id a reconnecting client resumes after: the `Last-Event-ID` header (sent by browsers
/// on their own reconnects) or the `last_event_id` query parameter (for a new connection).
fn last_event_id(req: &Request<Incoming>) -> Option<String> {
    if let Some(v) = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return Some(v.to_string());
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "last_event_id")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty())
    })
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_string_pretty(value).expect("plain data always serialises");
    full(status, "application/json", body + "\n")
}

fn route(
    req: &Request<Incoming>,
    board: &Board,
    events: &Events,
    options: &ServeOptions,
) -> Response<Body> {
    if req.method() != hyper::Method::GET {
        return full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET is served\n".into(),
        );
    }
    match req.uri().path() {
        "/" | "/index.html" => full(StatusCode::OK, "text/html; charset=utf-8", PAGE.into()),
        "/status" => json(StatusCode::OK, &board.snapshot()),
        "/events" => sse(events, last_event_id(req).as_deref(), options),
        "/healthz" => {
            let h = health(board);
            let code = if h.live {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(code, &h)
        }
        "/healthz/ready" => {
            let h = health(board);
            let code = if h.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(code, &h)
        }
        "/metrics" => full(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            board.metrics().encode(),
        ),
        _ => full(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /, /status, /events, /healthz, /healthz/ready or /metrics\n".into(),
        ),
    }
}

/// What `/healthz` and `/healthz/ready` answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// The daemon loop runs (it may be failing and retrying).
    pub live: bool,
    /// The last cycle succeeded: `main` is as current as one poll interval allows.
    pub ready: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// Liveness and readiness from the board (see `docs/status.md`).
pub fn health(board: &Board) -> Health {
    let s = board.snapshot();
    let last_error = s
        .errors
        .iter()
        .find(|e| e.stage != "retry")
        .map_or("see the log", |e| e.message.as_str());
    let not = |live: bool, reason: String| Health {
        live,
        ready: false,
        reason: Some(reason),
    };
    match s.state {
        DaemonState::Fatal => not(false, format!("stopped for a human: {last_error}")),
        DaemonState::Stopped => not(false, "stopped".into()),
        _ if s.last_cycle_ok == Some(false) => not(
            true,
            format!("the last cycle failed and will be retried: {last_error}"),
        ),
        DaemonState::Starting => not(
            true,
            match s.activity.kind {
                crate::events::ActivityKind::FirstSync => "the first sync is running".into(),
                _ => "no cycle has finished yet".into(),
            },
        ),
        DaemonState::Running => Health {
            live: true,
            ready: true,
            reason: None,
        },
    }
}
