//! The expression parser: recursive descent by the manual's precedence, function calls with
//! their argument counts, named constants, constant folding and the depth limits that keep
//! evaluation off the end of the stack. Field names are resolved against a [`Scope`] here,
//! once, so evaluating a record never searches names. It must not evaluate fields.

use super::eval::eval;
use super::lexer::{Tok, Token, lex};
use super::{Env, Scope, SearchError, Slot, Val, error};
use crate::time::DateTime;

/// The deepest syntax tree accepted, so evaluation cannot exhaust the stack.
pub(super) const MAX_DEPTH: u32 = 200;
/// The deepest nesting of parentheses, `not` and unary `-` accepted, so parsing cannot
/// exhaust the stack (each level costs several parser frames).
pub(super) const MAX_NESTING: u32 = 64;

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) kind: Kind,
    /// Byte offset of the token that names this node (the operator for binary nodes).
    pub(super) pos: usize,
    pub(super) depth: u32,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    Const(Val),
    Field(FieldRef),
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// A field name as written, and what the scope made of it when the expression was parsed.
#[derive(Debug, Clone)]
pub(super) struct FieldRef {
    /// As written, for messages.
    pub(super) written: String,
    /// Lowercased, prefix included.
    pub(super) full: String,
    /// Index of the first `.` in `full`, if any.
    pub(super) dot: Option<usize>,
    /// What the name means in the scope it was parsed in.
    pub(super) binding: Binding,
}

/// What a field name means, decided once at parse time so evaluation never searches names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Binding {
    /// A field of the scope's schema.
    Slot(Slot),
    /// No schema field: looked up among the record's extra fields when evaluated, and an
    /// error then if it is none. `prefix_ok` is false when a `table.` prefix names another
    /// table than the scope's (`table` then holds the scope's table for the message).
    Unbound {
        /// True without a prefix, or when the prefix names the scope's table.
        prefix_ok: bool,
        /// The scope's table, when it has one.
        table: Option<String>,
    },
}

impl FieldRef {
    /// Resolves `full` in `scope` the way MoneyWorks reads names: a `table.` prefix naming the
    /// current table is dropped, and a dotted name may itself be a field (`detail.account`).
    fn bind(written: &str, full: String, scope: &dyn Scope) -> FieldRef {
        let dot = full.find('.');
        let table = scope.table().map(str::to_string);
        let binding = match dot {
            None => match scope.slot(&full) {
                Some(slot) => Binding::Slot(slot),
                None => Binding::Unbound {
                    prefix_ok: true,
                    table,
                },
            },
            Some(d) => {
                let (prefix, rest) = (&full[..d], &full[d + 1..]);
                let prefix_ok = table
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case(prefix));
                let slot = if prefix_ok { scope.slot(rest) } else { None };
                match slot.or_else(|| scope.slot(&full)) {
                    Some(slot) => Binding::Slot(slot),
                    None => Binding::Unbound { prefix_ok, table },
                }
            }
        };
        FieldRef {
            written: written.to_string(),
            full,
            dot,
            binding,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
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
    pub(super) fn symbol(self) -> &'static str {
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

    pub(super) fn is_equality(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::EqExact | BinOp::Ne)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
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
    GetDatabaseFiles,
    GetDatabaseFields,
    GetDatabaseFieldSize,
    Find,
}

/// Supported functions: name as the manual spells it, and the accepted argument counts.
pub(super) const FUNCS: &[(&str, Func, usize, usize)] = &[
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
    ("GetDatabaseFiles", Func::GetDatabaseFiles, 0, 0),
    ("GetDatabaseFields", Func::GetDatabaseFields, 1, 1),
    ("GetDatabaseFieldSize", Func::GetDatabaseFieldSize, 2, 2),
    ("Find", Func::Find, 2, 5),
];

/// Functions whose value depends on more than their arguments (the clock, the document),
/// which are never folded into constants.
fn reads_outside(f: Func) -> bool {
    matches!(
        f,
        Func::Time
            | Func::Today
            | Func::GetDatabaseFiles
            | Func::GetDatabaseFields
            | Func::GetDatabaseFieldSize
            | Func::Find
    )
}

pub(super) fn func_name(f: Func) -> &'static str {
    FUNCS
        .iter()
        .find(|(_, g, _, _)| *g == f)
        .map_or("?", |(name, _, _, _)| name)
}

pub(super) const DATE_YYYYMMDDHHMMSS: i64 = -7;
pub(super) const DATE_YYYYMMDD: i64 = -8;
pub(super) const DATE_ISO: i64 = -9;
pub(super) const DATE_BIG_ENDIAN_TIME: i64 = -13;

/// Named constants (lowercase) and their values.
const CONSTANTS: &[(&str, i64)] = &[
    ("dateformyyyymmddhhmmss", DATE_YYYYMMDDHHMMSS),
    ("dateformyyyymmdd", DATE_YYYYMMDD),
    ("dateformiso", DATE_ISO),
    ("dateformdatetimebigendian", DATE_BIG_ENDIAN_TIME),
];

pub(super) const SUPPORTED_FORMATS: &str = "DateFormYYYYMMDDHHMMSS (-7), DateFormYYYYMMDD (-8), \
                                 DateFormISO (-9) and DateFormDateTimeBigEndian (-13)";

/// Parses `src[start..end]` as one expression, names resolved in `scope`.
pub(super) fn parse_range(
    src: &str,
    start: usize,
    end: usize,
    scope: &dyn Scope,
) -> Result<Node, SearchError> {
    let toks = lex(src, start, end)?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        nesting: 0,
        scope,
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
    scope: &'s dyn Scope,
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
            Kind::Call(f, args) => !reads_outside(*f) && args.iter().all(is_const),
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
        let field = FieldRef::bind(written, full, self.scope);
        if matches!(field.binding, Binding::Unbound { .. })
            && let Some(sub) = self.scope.subfile_of(&field.full)
        {
            return Err(self.err(
                t.pos,
                format!(
                    "`{written}` is a field of the {sub} subfile; an expression here is \
                     evaluated once per record, so the simulator does not use subfile fields in \
                     it (export xml-verbose to read the {sub} lines)"
                ),
            ));
        }
        Ok(Node {
            kind: Kind::Field(field),
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

/// Collects the parts of `n`'s top-level `and` chain, reading comparisons of a field with a
/// constant.
pub(super) fn conjuncts(n: &Node, out: &mut Vec<super::Conjunct>) {
    use super::{Cmp, Conjunct};
    match &n.kind {
        Kind::Bin(BinOp::And, a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        Kind::Bin(op, a, b) => {
            let flip = |op: BinOp| match op {
                BinOp::Lt => BinOp::Gt,
                BinOp::Gt => BinOp::Lt,
                BinOp::Le => BinOp::Ge,
                BinOp::Ge => BinOp::Le,
                other => other,
            };
            let (slot, value, op) = match (&a.kind, &b.kind) {
                (Kind::Field(f), Kind::Const(v)) => (&f.binding, v, *op),
                (Kind::Const(v), Kind::Field(f)) if *op != BinOp::Eq => (&f.binding, v, flip(*op)),
                _ => {
                    out.push(Conjunct::Other);
                    return;
                }
            };
            let cmp = match op {
                BinOp::Eq => Cmp::Eq,
                BinOp::EqExact => Cmp::EqExact,
                BinOp::Lt => Cmp::Lt,
                BinOp::Le => Cmp::Le,
                BinOp::Gt => Cmp::Gt,
                BinOp::Ge => Cmp::Ge,
                _ => {
                    out.push(Conjunct::Other);
                    return;
                }
            };
            match slot {
                Binding::Slot(slot) => out.push(Conjunct::Compare {
                    index: slot.index,
                    op: cmp,
                    value: value.clone(),
                }),
                Binding::Unbound { .. } => out.push(Conjunct::Other),
            }
        }
        _ => out.push(Conjunct::Other),
    }
}

/// The slot of `n` when it is one bare, bound field.
pub(super) fn bare_field(n: &Node) -> Option<usize> {
    match &n.kind {
        Kind::Field(FieldRef {
            binding: Binding::Slot(slot),
            ..
        }) => Some(slot.index),
        _ => None,
    }
}

pub(super) fn is_const(n: &Node) -> bool {
    matches!(n.kind, Kind::Const(_))
}

/// The environment used to fold constants: no record, and no clock (never read, since
/// `Time()` and `Today()` are not folded).
pub(super) struct NoRecord;

impl Env for NoRecord {
    fn value(&self, _index: usize) -> Val {
        Val::Text(String::new())
    }
    fn now(&self) -> DateTime {
        DateTime::from_secs(0)
    }
}
