//! The network under the MoneyWorks client: one HTTP request in, status, headers and body
//! out. Production sends with reqwest (rustls); a test or a simulation may answer in-process
//! instead. It owns only moving bytes and must not retry or read meaning into a reply: URLs,
//! credentials, timeouts and the meaning of replies stay in `client`, so they are exercised
//! whichever transport is used.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

/// A request as the client builds it: method, full URL, headers (credentials included) and
/// body.
pub type HttpRequest = http::Request<Bytes>;
/// A reply: status, headers and the whole body.
pub type HttpReply = http::Response<Bytes>;

/// The request did not get an answer: no connection, a broken one, or a local failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TransportError {
    /// What went wrong, without the URL.
    pub detail: String,
}

/// Sends one request and returns the whole reply. Implementations must not retry, follow
/// policy or look at what the reply means.
pub trait Transport: Send + Sync {
    /// Sends `request`; an HTTP error status is a reply, not an error.
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpReply, TransportError>> + Send;
}

/// The production transport: a reqwest client with rustls.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A client whose connections must open within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Result<ReqwestTransport, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| TransportError {
                detail: e.to_string(),
            })?;
        Ok(ReqwestTransport { client })
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpReply, TransportError> {
        let failed = |e: reqwest::Error| TransportError {
            detail: if e.is_timeout() {
                "the request timed out".to_string()
            } else {
                cause_chain(&e.without_url())
            },
        };
        let request = reqwest::Request::try_from(request).map_err(failed)?;
        let response = self.client.execute(request).await.map_err(failed)?;
        let mut reply = http::Response::builder().status(response.status());
        if let Some(headers) = reply.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = response.bytes().await.map_err(failed)?;
        reply.body(body).map_err(|e| TransportError {
            detail: e.to_string(),
        })
    }
}

/// An error and every cause under it, joined with `: ` (each message once), so "error sending
/// request" says whether DNS, a refused connection or TLS was to blame.
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection names its cause, not only "error sending request".
    #[tokio::test]
    async fn a_refused_connection_names_its_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let t = ReqwestTransport::new(Duration::from_secs(5)).expect("client");
        let request = http::Request::builder()
            .uri(format!("http://{addr}/REST//version"))
            .body(Bytes::new())
            .expect("request");
        let err = t.send(request).await.expect_err("nothing listens");
        assert!(
            err.detail
                .to_ascii_lowercase()
                .contains("connection refused"),
            "{}",
            err.detail
        );
    }
}
