//! The production `MoneyWorks` implementation: the Datacentre REST API as
//! `shared/MONEYWORKS.md` describes it, over a [`Transport`] (reqwest in production). It owns
//! URL building, the two-realm Basic headers, the request timeout and turning HTTP outcomes
//! into classified `MwError`s; it must not retry (see `crate::retry`) or decide what to fetch.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::transport::{MB, ReqwestTransport, Transport, TransportError};
use super::xml::parse_export;
use super::{Direction, ExportFormat, ExportPage, ExportQuery, MoneyWorks, MwError};
use crate::config::{MoneyWorksEndpoint, encode_document};

/// Everything but unreserved characters is encoded, so `=`, `&`, `/`, `?`, `%`, quotes,
/// backquotes and spaces (as `%20`, never `+`) are safe inside parameter values.
const PARAM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The longest slice of a reply body quoted in an error.
const SNIPPET: usize = 200;

/// The longest a connection may take to open, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a server says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The reply to `version`.
    pub version: String,
    /// The `Server:` header, e.g. `MoneyWorks_Datacentre/9.2.1 REST/9.2.1 Login_Required`.
    pub server: Option<String>,
}

impl ServerInfo {
    /// True when the server asks for a Datacentre folder login as well.
    pub fn login_required(&self) -> bool {
        self.server
            .as_deref()
            .is_some_and(|s| s.contains("Login_Required"))
    }
}

/// A MoneyWorks Datacentre reached over HTTP(S) through transport `T`.
#[derive(Debug, Clone)]
pub struct HttpMoneyWorks<T = ReqwestTransport> {
    transport: T,
    base: String,
    origin: String,
    auth: Vec<HeaderValue>,
    timeout: Duration,
}

impl HttpMoneyWorks<ReqwestTransport> {
    /// A client for `endpoint` over reqwest; every request is abandoned after `timeout`, and
    /// a reply larger than `max_reply_bytes` is refused unread past that size.
    pub fn new(
        endpoint: &MoneyWorksEndpoint,
        timeout: Duration,
        max_reply_bytes: u64,
    ) -> Result<HttpMoneyWorks, MwError> {
        let transport = ReqwestTransport::new(timeout.min(MAX_CONNECT_TIMEOUT), max_reply_bytes)
            .map_err(|e| MwError::Transport {
                endpoint: endpoint.origin.clone(),
                detail: e.to_string(),
            })?;
        HttpMoneyWorks::with_transport(endpoint, timeout, transport)
    }
}

impl<T: Transport> HttpMoneyWorks<T> {
    /// A client for `endpoint` that sends through `transport`; every request is abandoned
    /// after `timeout` (on `tokio::time`, so a paused clock governs it).
    pub fn with_transport(
        endpoint: &MoneyWorksEndpoint,
        timeout: Duration,
        transport: T,
    ) -> Result<HttpMoneyWorks<T>, MwError> {
        let basic = |user: &str, realm: &str, password: &str| -> Result<HeaderValue, MwError> {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{realm}:{password}"));
            let mut value =
                HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| MwError::Auth {
                    detail: "the credentials cannot be sent in an HTTP header".into(),
                })?;
            value.set_sensitive(true);
            Ok(value)
        };
        let mut auth = vec![basic(
            &endpoint.user,
            "Document",
            endpoint.password.expose(),
        )?];
        if let Some((folder, password)) = &endpoint.folder {
            auth.push(basic(folder, "Datacentre", password.expose())?);
        }
        Ok(HttpMoneyWorks {
            transport,
            base: format!(
                "{}/REST/{}",
                endpoint.origin,
                encode_document(&endpoint.document)
            ),
            origin: endpoint.origin.clone(),
            auth,
            timeout,
        })
    }

    fn url(&self, command: &str, params: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{command}", self.base);
        for (i, (name, value)) in params.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(name);
            url.push('=');
            url.push_str(&utf8_percent_encode(value, PARAM).to_string());
        }
        url
    }

    /// What the server says of itself at `GET /REST//version` (no document needed): its
    /// version and its `Server:` header.
    pub async fn server_info(&self) -> Result<ServerInfo, MwError> {
        let url = format!("{}/REST//version", self.origin);
        let reply = self
            .send_raw("version", http::Method::GET, url, None)
            .await?;
        let server = reply
            .headers()
            .get(http::header::SERVER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = reply.status().as_u16();
        let version = classify_reply("version", status, reply_text(reply.into_body()))?
            .trim()
            .to_string();
        Ok(ServerInfo { version, server })
    }

    /// `GET /REST//list`: the documents of the server, which needs the folder login where
    /// the server asks for one.
    pub async fn server_list(&self) -> Result<String, MwError> {
        let url = format!("{}/REST//list", self.origin);
        let reply = self.send_raw("list", http::Method::GET, url, None).await?;
        let status = reply.status().as_u16();
        classify_reply("list", status, reply_text(reply.into_body()))
    }

    /// Sends one request with the credentials and returns the reply text or a classified
    /// error.
    async fn send(
        &self,
        command: &str,
        method: http::Method,
        url: String,
        body: Option<String>,
    ) -> Result<String, MwError> {
        let reply = self.send_raw(command, method, url, body).await?;
        let status = reply.status().as_u16();
        classify_reply(command, status, reply_text(reply.into_body()))
    }

    /// Sends one request with the credentials and returns the whole reply; only a request
    /// that got no answer is an error here.
    async fn send_raw(
        &self,
        command: &str,
        method: http::Method,
        url: String,
        body: Option<String>,
    ) -> Result<super::transport::HttpReply, MwError> {
        let transport_error = |detail: String| MwError::Transport {
            endpoint: self.origin.clone(),
            detail,
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header(USER_AGENT, concat!("mwsync/", env!("CARGO_PKG_VERSION")));
        for value in &self.auth {
            request = request.header(AUTHORIZATION, value.clone());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "text/xml");
        }
        let request = request
            .body(body.map_or_else(Bytes::new, Bytes::from))
            .map_err(|e| transport_error(format!("cannot build the request: {e}")))?;
        tokio::time::timeout(self.timeout, self.transport.send(request))
            .await
            .map_err(|_| {
                transport_error(format!(
                    "no answer within {} s (the request timed out)",
                    self.timeout.as_secs()
                ))
            })?
            .map_err(|e| match e {
                TransportError::TooLarge { limit_bytes } => MwError::TooLarge {
                    command: command.to_string(),
                    limit_mb: limit_bytes / MB,
                },
                TransportError::Failed { detail } => transport_error(detail),
            })
    }

    fn export_params(query: &ExportQuery) -> Vec<(&'static str, String)> {
        let mut params = vec![("table", query.table.name.to_ascii_lowercase())];
        if let Some(search) = &query.search {
            params.push(("search", search.clone()));
        }
        if let Some(sort) = &query.sort {
            params.push(("sort", sort.clone()));
            let dir = match query.direction {
                Direction::Ascending => "ascending",
                Direction::Descending => "descending",
            };
            params.push(("direction", dir.to_string()));
        }
        params.push(("start", query.start.to_string()));
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        let format = match &query.format {
            ExportFormat::Verbose => "xml-verbose".to_string(),
            ExportFormat::Custom(template) => template.clone(),
        };
        params.push(("format", format));
        params.push(("no_linger", "true".to_string()));
        params
    }

    async fn export_raw(&self, query: &ExportQuery) -> Result<String, MwError> {
        let params = Self::export_params(query);
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = self.url("export", &borrowed);
        self.send("export", http::Method::GET, url, None).await
    }
}

/// Turns an HTTP status and body into the reply text or a classified error.
pub fn classify_reply(command: &str, status: u16, body: String) -> Result<String, MwError> {
    // The server's failure texts are recognised only in error replies or plain-text bodies,
    // never inside an XML export, where a record's notes could quote them.
    let plain = status >= 400 || !body.trim_start().starts_with('<');
    if plain && body.contains("licensed concurrent users limit") {
        return Err(MwError::LicenceLimit);
    }
    if (plain && body.contains("DoConnect failed")) || status == 401 || status == 403 {
        return Err(MwError::Auth {
            detail: snippet(&body, "no message"),
        });
    }
    if status >= 400 {
        return Err(MwError::Http {
            command: command.to_string(),
            status,
            body: snippet(&body, "empty body"),
        });
    }
    if let Some(rest) = body.trim_start().strip_prefix("[ERROR]") {
        let message = snippet(rest, "no message");
        // Only an import changes data; an `[ERROR]` to a read is a failed read.
        return Err(if command == "import" {
            MwError::Rejected { message }
        } else {
            MwError::ErrorReply {
                command: command.to_string(),
                message,
            }
        });
    }
    Ok(body)
}

fn snippet(body: &str, empty: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return empty.to_string();
    }
    let mut end = trimmed.len().min(SNIPPET);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end].to_string()
}

impl<T: Transport> MoneyWorks for HttpMoneyWorks<T> {
    async fn export(&self, query: &ExportQuery) -> Result<ExportPage, MwError> {
        debug_assert!(matches!(query.format, ExportFormat::Verbose));
        let body = self.export_raw(query).await?;
        let doc =
            parse_export(&body, Some(query.table)).map_err(|detail| MwError::InvalidReply {
                command: "export".into(),
                detail,
            })?;
        if doc.start != query.start {
            return Err(MwError::InvalidReply {
                command: "export".into(),
                detail: format!(
                    "asked for start={} but the reply says start={}",
                    query.start, doc.start
                ),
            });
        }
        let held = doc.records.len() + doc.rejected.len();
        if let Some(limit) = query.limit
            && held > limit as usize
        {
            return Err(MwError::InvalidReply {
                command: "export".into(),
                detail: format!("asked for at most {limit} records but got {held}"),
            });
        }
        Ok(ExportPage {
            records: doc.records,
            rejected: doc.rejected,
            start: doc.start,
            found: doc.found,
        })
    }

    async fn export_text(&self, query: &ExportQuery) -> Result<String, MwError> {
        self.export_raw(query).await
    }

    async fn import(&self, body: &str) -> Result<String, MwError> {
        let url = self.url("import", &[("no_linger", "true")]);
        self.send("import", http::Method::POST, url, Some(body.to_string()))
            .await
    }

    async fn evaluate(&self, expr: &str) -> Result<String, MwError> {
        let url = self.url("evaluate", &[("expr", expr), ("no_linger", "true")]);
        let body = self.send("evaluate", http::Method::GET, url, None).await?;
        Ok(body.trim().to_string())
    }
}

/// A reply's text; invalid UTF-8 becomes U+FFFD. A valid reply (nearly all) is taken over
/// without a copy: a page of transactions is most of a megabyte.
fn reply_text(body: Bytes) -> String {
    String::from_utf8(Vec::from(body))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::config::Secret;
    use crate::error::{Classify, ErrorClass};
    use crate::moneyworks::transport::{HttpReply, HttpRequest};
    use crate::record::table_info;

    /// A transport that answers from a script, keeping every request it was given.
    #[derive(Default)]
    struct Scripted {
        seen: Mutex<Vec<HttpRequest>>,
        replies: Mutex<VecDeque<Result<(u16, String), TransportError>>>,
    }

    impl Scripted {
        fn reply(self, status: u16, body: &str) -> Scripted {
            self.replies
                .lock()
                .expect("test lock")
                .push_back(Ok((status, body.to_string())));
            self
        }
        fn fail(self, detail: &str) -> Scripted {
            self.replies
                .lock()
                .expect("test lock")
                .push_back(Err(TransportError::failed(detail)));
            self
        }
    }

    impl Transport for Scripted {
        async fn send(&self, request: HttpRequest) -> Result<HttpReply, TransportError> {
            self.seen.lock().expect("test lock").push(request);
            let next = self.replies.lock().expect("test lock").pop_front();
            let (status, body) = next.expect("the script has a reply for every request")?;
            Ok(http::Response::builder()
                .status(status)
                .body(Bytes::from(body))
                .expect("a valid test reply"))
        }
    }

    /// Never answers.
    struct Silent;

    impl Transport for Silent {
        async fn send(&self, _: HttpRequest) -> Result<HttpReply, TransportError> {
            std::future::pending().await
        }
    }

    fn endpoint() -> MoneyWorksEndpoint {
        MoneyWorksEndpoint {
            origin: "http://h:6710".into(),
            document: "Acme.moneyworks".into(),
            user: "u".into(),
            password: Secret::new("p"),
            folder: Some(("f".into(), Secret::new("fp"))),
        }
    }

    fn decoded_auth(request: &HttpRequest) -> Vec<String> {
        request
            .headers()
            .get_all(AUTHORIZATION)
            .iter()
            .map(|v| {
                let token = v
                    .to_str()
                    .expect("ASCII")
                    .strip_prefix("Basic ")
                    .expect("Basic");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(token)
                    .expect("base64");
                String::from_utf8(bytes).expect("utf8")
            })
            .collect()
    }

    /// Every request carries the URL, both realms' credentials and the agent; an import
    /// posts its body as XML; an evaluate reply is trimmed.
    #[tokio::test]
    async fn requests_carry_url_credentials_and_body() {
        let script = Scripted::default().reply(200, "OK").reply(200, " 2 \n");
        let mw = HttpMoneyWorks::with_transport(&endpoint(), Duration::from_secs(5), script)
            .expect("client");
        assert_eq!(mw.import("<import/>").await, Ok("OK".into()));
        assert_eq!(mw.evaluate("1+1").await, Ok("2".into()));
        let seen = mw.transport.seen.lock().expect("test lock");
        let (import, evaluate) = (&seen[0], &seen[1]);
        assert_eq!(import.method(), http::Method::POST);
        assert_eq!(
            import.uri(),
            "http://h:6710/REST/Acme.moneyworks/import?no_linger=true"
        );
        assert_eq!(import.headers()[CONTENT_TYPE], "text/xml");
        assert_eq!(import.body().as_ref(), b"<import/>");
        assert_eq!(
            decoded_auth(import),
            vec!["u:Document:p".to_string(), "f:Datacentre:fp".to_string()]
        );
        assert!(import.headers()[AUTHORIZATION].is_sensitive());
        assert!(
            evaluate.headers()[USER_AGENT]
                .to_str()
                .expect("ASCII")
                .starts_with("mwsync/")
        );
        assert_eq!(evaluate.method(), http::Method::GET);
        assert_eq!(
            evaluate.uri(),
            "http://h:6710/REST/Acme.moneyworks/evaluate?expr=1%2B1&no_linger=true"
        );
    }

    /// Export replies are parsed and checked against the query; failures keep their class.
    #[tokio::test]
    async fn replies_are_parsed_and_classified() {
        let page = "<?xml version=\"1.0\"?><table name=\"Name\" count=\"1\" start=\"0\" found=\"3\"><name><sequencenumber system=\"true\">4</sequencenumber><code>A</code></name></table>";
        let script = Scripted::default()
            .reply(200, page)
            .reply(200, &page.replace("start=\"0\"", "start=\"5\""))
            .reply(
                500,
                "The server has reached its licensed concurrent users limit.",
            )
            .fail("connection refused");
        let mw = HttpMoneyWorks::with_transport(&endpoint(), Duration::from_secs(5), script)
            .expect("client");
        let query = ExportQuery {
            table: table_info("Name").expect("known"),
            search: Some("code = `A B`".into()),
            sort: None,
            direction: Direction::Ascending,
            start: 0,
            limit: Some(10),
            format: ExportFormat::Verbose,
        };
        let got = mw.export(&query).await.expect("a valid page");
        assert_eq!((got.records.len(), got.found), (1, 3));
        assert!(matches!(
            mw.export(&query).await,
            Err(MwError::InvalidReply { detail, .. }) if detail.contains("start=5")
        ));
        assert_eq!(mw.export(&query).await, Err(MwError::LicenceLimit));
        assert_eq!(
            mw.export(&query).await,
            Err(MwError::Transport {
                endpoint: "http://h:6710".into(),
                detail: "connection refused".into()
            })
        );
        let seen = mw.transport.seen.lock().expect("test lock");
        assert_eq!(
            seen[0].uri(),
            "http://h:6710/REST/Acme.moneyworks/export?table=name&search=code%20%3D%20%60A%20B%60&start=0&limit=10&format=xml-verbose&no_linger=true"
        );
    }

    /// A request that never answers is abandoned after the timeout, on tokio's clock.
    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out() {
        let mw = HttpMoneyWorks::with_transport(&endpoint(), Duration::from_secs(60), Silent)
            .expect("client");
        let started = tokio::time::Instant::now();
        assert_eq!(
            mw.evaluate("1").await,
            Err(MwError::Transport {
                endpoint: "http://h:6710".into(),
                detail: "no answer within 60 s (the request timed out)".into()
            })
        );
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    fn endpoint_at(origin: &str) -> MoneyWorksEndpoint {
        MoneyWorksEndpoint {
            origin: origin.into(),
            ..endpoint()
        }
    }

    async fn reqwest_error(origin: &str, timeout: Duration) -> String {
        let mw = HttpMoneyWorks::new(&endpoint_at(origin), timeout, 256 * MB).expect("client");
        mw.evaluate("1").await.expect_err("no answer").to_string()
    }

    /// Network failures say what kind they are and keep their cause chain: DNS, a refused
    /// connection, TLS to a plain port, a timeout.
    #[tokio::test]
    async fn network_errors_carry_their_cause() {
        let dns = reqwest_error("http://no-such-host.invalid:6710", Duration::from_secs(20)).await;
        assert!(
            dns.starts_with("could not reach MoneyWorks at http://no-such-host.invalid:6710: the host name cannot be resolved (DNS): error sending request: client error (Connect): dns error"),
            "{dns}"
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let refused =
            reqwest_error(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).await;
        assert!(
            refused.contains(": the connection was refused (is MoneyWorks listening on that host and port?): error sending request: client error (Connect): tcp connect error")
                && refused.contains("Connection refused"),
            "{refused}"
        );
        // A plain-HTTP port reached with https://: it answers the TLS hello with HTTP text.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let plain_port = plain.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = plain.accept().await {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let tls = reqwest_error(
            &format!("https://127.0.0.1:{plain_port}"),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            tls.contains(": the TLS handshake failed (is the port plain http://, or the certificate not trusted?): error sending request"),
            "{tls}"
        );
        // A server that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_port = silent.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let timeout = reqwest_error(
            &format!("http://127.0.0.1:{silent_port}"),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(
            timeout,
            format!(
                "could not reach MoneyWorks at http://127.0.0.1:{silent_port}: no answer within 1 s (the request timed out)"
            )
        );
    }

    /// A reply longer than the cap is refused with a message that says what to change, and
    /// is not read past the cap.
    #[tokio::test]
    async fn oversized_replies_are_refused() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = server.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = server.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await;
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                for _ in 0..64 {
                    if s.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mw = HttpMoneyWorks::new(
            &endpoint_at(&format!("http://127.0.0.1:{port}")),
            Duration::from_secs(10),
            MB,
        )
        .expect("client");
        let err = mw.evaluate("1").await.expect_err("too large");
        assert_eq!(
            err.to_string(),
            "MoneyWorks' reply to `evaluate` is larger than max_reply_mb = 1 MB, so mwsync stopped reading it. Lower page_size in .mwsync/config.toml (through the changes branch) or raise max_reply_mb (MWSYNC_MAX_REPLY_MB) and restart"
        );
        assert_eq!(err.class(), ErrorClass::NeedsHuman);
    }

    /// Parameter values are percent-encoded so the server sees them intact (spaces as %20).
    #[test]
    fn urls_encode_parameters() {
        let ep = MoneyWorksEndpoint {
            origin: "http://h:6710".into(),
            document: "Folder/My Books.moneyworks".into(),
            user: "u".into(),
            password: Secret::new("p"),
            folder: None,
        };
        let mw = HttpMoneyWorks::new(&ep, Duration::from_secs(5), 256 * MB).expect("client builds");
        let url = mw.url(
            "export",
            &[("search", "code=`A B`&x=\"1\""), ("format", "[code]\\t\n")],
        );
        assert_eq!(
            url,
            "http://h:6710/REST/Folder%2FMy%20Books.moneyworks/export?search=code%3D%60A%20B%60%26x%3D%221%22&format=%5Bcode%5D%5Ct%0A"
        );
    }

    /// A space is always sent as `%20` and a plus as `%2B`, in search, format and expr
    /// values alike, because MoneyWorks servers decode a bare `+` as a space.
    #[test]
    fn spaces_and_pluses_are_percent_encoded() {
        let mw = HttpMoneyWorks::new(&endpoint(), Duration::from_secs(5), 256 * MB)
            .expect("client builds");
        let url = mw.url(
            "export",
            &[
                ("search", "name = `A+B Ltd`"),
                ("format", "[code] + [name]"),
                ("expr", "1 + 2"),
            ],
        );
        let query = url.split_once('?').expect("a query").1;
        assert!(!query.contains('+') && !query.contains(' '), "{query}");
        assert_eq!(
            query,
            "search=name%20%3D%20%60A%2BB%20Ltd%60&format=%5Bcode%5D%20%2B%20%5Bname%5D&expr=1%20%2B%202"
        );
    }

    /// Known failure bodies map to their classes; an `[ERROR]` reply is a rejection.
    #[test]
    fn classifies_real_failure_texts() {
        let licence = "The server has reached its licensed concurrent users limit.; last diagnostic message: DoConnect failed -1";
        assert_eq!(
            classify_reply("export", 500, licence.into()),
            Err(MwError::LicenceLimit)
        );
        assert!(matches!(
            classify_reply("export", 500, "DoConnect failed -1".into()),
            Err(MwError::Auth { .. })
        ));
        assert!(matches!(
            classify_reply("export", 500, String::new()),
            Err(MwError::Http { status: 500, .. })
        ));
        assert_eq!(
            classify_reply("import", 200, "[ERROR] Transaction is posted".into()),
            Err(MwError::Rejected {
                message: "Transaction is posted".into()
            })
        );
        // An `[ERROR]` to a read is a failed read, retried; it names no import.
        let read = classify_reply("export", 200, "[ERROR] Unknown table".into())
            .expect_err("an error reply");
        assert_eq!(
            read.to_string(),
            "MoneyWorks could not carry out the `export`: it answered [ERROR] Unknown table"
        );
        assert_eq!(read.class(), ErrorClass::Retryable);
        assert_eq!(classify_reply("evaluate", 200, "2".into()), Ok("2".into()));
        let export = "<?xml version=\"1.0\"?><table name=\"Memo\" count=\"1\" start=\"0\" found=\"1\"><memo><note>DoConnect failed -1</note></memo></table>";
        assert!(
            classify_reply("export", 200, export.into()).is_ok(),
            "record text is not a server failure"
        );
    }
}
