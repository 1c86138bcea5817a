//! The anonymizer's record rewrite: one buffered record at a time, its leaf fields replaced
//! by the value rules (with optional date shifting and amount scaling that keeps transactions
//! balanced) and every other event copied unchanged. It must not walk directories.

use std::borrow::Cow;
use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::Event;
use rand::Rng as _;

use super::super::keyed::{Keyed, pick};
use super::super::words::*;
use super::AnonOptions;
use super::values::{Class, CodeMap, classify, fit, kind_of, per_line, prose_of_len, shape};
use crate::schema::{FieldKind, format_scaled, parse_scaled};
use crate::time::DateTime;
use crate::xml::escape_into;

/// The anonymizer's state: the seed-derived key and the key-code mapping tables.
pub(super) struct Anonymizer {
    keyed: Keyed,
    opts: AnonOptions,
    names: CodeMap,
    products: CodeMap,
    jobs: CodeMap,
    day_shift: i64,
    scale_millis: i128,
}
/// One leaf field of a buffered record.
struct Leaf<'a> {
    name: Cow<'a, str>,
    row: Option<u32>,
    start: usize,
    end: usize,
    value: Cow<'a, str>,
}
impl Anonymizer {
    pub(super) fn new(opts: &AnonOptions) -> Anonymizer {
        let keyed = Keyed::new(opts.seed, "anonymize");
        let mut rng = keyed.rng("options", b"");
        let mut day_shift = 0;
        while day_shift == 0 {
            day_shift = rng.random_range(-365..=365i64);
        }
        let mut scale_millis = 1000;
        while scale_millis == 1000 {
            scale_millis = rng.random_range(500..=2000i128);
        }
        Anonymizer {
            keyed,
            opts: opts.clone(),
            names: CodeMap::new(Class::NameCode, "name"),
            products: CodeMap::new(Class::ProductCode, "product"),
            jobs: CodeMap::new(Class::JobCode, "job"),
            day_shift,
            scale_millis,
        }
    }

    pub(super) fn code(&mut self, class: Class, original: &str) -> String {
        let keyed = &self.keyed;
        match class {
            Class::NameCode => self.names.get(keyed, original),
            Class::ProductCode => self.products.get(keyed, original),
            _ => self.jobs.get(keyed, original),
        }
    }

    /// The replacement text of one value, or `None` to keep it.
    fn replace(&mut self, table: &str, field: &str, value: &str) -> Option<String> {
        if value.trim().is_empty() {
            return None;
        }
        let class = classify(table, field);
        if matches!(class, Class::NameCode | Class::ProductCode | Class::JobCode) {
            return Some(self.code(class, value));
        }
        if class == Class::Keep {
            if !self.opts.shift_dates && !self.opts.scale_amounts {
                return None;
            }
            return self.shift_or_scale(field, kind_of(table, field), value);
        }
        let kind = kind_of(table, field);
        let orig_len = value.chars().count();
        let max = match kind {
            Some(FieldKind::Text { max_len }) => max_len,
            _ => orig_len.max(1),
        };
        let mut attempt = 0u32;
        loop {
            let mut msg = value.as_bytes().to_vec();
            msg.extend_from_slice(&attempt.to_le_bytes());
            let mut rng = self.keyed.rng(class.label(), &msg);
            let r = &mut rng;
            let out = match class {
                Class::Person => {
                    if value.trim().contains(' ') {
                        format!("{} {}", pick(r, FIRST_NAMES), pick(r, SURNAMES))
                    } else {
                        pick(r, FIRST_NAMES).to_string()
                    }
                }
                Class::Company => format!(
                    "{} {} {}",
                    pick(r, COMPANY_WORDS),
                    pick(r, COMPANY_TRADES),
                    pick(r, COMPANY_SUFFIXES)
                ),
                Class::Address => {
                    // A numbered line after the first (address2, delivery3) is a town.
                    let first = !field.ends_with(['2', '3', '4']);
                    per_line(value, |n, _| {
                        if n == 0 && first {
                            format!(
                                "{} {} {}",
                                r.random_range(1..400),
                                pick(r, STREETS),
                                pick(r, STREET_TYPES)
                            )
                        } else {
                            pick(r, TOWNS).to_string()
                        }
                    })
                }
                Class::Shape => shape(r, value),
                Class::Email => format!(
                    "{}.{}{}@{}",
                    pick(r, FIRST_NAMES).to_ascii_lowercase(),
                    pick(r, SURNAMES).to_ascii_lowercase().replace(' ', ""),
                    r.random_range(1..100),
                    pick(r, EMAIL_DOMAINS)
                ),
                Class::Web => format!(
                    "www.{}{}.{}",
                    pick(r, COMPANY_WORDS).to_ascii_lowercase(),
                    r.random_range(1..100),
                    pick(r, EMAIL_DOMAINS)
                ),
                Class::Text => per_line(value, |_, line| prose_of_len(r, line.chars().count())),
                _ => value.to_string(),
            };
            let out = fit(out, max);
            if out != value || attempt >= 8 {
                return Some(out);
            }
            attempt += 1;
        }
    }

    /// Date shifting and amount scaling for fields that are otherwise kept.
    fn shift_or_scale(&self, field: &str, kind: Option<FieldKind>, value: &str) -> Option<String> {
        let base = field.rsplit('.').next().unwrap_or(field);
        if self.opts.shift_dates {
            let is_date =
                matches!(kind, Some(FieldKind::Date)) || (kind.is_none() && base.ends_with("date"));
            let is_time = matches!(kind, Some(FieldKind::DateTime))
                || (kind.is_none() && base.ends_with("time"));
            let v = value.trim();
            if is_date && v.len() == 8 {
                let t = DateTime::parse(&format!("{v}000000")).ok()?;
                return Some(t.add_secs(self.day_shift * 86_400).to_string()[..8].to_string());
            }
            if is_time && v.len() == 14 {
                let t = DateTime::parse(v).ok()?;
                return Some(t.add_secs(self.day_shift * 86_400).to_string());
            }
        }
        if self.opts.scale_amounts && is_amount(base, kind) {
            return self.scale_text(value);
        }
        None
    }

    fn scale_text(&self, value: &str) -> Option<String> {
        let (places, v) = decimal(value)?;
        Some(format_scaled(self.scale(v), places))
    }

    fn scale(&self, v: i128) -> i128 {
        let p = v * self.scale_millis;
        let q = (p.abs() + 500) / 1000;
        if p < 0 { -q } else { q }
    }

    /// Rewrites one buffered record to `w`: `raw` holds its bytes, `events` its events
    /// (`events[0]` is its start tag) and `spans` where each event lies in `raw`. The bytes
    /// are copied as they are but for the text of replaced leaves.
    pub(super) fn record<W: Write>(
        &mut self,
        table: &str,
        raw: &[u8],
        events: &[Event<'_>],
        spans: &[(usize, usize)],
        w: &mut Writer<W>,
    ) -> Result<(), String> {
        let leaves = leaves(events)?;
        let mut new: Vec<Option<String>> = leaves
            .iter()
            .map(|l| self.replace(table, &l.name, &l.value))
            .collect();
        if self.opts.scale_amounts && table == "transaction" {
            self.balance(&leaves, &mut new);
        }
        let mut copied = 0;
        let out = w.get_mut();
        let io = |e: std::io::Error| e.to_string();
        for (leaf, text) in leaves.iter().zip(&new) {
            let Some(text) = text.as_deref().filter(|t| *t != leaf.value) else {
                continue;
            };
            let mut escaped = String::with_capacity(text.len() + 8);
            escape_into(&mut escaped, text).map_err(|e| {
                format!("the replacement of <{}> cannot be written: {e}", leaf.name)
            })?;
            let (text_start, text_end) = (spans[leaf.start].1, spans[leaf.end].0);
            out.write_all(&raw[copied..text_start]).map_err(io)?;
            out.write_all(escaped.as_bytes()).map_err(io)?;
            copied = text_end;
        }
        out.write_all(&raw[copied..]).map_err(io)?;
        Ok(())
    }

    /// Recomputes a transaction's totals from its scaled lines wherever the original totals
    /// equalled the sum of the original lines, so scaled transactions stay balanced.
    fn balance(&self, leaves: &[Leaf<'_>], new: &mut [Option<String>]) {
        let find = |row: Option<u32>, name: &str| {
            leaves
                .iter()
                .position(|l| l.row == row && l.name.rsplit('.').next() == Some(name))
        };
        let val = |i: Option<usize>| i.and_then(|i| decimal(&leaves[i].value));
        let rows: Vec<u32> = {
            let mut r: Vec<u32> = leaves.iter().filter_map(|l| l.row).collect();
            r.dedup();
            r
        };
        let (mut sum_net, mut sum_tax, mut sum_gross) = (0i128, 0i128, 0i128);
        let (mut new_net, mut new_tax, mut new_gross) = (0i128, 0i128, 0i128);
        for &row in &rows {
            let (ni, ti, gi) = (
                find(Some(row), "net"),
                find(Some(row), "tax"),
                find(Some(row), "gross"),
            );
            let (Some((_, net)), Some((_, tax)), Some((gp, gross))) = (val(ni), val(ti), val(gi))
            else {
                continue;
            };
            let (snet, stax) = (self.scale(net), self.scale(tax));
            let sgross = if gross == net + tax {
                snet + stax
            } else {
                self.scale(gross)
            };
            if let Some(i) = gi {
                new[i] = Some(format_scaled(sgross, gp));
            }
            for side in ["debit", "credit"] {
                if let Some(i) = find(Some(row), side)
                    && let Some((dp, d)) = val(Some(i))
                    && d == net
                    && d != 0
                {
                    new[i] = Some(format_scaled(snet, dp));
                }
            }
            sum_net += net;
            sum_tax += tax;
            sum_gross += gross;
            new_net += snet;
            new_tax += stax;
            new_gross += sgross;
        }
        if rows.is_empty() {
            return;
        }
        let gross_i = find(None, "gross");
        let orig_gross = val(gross_i).map(|(_, g)| g);
        for (name, sum, scaled) in [
            ("netamount", sum_net, new_net),
            ("taxamount", sum_tax, new_tax),
            ("gross", sum_gross, new_gross),
        ] {
            let i = find(None, name);
            if let Some((p, v)) = val(i)
                && v == sum
                && let Some(i) = i
            {
                new[i] = Some(format_scaled(scaled, p));
            }
        }
        if let Some(i) = find(None, "amtpaid")
            && let Some((p, paid)) = val(Some(i))
            && Some(paid) == orig_gross
            && orig_gross == Some(sum_gross)
        {
            new[i] = Some(format_scaled(new_gross, p));
        }
    }
}

fn is_amount(base: &str, kind: Option<FieldKind>) -> bool {
    let money_name = matches!(
        base,
        "gross"
            | "net"
            | "tax"
            | "netamount"
            | "taxamount"
            | "amtpaid"
            | "amount"
            | "debit"
            | "credit"
            | "quote"
            | "creditlimit"
            | "billed"
            | "stockvalue"
            | "dbalance"
            | "cbalance"
    ) || base.ends_with("price");
    match kind {
        Some(FieldKind::Decimal { places: 2 }) => true,
        Some(FieldKind::Decimal { .. }) => base.ends_with("price"),
        Some(_) => false,
        None => money_name,
    }
}

/// A plain decimal as (places, value scaled by 10^places).
fn decimal(text: &str) -> Option<(u8, i128)> {
    let t = text.trim();
    let places = t.split_once('.').map_or(0, |(_, f)| f.len());
    let places = u8::try_from(places).ok().filter(|p| *p <= 12)?;
    Some((places, parse_scaled(t, places)?))
}
pub(super) fn write<W: Write>(w: &mut Writer<W>, e: Event<'_>) -> Result<(), String> {
    w.write_event(e).map_err(|e| e.to_string())
}

/// The leaf fields of a buffered record, with their decoded text.
fn leaves<'a>(events: &'a [Event<'a>]) -> Result<Vec<Leaf<'a>>, String> {
    let mut out = Vec::with_capacity(events.len() / 2);
    // (name, event index, has child elements)
    let mut stack: Vec<(Cow<'a, str>, usize, bool)> = Vec::new();
    let mut row: Option<u32> = None;
    let mut rows = 0u32;
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Start(s) => {
                if let Some(parent) = stack.last_mut() {
                    parent.2 = true;
                    if parent.0.eq_ignore_ascii_case("subfile") {
                        rows += 1;
                        row = Some(rows);
                    }
                }
                let name: &'a str = s.name().into_inner();
                let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(name.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(name)
                };
                stack.push((name, i, false));
            }
            Event::Empty(_) => {
                if let Some(parent) = stack.last_mut() {
                    parent.2 = true;
                }
            }
            Event::End(_) => {
                let (name, start, has_children) =
                    stack.pop().ok_or("unbalanced end tag in a record")?;
                if !stack.is_empty() && !has_children && name != "subfile" {
                    let value = match &events[start + 1..i] {
                        [] => Cow::Borrowed(""),
                        [Event::Text(t)] => match t.xml10_content() {
                            Cow::Borrowed(b) => Cow::Borrowed(b),
                            Cow::Owned(o) => Cow::Owned(o),
                        },
                        inners => {
                            let mut value = String::new();
                            for inner in inners {
                                match inner {
                                    Event::Text(t) => value.push_str(&t.xml10_content()),
                                    Event::CData(c) => value.push_str(&c.clone().into_inner()),
                                    Event::GeneralRef(r) => value.push(resolve(r)?),
                                    _ => {}
                                }
                            }
                            Cow::Owned(value)
                        }
                    };
                    out.push(Leaf {
                        name,
                        row,
                        start,
                        end: i,
                        value,
                    });
                } else if let Some(parent) = stack.last()
                    && parent.0 == "subfile"
                {
                    row = None;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn resolve(r: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
    match r.resolve_char_ref() {
        Ok(Some(c)) => Ok(c),
        Ok(None) => match &*r.clone().into_inner() {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            other => Err(format!("unknown entity &{other};")),
        },
        Err(e) => Err(e.to_string()),
    }
}
