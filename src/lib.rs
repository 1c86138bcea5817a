//! mwsync keeps a git repository and a MoneyWorks Datacentre document in step, both ways.
//!
//! The engine talks to the outside only through two traits, [`moneyworks::MoneyWorks`] and
//! [`store::Store`]; everything between them is plain functions over owned data.
//!
//! Where things are:
//! - the daemon: [`daemon`] (the loop and production wiring), [`cycle`] (one cycle's order),
//!   [`engine`] (the `Engine` value, its state, the guard on `main`, its requests);
//! - the work: [`pull`] (polling; its `stage` decides what a page changes),
//!   [`writeback`] (the `changes` branch), [`scan`] (fingerprint scans), [`fullsync`],
//!   [`quarantine`] (records held back);
//! - the data: [`record`] (model, keys, paths, diffs), [`state`] (the marker),
//!   [`config`], [`query`] (what is asked of MoneyWorks), [`commit_message`];
//! - the edges: [`moneyworks`], [`store`], [`cache`], [`http`] (status page, SSE, health,
//!   metrics), [`events`], [`status`] (the board behind `/status`), [`metrics`],
//!   [`progress`], [`doctor`] (checks before running), [`xmltree`] and [`xmlwrite`]
//!   (reading and writing XML), [`retry`], [`mwtime`], [`error`].
#![deny(missing_docs)]

pub mod cache;
pub mod commit_message;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod events;
pub mod fullsync;
pub mod http;
pub mod memory;
pub mod metrics;
mod migrate;
pub mod moneyworks;
pub mod mwtime;
pub mod progress;
pub mod pull;
pub mod quarantine;
pub mod query;
pub mod record;
mod recordxml;
pub mod retry;
pub mod scan;
pub mod state;
pub mod status;
pub mod store;
pub mod writeback;
pub mod xmltree;
pub mod xmlwrite;
