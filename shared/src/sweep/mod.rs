//! The sweep file: YAML describing a grid of IMP runs, its validation with located errors, and
//! its expansion into resolved [`TaskSpec`]s.
//!
//! # Schema
//!
//! Every key except `name` has the protocol's default (PROTOCOL.md); unknown keys are errors
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
//!   seed: 0                         # data seed, independent of the model seeds
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
//! pruning:
//!   scope: global                   # | layerwise
//!   rate: 0.32                      # number or list (grid axis), each in (0, 1)
//!   levels: 20                      # number, list, or inclusive range "0..20" (grid axis), at most 1000
//!   target: 112                     # number, list, or "base" (= weight count of the shape's model.base)
//!   schedule: exact                 # | trajectory (see below)
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
//! - `model.base` with `pruning: { levels: 20, target: base }` is poster experiment 2 (the rate
//!   differs per shape); `model.shape: [4, 410, 410, 2]` with
//!   `pruning: { levels: 0..20, target: 112 }` is experiment 3.
//! - Shapes start with 2 inputs per problem and end with 1 output per problem, have at least one
//!   hidden layer, no zero width, and at most [`crate::schedule::MAX_WEIGHTS`] weights.
//! - A list axis may not repeat a value. At most [`MAX_TASKS`] tasks (the full grid product),
//!   and at most [`MAX_PLANNED_LEVELS`] levels over all of them (each task's levels + 1), so a
//!   short file cannot make the coordinator store gigabytes of schedules.
//! - Errors name the file, the line and column of the offending key or list entry (or of its
//!   nearest written parent when the key is absent), the field path and what is allowed.
//!
//! # Expansion
//!
//! Shapes in file order (for model.base: bases in file order, then extension levels in file
//! order) x rate x levels x target (each in file order) x seeds (innermost; a count n gives
//! 0..n-1). Grid points that resolve to identical
//! settings (e.g. level count 0 under several rates) give one task: the first. The order is
//! deterministic, and [`TaskSpec::id`] depends only on the settings, so reordering the file keeps
//! the set of ids and adding a seed adds exactly that seed's tasks.

mod overrides;

pub use overrides::Override;

use crate::schedule::{self, ScheduleError, MAX_LEVELS, MAX_WEIGHTS};
use crate::spec::{DataSpec, Init, Problem, PruneSpec, Scope, TaskSpec, TrainSpec};
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// Most tasks one sweep may expand to (the full grid product, before merging duplicates).
pub const MAX_TASKS: usize = 100_000;

/// Most levels (each task's `levels + 1`, summed over the full grid) one sweep may plan:
/// 100 000 tasks of 49 levels, or 5 000 of 999.
pub const MAX_PLANNED_LEVELS: usize = 5_000_000;

/// Most hidden layers of a `model.hidden` grid.
const MAX_DEPTH: usize = 1000;

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
    /// Reads, parses and validates a sweep file; errors name `path` as given.
    pub fn from_path(path: &Path) -> Result<Sweep, SweepError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SweepError {
            source_name: source.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read the sweep file: {e}"),
        })?;
        Sweep::from_yaml(&text, &source)
    }

    /// Parses and validates sweep YAML; `source` is the file name used in errors.
    ///
    /// Every grid point is resolved here, so [`Sweep::expand`] of a returned sweep succeeds.
    pub fn from_yaml(text: &str, source: &str) -> Result<Sweep, SweepError> {
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
        let points = sweep.plan.points(&ctx, false)?;
        let planned = points
            .iter()
            .try_fold(0usize, |sum, p| {
                sum.checked_add(p.prune.levels.saturating_add(1))
            })
            .and_then(|per_seed| per_seed.checked_mul(sweep.plan.seeds.len()));
        if planned.is_none_or(|n| n > MAX_PLANNED_LEVELS) {
            let count = planned.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            return Err(ctx.err_at(
                None,
                format!(
                    "the sweep plans {count} levels over all its tasks, more than the limit of \
                     {MAX_PLANNED_LEVELS}; split it into several sweeps"
                ),
            ));
        }
        Ok(sweep)
    }

    /// The tasks of the sweep in deterministic order (see the module documentation).
    pub fn expand(&self) -> Result<Vec<TaskSpec>, SweepError> {
        let ctx = Ctx::new(&self.yaml, &self.source);
        let points = self.plan.points(&ctx, true)?;
        let seeds = self.plan.seeds.values();
        let mut seen = HashSet::new();
        let mut tasks = Vec::with_capacity(points.len() * seeds.len());
        for point in points {
            for &seed in &seeds {
                let task = TaskSpec {
                    data: self.plan.data.clone(),
                    shape: self.plan.shapes[point.shape].shape.clone(),
                    extension_level: self.plan.shapes[point.shape].extension_level,
                    train: self.plan.train.clone(),
                    prune: point.prune.clone(),
                    seed,
                };
                if seen.insert(task.id()) {
                    tasks.push(task);
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
            seed: t.seed,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The file as written.

fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of sweep settings (name, description, data, model, train, pruning, seeds)"
)]
struct SweepFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    data: DataFile,
    #[serde(default, deserialize_with = "or_default")]
    model: ModelFile,
    #[serde(default, deserialize_with = "or_default")]
    train: TrainFile,
    #[serde(default, deserialize_with = "or_default")]
    pruning: PruningFile,
    #[serde(default)]
    seeds: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of data settings (problems, samples, test_fraction, seed)"
)]
struct DataFile {
    problems: Option<Vec<ProblemFile>>,
    samples: usize,
    test_fraction: f64,
    seed: u64,
}

impl Default for DataFile {
    fn default() -> Self {
        DataFile {
            problems: None,
            samples: 2000,
            test_fraction: 0.5,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProblemKind {
    Circles,
    Moons,
    Xor,
    Spirals,
    Blobs,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a problem mapping like { kind: circles, noise: 0.1, factor: 0.35 }"
)]
struct ProblemFile {
    kind: ProblemKind,
    #[serde(default)]
    noise: Option<f64>,
    #[serde(default)]
    factor: Option<f64>,
    #[serde(default)]
    turns: Option<f64>,
    #[serde(default)]
    std: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of model settings (shape, shapes, hidden, depth, base, extension_rate, extension_levels)"
)]
struct ModelFile {
    shape: Option<Vec<usize>>,
    shapes: Option<Vec<Vec<usize>>>,
    hidden: Option<Vec<usize>>,
    depth: Option<usize>,
    base: Option<Value>,
    extension_rate: Option<f64>,
    extension_levels: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of training settings"
)]
struct TrainFile {
    init: Init,
    learning_rate: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    batch_size: usize,
    max_epochs: usize,
    patience: usize,
    min_delta: f64,
}

impl Default for TrainFile {
    fn default() -> Self {
        let p = TrainSpec::protocol();
        TrainFile {
            init: p.init,
            learning_rate: p.learning_rate,
            beta1: p.beta1,
            beta2: p.beta2,
            epsilon: p.epsilon,
            batch_size: p.batch_size,
            max_epochs: p.max_epochs,
            patience: p.patience,
            min_delta: p.min_delta,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScheduleKind {
    Exact,
    Trajectory,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of pruning settings (scope, rate, levels, target, schedule, stop_at_first_degraded, stop_at_first_split)"
)]
struct PruningFile {
    scope: Scope,
    rate: Option<Value>,
    levels: Option<Value>,
    target: Option<Value>,
    schedule: Option<ScheduleKind>,
    stop_at_first_degraded: bool,
    stop_at_first_split: bool,
}

impl Default for PruningFile {
    fn default() -> Self {
        PruningFile {
            scope: Scope::Global,
            rate: None,
            levels: None,
            target: None,
            schedule: None,
            stop_at_first_degraded: false,
            stop_at_first_split: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The validated plan.

/// A path into the file, for error messages and locating.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

type FieldPath = Vec<Seg>;

/// A path segment borrowed from anywhere (a dotted field name, an override's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegRef<'a> {
    Key(&'a str),
    Index(usize),
}

impl Seg {
    fn as_ref(&self) -> SegRef<'static> {
        match *self {
            Seg::Key(k) => SegRef::Key(k),
            Seg::Index(i) => SegRef::Index(i),
        }
    }
}

/// The segments of a dotted field path: `a.b[2].c`; `None` when it is not one.
fn parse_field(field: &str) -> Option<Vec<SegRef<'_>>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (name, mut indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return None;
        }
        out.push(SegRef::Key(name));
        while !indices.is_empty() {
            let close = indices.find(']')?;
            out.push(SegRef::Index(indices.get(1..close)?.parse().ok()?));
            indices = &indices[close + 1..];
            if !indices.is_empty() && !indices.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

fn key(path: &[Seg], k: &'static str) -> FieldPath {
    let mut p = path.to_vec();
    p.push(Seg::Key(k));
    p
}

fn index(path: &[Seg], i: usize) -> FieldPath {
    let mut p = path.to_vec();
    p.push(Seg::Index(i));
    p
}

fn field_name(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// One value of a grid axis and where it was written.
#[derive(Debug, Clone)]
struct Item<T> {
    value: T,
    path: FieldPath,
}

#[derive(Debug, Clone)]
struct ShapePoint {
    shape: Vec<usize>,
    extension_level: Option<usize>,
    /// Index into [`Plan::bases`] when the shape is an extension of a base.
    base: Option<usize>,
    path: FieldPath,
}

#[derive(Debug, Clone)]
enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

impl Seeds {
    fn len(&self) -> usize {
        match self {
            Seeds::Count(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Seeds::List(v) => v.len(),
        }
    }

    fn values(&self) -> Vec<u64> {
        match self {
            Seeds::Count(n) => (0..*n).collect(),
            Seeds::List(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone)]
enum Grid {
    /// The thesis's extension schedule at this extension rate.
    Trajectory { rate: f64 },
    /// Exact counts; `None` axes are derived per point.
    Exact {
        rates: Option<Vec<Item<f64>>>,
        levels: Option<Vec<Item<usize>>>,
        targets: Option<Vec<Item<Target>>>,
    },
}

#[derive(Debug, Clone)]
struct Plan {
    data: DataSpec,
    train: TrainSpec,
    shapes: Vec<ShapePoint>,
    /// The base shapes of the extension experiment, in file order.
    bases: Vec<Vec<usize>>,
    grid: Grid,
    scope: Scope,
    stop_at_first_degraded: bool,
    stop_at_first_split: bool,
    seeds: Seeds,
}

/// A resolved grid point: a shape and its pruning (seed not yet applied).
struct Point {
    shape: usize,
    prune: PruneSpec,
}

const PROTOCOL_EXTENSION_RATE: f64 = 0.32;

impl Plan {
    fn build(ctx: &Ctx, file: &SweepFile) -> Result<Plan, SweepError> {
        check_name(ctx, &file.name)?;
        let data = build_data(ctx, &file.data)?;
        let train = build_train(ctx, &file.train)?;
        let n = data.problems.len();
        let p = &file.pruning;
        let model_path = vec![Seg::Key("model")];
        let pruning_path = vec![Seg::Key("pruning")];

        // Pruning axes as written.
        let rates = match &p.rate {
            Some(v) => Some(parse_rates(ctx, v, &key(&pruning_path, "rate"))?),
            None => None,
        };
        let levels = match &p.levels {
            Some(v) => Some(parse_counts(
                ctx,
                v,
                &key(&pruning_path, "levels"),
                "levels",
                true,
            )?),
            None => None,
        };
        let targets = match &p.target {
            Some(v) => Some(parse_targets(ctx, v, &key(&pruning_path, "target"))?),
            None => None,
        };

        // Model.
        let m = &file.model;
        let given: Vec<&'static str> = [
            ("shape", m.shape.is_some()),
            ("shapes", m.shapes.is_some()),
            ("hidden", m.hidden.is_some()),
            ("base", m.base.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(k, _)| *k)
        .collect();
        if given.len() > 1 {
            return Err(ctx.err(
                &key(&model_path, given[1]),
                format!(
                    "{} are both given; give exactly one of shape, shapes, hidden (with depth) or base (with extension_levels)",
                    given.join(" and ")
                ),
            ));
        }
        if m.depth.is_some() && m.hidden.is_none() {
            return Err(ctx.err(
                &key(&model_path, "depth"),
                "depth applies only to model.hidden; give the full shape otherwise".to_string(),
            ));
        }
        let uses_base = m.base.is_some() || given.is_empty();
        for (k, g) in [
            ("extension_rate", m.extension_rate.is_some()),
            ("extension_levels", m.extension_levels.is_some()),
        ] {
            if g && !uses_base {
                return Err(ctx.err(
                    &key(&model_path, k),
                    format!("{k} applies only to model.base (the extension experiment)"),
                ));
            }
        }

        let mut shapes = Vec::new();
        let mut bases: Vec<Vec<usize>> = Vec::new();
        // The extension rate, when the model is extended from base shapes.
        let mut extension_rate: Option<f64> = None;
        if let Some(shape) = &m.shape {
            let path = key(&model_path, "shape");
            check_shape(ctx, shape, n, &path)?;
            shapes.push(ShapePoint {
                shape: shape.clone(),
                extension_level: None,
                base: None,
                path,
            });
        } else if let Some(list) = &m.shapes {
            let path = key(&model_path, "shapes");
            if list.is_empty() {
                return Err(ctx.err(&path, empty_list("shapes")));
            }
            for (i, shape) in list.iter().enumerate() {
                let path = index(&path, i);
                check_shape(ctx, shape, n, &path)?;
                if list[..i].contains(shape) {
                    return Err(ctx.err(&path, format!("shape {shape:?} is listed twice")));
                }
                shapes.push(ShapePoint {
                    shape: shape.clone(),
                    extension_level: None,
                    base: None,
                    path,
                });
            }
        } else if let Some(list) = &m.hidden {
            let path = key(&model_path, "hidden");
            if list.is_empty() {
                return Err(ctx.err(&path, empty_list("hidden")));
            }
            let depth = m.depth.unwrap_or(2);
            if depth == 0 || depth > MAX_DEPTH {
                return Err(ctx.err(
                    &key(&model_path, "depth"),
                    format!(
                        "depth {depth} is outside 1..={MAX_DEPTH} (the number of hidden layers)"
                    ),
                ));
            }
            for (i, &h) in list.iter().enumerate() {
                let path = index(&path, i);
                if h == 0 {
                    return Err(ctx.err(
                        &path,
                        "width 0; every layer needs at least one neuron".to_string(),
                    ));
                }
                if list[..i].contains(&h) {
                    return Err(ctx.err(&path, format!("width {h} is listed twice")));
                }
                let mut shape = vec![2 * n];
                shape.extend(std::iter::repeat_n(h, depth));
                shape.push(n);
                check_shape(ctx, &shape, n, &path)?;
                shapes.push(ShapePoint {
                    shape,
                    extension_level: None,
                    base: None,
                    path,
                });
            }
        } else {
            // Model extension: model.base, or the protocol's default.
            let base_list = match &m.base {
                Some(v) => parse_bases(ctx, v, &key(&model_path, "base"))?,
                None => vec![(vec![2 * n, 8, 8, n], model_path.clone())],
            };
            for (base, base_path) in &base_list {
                check_shape(ctx, base, n, base_path)?;
                if schedule::extension_width(base, 0.5, 0).is_err() {
                    return Err(ctx.err(
                        base_path,
                        format!(
                            "base shape {base:?} must have all hidden layers of the same width"
                        ),
                    ));
                }
                if bases.contains(base) {
                    return Err(ctx.err(base_path, format!("base {base:?} is listed twice")));
                }
                bases.push(base.clone());
            }
            let rate_path = key(&model_path, "extension_rate");
            let rate = match m.extension_rate {
                Some(r) => {
                    if !(r > 0.0 && r < 1.0) {
                        return Err(ctx.err(
                            &rate_path,
                            format!("{r} is outside (0, 1): the extension rate sets how much each extension level grows"),
                        ));
                    }
                    r
                }
                None => match &rates {
                    Some(rs) if rs.len() == 1 => rs[0].value,
                    Some(_) => {
                        return Err(ctx.err(
                            &key(&pruning_path, "rate"),
                            "several pruning rates with model.base: give model.extension_rate to fix the extended shapes".to_string(),
                        ))
                    }
                    None => PROTOCOL_EXTENSION_RATE,
                },
            };
            let levels_path = key(&model_path, "extension_levels");
            let ext_levels = match &m.extension_levels {
                Some(v) => parse_counts(ctx, v, &levels_path, "extension levels", true)?,
                None => (0..=25)
                    .map(|i| Item {
                        value: i,
                        path: levels_path.clone(),
                    })
                    .collect(),
            };
            for (bi, base) in bases.iter().enumerate() {
                for item in &ext_levels {
                    let shape = schedule::extension_shape(base, rate, item.value)
                        .map_err(|e| ctx.err(&item.path, e.to_string()))?;
                    shapes.push(ShapePoint {
                        shape,
                        extension_level: Some(item.value),
                        base: Some(bi),
                        path: item.path.clone(),
                    });
                }
            }
            extension_rate = Some(rate);
        }

        // Schedule.
        let schedule_path = key(&pruning_path, "schedule");
        let kind = match p.schedule {
            Some(k) => k,
            None if extension_rate.is_some() && levels.is_none() && targets.is_none() => {
                ScheduleKind::Trajectory
            }
            None => ScheduleKind::Exact,
        };
        let grid = match kind {
            ScheduleKind::Trajectory => {
                let Some(rate) = extension_rate else {
                    return Err(ctx.err(
                        &schedule_path,
                        "trajectory needs model.base (it prunes through the smaller extension shapes); use exact".to_string(),
                    ));
                };
                for (k, g) in [("levels", levels.is_some()), ("target", targets.is_some())] {
                    if g {
                        return Err(ctx.err(
                            &key(&pruning_path, k),
                            format!("the trajectory schedule takes its {k} from the extension level and model.base; remove pruning.{k} or use schedule: exact"),
                        ));
                    }
                }
                if let Some(rs) = &rates {
                    if rs.len() > 1 || rs[0].value != rate {
                        return Err(ctx.err(
                            &key(&pruning_path, "rate"),
                            format!("the trajectory schedule prunes at the extension rate {rate}; give one rate equal to model.extension_rate, or none"),
                        ));
                    }
                }
                Grid::Trajectory { rate }
            }
            ScheduleKind::Exact => {
                let given: Vec<&str> = [
                    ("rate", rates.is_some()),
                    ("levels", levels.is_some()),
                    ("target", targets.is_some()),
                ]
                .iter()
                .filter(|(_, g)| *g)
                .map(|(k, _)| *k)
                .collect();
                if given.len() != 2 {
                    let what = match given.len() {
                        3 => "rate, levels and target are all given; give exactly two".to_string(),
                        0 => "none of rate, levels and target is given; give two".to_string(),
                        _ => format!("only {} is given; give two", given[0]),
                    };
                    return Err(ctx.err(
                        &pruning_path,
                        format!(
                            "{what} of rate, levels and target (T = W (1-p)^L fixes the third)"
                        ),
                    ));
                }
                if let Some(list) = &targets {
                    for (i, t) in list.iter().enumerate() {
                        let twice = list[..i].iter().any(|o| match (o.value, t.value) {
                            (Target::Count(a), Target::Count(b)) => a == b,
                            (Target::Base, Target::Base) => true,
                            _ => false,
                        });
                        if twice {
                            return Err(ctx.err(&t.path, "this target is listed twice".to_string()));
                        }
                        if matches!(t.value, Target::Base) && bases.is_empty() {
                            return Err(ctx.err(
                                &t.path,
                                "target base needs model.base; give a weight count".to_string(),
                            ));
                        }
                    }
                }
                Grid::Exact {
                    rates,
                    levels,
                    targets,
                }
            }
        };

        let seeds = parse_seeds(ctx, file.seeds.as_ref())?;

        // Size of the grid, before anything is materialised.
        let per_shape = match &grid {
            Grid::Trajectory { .. } => 1usize,
            Grid::Exact {
                rates,
                levels,
                targets,
            } => [
                rates.as_ref().map_or(1, Vec::len),
                levels.as_ref().map_or(1, Vec::len),
                targets.as_ref().map_or(1, Vec::len),
            ]
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .unwrap_or(usize::MAX),
        };
        let total = shapes
            .len()
            .checked_mul(per_shape)
            .and_then(|x| x.checked_mul(seeds.len()));
        match total {
            Some(t) if t <= MAX_TASKS => {}
            _ => {
                let count = total.map_or_else(|| "more than 2^64".to_string(), |t| t.to_string());
                return Err(ctx.err_at(
                    None,
                    format!(
                        "the sweep expands to {count} tasks ({} shapes x {per_shape} pruning settings x {} seeds), more than the limit of {MAX_TASKS}; split it into several sweeps",
                        shapes.len(),
                        seeds.len()
                    ),
                ));
            }
        }

        Ok(Plan {
            data,
            train,
            shapes,
            bases,
            grid,
            scope: p.scope,
            stop_at_first_degraded: p.stop_at_first_degraded,
            stop_at_first_split: p.stop_at_first_split,
            seeds,
        })
    }

    /// Resolves every (shape, rate, levels, target) point in expansion order. With
    /// `materialise == false` the remaining counts are left empty (validation only).
    fn points(&self, ctx: &Ctx, materialise: bool) -> Result<Vec<Point>, SweepError> {
        let mut points = Vec::new();
        let prune = |rate: f64, levels: usize, target: usize, remaining: Vec<usize>| PruneSpec {
            scope: self.scope,
            rate,
            levels,
            target,
            remaining,
            stop_at_first_degraded: self.stop_at_first_degraded,
            stop_at_first_split: self.stop_at_first_split,
        };
        for (si, sp) in self.shapes.iter().enumerate() {
            let weights = schedule::weight_count(&sp.shape);
            match &self.grid {
                Grid::Trajectory { rate } => {
                    let base = &self.bases[sp.base.unwrap_or(0)];
                    let level = sp.extension_level.unwrap_or(0);
                    let remaining = if materialise {
                        schedule::trajectory_counts(base, *rate, level)
                            .map_err(|e| ctx.err(&sp.path, e.to_string()))?
                    } else {
                        Vec::new()
                    };
                    let rate = if level == 0 { 0.0 } else { *rate };
                    let target = schedule::weight_count(base);
                    points.push(Point {
                        shape: si,
                        prune: prune(rate, level, target, remaining),
                    });
                }
                Grid::Exact {
                    rates,
                    levels,
                    targets,
                } => {
                    let rates = axis(rates);
                    let levels = axis(levels);
                    let targets = axis(targets);
                    for r in &rates {
                        for l in &levels {
                            for t in &targets {
                                let resolved = schedule::resolve(
                                    weights,
                                    r.as_ref().map(|i| i.value),
                                    l.as_ref().map(|i| i.value),
                                    t.as_ref().map(|i| match i.value {
                                        Target::Count(c) => c,
                                        Target::Base => sp
                                            .base
                                            .map_or(0, |b| schedule::weight_count(&self.bases[b])),
                                    }),
                                )
                                .map_err(|e| {
                                    let path = match (&e, t, l) {
                                        (
                                            ScheduleError::TargetZero
                                            | ScheduleError::TargetTooLarge { .. }
                                            | ScheduleError::ZeroLevels { .. }
                                            | ScheduleError::TooManyLevels { .. },
                                            Some(t),
                                            _,
                                        ) => t.path.clone(),
                                        (ScheduleError::NoWeightsLeft { .. }, _, Some(l)) => {
                                            l.path.clone()
                                        }
                                        _ => vec![Seg::Key("pruning")],
                                    };
                                    let message = match e {
                                        ScheduleError::TargetTooLarge { target, .. } => format!(
                                            "target {target} is larger than the network: shape {:?} has {weights} weights; the target must be at most the weight count",
                                            sp.shape
                                        ),
                                        e => format!(
                                            "{e} (shape {:?}, {weights} weights)",
                                            sp.shape
                                        ),
                                    };
                                    ctx.err(&path, message)
                                })?;
                                let remaining = if materialise {
                                    schedule::remaining_counts(
                                        weights,
                                        resolved.rate,
                                        resolved.levels,
                                        resolved.target,
                                    )
                                } else {
                                    Vec::new()
                                };
                                points.push(Point {
                                    shape: si,
                                    prune: prune(
                                        resolved.rate,
                                        resolved.levels,
                                        resolved.target,
                                        remaining,
                                    ),
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(points)
    }
}

/// A grid axis as a list of optional values: `[None]` when the axis is derived.
fn axis<T: Clone>(a: &Option<Vec<Item<T>>>) -> Vec<Option<Item<T>>> {
    a.as_ref()
        .map_or(vec![None], |v| v.iter().cloned().map(Some).collect())
}

fn empty_list(what: &str) -> String {
    format!("the list of {what} is empty; an empty grid has no tasks")
}

fn check_name(ctx: &Ctx, name: &str) -> Result<(), SweepError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ctx.err(
            &[Seg::Key("name")],
            format!("{name:?} is not a valid name; use 1 to 128 of a-z, 0-9, '.', '_', '-'"),
        ))
    }
}

fn build_data(ctx: &Ctx, d: &DataFile) -> Result<DataSpec, SweepError> {
    let data = vec![Seg::Key("data")];
    let problems = match &d.problems {
        None => vec![
            Problem::Circles {
                noise: 0.1,
                factor: 0.35,
            },
            Problem::Moons { noise: 0.1 },
        ],
        Some(list) => {
            let path = key(&data, "problems");
            if list.is_empty() {
                return Err(ctx.err(&path, empty_list("problems")));
            }
            let mut out = Vec::new();
            for (i, p) in list.iter().enumerate() {
                out.push(build_problem(ctx, p, &index(&path, i))?);
            }
            out
        }
    };
    if d.samples < 2 {
        return Err(ctx.err(
            &key(&data, "samples"),
            format!(
                "{} samples is too few; draw at least 2 points per problem",
                d.samples
            ),
        ));
    }
    if !(d.test_fraction > 0.0 && d.test_fraction < 1.0) {
        return Err(ctx.err(
            &key(&data, "test_fraction"),
            format!("{} is outside (0, 1)", d.test_fraction),
        ));
    }
    Ok(DataSpec {
        problems,
        samples: d.samples,
        test_fraction: d.test_fraction,
        seed: d.seed,
    })
}

fn build_problem(ctx: &Ctx, p: &ProblemFile, path: &[Seg]) -> Result<Problem, SweepError> {
    let (name, allowed): (&str, &[&str]) = match p.kind {
        ProblemKind::Circles => ("circles", &["noise", "factor"]),
        ProblemKind::Moons => ("moons", &["noise"]),
        ProblemKind::Xor => ("xor", &["noise"]),
        ProblemKind::Spirals => ("spirals", &["noise", "turns"]),
        ProblemKind::Blobs => ("blobs", &["std"]),
    };
    for (k, given) in [
        ("noise", p.noise.is_some()),
        ("factor", p.factor.is_some()),
        ("turns", p.turns.is_some()),
        ("std", p.std.is_some()),
    ] {
        if given && !allowed.contains(&k) {
            return Err(ctx.err(
                &key(path, k),
                format!("{name} takes no {k}; it takes {}", allowed.join(" and ")),
            ));
        }
    }
    let noise = p.noise.unwrap_or(0.1);
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(ctx.err(
            &key(path, "noise"),
            format!("{noise} is not allowed; the noise must be a finite number >= 0"),
        ));
    }
    let positive = |v: f64, k: &'static str, upper: Option<f64>| -> Result<f64, SweepError> {
        let ok = v.is_finite() && v > 0.0 && upper.is_none_or(|u| v < u);
        if ok {
            Ok(v)
        } else {
            let range = match upper {
                Some(u) => format!("(0, {u})"),
                None => "(0, inf)".to_string(),
            };
            Err(ctx.err(&key(path, k), format!("{v} is outside {range}")))
        }
    };
    Ok(match p.kind {
        ProblemKind::Circles => Problem::Circles {
            noise,
            factor: positive(p.factor.unwrap_or(0.35), "factor", Some(1.0))?,
        },
        ProblemKind::Moons => Problem::Moons { noise },
        ProblemKind::Xor => Problem::Xor { noise },
        ProblemKind::Spirals => Problem::Spirals {
            noise,
            turns: positive(p.turns.unwrap_or(1.5), "turns", None)?,
        },
        ProblemKind::Blobs => Problem::Blobs {
            std: positive(p.std.unwrap_or(0.5), "std", None)?,
        },
    })
}

fn build_train(ctx: &Ctx, t: &TrainFile) -> Result<TrainSpec, SweepError> {
    let train = vec![Seg::Key("train")];
    let check = |ok: bool, k: &'static str, v: String, allowed: &str| {
        if ok {
            Ok(())
        } else {
            Err(ctx.err(&key(&train, k), format!("{v} is not allowed; {allowed}")))
        }
    };
    let lr = t.learning_rate;
    check(
        lr.is_finite() && lr > 0.0,
        "learning_rate",
        lr.to_string(),
        "the learning rate must be > 0",
    )?;
    for (k, b) in [("beta1", t.beta1), ("beta2", t.beta2)] {
        check(
            (0.0..1.0).contains(&b),
            k,
            b.to_string(),
            "betas must lie in [0, 1)",
        )?;
    }
    check(
        t.epsilon.is_finite() && t.epsilon > 0.0,
        "epsilon",
        t.epsilon.to_string(),
        "epsilon must be > 0",
    )?;
    check(
        t.batch_size >= 1,
        "batch_size",
        t.batch_size.to_string(),
        "the batch size must be at least 1",
    )?;
    check(
        t.max_epochs >= 1,
        "max_epochs",
        t.max_epochs.to_string(),
        "max_epochs must be at least 1",
    )?;
    check(
        t.min_delta.is_finite() && t.min_delta >= 0.0,
        "min_delta",
        t.min_delta.to_string(),
        "min_delta must be >= 0",
    )?;
    Ok(TrainSpec {
        init: t.init,
        learning_rate: t.learning_rate,
        beta1: t.beta1,
        beta2: t.beta2,
        epsilon: t.epsilon,
        batch_size: t.batch_size,
        max_epochs: t.max_epochs,
        patience: t.patience,
        min_delta: t.min_delta,
    })
}

fn check_shape(
    ctx: &Ctx,
    shape: &[usize],
    problems: usize,
    path: &[Seg],
) -> Result<(), SweepError> {
    let io = format!(
        "{} inputs and {} outputs for {} problems",
        2 * problems,
        problems,
        problems
    );
    if shape.len() < 3 {
        return Err(ctx.err(
            path,
            format!(
                "shape {shape:?} has no hidden layer; give [{io_in}, hidden..., {problems}] ({io})",
                io_in = 2 * problems
            ),
        ));
    }
    if let Some(i) = shape.iter().position(|&w| w == 0) {
        return Err(ctx.err(
            &index(path, i),
            format!("width 0 in shape {shape:?}; every layer needs at least one neuron"),
        ));
    }
    if shape[0] != 2 * problems || shape[shape.len() - 1] != problems {
        return Err(ctx.err(
            path,
            format!("shape {shape:?} does not fit the data: it needs {io}"),
        ));
    }
    match schedule::checked_weight_count(shape) {
        Some(w) if w <= MAX_WEIGHTS => Ok(()),
        _ => Err(ctx.err(
            path,
            format!("shape {shape:?} has more than the limit of {MAX_WEIGHTS} weights"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Grid axes written as numbers, lists and ranges.

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

/// Items of a number-or-list field: the values with their paths; an empty list is an error.
fn items<'v>(
    ctx: &Ctx,
    v: &'v Value,
    path: &[Seg],
) -> Result<Vec<(&'v Value, FieldPath)>, SweepError> {
    match v {
        Value::Sequence(list) => {
            if list.is_empty() {
                let name = match path.last() {
                    Some(Seg::Key(k)) => *k,
                    _ => "values",
                };
                return Err(ctx.err(path, empty_list(name)));
            }
            Ok(list
                .iter()
                .enumerate()
                .map(|(i, x)| (x, index(path, i)))
                .collect())
        }
        other => Ok(vec![(other, path.to_vec())]),
    }
}

fn parse_rates(ctx: &Ctx, v: &Value, path: &[Seg]) -> Result<Vec<Item<f64>>, SweepError> {
    let mut out: Vec<Item<f64>> = Vec::new();
    for (x, p) in items(ctx, v, path)? {
        let r = match x {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
        .ok_or_else(|| {
            ctx.err(
                &p,
                format!(
                    "{} is not a rate; give a number in (0, 1) or a list of them",
                    describe(x)
                ),
            )
        })?;
        if !(r > 0.0 && r < 1.0) {
            return Err(ctx.err(&p, format!("{r} is outside (0, 1)")));
        }
        if out.iter().any(|o| o.value == r) {
            return Err(ctx.err(&p, format!("rate {r} is listed twice")));
        }
        out.push(Item { value: r, path: p });
    }
    Ok(out)
}

/// Parses `"a..b"` / `"a..=b"` (inclusive); `None` when `s` is not range syntax.
fn parse_range(s: &str) -> Option<Result<(u64, u64), String>> {
    let (a, b) = s.split_once("..")?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let (a, b) = (a.trim(), b.trim());
    let parse = |x: &str| {
        x.parse::<u64>()
            .ok()
            .filter(|_| x.chars().all(|c| c.is_ascii_digit()))
    };
    Some(match (parse(a), parse(b)) {
        (Some(a), Some(b)) if a <= b => Ok((a, b)),
        (Some(a), Some(b)) => Err(format!(
            "range {s:?} is empty ({a} > {b}); write \"low..high\", both ends included"
        )),
        _ => Err(format!(
            "{s:?} is not a range; write \"low..high\" with whole numbers, both ends included, e.g. \"0..20\""
        )),
    })
}

/// Counts (levels, extension levels): a whole number, an inclusive range string, or a list of
/// them; each at most [`MAX_LEVELS`], none repeated.
fn parse_counts(
    ctx: &Ctx,
    v: &Value,
    path: &[Seg],
    what: &str,
    allow_zero: bool,
) -> Result<Vec<Item<usize>>, SweepError> {
    let mut out: Vec<Item<usize>> = Vec::new();
    let push = |value: u64, p: &FieldPath, out: &mut Vec<Item<usize>>| -> Result<(), SweepError> {
        if value > MAX_LEVELS as u64 {
            return Err(ctx.err(
                p,
                format!("{value} {what} is more than the limit of {MAX_LEVELS}"),
            ));
        }
        if !allow_zero && value == 0 {
            return Err(ctx.err(p, format!("0 {what} is not allowed")));
        }
        let value = value as usize;
        if out.iter().any(|o| o.value == value) {
            return Err(ctx.err(p, format!("{value} is listed twice in {what}")));
        }
        out.push(Item {
            value,
            path: p.clone(),
        });
        Ok(())
    };
    for (x, p) in items(ctx, v, path)? {
        match x {
            Value::Number(n) if n.as_u64().is_some() => push(n.as_u64().unwrap_or(0), &p, &mut out)?,
            Value::String(s) => match parse_range(s) {
                Some(Ok((a, b))) => {
                    if b > MAX_LEVELS as u64 {
                        return Err(ctx.err(
                            &p,
                            format!("range {s:?} goes beyond the limit of {MAX_LEVELS} {what}"),
                        ));
                    }
                    for value in a..=b {
                        push(value, &p, &mut out)?;
                    }
                }
                Some(Err(msg)) => return Err(ctx.err(&p, msg)),
                None => {
                    return Err(ctx.err(
                        &p,
                        format!("{s:?} is not allowed; give a whole number, an inclusive range \"a..b\", or a list of them"),
                    ))
                }
            },
            other => {
                return Err(ctx.err(
                    &p,
                    format!(
                        "{} is not allowed; give a whole number >= 0, an inclusive range \"a..b\", or a list of them",
                        describe(other)
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// `model.base`: one shape, or a list of shapes.
fn parse_bases(
    ctx: &Ctx,
    v: &Value,
    path: &[Seg],
) -> Result<Vec<(Vec<usize>, FieldPath)>, SweepError> {
    let shape_of = |v: &Value, path: &[Seg]| -> Result<Vec<usize>, SweepError> {
        let Value::Sequence(list) = v else {
            return Err(ctx.err(
                path,
                format!(
                    "{} is not a shape; give a list of layer widths like [4, 8, 8, 2]",
                    describe(v)
                ),
            ));
        };
        list.iter()
            .enumerate()
            .map(|(i, x)| {
                match x {
                    Value::Number(n) => n.as_u64().and_then(|w| usize::try_from(w).ok()),
                    _ => None,
                }
                .ok_or_else(|| {
                    ctx.err(
                        &index(path, i),
                        format!(
                            "{} is not a layer width; widths are whole numbers >= 1",
                            describe(x)
                        ),
                    )
                })
            })
            .collect()
    };
    match v {
        Value::Sequence(list) if list.iter().any(|x| matches!(x, Value::Sequence(_))) => list
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let p = index(path, i);
                Ok((shape_of(x, &p)?, p))
            })
            .collect(),
        Value::Sequence(list) if list.is_empty() => Err(ctx.err(path, empty_list("base"))),
        _ => Ok(vec![(shape_of(v, path)?, path.to_vec())]),
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Count(usize),
    Base,
}

fn parse_targets(ctx: &Ctx, v: &Value, path: &[Seg]) -> Result<Vec<Item<Target>>, SweepError> {
    let mut out = Vec::new();
    for (x, p) in items(ctx, v, path)? {
        let value = match x {
            Value::Number(n) => match n.as_u64() {
                Some(0) => {
                    return Err(ctx.err(&p, "target 0 leaves no weights; the target must be at least 1".to_string()))
                }
                Some(c) => Target::Count(usize::try_from(c).unwrap_or(usize::MAX)),
                None => {
                    return Err(ctx.err(
                        &p,
                        format!("{n} is not a weight count; give a whole number >= 1, \"base\", or a list of them"),
                    ))
                }
            },
            Value::String(s) if s == "base" => Target::Base,
            other => {
                return Err(ctx.err(
                    &p,
                    format!(
                        "{} is not allowed; give a weight count >= 1, \"base\", or a list of them",
                        describe(other)
                    ),
                ))
            }
        };
        out.push(Item { value, path: p });
    }
    Ok(out)
}

fn parse_seeds(ctx: &Ctx, v: Option<&Value>) -> Result<Seeds, SweepError> {
    let path = vec![Seg::Key("seeds")];
    let Some(v) = v else {
        return Ok(Seeds::Count(4));
    };
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(0) => Err(ctx.err(
                &path,
                "0 seeds is an empty grid; give a count >= 1 or a list of seeds".to_string(),
            )),
            Some(c) => Ok(Seeds::Count(c)),
            None => Err(ctx.err(
                &path,
                format!("{n} is not allowed; give a count >= 1 or a list of whole-number seeds"),
            )),
        },
        Value::Sequence(list) => {
            if list.is_empty() {
                return Err(ctx.err(&path, empty_list("seeds")));
            }
            let mut out: Vec<u64> = Vec::new();
            for (i, x) in list.iter().enumerate() {
                let p = index(&path, i);
                let s = match x {
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                }
                .ok_or_else(|| {
                    ctx.err(
                        &p,
                        format!(
                            "{} is not a seed; seeds are whole numbers >= 0",
                            describe(x)
                        ),
                    )
                })?;
                if out.contains(&s) {
                    return Err(ctx.err(&p, format!("seed {s} is listed twice")));
                }
                out.push(s);
            }
            Ok(Seeds::List(out))
        }
        other => Err(ctx.err(
            &path,
            format!(
                "{} is not allowed; give a count >= 1 or a list of seeds",
                describe(other)
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and where they are.

struct Ctx<'a> {
    source: &'a str,
    locator: Locator,
}

impl<'a> Ctx<'a> {
    fn new(text: &str, source: &'a str) -> Self {
        Ctx {
            source,
            locator: Locator::new(text),
        }
    }

    fn err_at(&self, at: Option<(usize, usize)>, message: String) -> SweepError {
        SweepError {
            source_name: self.source.to_string(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: None,
            message,
        }
    }

    /// An error about the field at `path`, located at its key (or its nearest written ancestor).
    fn err(&self, path: &[Seg], message: String) -> SweepError {
        let mut e = self.err_at(self.locator.locate(path), message);
        if !path.is_empty() {
            e.field = Some(field_name(path));
        }
        e
    }

    fn serde_err(&self, e: serde_yaml::Error) -> SweepError {
        let location = e.location().map(|l| (l.line(), l.column()));
        let mut text = e.to_string();
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line} column {column}");
            if let Some(i) = text.find(&suffix) {
                text.replace_range(i..i + suffix.len(), "");
            }
        }
        // serde_yaml writes "path.to[0].field: message" for errors inside the document.
        let mut field = None;
        if let Some((prefix, rest)) = text.split_once(": ") {
            let is_path = !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._[]?-".contains(c));
            if is_path {
                field = Some(prefix.to_string());
                text = rest.to_string();
            }
        }
        // Name the key itself for unknown and missing fields.
        for marker in ["unknown field `", "missing field `"] {
            if let Some(start) = text.find(marker) {
                let name = &text[start + marker.len()..];
                if let Some(end) = name.find('`') {
                    let name = &name[..end];
                    field = Some(match field {
                        Some(parent) => format!("{parent}.{name}"),
                        None => name.to_string(),
                    });
                }
            }
        }
        if text.starts_with("EOF while parsing") {
            text = "the file is empty; a sweep needs at least `name:`".to_string();
        }
        SweepError {
            source_name: self.source.to_string(),
            line: location.map(|l| l.0),
            column: location.map(|l| l.1),
            field,
            message: text,
        }
    }
}

/// Finds the line and column of a key path in YAML text, without a full parser: block mappings
/// and sequences by indentation, flow mappings and sequences by brackets. Good enough for the
/// sweep files people write; when a path is not found it returns its nearest written ancestor.
struct Locator {
    /// Lines as characters, comments removed, trailing space trimmed.
    lines: Vec<Vec<char>>,
}

type Pos = (usize, usize);

impl Locator {
    fn new(text: &str) -> Self {
        let lines = text
            .lines()
            .map(|line| {
                let mut out: Vec<char> = Vec::new();
                let mut quote: Option<char> = None;
                for c in line.chars() {
                    match quote {
                        Some(q) if c == q => quote = None,
                        Some(_) => {}
                        None if c == '"' || c == '\'' => quote = Some(c),
                        None if c == '#' && out.last().is_none_or(|p| p.is_whitespace()) => break,
                        None => {}
                    }
                    out.push(c);
                }
                while out.last().is_some_and(|c| c.is_whitespace()) {
                    out.pop();
                }
                out
            })
            .collect();
        Locator { lines }
    }

    fn first_content(&self, l: usize) -> Option<usize> {
        self.lines[l].iter().position(|c| !c.is_whitespace())
    }

    fn next_content_line(&self, from: usize) -> Option<(usize, usize)> {
        (from..self.lines.len()).find_map(|l| self.first_content(l).map(|c| (l, c)))
    }

    /// Start of the document's root node (skipping a `---` marker).
    fn root(&self) -> Option<Pos> {
        let (l, c) = self.next_content_line(0)?;
        let line = &self.lines[l];
        if line[c..].starts_with(&['-', '-', '-']) && line.len() == c + 3 {
            return self.next_content_line(l + 1);
        }
        Some((l, c))
    }

    /// 1-based (line, column) of the deepest written part of `path`.
    fn locate(&self, path: &[Seg]) -> Option<(usize, usize)> {
        self.locate_segments(path.iter().map(Seg::as_ref))
    }

    /// 1-based (line, column) of the deepest written part of a dotted field path such as
    /// `model.shapes[1]` (as [`SweepError::field`] names it).
    fn locate_field(&self, field: &str) -> Option<(usize, usize)> {
        self.locate_segments(parse_field(field)?.into_iter())
    }

    fn locate_segments<'s>(
        &self,
        path: impl Iterator<Item = SegRef<'s>>,
    ) -> Option<(usize, usize)> {
        let mut node = self.root();
        let mut found = None;
        for seg in path {
            let seg = &seg;
            let Some(pos) = node else { break };
            let Some((at, value)) = self.child(pos, seg) else {
                break;
            };
            found = Some(at);
            node = value;
        }
        found.map(|(l, c)| (l + 1, c + 1))
    }

    fn char_at(&self, (l, c): Pos) -> Option<char> {
        self.lines.get(l)?.get(c).copied()
    }

    fn is_dash(&self, (l, c): Pos) -> bool {
        self.char_at((l, c)) == Some('-')
            && self.char_at((l, c + 1)).is_none_or(|x| x.is_whitespace())
    }

    /// The position of `seg` inside the node starting at `pos`, and where its value starts.
    fn child(&self, pos: Pos, seg: &SegRef) -> Option<(Pos, Option<Pos>)> {
        match self.char_at(pos)? {
            '{' | '[' => self.flow_child(pos, seg),
            _ if self.is_dash(pos) => match seg {
                SegRef::Index(n) => self.block_item(pos, *n),
                SegRef::Key(_) => None,
            },
            _ => match seg {
                SegRef::Key(k) => self.block_key(pos, k),
                SegRef::Index(_) => None,
            },
        }
    }

    /// Where a value starts after column `from` of line `l` (same line, or a deeper next line).
    fn value_start(&self, l: usize, from: usize, parent_col: usize) -> Option<Pos> {
        let line = &self.lines[l];
        if let Some(c) = (from..line.len()).find(|&c| !line[c].is_whitespace()) {
            return Some((l, c));
        }
        let (l2, c2) = self.next_content_line(l + 1)?;
        if c2 > parent_col || (c2 == parent_col && self.is_dash((l2, c2))) {
            Some((l2, c2))
        } else {
            None
        }
    }

    fn block_key(&self, (l0, col): Pos, k: &str) -> Option<(Pos, Option<Pos>)> {
        for l in l0..self.lines.len() {
            let Some(f) = self.first_content(l) else {
                continue;
            };
            if l > l0 {
                if f < col {
                    break;
                }
                if f > col {
                    continue;
                }
            }
            let line = &self.lines[l];
            if let Some(after) = match_key(&line[col..], k) {
                let after = col + after;
                return Some(((l, col), self.value_start(l, after, col)));
            }
        }
        None
    }

    fn block_item(&self, (l0, col): Pos, n: usize) -> Option<(Pos, Option<Pos>)> {
        let mut count = 0;
        for l in l0..self.lines.len() {
            let Some(f) = self.first_content(l) else {
                continue;
            };
            if l > l0 {
                if f < col {
                    break;
                }
                if f > col {
                    continue;
                }
            }
            if !self.is_dash((l, col)) {
                break;
            }
            if count == n {
                let value = self.value_start(l, col + 1, col);
                let at = match value {
                    Some((vl, vc)) if vl == l => (vl, vc),
                    _ => (l, col),
                };
                return Some((at, value));
            }
            count += 1;
        }
        None
    }

    /// Children of a flow collection starting at `pos` (`{` or `[`).
    fn flow_child(&self, pos: Pos, seg: &SegRef) -> Option<(Pos, Option<Pos>)> {
        let is_map = self.char_at(pos)? == '{';
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        // (start, key text, value start)
        let mut items: Vec<(Pos, String, Option<Pos>)> = Vec::new();
        let mut awaiting_item = false;
        let mut awaiting_value = false;
        let mut seen_colon = false;
        let (mut l, mut c) = pos;
        'scan: while l < self.lines.len() {
            let line = &self.lines[l];
            while c < line.len() {
                let ch = line[c];
                let here = (l, c);
                c += 1;
                if let Some(q) = quote {
                    if ch == q {
                        quote = None;
                    }
                    if depth == 1 && !seen_colon {
                        if let Some(item) = items.last_mut() {
                            item.1.push(ch);
                        }
                    }
                    continue;
                }
                if depth == 1 && !ch.is_whitespace() {
                    if awaiting_item && ch != ',' && ch != ']' && ch != '}' {
                        items.push((here, String::new(), if is_map { None } else { Some(here) }));
                        awaiting_item = false;
                        seen_colon = false;
                    }
                    if awaiting_value && ch != ',' && ch != '}' {
                        if let Some(item) = items.last_mut() {
                            item.2 = Some(here);
                        }
                        awaiting_value = false;
                    }
                }
                match ch {
                    '"' | '\'' => {
                        quote = Some(ch);
                        if depth == 1 && !seen_colon {
                            if let Some(item) = items.last_mut() {
                                item.1.push(ch);
                            }
                        }
                    }
                    '[' | '{' => {
                        depth += 1;
                        if depth == 1 {
                            awaiting_item = true;
                        }
                    }
                    ']' | '}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break 'scan;
                        }
                    }
                    ',' if depth == 1 => {
                        awaiting_item = true;
                        awaiting_value = false;
                    }
                    ':' if depth == 1 && is_map && !seen_colon => {
                        let next = line.get(c).copied();
                        if next.is_none_or(|n| n.is_whitespace() || n == ',' || n == '}') {
                            seen_colon = true;
                            awaiting_value = true;
                        } else if let Some(item) = items.last_mut() {
                            item.1.push(ch);
                        }
                    }
                    _ if depth == 1 && !seen_colon => {
                        if let Some(item) = items.last_mut() {
                            item.1.push(ch);
                        }
                    }
                    _ => {}
                }
            }
            l += 1;
            c = 0;
        }
        match seg {
            SegRef::Key(k) if is_map => items
                .iter()
                .find(|(_, key, _)| unquote(key.trim()) == *k)
                .map(|(at, _, value)| (*at, *value)),
            SegRef::Index(n) if !is_map => items.get(*n).map(|(at, _, value)| (*at, *value)),
            _ => None,
        }
    }
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// If `text` starts with the mapping key `k` (plain or quoted) followed by `:`, the index just
/// after the colon.
fn match_key(text: &[char], k: &str) -> Option<usize> {
    let s: String = text.iter().collect();
    let (key_text, rest_start) =
        if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let end = s[1..].find(q)? + 1;
            (&s[1..end], end + 1)
        } else {
            let end = s.find(':')?;
            (s[..end].trim_end(), end)
        };
    if key_text != k {
        return None;
    }
    let rest = &s[rest_start..];
    let trimmed = rest.trim_start();
    let colon = rest_start + (rest.len() - trimmed.len());
    if !trimmed.starts_with(':') {
        return None;
    }
    let after = &trimmed[1..];
    if !(after.is_empty() || after.starts_with(char::is_whitespace)) {
        return None;
    }
    // Convert the byte offset to a char offset.
    Some(s[..colon + 1].chars().count())
}

#[cfg(test)]
mod planned_levels_tests {
    use super::*;

    #[test]
    fn a_grid_planning_too_many_levels_is_refused() {
        let ok = "name: x\nmodel:\n  shape: [4, 1000, 1000, 2]\npruning:\n  levels: 999\n  rate: 0.001\nseeds: 5000\n";
        assert!(Sweep::from_yaml(ok, "x.yaml").is_ok());
        let big = ok.replace("seeds: 5000", "seeds: 5006");
        let err = Sweep::from_yaml(&big, "x.yaml").unwrap_err().to_string();
        assert!(
            err.contains("plans 5006000 levels") && err.contains("limit of 5000000"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
        Locator::new(text).locate(path)
    }

    #[test]
    fn locates_block_and_flow() {
        let text = "name: x\n# comment\npruning:\n  rate: 0.3  # c\n  levels: [1, 2,  3]\ndata:\n  problems:\n    - kind: circles\n      noise: 0.2\n    - { kind: moons, noise: 0.1 }\nmodel: { shapes: [[4, 8, 2], [4, 0, 2]] }\n";
        use Seg::*;
        assert_eq!(locate(text, &[Key("name")]), Some((1, 1)));
        assert_eq!(locate(text, &[Key("pruning"), Key("rate")]), Some((4, 3)));
        assert_eq!(
            locate(text, &[Key("pruning"), Key("levels"), Index(2)]),
            Some((5, 19))
        );
        assert_eq!(
            locate(
                text,
                &[Key("data"), Key("problems"), Index(0), Key("noise")]
            ),
            Some((9, 7))
        );
        assert_eq!(
            locate(
                text,
                &[Key("data"), Key("problems"), Index(1), Key("noise")]
            ),
            Some((10, 22))
        );
        assert_eq!(
            locate(text, &[Key("model"), Key("shapes"), Index(1), Index(1)]),
            Some((11, 34))
        );
        // Missing leaf: nearest ancestor.
        assert_eq!(locate(text, &[Key("pruning"), Key("target")]), Some((3, 1)));
        assert_eq!(locate(text, &[Key("seeds")]), None);
    }

    #[test]
    fn dash_at_key_indent() {
        let text = "seeds:\n- 1\n- 2\nname: y\n";
        assert_eq!(
            locate(text, &[Seg::Key("seeds"), Seg::Index(1)]),
            Some((3, 3))
        );
        assert_eq!(locate(text, &[Seg::Key("name")]), Some((4, 1)));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0..20"), Some(Ok((0, 20))));
        assert_eq!(parse_range("3..=5"), Some(Ok((3, 5))));
        assert!(matches!(parse_range("5..2"), Some(Err(_))));
        assert!(matches!(parse_range("a..2"), Some(Err(_))));
        assert!(matches!(parse_range("1.."), Some(Err(_))));
        assert!(matches!(parse_range("-1..2"), Some(Err(_))));
        assert_eq!(parse_range("base"), None);
    }

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
}
