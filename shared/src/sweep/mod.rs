//! The sweep file: YAML describing a grid of IMP runs, its validation with located errors, and
//! its expansion into resolved [`TaskSpec`]s.
//!
//! # Schema
//!
//! Every key except `name` has the protocol's default (docs/PROTOCOL.md); unknown keys are errors
//! everywhere. A file with only `name:` reproduces poster experiment 1.
//!
//! ```yaml
//! name: poster-extension            # required: [a-z0-9._-]+, identifies the sweep on the coordinator
//! description: free text            # optional
//! data:
//!   problems:                       # default: circles(noise 0.1, factor 0.35) then moons(noise 0.1)
//!     - { kind: circles, noise: 0.1, factor: 0.35 }
//!     - { kind: moons, noise: 0.1 }
//!     # also { kind: xor, noise }, { kind: spirals, noise, turns }, { kind: blobs, std };
//!     # defaults: noise 0.1, factor 0.35, turns 1.5, std 0.5
//!   samples: 2000                   # points per problem (at least 2)
//!   test_fraction: 0.5              # in (0, 1)
//!   seed: 0                         # data seed, independent of the model seeds: a number, a list
//!                                   #   or an inclusive range "0..7" (grid axis)
//!   coupling: 0                     # degrees in [0, 90], or a list (grid axis): the coupled-problems
//!                                   #   control, inputs rotated into the next problem's (crate::data::couple)
//! model:                            # exactly one of: shape | shapes | hidden (+ depth) | base (+ extension_*)
//!   shape: [4, 410, 410, 2]         # one shape
//!   shapes: [[4, 8, 8, 2], [4, 20, 2]]
//!   hidden: [8, 16, 32]             # grid of hidden widths, all `depth` hidden layers of that width;
//!   depth: 2                        #   inputs (2 per problem) and outputs (1 per problem) from data
//!   base: [4, 8, 8, 2]              # model extension from one base, or a list of bases
//!                                   #   ([[4, 20, 2], [4, 4, 4, 4, 2]]: each gets every extension level);
//!                                   #   default when model gives none of the four:
//!                                   #   base [2n, 8, 8, n] for n problems, i.e. [4, 8, 8, 2]
//!   extension_rate: 0.32            # default: pruning.rate if it is one value, else 0.32
//!   extension_levels: 0..25         # inclusive range "a..b" (or "a..=b"), a number, or a list; default 0..25
//! train:
//!   init: kaiming_normal            # | kaiming_uniform
//!   learning_rate: 1.0e-3           # Adam, > 0
//!   beta1: 0.9                      # [0, 1)
//!   beta2: 0.999                    # [0, 1)
//!   epsilon: 1.0e-8                 # > 0
//!   batch_size: 64                  # >= 1
//!   max_epochs: 3000                # >= 1
//!   patience: 30                    # early stopping on the held-out loss
//!   min_delta: 0.0                  # >= 0
//!   rewind_epochs: 0                # whole number <= max_epochs, or a list (grid axis): later levels
//!                                   #   reset to the dense level's weights after this many epochs
//! pruning:
//!   scope: global                   # | layerwise
//!   method: magnitude               # | random, or a list (grid axis): the random-pruning control
//!   rate: 0.32                      # number or list (grid axis), each in (0, 1)
//!   levels: 20                      # number, list, or inclusive range "0..20" (grid axis), at most 1000
//!   target: 112                     # number, list, or "base" (= weight count of the shape's model.base)
//!   schedule: exact                 # | trajectory (see below)
//!   trajectory_to: 0                # trajectory only: prune down to the extension at this level
//!   stop_at_first_degraded: false
//!   stop_at_first_split: false
//! seeds: 4                          # a count n (seeds 0..n-1) or a list [0, 7, 11]; default 4
//! ```
//!
//! # Semantics
//!
//! - Grid points give exactly two of `pruning.rate`, `levels`, `target`; the third follows from
//!   `T = W (1-p)^L` ([`crate::schedule::resolve`]). A level count of 0 is the dense network
//!   trained once (rate 0, target = W).
//! - `schedule: exact` prunes to `round(W (1-p)^l)` weights at level `l`, the last level exactly
//!   to the target ([`crate::schedule::remaining_counts`]).
//! - `schedule: trajectory` (only with `model.base`) is the thesis's extension schedule: extension
//!   level `i` is pruned `i` levels through the weight counts of extension levels `i-1, ..., 0`,
//!   so `levels = i`, `target = W(base)`, `rate = extension_rate` (0 at level 0). It is the
//!   default when `model.base` is used and pruning gives neither `levels` nor `target`
//!   (poster experiment 1); `pruning.rate` may then be given as the extension rate.
//!   `pruning.trajectory_to: j` stops the trajectory at extension level `j` instead of the
//!   base: `levels = i - j`, `target = W(extension level j)`, and extension levels below `j`
//!   are an error (the thesis's reported three-hidden-layer result, `thesis-3-hidden.yaml`).
//! - `model.base` with `pruning: { levels: 20, target: base }` is poster experiment 2 (the rate
//!   differs per shape); `model.shape: [4, 410, 410, 2]` with
//!   `pruning: { levels: 0..20, target: 112 }` is experiment 3.
//! - Shapes start with 2 inputs per problem and end with 1 output per problem, have at least one
//!   hidden layer, no zero width, and at most [`crate::schedule::MAX_WEIGHTS`] weights.
//! - A list axis may not repeat a value. At most [`MAX_TASKS`] tasks (the full grid product),
//!   and at most [`MAX_PLANNED_LEVELS`] levels over all of them (each task's levels + 1), so a
//!   short file cannot make the coordinator store gigabytes of schedules.
//! - The controls (`pruning.method`, `data.coupling`, `train.rewind_epochs`) at their defaults
//!   are left out of a task's JSON, so files that do not use them keep their task ids. A rewind
//!   above 0 needs every grid point to have at least one pruning level.
//! - Errors name the file, the line and column of the offending key or list entry (or of its
//!   nearest written parent when the key is absent), the field path and what is allowed.
//!
//! # Expansion
//!
//! Shapes in file order (for model.base: bases in file order, then extension levels in file
//! order) x rate x levels x target x method x coupling x rewind epochs x data seed (each in
//! file order) x seeds (innermost; a count n gives 0..n-1). Grid points that resolve to identical
//! settings (e.g. level count 0 under several rates) give one task: the first. The order is
//! deterministic, and [`TaskSpec::id`] depends only on the settings, so reordering the file keeps
//! the set of ids and adding a seed adds exactly that seed's tasks.

// This file: the public API. The file as written (serde) is `schema`, its validation into a
// plan of shapes and grid axes `plan`, the parsers of axis values `values`, field paths, the
// YAML locator and located errors `locate`, and `--set` overrides `overrides`.
mod locate;
mod overrides;
mod plan;
mod schema;
mod values;

pub use overrides::Override;

use crate::spec::{DataSpec, TaskSpec, TrainSpec};
use locate::Ctx;
use plan::Plan;
use schema::SweepFile;
use serde::Serialize;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// Most tasks one sweep may expand to (the full grid product, before merging duplicates).
pub const MAX_TASKS: usize = 100_000;

/// The largest sweep file read, in bytes (the thesis's sweeps are a few hundred).
pub const MAX_SWEEP_FILE_BYTES: usize = 1 << 20;

/// Refuses a text over [`MAX_SWEEP_FILE_BYTES`] before anything reads it (a huge file is
/// never indexed or parsed).
pub(crate) fn check_size(text: &str, source: &str) -> Result<(), SweepError> {
    if text.len() <= MAX_SWEEP_FILE_BYTES {
        return Ok(());
    }
    Err(SweepError {
        source_name: source.to_string(),
        line: None,
        column: None,
        field: None,
        message: format!(
            "the file is {} bytes, more than the limit of {MAX_SWEEP_FILE_BYTES} bytes for a \
             sweep file (a grid expands from a few lines: write values as ranges rather than \
             listing them)",
            text.len()
        ),
    })
}

/// Most levels (each task's `levels + 1`, summed over the full grid) one sweep may plan:
/// 100 000 tasks of 49 levels, or 5 000 of 999.
pub const MAX_PLANNED_LEVELS: usize = 5_000_000;

/// A sweep file that failed to read, parse or validate, located in the file where possible.
///
/// Display: `sweeps/x.yaml:12:5: pruning.rate: 1.5 is outside (0, 1)`; missing parts are left
/// out.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepError {
    /// The file name (or whatever name the caller gave the text).
    pub source_name: String,
    /// 1-based line of the offending key or value.
    pub line: Option<usize>,
    /// 1-based column of the offending key or value.
    pub column: Option<usize>,
    /// Dotted path of the offending field, e.g. `pruning.rate` or `model.shapes[1]`.
    pub field: Option<String>,
    /// What is wrong and what is allowed, lowercase.
    pub message: String,
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source_name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SweepError {}

/// A parsed and validated sweep file.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep's name, `[a-z0-9._-]+`.
    pub name: String,
    /// Free text from the file.
    pub description: Option<String>,
    yaml: String,
    source: String,
    plan: Plan,
}

impl Sweep {
    /// Reads, parses and validates a sweep file; errors name `path` as given (the file as
    /// written: [`Sweep::from_path_with`] without overrides).
    pub fn from_path(path: &Path) -> Result<Sweep, SweepError> {
        Sweep::from_path_with(path, &[])
    }

    /// Parses and validates sweep YAML; `source` is the file name used in errors.
    ///
    /// Every grid point is resolved here, so [`Sweep::expand`] of a returned sweep succeeds.
    pub fn from_yaml(text: &str, source: &str) -> Result<Sweep, SweepError> {
        check_size(text, source)?;
        let ctx = Ctx::new(text, source);
        if text.trim().is_empty() || ctx.locator.root().is_none() {
            return Err(ctx.err_at(
                None,
                "the file is empty; a sweep needs at least `name:`".to_string(),
            ));
        }
        let file: SweepFile = serde_yaml::from_str(text).map_err(|e| ctx.serde_err(e))?;
        let plan = Plan::build(&ctx, &file)?;
        let sweep = Sweep {
            name: file.name,
            description: file.description,
            yaml: text.to_string(),
            source: source.to_string(),
            plan,
        };
        // Resolve every grid point once (without materialising tasks) so that errors surface
        // at parse time.
        sweep.plan.check_points(&ctx)?;
        Ok(sweep)
    }

    /// The tasks of the sweep in deterministic order (see the module documentation).
    pub fn expand(&self) -> Result<Vec<TaskSpec>, SweepError> {
        let ctx = Ctx::new(&self.yaml, &self.source);
        let points = self.plan.points(&ctx, true)?;
        let seeds = self.plan.seeds.values();
        let data_seeds = &self.plan.data_seeds;
        let mut seen = HashSet::new();
        let mut tasks = Vec::with_capacity(points.len() * data_seeds.len() * seeds.len());
        for point in points {
            for (coupling, rewind) in self.plan.controls() {
                let train = TrainSpec {
                    rewind_epochs: rewind,
                    ..self.plan.train.clone()
                };
                for &data_seed in data_seeds {
                    let data = DataSpec {
                        seed: data_seed,
                        coupling,
                        ..self.plan.data.clone()
                    };
                    for &seed in &seeds {
                        let task = TaskSpec {
                            data: data.clone(),
                            shape: self.plan.shapes[point.shape].shape.clone(),
                            extension_level: self.plan.shapes[point.shape].extension_level,
                            train: train.clone(),
                            prune: point.prune.clone(),
                            seed,
                        };
                        if seen.insert(task.id()) {
                            tasks.push(task);
                        }
                    }
                }
            }
        }
        Ok(tasks)
    }

    /// The original text of the file, kept for storage.
    pub fn yaml(&self) -> &str {
        &self.yaml
    }
}

/// One row of `coordinator plan`: a task in expansion order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRow {
    /// Position in the expansion, from 0.
    pub index: usize,
    /// [`TaskSpec::id`].
    pub id: String,
    pub shape: Vec<usize>,
    /// Dense weight count of `shape`.
    pub weights: usize,
    pub levels: usize,
    pub rate: f64,
    pub target: usize,
    /// The data seed (`data.seed`).
    pub data_seed: u64,
    /// The controls: `pruning.method`, `data.coupling` (degrees), `train.rewind_epochs`.
    pub method: &'static str,
    pub coupling: f64,
    pub rewind_epochs: usize,
    pub seed: u64,
}

/// The plan table of `tasks`, in their order.
pub fn plan_rows(tasks: &[TaskSpec]) -> Vec<PlanRow> {
    tasks
        .iter()
        .enumerate()
        .map(|(index, t)| PlanRow {
            index,
            id: t.id(),
            shape: t.shape.clone(),
            weights: t.weights(),
            levels: t.prune.levels,
            rate: t.prune.rate,
            target: t.prune.target,
            data_seed: t.data.seed,
            method: t.prune.method.as_str(),
            coupling: t.data.coupling,
            rewind_epochs: t.train.rewind_epochs,
            seed: t.seed,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_reproduce_experiment_one() {
        let sweep = Sweep::from_yaml("name: x\n", "x.yaml").unwrap();
        let tasks = sweep.expand().unwrap();
        assert_eq!(tasks.len(), 26 * 4);
        assert_eq!(tasks[0].shape, vec![4, 8, 8, 2]);
        assert_eq!(tasks.last().unwrap().shape, vec![4, 1310, 1310, 2]);
        assert_eq!(tasks.last().unwrap().prune.levels, 25);
        assert_eq!(tasks.last().unwrap().prune.target, 112);
        assert_eq!(tasks[0].train.max_epochs, 3000);
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
        let huge = format!("name: x\n{}", "\n".repeat(MAX_SWEEP_FILE_BYTES));
        let err = Sweep::from_yaml(&huge, "huge.yaml").unwrap_err();
        assert_eq!(err.source_name, "huge.yaml");
        assert!(err.message.contains("more than the limit"), "{err}");
        let at_limit = format!("name: x\n{}", " ".repeat(MAX_SWEEP_FILE_BYTES - 8));
        assert!(Sweep::from_yaml(&at_limit, "big.yaml").is_ok());
    }
}
