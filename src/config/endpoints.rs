//! Where mwsync connects: the MoneyWorks document URL (origin, document path, logins) and the
//! git remote with the branch mwsync owns. It owns parsing and masking of those URLs; it must
//! not open a connection.

use super::{ConfigError, Secret, bad};

/// Where MoneyWorks is and how to log in. `Debug` never shows passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyWorksEndpoint {
    /// `scheme://host:port`, no credentials.
    pub origin: String,
    /// The document path as the user wrote it after `/REST/`, decoded (`Acme.moneyworks`,
    /// `Folder/sub folder/Doc.moneyworks`).
    pub document: String,
    /// Document login name.
    pub user: String,
    /// Document password.
    pub password: Secret,
    /// Folder (Datacentre realm) login, when the server needs one.
    pub folder: Option<(String, Secret)>,
}

impl MoneyWorksEndpoint {
    /// Parses `http(s)://user:pass@host:port/REST/Document.moneyworks`.
    pub fn parse(
        url_text: &str,
        folder: Option<(String, Secret)>,
    ) -> Result<MoneyWorksEndpoint, ConfigError> {
        let masked = mask_url(url_text);
        let field = "moneyworks_url";
        let url = url::Url::parse(url_text)
            .map_err(|e| bad(field, &masked, format!("not a URL ({e})")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad(field, &masked, "not http:// or https://"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad(field, &masked, "missing a host"))?;
        // MoneyWorks listens on 6710 unless the administrator changed it; a URL without a
        // port means that, not the scheme's 80 or 443.
        let port = url.port().unwrap_or(6710);
        let origin = format!("{}://{}:{}", url.scheme(), host, port);
        let path = url.path();
        let document_enc = path
            .strip_prefix("/REST/")
            .ok_or_else(|| {
                bad(
                    field,
                    &masked,
                    "its path must be /REST/<document>, e.g. /REST/Acme.moneyworks",
                )
            })?
            .trim_end_matches('/');
        let document = percent_encoding::percent_decode_str(document_enc)
            .decode_utf8()
            .map_err(|_| {
                bad(
                    field,
                    &masked,
                    "the document path is not UTF-8 once decoded",
                )
            })?
            .to_string();
        if document.is_empty() {
            return Err(bad(field, &masked, "it names no document after /REST/"));
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .to_string();
        if user.is_empty() {
            return Err(bad(
                field,
                &masked,
                "it carries no document user; write https://user:password@host:6710/REST/Document",
            ));
        }
        let password = url
            .password()
            .map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .to_string()
            })
            .unwrap_or_default();
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(field, &masked, "it must not have a query or fragment"));
        }
        Ok(MoneyWorksEndpoint {
            origin,
            document,
            user,
            password: Secret::new(password),
            folder,
        })
    }

    /// The URL without credentials, for logs.
    pub fn display_url(&self) -> String {
        format!("{}/REST/{}", self.origin, encode_document(&self.document))
    }
}

/// Percent-encodes a document path for a REST URL; `/` between folders becomes `%2F`.
pub fn encode_document(document: &str) -> String {
    percent_encoding::utf8_percent_encode(document, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2E", ".")
        .replace("%2D", "-")
        .replace("%5F", "_")
}

/// Replaces the password in a URL with `***`, for messages. Works on text that is not a
/// valid URL too.
pub fn mask_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{}:***@{}",
                &text[..scheme_end + 3],
                user,
                &rest[at + 1..]
            )
        }
        None => text.to_string(),
    }
}

/// The git remote and the branch mwsync owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTarget {
    /// Local path, `file://` or `http(s)://` URL that git fetches from, without the fragment.
    /// For a gateway it is the gateway's read side, `http(s)://host/…/git/<repo>`.
    pub url: String,
    /// The sync branch, from the fragment (default `main`).
    pub branch: String,
    /// Set for a `gateway+http(s)://` URL: pushes go through the upload gateway's API.
    pub gateway: Option<GatewayEndpoint>,
}

/// Where an upload gateway's API is, and which repository behind it holds the books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayEndpoint {
    /// The API base: everything before `/git/`, e.g. `https://gw.example.com`.
    pub api: String,
    /// The repository path after `/git/`, e.g. `books.git`.
    pub repo: String,
}

/// The scheme prefix that chooses the upload gateway as the store's transport.
pub const GATEWAY_SCHEME_PREFIX: &str = "gateway+";

impl GitTarget {
    /// Parses `URL[#branch]`. Refuses credentials in the URL: the API key goes separately.
    /// `gateway+http(s)://host/…/git/<repo>#branch` names an upload gateway (see
    /// docs/gateway.md): git reads from the URL without the `gateway+` prefix.
    pub fn parse(text: &str) -> Result<GitTarget, ConfigError> {
        let (url, branch) = match text.split_once('#') {
            Some((u, b)) => (u.to_string(), b.to_string()),
            None => (text.to_string(), "main".to_string()),
        };
        if url.is_empty() {
            return Err(bad("git_url", mask_url(text), "empty"));
        }
        let (url, via_gateway) = match url.strip_prefix(GATEWAY_SCHEME_PREFIX) {
            Some(rest) => (rest.to_string(), true),
            None => (url, false),
        };
        let mut gateway = None;
        if url.contains("://") {
            let scheme = &url[..url.find("://").unwrap_or(0)];
            let allowed: &[&str] = if via_gateway {
                &["http", "https"]
            } else {
                &["http", "https", "file"]
            };
            if !allowed.contains(&scheme) {
                return Err(bad(
                    "git_url",
                    mask_url(text),
                    if via_gateway {
                        "not a gateway+http:// or gateway+https:// URL"
                    } else {
                        "not a local path, file://, http:// or https:// URL"
                    },
                ));
            }
            if mask_url(&url) != url {
                return Err(bad(
                    "git_url",
                    mask_url(text),
                    "carrying credentials; give the API key in MWSYNC_GIT_API_KEY instead",
                ));
            }
            if via_gateway {
                gateway = Some(
                    GatewayEndpoint::parse(&url)
                        .map_err(|problem| bad("git_url", mask_url(text), problem))?,
                );
            }
        } else if via_gateway {
            return Err(bad(
                "git_url",
                mask_url(text),
                "not a gateway+http:// or gateway+https:// URL",
            ));
        }
        validate_branch("git_url branch", &branch)?;
        Ok(GitTarget {
            url,
            branch,
            gateway,
        })
    }
}

impl GatewayEndpoint {
    /// Splits `http(s)://host[/prefix]/git/<repo>` at its last `/git/`.
    fn parse(url: &str) -> Result<GatewayEndpoint, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if parsed.query().is_some() {
            return Err("a gateway URL must not have a query".into());
        }
        let Some((api, repo)) = url.rsplit_once("/git/") else {
            return Err(
                "a gateway URL must name the repository after /git/, e.g. gateway+https://gw.example.com/git/books.git#main"
                    .into(),
            );
        };
        let repo = repo.trim_end_matches('/');
        let repo_ok = !repo.is_empty()
            && repo
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !repo_ok || !api.contains("://") || api.ends_with("://") {
            return Err(
                "a gateway URL must name the repository after /git/, e.g. gateway+https://gw.example.com/git/books.git#main"
                    .into(),
            );
        }
        Ok(GatewayEndpoint {
            api: api.to_string(),
            repo: repo.to_string(),
        })
    }
}

pub(crate) fn validate_branch(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            name,
            "not a valid branch name (letters, digits, - _ . /)",
        ))
    }
}
