//! The mwsync simulator: a fake MoneyWorks Datacentre with a controllable clock, a git
//! smart-HTTP server, and the dataset generator and anonymizer. It stands on its own: its
//! date-times, XML reader and writer, record model, schema, error classes and the repository
//! layout its tests expect are its own, written from the MoneyWorks facts and mwsync's
//! documented layout, never taken from the engine, so that the tests' oracle cannot share an
//! engine bug. The engine crate never depends on this one either.
#![deny(missing_docs)]

pub mod data;
pub mod error;
pub mod export_xml;
pub mod fake;
pub mod gitserve;
pub mod layout;
pub mod record;
pub mod schema;
pub mod time;
pub mod xml;
