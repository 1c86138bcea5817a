//! Where mwsync connects: the MoneyWorks document URL (origin, document path, logins) and the
//! git remote with the branch mwsync owns. It owns parsing and masking of those URLs (a URL is
//! masked before any message is built, whatever its shape); it must not open a connection.

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
    /// Parses `http(s)://user:pass@host:port/REST/Document.moneyworks`. Every message shows
    /// the URL masked by [`mask_url`], whatever its shape.
    pub fn parse(
        url_text: &str,
        folder: Option<(String, Secret)>,
    ) -> Result<MoneyWorksEndpoint, ConfigError> {
        const FORM: &str = "https://user:password@host:6710/REST/Document.moneyworks";
        let masked = mask_url(url_text);
        let field = "moneyworks_url";
        let url = url::Url::parse(url_text)
            .map_err(|e| bad(field, &masked, format!("not a URL ({e}); write {FORM}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad(
                field,
                &masked,
                format!("not an http:// or https:// URL; write {FORM}"),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                field,
                &masked,
                format!(
                    "not allowed to have a query (?...) or a fragment (#...); the login goes before the host: {FORM}"
                ),
            ));
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
                    "missing the path /REST/<document> (for example /REST/Acme.moneyworks)",
                )
            })?
            .trim_end_matches('/');
        let document = percent_encoding::percent_decode_str(document_enc)
            .decode_utf8()
            .map_err(|_| {
                bad(
                    field,
                    &masked,
                    "a URL whose document path is not UTF-8 once decoded",
                )
            })?
            .to_string();
        if document.is_empty() {
            return Err(bad(
                field,
                &masked,
                "missing the document name after /REST/",
            ));
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .to_string();
        if user.is_empty() {
            return Err(bad(
                field,
                &masked,
                format!("missing the document user; write {FORM}"),
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

/// Masks everything in URL-like text that may hold a secret, before any message is built:
/// the user-info (all of it when it has no `:`, since a lone user-info is often a token; the
/// password when it has one), the query and the fragment. It works on any text, including
/// text that is not a URL at all: without a scheme, or with a typo such as `http//`.
pub fn mask_url(text: &str) -> String {
    let (text, fragment) = match text.find('#') {
        Some(i) => (&text[..i], true),
        None => (text, false),
    };
    let (base, query) = match text.find('?') {
        Some(i) => (&text[..i], true),
        None => (text, false),
    };
    // The authority starts after `://`, after a bare `//` (a typo), or at the start.
    let start = base
        .find("://")
        .map(|i| i + 3)
        .or_else(|| base.find("//").map(|i| i + 2))
        .unwrap_or(0);
    let rest = &base[start..];
    let mut out = base[..start].to_string();
    // The last `@` ends the user-info, even when an unencoded `/` sits in the password.
    match rest.rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _)) if !user.is_empty() && !user.contains('/') => {
                    out.push_str(user);
                    out.push_str(":***@");
                }
                _ => out.push_str("***@"),
            }
            out.push_str(&rest[at + 1..]);
        }
        None => out.push_str(rest),
    }
    if query {
        out.push_str("?***");
    }
    if fragment {
        out.push_str("#***");
    }
    out
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
            let authority = &url[scheme.len() + 3..];
            let authority = &authority[..authority.find('/').unwrap_or(authority.len())];
            if authority.contains('@') || url.contains('?') {
                return Err(bad(
                    "git_url",
                    mask_url(text),
                    "carrying credentials (a user-info or a query); give the API key in MWSYNC_GIT_API_KEY or MWSYNC_GIT_API_KEY_FILE instead",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape of URL is masked: password, token-as-user, query, fragment, no scheme,
    /// the `http//` typo, a password holding `@` or `/`.
    #[test]
    fn every_url_shape_is_masked() {
        let cases = [
            (
                "https://admin:s3cret@h:6710/REST/A",
                "https://admin:***@h:6710/REST/A",
            ),
            (
                "https://TOKEN123@git.example/r.git",
                "https://***@git.example/r.git",
            ),
            ("https://h/REST/A?password=s3cret", "https://h/REST/A?***"),
            ("https://u@h/REST/A#s3cret", "https://***@h/REST/A#***"),
            ("admin:s3cret@h:6710/REST/A", "admin:***@h:6710/REST/A"),
            (
                "http//admin:s3cret@h:6710/REST/A",
                "http//admin:***@h:6710/REST/A",
            ),
            (
                "https://admin:s3@c/ret@h/REST/A",
                "https://admin:***@h/REST/A",
            ),
            ("/srv/git/books.git", "/srv/git/books.git"),
        ];
        for (given, shown) in cases {
            assert_eq!(mask_url(given), shown, "{given}");
        }
    }

    /// Each refusal of a MoneyWorks URL reads as a sentence and never shows the password.
    #[test]
    fn moneyworks_url_refusals_read_well() {
        let form = "https://user:password@host:6710/REST/Document.moneyworks";
        let cases = [
            (
                "admin:s3cret@h:6710/REST/A",
                format!("moneyworks_url = admin:***@h:6710/REST/A is not an http:// or https:// URL; write {form}"),
            ),
            (
                "http//admin:s3cret@h:6710/REST/A",
                format!("moneyworks_url = http//admin:***@h:6710/REST/A is not a URL (relative URL without a base); write {form}"),
            ),
            (
                "https://admin:s3cret@h/REST/A?pw=s3cret",
                format!("moneyworks_url = https://admin:***@h/REST/A?*** is not allowed to have a query (?...) or a fragment (#...); the login goes before the host: {form}"),
            ),
            (
                "https://admin:s3cret@h/Acme",
                "moneyworks_url = https://admin:***@h/Acme is missing the path /REST/<document> (for example /REST/Acme.moneyworks)".to_string(),
            ),
            (
                "https://admin:s3cret@h/REST/",
                "moneyworks_url = https://admin:***@h/REST/ is missing the document name after /REST/".to_string(),
            ),
            (
                "https://h/REST/A",
                format!("moneyworks_url = https://h/REST/A is missing the document user; write {form}"),
            ),
        ];
        for (given, message) in cases {
            let err = MoneyWorksEndpoint::parse(given, None).expect_err(given);
            assert_eq!(err.to_string(), message);
            assert!(!err.to_string().contains("s3cret"));
        }
        let err = GitTarget::parse("https://TOKEN123@git.example/r.git#main").expect_err("token");
        assert_eq!(
            err.to_string(),
            "git_url = https://***@git.example/r.git#*** is carrying credentials (a user-info or a query); give the API key in MWSYNC_GIT_API_KEY or MWSYNC_GIT_API_KEY_FILE instead"
        );
    }
}
