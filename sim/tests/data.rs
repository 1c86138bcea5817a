//! Tests of the dataset generator and the anonymizer (`mwsync_sim::data`): determinism,
//! balanced and resolvable references, nothing sensitive surviving anonymization, loading
//! into the fake server, and the guard that keeps test data out of git. It must not write
//! anywhere but temporary directories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use mwsync_sim::data::parse_export;
use mwsync_sim::data::{
    AnonOptions, DataError, Dataset, GenSpec, anonymize_dir, check_out_dir, default_out, generate,
    load_dir, write_dir, write_generated,
};
use mwsync_sim::layout;
use mwsync_sim::record::{FieldView, Record, Row};
use mwsync_sim::schema;
use mwsync_sim::schema::table_info;
use mwsync_sim::time::DateTime;

fn spec(seed: u64) -> GenSpec {
    GenSpec {
        seed,
        names: 30,
        accounts: 25,
        products: 20,
        jobs: 6,
        transactions: 150,
        ..GenSpec::default()
    }
}

fn opts(seed: u64) -> AnonOptions {
    AnonOptions {
        seed,
        shift_dates: false,
        scale_amounts: false,
    }
}

/// Every file below `dir` as (relative path, bytes), sorted.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("readable test dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("below root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    go(dir, dir, &mut out);
    out
}

fn text(r: &Record, f: &str) -> String {
    r.text(f).unwrap_or_default().to_string()
}

fn rows(r: &Record) -> Vec<&Row> {
    r.rows().iter().collect()
}

/// The field names of a record in output order (a subfile by its name).
fn field_names(r: &Record) -> Vec<String> {
    r.fields()
        .map(|v| match v {
            FieldView::Text { name, .. } => name.to_string(),
            FieldView::Subfile { sub, .. } => sub.name.to_string(),
        })
        .collect()
}

fn row_text(row: &Row, f: &str) -> String {
    let sub = schema::TRANSACTION.subfile.as_ref().expect("Detail");
    sub.index(f)
        .map(|i| row.get(i).to_string())
        .unwrap_or_default()
}

fn cents(s: &str) -> i128 {
    schema::parse_scaled(s, 2).unwrap_or_else(|| panic!("`{s}` is not an amount"))
}

fn codes(ds: &Dataset, table: &str) -> BTreeSet<String> {
    ds.tables[table].iter().map(|r| text(r, "code")).collect()
}

/// The sequence numbers of `table`'s records.
fn seqs(ds: &Dataset, table: &str) -> BTreeSet<String> {
    ds.tables[table]
        .iter()
        .map(|r| text(r, "sequencenumber"))
        .collect()
}

/// Checks that every reference of every record resolves (transactions, jobs, products, and
/// the records that hang off names, products and jobs), and that every transaction's lines
/// sum to its totals.
fn assert_consistent(ds: &Dataset) {
    let (names, accounts, products, jobs) = (
        codes(ds, "Name"),
        codes(ds, "Account"),
        codes(ds, "Product"),
        codes(ds, "Job"),
    );
    let taxcodes: BTreeSet<String> = ds.tables["TaxRate"]
        .iter()
        .map(|r| text(r, "taxcode"))
        .collect();
    let (name_seqs, product_seqs, tx_seqs) = (
        seqs(ds, "Name"),
        seqs(ds, "Product"),
        seqs(ds, "Transaction"),
    );
    for (table, field, within) in [
        ("Contacts", "parentseq", &name_seqs),
        ("Memo", "nameseq", &name_seqs),
        ("Inventory", "productseq", &product_seqs),
        ("Build", "productseq", &product_seqs),
        ("Payments", "invoiceid", &tx_seqs),
        ("Payments", "cashtrans", &tx_seqs),
    ] {
        for r in &ds.tables[table] {
            let v = text(r, field);
            assert!(within.contains(&v), "{table} {field} {v} resolves");
        }
    }
    for r in &ds.tables["JobSheet"] {
        assert!(jobs.contains(&text(r, "job")), "job sheet job");
    }
    for r in &ds.tables["Build"] {
        assert!(products.contains(&text(r, "partcode")), "build part");
    }
    for t in &ds.tables["Transaction"] {
        let seq = text(t, "sequencenumber");
        let nc = text(t, "namecode");
        assert!(
            nc.is_empty() || names.contains(&nc),
            "tx {seq}: namecode {nc}"
        );
        assert!(accounts.contains(&text(t, "contra")), "tx {seq}: contra");
        let (mut net, mut tax, mut gross) = (0, 0, 0);
        let lines = rows(t);
        assert!(!lines.is_empty(), "tx {seq} has no lines");
        for row in lines {
            let acct = row_text(row, "detail.account");
            assert!(accounts.contains(&acct), "tx {seq}: account {acct}");
            let stock = row_text(row, "detail.stockcode");
            assert!(
                stock.is_empty() || products.contains(&stock),
                "tx {seq}: {stock}"
            );
            let code = row_text(row, "detail.taxcode");
            assert!(taxcodes.contains(&code), "tx {seq}: tax code {code}");
            let job = row_text(row, "detail.jobcode");
            assert!(job.is_empty() || jobs.contains(&job), "tx {seq}: job {job}");
            let (n, x, g) = (
                cents(&row_text(row, "detail.net")),
                cents(&row_text(row, "detail.tax")),
                cents(&row_text(row, "detail.gross")),
            );
            assert_eq!(n + x, g, "tx {seq}: line net + tax");
            net += n;
            tax += x;
            gross += g;
        }
        assert_eq!(gross, cents(&text(t, "gross")), "tx {seq}: gross");
        assert!(
            net <= gross || tax < 0,
            "tx {seq}: net {net} above gross {gross}"
        );
        assert_eq!(tax, cents(&text(t, "taxamount")), "tx {seq}: tax");
    }
    for j in &ds.tables["Job"] {
        let c = text(j, "client");
        assert!(c.is_empty() || names.contains(&c), "job client {c}");
    }
    for p in &ds.tables["Product"] {
        let s = text(p, "supplier");
        assert!(s.is_empty() || names.contains(&s), "product supplier {s}");
    }
}

// ---------------------------------------------------------------------------------------------
// Generator

/// The same seed gives equal datasets and equal bytes; another seed gives other data.
#[test]
fn generation_is_deterministic_per_seed() {
    let a = generate(&spec(5));
    assert_eq!(a, generate(&spec(5)));
    assert_ne!(a, generate(&spec(6)));
    let (d1, d2) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write_dir(&a, d1.path()).expect("write");
    write_dir(&generate(&spec(5)), d2.path()).expect("write");
    assert_eq!(tree(d1.path()), tree(d2.path()));
}

/// The streaming writer used by `mwsim generate` writes exactly the bytes of the in-memory
/// dataset.
#[test]
fn streaming_output_equals_in_memory_output() {
    let (d1, d2) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let s = spec(11);
    let bytes = write_generated(&s, d1.path()).expect("stream");
    write_dir(&generate(&s), d2.path()).expect("write");
    let (t1, t2) = (tree(d1.path()), tree(d2.path()));
    assert_eq!(t1, t2);
    assert_eq!(bytes, t1.values().map(|v| v.len() as u64).sum::<u64>());
}

/// Generated data has the required shape: a chart, customers and suppliers with contacts,
/// products, several transaction types both posted and unposted, references that resolve,
/// lines that sum to gross, unique sequence numbers from 1, schema field order, and
/// modification times spread over years with some ties.
#[test]
fn generated_data_is_realistic_and_consistent() {
    let s = spec(3);
    let ds = generate(&s);
    assert_consistent(&ds);
    for (table, n) in [
        ("Name", s.names),
        ("Account", s.accounts),
        ("Product", s.products),
        ("Job", s.jobs),
        ("Transaction", s.transactions),
    ] {
        let recs = &ds.tables[table];
        assert_eq!(recs.len(), n, "{table} count");
        let seqs: Vec<u64> = recs.iter().map(|r| r.seq().expect("seq")).collect();
        assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "{table} seqs");
        let sch = schema::schema_by_name(table).expect("served");
        let blank = Record::blank(sch);
        let names = field_names;
        let times: Vec<DateTime> = recs.iter().map(|r| r.modified().expect("lmt")).collect();
        for r in recs {
            assert_eq!(names(r), names(&blank), "{table} field order");
            assert!(r.modified().expect("lmt") <= s.end);
        }
        let (lo, hi) = (
            times.iter().min().expect("some"),
            times.iter().max().expect("some"),
        );
        if n >= 20 {
            let years = (hi.secs() - lo.secs()) / (365 * 86_400);
            assert!(years >= 3, "{table} times span only {years} years");
        }
        if n >= 30 {
            let distinct: BTreeSet<_> = times.iter().collect();
            assert!(distinct.len() < times.len(), "{table} has no tied times");
        }
    }
    let names = &ds.tables["Name"];
    assert!(names.iter().any(|r| text(r, "customertype") == "2"));
    assert!(names.iter().any(|r| text(r, "suppliertype") == "2"));
    assert!(names.iter().all(|r| !text(r, "contact").is_empty()));
    assert!(names.iter().all(|r| text(r, "code").chars().count() <= 11));
    let tx = &ds.tables["Transaction"];
    let types: BTreeSet<String> = tx.iter().map(|t| text(t, "type")).collect();
    assert!(types.len() >= 4, "{types:?}");
    let status: BTreeSet<String> = tx.iter().map(|t| text(t, "status")).collect();
    assert_eq!(status, ["P", "U"].map(String::from).into_iter().collect());
    assert!(tx.iter().any(|t| {
        rows(t)
            .iter()
            .any(|r| !row_text(r, "detail.stockcode").is_empty())
    }));
    assert!(tx.iter().any(|t| {
        rows(t)
            .iter()
            .any(|r| !row_text(r, "detail.jobcode").is_empty())
    }));
    for sch in schema::all() {
        let n = ds.tables[sch.info.name].len();
        assert!(n > 0, "{} is generated", sch.info.name);
        let want = match sch.info.name {
            "TaxRate" => 3,
            "General" => 6,
            other => s.size(other),
        };
        assert_eq!(n, want, "{} size", sch.info.name);
        for r in &ds.tables[sch.info.name] {
            for f in sch.fields {
                let v = r.text(f.name).expect("schema field present");
                assert_eq!(schema::normalize(f, v).as_deref(), Ok(v), "{}", f.name);
            }
        }
    }
}

/// `write_dir` then `load_dir` gives the dataset back, and `load_dir` refuses a malformed
/// export naming the file.
#[test]
fn datasets_round_trip_through_directories() {
    let ds = generate(&spec(2));
    let dir = tempfile::tempdir().expect("tmp");
    write_dir(&ds, dir.path()).expect("write");
    assert_eq!(load_dir(dir.path()).expect("load"), ds);
    std::fs::write(
        dir.path().join("bad.xml"),
        "<table name=\"Name\" count=\"1\"",
    )
    .expect("w");
    let err = load_dir(dir.path()).expect_err("malformed");
    assert!(matches!(err, DataError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("bad.xml"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Anonymizer

/// Values in the hand-made input that must not survive anonymization anywhere.
const SENSITIVE: &[&str] = &[
    "ZORBCO",
    "PLUMBRITE",
    "GIZMO-77",
    "JFROB1",
    "Zorblax",
    "Quentin",
    "Frobnitz",
    "Gnarlyville",
    "Plumbrite",
    "Hortensia Vexley",
    "Vexley",
    "9871",
    "09 555 0199",
    "021 876 5432",
    "04 321 9876",
    "quentin@zorblax.example",
    "hv@plumbrite.example",
    "zorblax-widgets",
    "111-222-333",
    "444-555-666",
    "12-3456-7890123-00",
    "06-0999-1234567-00",
    "PO-ZB-4411",
    "Gizmo deluxe",
    "secret margin",
    "private note",
    "Marigold",
];

fn write_sensitive_exports(dir: &Path) {
    let files = [
        (
            "name.xml",
            r#"<?xml version="1.0"?>
<!-- private note about Quentin Zorblax -->
<table name="Name" count="2" start="0" found="2">
 <name>
  <sequencenumber system="true">1</sequencenumber>
  <lastmodifiedtime system="true">20240101120000</lastmodifiedtime>
  <code>ZORBCO</code>
  <name>Zorblax Widgets &amp; Sons Ltd</name>
  <contact>Quentin Zorblax</contact>
  <salutation>Quentin</salutation>
  <address1>17 Frobnitz Lane</address1>
  <address2>Gnarlyville</address2>
  <postcode>9871</postcode>
  <phone>09 555 0199</phone>
  <mobile>021 876 5432</mobile>
  <email>quentin@zorblax.example</email>
  <weburl>www.zorblax-widgets.example</weburl>
  <customertype>2</customertype>
  <taxnumber>111-222-333</taxnumber>
  <bankaccountnumber>12-3456-7890123-00</bankaccountnumber>
  <bankaccountname>Zorblax Widgets Trust</bankaccountname>
  <comment>Owes us for the Frobnitz contract; secret margin 40%</comment>
 </name>
 <name>
  <sequencenumber system="true">2</sequencenumber>
  <lastmodifiedtime system="true">20240102120000</lastmodifiedtime>
  <code>PLUMBRITE</code>
  <name>Plumbrite Supplies</name>
  <contact>Hortensia Vexley</contact>
  <address1>2 Marigold Road&#13;Gnarlyville</address1>
  <phone>04 321 9876</phone>
  <email>hv@plumbrite.example</email>
  <suppliertype>2</suppliertype>
  <taxnumber>444-555-666</taxnumber>
  <comment/>
 </name>
</table>
"#,
        ),
        (
            "account.xml",
            r#"<?xml version="1.0"?>
<table name="Account" count="2" start="0" found="2">
 <account>
  <sequencenumber system="true">1</sequencenumber>
  <lastmodifiedtime system="true">20230101120000</lastmodifiedtime>
  <code>1000</code>
  <type>BK</type>
  <description>Zorblax main cheque</description>
  <bankaccountnumber>06-0999-1234567-00</bankaccountnumber>
 </account>
 <account>
  <sequencenumber system="true">2</sequencenumber>
  <lastmodifiedtime system="true">20230101120000</lastmodifiedtime>
  <code>4000</code>
  <type>SA</type>
  <description>Sales</description>
 </account>
</table>
"#,
        ),
        (
            "product.xml",
            r#"<?xml version="1.0"?>
<table name="Product" count="1" start="0" found="1">
 <product>
  <sequencenumber system="true">1</sequencenumber>
  <lastmodifiedtime system="true">20240103120000</lastmodifiedtime>
  <code>GIZMO-77</code>
  <description>Gizmo deluxe for Zorblax</description>
  <supplier>PLUMBRITE</supplier>
  <sellprice>12.500000</sellprice>
 </product>
</table>
"#,
        ),
        (
            "job.xml",
            r#"<?xml version="1.0"?>
<table name="Job" count="1" start="0" found="1">
 <job>
  <sequencenumber system="true">1</sequencenumber>
  <lastmodifiedtime system="true">20240104120000</lastmodifiedtime>
  <code>JFROB1</code>
  <description>Frobnitz site fit-out</description>
  <client>ZORBCO</client>
  <contact>Quentin Zorblax</contact>
  <phone>09 555 0199</phone>
 </job>
</table>
"#,
        ),
        (
            "transaction.xml",
            r#"<?xml version="1.0"?>
<table name="Transaction" count="1" start="0" found="1">
 <transaction>
  <sequencenumber system="true">1</sequencenumber>
  <lastmodifiedtime system="true">20240105120000</lastmodifiedtime>
  <transdate>20240105</transdate>
  <type>DII</type>
  <theirref>PO-ZB-4411</theirref>
  <namecode>ZORBCO</namecode>
  <description>Invoice for Quentin &lt;Zorblax&gt;</description>
  <gross>28.75</gross>
  <taxamount>3.75</taxamount>
  <netamount>25.00</netamount>
  <contra>1000</contra>
  <tofrom>Zorblax Widgets &amp; Sons Ltd</tofrom>
  <mailingaddress>17 Frobnitz Lane&#13;Gnarlyville 9871</mailingaddress>
  <subfile name="Detail">
   <detail>
    <detail.account>4000</detail.account>
    <detail.net>25.00</detail.net>
    <detail.tax>3.75</detail.tax>
    <detail.gross>28.75</detail.gross>
    <detail.description>Gizmo deluxe x2 for Frobnitz</detail.description>
    <detail.stockcode>GIZMO-77</detail.stockcode>
    <detail.jobcode>JFROB1</detail.jobcode>
   </detail>
  </subfile>
 </transaction>
</table>
"#,
        ),
    ];
    for (name, body) in files {
        std::fs::write(dir.join(name), body).expect("write fixture");
    }
}

/// The same records as an mwsync repository's record files.
fn write_sensitive_repo(exports: &Path, repo: &Path) {
    for r in load_dir(exports)
        .expect("fixture loads")
        .tables
        .values()
        .flatten()
    {
        let path = repo.join(layout::record_path(r).expect("keyed"));
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(path, layout::canonical_xml(r).expect("writable")).expect("write record");
    }
    std::fs::create_dir_all(repo.join(".git")).expect("mkdir");
    std::fs::write(repo.join(".git/config"), "Zorblax").expect("hidden file");
}

fn assert_nothing_survives(out: &Path) {
    for (rel, bytes) in tree(out) {
        let content = String::from_utf8_lossy(&bytes).to_lowercase();
        for s in SENSITIVE {
            let needle = s.to_lowercase();
            assert!(!content.contains(&needle), "`{s}` survives in {rel}");
            let encoded = layout::encode_code(s).to_lowercase();
            assert!(!rel.to_lowercase().contains(&needle), "`{s}` in path {rel}");
            assert!(
                !rel.to_lowercase().contains(&encoded),
                "`{s}` in path {rel}"
            );
        }
        assert!(!content.contains("<!--"), "comment kept in {rel}");
    }
}

/// No sensitive value of an export directory survives anywhere in the output, references
/// still resolve, and record counts, field names and field order are unchanged.
#[test]
fn anonymized_exports_keep_structure_and_leak_nothing() {
    let (input, out) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write_sensitive_exports(input.path());
    let stats = anonymize_dir(input.path(), out.path(), &opts(9)).expect("anonymize");
    assert_eq!((stats.files, stats.records), (5, 7));
    assert_nothing_survives(out.path());

    let (a, b) = (
        load_dir(input.path()).expect("in"),
        load_dir(out.path()).expect("out"),
    );
    for (table, recs) in &a.tables {
        let shape = field_names;
        assert_eq!(recs.len(), b.tables[table].len(), "{table} count");
        for (x, y) in recs.iter().zip(&b.tables[table]) {
            assert_eq!(shape(x), shape(y), "{table} field order");
            assert_eq!(rows(x).len(), rows(y).len(), "{table} rows");
        }
    }
    let name = &b.tables["Name"];
    let (zorb, plumb) = (text(&name[0], "code"), text(&name[1], "code"));
    assert!(zorb.len() <= 11 && plumb.len() <= 11 && zorb != plumb);
    let tx = &b.tables["Transaction"][0];
    assert_eq!(text(tx, "namecode"), zorb);
    let line = rows(tx)[0];
    assert_eq!(
        row_text(line, "detail.stockcode"),
        text(&b.tables["Product"][0], "code")
    );
    assert_eq!(
        row_text(line, "detail.jobcode"),
        text(&b.tables["Job"][0], "code")
    );
    assert_eq!(
        row_text(line, "detail.account"),
        "4000",
        "account codes are kept"
    );
    assert_eq!(text(&b.tables["Job"][0], "client"), zorb);
    assert_eq!(text(&b.tables["Product"][0], "supplier"), plumb);
    assert_eq!(
        text(tx, "tofrom"),
        text(&name[0], "name"),
        "same company, same name"
    );
    assert_eq!(text(tx, "gross"), "28.75", "amounts are kept unless scaled");
    assert_eq!(
        text(&name[0], "customertype"),
        "2",
        "flags are not free text"
    );
    assert_eq!(
        text(&b.tables["Account"][0], "type"),
        "BK",
        "account types are kept"
    );
    assert!(
        text(tx, "mailingaddress").contains('\r'),
        "line breaks are kept"
    );
    let phone = text(&name[0], "phone");
    assert_eq!(phone.len(), "09 555 0199".len());
    assert_eq!(
        text(&b.tables["Job"][0], "phone"),
        phone,
        "same phone, same replacement"
    );
}

/// Record files of an mwsync repository are anonymized too: code-keyed files move to the
/// path of their new code, hidden files are not copied, and codes agree with the export run.
#[test]
fn anonymized_record_files_move_to_their_new_keys() {
    let (exports, repo, out, out2) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write_sensitive_exports(exports.path());
    write_sensitive_repo(exports.path(), repo.path());
    let stats = anonymize_dir(repo.path(), out.path(), &opts(9)).expect("anonymize");
    assert_eq!((stats.files, stats.records), (7, 7));
    assert_nothing_survives(out.path());
    let mut codes = BTreeMap::new();
    for (rel, bytes) in tree(out.path()) {
        let (table, key) = layout::parse_path(&rel).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let el = mwsync_sim::xml::parse(std::str::from_utf8(&bytes).expect("utf8")).expect("XML");
        let sch = schema::schema(table).expect("served");
        let rec = Record::from_element(sch, &el).expect("record parses");
        assert_eq!(layout::key_of(&rec).expect("key"), key, "{rel}");
        if let Some(code) = rec.text("code") {
            codes.insert((table.name, rec.seq()), code.to_string());
        }
    }
    anonymize_dir(exports.path(), out2.path(), &opts(9)).expect("anonymize exports");
    let b = load_dir(out2.path()).expect("out");
    for (table, recs) in &b.tables {
        for r in recs {
            if let Some(code) = r.text("code") {
                let t = table_info(table).expect("known").name;
                assert_eq!(codes.get(&(t, r.seq())).map(String::as_str), Some(code));
            }
        }
    }
}

/// The same seed gives identical bytes; another seed gives different replacements.
#[test]
fn anonymization_is_deterministic_per_seed() {
    let input = tempfile::tempdir().expect("tmp");
    write_sensitive_exports(input.path());
    let run = |seed| {
        let out = tempfile::tempdir().expect("tmp");
        anonymize_dir(input.path(), out.path(), &opts(seed)).expect("anonymize");
        tree(out.path())
    };
    let a = run(21);
    assert_eq!(a, run(21));
    let b = run(22);
    for file in ["name.xml", "product.xml", "job.xml", "transaction.xml"] {
        assert_ne!(a[file], b[file], "{file} should differ between seeds");
    }
}

/// With date shifting and amount scaling, every date moves by one non-zero number of days,
/// amounts change, and every transaction still balances with resolvable references.
#[test]
fn shifted_and_scaled_output_stays_balanced() {
    let (input, out) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let ds = generate(&spec(4));
    write_dir(&ds, input.path()).expect("write");
    let o = AnonOptions {
        seed: 4,
        shift_dates: true,
        scale_amounts: true,
    };
    anonymize_dir(input.path(), out.path(), &o).expect("anonymize");
    let b = load_dir(out.path()).expect("load");
    assert_consistent(&b);
    let day = |s: String| DateTime::parse_date(&s).expect("date").secs() / 86_400;
    let mut shifts = BTreeSet::new();
    let mut changed = 0;
    for (x, y) in ds.tables["Transaction"]
        .iter()
        .zip(&b.tables["Transaction"])
    {
        shifts.insert(day(text(y, "transdate")) - day(text(x, "transdate")));
        let lmt = |r: &Record| r.modified().expect("lmt").secs();
        shifts.insert((lmt(y) - lmt(x)) / 86_400);
        changed += usize::from(text(x, "gross") != text(y, "gross"));
    }
    assert_eq!(shifts.len(), 1, "{shifts:?}");
    assert!(!shifts.contains(&0));
    assert!(
        changed > ds.tables["Transaction"].len() / 2,
        "only {changed} amounts changed"
    );
}

/// Each class of bad input is refused with a reason: truncated or mismatched XML, an unknown
/// entity, a `<table>` without a name, an unknown root, and an output directory that is
/// inside the input or not empty.
#[test]
fn anonymize_refuses_bad_input() {
    let cases = [
        (
            "<table name=\"Name\" count=\"1\"><name><code>A</code>",
            "truncated",
        ),
        (
            "<table name=\"Name\"><name><code>&bogus;</code></name></table>",
            "bogus",
        ),
        ("<table count=\"0\"></table>", "no name attribute"),
        (
            "<table name=\"Name\"><name><code>A</name></code></table>",
            "well-formed",
        ),
        ("<import><table name=\"Name\"/></import>", "neither"),
    ];
    for (body, needle) in cases {
        let (input, out) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        std::fs::write(input.path().join("x.xml"), body).expect("write");
        let err = anonymize_dir(input.path(), out.path(), &opts(1)).expect_err(needle);
        assert!(matches!(err, DataError::Malformed { .. }), "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
    let (input, out) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write_sensitive_exports(input.path());
    let nested = input.path().join("out");
    let err = anonymize_dir(input.path(), &nested, &opts(1)).expect_err("nested output");
    assert!(matches!(err, DataError::Refused { .. }), "{err}");
    assert!(
        !nested.exists(),
        "a refused output directory is not created"
    );
    std::fs::write(out.path().join("old.xml"), "<x/>").expect("write");
    let err = anonymize_dir(input.path(), out.path(), &opts(1)).expect_err("non-empty output");
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// Anonymized generated data loads into the fake server, and a verbose REST export gives back
/// every table with the same counts and records.
#[tokio::test]
async fn anonymized_output_loads_into_the_fake_and_exports_back() {
    let (input, out) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    write_dir(&generate(&spec(8)), input.path()).expect("write");
    anonymize_dir(input.path(), out.path(), &opts(8)).expect("anonymize");
    let loaded = load_dir(out.path()).expect("load");
    assert_consistent(&loaded);
    let sim = mwsync_sim::fake::Sim::builder()
        .data_dir(out.path())
        .start()
        .await;
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("Admin:Document:");
    let client = reqwest::Client::new();
    for (table, recs) in &loaded.tables {
        let url = format!("{}/export/table={table}&format=xml-verbose", sim.url());
        let body = client
            .get(&url)
            .header("Authorization", format!("Basic {auth}"))
            .send()
            .await
            .expect("export request")
            .text()
            .await
            .expect("body");
        let (name, records) = parse_export(&body).expect("export parses");
        let root = mwsync_sim::xml::parse(&body).expect("XML");
        assert_eq!(name, table_info(table).expect("known").name);
        assert_eq!(
            root.attr("found"),
            Some(recs.len().to_string().as_str()),
            "{table} count"
        );
        assert_eq!(&records, recs, "{table} records");
    }
}

// ---------------------------------------------------------------------------------------------
// Never commit

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs")
}

fn temp_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tmp");
    assert!(git(repo.path(), &["init", "-q"]).status.success());
    std::fs::write(repo.path().join(".gitignore"), "/fixtures-local/*\n").expect("write");
    repo
}

/// An output path that git would track is refused with the reason; ignored paths and paths
/// outside any repository are allowed.
#[test]
fn output_inside_a_work_tree_must_be_ignored() {
    let repo = temp_repo();
    for tracked in ["data", "src/deeper/data", "fixtures-local", "."] {
        let err = check_out_dir(&repo.path().join(tracked)).expect_err(tracked);
        assert!(matches!(err, DataError::Refused { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("refusing"), "{msg}");
    }
    let msg = check_out_dir(&repo.path().join("data"))
        .expect_err("tracked")
        .to_string();
    assert!(
        msg.contains("does not ignore") && msg.contains("committed"),
        "{msg}"
    );
    check_out_dir(&repo.path().join("fixtures-local/anything/deeper")).expect("ignored");
    let outside = tempfile::tempdir().expect("tmp");
    check_out_dir(&outside.path().join("new")).expect("outside any repository");
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-out");
    check_out_dir(&here).expect_err("a tracked path of this repository");
}

/// `mwsim generate` and `mwsim anonymize` refuse a tracked `--out`, say why, and write
/// nothing there.
#[test]
fn the_commands_refuse_a_tracked_out() {
    let repo = temp_repo();
    let target = repo.path().join("testdata");
    let input = tempfile::tempdir().expect("tmp");
    write_sensitive_exports(input.path());
    let runs = [
        vec!["generate", "--transactions", "3", "--out"],
        vec![
            "anonymize",
            "--seed",
            "1",
            "--in",
            input.path().to_str().expect("utf8"),
            "--out",
        ],
    ];
    for args in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_mwsim"))
            .args(&args)
            .arg(&target)
            .output()
            .expect("mwsim runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("refusing") && stderr.contains("does not ignore"),
            "{stderr}"
        );
        assert!(!target.exists(), "{args:?} wrote into the tracked path");
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_mwsim"))
        .args(["generate", "--transactions", "3", "--names", "3", "--out"])
        .arg(repo.path().join("fixtures-local/gen"))
        .output()
        .expect("mwsim runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        repo.path()
            .join("fixtures-local/gen/transaction.xml")
            .is_file()
    );
}

/// The default output directory is under this repository's `fixtures-local/`, and
/// `git check-ignore` covers it.
#[test]
fn default_output_is_git_ignored() {
    for leaf in ["generated-1", "anonymized-42"] {
        let out = default_out(leaf);
        assert!(
            out.ends_with(Path::new("fixtures-local").join(leaf)),
            "{}",
            out.display()
        );
        let status = Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(["check-ignore", "-q", "--"])
            .arg(&out)
            .status()
            .expect("git runs");
        assert!(status.success(), "git does not ignore {}", out.display());
        check_out_dir(&out).expect("the default output is allowed");
    }
}
