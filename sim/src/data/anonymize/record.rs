//! The anonymizer's record rewrite: one buffered record at a time, its leaf fields replaced
//! by the value rules (with optional date shifting and amount scaling that keeps transactions
//! balanced) and every other event copied unchanged. It must not walk directories.

use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::Event;
use rand::Rng as _;

use super::super::keyed::{Keyed, pick};
use super::super::words::*;
use super::AnonOptions;
use super::buffer::{Buffered, Leaf};
use super::values::{Class, CodeMap, FieldInfo, Fields, Total, fit, per_line, prose_of_len, shape};
use crate::schema::{format_scaled, parse_scaled};
use crate::time::DateTime;
use crate::xml::escape_into;

/// The anonymizer's state: the seed-derived key, the key-code mapping tables and the rules
/// of each field met so far.
pub(super) struct Anonymizer {
    keyed: Keyed,
    pub(super) opts: AnonOptions,
    names: CodeMap,
    products: CodeMap,
    jobs: CodeMap,
    day_shift: i64,
    scale_millis: i128,
    pub(super) fields: Fields,
    /// Scratch for one escaped replacement.
    escaped: String,
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
            fields: Fields::default(),
            escaped: String::new(),
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

    /// The replacement text of one value of a field with rules `info`, or `None` to keep it.
    fn replace(&mut self, info: FieldInfo, value: &str) -> Option<String> {
        if value.trim().is_empty() {
            return None;
        }
        let class = info.class;
        if matches!(class, Class::NameCode | Class::ProductCode | Class::JobCode) {
            return Some(self.code(class, value));
        }
        if class == Class::Keep {
            if !self.opts.shift_dates && !self.opts.scale_amounts {
                return None;
            }
            return self.shift_or_scale(info, value);
        }
        let max = info.max_len.unwrap_or_else(|| value.chars().count().max(1));
        let mut attempt = 0u32;
        loop {
            let mut rng = self
                .keyed
                .rng_attempt(class.label(), value.as_bytes(), attempt);
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
                    let first = info.street_first;
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
    fn shift_or_scale(&self, info: FieldInfo, value: &str) -> Option<String> {
        if self.opts.shift_dates {
            let v = value.trim();
            if info.date && v.len() == 8 {
                let t = DateTime::parse(&format!("{v}000000")).ok()?;
                return Some(t.add_secs(self.day_shift * 86_400).to_string()[..8].to_string());
            }
            if info.time && v.len() == 14 {
                let t = DateTime::parse(v).ok()?;
                return Some(t.add_secs(self.day_shift * 86_400).to_string());
            }
        }
        if self.opts.scale_amounts && info.amount {
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

    /// Writes one buffered record of table cache `table` (record element `element`) to `w`:
    /// its bytes as they are but for the text of replaced leaves.
    pub(super) fn record<W: Write>(
        &mut self,
        table: usize,
        element: &str,
        rec: &Buffered,
        w: &mut Writer<W>,
    ) -> Result<(), String> {
        let mut new: Vec<Option<String>> = Vec::with_capacity(rec.leaves.len());
        for leaf in &rec.leaves {
            let info = self.fields.get(table).info(leaf.field);
            new.push(self.replace(info, rec.value(leaf)));
        }
        if self.opts.scale_amounts && element == "transaction" {
            self.balance(table, rec, &mut new);
        }
        let mut copied = 0;
        let out = w.get_mut();
        let io = |e: std::io::Error| e.to_string();
        for (leaf, text) in rec.leaves.iter().zip(&new) {
            let Some(text) = text.as_deref().filter(|t| *t != rec.value(leaf)) else {
                continue;
            };
            self.escaped.clear();
            escape_into(&mut self.escaped, text).map_err(|e| {
                format!(
                    "the replacement of <{}> cannot be written: {e}",
                    self.fields.get(table).name(leaf.field)
                )
            })?;
            let (text_start, text_end) = leaf.text;
            out.write_all(&rec.bytes[copied..text_start]).map_err(io)?;
            out.write_all(self.escaped.as_bytes()).map_err(io)?;
            copied = text_end;
        }
        out.write_all(&rec.bytes[copied..]).map_err(io)?;
        Ok(())
    }

    /// Recomputes a transaction's totals from its scaled lines wherever the original totals
    /// equalled the sum of the original lines, so scaled transactions stay balanced.
    fn balance(&self, table: usize, rec: &Buffered, new: &mut [Option<String>]) {
        let fields = self.fields.get(table);
        let leaves: &[Leaf] = &rec.leaves;
        let find = |row: Option<u32>, total: Total| {
            leaves
                .iter()
                .position(|l| l.row == row && fields.info(l.field).total == Some(total))
        };
        let val = |i: Option<usize>| i.and_then(|i| decimal(rec.value(&leaves[i])));
        let rows = &rec.rows;
        let (mut sum_net, mut sum_tax, mut sum_gross) = (0i128, 0i128, 0i128);
        let (mut new_net, mut new_tax, mut new_gross) = (0i128, 0i128, 0i128);
        for &row in rows {
            let (ni, ti, gi) = (
                find(Some(row), Total::Net),
                find(Some(row), Total::Tax),
                find(Some(row), Total::Gross),
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
            for side in [Total::Debit, Total::Credit] {
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
        let gross_i = find(None, Total::Gross);
        let orig_gross = val(gross_i).map(|(_, g)| g);
        for (name, sum, scaled) in [
            (Total::NetAmount, sum_net, new_net),
            (Total::TaxAmount, sum_tax, new_tax),
            (Total::Gross, sum_gross, new_gross),
        ] {
            let i = find(None, name);
            if let Some((p, v)) = val(i)
                && v == sum
                && let Some(i) = i
            {
                new[i] = Some(format_scaled(scaled, p));
            }
        }
        if let Some(i) = find(None, Total::AmtPaid)
            && let Some((p, paid)) = val(Some(i))
            && Some(paid) == orig_gross
            && orig_gross == Some(sum_gross)
        {
            new[i] = Some(format_scaled(new_gross, p));
        }
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
