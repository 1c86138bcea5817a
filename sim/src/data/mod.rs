//! Test data for the simulator: the seeded dataset generator (`mwsim generate`), the
//! anonymizer for real exports and mwsync record files (`mwsim anonymize`), and loading and
//! writing datasets as verbose-XML export files. It owns what test data looks like and where
//! it may be written; it must never write into a path git would track.

mod anonymize;
mod generate;
mod guard;
mod keyed;
mod words;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Classify, ErrorClass};
use crate::record::Record;
use crate::schema;

pub use anonymize::{AnonOptions, AnonStats, anonymize_dir, copy_xml_dir};
pub use generate::{GenSpec, generate, write_generated};
pub use guard::{check_out_dir, default_out};

/// A dataset: records per table, keyed by the table's internal name (`Name`, `Transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dataset {
    /// Records of each table in sequence-number order.
    pub tables: BTreeMap<String, Vec<Record>>,
}

/// Why reading or writing test data failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An input file is not a well-formed export or record file.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The output path was refused, so that test data is never committed.
    #[error("refusing to write to {path}: {reason}")]
    Refused {
        /// The refused path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// git could not be asked whether a path is ignored.
    #[error("{reason}")]
    Git {
        /// What went wrong.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Classify for DataError {
    fn class(&self) -> ErrorClass {
        match self {
            DataError::Io { .. } | DataError::Git { .. } => ErrorClass::Fatal,
            DataError::Malformed { .. } | DataError::Refused { .. } => ErrorClass::Invalid,
        }
    }
}

/// Reads every `*.xml` export document in `dir` (not recursive, in file-name order); records
/// of a table spread over several files are concatenated in that order.
pub fn load_dir(dir: &Path) -> Result<Dataset, DataError> {
    let mut ds = Dataset::default();
    stream_dir(dir, &mut |table, record| {
        ds.tables.entry(table.to_string()).or_default().push(record);
        Ok(())
    })?;
    Ok(ds)
}

/// Streams every record of the `*.xml` export documents in `dir` (not recursive, in
/// file-name order) to `each`, one record at a time, so memory holds one record of the files
/// however large they are. Returns the bytes read. An error from `each` is reported as the
/// file being malformed.
pub fn stream_dir(
    dir: &Path,
    each: &mut dyn FnMut(&'static str, Record) -> Result<(), String>,
) -> Result<u64, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let mut bytes = 0;
    for path in files {
        let file = std::fs::File::open(&path).map_err(|e| DataError::io(&path, e))?;
        bytes += file.metadata().map_err(|e| DataError::io(&path, e))?.len();
        let input = std::io::BufReader::with_capacity(1 << 20, file);
        stream_export(input, each).map_err(|reason| DataError::Malformed {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(bytes)
}

/// The table (its internal name) and the records of an export document, each fitted to the
/// schema as `Record::from_element` does.
pub fn parse_export(text: &str) -> Result<(&'static str, Vec<Record>), String> {
    let mut records = Vec::new();
    let table = stream_export(text.as_bytes(), &mut |_, r| {
        records.push(r);
        Ok(())
    })?;
    Ok((table, records))
}

/// Reads an export document, a `<table name count start found>` root naming a served table
/// whose `count` equals the records it holds, handing each record to `each`.
fn stream_export<R: std::io::BufRead>(
    input: R,
    each: &mut dyn FnMut(&'static str, Record) -> Result<(), String>,
) -> Result<&'static str, String> {
    let mut stream = crate::xml::ElementStream::new(input).map_err(|e| e.to_string())?;
    let root = stream.root();
    if root.name != "table" {
        return Err(format!(
            "the root element is <{}>, expected <table>",
            root.name
        ));
    }
    let name = root.attr("name").ok_or("<table> has no name attribute")?;
    let schema = schema::schema_by_name(name)
        .ok_or_else(|| format!("<table name=\"{name}\"> is not a table the simulator serves"))?;
    for attr in ["count", "start", "found"] {
        let raw = root
            .attr(attr)
            .ok_or_else(|| format!("<table> has no {attr} attribute"))?;
        if raw.trim().parse::<u64>().is_err() {
            return Err(format!("<table {attr}=\"{raw}\"> is not a number"));
        }
    }
    let count = root.attr("count").unwrap_or("0").trim().to_string();
    let mut n = 0u64;
    while let Some(el) = stream.next_child().map_err(|e| e.to_string())? {
        n += 1;
        let record = Record::from_element(schema, &el).map_err(|e| format!("record {n}: {e}"))?;
        stream.recycle(el);
        each(schema.info.name, record).map_err(|e| format!("record {n}: {e}"))?;
    }
    if count != n.to_string() {
        return Err(format!(
            "count=\"{count}\" but the document holds {n} records"
        ));
    }
    Ok(schema.info.name)
}

/// Writes one verbose export per table into `dir` (created if needed), named after the
/// record element (`name.xml`, `transaction.xml`).
pub fn write_dir(ds: &Dataset, dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    for (name, records) in &ds.tables {
        let schema = schema::schema_by_name(name).ok_or_else(|| DataError::Malformed {
            path: dir.to_path_buf(),
            reason: format!("the dataset holds table `{name}`, which the simulator does not serve"),
        })?;
        let path = dir.join(format!("{}.xml", schema.info.element));
        let doc = crate::export_xml::write_table(
            schema.info,
            records.iter(),
            0,
            records.len() as u64,
            crate::export_xml::Flavour::Verbose,
        )
        .map_err(|e| DataError::Malformed {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&path, doc).map_err(|e| DataError::io(&path, e))?;
    }
    Ok(())
}

/// Flags of `mwsim generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Seed of every random choice; the same seed always gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Names (customers and suppliers).
    #[arg(long, default_value_t = 200)]
    pub names: usize,
    /// Accounts in the chart (at least 10).
    #[arg(long, default_value_t = 40)]
    pub accounts: usize,
    /// Products.
    #[arg(long, default_value_t = 100)]
    pub products: usize,
    /// Jobs.
    #[arg(long, default_value_t = 20)]
    pub jobs: usize,
    /// Transactions (streamed to disk, so any number works).
    #[arg(long, default_value_t = 2000)]
    pub transactions: usize,
    /// The size of any other table, as `TABLE=N` (repeatable), e.g. `--size Contacts=500`.
    #[arg(long = "size", value_name = "TABLE=N", value_parser = parse_size)]
    pub sizes: Vec<(String, usize)>,
    /// Latest modification time, YYYYMMDDHHMMSS; history spreads over the years before it.
    #[arg(long, default_value = "20260630120000")]
    pub end: crate::time::DateTime,
    /// Output directory [default: fixtures-local/generated-SEED at the work tree's top].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Reads a `TABLE=N` table size, naming the table by its internal name (any case).
pub fn parse_size(text: &str) -> Result<(String, usize), String> {
    let (table, n) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not TABLE=N"))?;
    let info = schema::table_info(table.trim()).ok_or_else(|| {
        let known: Vec<&str> = schema::TABLES.iter().map(|t| t.name).collect();
        format!("`{table}` is not a table (known: {})", known.join(", "))
    })?;
    let n = n
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("`{n}` in `{text}` is not a whole number"))?;
    Ok((info.name.to_string(), n))
}

/// Runs `mwsim generate`.
pub fn generate_cmd(args: GenerateArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .unwrap_or_else(|| default_out(&format!("generated-{}", args.seed)));
    check_out_dir(&out)?;
    let spec = GenSpec {
        seed: args.seed,
        names: args.names,
        accounts: args.accounts,
        products: args.products,
        jobs: args.jobs,
        transactions: args.transactions,
        sizes: args.sizes.into_iter().collect(),
        end: args.end,
    };
    let bytes = write_generated(&spec, &out)?;
    eprintln!(
        "mwsim: wrote {bytes} bytes of generated data (seed {}) to {}",
        spec.seed,
        out.display()
    );
    Ok(())
}

/// Flags of `mwsim anonymize`.
#[derive(clap::Args, Debug)]
pub struct AnonymizeArgs {
    /// Seed of the replacements. Treat it like a password: with it, guesses of original
    /// values can be checked against the output.
    #[arg(long)]
    pub seed: u64,
    /// A directory of verbose-XML exports, or an mwsync repository's record files.
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Output directory [default: fixtures-local/anonymized-SEED at the work tree's top].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Move every date and time by one seeded number of days (up to a year either way).
    #[arg(long)]
    pub shift_dates: bool,
    /// Scale money amounts by one seeded factor (0.50–2.00), keeping transactions balanced.
    #[arg(long)]
    pub scale_amounts: bool,
}

/// Runs `mwsim anonymize`.
pub fn anonymize_cmd(args: AnonymizeArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .unwrap_or_else(|| default_out(&format!("anonymized-{}", args.seed)));
    check_out_dir(&out)?;
    let opts = AnonOptions {
        seed: args.seed,
        shift_dates: args.shift_dates,
        scale_amounts: args.scale_amounts,
    };
    let stats = anonymize_dir(&args.input, &out, &opts)?;
    eprintln!(
        "mwsim: anonymized {} files ({} records, {} bytes in) into {}; skipped {} files that \
         are not XML",
        stats.files,
        stats.records,
        stats.bytes_in,
        out.display(),
        stats.skipped
    );
    Ok(())
}
