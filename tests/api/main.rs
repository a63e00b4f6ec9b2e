//! The workspace integration tests: the real server over HTTPS, on SQLite and on PostgreSQL.
//! Each `store_test!` runs its body once per backend, each time on a fresh database.

mod helpers;

mod audit;
mod authorization;
mod bounces;
mod campaigns;
mod communications;
mod companies;
mod concurrency;
mod contacts;
mod data_requests;
mod decisions;
mod health;
mod input;
mod journey;
mod ledger;
mod openapi;
mod preferences;
mod sessions;
mod signups;
mod sms;
mod store;
mod topics;
mod unsubscribe;
mod users;
