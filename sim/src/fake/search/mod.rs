//! The MoneyWorks expression language as far as the fake server needs it, for `export`
//! `search=` and `sort=` expressions, `evaluate` `expr=`, `calculated` import values and
//! custom export format templates. It owns syntax, value types and coercions; it must not know
//! tables, records or HTTP: names are resolved through a [`Scope`] when an expression is
//! parsed, and a record's values (by slot) and the clock come through an [`Env`]. The lexer,
//! parser, evaluator, functions and templates each have their own module.
//!
//! # The language, and the choices made where MoneyWorks is unknown or locale dependent
//!
//! - **Constants.** Numbers (`12`, `3.5`, `.5`); text in `"…"` or `` `…` `` with the escapes
//!   `\" \` \t \n \r \\` (any other escape is refused); hexadecimal numbers `#FF`. Date
//!   constants in single quotes are parsed by real servers in the server's locale
//!   (`'1/1/2014'`), which the simulator does not model: it accepts only `'YYYYMMDD'` and
//!   refuses every other date constant, pointing to `TextToDate`.
//! - **Names.** Field names are case-insensitive. `table.field` is accepted when the prefix is
//!   the current table ([`Scope::table`]); any other prefix is a relational look-up, which is
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
//!   the [`Scope`] marks as one ([`Slot::datetime`]) is an error (use `>=` and `<`). Date fields and
//!   computed date-times may be compared with `=`.
//! - **Arithmetic.** `+` adds numbers, concatenates when either side is text (the other side
//!   printed as by [`display`]), and adds days to a date-time; `-` subtracts numbers, days from
//!   a date-time, or gives the days between two date-times; `*` multiplies numbers or repeats
//!   text; `/` divides numbers, and division by zero is an error.
//! - **Functions** (case-insensitive): `TextToDate(text[, format])`,
//!   `DateToText(date[, format])` (format required: a `DateForm…` constant or a strftime text
//!   using `%Y %y %m %d %H %M %S %%`), `Time()` (a date-time), `Today()` (a date, printed
//!   `YYYYMMDD`), `Left(text, n)`, `Right(text, n)`, `Mid(text, start, n)` (1-based),
//!   `Upper`, `Lower`, `Len`, `Trim`, `TextToNum`, and the document functions
//!   `GetDatabaseFiles()`, `GetDatabaseFields(file)`, `GetDatabaseFieldSize(file, field)` and
//!   `Find(file.expr, search[, limit[, delim[, sort]]])` / `Find(file, search)`, which ask the
//!   [`Database`] the environment offers. Any other function is refused by name.
//! - **Dates and date-times.** Date fields and `Today()` are dates, date-time fields, `Time()`
//!   and `TextToDate` date-times; both compare and compute alike (a date is midnight), but a
//!   date prints as `YYYYMMDD` and a date-time as `YYYYMMDDHHMMSS`.
//! - **Subfile fields** (`detail.tax` in a Transaction expression) are refused when the
//!   expression is parsed, naming the field: an expression is evaluated once per record, and
//!   the simulator does not guess which line a record-level expression means.
//! - **Constant folding.** Sub-expressions without fields or clock reads are computed once by
//!   [`parse`], so a bad constant such as `TextToDate("x", DateFormYYYYMMDD)` fails the parse
//!   and records are compared with a ready value.
//! - An empty expression is an error; a server should treat an empty `search=` as absent.

mod eval;
mod functions;
mod lexer;
mod parser;
mod template;
#[cfg(test)]
mod tests;

use crate::error::{Classify, ErrorClass};
use crate::time::DateTime;
use eval::{V, as_num, cmp_ci, describe, eval, truth, write_v};
use parser::{Node, parse_range};
pub use template::{Template, parse_template};

/// A typed value in the expression language.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A number (amounts, quantities, sequence numbers).
    Num(f64),
    /// Text.
    Text(String),
    /// A date-time.
    DateTime(DateTime),
    /// A date (held as its midnight); it prints as `YYYYMMDD`.
    Date(DateTime),
    /// The result of a comparison or logical operator (true behaves as 1).
    Bool(bool),
}

/// Where a field name resolved to: an index into the record's values, and whether the field
/// is a date-time (type S), which MoneyWorks refuses to compare with `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The field's index in the schema.
    pub index: usize,
    /// True for a date-time field.
    pub datetime: bool,
}

/// The names an expression may use, resolved once when it is parsed.
pub trait Scope {
    /// The slot of field `name` (lowercase, any `table.` prefix already stripped).
    fn slot(&self, name: &str) -> Option<Slot>;
    /// The current table's lowercase name (`transaction`), which a `table.field` prefix must
    /// name. `None` (the default) accepts any prefix.
    fn table(&self) -> Option<&str> {
        None
    }
    /// The subfile whose field `name` is (`Detail` for `detail.tax`), when it is one; such a
    /// name is refused when the expression is parsed.
    fn subfile_of(&self, _name: &str) -> Option<&'static str> {
        None
    }
}

/// The document as the schema and search functions see it.
pub trait Database {
    /// The internal file (table) names, in the server's order.
    fn files(&self) -> Vec<String>;
    /// The field names of `file` in server order, or why there are none.
    fn fields(&self, file: &str) -> Result<Vec<String>, String>;
    /// The `GetDatabaseFieldSize` answer: a text field's length, or its type's name.
    fn field_size(&self, file: &str, field: &str) -> Result<Val, String>;
    /// `Find`: the values of `expr` for the first `limit` records of `file` matching `search`
    /// in `sort` order (sequence order when `None`; descending when it ends with `-`), joined
    /// by `delim`; with `expr` `None`, the count of matching records.
    fn find(
        &self,
        file: &str,
        expr: Option<&str>,
        search: &str,
        limit: usize,
        delim: &str,
        sort: Option<&str>,
    ) -> Result<Val, String>;
}

/// A scope without fields, for `evaluate`.
pub struct NoFields;

impl Scope for NoFields {
    fn slot(&self, _name: &str) -> Option<Slot> {
        None
    }
}

/// What an expression reads while it is evaluated: one record's values and the clock.
pub trait Env {
    /// The typed value in slot `index` of the scope the expression was parsed in.
    fn value(&self, index: usize) -> Val;
    /// A field the scope did not know, looked up by name (loaded data may carry such fields).
    fn extra(&self, _name: &str) -> Option<Val> {
        None
    }
    /// The server's current time.
    fn now(&self) -> DateTime;
    /// The stored text in slot `index`, which a format prints for a bare field (so numbers keep
    /// the decimals they are stored with).
    fn stored(&self, _index: usize) -> Option<&str> {
        None
    }
    /// The document, for the functions that read it.
    fn database(&self) -> Option<&dyn Database> {
        None
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

pub(super) fn error(src: &str, position: usize, message: impl Into<String>) -> SearchError {
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

/// Parses an expression (a search, a sort key or an `evaluate` expression), resolving its
/// field names in `scope`.
pub fn parse(src: &str, scope: &dyn Scope) -> Result<Expr, SearchError> {
    let root = parse_range(src, 0, src.len(), scope)?;
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

    /// The parts of the expression's top-level `and` chain, each read as a comparison of a
    /// field with a constant where it is one, so a caller can serve that part from an index.
    pub fn conjuncts(&self) -> Vec<Conjunct> {
        let mut out = Vec::new();
        parser::conjuncts(&self.root, &mut out);
        out
    }

    /// The field slot when the whole expression is one bare field (`LastModifiedTime`).
    pub fn bare_field(&self) -> Option<usize> {
        parser::bare_field(&self.root)
    }
}

/// A comparison operator of a [`Conjunct`], with the field on the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=` (text: case-insensitive, `@` wildcards).
    Eq,
    /// `==` (text: case-insensitive, no wildcards).
    EqExact,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// One part of a top-level `and` chain.
#[derive(Debug, Clone, PartialEq)]
pub enum Conjunct {
    /// `field op constant` (or `constant op field`, turned round).
    Compare {
        /// The field's slot.
        index: usize,
        /// The operator, the field on its left.
        op: Cmp,
        /// The constant.
        value: Val,
    },
    /// Anything else.
    Other,
}

/// Text folded the way comparisons fold it, so an index keyed by it finds what `=` finds.
pub fn fold(text: &str) -> String {
    eval::fold(text)
}

/// How a value prints in templates and `evaluate` replies: numbers without trailing zeros
/// (`2`, `7.5`), date-times as YYYYMMDDHHMMSS, dates as YYYYMMDD, booleans as 1/0, text as
/// is.
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
            Val::DateTime(_) | Val::Date(_) => 2,
        }
    }
    match (a, b) {
        (Val::Text(x), Val::Text(y)) => cmp_ci(x, y).then_with(|| x.cmp(y)),
        (Val::DateTime(x) | Val::Date(x), Val::DateTime(y) | Val::Date(y)) => x.cmp(y),
        _ => match (as_num(&V::borrow(a)), as_num(&V::borrow(b))) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => rank(a).cmp(&rank(b)),
        },
    }
}
