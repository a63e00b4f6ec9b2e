//! `assent-shared`: the API types and domain primitives that the server and the desktop app both
//! use.
//!
//! Architecture invariant: this crate does no I/O (no files, no network, no clock reads) so that
//! either side can use it anywhere, including inside the pure decision engine.

pub mod api;
pub mod domain;
pub mod fingerprint;
pub mod ledger;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod validate;
pub mod whole;
