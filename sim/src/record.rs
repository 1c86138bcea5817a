//! The simulator's records, held compactly: each record (and each subfile row) keeps its
//! values in schema order in one packed text buffer, addressed by schema index. Fields the
//! schema does not know, which loaded data may carry, are kept beside them as text. It owns
//! the in-memory shape and the fitting of parsed XML to a schema; it must not validate values
//! (that is `schema::normalize`) or decide what a request does.

use std::fmt;

use crate::schema::{self, FieldDef, LMT, SEQ, SubfileSchema, TableInfo, TableSchema};
use crate::time::DateTime;
use crate::xml::Element;

/// The values of one record or row in schema order, packed into one buffer: `ends[i]` is
/// where value `i` ends in `text`. One allocation for the text and one for the offsets,
/// whatever the number of fields.
#[derive(Clone, PartialEq, Eq)]
pub struct Values {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Values {
    /// Every field of `defs` at its blank value.
    pub fn blank(defs: &[FieldDef]) -> Values {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(defs.len());
        for def in defs {
            text.push_str(schema::blank_value(def.kind));
            ends.push(offset(text.len()));
        }
        Values {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The values of `defs` taken from `given(ix)`, blank where it gives `None`, built in one
    /// pass (setting values one by one would copy the buffer for each).
    pub fn build<'a>(defs: &[FieldDef], mut given: impl FnMut(usize) -> Option<&'a str>) -> Values {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(defs.len());
        for (ix, def) in defs.iter().enumerate() {
            text.push_str(given(ix).unwrap_or_else(|| schema::blank_value(def.kind)));
            ends.push(offset(text.len()));
        }
        Values {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn span(&self, ix: usize) -> (usize, usize) {
        let start = if ix == 0 {
            0
        } else {
            self.ends[ix - 1] as usize
        };
        (start, self.ends[ix] as usize)
    }

    /// Value `ix` (panics when `ix` is not a field of the schema, a programming error).
    pub fn get(&self, ix: usize) -> &str {
        let (start, end) = self.span(ix);
        &self.text[start..end]
    }

    /// Sets value `ix`, which must already be in its stored form.
    pub fn set(&mut self, ix: usize, value: &str) {
        let (start, end) = self.span(ix);
        if &self.text[start..end] == value {
            return;
        }
        let mut text = String::with_capacity(self.text.len() - (end - start) + value.len());
        text.push_str(&self.text[..start]);
        text.push_str(value);
        text.push_str(&self.text[end..]);
        let grown = offset(value.len()).wrapping_sub(offset(end - start));
        for e in &mut self.ends[ix..] {
            *e = e.wrapping_add(grown);
        }
        self.text = text.into_boxed_str();
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("a record's text stays below 4 GiB because values are size-checked")
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Values being assembled field by field (by the generator and the loaders), turned into
/// packed [`Values`] once, at the end.
#[derive(Debug, Clone)]
pub struct Draft {
    defs: &'static [FieldDef],
    vals: Vec<Option<String>>,
}

impl Draft {
    /// A draft of `defs` with every value blank.
    pub fn new(defs: &'static [FieldDef]) -> Draft {
        Draft {
            defs,
            vals: vec![None; defs.len()],
        }
    }

    /// Sets value `ix` (already in its stored form).
    pub fn set(&mut self, ix: usize, value: impl Into<String>) {
        self.vals[ix] = Some(value.into());
    }

    /// Sets the value of the field called `name`; false when the list has no such field.
    pub fn set_named(&mut self, name: &str, value: impl Into<String>) -> bool {
        let ix = self.defs.iter().position(|d| d.name == name).or_else(|| {
            self.defs
                .iter()
                .position(|d| d.name.eq_ignore_ascii_case(name))
        });
        match ix {
            Some(ix) => {
                self.set(ix, value);
                true
            }
            None => false,
        }
    }

    /// The packed values.
    pub fn finish(&self) -> Values {
        Values::build(self.defs, |ix| self.vals[ix].as_deref())
    }
}

/// A field the schema does not know, carried by loaded data and kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    /// The lowercase element name.
    pub name: Box<str>,
    /// True when the file marked it `system="true"`.
    pub system: bool,
    /// The text as loaded.
    pub text: Box<str>,
}

/// One subfile row (a Detail line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// True for a system row (`<detail system="true">`).
    pub system: bool,
    values: Values,
    extras: Vec<Extra>,
}

impl Row {
    /// A row with every field of `sub` blank.
    pub fn blank(sub: &SubfileSchema) -> Row {
        Row {
            system: false,
            values: Values::blank(sub.fields),
            extras: Vec::new(),
        }
    }

    /// A row of `sub` holding `values` (in the subfile's field order) and `extras`.
    pub fn from_values(
        sub: &SubfileSchema,
        system: bool,
        values: Values,
        extras: Vec<Extra>,
    ) -> Row {
        debug_assert_eq!(values.len(), sub.fields.len());
        Row {
            system,
            values,
            extras,
        }
    }

    /// Row field `ix` of the subfile schema.
    pub fn get(&self, ix: usize) -> &str {
        self.values.get(ix)
    }

    /// Sets row field `ix` to a value in its stored form.
    pub fn set(&mut self, ix: usize, value: &str) {
        self.values.set(ix, value);
    }

    /// Fields the subfile schema does not know.
    pub fn extras(&self) -> &[Extra] {
        &self.extras
    }

    /// The row's fields in output order: `(name, system, text)`.
    pub fn fields<'a>(
        &'a self,
        sub: &'static SubfileSchema,
    ) -> impl Iterator<Item = (&'a str, bool, &'a str)> {
        let known = sub
            .fields
            .iter()
            .zip(self.values.iter())
            .map(|(d, v)| (d.name, d.system, v));
        known.chain(self.extras.iter().map(|e| (&*e.name, e.system, &*e.text)))
    }
}

/// One record of a served table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    schema: &'static TableSchema,
    values: Values,
    rows: Vec<Row>,
    extras: Vec<Extra>,
}

/// A field of a record as writers see it, in output order.
#[derive(Debug, Clone, Copy)]
pub enum FieldView<'a> {
    /// A text field.
    Text {
        /// Lowercase element name.
        name: &'a str,
        /// True for a system field.
        system: bool,
        /// The stored text.
        text: &'a str,
    },
    /// The table's subfile.
    Subfile {
        /// Its schema.
        sub: &'static SubfileSchema,
        /// Its rows.
        rows: &'a [Row],
    },
}

impl Record {
    /// A record of `schema` with every field blank and no rows.
    pub fn blank(schema: &'static TableSchema) -> Record {
        Record {
            schema,
            values: Values::blank(schema.fields),
            rows: Vec::new(),
            extras: Vec::new(),
        }
    }

    /// A record of `schema` holding `values` (in schema order), `rows` and `extras`.
    pub fn from_values(
        schema: &'static TableSchema,
        values: Values,
        rows: Vec<Row>,
        extras: Vec<Extra>,
    ) -> Record {
        debug_assert_eq!(values.len(), schema.fields.len());
        Record {
            schema,
            values,
            rows,
            extras,
        }
    }

    /// The table's schema.
    pub fn schema(&self) -> &'static TableSchema {
        self.schema
    }

    /// The table's catalogue entry.
    pub fn info(&self) -> &'static TableInfo {
        self.schema.info
    }

    /// Field `ix` of the schema.
    pub fn get(&self, ix: usize) -> &str {
        self.values.get(ix)
    }

    /// Sets field `ix` to a value in its stored form.
    pub fn set(&mut self, ix: usize, value: &str) {
        self.values.set(ix, value);
    }

    /// The text of the field called `name`, a schema field or an extra (case-insensitive).
    /// It resolves the name on every call: for loops over records, resolve the index once
    /// with [`TableSchema::index`] and use [`Record::get`].
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.schema.index(name) {
            Some(ix) => Some(self.get(ix)),
            None => self.extra(name),
        }
    }

    /// The text of the extra field called `name` (case-insensitive).
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extras
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .map(|e| &*e.text)
    }

    /// Sets the extra field called `name`, which must exist; false when it does not.
    pub fn set_extra(&mut self, name: &str, text: &str) -> bool {
        match self
            .extras
            .iter_mut()
            .find(|e| e.name.eq_ignore_ascii_case(name))
        {
            Some(e) => {
                e.text = text.into();
                true
            }
            None => false,
        }
    }

    /// Fields the schema does not know.
    pub fn extras(&self) -> &[Extra] {
        &self.extras
    }

    /// The sequence number, when set and a number.
    pub fn seq(&self) -> Option<u64> {
        self.get(SEQ).trim().parse().ok()
    }

    /// The last modification time, when set and valid.
    pub fn modified(&self) -> Option<DateTime> {
        DateTime::parse(self.get(LMT).trim()).ok()
    }

    /// The code of a code-keyed table's record.
    pub fn code(&self) -> Option<&str> {
        self.schema.code.map(|ix| self.get(ix))
    }

    /// The subfile rows (empty for tables without a subfile).
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Replaces the subfile rows.
    pub fn set_rows(&mut self, rows: Vec<Row>) {
        self.rows = rows;
    }

    /// The fields in output order: schema fields, then the subfile, then extras.
    pub fn fields(&self) -> impl Iterator<Item = FieldView<'_>> {
        let known = self
            .schema
            .fields
            .iter()
            .zip(self.values.iter())
            .map(|(d, text)| FieldView::Text {
                name: d.name,
                system: d.system,
                text,
            });
        let sub = self.schema.subfile.as_ref().map(|sub| FieldView::Subfile {
            sub,
            rows: &self.rows,
        });
        let extras = self.extras.iter().map(|e| FieldView::Text {
            name: &e.name,
            system: e.system,
            text: &e.text,
        });
        known.chain(sub).chain(extras)
    }

    /// Fits a parsed record element (from an export or a record file) to `schema`: schema
    /// fields take the values given (blank when missing), fields the schema lacks are kept as
    /// extras. Values are taken as they are, not normalised. Refuses a wrong root, a subfile
    /// the table does not have, and fields that hold elements.
    pub fn from_element(schema: &'static TableSchema, el: &Element) -> Result<Record, String> {
        if !el.name.eq_ignore_ascii_case(schema.info.element) {
            return Err(format!(
                "the record element is <{}>, expected <{}>",
                el.name, schema.info.element
            ));
        }
        let mut given: Vec<Option<&str>> = vec![None; schema.fields.len()];
        let mut rows = Vec::new();
        let mut extras = Vec::new();
        for child in &el.children {
            if child.name.eq_ignore_ascii_case("subfile") {
                let sub = schema.subfile_named(child.attr("name"))?;
                rows = child
                    .children
                    .iter()
                    .map(|row| row_from_element(sub, row))
                    .collect::<Result<_, _>>()?;
                continue;
            }
            let (name, text) = leaf(child)?;
            match schema.index(&name) {
                Some(ix) => given[ix] = Some(text),
                None => extras.push(Extra {
                    name: name.as_ref().into(),
                    system: child.flag("system"),
                    text: text.into(),
                }),
            }
        }
        let values = Values::build(schema.fields, |ix| given[ix]);
        Ok(Record::from_values(schema, values, rows, extras))
    }
}

fn leaf(el: &Element) -> Result<(std::borrow::Cow<'_, str>, &str), String> {
    if !el.children.is_empty() {
        return Err(format!("the field <{}> holds elements", el.name));
    }
    let valid = !el.name.is_empty()
        && el
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if !valid {
        return Err(format!("<{}> is not a field name", el.name));
    }
    let name = if el.name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(el.name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(el.name.as_str())
    };
    Ok((name, &el.text))
}

fn row_from_element(sub: &'static SubfileSchema, el: &Element) -> Result<Row, String> {
    let row_element = sub.row_element();
    if !el.name.eq_ignore_ascii_case(&row_element) {
        return Err(format!(
            "the subfile {} holds <{}>, expected <{row_element}>",
            sub.name, el.name
        ));
    }
    let mut given: Vec<Option<&str>> = vec![None; sub.fields.len()];
    let mut extras = Vec::new();
    for child in &el.children {
        let (name, text) = leaf(child)?;
        match sub.index(&name) {
            Some(ix) => given[ix] = Some(text),
            None => extras.push(Extra {
                name: name.as_ref().into(),
                system: child.flag("system"),
                text: text.into(),
            }),
        }
    }
    let values = Values::build(sub.fields, |ix| given[ix]);
    Ok(Row::from_values(sub, el.flag("system"), values, extras))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{NAME, TRANSACTION};

    /// Setting packed values keeps every other value, whatever their lengths.
    #[test]
    fn packed_values_set_in_place() {
        let mut v = Values::blank(NAME.fields);
        let phone = NAME.index("phone").expect("has phone");
        v.set(phone, "555 0100");
        v.set(SEQ, "12");
        v.set(phone, "1");
        v.set(SEQ, "");
        assert_eq!(v.get(phone), "1");
        assert_eq!(v.get(SEQ), "");
        assert_eq!(v.get(phone + 1), "");
        let limit = NAME.index("creditlimit").expect("has creditlimit");
        assert_eq!(v.get(limit), "0.00");
        assert_eq!(v.len(), NAME.fields.len());
    }

    /// Loaded elements fit the schema: known fields by index, unknown ones kept in order.
    #[test]
    fn elements_fit_the_schema() {
        let el = crate::xml::parse(
            "<name><code>ACME</code><nickname system=\"true\">Ac</nickname><sequencenumber>4</sequencenumber></name>",
        )
        .expect("valid");
        let r = Record::from_element(&NAME, &el).expect("fits");
        assert_eq!(
            (r.seq(), r.code(), r.text("NICKNAME")),
            (Some(4), Some("ACME"), Some("Ac"))
        );
        assert!(r.extras()[0].system);
        let last = r.fields().last().expect("has fields");
        assert!(matches!(
            last,
            FieldView::Text {
                name: "nickname",
                ..
            }
        ));
        let bad = crate::xml::parse("<name><subfile name=\"Contacts\"/></name>").expect("valid");
        let e = Record::from_element(&NAME, &bad).expect_err("no such subfile");
        assert!(e.contains("no subfile called Contacts"), "{e}");
    }

    /// Transactions carry their rows as the subfile, after the schema fields.
    #[test]
    fn rows_come_after_fields() {
        let el = crate::xml::parse(
            "<transaction><subfile name=\"Detail\"><detail system=\"true\"><detail.net>5.00</detail.net></detail></subfile></transaction>",
        )
        .expect("valid");
        let r = Record::from_element(&TRANSACTION, &el).expect("fits");
        let sub = TRANSACTION.subfile.as_ref().expect("Detail");
        assert!(r.rows()[0].system);
        assert_eq!(
            r.rows()[0].get(sub.index("detail.net").expect("net")),
            "5.00"
        );
        let views: Vec<_> = r.fields().collect();
        assert_eq!(views.len(), TRANSACTION.fields.len() + 1);
        assert!(matches!(views.last(), Some(FieldView::Subfile { .. })));
    }
}
