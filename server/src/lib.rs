//! `assent-server`: the HTTPS API, the store and the command line of the Assent CRM server.
//!
//! See ARCHITECTURE.md at the repository root for the map of this crate.

pub mod api;
pub mod audit;
pub mod auth;
pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod config;
pub mod evidence;
pub mod html;
pub mod mail;
pub mod outbound;
pub mod public;
pub mod service;
pub mod sms;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod tls;
