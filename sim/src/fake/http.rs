//! The fake server's HTTP surface: the MoneyWorks REST routes (parsed from the raw URI, so
//! parameters may follow `?` or `/` and the document path stays percent-encoded), the
//! two-realm Basic login, injected faults, request counting, and the `/_sim` admin API. It
//! owns status codes, headers and reply bodies; record logic lives in `db`, `export` and
//! `import`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::time::DateTime;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::db::{Doc, DocEnv};
use super::{FaultKind, State, export, import, search};
use crate::xml::{Style, XmlWriter};

/// The licence-limit reply text of a real Datacentre.
pub const LICENCE_LIMIT_TEXT: &str = "The server has reached its licensed concurrent users limit.; last diagnostic message: DoConnect failed -1";
/// The reply text for refused credentials.
pub const BAD_LOGIN_TEXT: &str = "DoConnect failed -1";
/// The reply text for a document path that names no document.
pub const NO_DOCUMENT_TEXT: &str = "DoConnect failed -43";
/// The reply text for a request the REST server cannot parse.
pub const MALFORMED_TEXT: &str = "Malformed REST request";
/// Largest accepted import body.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Builds the router: `/_sim/...` admin routes, everything else through the REST handler.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/_sim/clock", get(get_clock).post(post_clock))
        .route("/_sim/records/{table}", post(post_record))
        .route(
            "/_sim/records/{table}/{key}",
            get(get_record).delete(delete_record),
        )
        .route("/_sim/faults", post(post_faults))
        .route("/_sim/requests", get(get_requests))
        .fallback(rest)
        .with_state(state)
}

/// A reply before faults and headers are applied.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn text(body: impl Into<String>) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: "text/plain",
            body: body.into(),
        }
    }
    fn error(message: impl std::fmt::Display) -> Reply {
        Reply::text(format!("[ERROR] {message}"))
    }
    fn status(status: StatusCode, body: impl Into<String>) -> Reply {
        Reply {
            status,
            ..Reply::text(body)
        }
    }
}

async fn rest(AxState(state): AxState<Arc<State>>, request: Request<Body>) -> Response {
    let path = request.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/REST/") else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    let (doc_raw, after) = rest.split_once('/').unwrap_or((rest, ""));
    let (command, path_params) = after.split_once('/').unwrap_or((after, ""));
    let command = command.to_ascii_lowercase();
    state.count(&command);
    let fault = state.take_fault(&command);
    match fault {
        Some(FaultKind::LicenceLimit) => {
            return finish(
                &state,
                Reply::status(StatusCode::INTERNAL_SERVER_ERROR, LICENCE_LIMIT_TEXT),
            );
        }
        Some(FaultKind::Http500) => {
            return finish(&state, Reply::status(StatusCode::INTERNAL_SERVER_ERROR, ""));
        }
        Some(FaultKind::ErrorReply) => {
            return finish(
                &state,
                Reply::status(
                    StatusCode::OK,
                    "[ERROR] The request could not be carried out (injected fault)",
                ),
            );
        }
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    let mut params = BTreeMap::new();
    parse_params(path_params, &mut params);
    parse_params(request.uri().query().unwrap_or(""), &mut params);
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = match to_bytes(request.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return finish(&state, Reply::error("the request body is too large")),
    };
    let mut reply = if doc_raw.is_empty() || doc_raw == "server" {
        server_command(&state, &command, &headers)
    } else {
        document_command(&state, doc_raw, &command, &params, &method, &headers, &body)
    };
    match fault {
        Some(FaultKind::Truncate) => {
            let mut cut = reply.body.len() / 2;
            while !reply.body.is_char_boundary(cut) {
                cut -= 1;
            }
            reply.body.truncate(cut);
        }
        Some(FaultKind::MalformedXml) => {
            reply.body = match reply.body.rfind("</table>") {
                Some(i) => format!("{}</tabel>{}", &reply.body[..i], &reply.body[i + 8..]),
                None => format!("<<{}", reply.body),
            };
        }
        _ => {}
    }
    finish(&state, reply)
}

fn finish(state: &State, reply: Reply) -> Response {
    let mut response = (reply.status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&state.server_header()) {
        headers.insert(header::SERVER, v);
    }
    response
}

/// Splits `a=b&c=d` into decoded pairs (names lowercased), the way an HTML form is decoded:
/// `+` is a space and `%2B` a plus sign, in the path form and the query form alike.
fn parse_params(raw: &str, out: &mut BTreeMap<String, String>) {
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode_param(name).to_ascii_lowercase(), decode_param(value));
    }
}

/// A parameter name or value: `+` is a space, then percent-decoding.
fn decode_param(s: &str) -> String {
    decode(&s.replace('+', " "))
}

/// Percent-decoding only (`+` stays a plus), as for the document path and credentials.
fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn server_command(state: &State, command: &str, headers: &HeaderMap) -> Reply {
    match command {
        "version" => Reply::text(state.config.version.clone()),
        "list" => {
            let creds = credentials(headers);
            let ok = match &state.config.folder {
                Some((folder, password)) => creds.iter().any(|c| {
                    c.realm == Some(Realm::Datacentre)
                        && &c.user == folder
                        && &c.password == password
                }),
                None => creds.iter().any(|c| state.document_login_ok(c)),
            };
            if !ok {
                return Reply::status(state.config.auth_fail_status, BAD_LOGIN_TEXT);
            }
            let mut w = XmlWriter::new(Style::EXPORT, 128);
            w.open("documents", &[]).expect("a plain element name");
            if let Err(e) = w.leaf("document", &[], &state.config.document) {
                return Reply::error(format!("the document name cannot be written: {e}"));
            }
            w.close("documents");
            Reply {
                content_type: "text/xml",
                ..Reply::text(w.finish())
            }
        }
        _ => Reply::status(StatusCode::NOT_FOUND, MALFORMED_TEXT),
    }
}

/// Checks the document path and the logins a request carries (headers and `user:pw@` in the
/// path); the refusal reply when they do not match.
fn log_in(state: &State, doc_raw: &str, headers: &HeaderMap) -> Result<(), Reply> {
    let mut creds = credentials(headers);
    let doc_enc = match doc_raw.split_once('@') {
        Some((login, doc)) => {
            let (user, password) = login.split_once(':').unwrap_or((login, ""));
            creds.push(Credential {
                user: decode(user),
                realm: Some(Realm::Document),
                password: decode(password),
            });
            doc
        }
        None => doc_raw,
    };
    if !state.names_document(&decode(doc_enc)) {
        return Err(Reply::status(
            state.config.auth_fail_status,
            NO_DOCUMENT_TEXT,
        ));
    }
    let document_ok = creds.iter().any(|c| state.document_login_ok(c));
    let folder_ok = match &state.config.folder {
        Some((folder, password)) => creds.iter().any(|c| {
            c.realm == Some(Realm::Datacentre) && &c.user == folder && &c.password == password
        }),
        None => true,
    };
    if !document_ok || !folder_ok {
        return Err(Reply::status(state.config.auth_fail_status, BAD_LOGIN_TEXT));
    }
    Ok(())
}

fn import_command(
    state: &State,
    params: &BTreeMap<String, String>,
    method: &Method,
    body: &[u8],
    now: DateTime,
) -> Reply {
    if method != Method::POST {
        return Reply::error("import needs a POST with an XML body");
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Reply::error("Malformed XML: the body is not UTF-8");
    };
    let return_seq = params
        .get("return_seq")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let mut db = state.db();
    match import::import(&mut db, text, return_seq, now) {
        Ok(text) => Reply::text(text),
        Err(e) => Reply::error(e),
    }
}

fn document_command(
    state: &State,
    doc_raw: &str,
    command: &str,
    params: &BTreeMap<String, String>,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if let Err(refused) = log_in(state, doc_raw, headers) {
        return refused;
    }
    let now = state.clock.now();
    match command {
        "export" => {
            let db = state.db();
            match export::export(&db, params, now) {
                Ok(r) => Reply {
                    content_type: r.content_type,
                    ..Reply::text(r.body)
                },
                Err(e) => Reply::error(e),
            }
        }
        "import" => import_command(state, params, method, body, now),
        "evaluate" => {
            let Some(expr) = params.get("expr") else {
                return Reply::error("Missing parameter: evaluate needs expr=");
            };
            if let Some(f) = state.refused_in(expr) {
                return Reply::error(format!("Bad search expression: unknown function {f}"));
            }
            let db = state.db();
            let env = DocEnv(Doc { db: &db, now });
            match search::parse(expr, &search::NoFields).and_then(|e| e.eval(&env)) {
                Ok(v) => Reply::text(search::display(&v)),
                Err(e) => Reply::error(e),
            }
        }
        "post" => {
            let seq = params.get("seqnum").cloned().unwrap_or_default();
            match state.post(&seq) {
                true => Reply::text("OK"),
                false => Reply::text("not posted"),
            }
        }
        "doreport" | "doform" | "image" | "list" => Reply::status(
            StatusCode::NOT_IMPLEMENTED,
            format!("[ERROR] {command} is not supported by the simulator"),
        ),
        _ => Reply::status(StatusCode::NOT_FOUND, MALFORMED_TEXT),
    }
}

/// Which realm a credential names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// `user:Document:password`.
    Document,
    /// `folder:Datacentre:password`.
    Datacentre,
}

/// One decoded Basic credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// User (or folder path).
    pub user: String,
    /// The realm, or `None` for realm-less `user:password`.
    pub realm: Option<Realm>,
    /// The password.
    pub password: String,
}

/// Every Basic credential in every `Authorization` header (each may hold several,
/// comma-separated). Undecodable parts are skipped.
pub fn credentials(headers: &HeaderMap) -> Vec<Credential> {
    let mut out = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let part = part.trim();
            let Some((scheme, token)) = part.split_once(' ') else {
                continue;
            };
            if !scheme.eq_ignore_ascii_case("basic") {
                continue;
            }
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
                continue;
            };
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            out.push(parse_credential(&text));
        }
    }
    out
}

fn parse_credential(text: &str) -> Credential {
    let (user, rest) = text.split_once(':').unwrap_or((text, ""));
    for (prefix, realm) in [
        ("Document:", Realm::Document),
        ("Datacentre:", Realm::Datacentre),
    ] {
        if let Some(password) = rest.strip_prefix(prefix) {
            return Credential {
                user: user.to_string(),
                realm: Some(realm),
                password: password.to_string(),
            };
        }
    }
    Credential {
        user: user.to_string(),
        realm: None,
        password: rest.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin API

fn admin_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.to_string() })),
    )
        .into_response()
}

async fn get_clock(AxState(state): AxState<Arc<State>>) -> String {
    state.clock.now().to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    set: Option<String>,
    advance_secs: Option<i64>,
}

async fn post_clock(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    let parsed: ClockBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")),
    };
    match (parsed.set, parsed.advance_secs) {
        (Some(text), None) => match DateTime::parse(&text) {
            Ok(t) => state.clock.set(t),
            Err(e) => return admin_error(StatusCode::BAD_REQUEST, e),
        },
        (None, Some(secs)) => {
            state.clock.advance(secs);
        }
        _ => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                "give exactly one of {\"set\":\"YYYYMMDDHHMMSS\"} or {\"advance_secs\":N}",
            );
        }
    }
    state.clock.now().to_string().into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    #[serde(default)]
    key: String,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
}

async fn post_record(
    AxState(state): AxState<Arc<State>>,
    Path(table): Path<String>,
    body: String,
) -> Response {
    let parsed: RecordBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")),
    };
    let mut fields = Vec::with_capacity(parsed.fields.len());
    for (name, value) in &parsed.fields {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            _ => {
                return admin_error(
                    StatusCode::BAD_REQUEST,
                    format!("field {name} must be a string, number or boolean"),
                );
            }
        };
        fields.push((name.clone(), text));
    }
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    match state.try_upsert(&table, &parsed.key, &borrowed) {
        Ok((seq, lmt)) => axum::Json(serde_json::json!({
            "sequencenumber": seq,
            "lastmodifiedtime": lmt.to_string(),
        }))
        .into_response(),
        Err(e @ super::SimError::NoRecord { .. }) => admin_error(StatusCode::NOT_FOUND, e),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn get_record(
    AxState(state): AxState<Arc<State>>,
    Path((table, key)): Path<(String, String)>,
) -> Response {
    match state.try_record(&table, &key) {
        Ok(Some(record)) => match crate::layout::canonical_xml(&record) {
            Ok(xml) => ([(header::CONTENT_TYPE, "text/xml")], xml).into_response(),
            Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
        Ok(None) => admin_error(
            StatusCode::NOT_FOUND,
            format!("{table} has no record `{key}`"),
        ),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn delete_record(
    AxState(state): AxState<Arc<State>>,
    Path((table, key)): Path<(String, String)>,
) -> Response {
    match state.try_delete(&table, &key) {
        Ok(true) => axum::Json(serde_json::json!({ "deleted": true })).into_response(),
        Ok(false) => admin_error(
            StatusCode::NOT_FOUND,
            format!("{table} has no record `{key}`"),
        ),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    kind: String,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    delay_ms: u64,
    /// Only requests of this command take the fault.
    #[serde(default)]
    command: Option<String>,
}

fn one() -> u32 {
    1
}

async fn post_faults(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    let parsed: FaultBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")),
    };
    let kind = match parsed.kind.as_str() {
        "licence_limit" => FaultKind::LicenceLimit,
        "http_500" => FaultKind::Http500,
        "truncate" => FaultKind::Truncate,
        "malformed_xml" => FaultKind::MalformedXml,
        "delay" => FaultKind::Delay(std::time::Duration::from_millis(parsed.delay_ms)),
        "error_reply" => FaultKind::ErrorReply,
        other => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown fault kind `{other}` (known: licence_limit, http_500, truncate, \
                     malformed_xml, delay, error_reply)"
                ),
            );
        }
    };
    match &parsed.command {
        Some(command) => state.fail_next_command(command, kind, parsed.count),
        None => state.fail_next(kind, parsed.count),
    }
    axum::Json(serde_json::json!({ "pending": state.pending_faults() })).into_response()
}

async fn get_requests(AxState(state): AxState<Arc<State>>) -> Response {
    axum::Json(state.requests()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Realm and realm-less payloads decode, and passwords may hold colons.
    #[test]
    fn credentials_parse_every_form() {
        let c = parse_credential("Admin:Document:pa:ss");
        assert_eq!(
            (c.user.as_str(), c.realm, c.password.as_str()),
            ("Admin", Some(Realm::Document), "pa:ss")
        );
        let c = parse_credential("Acme/Sub:Datacentre:f");
        assert_eq!(c.realm, Some(Realm::Datacentre));
        assert_eq!(c.user, "Acme/Sub");
        let c = parse_credential("Admin:secret");
        assert_eq!((c.realm, c.password.as_str()), (None, "secret"));
    }
}
