//! mwsync keeps a git repository and a MoneyWorks Datacentre document in step, both ways.
//!
//! The engine talks to the outside only through two traits, [`moneyworks::MoneyWorks`] and
//! [`store::Store`]; everything between them is plain functions over owned data.
#![deny(missing_docs)]

pub mod cache;
pub mod commit_message;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod events;
pub mod fullsync;
pub mod http;
pub mod moneyworks;
pub mod mwtime;
pub mod pull;
pub mod query;
pub mod record;
pub mod retry;
pub mod scan;
pub mod state;
pub mod store;
pub mod writeback;
pub mod xmltree;
pub mod xmlwrite;
