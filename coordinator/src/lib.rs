//! The sweep coordinator: expands sweep files into tasks, leases them to workers over gRPC,
//! validates and stores every level they report in SQLite, and aggregates the results.
//!
//! # Layout
//!
//! The crate is a library (everything below) and a thin binary (`main.rs`, the `coordinator`
//! CLI). Nothing here knows how tasks are trained: only the CLI's `run` command links the
//! worker crate, behind the `local-run` feature. What people look at (statistics, figures,
//! exports, the report) is the `analysis` crate's; this crate schedules and stores.
//!
//! - [`server`]: [`serve`] / [`RunningServer`]: the tonic server with the coordinator and
//!   gRPC health services, the background expiry of overdue leases, graceful shutdown. Tests
//!   and embedded runs start one in-process on a listener they bind.
//! - [`auth`]: the server side of the shared bearer token (the client side, and TLS for
//!   clients, live in `proto::auth`, shared with the workers).
//! - [`service`]: the `lottery.v1.Coordinator` handlers: checks a request, then calls the
//!   store; the only place that maps to `pb::*` messages and gRPC status codes
//!   ([`service::wire`] for the operator and results RPCs). Never blocks: store calls and
//!   report validation run on tokio's blocking pool.
//! - [`store`]: SQLite (WAL, `synchronous=FULL`): schema and version, sweeps and tasks,
//!   workers and leases, stored levels, and the read queries behind status and results.
//!   Writes commit before the RPC is acknowledged. Speaks the domain (shared and analysis
//!   types, [`store::StoreError`]), never the wire.
//! - [`submit`]: what submitting a (possibly changed) sweep file means: add only new tasks.
//! - [`validate`]: the checks a level report must pass (level order, masks, exact kept
//!   counts, nesting, finite metrics, graph figures recomputed with `shared::graph`).
//! - [`render`]: text renderings of the status report and of a sweep's plan for the CLI.
//! - [`sweep_data`]: where the results commands read a sweep's data set from (the database
//!   or the `TaskLevels` / `TicketMasks` RPCs), for the `analysis` crate.
//! - [`http`]: the live report page of `serve --http`.
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

pub mod admission;
pub mod auth;
pub mod bench;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod fleet;
pub mod http;
pub mod render;
pub mod server;
pub mod service;
pub mod store;
pub mod submit;
pub mod sweep_data;
pub mod testkit;
pub mod validate;

pub use config::{ServerConfig, TlsIdentity};
pub use server::{serve, RunningServer, ServeError};
