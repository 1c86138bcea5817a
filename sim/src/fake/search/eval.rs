//! Evaluating a parsed expression against one record: values and their coercions, the
//! arithmetic and comparison rules of the manual (text promotion, date arithmetic, `@`
//! wildcards, case-insensitive text) and field look-up by the slot the parser bound. It must
//! not parse text; functions live in `functions`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use super::functions::digits_to_time;
use super::parser::{BinOp, Binding, FieldRef, Kind, Node};
use super::{Env, SearchError, Slot, Val, error};
use crate::time::DateTime;

/// A value during evaluation; text borrows from constants in the tree where it can.
#[derive(Debug, Clone)]
pub(super) enum V<'a> {
    Num(f64),
    Text(Cow<'a, str>),
    Dt(DateTime),
    Date(DateTime),
    Bool(bool),
}

impl<'a> V<'a> {
    pub(super) fn borrow(v: &'a Val) -> V<'a> {
        match v {
            Val::Num(n) => V::Num(*n),
            Val::Text(t) => V::Text(Cow::Borrowed(t)),
            Val::DateTime(d) => V::Dt(*d),
            Val::Date(d) => V::Date(*d),
            Val::Bool(b) => V::Bool(*b),
        }
    }

    pub(super) fn owned(v: Val) -> V<'a> {
        match v {
            Val::Num(n) => V::Num(n),
            Val::Text(t) => V::Text(Cow::Owned(t)),
            Val::DateTime(d) => V::Dt(d),
            Val::Date(d) => V::Date(d),
            Val::Bool(b) => V::Bool(b),
        }
    }

    pub(super) fn into_val(self) -> Val {
        match self {
            V::Num(n) => Val::Num(n),
            V::Text(t) => Val::Text(t.into_owned()),
            V::Dt(d) => Val::DateTime(d),
            V::Date(d) => Val::Date(d),
            V::Bool(b) => Val::Bool(b),
        }
    }
}

pub(super) fn as_num(v: &V) -> Option<f64> {
    match v {
        V::Num(n) => Some(*n),
        V::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        V::Text(_) | V::Dt(_) | V::Date(_) => None,
    }
}

pub(super) fn truth(v: &V) -> Option<bool> {
    as_num(v).map(|n| n != 0.0)
}

/// The value's type and value, for messages.
pub(super) fn describe(v: &V) -> String {
    match v {
        V::Num(_) => format!("the number {}", to_text(v)),
        V::Text(t) => format!("the text `{t}`"),
        V::Dt(d) => format!("the date-time {d}"),
        V::Date(d) => format!("the date {}", d.date_text()),
        V::Bool(b) => format!("the condition {b}"),
    }
}

pub(super) fn write_v(out: &mut String, v: &V) {
    match v {
        V::Num(n) => write_num(out, *n),
        V::Text(t) => out.push_str(t),
        V::Dt(d) => {
            let _ = write!(out, "{d}");
        }
        V::Date(d) => out.push_str(&d.date_text()),
        V::Bool(b) => out.push(if *b { '1' } else { '0' }),
    }
}

pub(super) fn to_text<'a>(v: &V<'a>) -> Cow<'a, str> {
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

pub(super) fn eval<'a>(n: &'a Node, env: &dyn Env, src: &str) -> Result<V<'a>, SearchError> {
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
                refuse_datetime_equality(*op, a, src)?;
                refuse_datetime_equality(*op, b, src)?;
            }
            let (x, y) = (eval(a, env, src)?, eval(b, env, src)?);
            compare(*op, &x, &y)
                .map(V::Bool)
                .map_err(|m| error(src, n.pos, m))
        }
        Kind::Call(f, args) => super::functions::call(*f, args, n.pos, env, src),
    }
}

/// The value of a field: by its slot when the scope knew it, else among the record's extra
/// fields (loaded data), else an error naming it.
fn lookup(f: &FieldRef, pos: usize, env: &dyn Env, src: &str) -> Result<Val, SearchError> {
    let (prefix_ok, table) = match &f.binding {
        Binding::Slot(slot) => return Ok(env.value(slot.index)),
        Binding::Unbound { prefix_ok, table } => (*prefix_ok, table),
    };
    let stripped = f.dot.map(|d| &f.full[d + 1..]);
    let found = match stripped {
        Some(rest) if prefix_ok => env.extra(rest),
        _ => None,
    };
    if let Some(v) = found.or_else(|| env.extra(&f.full)) {
        return Ok(v);
    }
    match table {
        Some(table) if !prefix_ok => Err(error(
            src,
            pos,
            format!(
                "`{}` names a field of another table; relational look-ups are not supported by \
                 the simulator (the current table is `{table}`)",
                f.written
            ),
        )),
        _ => Err(error(src, pos, format!("unknown field `{}`", f.written))),
    }
}

/// Refuses `=`, `==`, `<>` and `!=` when `side` is a date-time (type S) field.
fn refuse_datetime_equality(op: BinOp, side: &Node, src: &str) -> Result<(), SearchError> {
    let Kind::Field(f) = &side.kind else {
        return Ok(());
    };
    if matches!(f.binding, Binding::Slot(Slot { datetime: true, .. })) {
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

pub(super) fn add_days(t: DateTime, days: f64) -> DateTime {
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
        (BinOp::Add, V::Date(t), other) | (BinOp::Add, other, V::Date(t)) => match as_num(other) {
            Some(days) => Ok(V::Date(add_days(*t, days.trunc()))),
            None => Err(bad(&x, &y)),
        },
        (BinOp::Sub, V::Dt(a) | V::Date(a), V::Dt(b) | V::Date(b)) => {
            Ok(V::Num((a.secs() - b.secs()) as f64 / SECS_PER_DAY))
        }
        (BinOp::Sub, V::Dt(t), other) => match as_num(other) {
            Some(days) => Ok(V::Dt(add_days(*t, -days))),
            None => Err(bad(&x, &y)),
        },
        (BinOp::Sub, V::Date(t), other) => match as_num(other) {
            Some(days) => Ok(V::Date(add_days(*t, -days.trunc()))),
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
pub(super) fn comparable_date(text: &str) -> Result<Option<DateTime>, String> {
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
        (V::Dt(a) | V::Date(a), V::Dt(b) | V::Date(b)) => a.cmp(b),
        (V::Dt(a) | V::Date(a), V::Text(t)) => Some(*a).cmp(&comparable_date(t)?),
        (V::Text(t), V::Dt(b) | V::Date(b)) => comparable_date(t)?.cmp(&Some(*b)),
        (V::Dt(_) | V::Date(_), _) | (_, V::Dt(_) | V::Date(_)) => {
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

/// `text` folded as comparisons fold it.
pub(super) fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

pub(super) fn cmp_ci(a: &str, b: &str) -> Ordering {
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
