//! One record of a document held as the bytes it is written back as, with the leaf fields
//! the run's rules want: their field, detail row, where their text lies and its decoded
//! value. It is filled event by event in the same pass that reads the file, so a record is
//! parsed once. It tracks structure only; it must not decide replacements.

use quick_xml::Writer;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::AnonOptions;
use super::values::TableFields;

/// A leaf field some rule wants to see.
pub(super) struct Leaf {
    /// The field's id in its table's [`TableFields`].
    pub(super) field: u32,
    /// The detail row (from 1) of a field inside a `<subfile>`.
    pub(super) row: Option<u32>,
    /// Where the leaf's text (between its tags) lies in [`Buffered::bytes`].
    pub(super) text: (usize, usize),
    /// Where its decoded value lies in the value arena.
    value: (usize, usize),
}

/// An element open in the record.
struct Open {
    field: u32,
    wanted: bool,
    subfile: bool,
    has_children: bool,
    text_start: usize,
    value_start: usize,
    /// A reference that cannot be resolved, reported if the element turns out a leaf.
    bad_ref: Option<String>,
}

/// The record being read.
#[derive(Default)]
pub(super) struct Buffered {
    /// The record as it is written back, event by event.
    pub(super) bytes: Vec<u8>,
    /// The wanted leaves, in document order.
    pub(super) leaves: Vec<Leaf>,
    /// The detail rows that hold leaves, in order (a row once per run of its leaves).
    pub(super) rows: Vec<u32>,
    values: String,
    stack: Vec<Open>,
    row: Option<u32>,
    row_count: u32,
}

impl Buffered {
    /// Starts an empty record.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.leaves.clear();
        self.rows.clear();
        self.values.clear();
        self.stack.clear();
        self.row = None;
        self.row_count = 0;
    }

    /// The decoded value of a leaf.
    pub(super) fn value(&self, leaf: &Leaf) -> &str {
        &self.values[leaf.value.0..leaf.value.1]
    }

    /// A start tag inside the record (the first one is the record's own).
    pub(super) fn start(
        &mut self,
        s: BytesStart<'_>,
        fields: &mut TableFields,
        opts: &AnonOptions,
    ) -> Result<(), String> {
        let (field, info) = fields.lookup(s.name().into_inner(), opts);
        let subfile = s.name().into_inner().eq_ignore_ascii_case("subfile");
        self.child_of_top();
        if self.stack.last().is_some_and(|p| p.subfile) {
            self.row_count += 1;
            self.row = Some(self.row_count);
        }
        put(&mut self.bytes, Event::Start(s))?;
        self.stack.push(Open {
            field,
            wanted: info.wanted,
            subfile,
            has_children: false,
            text_start: self.bytes.len(),
            value_start: self.values.len(),
            bad_ref: None,
        });
        Ok(())
    }

    /// An end tag inside the record; the record's own ends it.
    pub(super) fn end(&mut self, e: Event<'_>) -> Result<(), String> {
        let text_end = self.bytes.len();
        put(&mut self.bytes, e)?;
        let open = self.stack.pop().ok_or("unbalanced end tag in a record")?;
        if !self.stack.is_empty() && !open.has_children && !open.subfile {
            if let Some(e) = open.bad_ref {
                return Err(e);
            }
            if let Some(r) = self.row
                && self.rows.last() != Some(&r)
            {
                self.rows.push(r);
            }
            if open.wanted {
                self.leaves.push(Leaf {
                    field: open.field,
                    row: self.row,
                    text: (open.text_start, text_end),
                    value: (open.value_start, self.values.len()),
                });
            }
        } else if self.stack.last().is_some_and(|p| p.subfile) {
            self.row = None;
        }
        Ok(())
    }

    /// Any other event inside the record: text, CDATA, references, empty elements.
    pub(super) fn other(&mut self, ev: Event<'_>) -> Result<(), String> {
        let leafy = self
            .stack
            .last()
            .filter(|top| !top.has_children)
            .map(|top| top.wanted);
        match (&ev, leafy) {
            (Event::Empty(_), Some(_)) => self.child_of_top(),
            (Event::Text(t), Some(true)) => self.values.push_str(&t.xml10_content()),
            (Event::CData(c), Some(true)) => self.values.push_str(&c.clone().into_inner()),
            (Event::GeneralRef(r), Some(wanted)) => match resolve(r) {
                Ok(c) if wanted => self.values.push(c),
                Ok(_) => {}
                Err(e) => {
                    if let Some(top) = self.stack.last_mut() {
                        top.bad_ref.get_or_insert(e);
                    }
                }
            },
            _ => {}
        }
        put(&mut self.bytes, ev)
    }

    /// The top element has a child: it is no leaf, and any text it gathered is dropped.
    fn child_of_top(&mut self) {
        if let Some(top) = self.stack.last_mut()
            && !top.has_children
        {
            top.has_children = true;
            top.bad_ref = None;
            self.values.truncate(top.value_start);
        }
    }
}

fn put(bytes: &mut Vec<u8>, ev: Event<'_>) -> Result<(), String> {
    Writer::new(bytes)
        .write_event(ev)
        .map_err(|e| e.to_string())
}

fn resolve(r: &BytesRef<'_>) -> Result<char, String> {
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
