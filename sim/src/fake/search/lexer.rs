//! The expression tokenizer: numbers, `#hex` numbers, `"…"` and `` `…` `` text with escapes,
//! `'YYYYMMDD'` date constants, names, keywords and operators, each with its byte span. It
//! must not know precedence or meaning.

use super::{SearchError, error};
use crate::time::DateTime;

/// A token's kind (and value, for constants).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Str(String),
    Date(DateTime),
    Ident,
    And,
    Or,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    Eq,
    EqEq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    LParen,
    RParen,
    Comma,
    Eof,
}

/// A token and the byte range it covers.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
    pub(super) end: usize,
}

/// The tokens of `src[start..end]`, ending with `Eof` at `end`.
pub(super) fn lex(src: &str, start: usize, end: usize) -> Result<Vec<Token>, SearchError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let (tok, after) = token_at(src, i, end)?;
        out.push(Token {
            tok,
            pos: i,
            end: after,
        });
        i = after;
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: end,
        end,
    });
    Ok(out)
}

/// The token starting at `pos` and the index after it.
fn token_at(src: &str, pos: usize, end: usize) -> Result<(Tok, usize), SearchError> {
    let b = src.as_bytes();
    let c = b[pos];
    if c.is_ascii_digit() || (c == b'.' && b.get(pos + 1).is_some_and(u8::is_ascii_digit)) {
        return number(src, pos, end);
    }
    if c.is_ascii_alphabetic() || c == b'_' {
        return Ok(word(src, pos, end));
    }
    match c {
        b'"' | b'`' => lex_string(src, pos, end).map(|(t, after)| (Tok::Str(t), after)),
        b'\'' => lex_date(src, pos, end).map(|(d, after)| (Tok::Date(d), after)),
        b'#' => hex(src, pos, end),
        _ => symbol(src, pos, end),
    }
}

fn number(src: &str, pos: usize, end: usize) -> Result<(Tok, usize), SearchError> {
    let b = src.as_bytes();
    let mut i = pos;
    while i < end && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < end && b[i] == b'.' {
        i += 1;
        while i < end && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let text = &src[pos..i];
    let n = text
        .parse()
        .map_err(|_| error(src, pos, format!("`{text}` is not a number")))?;
    Ok((Tok::Num(n), i))
}

fn word(src: &str, pos: usize, end: usize) -> (Tok, usize) {
    let b = src.as_bytes();
    let mut i = pos;
    while i < end && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    let w = &src[pos..i];
    let tok = if w.eq_ignore_ascii_case("and") {
        Tok::And
    } else if w.eq_ignore_ascii_case("or") {
        Tok::Or
    } else if w.eq_ignore_ascii_case("not") {
        Tok::Not
    } else {
        Tok::Ident
    };
    (tok, i)
}

fn hex(src: &str, pos: usize, end: usize) -> Result<(Tok, usize), SearchError> {
    let b = src.as_bytes();
    let mut j = pos + 1;
    while j < end && b[j].is_ascii_hexdigit() {
        j += 1;
    }
    let digits = &src[pos + 1..j];
    let n = u64::from_str_radix(digits, 16).map_err(|_| {
        if digits.is_empty() {
            error(src, pos, "`#` must be followed by hexadecimal digits")
        } else {
            error(src, pos, format!("hex constant `#{digits}` is too large"))
        }
    })?;
    Ok((Tok::Num(n as f64), j))
}

fn symbol(src: &str, pos: usize, end: usize) -> Result<(Tok, usize), SearchError> {
    let b = src.as_bytes();
    let two = b.get(pos..(pos + 2).min(end)).unwrap_or(&[]);
    let (tok, len) = match (b[pos], two) {
        (_, b"<=") => (Tok::Le, 2),
        (_, b">=") => (Tok::Ge, 2),
        (_, b"<>" | b"!=") => (Tok::Ne, 2),
        (_, b"==") => (Tok::EqEq, 2),
        (_, b"&&") => (Tok::And, 2),
        (_, b"||") => (Tok::Or, 2),
        (b'<', _) => (Tok::Lt, 1),
        (b'>', _) => (Tok::Gt, 1),
        (b'=', _) => (Tok::Eq, 1),
        (b'!', _) => (Tok::Not, 1),
        (b'&', _) => (Tok::And, 1),
        (b'|', _) => (Tok::Or, 1),
        (b'+', _) => (Tok::Plus, 1),
        (b'-', _) => (Tok::Minus, 1),
        (b'*', _) => (Tok::Star, 1),
        (b'/', _) => (Tok::Slash, 1),
        (b'(', _) => (Tok::LParen, 1),
        (b')', _) => (Tok::RParen, 1),
        (b',', _) => (Tok::Comma, 1),
        _ => {
            let ch = src[pos..]
                .chars()
                .next()
                .expect("pos is on a char boundary");
            return Err(error(src, pos, format!("unexpected character `{ch}`")));
        }
    };
    Ok((tok, pos + len))
}

/// A `"…"` or `` `…` `` constant starting at `pos`; returns its text and the index after it.
pub(super) fn lex_string(
    src: &str,
    pos: usize,
    end: usize,
) -> Result<(String, usize), SearchError> {
    let quote = src.as_bytes()[pos];
    let body = &src[pos + 1..end];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((k, c)) = chars.next() {
        if c as u32 == u32::from(quote) {
            return Ok((out, pos + 1 + k + 1));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next() {
            Some((_, '"')) => '"',
            Some((_, '`')) => '`',
            Some((_, '\\')) => '\\',
            Some((_, 't')) => '\t',
            Some((_, 'n')) => '\n',
            Some((_, 'r')) => '\r',
            Some((_, other)) => {
                return Err(error(
                    src,
                    pos + 1 + k,
                    format!(
                        "unknown escape `\\{other}` in text (known: \\\" \\` \\t \\n \\r \\\\)"
                    ),
                ));
            }
            None => break,
        };
        out.push(decoded);
    }
    Err(error(
        src,
        pos,
        format!(
            "unterminated text: no closing {} for the one here",
            char::from(quote)
        ),
    ))
}

/// A `'YYYYMMDD'` date constant starting at `pos`; returns the date and the index after it.
fn lex_date(src: &str, pos: usize, end: usize) -> Result<(DateTime, usize), SearchError> {
    let Some(len) = src[pos + 1..end].find('\'') else {
        return Err(error(
            src,
            pos,
            "unterminated date constant: no closing `'`",
        ));
    };
    let body = &src[pos + 1..pos + 1 + len];
    let date = if body.len() == 8 && body.bytes().all(|c| c.is_ascii_digit()) {
        super::functions::date_from_digits(body)
    } else {
        None
    };
    let Some(date) = date else {
        return Err(error(
            src,
            pos,
            format!(
                "date constant '{body}' is not supported: real servers read date constants in \
                 their locale, the simulator only as 'YYYYMMDD' (or use TextToDate)"
            ),
        ));
    };
    Ok((date, pos + len + 2))
}
