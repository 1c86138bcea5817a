//! The streaming anonymizer: rewrites verbose-XML exports or mwsync record files with names,
//! contacts, addresses, phones, emails, web sites, bank accounts, tax numbers, free text and
//! key codes replaced, consistently across every file, keeping structure, counts and field
//! order. It holds one record at a time plus the key-code mapping tables and one rule entry
//! per distinct field name; it must not hold a whole file, and every replacement is derived
//! from the seed alone. Record files keyed by a
//! replaced code move to their new path, computed by the simulator's own `layout`.

mod buffer;
mod record;
mod values;

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};

use super::DataError;
use crate::layout::{self, RecordKey};
use crate::schema::{Key, table_by_element, table_info};
use buffer::Buffered;
use record::{Anonymizer, write};
use values::{Class, classify};

/// Options of one anonymization run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonOptions {
    /// Seed of every replacement; the same seed and input give the same bytes.
    pub seed: u64,
    /// Move every date and date-time by one seeded whole number of days.
    pub shift_dates: bool,
    /// Scale money amounts and prices by one seeded factor, keeping transactions balanced.
    pub scale_amounts: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnonStats {
    /// XML files written.
    pub files: u64,
    /// Records rewritten.
    pub records: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Files skipped because they are not XML.
    pub skipped: u64,
}
/// Calls `f(relative path)` for every file below `root` in sorted order, skipping hidden
/// entries (`.git`, `.mwsync`). Only one directory listing is held at a time per level.
fn walk(
    root: &Path,
    rel: &str,
    f: &mut dyn FnMut(&str) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| DataError::io(&dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if root.join(&child).is_dir() {
            walk(root, &child, f)?;
        } else {
            f(&child)?;
        }
    }
    Ok(())
}

fn check_dirs(input: &Path, out: &Path, must_be_empty: bool) -> Result<(), DataError> {
    let src = input.canonicalize().map_err(|e| DataError::io(input, e))?;
    let dst = super::guard::resolve(out)?;
    let refuse = |reason: String| DataError::Refused {
        path: out.to_path_buf(),
        reason,
    };
    if dst.starts_with(&src) || src.starts_with(&dst) {
        return Err(refuse(format!(
            "the output and the input {} contain one another",
            input.display()
        )));
    }
    if must_be_empty
        && let Ok(mut entries) = std::fs::read_dir(out)
        && entries.next().is_some()
    {
        return Err(refuse(
            "it is not empty, and earlier output would mix with this run's".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))
}

fn malformed(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Anonymizes every XML file below `input` into `out`, keeping relative paths except that
/// record files keyed by a replaced code move to the path of their new code.
pub fn anonymize_dir(input: &Path, out: &Path, opts: &AnonOptions) -> Result<AnonStats, DataError> {
    check_dirs(input, out, true)?;
    let mut anon = Anonymizer::new(opts);
    let mut stats = AnonStats::default();
    walk(input, "", &mut |rel| {
        if !rel.ends_with(".xml") {
            stats.skipped += 1;
            return Ok(());
        }
        let dest_rel = match layout::parse_path(rel) {
            Ok((table, RecordKey::Code(code))) if table.key == Key::Code("code") => {
                let class = classify(table.element, "code");
                if class == Class::Keep {
                    rel.to_string()
                } else {
                    layout::path(table, &RecordKey::Code(anon.code(class, &code)))
                }
            }
            _ => rel.to_string(),
        };
        let src = input.join(rel);
        let dst = out.join(&dest_rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let (records, bytes_in, bytes_out) = anon.file(&src, &dst)?;
        stats.files += 1;
        stats.records += records;
        stats.bytes_in += bytes_in;
        stats.bytes_out += bytes_out;
        Ok(())
    })?;
    Ok(stats)
}

type Pipe = (Reader<BufReader<File>>, Writer<BufWriter<File>>);

fn open(src: &Path, dst: &Path) -> Result<Pipe, DataError> {
    let input = File::open(src).map_err(|e| DataError::io(src, e))?;
    let output = File::create(dst).map_err(|e| DataError::io(dst, e))?;
    Ok((
        Reader::from_reader(BufReader::with_capacity(1 << 16, input)),
        Writer::new(BufWriter::with_capacity(1 << 16, output)),
    ))
}

fn finish(w: Writer<BufWriter<File>>, dst: &Path) -> Result<u64, DataError> {
    let mut inner = w.into_inner();
    inner.flush().map_err(|e| DataError::io(dst, e))?;
    let file = inner
        .into_inner()
        .map_err(|e| DataError::io(dst, e.into_error()))?;
    Ok(file.metadata().map_err(|e| DataError::io(dst, e))?.len())
}
/// The table (record element) of a document and the depth of its records, from its root:
/// an export's `<table name="…">` (records at depth 1) or a record of a known table (the
/// record is the root).
fn root_table(root: &BytesStart<'_>) -> Result<(String, usize), String> {
    let name = root.name().as_ref().to_ascii_lowercase();
    if name == "table" {
        let attr = root
            .try_get_attribute("name")
            .map_err(|e| e.to_string())?
            .ok_or("<table> has no name attribute")?;
        let tname = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        let table = table_info(&tname)
            .map_or_else(|| tname.to_ascii_lowercase(), |t| t.element.to_string());
        return Ok((table, 1));
    }
    if table_by_element(&name).is_some() {
        return Ok((name, 0));
    }
    Err(format!(
        "the root element <{name}> is neither an export's <table> nor a record of a known table"
    ))
}

impl Anonymizer {
    /// Rewrites one file: an export document (`<table>` root, records are its children) or
    /// a record file (the root is the record). Comments are dropped; they may hold anything.
    fn file(&mut self, src: &Path, dst: &Path) -> Result<(u64, u64, u64), DataError> {
        let (mut reader, mut w) = open(src, dst)?;
        let mut buf = Vec::with_capacity(4096);
        let mut depth = 0usize;
        let mut record_depth = 0usize;
        let mut table = String::new();
        let mut fields = 0usize;
        // A record is written to a buffer as it is read, noting its leaves, and goes out
        // once its replacements (which may depend on later fields) are known.
        let mut rec = Buffered::default();
        let mut in_rec = false;
        let mut records = 0u64;
        let bad = |e: String| malformed(src, e);
        loop {
            buf.clear();
            let pos = reader.buffer_position();
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| bad(format!("not well-formed XML near byte {pos}: {e}")))?;
            match &ev {
                Event::Eof => break,
                Event::Comment(_) => continue,
                Event::Start(s) | Event::Empty(s) if depth == 0 => {
                    (table, record_depth) = root_table(s).map_err(bad)?;
                    fields = self.fields.table(&table);
                }
                _ => {}
            }
            match ev {
                Event::Start(s) => {
                    if !in_rec && depth == record_depth {
                        in_rec = true;
                        rec.clear();
                    }
                    if in_rec {
                        rec.start(s, self.fields.get_mut(fields), &self.opts)
                            .map_err(bad)?;
                    } else {
                        write(&mut w, Event::Start(s)).map_err(bad)?;
                    }
                    depth += 1;
                }
                Event::End(e) => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| bad("unbalanced end tag".into()))?;
                    if in_rec {
                        rec.end(Event::End(e)).map_err(bad)?;
                        if depth == record_depth {
                            in_rec = false;
                            self.record(fields, &table, &rec, &mut w).map_err(bad)?;
                            records += 1;
                        }
                    } else {
                        write(&mut w, Event::End(e)).map_err(bad)?;
                    }
                }
                other => {
                    if in_rec {
                        rec.other(other).map_err(bad)?;
                    } else {
                        if matches!(other, Event::Empty(_)) && depth == record_depth {
                            records += 1;
                        }
                        write(&mut w, other).map_err(bad)?;
                    }
                }
            }
        }
        if depth != 0 || in_rec {
            return Err(bad(
                "the document ends inside an element (truncated?)".into()
            ));
        }
        let bytes_in = reader.buffer_position();
        let bytes_out = finish(w, dst)?;
        Ok((records, bytes_in, bytes_out))
    }
}
/// The baseline the benchmark compares against: reads every XML file below `input` with
/// quick-xml and writes each event back unchanged into `out`. Returns bytes read.
pub fn copy_xml_dir(input: &Path, out: &Path) -> Result<u64, DataError> {
    check_dirs(input, out, false)?;
    let mut total = 0u64;
    walk(input, "", &mut |rel| {
        if !rel.ends_with(".xml") {
            return Ok(());
        }
        let src: PathBuf = input.join(rel);
        let dst = out.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let (mut reader, mut w) = open(&src, &dst)?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            match reader.read_event_into(&mut buf) {
                Ok(Event::Eof) => break,
                Ok(e) => write(&mut w, e).map_err(|e| malformed(&src, e))?,
                Err(e) => return Err(malformed(&src, e.to_string())),
            }
        }
        total += reader.buffer_position();
        finish(w, &dst)?;
        Ok(())
    })?;
    Ok(total)
}
