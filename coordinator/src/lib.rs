//! The sweep coordinator: expands sweep files into tasks, leases them to workers over gRPC,
//! validates and stores every level they report in SQLite, and aggregates the results.
//!
//! # Layout
//!
//! The crate is a library (everything below) and a thin binary (`main.rs`, the `coordinator`
//! CLI). Nothing here knows how tasks are trained: only the CLI's `run` command links the
//! worker crate.
//!
//! - [`server`]: [`serve`] / [`RunningServer`]: the tonic server with the coordinator and
//!   gRPC health services, the background expiry of overdue leases, graceful shutdown. Tests
//!   and embedded runs start one in-process on a listener they bind.
//! - [`auth`]: the server side of the shared bearer token (the client side, and TLS for
//!   clients, live in `proto::auth`, shared with the workers).
//! - [`service`]: the `lottery.v1.Coordinator` handlers: checks a request, then calls the
//!   store. Never blocks: store calls and report validation run on tokio's blocking pool.
//! - [`store`]: SQLite (WAL, `synchronous=FULL`): schema and version, sweeps and tasks,
//!   workers and leases, stored levels, and the read queries behind status and results.
//!   Writes commit before the RPC is acknowledged.
//! - [`submit`]: what submitting a (possibly changed) sweep file means: add only new tasks.
//! - [`validate`]: the checks a level report must pass (level order, masks, exact kept
//!   counts, nesting, finite metrics, graph figures recomputed with `shared::graph`).
//! - [`aggregate`]: pure per-grid-point aggregates over stored rows (fractions split,
//!   connected, degraded, active weights at the split, test accuracy).
//! - [`convert`]: `proto` messages <-> `shared` types, and the stored mask blobs.
//! - [`render`]: text / CSV / JSON renderings for the CLI.
//! - Results people can look at ([docs/results.md](../../docs/results.md)): [`stats`] (Wilson
//!   intervals, per-task and per-level statistics, grouping by grid axes; pure), [`ticket`]
//!   (a ticket's neurons and weights classified, GraphML / DOT), [`plot`] (SVG / PNG figures
//!   with an embedded font), [`export`] (long-format CSV / JSON / Parquet), [`tables`],
//!   [`report`] (the self-contained HTML page), [`http`] (the live page of `serve --http`),
//!   [`sweep_data`] (what they read: `TaskLevels` / `TicketMasks`, or the database).
//! - [`client`]: connecting to a coordinator with the API's message limits, a token and TLS.
//! - [`testkit`]: synthetic workers (valid masks and metrics without training) for tests,
//!   benchmarks and smoke runs; [`bench`]: the round-trip benchmark built on it.
//! - [`config`], [`clock`], [`error`]: settings, time, and errors mapped to gRPC codes.
//!
//! # Life of a task
//!
//! `SubmitSweep` stores a sweep's tasks as `pending`. `LeaseTask` hands the next one to a
//! worker with a deadline and the level to resume from (with that level's previous masks).
//! The worker heartbeats to extend the deadline and calls `ReportLevel` once per level,
//! then `CompleteTask` (or `FailTask`, or `ReturnLease` when it shuts down: no attempt
//! counted). The expiry loop returns tasks of overdue leases to
//! `pending`; a task that failed `max_attempts` times is `failed`. Any call made with an
//! ended, expired or reassigned lease is refused and changes nothing.

pub mod aggregate;
pub mod auth;
pub mod bench;
pub mod client;
pub mod clock;
pub mod config;
pub mod convert;
pub mod error;
pub mod render;
pub mod server;
pub mod service;
pub mod store;
pub mod submit;
pub mod testkit;
pub mod validate;

// Results people can look at: statistics, figures, exports, the report page.
pub mod export;
pub mod http;
pub mod plot;
pub mod report;
pub mod stats;
pub mod sweep_data;
pub mod tables;
pub mod ticket;

pub use config::{ServerConfig, TlsIdentity};
pub use server::{serve, RunningServer, ServeError};
