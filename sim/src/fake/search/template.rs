//! Custom export format templates: literal text with `\t \r \n \xHH \\` metacharacters and
//! `[expr]` parts, rendered once per record. It must not know records.

use super::eval::{eval, write_v};
use super::parser::{Node, bare_field, parse_range};
use super::{Env, Scope, SearchError, error};

/// A parsed custom export format template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    src: String,
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Expr(Node),
}

/// Parses a custom export format: text with `[expr]` parts and the metacharacters
/// `\t \r \n \xHH \\` (`\xHH` gives the character U+00HH; other escapes are refused). A `]`
/// outside an expression is copied as is; inside one, a `]` within quotes does not close it.
/// Field names are resolved in `scope`.
pub fn parse_template(src: &str, scope: &dyn Scope) -> Result<Template, SearchError> {
    let b = src.as_bytes();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let decoded = match b.get(i + 1) {
                    Some(b't') => '\t',
                    Some(b'r') => '\r',
                    Some(b'n') => '\n',
                    Some(b'\\') => '\\',
                    Some(b'x') => {
                        let hex = b
                            .get(i + 2..i + 4)
                            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                        let Some(hex) = hex else {
                            return Err(error(src, i, "`\\x` must be followed by two hex digits"));
                        };
                        let text = std::str::from_utf8(hex).expect("ASCII hex digits are UTF-8");
                        let byte = u8::from_str_radix(text, 16).expect("two hex digits fit a byte");
                        i += 2;
                        char::from(byte)
                    }
                    Some(_) => {
                        let next = src[i + 1..].chars().next().unwrap_or('\\');
                        return Err(error(
                            src,
                            i,
                            format!(
                                "unknown metacharacter `\\{next}` in the format \
                                 (known: \\t \\r \\n \\xHH \\\\)"
                            ),
                        ));
                    }
                    None => return Err(error(src, i, "the format ends with a lone `\\`")),
                };
                lit.push(decoded);
                i += 2;
            }
            b'[' => {
                let close = find_close(src, i)?;
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Expr(parse_range(src, i + 1, close, scope)?));
                i = close + 1;
            }
            _ => {
                let c = src[i..].chars().next().expect("i is on a char boundary");
                lit.push(c);
                i += c.len_utf8();
            }
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(Template {
        parts,
        src: src.to_string(),
    })
}

/// The index of the `]` closing the `[` at `open`, skipping quoted constants.
fn find_close(src: &str, open: usize) -> Result<usize, SearchError> {
    let b = src.as_bytes();
    let mut i = open + 1;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(q), b'\\') if q != b'\'' => i += 1,
            (Some(_), _) => {}
            (None, c @ (b'"' | b'`' | b'\'')) => quote = Some(c),
            (None, b']') => return Ok(i),
            (None, _) => {}
        }
        i += 1;
    }
    Err(error(src, open, "`[` in the format has no matching `]`"))
}

impl Template {
    /// Renders the template for one record. A part that is one bare field prints the field's
    /// stored text, so numbers keep the decimals they are stored with (`12.50`, `1.500000`).
    pub fn render(&self, env: &dyn Env) -> Result<String, SearchError> {
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                Part::Lit(text) => out.push_str(text),
                Part::Expr(node) => match bare_field(node).and_then(|ix| env.stored(ix)) {
                    Some(text) => out.push_str(text),
                    None => write_v(&mut out, &eval(node, env, &self.src)?),
                },
            }
        }
        Ok(out)
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.src
    }
}
