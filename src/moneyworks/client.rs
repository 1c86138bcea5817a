//! The production `MoneyWorks` implementation: reqwest (rustls) speaking the Datacentre REST
//! API as `shared/MONEYWORKS.md` describes. It owns URL building, the two-realm Basic
//! headers and turning HTTP outcomes into classified `MwError`s; it must not retry (see
//! `crate::retry`) or decide what to fetch.

use std::time::Duration;

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

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

/// A MoneyWorks Datacentre reached over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpMoneyWorks {
    http: reqwest::Client,
    base: String,
    origin: String,
    auth: Vec<HeaderValue>,
}

impl HttpMoneyWorks {
    /// A client for `endpoint`; every request is abandoned after `timeout`.
    pub fn new(
        endpoint: &MoneyWorksEndpoint,
        timeout: Duration,
    ) -> Result<HttpMoneyWorks, MwError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("mwsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MwError::Transport {
                endpoint: endpoint.origin.clone(),
                detail: e.to_string(),
            })?;
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
            http,
            base: format!(
                "{}/REST/{}",
                endpoint.origin,
                encode_document(&endpoint.document)
            ),
            origin: endpoint.origin.clone(),
            auth,
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

    async fn send(
        &self,
        command: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, MwError> {
        let mut request = request;
        for value in &self.auth {
            request = request.header(AUTHORIZATION, value.clone());
        }
        let transport = |e: reqwest::Error| MwError::Transport {
            endpoint: self.origin.clone(),
            detail: if e.is_timeout() {
                "the request timed out".to_string()
            } else {
                e.without_url().to_string()
            },
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(transport)?;
        classify_reply(command, status, body)
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
        self.send("export", self.http.get(self.url("export", &borrowed)))
            .await
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
        return Err(MwError::Rejected {
            message: rest.trim().to_string(),
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

impl MoneyWorks for HttpMoneyWorks {
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
        if let Some(limit) = query.limit
            && doc.records.len() > limit as usize
        {
            return Err(MwError::InvalidReply {
                command: "export".into(),
                detail: format!(
                    "asked for at most {limit} records but got {}",
                    doc.records.len()
                ),
            });
        }
        Ok(ExportPage {
            records: doc.records,
            start: doc.start,
            found: doc.found,
        })
    }

    async fn export_text(&self, query: &ExportQuery) -> Result<String, MwError> {
        self.export_raw(query).await
    }

    async fn import(&self, body: &str) -> Result<String, MwError> {
        let request = self
            .http
            .post(self.url("import", &[("no_linger", "true")]))
            .header(CONTENT_TYPE, "text/xml")
            .body(body.to_string());
        self.send("import", request).await
    }

    async fn evaluate(&self, expr: &str) -> Result<String, MwError> {
        let body = self
            .send(
                "evaluate",
                self.http
                    .get(self.url("evaluate", &[("expr", expr), ("no_linger", "true")])),
            )
            .await?;
        Ok(body.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

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
        let mw = HttpMoneyWorks::new(&ep, Duration::from_secs(5)).expect("client builds");
        let url = mw.url(
            "export",
            &[("search", "code=`A B`&x=\"1\""), ("format", "[code]\\t\n")],
        );
        assert_eq!(
            url,
            "http://h:6710/REST/Folder%2FMy%20Books.moneyworks/export?search=code%3D%60A%20B%60%26x%3D%221%22&format=%5Bcode%5D%5Ct%0A"
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
        assert_eq!(classify_reply("evaluate", 200, "2".into()), Ok("2".into()));
        let export = "<?xml version=\"1.0\"?><table name=\"Memo\" count=\"1\" start=\"0\" found=\"1\"><memo><note>DoConnect failed -1</note></memo></table>";
        assert!(
            classify_reply("export", 200, export.into()).is_ok(),
            "record text is not a server failure"
        );
    }
}
