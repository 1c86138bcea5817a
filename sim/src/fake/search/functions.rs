//! The functions expressions may call: `TextToDate`, `DateToText` (named formats and a
//! strftime subset), `Time`, `Today` and the text functions, with the date forms the simulator
//! reads and writes. It must not parse expressions.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::eval::{V, as_num, describe, eval, to_text};
use super::parser::{
    DATE_BIG_ENDIAN_TIME, DATE_ISO, DATE_YYYYMMDD, DATE_YYYYMMDDHHMMSS, Func, Node,
    SUPPORTED_FORMATS, func_name,
};
use super::{Env, SearchError, error};
use crate::time::{Civil, DateTime};

/// The arguments of one call, evaluated on demand.
struct Args<'a, 'e> {
    name: &'static str,
    nodes: &'a [Node],
    pos: usize,
    env: &'e dyn Env,
    src: &'e str,
}

impl<'a> Args<'a, '_> {
    fn fail(&self, msg: String) -> SearchError {
        error(self.src, self.pos, format!("`{}`: {msg}", self.name))
    }

    fn value(&self, i: usize) -> Result<V<'a>, SearchError> {
        eval(&self.nodes[i], self.env, self.src)
    }

    fn optional(&self, i: usize) -> Result<Option<V<'a>>, SearchError> {
        if i < self.nodes.len() {
            self.value(i).map(Some)
        } else {
            Ok(None)
        }
    }

    fn num(&self, i: usize) -> Result<f64, SearchError> {
        let v = self.value(i)?;
        as_num(&v).ok_or_else(|| {
            error(
                self.src,
                self.nodes[i].pos,
                format!(
                    "argument {} of `{}` must be a number, got {}",
                    i + 1,
                    self.name,
                    describe(&v)
                ),
            )
        })
    }

    fn text(&self, i: usize) -> Result<String, SearchError> {
        self.value(i).map(|v| to_text(&v).into_owned())
    }

    fn count(&self, i: usize) -> Result<usize, SearchError> {
        self.num(i)
            .map(|n| if n > 0.0 { n.floor() as usize } else { 0 })
    }
}

/// Calls `f` with the argument expressions `nodes` (counts were checked by the parser).
pub(super) fn call<'a>(
    f: Func,
    nodes: &'a [Node],
    pos: usize,
    env: &dyn Env,
    src: &str,
) -> Result<V<'a>, SearchError> {
    let args = Args {
        name: func_name(f),
        nodes,
        pos,
        env,
        src,
    };
    match f {
        Func::Time => Ok(V::Dt(env.now())),
        Func::Today => Ok(V::Date(env.now().midnight())),
        Func::TextToDate | Func::DateToText => date_function(f, &args),
        Func::GetDatabaseFiles
        | Func::GetDatabaseFields
        | Func::GetDatabaseFieldSize
        | Func::Find => database_function(f, &args),
        _ => text_function(f, &args),
    }
}

fn date_function<'a>(f: Func, args: &Args<'a, '_>) -> Result<V<'a>, SearchError> {
    if f == Func::TextToDate {
        let t = args.text(0)?;
        let fmt = match args.optional(1)? {
            None => None,
            Some(v) => Some(format_code(&v).map_err(|m| args.fail(m))?),
        };
        return Ok(V::Dt(text_to_date(&t, fmt).map_err(|m| args.fail(m))?));
    }
    let d = match args.value(0)? {
        V::Dt(d) | V::Date(d) => d,
        V::Text(t) => digits_to_time(t.trim()).ok_or_else(|| {
            args.fail(format!("`{t}` is not a date (YYYYMMDD or YYYYMMDDHHMMSS)"))
        })?,
        other => return Err(args.fail(format!("needs a date, got {}", describe(&other)))),
    };
    let out = match args.optional(1)? {
        None => {
            return Err(args.fail(format!(
                "without a format the text depends on the server's locale, which the \
                 simulator does not model; pass one of {SUPPORTED_FORMATS}"
            )));
        }
        Some(V::Text(pattern)) => strftime(d, &pattern).map_err(|m| args.fail(m))?,
        Some(v) => {
            let code = format_code(&v).map_err(|m| args.fail(m))?;
            date_to_text(d, code).map_err(|m| args.fail(m))?
        }
    };
    Ok(V::Text(Cow::Owned(out)))
}

fn text_function<'a>(f: Func, args: &Args<'a, '_>) -> Result<V<'a>, SearchError> {
    let owned = |s: String| V::Text(Cow::Owned(s));
    Ok(match f {
        Func::Left => owned(args.text(0)?.chars().take(args.count(1)?).collect()),
        Func::Right => {
            let (t, n) = (args.text(0)?, args.count(1)?);
            let len = t.chars().count();
            owned(t.chars().skip(len.saturating_sub(n)).collect())
        }
        Func::Mid => {
            let (t, start, n) = (args.text(0)?, args.num(1)?, args.count(2)?);
            let skip = if start > 1.0 {
                start.floor() as usize - 1
            } else {
                0
            };
            owned(t.chars().skip(skip).take(n).collect())
        }
        Func::Upper => owned(args.text(0)?.to_uppercase()),
        Func::Lower => owned(args.text(0)?.to_lowercase()),
        Func::Len => V::Num(args.text(0)?.chars().count() as f64),
        Func::Trim => owned(args.text(0)?.trim().to_string()),
        Func::TextToNum => {
            let t = args.text(0)?;
            let trimmed = t.trim();
            if trimmed.is_empty() {
                V::Num(0.0)
            } else {
                V::Num(
                    trimmed
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .ok_or_else(|| args.fail(format!("`{t}` is not a number")))?,
                )
            }
        }
        _ => return Err(args.fail("is not a text function".into())),
    })
}

/// The functions that read the document through the environment's [`Database`].
fn database_function<'a>(f: Func, args: &Args<'a, '_>) -> Result<V<'a>, SearchError> {
    let db = args.env.database().ok_or_else(|| {
        args.fail("has no document to read here (it works in evaluate, search and format)".into())
    })?;
    let owned = |s: String| V::Text(Cow::Owned(s));
    let value = match f {
        Func::GetDatabaseFiles => owned(db.files().join("\n")),
        Func::GetDatabaseFields => owned(
            db.fields(&args.text(0)?)
                .map_err(|m| args.fail(m))?
                .join("\n"),
        ),
        Func::GetDatabaseFieldSize => V::owned(
            db.field_size(&args.text(0)?, &args.text(1)?)
                .map_err(|m| args.fail(m))?,
        ),
        _ => {
            let target = args.text(0)?;
            let search = args.text(1)?;
            let (file, expr) = match target.split_once('.') {
                Some((file, expr)) => (file.to_string(), Some(expr.to_string())),
                None => (target.clone(), None),
            };
            let limit = match args.optional(2)? {
                Some(v) => match as_num(&v) {
                    Some(n) if n >= 0.0 => n.floor() as usize,
                    _ => {
                        return Err(
                            args.fail(format!("the limit must be a number, got {}", describe(&v)))
                        );
                    }
                },
                None => 1,
            };
            let delim = match args.optional(3)? {
                Some(v) => to_text(&v).into_owned(),
                None => ",".to_string(),
            };
            let sort = args.optional(4)?.map(|v| to_text(&v).into_owned());
            let found = db
                .find(
                    &file,
                    expr.as_deref(),
                    &search,
                    limit,
                    &delim,
                    sort.as_deref(),
                )
                .map_err(|m| args.fail(m))?;
            V::owned(found)
        }
    };
    Ok(value)
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
pub(super) fn date_from_digits(s: &str) -> Option<DateTime> {
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
pub(super) fn digits_to_time(s: &str) -> Option<DateTime> {
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
    let pattern = match code {
        DATE_YYYYMMDDHHMMSS => "%Y%m%d%H%M%S",
        DATE_YYYYMMDD => "%Y%m%d",
        DATE_ISO => "%Y-%m-%d",
        DATE_BIG_ENDIAN_TIME => "%Y-%m-%d %H:%M:%S",
        other => return Err(unsupported_format(other)),
    };
    strftime(t, pattern)
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
