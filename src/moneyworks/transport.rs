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

/// Bytes in a megabyte, for the reply cap.
pub const MB: u64 = 1024 * 1024;

/// The default cap on one reply (`max_reply_mb`): 256 MB.
pub const DEFAULT_MAX_REPLY_BYTES: u64 = 256 * MB;

/// The request did not get a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection, a broken one, or a local failure; `detail` carries the cause chain
    /// (DNS, refused, TLS, timeout), without the URL.
    #[error("{detail}")]
    Failed {
        /// What went wrong.
        detail: String,
    },
    /// The reply body grew past the cap; reading stopped there.
    #[error("the reply is larger than {limit_bytes} bytes")]
    TooLarge {
        /// The cap.
        limit_bytes: u64,
    },
}

impl TransportError {
    /// A failure described by `detail`.
    pub fn failed(detail: impl Into<String>) -> TransportError {
        TransportError::Failed {
            detail: detail.into(),
        }
    }
}

/// Sends one request and returns the whole reply. Implementations must not retry, follow
/// policy or look at what the reply means.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request`; an HTTP error status is a reply, not an error.
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpReply, TransportError>> + Send;
}

/// The production transport: a reqwest client with rustls, and a cap on reply size.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_reply_bytes: u64,
}

impl ReqwestTransport {
    /// A client whose connections must open within `connect_timeout` and whose replies may
    /// be at most `max_reply_bytes` long.
    pub fn new(
        connect_timeout: Duration,
        max_reply_bytes: u64,
    ) -> Result<ReqwestTransport, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| TransportError::failed(describe(&e)))?;
        Ok(ReqwestTransport {
            client,
            max_reply_bytes,
        })
    }
}

/// What went wrong, with its whole cause chain and, first, the kind of failure in words an
/// operator can act on: DNS, a refused connection, TLS, a timeout. Never the URL.
pub fn describe(e: &reqwest::Error) -> String {
    let mut chain = vec![text_without_url(e)];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        source = s.source();
    }
    let full = chain.join(": ");
    let lower = full.to_ascii_lowercase();
    let kind = if e.is_timeout() || lower.contains("timed out") {
        "the request timed out"
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "the host name cannot be resolved (DNS)"
    } else if lower.contains("connection refused") {
        "the connection was refused (is MoneyWorks listening on that host and port?)"
    } else if lower.contains("invalidcontenttype")
        || lower.contains("tls")
        || lower.contains("certificate")
        || lower.contains("handshake")
        || lower.contains("corrupt message")
    {
        "the TLS handshake failed (is the port plain http://, or the certificate not trusted?)"
    } else if lower.contains("connection reset") || lower.contains("connection closed") {
        "the connection was closed before the reply was complete"
    } else {
        "the request failed"
    };
    format!("{kind}: {full}")
}

/// reqwest's own text of `e` without the URL it names (the URL is the caller's to show).
fn text_without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "(url)"),
        None => text,
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpReply, TransportError> {
        let failed = |e: reqwest::Error| TransportError::failed(describe(&e));
        let request = reqwest::Request::try_from(request).map_err(failed)?;
        let mut response = self.client.execute(request).await.map_err(failed)?;
        let too_large = TransportError::TooLarge {
            limit_bytes: self.max_reply_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_reply_bytes)
        {
            return Err(too_large);
        }
        let mut reply = http::Response::builder().status(response.status());
        if let Some(headers) = reply.headers_mut() {
            *headers = response.headers().clone();
        }
        // Chunks are kept as they come (no growing buffer that copies itself), and reading
        // stops at the cap, so an oversized reply costs at most the cap in memory.
        let mut chunks = Vec::new();
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            total += chunk.len() as u64;
            if total > self.max_reply_bytes {
                return Err(too_large);
            }
            chunks.push(chunk);
        }
        let body = match chunks.len() {
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut all = bytes::BytesMut::with_capacity(total as usize);
                for c in chunks {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        };
        reply
            .body(body)
            .map_err(|e| TransportError::failed(e.to_string()))
    }
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
        let t = ReqwestTransport::new(Duration::from_secs(5), 256 * MB).expect("client");
        let request = http::Request::builder()
            .uri(format!("http://{addr}/REST//version"))
            .body(Bytes::new())
            .expect("request");
        let err = t.send(request).await.expect_err("nothing listens");
        assert!(
            err.to_string()
                .to_ascii_lowercase()
                .contains("connection refused"),
            "{err}"
        );
    }
}
