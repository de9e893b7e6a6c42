//! The science of the sweep, free of any transport or storage.
//!
//! This crate owns everything that both the coordinator and the workers must agree on, and
//! nothing that talks to a network or a database:
//!
//! - [`spec`]: the fully resolved settings of one task (one IMP run), its stable id, the
//!   invariants training relies on and the early-stop rules;
//! - [`state`]: where a task stands (pending, leased, done, failed);
//! - [`sweep`]: the YAML sweep file, its validation with located errors, and its expansion
//!   into tasks;
//! - [`schedule`]: pruning arithmetic: weight counts of a shape, rate / levels / target,
//!   exact remaining counts per level and the widths of the model-extension experiment;
//! - [`data`]: the independent 2-D binary problems (circles, moons, xor, spirals, blobs),
//!   concatenated column-wise, split and standardised;
//! - [`graph`]: the ticket as a graph: active / zombie / inactive weights and neurons,
//!   components, task coverage and the connected / split / degraded status ([`graph::analyze`]
//!   counts; [`graph::Ticket`] keeps every neuron and weight, for pictures and exports; both
//!   run the same passes);
//! - [`baseline`]: the random-mask baseline: the probability that a random mask with a
//!   level's per-layer kept counts is split, connected or degraded (Monte-Carlo, seeded by the
//!   task and level; exact enumeration for tiny shapes);
//! - [`metrics`]: the per-level record a worker produces and the coordinator stores;
//! - [`outcome`]: the four outcomes of a run (separated, separated-degraded,
//!   interconnected, degraded), classified by its trajectory;
//! - [`synthetic`]: valid levels without training, for tests and benchmarks;
//! - [`cost`]: the expected cost of a task's levels, what the coordinator leases by;
//! - [`cpu`]: the instruction set the build needs (x86-64-v3 on x86-64), which both binaries
//!   check at start.
//!
//! Training itself lives in the `worker` crate; storage and gRPC in `coordinator` and `proto`.

pub mod baseline;
pub mod cost;
pub mod cpu;
pub mod data;
pub mod graph;
pub mod metrics;
pub mod outcome;
pub mod schedule;
pub mod spec;
pub mod state;
pub mod sweep;
pub mod synthetic;
