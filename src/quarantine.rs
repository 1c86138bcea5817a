//! The quarantine: records MoneyWorks holds that mwsync cannot file (they cannot be parsed,
//! keyed or written as XML). Each is held back with its table, its sequence number or key,
//! and the reason, so that one bad record stops nothing else; the list is reported in the
//! log, on `/status` and in `.mwsync/status.toml` on `main`. A record leaves the quarantine
//! when it is filed normally (MoneyWorks fixed it) or vanishes. It owns the list and its
//! file form; it must not do I/O or decide when records are read again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One record held back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantinedRecord {
    /// The table, by internal name.
    pub table: String,
    /// Its sequence number, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seq: Option<u64>,
    /// Its code, when it could be read (code-keyed tables).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    /// Why it cannot be filed, and what to correct in MoneyWorks.
    pub reason: String,
}

impl QuarantinedRecord {
    /// How the record is named in messages: `Name ACME (#12)`, `Transaction #40`.
    pub fn name(&self) -> String {
        match (&self.key, self.seq) {
            (Some(k), Some(s)) => format!("{} {k} (#{s})", self.table),
            (Some(k), None) => format!("{} {k}", self.table),
            (None, Some(s)) => format!("{} #{s}", self.table),
            (None, None) => format!("{} (a record without sequence number or key)", self.table),
        }
    }

    /// What identifies the record across reads: its sequence number, else its key, else its
    /// reason (a record with neither cannot be told apart from another such record).
    fn identity(&self) -> (String, String) {
        let id = match (self.seq, &self.key) {
            (Some(s), _) => format!("#{s}"),
            (None, Some(k)) => format!("key {k}"),
            (None, None) => format!("reason {}", self.reason),
        };
        (self.table.clone(), id)
    }
}

/// The records held back, in a fixed order (table, then identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quarantine {
    records: BTreeMap<(String, String), QuarantinedRecord>,
}

impl Quarantine {
    /// The quarantine `entries` describe (as read from `main`).
    pub fn from_entries(entries: Vec<QuarantinedRecord>) -> Quarantine {
        let mut q = Quarantine::default();
        for e in entries {
            q.records.insert(e.identity(), e);
        }
        q
    }

    /// Holds `record` back; true when that is news (a new record, or a new reason).
    pub fn hold(&mut self, record: QuarantinedRecord) -> bool {
        let id = record.identity();
        if self.records.get(&id) == Some(&record) {
            return false;
        }
        self.records.insert(id, record);
        true
    }

    /// Lets the record `seq` of `table` go (it was filed, or vanished); true when it was held.
    pub fn release(&mut self, table: &str, seq: u64) -> Option<QuarantinedRecord> {
        self.records.remove(&(table.to_string(), format!("#{seq}")))
    }

    /// Lets the record with code `key` of `table` go, when it is held by key only.
    pub fn release_key(&mut self, table: &str, key: &str) -> Option<QuarantinedRecord> {
        self.records
            .remove(&(table.to_string(), format!("key {key}")))
    }

    /// Every record held back, in order.
    pub fn entries(&self) -> Vec<QuarantinedRecord> {
        self.records.values().cloned().collect()
    }

    /// The sequence numbers held back in `table`.
    pub fn seqs(&self, table: &str) -> Vec<u64> {
        self.records
            .values()
            .filter(|r| r.table == table)
            .filter_map(|r| r.seq)
            .collect()
    }

    /// How many records are held back.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nothing is held back.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(seq: Option<u64>, key: Option<&str>, reason: &str) -> QuarantinedRecord {
        QuarantinedRecord {
            table: "Name".into(),
            seq,
            key: key.map(str::to_string),
            reason: reason.into(),
        }
    }

    /// A record is held once per identity; a new reason is news, the same one is not; it
    /// is released by sequence number or key.
    #[test]
    fn holds_and_releases_by_identity() {
        let mut q = Quarantine::default();
        assert!(q.hold(held(Some(3), Some("ACME"), "bad phone")));
        assert!(!q.hold(held(Some(3), Some("ACME"), "bad phone")));
        assert!(q.hold(held(Some(3), Some("ACME"), "bad fax")));
        assert!(q.hold(held(None, Some("BETA"), "no sequence number")));
        assert_eq!(q.len(), 2);
        assert_eq!(q.seqs("Name"), vec![3]);
        assert_eq!(
            q.release("Name", 3).map(|r| r.reason),
            Some("bad fax".into())
        );
        assert!(q.release_key("Name", "BETA").is_some());
        assert!(q.is_empty());
        assert_eq!(held(Some(3), Some("ACME"), "x").name(), "Name ACME (#3)");
        assert_eq!(held(Some(9), None, "x").name(), "Name #9");
    }
}
