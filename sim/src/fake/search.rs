//! The MoneyWorks expression language as far as the fake server needs it: a hand-written
//! tokenizer and recursive-descent parser for `export` `search=` and `sort=` expressions and
//! `evaluate` `expr=`, an evaluator over one record (or none, for `evaluate`), and custom
//! export format templates (`[expr]` parts between text with `\t \r \n \xHH \\`
//! metacharacters). It owns syntax, value types and coercions; it must not know tables,
//! records or HTTP: fields and the clock come through [`Env`].
//!
//! # The language, and the choices made where MoneyWorks is unknown or locale dependent
//!
//! - **Constants.** Numbers (`12`, `3.5`, `.5`); text in `"…"` or `` `…` `` with the escapes
//!   `\" \` \t \n \r \\` (any other escape is refused); hexadecimal numbers `#FF`. Date
//!   constants in single quotes are parsed by real servers in the server's locale
//!   (`'1/1/2014'`), which the simulator does not model: it accepts only `'YYYYMMDD'` and
//!   refuses every other date constant, pointing to `TextToDate`.
//! - **Names.** Field names are case-insensitive. `table.field` is accepted when the prefix is
//!   the current table ([`Env::table`]); any other prefix is a relational look-up, which is
//!   refused, unless the dotted name is itself a field (`detail.account`). A name that is no
//!   field is an error naming it, raised when it is evaluated. The constants
//!   `DateFormYYYYMMDDHHMMSS` (-7), `DateFormYYYYMMDD` (-8), `DateFormISO` (-9) and
//!   `DateFormDateTimeBigEndian` (-13) are known; other `DateForm…` names are refused.
//! - **Operators**, by the manual's precedence, highest first: `not` `!` and unary `-`;
//!   `*` `/`; `+` `-`; comparisons `=` `==` `<>` `!=` `<` `>` `<=` `>=`; `and` `&` `&&`;
//!   `or` `|` `||`. Operators of equal precedence group left to right. As in MoneyWorks, `not`
//!   binds tighter than `=`: write `not (a = b)`.
//! - **Comparisons** follow the manual's promotion rules: if one side is text, the other is
//!   turned into text; otherwise numbers and booleans compare as numbers (true is 1).
//!   Date-times compare by time, a date being a date-time at midnight. A date-time compared
//!   with text reads the text as `YYYYMMDD` or `YYYYMMDDHHMMSS` (a simulator choice: real
//!   servers would format the date in their locale); blank text is a blank date, earlier than
//!   every date. A date-time compared with a number is refused. Text compares
//!   case-insensitively; `=`, `<>` and `!=` treat `@` in the right-hand text as a wildcard for
//!   any run of characters, `==` compares exactly.
//! - **Equality on date-time fields is refused.** The manual says type-S (date-time) fields
//!   "cannot be searched by equality operator", so `=`, `==`, `<>` and `!=` with a field that
//!   [`Env::is_datetime_field`] names as one is an error (use `>=` and `<`). Date fields and
//!   computed date-times may be compared with `=`.
//! - **Arithmetic.** `+` adds numbers, concatenates when either side is text (the other side
//!   printed as by [`display`]), and adds days to a date-time; `-` subtracts numbers, days from
//!   a date-time, or gives the days between two date-times; `*` multiplies numbers or repeats
//!   text; `/` divides numbers, and division by zero is an error.
//! - **Functions** (case-insensitive): `TextToDate(text[, format])`,
//!   `DateToText(date[, format])` (format required: a `DateForm…` constant or a strftime text
//!   using `%Y %y %m %d %H %M %S %%`), `Time()`, `Today()`, `Left(text, n)`,
//!   `Right(text, n)`, `Mid(text, start, n)` (1-based), `Upper`, `Lower`, `Len`, `Trim`,
//!   `TextToNum`. Any other function is refused by name.
//! - **Constant folding.** Sub-expressions without fields or clock reads are computed once by
//!   [`parse`], so a bad constant such as `TextToDate("x", DateFormYYYYMMDD)` fails the parse
//!   and records are compared with a ready value.
//! - An empty expression is an error; a server should treat an empty `search=` as absent.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::error::{Classify, ErrorClass};
use crate::time::{Civil, DateTime};

/// A typed value in the expression language.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A number (amounts, quantities, sequence numbers).
    Num(f64),
    /// Text.
    Text(String),
    /// A date-time; a date is a date-time at midnight.
    DateTime(DateTime),
    /// The result of a comparison or logical operator (true behaves as 1).
    Bool(bool),
}

/// What an expression can read: the current record's fields and the server clock.
pub trait Env {
    /// The typed value of a field (name lowercased, table prefix stripped), None if no such field.
    fn field(&self, name: &str) -> Option<Val>;
    /// The server's current time.
    fn now(&self) -> DateTime;
    /// The current table's lowercase name (`transaction`), which a `table.field` prefix must
    /// name. `None` (the default) accepts any prefix.
    fn table(&self) -> Option<&str> {
        None
    }
    /// Whether the field `name` (lowercase, prefix stripped) is a date-time (type S) field,
    /// which MoneyWorks refuses to compare with `=`. The default knows the two the manual
    /// names, `lastmodifiedtime` and `timeposted`; a server with a schema should answer from it.
    fn is_datetime_field(&self, name: &str) -> bool {
        name == "lastmodifiedtime" || name == "timeposted"
    }
}

/// An error with the byte position in the source text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at position {position} in `{source_text}`")]
pub struct SearchError {
    /// Byte offset in `source_text` where the problem was found.
    pub position: usize,
    /// What was wrong, in words.
    pub message: String,
    /// The whole expression or format text.
    pub source_text: String,
}

impl Classify for SearchError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

fn error(src: &str, position: usize, message: impl Into<String>) -> SearchError {
    SearchError {
        position,
        message: message.into(),
        source_text: src.to_string(),
    }
}

/// A parsed expression, ready to be evaluated against many records.
#[derive(Debug, Clone)]
pub struct Expr {
    root: Node,
    src: String,
}

/// Parses an expression (a search, a sort key or an `evaluate` expression).
pub fn parse(src: &str) -> Result<Expr, SearchError> {
    let root = parse_range(src, 0, src.len())?;
    Ok(Expr {
        root,
        src: src.to_string(),
    })
}

impl Expr {
    /// Evaluates the expression against `env`.
    pub fn eval(&self, env: &dyn Env) -> Result<Val, SearchError> {
        eval(&self.root, env, &self.src).map(V::into_val)
    }

    /// Evaluates as a search condition: Bool, or a number (non-zero = true).
    pub fn matches(&self, env: &dyn Env) -> Result<bool, SearchError> {
        let v = eval(&self.root, env, &self.src)?;
        truth(&v).ok_or_else(|| {
            error(
                &self.src,
                self.root.pos,
                format!(
                    "a search must be a condition, but this gives {}",
                    describe(&v)
                ),
            )
        })
    }

    /// The expression's source text.
    pub fn source(&self) -> &str {
        &self.src
    }
}

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
pub fn parse_template(src: &str) -> Result<Template, SearchError> {
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
                parts.push(Part::Expr(parse_range(src, i + 1, close)?));
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
    /// Renders the template for one record.
    pub fn render(&self, env: &dyn Env) -> Result<String, SearchError> {
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                Part::Lit(text) => out.push_str(text),
                Part::Expr(node) => write_v(&mut out, &eval(node, env, &self.src)?),
            }
        }
        Ok(out)
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.src
    }
}

/// How a value prints in templates and `evaluate` replies: numbers without trailing zeros
/// (`2`, `7.5`), date-times as YYYYMMDDHHMMSS, booleans as 1/0, text as is.
pub fn display(val: &Val) -> String {
    let mut out = String::new();
    write_v(&mut out, &V::borrow(val));
    out
}

/// A total order for sorting (numbers, then text case-insensitively, date-times by time).
/// Booleans sort as the numbers 1 and 0; texts equal but for case are ordered by their bytes.
pub fn sort_cmp(a: &Val, b: &Val) -> std::cmp::Ordering {
    fn rank(v: &Val) -> u8 {
        match v {
            Val::Num(_) | Val::Bool(_) => 0,
            Val::Text(_) => 1,
            Val::DateTime(_) => 2,
        }
    }
    match (a, b) {
        (Val::Text(x), Val::Text(y)) => cmp_ci(x, y).then_with(|| x.cmp(y)),
        (Val::DateTime(x), Val::DateTime(y)) => x.cmp(y),
        _ => match (as_num(&V::borrow(a)), as_num(&V::borrow(b))) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => rank(a).cmp(&rank(b)),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
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

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
}

fn lex(src: &str, start: usize, end: usize) -> Result<Vec<Token>, SearchError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        let c = b[i];
        let pos = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok =
            if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
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
                Tok::Num(
                    text.parse()
                        .map_err(|_| error(src, pos, format!("`{text}` is not a number")))?,
                )
            } else if c.is_ascii_alphabetic() || c == b'_' {
                while i < end && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                    i += 1;
                }
                let word = &src[pos..i];
                if word.eq_ignore_ascii_case("and") {
                    Tok::And
                } else if word.eq_ignore_ascii_case("or") {
                    Tok::Or
                } else if word.eq_ignore_ascii_case("not") {
                    Tok::Not
                } else {
                    Tok::Ident
                }
            } else {
                let two = b.get(i..(i + 2).min(end)).unwrap_or(&[]);
                let (tok, len) = match (c, two) {
                    (b'"' | b'`', _) => {
                        let (text, after) = lex_string(src, pos, end)?;
                        i = after;
                        out.push(Token {
                            tok: Tok::Str(text),
                            pos,
                            end: after,
                        });
                        continue;
                    }
                    (b'\'', _) => {
                        let (date, after) = lex_date(src, pos, end)?;
                        i = after;
                        out.push(Token {
                            tok: Tok::Date(date),
                            pos,
                            end: after,
                        });
                        continue;
                    }
                    (b'#', _) => {
                        let mut j = i + 1;
                        while j < end && b[j].is_ascii_hexdigit() {
                            j += 1;
                        }
                        let digits = &src[i + 1..j];
                        let n = u64::from_str_radix(digits, 16).map_err(|_| {
                            if digits.is_empty() {
                                error(src, pos, "`#` must be followed by hexadecimal digits")
                            } else {
                                error(src, pos, format!("hex constant `#{digits}` is too large"))
                            }
                        })?;
                        i = j;
                        out.push(Token {
                            tok: Tok::Num(n as f64),
                            pos,
                            end: j,
                        });
                        continue;
                    }
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
                        let ch = src[i..].chars().next().expect("i is on a char boundary");
                        return Err(error(src, pos, format!("unexpected character `{ch}`")));
                    }
                };
                i += len;
                tok
            };
        out.push(Token { tok, pos, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: end,
        end,
    });
    Ok(out)
}

/// A `"…"` or `` `…` `` constant starting at `pos`; returns its text and the index after it.
fn lex_string(src: &str, pos: usize, end: usize) -> Result<(String, usize), SearchError> {
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
        date_from_digits(body)
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

// ---------------------------------------------------------------------------------------------
// Syntax tree and parser

/// The deepest syntax tree accepted, so evaluation cannot exhaust the stack.
const MAX_DEPTH: u32 = 200;
/// The deepest nesting of parentheses, `not` and unary `-` accepted, so parsing cannot
/// exhaust the stack (each level costs several parser frames).
const MAX_NESTING: u32 = 64;

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// Byte offset of the token that names this node (the operator for binary nodes).
    pos: usize,
    depth: u32,
}

#[derive(Debug, Clone)]
enum Kind {
    Const(Val),
    Field(FieldRef),
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Debug, Clone)]
struct FieldRef {
    /// As written, for messages.
    written: String,
    /// Lowercased, prefix included.
    full: String,
    /// Index of the first `.` in `full`, if any.
    dot: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    /// `=`: case-insensitive, `@` in the right-hand text is a wildcard.
    Eq,
    /// `==`: case-insensitive, no wildcard.
    EqExact,
    /// `<>` and `!=`: the negation of `=`.
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::EqExact => "==",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::EqExact | BinOp::Ne)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    TextToDate,
    DateToText,
    Time,
    Today,
    Left,
    Right,
    Mid,
    Upper,
    Lower,
    Len,
    Trim,
    TextToNum,
}

/// Supported functions: name as the manual spells it, and the accepted argument counts.
const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("TextToDate", Func::TextToDate, 1, 2),
    ("DateToText", Func::DateToText, 1, 2),
    ("Time", Func::Time, 0, 0),
    ("Today", Func::Today, 0, 0),
    ("Left", Func::Left, 2, 2),
    ("Right", Func::Right, 2, 2),
    ("Mid", Func::Mid, 3, 3),
    ("Upper", Func::Upper, 1, 1),
    ("Lower", Func::Lower, 1, 1),
    ("Len", Func::Len, 1, 1),
    ("Trim", Func::Trim, 1, 1),
    ("TextToNum", Func::TextToNum, 1, 1),
];

fn func_name(f: Func) -> &'static str {
    FUNCS
        .iter()
        .find(|(_, g, _, _)| *g == f)
        .map_or("?", |(name, _, _, _)| name)
}

const DATE_YYYYMMDDHHMMSS: i64 = -7;
const DATE_YYYYMMDD: i64 = -8;
const DATE_ISO: i64 = -9;
const DATE_BIG_ENDIAN_TIME: i64 = -13;

/// Named constants (lowercase) and their values.
const CONSTANTS: &[(&str, i64)] = &[
    ("dateformyyyymmddhhmmss", DATE_YYYYMMDDHHMMSS),
    ("dateformyyyymmdd", DATE_YYYYMMDD),
    ("dateformiso", DATE_ISO),
    ("dateformdatetimebigendian", DATE_BIG_ENDIAN_TIME),
];

const SUPPORTED_FORMATS: &str = "DateFormYYYYMMDDHHMMSS (-7), DateFormYYYYMMDD (-8), \
                                 DateFormISO (-9) and DateFormDateTimeBigEndian (-13)";

fn parse_range(src: &str, start: usize, end: usize) -> Result<Node, SearchError> {
    let toks = lex(src, start, end)?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        nesting: 0,
    };
    let node = p.parse_or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let (pos, text) = (t.pos, p.text(t));
        return Err(error(
            src,
            pos,
            format!("unexpected `{text}` after the end of the expression"),
        ));
    }
    Ok(node)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    i: usize,
    nesting: u32,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn text(&self, t: &Token) -> &str {
        &self.src[t.pos..t.end]
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> SearchError {
        error(self.src, pos, msg)
    }

    fn binary(&self, op: BinOp, pos: usize, lhs: Node, rhs: Node) -> Result<Node, SearchError> {
        let depth = 1 + lhs.depth.max(rhs.depth);
        self.node(Kind::Bin(op, Box::new(lhs), Box::new(rhs)), pos, depth)
    }

    /// Builds a node, refusing over-deep trees and folding constant sub-expressions.
    fn node(&self, kind: Kind, pos: usize, depth: u32) -> Result<Node, SearchError> {
        if depth > MAX_DEPTH {
            return Err(self.err(pos, "the expression is nested too deeply"));
        }
        let node = Node { kind, pos, depth };
        let foldable = match &node.kind {
            Kind::Const(_) | Kind::Field(_) => false,
            Kind::Neg(a) | Kind::Not(a) => is_const(a),
            Kind::Bin(_, a, b) => is_const(a) && is_const(b),
            Kind::Call(f, args) => {
                !matches!(f, Func::Time | Func::Today) && args.iter().all(is_const)
            }
        };
        if !foldable {
            return Ok(node);
        }
        let value = eval(&node, &NoRecord, self.src)?.into_val();
        Ok(Node {
            kind: Kind::Const(value),
            pos,
            depth: 1,
        })
    }

    fn parse_or(&mut self) -> Result<Node, SearchError> {
        let mut lhs = self.parse_and()?;
        while self.peek().tok == Tok::Or {
            let pos = self.bump().pos;
            let rhs = self.parse_and()?;
            lhs = self.binary(BinOp::Or, pos, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn parse_and(&mut self) -> Result<Node, SearchError> {
        let mut lhs = self.parse_cmp()?;
        while self.peek().tok == Tok::And {
            let pos = self.bump().pos;
            let rhs = self.parse_cmp()?;
            lhs = self.binary(BinOp::And, pos, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn parse_cmp(&mut self) -> Result<Node, SearchError> {
        let mut lhs = self.parse_add()?;
        loop {
            let op = match self.peek().tok {
                Tok::Eq => BinOp::Eq,
                Tok::EqEq => BinOp::EqExact,
                Tok::Ne => BinOp::Ne,
                Tok::Lt => BinOp::Lt,
                Tok::Gt => BinOp::Gt,
                Tok::Le => BinOp::Le,
                Tok::Ge => BinOp::Ge,
                _ => return Ok(lhs),
            };
            let pos = self.bump().pos;
            let rhs = self.parse_add()?;
            lhs = self.binary(op, pos, lhs, rhs)?;
        }
    }

    fn parse_add(&mut self) -> Result<Node, SearchError> {
        let mut lhs = self.parse_mul()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let pos = self.bump().pos;
            let rhs = self.parse_mul()?;
            lhs = self.binary(op, pos, lhs, rhs)?;
        }
    }

    fn parse_mul(&mut self) -> Result<Node, SearchError> {
        let mut lhs = self.parse_unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(lhs),
            };
            let pos = self.bump().pos;
            let rhs = self.parse_unary()?;
            lhs = self.binary(op, pos, lhs, rhs)?;
        }
    }

    fn parse_unary(&mut self) -> Result<Node, SearchError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(self.peek().pos, "the expression is nested too deeply"));
        }
        let result = match self.peek().tok {
            Tok::Not | Tok::Minus => {
                let t = self.bump();
                let arg = self.parse_unary()?;
                let depth = arg.depth + 1;
                let kind = if t.tok == Tok::Not {
                    Kind::Not(Box::new(arg))
                } else {
                    Kind::Neg(Box::new(arg))
                };
                self.node(kind, t.pos, depth)
            }
            _ => self.parse_primary(),
        };
        self.nesting -= 1;
        result
    }

    fn parse_primary(&mut self) -> Result<Node, SearchError> {
        let t = self.bump();
        let constant = |v: Val| {
            Ok(Node {
                kind: Kind::Const(v),
                pos: t.pos,
                depth: 1,
            })
        };
        match &t.tok {
            Tok::Num(n) => constant(Val::Num(*n)),
            Tok::Str(s) => constant(Val::Text(s.clone())),
            Tok::Date(d) => constant(Val::DateTime(*d)),
            Tok::LParen => {
                let inner = self.parse_or()?;
                let close = self.bump();
                if close.tok != Tok::RParen {
                    return Err(self.err(
                        close.pos,
                        format!(
                            "expected `)` to close the `(` at position {}, found {}",
                            t.pos,
                            self.found(&close)
                        ),
                    ));
                }
                Ok(inner)
            }
            Tok::Ident if self.peek().tok == Tok::LParen => self.parse_call(&t),
            Tok::Ident => self.parse_name(&t),
            _ => Err(self.err(t.pos, format!("expected a value, found {}", self.found(&t)))),
        }
    }

    fn found(&self, t: &Token) -> String {
        if t.tok == Tok::Eof {
            "the end of the expression".to_string()
        } else {
            format!("`{}`", self.text(t))
        }
    }

    fn parse_name(&self, t: &Token) -> Result<Node, SearchError> {
        let written = self.text(t);
        let full = written.to_ascii_lowercase();
        if let Some((_, value)) = CONSTANTS.iter().find(|(name, _)| *name == full) {
            return Ok(Node {
                kind: Kind::Const(Val::Num(*value as f64)),
                pos: t.pos,
                depth: 1,
            });
        }
        if full.starts_with("dateform") {
            return Err(self.err(
                t.pos,
                format!(
                    "`{written}` is not supported by the simulator (supported: {SUPPORTED_FORMATS})"
                ),
            ));
        }
        if full.ends_with('.') || full.contains("..") {
            return Err(self.err(t.pos, format!("`{written}` is not a valid field name")));
        }
        Ok(Node {
            kind: Kind::Field(FieldRef {
                written: written.to_string(),
                dot: full.find('.'),
                full,
            }),
            pos: t.pos,
            depth: 1,
        })
    }

    fn parse_call(&mut self, name: &Token) -> Result<Node, SearchError> {
        let written = self.text(name).to_string();
        let Some(&(proper, func, min, max)) = FUNCS
            .iter()
            .find(|(n, _, _, _)| n.eq_ignore_ascii_case(&written))
        else {
            return Err(self.err(
                name.pos,
                format!("function `{written}` is not supported by the simulator"),
            ));
        };
        let open = self.bump();
        let mut args = Vec::new();
        if self.peek().tok == Tok::RParen {
            self.bump();
        } else {
            loop {
                args.push(self.parse_or()?);
                let t = self.bump();
                match t.tok {
                    Tok::Comma => continue,
                    Tok::RParen => break,
                    _ => {
                        return Err(self.err(
                            t.pos,
                            format!(
                                "expected `,` or `)` in the call of `{proper}` opened at \
                                 position {}, found {}",
                                open.pos,
                                self.found(&t)
                            ),
                        ));
                    }
                }
            }
        }
        if args.len() < min || args.len() > max {
            let wanted = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.err(
                name.pos,
                format!(
                    "`{proper}` takes {wanted} argument{}, got {}",
                    if max == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        let depth = 1 + args.iter().map(|a| a.depth).max().unwrap_or(0);
        self.node(Kind::Call(func, args), name.pos, depth)
    }
}

fn is_const(n: &Node) -> bool {
    matches!(n.kind, Kind::Const(_))
}

/// The environment used to fold constants: no record, and no clock (never read, since
/// `Time()` and `Today()` are not folded).
struct NoRecord;

impl Env for NoRecord {
    fn field(&self, _name: &str) -> Option<Val> {
        None
    }
    fn now(&self) -> DateTime {
        DateTime::from_secs(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A value during evaluation; text borrows from constants in the tree where it can.
#[derive(Debug, Clone)]
enum V<'a> {
    Num(f64),
    Text(Cow<'a, str>),
    Dt(DateTime),
    Bool(bool),
}

impl<'a> V<'a> {
    fn borrow(v: &'a Val) -> V<'a> {
        match v {
            Val::Num(n) => V::Num(*n),
            Val::Text(t) => V::Text(Cow::Borrowed(t)),
            Val::DateTime(d) => V::Dt(*d),
            Val::Bool(b) => V::Bool(*b),
        }
    }

    fn owned(v: Val) -> V<'a> {
        match v {
            Val::Num(n) => V::Num(n),
            Val::Text(t) => V::Text(Cow::Owned(t)),
            Val::DateTime(d) => V::Dt(d),
            Val::Bool(b) => V::Bool(b),
        }
    }

    fn into_val(self) -> Val {
        match self {
            V::Num(n) => Val::Num(n),
            V::Text(t) => Val::Text(t.into_owned()),
            V::Dt(d) => Val::DateTime(d),
            V::Bool(b) => Val::Bool(b),
        }
    }
}

fn as_num(v: &V) -> Option<f64> {
    match v {
        V::Num(n) => Some(*n),
        V::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        V::Text(_) | V::Dt(_) => None,
    }
}

fn truth(v: &V) -> Option<bool> {
    as_num(v).map(|n| n != 0.0)
}

/// The value's type and value, for messages.
fn describe(v: &V) -> String {
    match v {
        V::Num(_) => format!("the number {}", to_text(v)),
        V::Text(t) => format!("the text `{t}`"),
        V::Dt(d) => format!("the date-time {d}"),
        V::Bool(b) => format!("the condition {b}"),
    }
}

fn write_v(out: &mut String, v: &V) {
    match v {
        V::Num(n) => write_num(out, *n),
        V::Text(t) => out.push_str(t),
        V::Dt(d) => {
            let _ = write!(out, "{d}");
        }
        V::Bool(b) => out.push(if *b { '1' } else { '0' }),
    }
}

fn to_text<'a>(v: &V<'a>) -> Cow<'a, str> {
    match v {
        V::Text(t) => t.clone(),
        other => {
            let mut s = String::new();
            write_v(&mut s, other);
            Cow::Owned(s)
        }
    }
}

fn write_num(out: &mut String, n: f64) {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        let _ = write!(out, "{}", n as i64);
    } else if n.is_finite() {
        let text = format!("{n:.10}");
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        out.push_str(if trimmed == "-0" { "0" } else { trimmed });
    } else {
        let _ = write!(out, "{n}");
    }
}

fn eval<'a>(n: &'a Node, env: &dyn Env, src: &str) -> Result<V<'a>, SearchError> {
    match &n.kind {
        Kind::Const(v) => Ok(V::borrow(v)),
        Kind::Field(f) => lookup(f, n.pos, env, src).map(V::owned),
        Kind::Neg(a) => {
            let v = eval(a, env, src)?;
            match as_num(&v) {
                Some(x) => Ok(V::Num(-x)),
                None => Err(error(src, n.pos, format!("cannot negate {}", describe(&v)))),
            }
        }
        Kind::Not(a) => {
            let v = eval(a, env, src)?;
            match truth(&v) {
                Some(b) => Ok(V::Bool(!b)),
                None => Err(error(
                    src,
                    n.pos,
                    format!("`not` needs a condition or a number, got {}", describe(&v)),
                )),
            }
        }
        Kind::Bin(op @ (BinOp::And | BinOp::Or), a, b) => {
            let want = *op == BinOp::Or;
            let cond = |side: &'a Node| -> Result<bool, SearchError> {
                let v = eval(side, env, src)?;
                truth(&v).ok_or_else(|| {
                    error(
                        src,
                        n.pos,
                        format!(
                            "`{}` needs conditions or numbers, got {}",
                            op.symbol(),
                            describe(&v)
                        ),
                    )
                })
            };
            if cond(a)? == want {
                return Ok(V::Bool(want));
            }
            Ok(V::Bool(cond(b)?))
        }
        Kind::Bin(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div), a, b) => {
            let (x, y) = (eval(a, env, src)?, eval(b, env, src)?);
            arith(*op, x, y).map_err(|m| error(src, n.pos, m))
        }
        Kind::Bin(op, a, b) => {
            if op.is_equality() {
                refuse_datetime_equality(*op, a, env, src)?;
                refuse_datetime_equality(*op, b, env, src)?;
            }
            let (x, y) = (eval(a, env, src)?, eval(b, env, src)?);
            compare(*op, &x, &y)
                .map(V::Bool)
                .map_err(|m| error(src, n.pos, m))
        }
        Kind::Call(f, args) => call(*f, args, n.pos, env, src),
    }
}

fn lookup(f: &FieldRef, pos: usize, env: &dyn Env, src: &str) -> Result<Val, SearchError> {
    let Some(dot) = f.dot else {
        return env.field(&f.full).ok_or_else(|| unknown_field(f, pos, src));
    };
    let (prefix, rest) = (&f.full[..dot], &f.full[dot + 1..]);
    let prefix_ok = env.table().is_none_or(|t| t.eq_ignore_ascii_case(prefix));
    if prefix_ok && let Some(v) = env.field(rest) {
        return Ok(v);
    }
    if let Some(v) = env.field(&f.full) {
        return Ok(v);
    }
    match env.table() {
        Some(table) if !prefix_ok => Err(error(
            src,
            pos,
            format!(
                "`{}` names a field of another table; relational look-ups are not supported by \
                 the simulator (the current table is `{table}`)",
                f.written
            ),
        )),
        _ => Err(unknown_field(f, pos, src)),
    }
}

fn unknown_field(f: &FieldRef, pos: usize, src: &str) -> SearchError {
    error(src, pos, format!("unknown field `{}`", f.written))
}

/// Refuses `=`, `==`, `<>` and `!=` when `side` is a date-time (type S) field.
fn refuse_datetime_equality(
    op: BinOp,
    side: &Node,
    env: &dyn Env,
    src: &str,
) -> Result<(), SearchError> {
    let Kind::Field(f) = &side.kind else {
        return Ok(());
    };
    let name = f.dot.map_or(&f.full[..], |d| &f.full[d + 1..]);
    if env.is_datetime_field(name) || (f.dot.is_some() && env.is_datetime_field(&f.full)) {
        return Err(error(
            src,
            side.pos,
            format!(
                "{} cannot be compared with `{}`: MoneyWorks does not search date-time (type S) \
                 fields by equality; use a range such as `>=` and `<`",
                f.written,
                op.symbol()
            ),
        ));
    }
    Ok(())
}

const SECS_PER_DAY: f64 = 86_400.0;
/// The longest text `*` may build, so a search cannot exhaust memory.
const MAX_REPEAT_BYTES: usize = 1 << 20;

fn add_days(t: DateTime, days: f64) -> DateTime {
    t.add_secs((days * SECS_PER_DAY).round() as i64)
}

fn arith<'a>(op: BinOp, x: V<'a>, y: V<'a>) -> Result<V<'a>, String> {
    let bad = |x: &V, y: &V| {
        format!(
            "`{}` cannot combine {} and {}",
            op.symbol(),
            describe(x),
            describe(y)
        )
    };
    match (op, &x, &y) {
        (BinOp::Add, V::Text(_), _) | (BinOp::Add, _, V::Text(_)) => {
            let mut s = to_text(&x).into_owned();
            write_v(&mut s, &y);
            Ok(V::Text(Cow::Owned(s)))
        }
        (BinOp::Add, V::Dt(t), other) | (BinOp::Add, other, V::Dt(t)) => match as_num(other) {
            Some(days) => Ok(V::Dt(add_days(*t, days))),
            None => Err(bad(&x, &y)),
        },
        (BinOp::Sub, V::Dt(a), V::Dt(b)) => Ok(V::Num((a.secs() - b.secs()) as f64 / SECS_PER_DAY)),
        (BinOp::Sub, V::Dt(t), other) => match as_num(other) {
            Some(days) => Ok(V::Dt(add_days(*t, -days))),
            None => Err(bad(&x, &y)),
        },
        (BinOp::Mul, V::Text(t), other) => match as_num(other) {
            Some(n) => {
                let times = if n > 0.0 { n.floor() as usize } else { 0 };
                if t.len().saturating_mul(times) > MAX_REPEAT_BYTES {
                    return Err(format!(
                        "repeating text {times} times would exceed {MAX_REPEAT_BYTES} bytes"
                    ));
                }
                Ok(V::Text(Cow::Owned(t.repeat(times))))
            }
            None => Err(bad(&x, &y)),
        },
        _ => {
            let (Some(a), Some(b)) = (as_num(&x), as_num(&y)) else {
                return Err(bad(&x, &y));
            };
            Ok(V::Num(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                _ if b == 0.0 => return Err("division by zero".to_string()),
                _ => a / b,
            }))
        }
    }
}

/// Reads text compared with a date-time: `YYYYMMDD`, `YYYYMMDDHHMMSS`, or blank (`None`).
fn comparable_date(text: &str) -> Result<Option<DateTime>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    digits_to_time(t).map(Some).ok_or_else(|| {
        format!(
            "cannot compare a date-time with the text `{text}`: the simulator reads only \
             YYYYMMDD or YYYYMMDDHHMMSS text as a date"
        )
    })
}

fn compare(op: BinOp, x: &V, y: &V) -> Result<bool, String> {
    let ord = match (x, y) {
        (V::Dt(a), V::Dt(b)) => a.cmp(b),
        (V::Dt(a), V::Text(t)) => Some(*a).cmp(&comparable_date(t)?),
        (V::Text(t), V::Dt(b)) => comparable_date(t)?.cmp(&Some(*b)),
        (V::Dt(_), _) | (_, V::Dt(_)) => {
            return Err(format!(
                "cannot compare {} with {}",
                describe(x),
                describe(y)
            ));
        }
        (V::Text(_), _) | (_, V::Text(_)) => {
            let (a, b) = (to_text(x), to_text(y));
            return Ok(match op {
                BinOp::Eq => glob_ci(&a, &b),
                BinOp::Ne => !glob_ci(&a, &b),
                BinOp::EqExact => cmp_ci(&a, &b) == Ordering::Equal,
                _ => ordering_holds(op, cmp_ci(&a, &b)),
            });
        }
        _ => {
            let (Some(a), Some(b)) = (as_num(x), as_num(y)) else {
                return Err(format!(
                    "cannot compare {} with {}",
                    describe(x),
                    describe(y)
                ));
            };
            a.total_cmp(&b)
        }
    };
    Ok(ordering_holds(op, ord))
}

fn ordering_holds(op: BinOp, ord: Ordering) -> bool {
    match op {
        BinOp::Eq | BinOp::EqExact => ord == Ordering::Equal,
        BinOp::Ne => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Gt => ord == Ordering::Greater,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Ge => ord != Ordering::Less,
        _ => false,
    }
}

fn fold_char(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn cmp_ci(a: &str, b: &str) -> Ordering {
    a.chars().map(fold_char).cmp(b.chars().map(fold_char))
}

/// Case-insensitive match of `text` against `pattern`, where `@` matches any run of characters.
fn glob_ci(text: &str, pattern: &str) -> bool {
    let next = |s: &str, i: usize| s[i..].chars().next();
    let (mut ti, mut pi) = (0, 0);
    // After a mismatch, resume here: (pattern index after the last `@`, text index it took).
    let mut star: Option<(usize, usize)> = None;
    loop {
        match next(pattern, pi) {
            Some('@') => {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            Some(pc) => {
                if let Some(tc) = next(text, ti)
                    && fold_char(pc) == fold_char(tc)
                {
                    pi += pc.len_utf8();
                    ti += tc.len_utf8();
                    continue;
                }
            }
            None if ti == text.len() => return true,
            None => {}
        }
        match star {
            Some((sp, st)) if st < text.len() => {
                let skipped = next(text, st).map_or(1, char::len_utf8);
                star = Some((sp, st + skipped));
                pi = sp;
                ti = st + skipped;
            }
            _ => return false,
        }
    }
}

fn call<'a>(
    f: Func,
    args: &'a [Node],
    pos: usize,
    env: &dyn Env,
    src: &str,
) -> Result<V<'a>, SearchError> {
    let name = func_name(f);
    let fail = |msg: String| error(src, pos, format!("`{name}`: {msg}"));
    let arg = |i: usize| eval(&args[i], env, src);
    let num = |i: usize| -> Result<f64, SearchError> {
        let v = arg(i)?;
        as_num(&v).ok_or_else(|| {
            error(
                src,
                args[i].pos,
                format!(
                    "argument {} of `{name}` must be a number, got {}",
                    i + 1,
                    describe(&v)
                ),
            )
        })
    };
    let text = |i: usize| arg(i).map(|v| to_text(&v).into_owned());
    let count = |i: usize| num(i).map(|n| if n > 0.0 { n.floor() as usize } else { 0 });
    let format_arg = |i: usize| -> Result<Option<V<'a>>, SearchError> {
        if i < args.len() {
            arg(i).map(Some)
        } else {
            Ok(None)
        }
    };
    Ok(match f {
        Func::Time => V::Dt(env.now()),
        Func::Today => V::Dt(midnight(env.now())),
        Func::TextToDate => {
            let t = text(0)?;
            let fmt = match format_arg(1)? {
                None => None,
                Some(v) => Some(format_code(&v).map_err(fail)?),
            };
            V::Dt(text_to_date(&t, fmt).map_err(fail)?)
        }
        Func::DateToText => {
            let d = match arg(0)? {
                V::Dt(d) => d,
                V::Text(t) => digits_to_time(t.trim()).ok_or_else(|| {
                    fail(format!("`{t}` is not a date (YYYYMMDD or YYYYMMDDHHMMSS)"))
                })?,
                other => return Err(fail(format!("needs a date, got {}", describe(&other)))),
            };
            let out = match format_arg(1)? {
                None => {
                    return Err(fail(format!(
                        "without a format the text depends on the server's locale, which the \
                         simulator does not model; pass one of {SUPPORTED_FORMATS}"
                    )));
                }
                Some(V::Text(pattern)) => strftime(d, &pattern).map_err(fail)?,
                Some(v) => date_to_text(d, format_code(&v).map_err(fail)?).map_err(fail)?,
            };
            V::Text(Cow::Owned(out))
        }
        Func::Left => {
            let (t, n) = (text(0)?, count(1)?);
            V::Text(Cow::Owned(t.chars().take(n).collect()))
        }
        Func::Right => {
            let (t, n) = (text(0)?, count(1)?);
            let len = t.chars().count();
            V::Text(Cow::Owned(t.chars().skip(len.saturating_sub(n)).collect()))
        }
        Func::Mid => {
            let (t, start, n) = (text(0)?, num(1)?, count(2)?);
            let skip = if start > 1.0 {
                start.floor() as usize - 1
            } else {
                0
            };
            V::Text(Cow::Owned(t.chars().skip(skip).take(n).collect()))
        }
        Func::Upper => V::Text(Cow::Owned(text(0)?.to_uppercase())),
        Func::Lower => V::Text(Cow::Owned(text(0)?.to_lowercase())),
        Func::Len => V::Num(text(0)?.chars().count() as f64),
        Func::Trim => V::Text(Cow::Owned(text(0)?.trim().to_string())),
        Func::TextToNum => {
            let t = text(0)?;
            let trimmed = t.trim();
            if trimmed.is_empty() {
                V::Num(0.0)
            } else {
                V::Num(
                    trimmed
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .ok_or_else(|| fail(format!("`{t}` is not a number")))?,
                )
            }
        }
    })
}

fn midnight(t: DateTime) -> DateTime {
    DateTime::from_secs(t.secs().div_euclid(86_400) * 86_400)
}

fn format_code(v: &V) -> Result<i64, String> {
    match as_num(v) {
        Some(n) if n.fract() == 0.0 => Ok(n as i64),
        _ => Err(format!(
            "the format must be one of {SUPPORTED_FORMATS}, got {}",
            describe(v)
        )),
    }
}

fn unsupported_format(code: i64) -> String {
    format!("date format {code} is not supported by the simulator (supported: {SUPPORTED_FORMATS})")
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYYMMDD` at midnight.
fn date_from_digits(s: &str) -> Option<DateTime> {
    DateTime::new(
        i64::from(digits(&s[0..4])?),
        digits(&s[4..6])?,
        digits(&s[6..8])?,
        0,
        0,
        0,
    )
}

/// Exactly 8 (`YYYYMMDD`) or 14 (`YYYYMMDDHHMMSS`) digits.
fn digits_to_time(s: &str) -> Option<DateTime> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match s.len() {
        8 => date_from_digits(s),
        14 => DateTime::parse(s).ok(),
        _ => None,
    }
}

fn text_to_date(text: &str, fmt: Option<i64>) -> Result<DateTime, String> {
    let s = text.trim();
    const KNOWN: [i64; 4] = [
        DATE_YYYYMMDDHHMMSS,
        DATE_YYYYMMDD,
        DATE_ISO,
        DATE_BIG_ENDIAN_TIME,
    ];
    if let Some(code) = fmt
        && !KNOWN.contains(&code)
    {
        return Err(unsupported_format(code));
    }
    // The manual: exactly 8 or 14 digits are read as YYYYMMDD or YYYYMMDDHHMMSS whatever
    // the format.
    if s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 8 || s.len() == 14) {
        return digits_to_time(s).ok_or_else(|| format!("`{s}` is not a valid date"));
    }
    let sep = |s: &str, at: &[usize], c: u8| at.iter().all(|&i| s.as_bytes().get(i) == Some(&c));
    let parsed = match fmt {
        Some(DATE_ISO) if s.len() == 10 && sep(s, &[4, 7], b'-') => {
            date_from_digits(&format!("{}{}{}", &s[0..4], &s[5..7], &s[8..10]))
        }
        Some(DATE_BIG_ENDIAN_TIME)
            if s.len() == 19
                && sep(s, &[4, 7], b'-')
                && sep(s, &[13, 16], b':')
                && sep(s, &[10], b' ') =>
        {
            let compact = format!(
                "{}{}{}{}{}{}",
                &s[0..4],
                &s[5..7],
                &s[8..10],
                &s[11..13],
                &s[14..16],
                &s[17..19]
            );
            digits_to_time(&compact)
        }
        None => {
            return Err(format!(
                "`{s}` is not 8 or 14 digits; other forms depend on the server's locale, which \
                 the simulator does not model: pass a format such as DateFormYYYYMMDDHHMMSS"
            ));
        }
        Some(_) => None,
    };
    parsed.ok_or_else(|| format!("`{s}` is not a date in the requested format"))
}

fn date_to_text(t: DateTime, code: i64) -> Result<String, String> {
    let Civil {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    } = t.civil();
    Ok(match code {
        DATE_YYYYMMDDHHMMSS => t.to_string(),
        DATE_YYYYMMDD => format!("{y:04}{mo:02}{d:02}"),
        DATE_ISO => format!("{y:04}-{mo:02}-{d:02}"),
        DATE_BIG_ENDIAN_TIME => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        other => return Err(unsupported_format(other)),
    })
}

/// The strftime subset `%Y %y %m %d %H %M %S %%`.
fn strftime(t: DateTime, pattern: &str) -> Result<String, String> {
    let Civil {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    } = t.civil();
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{y:04}"),
            Some('y') => write!(out, "{:02}", y.rem_euclid(100)),
            Some('m') => write!(out, "{mo:02}"),
            Some('d') => write!(out, "{d:02}"),
            Some('H') => write!(out, "{h:02}"),
            Some('M') => write!(out, "{mi:02}"),
            Some('S') => write!(out, "{s:02}"),
            Some('%') => write!(out, "%"),
            Some(other) => {
                return Err(format!(
                    "`%{other}` is not supported by the simulator (supported: %Y %y %m %d %H %M %S %%)"
                ));
            }
            None => return Err("the format ends with a lone `%`".to_string()),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as a list of typed fields, with a table name and a fixed clock.
    struct TestEnv {
        fields: Vec<(&'static str, Val)>,
        table: Option<&'static str>,
        now: DateTime,
    }

    impl Env for TestEnv {
        fn field(&self, name: &str) -> Option<Val> {
            self.fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
        fn now(&self) -> DateTime {
            self.now
        }
        fn table(&self) -> Option<&str> {
            self.table
        }
    }

    fn t(s: &str) -> DateTime {
        DateTime::parse(s).expect("test time is valid")
    }

    fn text(s: &str) -> Val {
        Val::Text(s.to_string())
    }

    fn record() -> TestEnv {
        TestEnv {
            fields: vec![
                ("sequencenumber", Val::Num(12.0)),
                ("lastmodifiedtime", Val::DateTime(t("20240101120000"))),
                ("timeposted", Val::DateTime(t("20231231235959"))),
                ("transdate", Val::DateTime(t("20240101000000"))),
                ("code", text("Acme-01")),
                ("type", text("DII")),
                ("email", text("ann@example.com")),
                ("gross", Val::Num(1009.12)),
                ("name", text("Émile Zola")),
                ("detail.account", text("4000-")),
            ],
            table: Some("transaction"),
            now: t("20240315093007"),
        }
    }

    fn no_record() -> TestEnv {
        TestEnv {
            fields: Vec::new(),
            table: None,
            now: t("20240315093007"),
        }
    }

    fn eval_on(env: &TestEnv, src: &str) -> Val {
        parse(src)
            .unwrap_or_else(|e| panic!("{src} should parse: {e}"))
            .eval(env)
            .unwrap_or_else(|e| panic!("{src} should evaluate: {e}"))
    }

    fn shown(src: &str) -> String {
        display(&eval_on(&record(), src))
    }

    fn holds(src: &str) -> bool {
        parse(src)
            .unwrap_or_else(|e| panic!("{src} should parse: {e}"))
            .matches(&record())
            .unwrap_or_else(|e| panic!("{src} should evaluate: {e}"))
    }

    fn parse_err(src: &str) -> SearchError {
        match parse(src) {
            Ok(_) => panic!("{src} should not parse"),
            Err(e) => e,
        }
    }

    fn eval_err(src: &str) -> SearchError {
        let expr = parse(src).unwrap_or_else(|e| panic!("{src} should parse: {e}"));
        match expr.eval(&record()) {
            Ok(v) => panic!("{src} should fail, gave {v:?}"),
            Err(e) => e,
        }
    }

    /// `*` and `/` bind tighter than `+` and `-`, which group left to right.
    #[test]
    fn arithmetic_precedence() {
        assert_eq!(shown("1 + 2 * 3"), "7");
        assert_eq!(shown("(1 + 2) * 3"), "9");
        assert_eq!(shown("10 - 4 - 3"), "3");
        assert_eq!(shown("12 / 3 / 2"), "2");
        assert_eq!(shown("-2 * 3 + 1"), "-5");
        assert_eq!(shown("2 - -3"), "5");
    }

    /// `not` binds tighter than `=`, as in the MoneyWorks manual.
    #[test]
    fn not_binds_tighter_than_comparison() {
        assert!(!holds("not 2 = 1"));
        assert!(holds("not (2 = 1)"));
        assert!(holds("!0"));
    }

    /// `and` binds tighter than `or`; both short-circuit; `&&`, `||` and `!` are aliases.
    #[test]
    fn logical_operators() {
        assert!(holds("1 = 1 or 1 = 2 and 1 = 2"));
        assert!(!holds("(1 = 1 or 1 = 2) and 1 = 2"));
        assert!(holds("1 = 1 && 2 = 2"));
        assert!(holds("1 = 2 || 2 = 2"));
        assert!(holds("1 = 1 & !(1 = 2) | 0"));
        assert!(
            !holds("0 and nosuchfield = 1"),
            "and must not evaluate its right side"
        );
        assert!(
            holds("1 or nosuchfield = 1"),
            "or must not evaluate its right side"
        );
        assert!(holds("sequencenumber > 5 AnD code = `acme@` Or 0"));
    }

    /// Comparisons give booleans, which behave as 1 and 0 in arithmetic and display.
    #[test]
    fn comparisons_are_numbers() {
        assert_eq!(shown("(1 < 2) + (2 < 1) + (3 >= 3)"), "2");
        assert_eq!(shown("1 <= 1"), "1");
        assert_eq!(shown("1 <> 1"), "0");
        assert_eq!(shown("1 != 2"), "1");
        assert!(holds("gross > 1000"));
        assert!(holds("sequencenumber"), "a non-zero number is true");
        assert!(!holds("sequencenumber - 12"), "zero is false");
    }

    /// Both quote styles give text, with the escapes `\" \` \t \n \r \\`.
    #[test]
    fn string_constants_and_escapes() {
        assert_eq!(eval_on(&record(), r#""a\"b""#), text("a\"b"));
        assert_eq!(eval_on(&record(), r#"`say "hi"`"#), text("say \"hi\""));
        assert_eq!(eval_on(&record(), r"`x\`y`"), text("x`y"));
        assert_eq!(
            eval_on(&record(), r#""1\t2\n3\r4\\5""#),
            text("1\t2\n3\r4\\5")
        );
        assert!(holds(r#"`ACME-01` = "acme-01""#));
        assert_eq!(eval_on(&record(), r#""""#), text(""));
    }

    /// Hexadecimal constants are numbers.
    #[test]
    fn hex_constants() {
        assert_eq!(eval_on(&record(), "#FF"), Val::Num(255.0));
        assert_eq!(eval_on(&record(), "#ff + 1"), Val::Num(256.0));
    }

    /// `@` in the right-hand text of `=`/`<>` matches any run of characters; `==` is exact.
    #[test]
    fn wildcards() {
        assert!(holds("type = `DI@`"));
        assert!(holds("type = `di@`"));
        assert!(holds("type = `@I`"));
        assert!(holds("type = `D@I@`"));
        assert!(holds("type = `@`"));
        assert!(!holds("type = `CI@`"));
        assert!(!holds("type = `DI`"));
        assert!(holds("type <> `CI@`"));
        assert!(holds("code = `@-0@`"));
        assert!(holds("email = `ann@`"));
        assert!(
            !holds("email == `ann@`"),
            "== must not treat @ as a wildcard"
        );
        assert!(holds("email == `ANN@EXAMPLE.COM`"));
        assert!(
            !holds("`DI@` = type"),
            "only the right-hand side is a pattern"
        );
    }

    /// Field names, functions, keywords and text comparisons ignore case.
    #[test]
    fn case_insensitivity() {
        assert!(holds("SEQUENCENUMBER = 12 and SequenceNumber = 12"));
        assert_eq!(shown("LEFT(Code, 4)"), "Acme");
        assert_eq!(shown("upper(code)"), "ACME-01");
        assert!(holds(r#""apple" < "Banana""#));
        assert!(holds(r#""ÉMILE ZOLA" = name"#));
        assert!(holds("code = `ACME-01` AND NOT 0"));
    }

    /// Mixed comparisons follow the manual: text wins, so numbers compare as text.
    #[test]
    fn mixed_type_comparisons_promote_to_text() {
        assert!(holds("sequencenumber = `12`"));
        assert!(holds(r#"7 < "five""#), "the manual's example");
        assert!(
            holds(r#"sequencenumber < "5""#),
            "\"12\" sorts before \"5\" as text"
        );
        assert_eq!(shown(r#"5 + "6""#), "56");
        assert_eq!(shown(r#""Me" * 3"#), "MeMeMe");
        assert_eq!(shown(r#""n=" + (1 = 1)"#), "n=1");
    }

    /// A `table.field` prefix naming the current table is accepted; another table's is refused.
    #[test]
    fn table_prefixes() {
        assert!(holds("Transaction.SequenceNumber = 12"));
        assert!(
            holds("detail.account = `4000-`"),
            "a dotted field name is a field"
        );
        let e = eval_err("name.code = `X`");
        assert!(e.message.contains("relational"), "{e}");
        assert!(e.message.contains("name.code"), "{e}");
        let anywhere = TestEnv {
            table: None,
            ..record()
        };
        assert_eq!(eval_on(&anywhere, "whatever.code"), text("Acme-01"));
    }

    /// A name that is no field is an error naming it, at its position.
    #[test]
    fn unknown_field_is_named() {
        let e = eval_err("code = `x` or NoSuchField > 1");
        assert_eq!(e.message, "unknown field `NoSuchField`");
        assert_eq!(e.position, 14);
        let e = parse("code")
            .expect("parses")
            .eval(&no_record())
            .expect_err("no record at document level");
        assert_eq!(e.message, "unknown field `code`");
    }

    /// TextToDate and DateToText convert both ways in every supported format.
    #[test]
    fn text_to_date_round_trips() {
        for stamp in ["20240229235959", "19991231000000", "20240101120000"] {
            let src = format!(
                "DateToText(TextToDate(\"{stamp}\", DateFormYYYYMMDDHHMMSS), DateFormYYYYMMDDHHMMSS)"
            );
            assert_eq!(shown(&src), stamp);
        }
        assert_eq!(
            eval_on(&record(), "TextToDate(`20240101`, DateFormYYYYMMDDHHMMSS)"),
            Val::DateTime(t("20240101000000"))
        );
        assert_eq!(
            eval_on(&record(), "TextToDate(`20240101123456`)"),
            Val::DateTime(t("20240101123456"))
        );
        assert_eq!(shown("DateToText(lastmodifiedtime, -7)"), "20240101120000");
        assert_eq!(
            shown("DateToText(lastmodifiedtime, DateFormYYYYMMDD)"),
            "20240101"
        );
        assert_eq!(
            shown("DateToText(lastmodifiedtime, DateFormISO)"),
            "2024-01-01"
        );
        assert_eq!(
            shown("DateToText(lastmodifiedtime, DateFormDateTimeBigEndian)"),
            "2024-01-01 12:00:00"
        );
        assert_eq!(
            shown("DateToText(TextToDate(`2024-02-29`, DateFormISO), DateFormYYYYMMDD)"),
            "20240229"
        );
        assert_eq!(
            shown("TextToDate(`2024-02-29 23:59:58`, DateFormDateTimeBigEndian)"),
            "20240229235958"
        );
        assert_eq!(
            shown(r#"DateToText(lastmodifiedtime, "%Y-%m-%dT%H:%M:%S %y%%")"#),
            "2024-01-01T12:00:00 24%"
        );
        assert_eq!(shown("'20240301'"), "20240301000000");
    }

    /// Date-times order by time across a year boundary, also against 8- and 14-digit text.
    #[test]
    fn datetime_ordering_across_boundaries() {
        let mark = "TextToDate(\"20240101000000\", DateFormYYYYMMDDHHMMSS)";
        assert!(holds(&format!("timeposted < {mark}")));
        assert!(!holds(&format!("timeposted >= {mark}")));
        assert!(holds(&format!("timeposted >= {mark} - 1/86400")));
        assert!(holds(&format!("lastmodifiedtime >= {mark}")));
        assert!(holds("lastmodifiedtime > `20240101115959`"));
        assert!(!holds("lastmodifiedtime > `20240101120000`"));
        assert!(holds("lastmodifiedtime >= `20240101`"));
        assert!(holds("timeposted < '20240101'"));
        assert!(holds("lastmodifiedtime > timeposted"));
        assert!(holds("lastmodifiedtime > ``"), "a blank date is earliest");
        assert_eq!(shown("TextToDate(`20240228`) + 1"), "20240229000000");
        assert_eq!(shown("TextToDate(`20240301`) - 1"), "20240229000000");
        assert_eq!(shown("lastmodifiedtime - timeposted"), "0.5000115741");
    }

    /// `=` and its relatives on a date-time field are refused, as MoneyWorks does.
    #[test]
    fn equality_on_datetime_field_refused() {
        for src in [
            "LastModifiedTime = TextToDate(\"20240101120000\", DateFormYYYYMMDDHHMMSS)",
            "`20240101120000` == lastmodifiedtime",
            "transaction.timeposted <> '20240101'",
            "lastmodifiedtime != 0",
        ] {
            let e = eval_err(src);
            assert!(e.message.contains("cannot be compared with"), "{src}: {e}");
        }
        let e = eval_err("LastModifiedTime = `x`");
        assert!(e.message.starts_with("LastModifiedTime cannot"), "{e}");
        assert_eq!(e.position, 0);
        assert!(
            holds("transdate = '20240101'"),
            "a date field may be compared with ="
        );
        assert!(holds("DateToText(lastmodifiedtime, -7) = `20240101120000`"));
    }

    /// `evaluate` replies: arithmetic prints without trailing zeros, the clock as 14 digits.
    #[test]
    fn evaluate_formatting() {
        let env = no_record();
        let show = |src: &str| display(&eval_on(&env, src));
        assert_eq!(show("1+1"), "2");
        assert_eq!(show("2*3.5"), "7");
        assert_eq!(show("15/2"), "7.5");
        assert_eq!(show("0.1 + 0.2"), "0.3");
        assert_eq!(show("1/3"), "0.3333333333");
        assert_eq!(show("-0.5 * 0"), "0");
        assert_eq!(show("100000 * 100000"), "10000000000");
        assert_eq!(
            show("DateToText(Time(), DateFormYYYYMMDDHHMMSS)"),
            "20240315093007"
        );
        assert_eq!(show("Time()"), "20240315093007");
        assert_eq!(show("Today()"), "20240315000000");
        assert_eq!(show("1 = 1"), "1");
        assert_eq!(show("`a` + `b`"), "ab");
    }

    /// Text functions count characters, not bytes, and clamp out-of-range counts.
    #[test]
    fn text_functions() {
        assert_eq!(shown("Left(name, 2)"), "Ém");
        assert_eq!(shown("Right(name, 4)"), "Zola");
        assert_eq!(shown("Right(code, 99)"), "Acme-01");
        assert_eq!(shown("Left(code, -1)"), "");
        assert_eq!(shown("Mid(code, 2, 3)"), "cme");
        assert_eq!(shown("Mid(code, 0, 2)"), "Ac");
        assert_eq!(shown("Lower(code)"), "acme-01");
        assert_eq!(shown("Len(name)"), "10");
        assert_eq!(shown("Trim(`  x  `)"), "x");
        assert_eq!(shown("TextToNum(` 6 `) + 5"), "11");
        assert_eq!(shown("Left(sequencenumber, 1)"), "1");
        assert!(holds("left(code, 1) = `A`"));
    }

    /// `sort_cmp` orders numbers, then text ignoring case, then date-times.
    #[test]
    fn sort_order() {
        let mut vals = vec![
            Val::DateTime(t("20240101000000")),
            text("beta"),
            Val::Num(10.0),
            text("Alpha"),
            Val::DateTime(t("20231231235959")),
            Val::Bool(true),
            text("alpha"),
            Val::Num(-1.5),
        ];
        vals.sort_by(sort_cmp);
        assert_eq!(
            vals,
            vec![
                Val::Num(-1.5),
                Val::Bool(true),
                Val::Num(10.0),
                text("Alpha"),
                text("alpha"),
                text("beta"),
                Val::DateTime(t("20231231235959")),
                Val::DateTime(t("20240101000000")),
            ]
        );
    }

    /// Templates evaluate `[expr]` parts and decode `\t \r \n \xHH \\`.
    #[test]
    fn template_rendering() {
        let tpl = parse_template(r"[sequencenumber]\t[lastmodifiedtime]\n").expect("parses");
        assert_eq!(
            tpl.render(&record()).expect("renders"),
            "12\t20240101120000\n"
        );
        let tpl = parse_template(r"\x41\x7e\\ [code + `]`]]\r").expect("parses");
        assert_eq!(tpl.render(&record()).expect("renders"), "A~\\ Acme-01]]\r");
        let tpl = parse_template("plain é text").expect("parses");
        assert_eq!(tpl.render(&record()).expect("renders"), "plain é text");
        assert_eq!(
            parse_template("")
                .expect("parses")
                .render(&record())
                .expect("renders"),
            ""
        );
    }

    /// Template errors: unclosed `[`, unknown metacharacters, bad `\x`, and expression errors
    /// reported at their position in the whole format.
    #[test]
    fn template_errors() {
        let e = parse_template("[code]\t[sequencenumber").expect_err("unclosed");
        assert_eq!(e.position, 7);
        assert!(e.message.contains("no matching `]`"), "{e}");
        let e = parse_template(r"a\qb").expect_err("unknown metacharacter");
        assert_eq!(e.position, 1);
        assert!(e.message.contains(r"\q"), "{e}");
        assert!(parse_template(r"\x4").is_err());
        assert!(parse_template(r"\xZZ").is_err());
        assert!(parse_template("x\\").is_err());
        let e = parse_template("ab[1 +]").expect_err("bad expression");
        assert_eq!(e.position, 6);
        assert_eq!(e.source_text, "ab[1 +]");
        assert!(
            parse_template("[]").is_err(),
            "an empty expression is an error"
        );
        let e = parse_template("[nosuch]")
            .expect("parses")
            .render(&record())
            .expect_err("unknown field");
        assert_eq!(e.position, 1);
    }

    /// Unterminated text, date and quoted constants are reported where they start.
    #[test]
    fn unterminated_constants() {
        let e = parse_err(r#"code = "abc"#);
        assert_eq!(e.position, 7);
        assert!(e.message.contains("unterminated"), "{e}");
        let e = parse_err("code = `abc\\`");
        assert_eq!(e.position, 7);
        let e = parse_err("transdate > '2024");
        assert_eq!(e.position, 12);
        assert!(e.message.contains("unterminated date"), "{e}");
    }

    /// Locale-dependent date constants are refused with a pointer to TextToDate.
    #[test]
    fn locale_date_constants_refused() {
        for src in ["'1/1/2014'", "'20241301'", "''", "'2024010112'"] {
            let e = parse_err(src);
            assert!(e.message.contains("TextToDate"), "{src}: {e}");
            assert_eq!(e.position, 0);
        }
    }

    /// Unknown functions are refused by name.
    #[test]
    fn unknown_function_refused() {
        let e = parse_err("code = `x` and TimeStamp(TSZ_UTC, TSF_ISO8601) > 0");
        assert_eq!(
            e.message,
            "function `TimeStamp` is not supported by the simulator"
        );
        assert_eq!(e.position, 15);
    }

    /// Unbalanced parentheses name the unmatched one.
    #[test]
    fn unbalanced_parentheses() {
        let e = parse_err("(1 + (2 * 3)");
        assert_eq!(e.position, 12);
        assert!(e.message.contains("to close the `(` at position 0"), "{e}");
        let e = parse_err("1 + 2)");
        assert_eq!(e.position, 5);
        assert!(e.message.contains("after the end"), "{e}");
        let e = parse_err("Left(code, 1");
        assert!(e.message.contains("`,` or `)`"), "{e}");
        assert!(parse_err("()").message.contains("expected a value"));
    }

    /// Anything after a complete expression is refused.
    #[test]
    fn trailing_garbage() {
        let e = parse_err("sequencenumber > 5 code");
        assert_eq!(e.position, 19);
        assert_eq!(
            e.message,
            "unexpected `code` after the end of the expression"
        );
        assert!(parse_err("1 2").message.contains("`2`"));
        let e = parse_err("code = $x");
        assert_eq!(e.message, "unexpected character `$`");
        assert_eq!(e.position, 7);
    }

    /// Empty or truncated expressions are refused.
    #[test]
    fn missing_operands() {
        assert!(parse_err("").message.contains("the end of the expression"));
        assert!(parse_err("   ").message.contains("expected a value"));
        let e = parse_err("1 +");
        assert_eq!(e.position, 3);
        assert!(parse_err("and 1").message.contains("`and`"));
    }

    /// Wrong argument counts and types name the function and the argument.
    #[test]
    fn wrong_arguments() {
        let e = parse_err("Left(`abc`)");
        assert_eq!(e.message, "`Left` takes 2 arguments, got 1");
        let e = parse_err("Time(1)");
        assert_eq!(e.message, "`Time` takes 0 arguments, got 1");
        let e = parse_err("TextToDate()");
        assert_eq!(e.message, "`TextToDate` takes 1 to 2 arguments, got 0");
        let e = eval_err("Left(code, code)");
        assert_eq!(e.position, 11);
        assert!(
            e.message.contains("argument 2 of `Left` must be a number"),
            "{e}"
        );
        assert!(
            eval_err("DateToText(sequencenumber, -7)")
                .message
                .contains("needs a date")
        );
        assert!(
            eval_err("DateToText(lastmodifiedtime)")
                .message
                .contains("locale")
        );
        assert!(
            eval_err("DateToText(lastmodifiedtime, 3)")
                .message
                .contains("not supported")
        );
        assert!(
            eval_err("DateToText(lastmodifiedtime, `%Q`)")
                .message
                .contains("%Q")
        );
        assert!(eval_err("TextToNum(code)").message.contains("not a number"));
    }

    /// Bad constant sub-expressions fail at parse time, since they are folded.
    #[test]
    fn constant_errors_fail_the_parse() {
        let e = parse_err("lastmodifiedtime >= TextToDate(`2024-01-01`, DateFormYYYYMMDDHHMMSS)");
        assert_eq!(e.position, 20);
        assert!(e.message.contains("TextToDate"), "{e}");
        assert!(parse_err("TextToDate(`1/1/24`)").message.contains("locale"));
        assert!(
            parse_err("TextToDate(`20240230`, -8)")
                .message
                .contains("not a valid date")
        );
        assert!(parse_err("1 / 0").message.contains("division by zero"));
        assert!(parse_err("`x` * 99999999").message.contains("exceed"));
    }

    /// Type errors in operators describe both operands.
    #[test]
    fn operator_type_errors() {
        assert!(
            eval_err("code - 1")
                .message
                .contains("cannot combine the text `Acme-01`")
        );
        assert!(eval_err("-code").message.contains("cannot negate"));
        assert!(
            eval_err("code and 1")
                .message
                .contains("`and` needs conditions")
        );
        assert!(eval_err("not code").message.contains("`not` needs"));
        assert!(
            eval_err("lastmodifiedtime > 5")
                .message
                .contains("cannot compare")
        );
        assert!(
            eval_err("lastmodifiedtime > `yesterday`")
                .message
                .contains("YYYYMMDD")
        );
        assert!(
            eval_err("lastmodifiedtime + timeposted")
                .message
                .contains("cannot combine")
        );
        let e = parse("code")
            .expect("parses")
            .matches(&record())
            .expect_err("text");
        assert!(e.message.contains("must be a condition"), "{e}");
    }

    /// Malformed tokens and names: bare `#`, unknown escapes, unsupported DateForm constants.
    #[test]
    fn malformed_tokens() {
        assert!(parse_err("#").message.contains("hexadecimal"));
        assert!(
            parse_err("#FFFFFFFFFFFFFFFFF")
                .message
                .contains("too large")
        );
        let e = parse_err(r#""a\qb""#);
        assert_eq!(e.position, 2);
        assert!(e.message.contains(r"\q"), "{e}");
        let e = parse_err("DateToText(Time(), DateFormShort)");
        assert!(e.message.contains("DateFormShort"), "{e}");
        assert!(
            parse_err("code. = 1")
                .message
                .contains("not a valid field name")
        );
    }

    /// Pathological nesting is refused instead of exhausting the stack.
    #[test]
    fn deep_nesting_refused() {
        let src = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_err(&src).message.contains("nested too deeply"));
        let src = format!("code{}", " + code".repeat(5000));
        assert!(parse_err(&src).message.contains("nested too deeply"));
        let src = format!("{}1", "-".repeat(5000));
        assert!(parse_err(&src).message.contains("nested too deeply"));
        let levels = MAX_NESTING as usize / 2 - 1;
        let fine = format!("{}1{}", "(-".repeat(levels), ")".repeat(levels));
        assert_eq!(shown(&fine), if levels % 2 == 1 { "-1" } else { "1" });
        let long = format!(
            "sequencenumber{}",
            " + sequencenumber".repeat(MAX_DEPTH as usize - 2)
        );
        assert_eq!(shown(&long), (12 * (MAX_DEPTH - 1)).to_string());
    }

    /// The error text carries the position and the whole source.
    #[test]
    fn error_display() {
        let e = parse_err("1 +");
        assert_eq!(
            e.to_string(),
            format!("{} at position 3 in `1 +`", e.message)
        );
        assert_eq!(e.class(), ErrorClass::Invalid);
    }
}
