//! What people look at: the statistics, tables, exports, figures and report of a sweep,
//! computed from one plain data set ([`SweepData`]: every task's settings, state and stored
//! per-level metrics, plus one ticket's masks on demand).
//!
//! Where the data set comes from is not this crate's business: the coordinator reads it from
//! its database or from the `TaskLevels` / `TicketMasks` RPCs, and both give the same
//! `SweepData`, so every output is the same whichever way it was read. This crate knows no
//! gRPC, no SQLite and no async runtime (a test enforces it).
//!
//! - [`data`]: the data set ([`SweepData`], [`TaskResult`], [`TicketData`], [`Progress`]);
//! - [`stats`]: the one computation of what a task showed ([`stats::summarize`]) and of a
//!   group of tasks ([`stats::group_by`], [`stats::grid_points`]: a grid point is a group by
//!   every setting but the seed), Wilson intervals, per-level spreads;
//! - [`baseline`]: the random-mask baseline of a group of runs (the probability that a
//!   random mask with a run's last per-layer counts splits, averaged over the runs);
//! - [`axis`]: the grid axes tasks are grouped by;
//! - [`tables`]: text, CSV and JSON renderings of the statistics (`coordinator results`);
//! - [`export`]: the long-format export (one row per task and level; CSV, JSON, Parquet) and a
//!   ticket's graph (GraphML, DOT);
//! - [`import`]: the long CSV read back into the data set, with the sweep file's settings;
//! - [`plot`]: the figures (SVG and PNG, with an embedded font);
//! - [`report`]: the self-contained HTML page.
//!
//! Computation and presentation are apart: `stats` returns plain values; `tables`, `export`,
//! `plot` and `report` only present them.

pub mod axis;
pub mod baseline;
pub mod data;
pub mod export;
pub mod import;
pub mod plot;
pub mod report;
pub mod stats;
pub mod tables;

pub use data::{Progress, SweepData, TaskResult, TicketData};
