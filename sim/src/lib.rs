//! The mwsync simulator: a fake MoneyWorks Datacentre with a controllable clock, a git
//! smart-HTTP server, and the dataset generator and anonymizer. The engine crate never
//! depends on this one.
#![deny(missing_docs)]

pub mod data;
pub mod export_xml;
pub mod fake;
pub mod gitserve;
pub mod schema;
