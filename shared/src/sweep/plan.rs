//! The validated plan: [`Plan::build`] checks a [`SweepFile`] part by part (name, data,
//! training, pruning axes, model shapes, schedule, seeds, limits) into shapes and grid axes,
//! and [`Plan::points`] resolves its grid points in expansion order.

use super::locate::{index, key, Ctx, FieldPath, Seg};
use super::schema::{
    DataFile, ModelFile, ProblemFile, ProblemKind, PruningFile, ScheduleKind, SweepFile, TrainFile,
};
use super::values::{
    empty_list, parse_bases, parse_counts, parse_couplings, parse_data_seeds, parse_methods,
    parse_rates, parse_rewinds, parse_seeds, parse_targets, Item, Seeds, Target,
};
use super::{SweepError, MAX_PLANNED_LEVELS, MAX_TASKS};
use crate::schedule::{self, ScheduleError, MAX_WEIGHTS};
use crate::spec::{DataSpec, Method, Problem, PruneSpec, Scope, TrainSpec};

/// Most hidden layers of a `model.hidden` grid.
const MAX_DEPTH: usize = 1000;

const PROTOCOL_EXTENSION_RATE: f64 = 0.32;

const MODEL: &[Seg] = &[Seg::Key("model")];
const PRUNING: &[Seg] = &[Seg::Key("pruning")];

/// One shape of the grid and where it was written.
#[derive(Debug, Clone)]
pub(super) struct ShapePoint {
    pub(super) shape: Vec<usize>,
    pub(super) extension_level: Option<usize>,
    /// Index into [`Plan::bases`] when the shape is an extension of a base.
    base: Option<usize>,
    path: FieldPath,
}

impl ShapePoint {
    /// A shape written as it is (not extended from a base).
    fn plain(shape: Vec<usize>, path: FieldPath) -> ShapePoint {
        ShapePoint {
            shape,
            extension_level: None,
            base: None,
            path,
        }
    }
}

/// The pruning settings of every shape.
#[derive(Debug, Clone)]
enum Grid {
    /// The thesis's extension schedule at this extension rate, pruning down to the weights of
    /// the extension at level `to` (0: the base).
    Trajectory { rate: f64, to: usize },
    /// Exact counts; `None` axes are derived per point.
    Exact {
        rates: Option<Vec<Item<f64>>>,
        levels: Option<Vec<Item<usize>>>,
        targets: Option<Vec<Item<Target>>>,
    },
}

impl Grid {
    /// Pruning settings per shape: the product of the written axes (saturating).
    fn per_shape(&self) -> usize {
        match self {
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
        }
    }
}

/// A validated sweep: data, training, the shapes and the pruning grid, and the seeds.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The data set of every task, its seed aside (`data_seeds`).
    pub(super) data: DataSpec,
    /// The data seeds, a grid axis, in file order.
    pub(super) data_seeds: Vec<u64>,
    pub(super) train: TrainSpec,
    pub(super) shapes: Vec<ShapePoint>,
    /// The base shapes of the extension experiment, in file order.
    bases: Vec<Vec<usize>>,
    grid: Grid,
    scope: Scope,
    stop_at_first_degraded: bool,
    stop_at_first_split: bool,
    /// `pruning.method`, a grid axis inside each pruning point.
    methods: Vec<Item<Method>>,
    /// `data.coupling` in degrees, a grid axis.
    couplings: Vec<Item<f64>>,
    /// `train.rewind_epochs`, a grid axis.
    rewinds: Vec<Item<usize>>,
    pub(super) seeds: Seeds,
}

/// A resolved grid point: a shape and its pruning (seed not yet applied).
pub(super) struct Point {
    /// Index into [`Plan::shapes`].
    pub(super) shape: usize,
    pub(super) prune: PruneSpec,
}

/// The pruning axes as written, before the schedule decides what they mean.
struct PruningAxes {
    rates: Option<Vec<Item<f64>>>,
    levels: Option<Vec<Item<usize>>>,
    targets: Option<Vec<Item<Target>>>,
}

/// The shapes of the grid, from `model`.
struct Model {
    shapes: Vec<ShapePoint>,
    /// The base shapes of the extension experiment, in file order (empty otherwise).
    bases: Vec<Vec<usize>>,
    /// The extension rate, when the model is extended from base shapes.
    extension_rate: Option<f64>,
}

impl Model {
    /// Shapes written out in full (`shape`, `shapes`, `hidden`).
    fn plain(shapes: Vec<ShapePoint>) -> Model {
        Model {
            shapes,
            bases: Vec::new(),
            extension_rate: None,
        }
    }
}

impl Plan {
    /// Validates the file part by part, always in this order (name, data, coupling, train,
    /// rewinding, pruning method, pruning axes, model, schedule, seeds, task count), returning the first error; the grid is sized
    /// before anything is materialised.
    pub(super) fn build(ctx: &Ctx, file: &SweepFile) -> Result<Plan, SweepError> {
        check_name(ctx, &file.name)?;
        let data = build_data(ctx, &file.data)?;
        let data_seeds = parse_data_seeds(ctx, file.data.seed.as_ref())?;
        let couplings = parse_couplings(ctx, file.data.coupling.as_ref(), data.problems.len())?;
        let train = build_train(ctx, &file.train)?;
        let rewinds = parse_rewinds(ctx, file.train.rewind_epochs.as_ref(), train.max_epochs)?;
        let p = &file.pruning;
        let methods = parse_methods(ctx, p.method.as_ref(), &key(PRUNING, "method"))?;
        let axes = parse_pruning_axes(ctx, p)?;
        let model = build_model(ctx, &file.model, data.problems.len(), axes.rates.as_deref())?;
        let grid = build_grid(ctx, p, axes, model.extension_rate, &model.bases)?;
        let seeds = parse_seeds(ctx, file.seeds.as_ref())?;
        let per_seed = [
            methods.len(),
            couplings.len(),
            rewinds.len(),
            data_seeds.len(),
        ];
        check_task_count(ctx, model.shapes.len(), &grid, per_seed, &seeds)?;
        Ok(Plan {
            data,
            data_seeds,
            train,
            shapes: model.shapes,
            bases: model.bases,
            grid,
            scope: p.scope,
            stop_at_first_degraded: p.stop_at_first_degraded,
            stop_at_first_split: p.stop_at_first_split,
            methods,
            couplings,
            rewinds,
            seeds,
        })
    }

    /// Resolves every grid point once (without materialising the remaining counts) so that
    /// errors surface at parse time, and checks the total of planned levels against
    /// [`MAX_PLANNED_LEVELS`].
    pub(super) fn check_points(&self, ctx: &Ctx) -> Result<(), SweepError> {
        let points = self.points(ctx, false)?;
        self.check_rewinds(ctx, &points)?;
        let planned = points
            .iter()
            .try_fold(0usize, |sum, p| {
                sum.checked_add(p.prune.levels.saturating_add(1))
            })
            .and_then(|per_seed| per_seed.checked_mul(self.seeds.len()))
            .and_then(|n| n.checked_mul(self.data_seeds.len()))
            .and_then(|n| n.checked_mul(self.couplings.len()))
            .and_then(|n| n.checked_mul(self.rewinds.len()));
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
        Ok(())
    }

    /// Rewinding needs a level to rewind: a rewind above 0 is refused, at the rewind, when a
    /// grid point has no pruning level.
    fn check_rewinds(&self, ctx: &Ctx, points: &[Point]) -> Result<(), SweepError> {
        let Some(rewind) = self.rewinds.iter().find(|r| r.value > 0) else {
            return Ok(());
        };
        match points.iter().find(|p| p.prune.levels == 0) {
            None => Ok(()),
            Some(p) => Err(ctx.err(
                &rewind.path,
                format!(
                    "rewinding {} epochs needs pruning levels, but shape {:?} has 0 (the dense \
                     network alone has no later level to rewind); give levels >= 1, or put the \
                     rewound runs in a sweep of their own",
                    rewind.value, self.shapes[p.shape].shape
                ),
            )),
        }
    }

    /// Resolves every (shape, rate, levels, target, method) point in expansion order. With
    /// `materialise == false` the remaining counts are left empty (validation only).
    pub(super) fn points(&self, ctx: &Ctx, materialise: bool) -> Result<Vec<Point>, SweepError> {
        let mut points = Vec::new();
        let prune = |rate: f64, levels: usize, target: usize, remaining: Vec<usize>| PruneSpec {
            scope: self.scope,
            method: Method::Magnitude,
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
                Grid::Trajectory { rate, to } => {
                    let base = &self.bases[sp.base.unwrap_or(0)];
                    let level = sp.extension_level.unwrap_or(0);
                    let Some(levels) = level.checked_sub(*to) else {
                        return Err(ctx.err(
                            &key(PRUNING, "trajectory_to"),
                            format!(
                                "extension level {level} is below pruning.trajectory_to {to}: \
                                 the trajectory prunes down, never up; start model.extension_levels at {to}"
                            ),
                        ));
                    };
                    let remaining = if materialise {
                        let mut counts = schedule::trajectory_counts(base, *rate, level)
                            .map_err(|e| ctx.err(&sp.path, e.to_string()))?;
                        counts.truncate(levels + 1);
                        counts
                    } else {
                        Vec::new()
                    };
                    let target = if *to == 0 {
                        schedule::weight_count(base)
                    } else {
                        let shape = schedule::extension_shape(base, *rate, *to)
                            .map_err(|e| ctx.err(&sp.path, e.to_string()))?;
                        schedule::weight_count(&shape)
                    };
                    let rate = if levels == 0 { 0.0 } else { *rate };
                    self.push_methods(&mut points, si, prune(rate, levels, target, remaining));
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
                                    t.as_ref().map(|i| self.target_count(sp, i.value)),
                                )
                                .map_err(|e| {
                                    resolve_error(ctx, e, sp, weights, l.as_ref(), t.as_ref())
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
                                let spec = prune(
                                    resolved.rate,
                                    resolved.levels,
                                    resolved.target,
                                    remaining,
                                );
                                self.push_methods(&mut points, si, spec);
                            }
                        }
                    }
                }
            }
        }
        Ok(points)
    }

    /// One point per pruning method (innermost of the pruning axes), `prune` under each.
    fn push_methods(&self, points: &mut Vec<Point>, shape: usize, prune: PruneSpec) {
        for method in &self.methods {
            points.push(Point {
                shape,
                prune: PruneSpec {
                    method: method.value,
                    ..prune.clone()
                },
            });
        }
    }

    /// The (coupling, rewind epochs) pairs of every pruning point, couplings outer, in file
    /// order.
    pub(super) fn controls(&self) -> Vec<(f64, usize)> {
        self.couplings
            .iter()
            .flat_map(|c| self.rewinds.iter().map(move |r| (c.value, r.value)))
            .collect()
    }

    /// The weight count a target stands for at shape `sp` (`base`: its base's weight count).
    fn target_count(&self, sp: &ShapePoint, target: Target) -> usize {
        match target {
            Target::Count(c) => c,
            Target::Base => sp
                .base
                .map_or(0, |b| schedule::weight_count(&self.bases[b])),
        }
    }
}

/// A grid axis as a list of optional values: `[None]` when the axis is derived.
fn axis<T: Clone>(a: &Option<Vec<Item<T>>>) -> Vec<Option<Item<T>>> {
    a.as_ref()
        .map_or(vec![None], |v| v.iter().cloned().map(Some).collect())
}

/// A grid point that does not resolve, located at the axis value that caused it.
fn resolve_error(
    ctx: &Ctx,
    e: ScheduleError,
    sp: &ShapePoint,
    weights: usize,
    level: Option<&Item<usize>>,
    target: Option<&Item<Target>>,
) -> SweepError {
    let path = match (&e, target, level) {
        (
            ScheduleError::TargetZero
            | ScheduleError::TargetTooLarge { .. }
            | ScheduleError::ZeroLevels { .. }
            | ScheduleError::TooManyLevels { .. },
            Some(t),
            _,
        ) => t.path.clone(),
        (ScheduleError::NoWeightsLeft { .. }, _, Some(l)) => l.path.clone(),
        _ => PRUNING.to_vec(),
    };
    let message = match e {
        ScheduleError::TargetTooLarge { target, .. } => format!(
            "target {target} is larger than the network: shape {:?} has {weights} weights; the target must be at most the weight count",
            sp.shape
        ),
        e => format!("{e} (shape {:?}, {weights} weights)", sp.shape),
    };
    ctx.err(&path, message)
}

// ---------------------------------------------------------------------------------------------
// Name, data and training.

/// `name`: 1 to 128 of a-z, 0-9, `.`, `_`, `-`.
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

/// `data`: the problems (the protocol's circles and moons by default), samples and split.
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
        // Each task gets one of the plan's `data_seeds` and `couplings`.
        seed: 0,
        coupling: 0.0,
    })
}

/// One `data.problems` entry: only the parameters its kind takes, each in range.
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

/// `train`: the optimiser and early-stopping settings, each in range.
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
        // Each task gets one of the plan's `rewinds`.
        rewind_epochs: 0,
    })
}

// ---------------------------------------------------------------------------------------------
// Pruning axes.

/// `pruning.rate`, `levels` and `target` as written (each a value or a list).
fn parse_pruning_axes(ctx: &Ctx, p: &PruningFile) -> Result<PruningAxes, SweepError> {
    let rates = match &p.rate {
        Some(v) => Some(parse_rates(ctx, v, &key(PRUNING, "rate"))?),
        None => None,
    };
    let levels = match &p.levels {
        Some(v) => Some(parse_counts(
            ctx,
            v,
            &key(PRUNING, "levels"),
            "levels",
            true,
        )?),
        None => None,
    };
    let targets = match &p.target {
        Some(v) => Some(parse_targets(ctx, v, &key(PRUNING, "target"))?),
        None => None,
    };
    Ok(PruningAxes {
        rates,
        levels,
        targets,
    })
}

// ---------------------------------------------------------------------------------------------
// Model shapes.

/// The shapes of `model`: exactly one of `shape`, `shapes`, `hidden` (with `depth`) or `base`
/// (with `extension_*`), the protocol's base when none is given. `rates` are the pruning
/// rates, the default extension rate.
fn build_model(
    ctx: &Ctx,
    m: &ModelFile,
    problems: usize,
    rates: Option<&[Item<f64>]>,
) -> Result<Model, SweepError> {
    check_model_keys(ctx, m)?;
    if let Some(shape) = &m.shape {
        single_shape(ctx, shape, problems).map(|s| Model::plain(vec![s]))
    } else if let Some(list) = &m.shapes {
        listed_shapes(ctx, list, problems).map(Model::plain)
    } else if let Some(list) = &m.hidden {
        hidden_shapes(ctx, list, m.depth, problems).map(Model::plain)
    } else {
        extended_shapes(ctx, m, problems, rates)
    }
}

/// At most one way of giving the shapes, and `depth` / `extension_*` only with theirs.
fn check_model_keys(ctx: &Ctx, m: &ModelFile) -> Result<(), SweepError> {
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
            &key(MODEL, given[1]),
            format!(
                "{} are both given; give exactly one of shape, shapes, hidden (with depth) or base (with extension_levels)",
                given.join(" and ")
            ),
        ));
    }
    if m.depth.is_some() && m.hidden.is_none() {
        return Err(ctx.err(
            &key(MODEL, "depth"),
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
                &key(MODEL, k),
                format!("{k} applies only to model.base (the extension experiment)"),
            ));
        }
    }
    Ok(())
}

/// `model.shape`.
fn single_shape(ctx: &Ctx, shape: &[usize], problems: usize) -> Result<ShapePoint, SweepError> {
    let path = key(MODEL, "shape");
    check_shape(ctx, shape, problems, &path)?;
    Ok(ShapePoint::plain(shape.to_vec(), path))
}

/// `model.shapes`: a non-empty list of distinct shapes.
fn listed_shapes(
    ctx: &Ctx,
    list: &[Vec<usize>],
    problems: usize,
) -> Result<Vec<ShapePoint>, SweepError> {
    let path = key(MODEL, "shapes");
    if list.is_empty() {
        return Err(ctx.err(&path, empty_list("shapes")));
    }
    let mut shapes = Vec::new();
    for (i, shape) in list.iter().enumerate() {
        let path = index(&path, i);
        check_shape(ctx, shape, problems, &path)?;
        if list[..i].contains(shape) {
            return Err(ctx.err(&path, format!("shape {shape:?} is listed twice")));
        }
        shapes.push(ShapePoint::plain(shape.clone(), path));
    }
    Ok(shapes)
}

/// `model.hidden`: distinct hidden widths, each `depth` (default 2) hidden layers of it.
fn hidden_shapes(
    ctx: &Ctx,
    list: &[usize],
    depth: Option<usize>,
    problems: usize,
) -> Result<Vec<ShapePoint>, SweepError> {
    let path = key(MODEL, "hidden");
    if list.is_empty() {
        return Err(ctx.err(&path, empty_list("hidden")));
    }
    let depth = depth.unwrap_or(2);
    if depth == 0 || depth > MAX_DEPTH {
        return Err(ctx.err(
            &key(MODEL, "depth"),
            format!("depth {depth} is outside 1..={MAX_DEPTH} (the number of hidden layers)"),
        ));
    }
    let mut shapes = Vec::new();
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
        let mut shape = vec![2 * problems];
        shape.extend(std::iter::repeat_n(h, depth));
        shape.push(problems);
        check_shape(ctx, &shape, problems, &path)?;
        shapes.push(ShapePoint::plain(shape, path));
    }
    Ok(shapes)
}

/// Model extension: every base (`model.base`, or the protocol's `[2n, 8, 8, n]`) extended to
/// every extension level, bases outer.
fn extended_shapes(
    ctx: &Ctx,
    m: &ModelFile,
    problems: usize,
    rates: Option<&[Item<f64>]>,
) -> Result<Model, SweepError> {
    let bases = extension_bases(ctx, m, problems)?;
    let rate = extension_rate(ctx, m.extension_rate, rates)?;
    let levels_path = key(MODEL, "extension_levels");
    let ext_levels = match &m.extension_levels {
        Some(v) => parse_counts(ctx, v, &levels_path, "extension levels", true)?,
        None => (0..=25)
            .map(|i| Item {
                value: i,
                path: levels_path.clone(),
            })
            .collect(),
    };
    let mut shapes = Vec::new();
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
    Ok(Model {
        shapes,
        bases,
        extension_rate: Some(rate),
    })
}

/// The distinct base shapes, each with hidden layers of one width.
fn extension_bases(
    ctx: &Ctx,
    m: &ModelFile,
    problems: usize,
) -> Result<Vec<Vec<usize>>, SweepError> {
    let base_list = match &m.base {
        Some(v) => parse_bases(ctx, v, &key(MODEL, "base"))?,
        None => vec![(vec![2 * problems, 8, 8, problems], MODEL.to_vec())],
    };
    let mut bases: Vec<Vec<usize>> = Vec::new();
    for (base, base_path) in &base_list {
        check_shape(ctx, base, problems, base_path)?;
        if schedule::extension_width(base, 0.5, 0).is_err() {
            return Err(ctx.err(
                base_path,
                format!("base shape {base:?} must have all hidden layers of the same width"),
            ));
        }
        if bases.contains(base) {
            return Err(ctx.err(base_path, format!("base {base:?} is listed twice")));
        }
        bases.push(base.clone());
    }
    Ok(bases)
}

/// `model.extension_rate`; by default the pruning rate if it is one value, else the
/// protocol's.
fn extension_rate(
    ctx: &Ctx,
    written: Option<f64>,
    rates: Option<&[Item<f64>]>,
) -> Result<f64, SweepError> {
    match written {
        Some(r) => {
            if !(r > 0.0 && r < 1.0) {
                return Err(ctx.err(
                    &key(MODEL, "extension_rate"),
                    format!("{r} is outside (0, 1): the extension rate sets how much each extension level grows"),
                ));
            }
            Ok(r)
        }
        None => match rates {
            Some(rs) if rs.len() == 1 => Ok(rs[0].value),
            Some(_) => Err(ctx.err(
                &key(PRUNING, "rate"),
                "several pruning rates with model.base: give model.extension_rate to fix the extended shapes".to_string(),
            )),
            None => Ok(PROTOCOL_EXTENSION_RATE),
        },
    }
}

/// Checks a shape against the data (2 inputs and 1 output per problem), for a hidden layer,
/// zero widths and the weight limit.
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
// Schedule and grid.

/// The grid of pruning settings: `pruning.schedule` (by default trajectory for an extended
/// model when pruning gives neither levels nor target, else exact) with the axes it allows.
fn build_grid(
    ctx: &Ctx,
    p: &PruningFile,
    axes: PruningAxes,
    extension_rate: Option<f64>,
    bases: &[Vec<usize>],
) -> Result<Grid, SweepError> {
    let kind = match p.schedule {
        Some(k) => k,
        None if extension_rate.is_some() && axes.levels.is_none() && axes.targets.is_none() => {
            ScheduleKind::Trajectory
        }
        None => ScheduleKind::Exact,
    };
    match kind {
        ScheduleKind::Trajectory => trajectory_grid(ctx, &axes, extension_rate, p.trajectory_to),
        ScheduleKind::Exact if p.trajectory_to.is_some() => Err(ctx.err(
            &key(PRUNING, "trajectory_to"),
            "trajectory_to applies to the trajectory schedule only; remove it or use schedule: trajectory"
                .to_string(),
        )),
        ScheduleKind::Exact => exact_grid(ctx, axes, bases),
    }
}

/// The trajectory schedule: needs an extended model, takes levels and target from it, and at
/// most the extension rate as the pruning rate.
fn trajectory_grid(
    ctx: &Ctx,
    axes: &PruningAxes,
    extension_rate: Option<f64>,
    to: Option<usize>,
) -> Result<Grid, SweepError> {
    let Some(rate) = extension_rate else {
        return Err(ctx.err(
            &key(PRUNING, "schedule"),
            "trajectory needs model.base (it prunes through the smaller extension shapes); use exact".to_string(),
        ));
    };
    for (k, g) in [
        ("levels", axes.levels.is_some()),
        ("target", axes.targets.is_some()),
    ] {
        if g {
            return Err(ctx.err(
                &key(PRUNING, k),
                format!("the trajectory schedule takes its {k} from the extension level and model.base; remove pruning.{k} or use schedule: exact"),
            ));
        }
    }
    if let Some(rs) = &axes.rates {
        if rs.len() > 1 || rs[0].value != rate {
            return Err(ctx.err(
                &key(PRUNING, "rate"),
                format!("the trajectory schedule prunes at the extension rate {rate}; give one rate equal to model.extension_rate, or none"),
            ));
        }
    }
    Ok(Grid::Trajectory {
        rate,
        to: to.unwrap_or(0),
    })
}

/// The exact schedule: exactly two of rate, levels and target; targets distinct, and `base`
/// only with base shapes.
fn exact_grid(ctx: &Ctx, axes: PruningAxes, bases: &[Vec<usize>]) -> Result<Grid, SweepError> {
    let PruningAxes {
        rates,
        levels,
        targets,
    } = axes;
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
            PRUNING,
            format!("{what} of rate, levels and target (T = W (1-p)^L fixes the third)"),
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
    Ok(Grid::Exact {
        rates,
        levels,
        targets,
    })
}

// ---------------------------------------------------------------------------------------------
// Limits.

/// The full grid product (shapes x pruning settings x methods x couplings x rewinds x data
/// seeds x seeds) is at most [`MAX_TASKS`]; `axes` are the counts of methods, couplings,
/// rewinds and data seeds.
fn check_task_count(
    ctx: &Ctx,
    shapes: usize,
    grid: &Grid,
    axes: [usize; 4],
    seeds: &Seeds,
) -> Result<(), SweepError> {
    let per_shape = grid.per_shape();
    let [methods, couplings, rewinds, data_seeds] = axes;
    let controls = methods
        .checked_mul(couplings)
        .and_then(|x| x.checked_mul(rewinds));
    let total = shapes
        .checked_mul(per_shape)
        .and_then(|x| controls.and_then(|c| x.checked_mul(c)))
        .and_then(|x| x.checked_mul(data_seeds))
        .and_then(|x| x.checked_mul(seeds.len()));
    match total {
        Some(t) if t <= MAX_TASKS => Ok(()),
        _ => {
            let count = total.map_or_else(|| "more than 2^64".to_string(), |t| t.to_string());
            Err(ctx.err_at(
                None,
                format!(
                    "the sweep expands to {count} tasks ({shapes} shapes x {per_shape} pruning settings{} x {data_seeds} data seeds x {} seeds), more than the limit of {MAX_TASKS}; split it into several sweeps",
                    controls_text(methods, couplings, rewinds),
                    seeds.len()
                ),
            ))
        }
    }
}

/// The control axes of a task count's explanation, those with more than one value.
fn controls_text(methods: usize, couplings: usize, rewinds: usize) -> String {
    [
        (methods, "methods"),
        (couplings, "couplings"),
        (rewinds, "rewinds"),
    ]
    .iter()
    .filter(|(n, _)| *n > 1)
    .map(|(n, what)| format!(" x {n} {what}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Sweep;

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
