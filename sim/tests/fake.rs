//! Integration tests of the fake MoneyWorks Datacentre over real HTTP. Requests are built the
//! way the real protocol says (hand-built URLs, percent-encoded parameters, Basic headers
//! with `user:Document:password` payloads), never with the fake's own helpers, so a change
//! that would surprise a third-party client fails here.

use std::time::Duration;

use base64::Engine as _;
use mwsync_sim::fake::{FaultKind, Sim};
use mwsync_sim::time::DateTime;
use mwsync_sim::xml as xmltree;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, SERVER};

/// Everything but unreserved characters is encoded, as MONEYWORKS.md asks for values.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, VALUE).to_string()
}

fn basic(payload: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(payload)
    )
}

fn t(s: &str) -> DateTime {
    DateTime::parse(s).expect("valid test time")
}

const START: &str = "20250101120000";

async fn sim(names: usize) -> Sim {
    Sim::builder()
        .seed(7)
        .names(names)
        .accounts(0)
        .products(0)
        .jobs(0)
        .transactions(0)
        .document("Acme.moneyworks")
        .login("Admin", "secret")
        .clock(t(START))
        .start()
        .await
}

/// A client that sends the document credential the documented way.
struct Client {
    http: reqwest::Client,
    doc: String,
    auth: Vec<String>,
}

impl Client {
    fn new(sim: &Sim) -> Client {
        Client {
            http: reqwest::Client::new(),
            doc: format!("{}/REST/Acme.moneyworks", sim.base_url()),
            auth: vec![basic("Admin:Document:secret")],
        }
    }

    async fn get(&self, rest: &str) -> (StatusCode, String) {
        let mut req = self.http.get(format!("{}/{rest}", self.doc));
        for a in &self.auth {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = req.send().await.expect("request reaches the fake");
        let status = resp.status();
        (status, resp.text().await.expect("body arrives"))
    }

    async fn export(&self, params: &str) -> String {
        let (status, body) = self.get(&format!("export/{params}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn import(&self, params: &str, xml: &str) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(format!("{}/import{params}", self.doc))
            .header("Content-Type", "text/xml")
            .body(xml.to_string());
        for a in &self.auth {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = req.send().await.expect("request reaches the fake");
        let status = resp.status();
        (status, resp.text().await.expect("body arrives"))
    }
}

fn root(xml: &str) -> xmltree::Element {
    xmltree::parse(xml).unwrap_or_else(|e| panic!("reply is not XML ({e}): {xml}"))
}

fn attrs(xml: &str) -> (String, String, String) {
    let r = root(xml);
    (
        r.attr("count").unwrap_or_default().to_string(),
        r.attr("start").unwrap_or_default().to_string(),
        r.attr("found").unwrap_or_default().to_string(),
    )
}

fn codes(xml: &str) -> Vec<String> {
    root(xml)
        .children
        .iter()
        .map(|r| {
            r.children
                .iter()
                .find(|f| f.name == "code")
                .map(|f| f.text.clone())
                .unwrap_or_default()
        })
        .collect()
}

async fn admin_post(sim: &Sim, path: &str, json: &str) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/{path}", sim.base_url()))
        .header("Content-Type", "application/json")
        .body(json.to_string())
        .send()
        .await
        .expect("admin request reaches the fake");
    let status = resp.status();
    (status, resp.text().await.expect("body arrives"))
}

async fn admin_get(sim: &Sim, path: &str) -> String {
    reqwest::get(format!("{}/_sim/{path}", sim.base_url()))
        .await
        .expect("admin request reaches the fake")
        .text()
        .await
        .expect("body arrives")
}

// ---------------------------------------------------------------------------------------------
// Server commands and auth

/// Both version URLs answer without credentials, with the `Server:` header; a folder login
/// adds `Login_Required`.
#[tokio::test]
async fn version_answers_on_both_paths_with_server_header() {
    let plain = sim(1).await;
    for path in ["/REST//version", "/REST/server/version"] {
        let resp = reqwest::get(format!("{}{path}", plain.base_url()))
            .await
            .expect("reachable");
        assert_eq!(resp.status(), StatusCode::OK);
        let server = resp.headers()[SERVER].to_str().expect("ascii").to_string();
        assert_eq!(server, "MoneyWorks_Datacentre/9.2.1 REST/9.2.1");
        assert_eq!(resp.text().await.expect("body"), "9.2.1");
    }
    let folder = Sim::builder().names(1).folder("Acme", "fpw").start().await;
    let resp = reqwest::get(format!("{}/REST//version", folder.base_url()))
        .await
        .expect("reachable");
    let server = resp.headers()[SERVER].to_str().expect("ascii");
    assert!(server.ends_with(" Login_Required"), "{server}");
}

/// Every credential form a client may send is accepted, and wrong ones get `DoConnect failed`.
#[tokio::test]
async fn every_auth_form_works_and_wrong_credentials_are_refused() {
    let sim = Sim::builder()
        .names(2)
        .document("Sub Folder/Acme.moneyworks")
        .login("Admin", "s3cr:et")
        .folder("Sub Folder", "fpw")
        .start()
        .await;
    let doc = enc("Sub Folder/Acme.moneyworks");
    assert_eq!(doc, "Sub%20Folder%2FAcme.moneyworks");
    let url = |prefix: &str| {
        format!(
            "{}/REST/{prefix}{doc}/export/table=name&format=xml-verbose",
            sim.base_url()
        )
    };
    let d = basic("Admin:Document:s3cr:et");
    let f = basic("Sub Folder:Datacentre:fpw");
    let http = reqwest::Client::new();
    let send = |url: String, headers: Vec<String>| {
        let mut req = http.get(url);
        for h in headers {
            req = req.header(AUTHORIZATION, h);
        }
        async move {
            let resp = req.send().await.expect("reachable");
            let status = resp.status();
            (status, resp.text().await.expect("body"))
        }
    };
    let good = [
        (url(""), vec![d.clone(), f.clone()]),
        (url(""), vec![f.clone(), d.clone()]),
        (url(""), vec![format!("{d}, {f}")]),
        (url(""), vec![format!("{f},{d}")]),
        (url(""), vec![basic("Admin:s3cr:et"), f.clone()]),
        (url("Admin:s3cr%3Aet@"), vec![f.clone()]),
    ];
    for (i, (u, h)) in good.into_iter().enumerate() {
        let (status, body) = send(u, h).await;
        assert_eq!(status, StatusCode::OK, "form {i}: {body}");
        assert_eq!(attrs(&body).2, "2", "form {i}");
    }
    let bad = [
        (url(""), vec![d.clone()]),
        (url(""), vec![f.clone()]),
        (url(""), vec![basic("Admin:Document:wrong"), f.clone()]),
        (
            url(""),
            vec![d.clone(), basic("Sub Folder:Datacentre:nope")],
        ),
        (url(""), vec![]),
        (url("Admin:wrong@"), vec![f.clone()]),
        (url(""), vec!["Basic !!notbase64".to_string(), f.clone()]),
    ];
    for (i, (u, h)) in bad.into_iter().enumerate() {
        let (status, body) = send(u, h).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "form {i}: {body}");
        assert_eq!(body, "DoConnect failed -1", "form {i}");
        assert!(!body.contains("s3cr"), "no secret in replies");
    }
    let other_doc = format!(
        "{}/REST/Other.moneyworks/export/table=name&format=xml",
        sim.base_url()
    );
    let (status, body) = send(other_doc, vec![d.clone(), f.clone()]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, "DoConnect failed -43");
}

// ---------------------------------------------------------------------------------------------
// Export

/// Parameters after `/` and after `?` give the same reply.
#[tokio::test]
async fn both_parameter_separators_give_the_same_reply() {
    let sim = sim(4).await;
    let c = Client::new(&sim);
    let search = enc("code <> \"ZZZ\"");
    let path_form = c
        .export(&format!("table=name&search={search}&format=xml-verbose"))
        .await;
    let (status, query_form) = c
        .get(&format!(
            "export?table=name&search={search}&format=xml-verbose"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(path_form, query_form);
    assert_eq!(attrs(&path_form).2, "4");
}

/// `count`, `start` and `found` agree with `start` and `limit`, pages follow sequence order.
#[tokio::test]
async fn paging_attributes_agree_with_start_and_limit() {
    let sim = sim(7).await;
    let c = Client::new(&sim);
    let all = codes(&c.export("table=name&format=xml-verbose").await);
    assert_eq!(all.len(), 7);
    let mut paged = Vec::new();
    for (start, count) in [(0, 3), (3, 3), (6, 1), (9, 0)] {
        let body = c
            .export(&format!(
                "table=name&start={start}&limit=3&format=xml-verbose"
            ))
            .await;
        assert_eq!(
            attrs(&body),
            (count.to_string(), start.to_string(), "7".to_string())
        );
        paged.extend(codes(&body));
    }
    assert_eq!(paged, all);
    let seqs: Vec<u64> = sim
        .records("name")
        .iter()
        .map(|r| r.seq().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

/// A LastModifiedTime search sees edits stamped after the clock stepped back and forward.
#[tokio::test]
async fn lastmodifiedtime_search_follows_clock_steps_both_ways() {
    let sim = sim(0).await;
    let c = Client::new(&sim);
    sim.upsert("name", "A", &[("name", "Alpha")]);
    sim.advance(100);
    sim.upsert("name", "B", &[("name", "Beta")]);
    sim.advance(-1000);
    let (_, back) = sim.upsert("name", "C", &[("name", "Gamma")]);
    assert_eq!(back, t("20250101114500"));
    sim.advance(5000);
    sim.upsert("name", "D", &[("name", "Delta")]);
    let q = |expr: &str| format!("table=name&search={}&format=xml-verbose", enc(expr));
    let since =
        |mark: &str| format!("LastModifiedTime >= TextToDate(\"{mark}\", DateFormYYYYMMDDHHMMSS)");
    let mut got = codes(&c.export(&q(&since("20250101120050"))).await);
    got.sort();
    assert_eq!(got, ["B", "D"]);
    let got = codes(&c.export(&q(&since("20250101114500"))).await);
    assert_eq!(got, ["A", "B", "C", "D"]);
    let got = codes(
        &c.export(&q(
            "DateToText(LastModifiedTime, DateFormYYYYMMDDHHMMSS) < `20250101115959`",
        ))
        .await,
    );
    assert_eq!(got, ["C"]);
}

/// A search made only of index bounds still applies all of them when the page comes from
/// another index: a tie pass's `SequenceNumber > n` inside one second, sorted by sequence.
#[tokio::test]
async fn every_bound_applies_whichever_index_gives_the_candidates() {
    let sim = sim(40).await;
    let c = Client::new(&sim);
    sim.advance(10);
    // Four old records edited in one second: that second holds fewer records than the
    // sequence numbers above the second one's, so the candidates come from the time index.
    let mut edited: Vec<(u64, String)> = sim
        .records("name")
        .iter()
        .step_by(8)
        .take(4)
        .map(|r| {
            let code = r.text("code").expect("names have codes").to_string();
            (r.seq().expect("a sequence number"), code)
        })
        .collect();
    edited.sort();
    for (_, code) in &edited {
        sim.upsert("name", code, &[("name", "Edited")]);
    }
    let now = sim.now().to_string();
    let next = sim.now().add_secs(1).to_string();
    let search = format!(
        "LastModifiedTime >= TextToDate(\"{now}\", DateFormYYYYMMDDHHMMSS) and LastModifiedTime < TextToDate(\"{next}\", DateFormYYYYMMDDHHMMSS) and SequenceNumber > {}",
        edited[1].0
    );
    let got = codes(
        &c.export(&format!(
            "table=name&search={}&sort=SequenceNumber&format=xml-verbose",
            enc(&search)
        ))
        .await,
    );
    let want: Vec<&str> = edited[2..].iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(got, want);
}

/// Terse output drops blank, zero and system fields; verbose keeps all, flagging system ones.
#[tokio::test]
async fn terse_and_verbose_differ_as_documented() {
    let sim = sim(0).await;
    sim.upsert(
        "name",
        "ACME",
        &[("name", "Acme Ltd"), ("creditlimit", "0")],
    );
    let c = Client::new(&sim);
    let verbose = c.export("table=name&format=xml-verbose").await;
    let terse = c.export("table=name&format=xml-terse").await;
    let xml = c.export("table=name&format=xml").await;
    assert_eq!(terse, xml);
    assert!(verbose.starts_with(
        "<?xml version=\"1.0\"?>\n<table name=\"Name\" count=\"1\" start=\"0\" found=\"1\">"
    ));
    assert!(verbose.contains("<sequencenumber system=\"true\">1</sequencenumber>"));
    assert!(
        verbose.contains("<lastmodifiedtime system=\"true\">20250101120000</lastmodifiedtime>")
    );
    assert!(verbose.contains("<creditlimit>0.00</creditlimit>"));
    assert!(verbose.contains("<phone></phone>"));
    let r = root(&terse);
    let fields: Vec<(&str, &str)> = r.children[0]
        .children
        .iter()
        .map(|f| (f.name.as_str(), f.text.as_str()))
        .collect();
    assert_eq!(fields, [("code", "ACME"), ("name", "Acme Ltd")]);
    assert!(
        !terse.contains("sequencenumber")
            && !terse.contains("creditlimit")
            && !terse.contains("<phone")
    );
}

/// Exporting the same data twice gives byte-identical XML, transactions and details included.
#[tokio::test]
async fn exports_are_byte_identical() {
    let sim = Sim::builder()
        .seed(3)
        .names(5)
        .transactions(20)
        .login("Admin", "secret")
        .start()
        .await;
    let c = Client::new(&sim);
    let a = c.export("table=transaction&format=xml-verbose").await;
    let b = c.export("table=transaction&format=xml-verbose").await;
    assert_eq!(a, b);
    assert_eq!(attrs(&a).2, "20");
    assert!(a.contains("<subfile name=\"Detail\">") && a.contains("<detail.account>"));
    let (table, records) = mwsync_sim::data::parse_export(&a).expect("the export reads back");
    assert_eq!((table, records.len()), ("Transaction", 20));
}

/// Custom templates, sort and direction, and the default tab-separated format.
#[tokio::test]
async fn custom_format_sort_and_direction() {
    let sim = sim(0).await;
    sim.upsert("name", "B", &[("name", "Zed")]);
    sim.advance(1);
    sim.upsert("name", "A", &[("name", "Yak")]);
    let c = Client::new(&sim);
    let body = c
        .export(&format!(
            "table=name&format={}",
            enc("[code]\\t[lastmodifiedtime]\\n")
        ))
        .await;
    assert_eq!(body, "B\t20250101120000\nA\t20250101120001\n");
    let sorted = c
        .export("table=name&sort=code&direction=descending&format=xml-verbose")
        .await;
    assert_eq!(codes(&sorted), ["B", "A"]);
    let sorted = c.export("table=name&sort=name&format=xml-verbose").await;
    assert_eq!(codes(&sorted), ["A", "B"]);
    let tsv = c.export("table=name").await;
    assert_eq!(tsv.lines().count(), 2);
    let first: Vec<&str> = tsv.lines().next().expect("a line").split('\t').collect();
    assert_eq!(first.len(), mwsync_sim::schema::NAME.fields.len(), "{tsv}");
    assert_eq!(&first[..2], ["1", "20250101120000"], "{tsv}");
    assert!(first.contains(&"B") && first.contains(&"Zed"), "{tsv}");
}

/// Bad requests get `[ERROR]` replies naming the problem.
#[tokio::test]
async fn bad_exports_are_errors() {
    let sim = sim(1).await;
    let c = Client::new(&sim);
    for (params, says) in [
        ("table=nosuch&format=xml", "Unknown table"),
        ("format=xml", "table"),
        (
            &*format!("table=name&search={}", enc("code = ")),
            "Bad search",
        ),
        (
            &*format!("table=name&search={}", enc("Frob(code)")),
            "Bad search",
        ),
        ("table=name&direction=sideways", "direction"),
        ("table=name&limit=ten", "limit"),
        (
            &*format!("table=name&format={}", enc("[code")),
            "Bad format",
        ),
    ] {
        let (status, body) = c.get(&format!("export/{params}")).await;
        assert_eq!(status, StatusCode::OK, "{params}");
        assert!(
            body.starts_with("[ERROR] ") && body.contains(says),
            "{params}: {body}"
        );
    }
    let (status, body) = c.get("frobnicate/x=1").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "Malformed REST request")
    );
}

// ---------------------------------------------------------------------------------------------
// Import

/// Import with update="true" changes only the given fields of the record with that code, and
/// stamps it from the clock; a new code creates a record.
#[tokio::test]
async fn import_updates_by_code_and_creates() {
    let sim = sim(0).await;
    let (seq, _) = sim.upsert("name", "ACME", &[("name", "Acme Ltd"), ("phone", "111")]);
    sim.advance(60);
    let c = Client::new(&sim);
    let (status, body) = c
        .import(
            "",
            "<table name=\"Name\" update=\"true\"><name><code>ACME</code><phone>555</phone>\
             <creditlimit>1500</creditlimit></name><name><code>NEW</code><name>New Co</name></name></table>",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "created 1; updated 1");
    let acme = sim.record("name", "ACME").expect("still there");
    assert_eq!(acme.seq(), Some(seq));
    assert_eq!(acme.text("name"), Some("Acme Ltd"));
    assert_eq!(acme.text("phone"), Some("555"));
    assert_eq!(acme.text("creditlimit"), Some("1500.00"));
    assert_eq!(acme.text("lastmodifiedtime"), Some("20250101120100"));
    assert_eq!(
        sim.record("name", "NEW").expect("created").text("name"),
        Some("New Co")
    );
    let (_, body) = c
        .import(
            "",
            "<table name=\"Name\"><name><code>ACME</code></name></table>",
        )
        .await;
    assert!(
        body.starts_with("[ERROR] ") && body.contains("Duplicate code"),
        "{body}"
    );
}

/// Import matches codes without regard to letter case, as MoneyWorks does: an update of
/// `acme` changes ACME (which keeps its spelling), and a create of `acme` is a duplicate.
#[tokio::test]
async fn import_matches_codes_in_any_letter_case() {
    let sim = sim(0).await;
    let (seq, _) = sim.upsert("name", "ACME", &[("name", "Acme Ltd")]);
    let c = Client::new(&sim);
    let (_, body) = c
        .import(
            "",
            "<table name=\"Name\"><name><code>acme</code><name>Lower</name></name></table>",
        )
        .await;
    assert!(
        body.starts_with("[ERROR] ") && body.contains("Duplicate code"),
        "{body}"
    );
    assert_eq!(sim.records("name").len(), 1, "nothing was created");
    let (_, body) = c
        .import(
            "",
            "<table name=\"Name\" update=\"true\"><name><code>Acme</code><phone>7</phone></name></table>",
        )
        .await;
    assert_eq!(body, "created 0; updated 1");
    let acme = sim.record("name", "ACME").expect("still filed as ACME");
    assert_eq!((acme.seq(), acme.text("phone")), (Some(seq), Some("7")));
    assert!(sim.record("name", "Acme").is_none());
}

/// Line breaks sent as LF, CRLF or CR are all stored as CR, top level and in lines.
#[tokio::test]
async fn import_stores_line_breaks_as_cr() {
    let sim = sim(0).await;
    let c = Client::new(&sim);
    let (_, body) = c
        .import(
            "",
            "<table name=\"Name\"><name><code>A</code><address1>1 Road&#10;Town</address1>\
             <address2>2 Road&#13;&#10;Town</address2><address3>3 Road&#13;Town</address3></name></table>",
        )
        .await;
    assert_eq!(body, "created 1; updated 0");
    let a = sim.record("name", "A").expect("created");
    for (field, n) in [("address1", 1), ("address2", 2), ("address3", 3)] {
        assert_eq!(
            a.text(field),
            Some(format!("{n} Road\rTown").as_str()),
            "{field}"
        );
    }
}

/// Transactions: creation with work-it-out and normalised numbers, return_seq, update by
/// seqnum, balance checks, and `[ERROR]` once posted.
#[tokio::test]
async fn transactions_import_normalise_and_refuse_posted() {
    let sim = sim(0).await;
    sim.upsert("name", "ACME", &[("name", "Acme Ltd")]);
    let c = Client::new(&sim);
    let invoice = "<table name=\"Transaction\" count=\"1\" start=\"0\" found=\"1\"><transaction>\
        <ourref work-it-out=\"true\"/><transdate>20250101</transdate><type>DII</type>\
        <namecode>ACME</namecode><description>Widgets</description>\
        <subfile name=\"Detail\"><detail><detail.account>4000</detail.account>\
        <detail.net>30</detail.net><detail.tax>4.5</detail.tax><detail.stockqty>1.5</detail.stockqty>\
        <detail.unitprice>20</detail.unitprice><detail.gross work-it-out=\"true\"/></detail></subfile>\
        <gross work-it-out=\"true\"/></transaction></table>";
    let (status, seq) = c.import("/return_seq=true", invoice).await;
    assert_eq!(status, StatusCode::OK);
    let seq: u64 = seq
        .parse()
        .unwrap_or_else(|_| panic!("a sequence number: {seq}"));
    let tx = sim
        .record("transaction", &seq.to_string())
        .expect("created");
    assert_eq!(tx.text("gross"), Some("34.50"));
    assert_eq!(tx.text("status"), Some("U"));
    assert_eq!(tx.text("ourref"), Some("1"));
    let verbose = c
        .export(&format!(
            "table=transaction&search={}&format=xml-verbose",
            enc(&format!("sequencenumber = {seq}"))
        ))
        .await;
    assert!(
        verbose.contains("<detail.stockqty>1.500000</detail.stockqty>"),
        "{verbose}"
    );
    assert!(verbose.contains("<detail.gross>34.50</detail.gross>"));

    let update = format!(
        "<table name=\"Transaction\" update=\"true\"><transaction seqnum=\"{seq}\">\
         <description>Blue widgets</description></transaction></table>"
    );
    let (_, body) = c.import("", &update).await;
    assert_eq!(body, "created 0; updated 1");
    let unbalanced = format!(
        "<table name=\"Transaction\" update=\"true\"><transaction seqnum=\"{seq}\">\
         <gross>40</gross></transaction></table>"
    );
    let (_, body) = c.import("", &unbalanced).await;
    assert!(
        body.starts_with("[ERROR] ") && body.contains("Details don't match gross"),
        "{body}"
    );
    assert_eq!(
        sim.record("transaction", &seq.to_string())
            .and_then(|r| r.text("gross").map(String::from)),
        Some("34.50".to_string())
    );

    let (_, posted) = c.get(&format!("post/seqnum={seq}")).await;
    assert_eq!(posted, "OK");
    let (status, body) = c.import("", &update).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with("[ERROR] ") && body.contains("posted"),
        "{body}"
    );
}

/// An `<import>` of several tables is all or nothing: one bad record stores nothing.
#[tokio::test]
async fn multi_table_import_is_all_or_nothing() {
    let sim = sim(0).await;
    let c = Client::new(&sim);
    let good = "<import><table name=\"Name\"><name><code>N1</code></name></table>\
        <table name=\"Product\"><product><code>P1</code><sellprice>2.5</sellprice></product></table></import>";
    let (_, body) = c.import("?return_seq=true", good).await;
    assert_eq!(body, "1");
    assert_eq!(
        sim.record("product", "P1")
            .and_then(|r| r.text("sellprice").map(String::from)),
        Some("2.500000".to_string())
    );
    for bad in [
        "<import><table name=\"Name\"><name><code>N2</code></name></table>\
         <table name=\"Product\"><product><code>P2</code><sellprice>cheap</sellprice></product></table></import>",
        "<table name=\"Name\"><name><code>N2</code><nosuchfield>1</nosuchfield></name></table>",
        "<table name=\"Name\"><name><code>N2</code><code2>1</code2></name>",
        "<table name=\"Ledger\"><ledger/></table>",
        "<table name=\"Name\"><name><code>ABCDEFGHIJKLMNOP</code></name></table>",
        "<table name=\"Transaction\"><transaction><type>XX</type></transaction></table>",
        "<nonsense/>",
    ] {
        let (status, body) = c.import("", bad).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with("[ERROR] "), "{bad}: {body}");
        assert!(sim.record("name", "N2").is_none(), "{bad} stored a name");
    }
}

/// evaluate answers the clock and arithmetic, after `?` or `/`.
#[tokio::test]
async fn evaluate_reads_the_clock_and_computes() {
    let sim = sim(0).await;
    sim.set_clock(t("20300615083000"));
    let c = Client::new(&sim);
    let (_, now) = c
        .get(&format!(
            "evaluate/expr={}",
            enc("DateToText(Time(), DateFormYYYYMMDDHHMMSS)")
        ))
        .await;
    assert_eq!(now, "20300615083000");
    let (_, sum) = c.get(&format!("evaluate?expr={}", enc("1+2*3"))).await;
    assert_eq!(sum, "7");
    let (_, bad) = c.get(&format!("evaluate/expr={}", enc("1+"))).await;
    assert!(bad.starts_with("[ERROR] "), "{bad}");
}

// ---------------------------------------------------------------------------------------------
// Faults, counters, admin API

/// Each fault kind hits exactly the next N REST requests, then the server is healthy again.
#[tokio::test]
async fn every_fault_kind_applies_to_the_next_requests() {
    let sim = sim(3).await;
    let c = Client::new(&sim);
    let q = "table=name&format=xml-verbose";
    let healthy = c.export(q).await;
    let (status, _) = admin_post(&sim, "faults", r#"{"kind":"licence_limit","count":2}"#).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..2 {
        let (status, body) = c.get(&format!("export/{q}")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            "The server has reached its licensed concurrent users limit.; last diagnostic message: DoConnect failed -1"
        );
    }
    assert_eq!(c.export(q).await, healthy);
    admin_post(&sim, "faults", r#"{"kind":"http_500","count":1}"#).await;
    assert_eq!(
        c.get(&format!("export/{q}")).await,
        (StatusCode::INTERNAL_SERVER_ERROR, String::new())
    );
    admin_post(&sim, "faults", r#"{"kind":"truncate","count":1}"#).await;
    let cut = c.export(q).await;
    assert!(cut.len() < healthy.len() && healthy.starts_with(&cut));
    assert!(xmltree::parse(&cut).is_err());
    admin_post(&sim, "faults", r#"{"kind":"malformed_xml","count":1}"#).await;
    let bad = c.export(q).await;
    assert!(xmltree::parse(&bad).is_err(), "{bad}");
    sim.fail_next(FaultKind::Delay(Duration::from_millis(300)), 1);
    let before = std::time::Instant::now();
    assert_eq!(c.export(q).await, healthy);
    assert!(before.elapsed() >= Duration::from_millis(300));
    let (status, body) = admin_post(&sim, "faults", r#"{"kind":"gremlins","count":1}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("gremlins"));
    assert_eq!(c.export(q).await, healthy);
}

/// The delay fault waits on tokio time, so a paused test finishes at once.
#[tokio::test(start_paused = true)]
async fn delay_fault_uses_tokio_time() {
    let sim = sim(1).await;
    let c = Client::new(&sim);
    sim.fail_next(FaultKind::Delay(Duration::from_secs(3600)), 1);
    let before = tokio::time::Instant::now();
    let body = c.export("table=name&format=xml-verbose").await;
    assert_eq!(attrs(&body).2, "1");
    assert!(before.elapsed() >= Duration::from_secs(3600));
}

/// The request counter counts REST requests per command, faulted and refused ones included.
#[tokio::test]
async fn requests_are_counted_per_command() {
    let sim = sim(1).await;
    let c = Client::new(&sim);
    c.export("table=name&format=xml").await;
    c.export("table=name&format=xml").await;
    c.import(
        "",
        "<table name=\"Name\"><name><code>X</code></name></table>",
    )
    .await;
    c.get("evaluate/expr=1").await;
    reqwest::get(format!("{}/REST//version", sim.base_url()))
        .await
        .expect("reachable");
    c.get("post/seqnum=1").await;
    let json: serde_json::Value =
        serde_json::from_str(&admin_get(&sim, "requests").await).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({"export":2,"import":1,"evaluate":1,"version":1,"other":1,"total":6})
    );
    assert_eq!(sim.requests().total, 6);
}

/// The admin API reads and moves the clock, and creates, updates and deletes records.
#[tokio::test]
async fn admin_api_controls_clock_and_records() {
    let sim = sim(0).await;
    assert_eq!(admin_get(&sim, "clock").await, START);
    let (_, moved) = admin_post(&sim, "clock", r#"{"advance_secs":-86400}"#).await;
    assert_eq!(moved, "20241231120000");
    let (_, set) = admin_post(&sim, "clock", r#"{"set":"20260102030405"}"#).await;
    assert_eq!(set, "20260102030405");
    for bad in [
        r#"{"set":"2026"}"#,
        r#"{}"#,
        r#"{"set":"20260102030405","advance_secs":1}"#,
        "nope",
    ] {
        assert_eq!(
            admin_post(&sim, "clock", bad).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let (status, body) = admin_post(
        &sim,
        "records/name",
        r#"{"key":"ACME","fields":{"phone":"555"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({"sequencenumber":1,"lastmodifiedtime":"20260102030405"})
    );
    let c = Client::new(&sim);
    let search = enc("code = `ACME`");
    let found = c
        .export(&format!("table=name&search={search}&format=xml-verbose"))
        .await;
    assert!(found.contains("<phone>555</phone>"));
    let (status, _) = admin_post(
        &sim,
        "records/name",
        r#"{"key":"ACME","fields":{"nosuch":"1"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin_post(&sim, "records/nosuch", r#"{"key":"A"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let http = reqwest::Client::new();
    let del = http
        .delete(format!("{}/_sim/records/name/ACME", sim.base_url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(del.status(), StatusCode::OK);
    let again = http
        .delete(format!("{}/_sim/records/name/ACME", sim.base_url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let gone = c
        .export(&format!("table=name&search={search}&format=xml"))
        .await;
    assert_eq!(attrs(&gone).2, "0");
}

/// `mwsim serve` prints exactly `listening on http://ADDR` and then serves.
#[tokio::test]
async fn mwsim_serve_prints_its_address_and_serves() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mwsim"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--names",
            "2",
            "--transactions",
            "3",
            "--user",
            "Admin",
            "--password",
            "pw",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mwsim starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("prints within a minute")
        .expect("readable")
        .expect("one line");
    let base = line
        .strip_prefix("listening on ")
        .expect("the documented line");
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let body = reqwest::Client::new()
        .get(format!(
            "{base}/REST/Acme.moneyworks/export/table=transaction&format=xml-verbose"
        ))
        .header(AUTHORIZATION, basic("Admin:Document:pw"))
        .send()
        .await
        .expect("reachable")
        .text()
        .await
        .expect("body");
    assert_eq!(attrs(&body).2, "3");
    child.kill().await.expect("stops");
}

/// Measures export and import of 1,000 records (run with `--ignored --nocapture`).
#[tokio::test]
#[ignore = "timing figures; run on demand"]
async fn thousand_records_export_and_import_quickly() {
    let sim = Sim::builder()
        .names(1000)
        .transactions(1000)
        .login("Admin", "secret")
        .start()
        .await;
    let c = Client::new(&sim);
    for table in ["name", "transaction"] {
        let before = std::time::Instant::now();
        let body = c.export(&format!("table={table}&format=xml-verbose")).await;
        let export = before.elapsed();
        assert_eq!(attrs(&body).2, "1000");
        let before = std::time::Instant::now();
        // Names are updated in place by code; transactions (some posted) are created anew.
        let (update, expect) = match table {
            "name" => (
                body.replacen("<table name=", "<table update=\"true\" name=", 1),
                "created 0; updated 1000",
            ),
            _ => (body.clone(), "created 1000; updated 0"),
        };
        let (_, reply) = c.import("", &update).await;
        let import = before.elapsed();
        let before = std::time::Instant::now();
        xmltree::parse(&update).expect("well-formed");
        println!(
            "{table}: parsing the import body alone {:?}",
            before.elapsed()
        );
        assert_eq!(reply, expect, "{}", &reply[..reply.len().min(300)]);
        println!(
            "{table}: export of 1000 records {export:?} ({} bytes), import {import:?}",
            body.len()
        );
    }
}

/// A server loaded from export files serves exactly those records, fitted to the schema.
#[tokio::test]
async fn serves_records_loaded_from_export_files() {
    let spec = mwsync_sim::data::GenSpec {
        seed: 11,
        names: 4,
        transactions: 6,
        ..Default::default()
    };
    let ds = mwsync_sim::data::generate(&spec);
    let dir = tempfile::tempdir().expect("temp dir");
    mwsync_sim::data::write_dir(&ds, dir.path()).expect("written");
    let sim = Sim::builder()
        .data_dir(dir.path())
        .login("Admin", "secret")
        .start()
        .await;
    let c = Client::new(&sim);
    let names = c.export("table=name&format=xml-verbose").await;
    let (_, records) = mwsync_sim::data::parse_export(&names).expect("parses");
    assert_eq!(records, ds.tables["Name"]);
    let tx = c.export("table=transaction&format=xml-verbose").await;
    assert_eq!(attrs(&tx).2, "6");
}

/// `Sim::url` names the document so that a client appending a command reaches it.
#[tokio::test]
async fn sim_url_is_the_document_rest_url() {
    let sim = Sim::builder()
        .names(2)
        .document("Sub Folder/Acme.moneyworks")
        .login("Admin", "pw")
        .start()
        .await;
    assert_eq!(
        sim.url(),
        format!("{}/REST/Sub%20Folder%2FAcme.moneyworks", sim.base_url())
    );
    let body = reqwest::Client::new()
        .get(format!("{}/export/table=name&format=xml", sim.url()))
        .header(AUTHORIZATION, basic("Admin:Document:pw"))
        .send()
        .await
        .expect("reachable")
        .text()
        .await
        .expect("body");
    assert_eq!(attrs(&body).2, "2");
}

// ---------------------------------------------------------------------------------------------
// Breadth: every table, encodings, schema functions, Find, Today, folders, work-it-out

/// A document with a little of every table, the default generated sizes of the others.
async fn full_sim() -> Sim {
    Sim::builder()
        .seed(5)
        .names(6)
        .accounts(12)
        .products(5)
        .jobs(3)
        .transactions(12)
        .document("Acme.moneyworks")
        .login("Admin", "secret")
        .clock(t(START))
        .start()
        .await
}

/// The lines of a verbose export that an update may change: everything but the stamps and
/// the numbers the server gives Detail lines.
fn comparable(xml: &str) -> Vec<String> {
    xml.lines()
        .skip(2)
        .filter(|l| !l.contains("<lastmodifiedtime") && !l.contains("<detail.sequencenumber"))
        .map(str::to_string)
        .collect()
}

/// Every one of the 18 tables exports in verbose XML, and one record of each goes back in
/// through an update import unchanged (but for its stamp).
#[tokio::test]
async fn every_table_exports_and_round_trips_one_record_through_update() {
    let sim = full_sim().await;
    sim.advance(60);
    let c = Client::new(&sim);
    for table in mwsync_sim::schema::TABLES {
        // An unposted transaction can be updated; a posted one is refused by design.
        let search = if table.name == "Transaction" {
            format!("&search={}", enc("status=`U`"))
        } else {
            String::new()
        };
        let before = c
            .export(&format!(
                "table={}{search}&limit=1&format=xml-verbose",
                table.element
            ))
            .await;
        let r = root(&before);
        assert_eq!(r.attr("name"), Some(table.name), "{before}");
        assert_eq!(
            r.children.len(),
            1,
            "{} has a record to round-trip",
            table.name
        );
        let seq = r.children[0]
            .child("sequencenumber")
            .map(|s| s.text.clone())
            .expect("verbose exports carry the sequence number");
        let body = before.replacen("<table name=", "<table update=\"true\" name=", 1);
        let (status, reply) = c.import("", &body).await;
        assert_eq!(
            (status, reply.as_str()),
            (StatusCode::OK, "created 0; updated 1"),
            "{}",
            table.name
        );
        let after = c
            .export(&format!(
                "table={}&search={}&format=xml-verbose",
                table.element,
                enc(&format!("sequencenumber={seq}"))
            ))
            .await;
        let (a, b) = (comparable(&after), comparable(&before));
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(
            a.len() == b.len() && first.is_none(),
            "{}: line {first:?} differs: {:?} vs {:?}",
            table.name,
            first.map(|i| &a[i]),
            first.map(|i| &b[i])
        );
        assert!(
            after.contains("<lastmodifiedtime system=\"true\">20250101120100<"),
            "{} was stamped anew",
            table.name
        );
    }
}

/// `+` and `%20` decode as spaces and `%2B` as a plus, in the path form and the query form,
/// for `search`, `format` and `expr`, in requests built by hand.
#[tokio::test]
async fn plus_is_a_space_and_percent_2b_a_plus_in_both_forms() {
    let sim = sim(0).await;
    sim.upsert("name", "PINN", &[("name", "Pinnacle Roofing & Co")]);
    sim.upsert("name", "APLUS", &[("name", "A+B Ltd")]);
    let c = Client::new(&sim);
    for sep in ["/", "?"] {
        let found = |xml: String| root(&xml).attr("found").unwrap_or_default().to_string();
        let search = |q: &str| format!("export{sep}table=name&format=xml&search={q}");
        for spaced in [
            "name%3D%60Pinnacle+Roofing+%26+Co%60",
            "name%3D%60Pinnacle%20Roofing%20%26%20Co%60",
            "left(code,+1)%3D%60P%60",
        ] {
            let (_, body) = c.get(&search(spaced)).await;
            assert_eq!(found(body.clone()), "1", "{sep} {spaced}: {body}");
        }
        let (_, plus) = c.get(&search("name%3D%60A%2BB+Ltd%60")).await;
        assert_eq!(found(plus), "1", "%2B is a plus");
        let (_, space) = c.get(&search("name%3D%60A+B+Ltd%60")).await;
        assert_eq!(found(space), "0", "+ is a space, not a plus");
        let (_, format) = c
            .get(&format!(
                "export{sep}table=name&search=code%3D%60APLUS%60&format=%5Bcode%5D+%5Bname%5D%2B%5Cn"
            ))
            .await;
        assert_eq!(format, "APLUS A+B Ltd+\n", "{sep} format");
        let (_, expr) = c
            .get(&format!("evaluate{sep}expr=Len(%22a+b%22)+%2B+1"))
            .await;
        assert_eq!(expr, "4", "{sep} expr: `a b` has 3 characters, plus 1");
        let (_, joined) = c
            .get(&format!("evaluate{sep}expr=%22x%22%2B%22+%22%2B%22y%22"))
            .await;
        assert_eq!(joined, "x y", "{sep} expr");
    }
}

/// The schema functions answer from the simulator's schema, over HTTP.
#[tokio::test]
async fn schema_functions_describe_the_document() {
    let sim = sim(0).await;
    let c = Client::new(&sim);
    let eval = |expr: &str| format!("evaluate/expr={}", enc(expr));
    let (_, files) = c.get(&eval("GetDatabaseFiles()")).await;
    let files: Vec<&str> = files.split('\n').collect();
    let want: Vec<&str> = mwsync_sim::schema::TABLES.iter().map(|t| t.name).collect();
    assert_eq!(files, want);
    let (_, fields) = c.get(&eval("GetDatabaseFields(\"taxrate\")")).await;
    let want: Vec<&str> = mwsync_sim::schema::TAXRATE
        .fields
        .iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(fields.split('\n').collect::<Vec<_>>(), want);
    let (_, detail) = c.get(&eval("GetDatabaseFields(\"Detail\")")).await;
    assert!(detail.split('\n').any(|f| f == "stocklocation"), "{detail}");
    for (args, size) in [
        ("\"transaction\", \"namecode\"", "11"),
        ("\"name\", \"colour\"", "SHORT"),
        ("\"transaction\", \"transdate\"", "DATE"),
        ("\"transaction\", \"timeposted\"", "TIME"),
        ("\"name\", \"hold\"", "BOOLEAN"),
        ("\"detail\", \"orderqty\"", "DOUBLE"),
        ("\"Login\", \"Initials\"", "3"),
    ] {
        let (_, got) = c.get(&eval(&format!("GetDatabaseFieldSize({args})"))).await;
        assert_eq!(got, size, "{args}");
    }
    let (_, bad) = c.get(&eval("GetDatabaseFields(\"ledger\")")).await;
    assert!(
        bad.starts_with("[ERROR]") && bad.contains("ledger"),
        "{bad}"
    );
}

/// `Find` returns a field or expression of the first records a search finds, in a sort
/// order, or counts them; several tables can be probed in one `evaluate`.
#[tokio::test]
async fn find_probes_tables_in_one_evaluate() {
    let sim = sim(0).await;
    sim.upsert("name", "ACME", &[("phone", "555 0100")]);
    sim.advance(10);
    sim.upsert("name", "BETA", &[("phone", "555 0200")]);
    sim.upsert("name", "ALPHA", &[("phone", "555 0300")]);
    let c = Client::new(&sim);
    let eval = |expr: &str| format!("evaluate/expr={}", enc(expr));
    for (expr, want) in [
        ("Find(\"name.phone\", \"code = `A@`\")", "555 0100"),
        (
            "Find(\"name.code\", \"code = `A@`\", 5, \"|\")",
            "ACME|ALPHA",
        ),
        (
            "Find(\"name.code\", \"1\", 2, \",\", \"sequencenumber-\")",
            "ALPHA,BETA",
        ),
        ("Find(\"name\", \"1\")", "3"),
        ("Find(\"name\", \"code = `Z@`\")", "0"),
        (
            "Find(\"name.DateToText(lastmodifiedtime, DateFormYYYYMMDDHHMMSS)\", \"1\", 1, \",\", \"lastmodifiedtime-\")",
            "20250101120010",
        ),
        (
            "DateToText(Time(), DateFormYYYYMMDDHHMMSS) + \"|\" + Find(\"name\", \"LastModifiedTime >= TextToDate(\\\"20250101120005\\\", DateFormYYYYMMDDHHMMSS)\") + \"|\" + Find(\"transaction\", \"1\")",
            "20250101120010|2|0",
        ),
    ] {
        let (_, got) = c.get(&eval(expr)).await;
        assert_eq!(got, want, "{expr}");
    }
    let (_, bad) = c.get(&eval("Find(\"nosuch.code\", \"1\")")).await;
    assert!(
        bad.starts_with("[ERROR]") && bad.contains("nosuch"),
        "{bad}"
    );
}

/// `Today()` is a date (`YYYYMMDD`), not a date-time, and compares with date fields.
#[tokio::test]
async fn today_is_a_date() {
    let sim = sim(0).await;
    sim.set_clock(t("20300615083000"));
    let c = Client::new(&sim);
    let (_, today) = c.get(&format!("evaluate/expr={}", enc("Today()"))).await;
    assert_eq!(today, "20300615");
    let (_, tomorrow) = c
        .get(&format!("evaluate/expr={}", enc("Today() + 1")))
        .await;
    assert_eq!(tomorrow, "20300616");
    let (_, cmp) = c
        .get(&format!("evaluate/expr={}", enc("Today() < Time()")))
        .await;
    assert_eq!(cmp, "1");
}

/// A format prints fields with the decimals they are stored with, and refuses a subfile
/// field by name.
#[tokio::test]
async fn formats_keep_stored_decimals_and_refuse_subfile_fields() {
    let sim = full_sim().await;
    let c = Client::new(&sim);
    let body = c
        .export(&format!(
            "table=transaction&limit=2&format={}",
            enc("[gross]|[exchangerate]|[transdate]\\n")
        ))
        .await;
    for line in body.lines() {
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts[0].split('.').nth(1).map(str::len), Some(2), "{line}");
        assert_eq!(parts[1], "1.000000", "{line}");
        assert_eq!(parts[2].len(), 8, "{line}");
    }
    let (_, refused) = c
        .get(&format!(
            "export/table=transaction&format={}",
            enc("[detail.tax]")
        ))
        .await;
    assert!(
        refused.starts_with("[ERROR]")
            && refused.contains("detail.tax")
            && refused.contains("Detail subfile"),
        "{refused}"
    );
}

/// A folder login addresses the document as `Folder%2fAcme.moneyworks`; a wrong folder in
/// the path names no document.
#[tokio::test]
async fn folder_path_form_names_the_document() {
    let sim = Sim::builder()
        .names(2)
        .document("Acme.moneyworks")
        .login("Admin", "secret")
        .folder("Folder", "fpw")
        .start()
        .await;
    let http = reqwest::Client::new();
    let get = |doc: &str| {
        http.get(format!(
            "{}/REST/{doc}/export/table=name&format=xml",
            sim.base_url()
        ))
        .header(AUTHORIZATION, basic("Admin:Document:secret"))
        .header(AUTHORIZATION, basic("Folder:Datacentre:fpw"))
        .send()
    };
    for doc in [
        "Folder%2fAcme.moneyworks",
        "Folder%2FAcme.moneyworks",
        "Acme.moneyworks",
    ] {
        let resp = get(doc).await.expect("reachable");
        assert_eq!(resp.status(), StatusCode::OK, "{doc}");
        let body = resp.text().await.expect("body");
        assert_eq!(attrs(&body).2, "2", "{doc}: {body}");
    }
    let resp = get("Other%2fAcme.moneyworks").await.expect("reachable");
    assert_eq!(resp.text().await.expect("body"), "DoConnect failed -43");
}

/// Work-it-out fills the contra account, a line's tax code from its account and its tax
/// from the TaxRate table's rate on the transaction date (GST 12.5 % before 2010-10-01,
/// 15 % after).
#[tokio::test]
async fn work_it_out_takes_tax_from_the_rate() {
    let sim = full_sim().await;
    let c = Client::new(&sim);
    for (date, tax, gross) in [
        ("20240301", "15.00", "115.00"),
        ("20090301", "12.50", "112.50"),
    ] {
        let body = format!(
            "<table name=\"Transaction\"><transaction><type>CR</type><transdate>{date}</transdate>\
             <contra work-it-out=\"true\"/><subfile name=\"Detail\"><detail>\
             <detail.account>4000</detail.account><detail.taxcode work-it-out=\"true\"/>\
             <detail.net>100</detail.net><detail.tax work-it-out=\"true\"/>\
             <detail.gross work-it-out=\"true\"/></detail></subfile>\
             <gross work-it-out=\"true\"/></transaction></table>"
        );
        let (_, seq) = c.import("?return_seq=true", &body).await;
        let seq: u64 = seq
            .parse()
            .unwrap_or_else(|_| panic!("a sequence number: {seq}"));
        let rec = sim
            .record("transaction", &seq.to_string())
            .expect("imported");
        assert_eq!(rec.text("contra"), Some("1000"), "the first bank account");
        assert_eq!(rec.text("gross"), Some(gross));
        assert_eq!(rec.text("taxamount"), Some(tax));
        let sub = mwsync_sim::schema::TRANSACTION
            .subfile
            .as_ref()
            .expect("Detail");
        let line = &rec.rows()[0];
        let get = |f: &str| line.get(sub.index(f).expect("detail field")).to_string();
        assert_eq!(
            (
                get("detail.taxcode"),
                get("detail.tax"),
                get("detail.gross")
            ),
            ("G".to_string(), tax.to_string(), gross.to_string())
        );
        assert_eq!(get("detail.transactiontype"), "CR");
    }
    let unknown = "<table name=\"Transaction\"><transaction><type>CR</type><subfile name=\"Detail\">\
                   <detail><detail.account>4000</detail.account><detail.taxcode>Q</detail.taxcode>\
                   <detail.net>1</detail.net><detail.tax work-it-out=\"true\"/></detail></subfile>\
                   </transaction></table>";
    let (_, reply) = c.import("", unknown).await;
    assert!(
        reply.starts_with("[ERROR]") && reply.contains("tax code `Q`"),
        "{reply}"
    );
}

/// An import naming any field of the Appendix A lists, Detail ones included, is accepted.
#[tokio::test]
async fn imports_accept_every_appendix_field() {
    let sim = full_sim().await;
    let c = Client::new(&sim);
    let body = "<table name=\"Transaction\"><transaction><type>CR</type><analysis>A1</analysis>\
                <user8>x</user8><freightcode>F</freightcode><subfile name=\"Detail\"><detail>\
                <detail.account>4000</detail.account><detail.net>10</detail.net>\
                <detail.orderqty>2</detail.orderqty><detail.backorderqty>1</detail.backorderqty>\
                <detail.stocklocation>Main</detail.stocklocation><detail.serialnumber>SN1</detail.serialnumber>\
                <detail.jobcode>J00001</detail.jobcode><detail.dept>HQ</detail.dept></detail></subfile>\
                </transaction></table>";
    let (_, reply) = c.import("", body).await;
    assert_eq!(reply, "created 1; updated 0");
}
