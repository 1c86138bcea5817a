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

use mwsync::error::{Classify, ErrorClass};
use mwsync::record::{Record, table_info};

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
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let mut ds = Dataset::default();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
        let doc = mwsync::moneyworks::xml::parse_export(&text, None).map_err(|reason| {
            DataError::Malformed {
                path: path.clone(),
                reason,
            }
        })?;
        ds.tables
            .entry(doc.table.name.to_string())
            .or_default()
            .extend(doc.records);
    }
    Ok(ds)
}

/// Writes one verbose export per table into `dir` (created if needed), named after the
/// record element (`name.xml`, `transaction.xml`).
pub fn write_dir(ds: &Dataset, dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    for (name, records) in &ds.tables {
        let info = table_info(name).ok_or_else(|| DataError::Malformed {
            path: dir.to_path_buf(),
            reason: format!("the dataset holds table `{name}`, which mwsync does not know"),
        })?;
        let doc = crate::export_xml::write_table(
            info,
            records.iter(),
            0,
            records.len() as u64,
            crate::export_xml::Flavour::Verbose,
        );
        let path = dir.join(format!("{}.xml", info.element));
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
    /// Latest modification time, YYYYMMDDHHMMSS; history spreads over the years before it.
    #[arg(long, default_value = "20260630120000")]
    pub end: mwsync::mwtime::MwTime,
    /// Output directory [default: fixtures-local/generated-SEED at the work tree's top].
    #[arg(long)]
    pub out: Option<PathBuf>,
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
