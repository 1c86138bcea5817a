//! The local status server: `GET /status` (JSON snapshot) and `GET /events` (server-sent
//! events). It owns the snapshot type and the HTTP plumbing (hyper, no framework); it must not
//! change engine state.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, Events};

/// What `GET /status` answers.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// `running`, `parked` (a human must act; mwsync keeps trying), `stopped` or `fatal`.
    pub state: String,
    /// Server time of the last finished poll.
    pub last_poll: Option<String>,
    /// Records committed by the last poll.
    pub last_poll_records: u64,
    /// Polls finished since start.
    pub polls: u64,
    /// Per table: the sync marker.
    pub markers: std::collections::BTreeMap<String, String>,
    /// The `main` tip.
    pub main: Option<String>,
    /// The last error, cleared by a successful poll.
    pub last_error: Option<String>,
    /// When `state` is `parked`: what a human must fix (mwsync tries again each interval).
    pub parked: Option<String>,
    /// Tables that failed in the last cycle while the others went on: table → error.
    pub table_errors: std::collections::BTreeMap<String, String>,
    /// Records MoneyWorks holds that mwsync cannot file, held back.
    pub quarantined: Vec<crate::quarantine::QuarantinedRecord>,
    /// Warnings that stand, such as a changes branch that does not exist.
    pub warnings: Vec<String>,
}

/// A shared, updatable snapshot.
pub type SharedStatus = Arc<Mutex<StatusSnapshot>>;

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type
            .parse()
            .expect("a static content type is a valid header value"),
    );
    r
}

fn sse(events: &Events) -> Response<Body> {
    let rx = events.subscribe();
    let hello = futures_util::stream::once(async {
        Ok::<_, Infallible>(Frame::data(Bytes::from(": connected\n\n")))
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    return Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from(sse_frame(&event)))),
                        rx,
                    ));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let body = StreamBody::new(futures_util::StreamExt::chain(hello, stream));
    let mut r = Response::new(BodyExt::boxed(body));
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        "text/event-stream".parse().expect("static header"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        "no-cache".parse().expect("static header"),
    );
    r
}

/// One SSE message: `event: <kind>` and the JSON event as data.
pub fn sse_frame(event: &Event) -> String {
    let json = serde_json::to_value(event)
        .expect("events always serialise because they hold only plain data");
    let kind = json
        .get("event")
        .and_then(|k| k.as_str())
        .unwrap_or("message")
        .to_string();
    format!("event: {kind}\ndata: {json}\n\n")
}

/// Binds `addr` and serves until `shutdown` is cancelled. Returns the bound address at once.
pub async fn serve(
    addr: SocketAddr,
    status: SharedStatus,
    events: Events,
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
            let status = status.clone();
            let events = events.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let status = status.clone();
                    let events = events.clone();
                    async move { Ok::<_, Infallible>(route(&req, &status, &events)) }
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

fn route(req: &Request<Incoming>, status: &SharedStatus, events: &Events) -> Response<Body> {
    if req.method() != hyper::Method::GET {
        return full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET is served\n".into(),
        );
    }
    match req.uri().path() {
        "/status" => {
            let snapshot = status.lock().map(|s| s.clone()).unwrap_or_default();
            let body =
                serde_json::to_string_pretty(&snapshot).expect("the snapshot always serialises");
            full(StatusCode::OK, "application/json", body + "\n")
        }
        "/events" => sse(events),
        _ => full(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /status or /events\n".into(),
        ),
    }
}
