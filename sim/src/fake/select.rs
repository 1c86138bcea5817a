//! Picking, ordering and paging the records of one table for a search, a sort and a page,
//! as `export` and `Find` need them. The search language stays fully general: every record
//! a search may match is checked with the whole expression. What this module adds is where
//! the candidates come from. The parts of a search's top-level `and` chain that compare the
//! sequence number, the modification time or the code with a constant (the shapes mwsync and
//! clients send: `LastModifiedTime >= TextToDate(…)`, `… and SequenceNumber > n`,
//! `code = "…"`) narrow the candidates to a range of an index. When those parts are the whole
//! search and the requested order is that index's order, the page is read straight from the
//! index, and the count of matches (`found`) comes from its ranks, so the page costs
//! O(page + log N) however large the table. It must not change records.

use super::db::{Doc, RecordEnv, TableData};
use super::search::{self, Cmp, Conjunct, Expr, Val};
use crate::record::Record;
use crate::schema::{LMT, SEQ};

/// What to pick and in which order.
pub struct Query {
    /// The search; `None` picks every record.
    pub search: Option<Expr>,
    /// The sort key; `None` is sequence order.
    pub sort: Option<Expr>,
    /// Descending order. With a sort key, ties stay in sequence order.
    pub descending: bool,
}

/// One page of a selection.
pub struct Page<'d> {
    /// Records matching the search in total.
    pub found: u64,
    /// The records of the page, in order.
    pub records: Vec<&'d Record>,
}

/// Where the candidates come from.
enum Source {
    /// Every record, in sequence order.
    All,
    /// Records with sequence numbers in `lo..=hi`.
    Seq { lo: u64, hi: u64 },
    /// Records whose modification time (seconds) is in `lo..=hi`.
    Lmt { lo: i64, hi: i64 },
    /// The records with these sequence numbers (sorted).
    Codes(Vec<u64>),
}

/// The order asked for, as far as an index can give it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Seq,
    Lmt,
    Other,
}

/// Bounds the search's parts put on the indexed fields.
struct Bounds {
    seq: (u64, u64),
    lmt: (i64, i64),
    codes: Option<Vec<u64>>,
    /// True when every part of the search is one of the bounds above.
    all_indexed: bool,
    /// The indexed fields the parts name (seq, lmt, code).
    named: [bool; 3],
}

fn seq_bound(op: Cmp, value: &Val, (lo, hi): &mut (u64, u64)) -> bool {
    let n = match value {
        Val::Num(n) => *n,
        Val::Text(t) if matches!(op, Cmp::Eq | Cmp::EqExact) => {
            let canonical = !t.is_empty()
                && t.bytes().all(|b| b.is_ascii_digit())
                && (t == "0" || !t.starts_with('0'));
            match t.parse::<u64>() {
                Ok(n) if canonical => n as f64,
                _ => return false,
            }
        }
        _ => return false,
    };
    if !n.is_finite() {
        return false;
    }
    let clamp = |x: f64| -> u64 {
        if x <= 0.0 {
            0
        } else if x >= u64::MAX as f64 {
            u64::MAX
        } else {
            x as u64
        }
    };
    let (new_lo, new_hi) = match op {
        Cmp::Gt => (
            if n < 0.0 {
                0
            } else {
                clamp(n.floor()).saturating_add(1)
            },
            u64::MAX,
        ),
        Cmp::Ge => (clamp(n.ceil()), u64::MAX),
        Cmp::Lt if n <= 0.0 => (1, 0),
        Cmp::Lt => (0, clamp(n.ceil()) - 1),
        Cmp::Le if n < 0.0 => (1, 0),
        Cmp::Le => (0, clamp(n.floor())),
        Cmp::Eq | Cmp::EqExact if n.fract() == 0.0 && n >= 0.0 => (clamp(n), clamp(n)),
        Cmp::Eq | Cmp::EqExact => (1, 0),
    };
    *lo = (*lo).max(new_lo);
    *hi = (*hi).min(new_hi);
    true
}

fn lmt_bound(op: Cmp, value: &Val, (lo, hi): &mut (i64, i64)) -> bool {
    let t = match value {
        Val::DateTime(t) | Val::Date(t) => t.secs(),
        _ => return false,
    };
    let (new_lo, new_hi) = match op {
        Cmp::Gt => (t.saturating_add(1), i64::MAX),
        Cmp::Ge => (t, i64::MAX),
        Cmp::Lt => (i64::MIN + 1, t.saturating_sub(1)),
        Cmp::Le => (i64::MIN + 1, t),
        // Equality on a date-time field is refused when it is evaluated; leave it to that.
        Cmp::Eq | Cmp::EqExact => return false,
    };
    *lo = (*lo).max(new_lo);
    *hi = (*hi).min(new_hi);
    true
}

impl Bounds {
    /// True when `record` is within every bound. The candidates come from one index only,
    /// so a search made only of bounds still needs the others checked.
    fn admits(&self, record: &Record) -> bool {
        let seq = record.seq().unwrap_or(0);
        let in_seq = seq >= self.seq.0 && seq <= self.seq.1;
        let in_lmt = !self.named[1]
            || record
                .modified()
                .is_some_and(|t| t.secs() >= self.lmt.0 && t.secs() <= self.lmt.1);
        let in_codes = self.codes.as_ref().is_none_or(|c| c.contains(&seq));
        in_seq && in_lmt && in_codes
    }
}

fn bounds(data: &TableData, search: Option<&Expr>) -> Bounds {
    let mut b = Bounds {
        seq: (0, u64::MAX),
        lmt: (i64::MIN, i64::MAX),
        codes: None,
        all_indexed: true,
        named: [false; 3],
    };
    let Some(search) = search else {
        return b;
    };
    for part in search.conjuncts() {
        let used = match &part {
            Conjunct::Compare { index, op, value } if *index == SEQ => {
                b.named[0] = true;
                seq_bound(*op, value, &mut b.seq)
            }
            Conjunct::Compare { index, op, value } if *index == LMT => {
                b.named[1] = true;
                lmt_bound(*op, value, &mut b.lmt)
            }
            Conjunct::Compare {
                index,
                op: Cmp::Eq | Cmp::EqExact,
                value: Val::Text(text),
            } if Some(*index) == data.schema.code && !text.contains('@') => {
                b.named[2] = true;
                let found = data.codes_folded(&search::fold(text)).to_vec();
                b.codes = Some(match b.codes.take() {
                    Some(prev) => prev.into_iter().filter(|s| found.contains(s)).collect(),
                    None => found,
                });
                true
            }
            _ => false,
        };
        b.all_indexed &= used;
    }
    b
}

impl Source {
    /// The candidates' count, cheaply (ranks and slice lengths).
    fn count(&self, data: &TableData) -> usize {
        match self {
            Source::All => data.len(),
            Source::Seq { lo, hi } => seq_positions(data, *lo, *hi).len(),
            Source::Lmt { lo, hi } => lmt_ranks(data, *lo, *hi).len(),
            Source::Codes(seqs) => seqs.len(),
        }
    }
}

/// The positions in the modification-time index of the records stamped in `lo..=hi`.
fn lmt_ranks(data: &TableData, lo: i64, hi: i64) -> std::ops::Range<usize> {
    if lo > hi {
        return 0..0;
    }
    let index = data.by_lmt();
    let from = index.rank(&(lo, 0));
    let to = match hi.checked_add(1) {
        Some(next) => index.rank(&(next, 0)),
        None => index.len(),
    };
    from..to.max(from)
}

/// The positions in sequence order of the records numbered `lo..=hi`.
fn seq_positions(data: &TableData, lo: u64, hi: u64) -> std::ops::Range<usize> {
    if lo > hi {
        return 0..0;
    }
    let from = data.seq_rank(lo);
    let to = match hi.checked_add(1) {
        Some(next) => data.seq_rank(next),
        None => data.len(),
    };
    from..to.max(from)
}

fn choose(data: &TableData, b: &Bounds) -> Source {
    let mut options = Vec::new();
    if let Some(codes) = &b.codes {
        options.push(Source::Codes(codes.clone()));
    }
    if b.named[0] {
        options.push(Source::Seq {
            lo: b.seq.0,
            hi: b.seq.1,
        });
    }
    if b.named[1] {
        options.push(Source::Lmt {
            lo: b.lmt.0,
            hi: b.lmt.1,
        });
    }
    options
        .into_iter()
        .min_by_key(|s| s.count(data))
        .unwrap_or(Source::All)
}

/// The records a source names, in the source's order.
fn candidates<'d>(
    data: &'d TableData,
    source: &Source,
) -> Box<dyn Iterator<Item = &'d Record> + 'd> {
    match source {
        Source::All => Box::new(data.records().iter()),
        Source::Seq { lo, hi } => Box::new(data.records()[seq_positions(data, *lo, *hi)].iter()),
        Source::Lmt { lo, hi } => {
            let range = lmt_ranks(data, *lo, *hi);
            Box::new(
                data.by_lmt()
                    .range(range.start, range.end)
                    .filter_map(move |(_, seq)| data.get(seq)),
            )
        }
        Source::Codes(seqs) => {
            let seqs = seqs.clone();
            Box::new(seqs.into_iter().filter_map(move |seq| data.get(seq)))
        }
    }
}

fn order_of(sort: Option<&Expr>) -> Order {
    match sort.map(Expr::bare_field) {
        None => Order::Seq,
        Some(Some(SEQ)) => Order::Seq,
        Some(Some(LMT)) => Order::Lmt,
        Some(_) => Order::Other,
    }
}

/// Picks the page `start..start+limit` of the records of `data` that match `q.search`, in
/// `q`'s order, and counts all matches.
pub fn select<'d>(
    data: &'d TableData,
    q: &Query,
    start: usize,
    limit: Option<usize>,
    doc: &Doc<'_>,
) -> Result<Page<'d>, String> {
    let b = bounds(data, q.search.as_ref());
    let source = choose(data, &b);
    let order = order_of(q.sort.as_ref());
    let end = |found: usize| match limit {
        Some(l) => start.saturating_add(l).min(found),
        None => found,
    };
    // Straight from an index: the search is exactly the index's bounds and the order is the
    // index's own order.
    if b.all_indexed && !(q.descending && q.sort.is_some()) {
        let direct = match (&source, order) {
            (Source::All | Source::Seq { .. }, Order::Seq) => {
                let (lo, hi) = match source {
                    Source::Seq { lo, hi } => (lo, hi),
                    _ => (0, u64::MAX),
                };
                let range = seq_positions(data, lo, hi);
                let found = range.len();
                let (first, last) = (start.min(found), end(found));
                let records = &data.records()[range];
                let page: Vec<&Record> = if q.descending {
                    records
                        .iter()
                        .rev()
                        .skip(first)
                        .take(last - first)
                        .collect()
                } else {
                    records[first..last.max(first)].iter().collect()
                };
                Some((found, page))
            }
            (Source::All | Source::Lmt { .. }, Order::Lmt) => {
                let range = match source {
                    Source::Lmt { lo, hi } => lmt_ranks(data, lo, hi),
                    _ => 0..data.len(),
                };
                let found = range.len();
                let (first, last) = (start.min(found), end(found));
                let page = data
                    .by_lmt()
                    .range(range.start + first, range.start + last.max(first))
                    .filter_map(|(_, seq)| data.get(seq))
                    .collect();
                Some((found, page))
            }
            _ => None,
        };
        if let Some((found, records)) = direct {
            return Ok(Page {
                found: found as u64,
                records,
            });
        }
    }
    let mut picked: Vec<&Record> = Vec::new();
    for record in candidates(data, &source) {
        let keep = match &q.search {
            Some(expr) if !b.all_indexed => expr
                .matches(&RecordEnv {
                    record,
                    now: doc.now,
                    doc: Some(doc),
                })
                .map_err(|e| format!("Bad search expression: {e}"))?,
            Some(_) => b.admits(record),
            None => true,
        };
        if keep {
            picked.push(record);
        }
    }
    let seq_of = |r: &Record| r.seq().unwrap_or(0);
    match (&q.sort, order) {
        (None, _) | (Some(_), Order::Seq) => {
            picked.sort_by_key(|r| seq_of(r));
            if q.descending {
                picked.reverse();
            }
        }
        (Some(sort), _) => {
            let mut keyed: Vec<(Val, &Record)> = Vec::with_capacity(picked.len());
            for record in picked {
                let key = sort
                    .eval(&RecordEnv {
                        record,
                        now: doc.now,
                        doc: Some(doc),
                    })
                    .map_err(|e| format!("Bad sort expression: {e}"))?;
                keyed.push((key, record));
            }
            keyed.sort_by(|(a, ra), (b, rb)| {
                let by_key = search::sort_cmp(a, b);
                let by_key = if q.descending {
                    by_key.reverse()
                } else {
                    by_key
                };
                by_key.then_with(|| seq_of(ra).cmp(&seq_of(rb)))
            });
            picked = keyed.into_iter().map(|(_, r)| r).collect();
        }
    }
    let found = picked.len();
    let (first, last) = (start.min(found), end(found));
    let records = picked[first..last.max(first)].to_vec();
    Ok(Page {
        found: found as u64,
        records,
    })
}
