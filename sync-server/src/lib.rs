//! # gridlink-sync-server
//!
//! The Gridlink sync server: enrols devices, authenticates them, and runs the one-request
//! sync of `gridlink_shared::protocol` over a SQLite store; plus the admin operations behind
//! the `gridlink-server` CLI (init, demo data, users, codes, devices, roster import).
//!
//! Data flow of one `POST /v1/sync`:
//! [`api`] (auth extractor, CBOR decode) -> [`store::Store::sync`], which in one SQLite
//! transaction validates and stores each pushed change (`store/push.rs`, using
//! `gridlink_shared::validate`), appends it to the gapless log of every scope of its
//! document, and builds the pull page from those logs (`store/pull.rs`) -> commit -> CBOR
//! reply. An ack therefore always means "durable on the server".
//!
//! Supervisors read the same store through the [`ledgers`] (XLSX/CSV, written by [`ledger`]),
//! computed from the rows of `gridlink_shared::figures` that every document write keeps.
//!
//! `serve --tls-cert --tls-key` speaks HTTPS itself ([`tls`]); the connection cap and the
//! header-read, idle and handshake timeouts apply either way.
//!
//! The roster is read from the database on every request, so the admin CLI (another
//! process on the same data directory) changes scopes and revokes devices with immediate
//! effect.

pub mod api;
pub mod console;
pub mod elink;
pub mod error;
pub mod ledger;
pub mod ledgers;
pub mod secrets;
pub mod store;
pub mod tls;

pub use api::{AppState, Limits, router, serve, serve_tls};
pub use error::ApiError;
pub use store::{AuthedDevice, PushLimits, SqliteStore, Store, StoreError};
