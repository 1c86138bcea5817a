//! The fake's replies as the engine reads them: what the simulator writes with its own XML
//! writer must parse with the engine's reply parser into the same records, byte for byte in
//! canonical form. Neither side's code computes the other's expectation.

use mwsync::moneyworks::xml::parse_export;
use mwsync_sim::layout;

use crate::support::{PASSWORD, USER, sim_builder};

/// A verbose export of generated names and transactions parses with the engine's parser, and
/// each record's engine canonical form equals the simulator's.
#[tokio::test]
async fn verbose_exports_parse_into_the_same_records() {
    let sim = sim_builder().names(6).transactions(12).start().await;
    let client = reqwest::Client::new();
    for table in ["Name", "Transaction", "Account"] {
        let body = client
            .get(format!(
                "{}/export/table={table}&format=xml-verbose",
                sim.url()
            ))
            .basic_auth(format!("{USER}:Document"), Some(PASSWORD))
            .send()
            .await
            .expect("export request")
            .text()
            .await
            .expect("body");
        let info = mwsync::record::table_info(table).expect("known");
        let doc = parse_export(&body, Some(info)).expect("the engine parses the fake's export");
        let sims = sim.records(table);
        assert_eq!(doc.records.len(), sims.len(), "{table} count");
        for (engine, ours) in doc.records.iter().zip(&sims) {
            assert_eq!(
                String::from_utf8(engine.canonical_file().expect("writable")).expect("utf-8"),
                layout::canonical_xml(ours).expect("writable"),
                "{table} record {:?}",
                ours.seq()
            );
        }
    }
}
