//! The IMP trajectory of one task (docs/PROTOCOL.md "Iterative magnitude pruning"):
//! 1. train, 2. prune, 3. reset, 4. repeat.
//!
//! Level 0 trains the dense network from theta_0. Every later level prunes the trained weights
//! of the level before down to exactly `prune.remaining[level]` weights, resets every weight
//! and bias to theta_0 (masks stay), and trains again. Each level's mask is analysed as a ticket
//! graph and handed to the caller before the next level starts.
//!
//! The controls: `prune.method: random` removes the same counts at random positions
//! ([`prune::prune_random`]) instead of the smallest magnitudes; `train.rewind_epochs: k > 0`
//! (late resetting) resets every level after the dense one to the weights and biases the dense
//! level had after `k` epochs (after its last epoch if it stopped earlier) instead of theta_0.
//! Adam's state is never rewound: every level starts Adam afresh, as the protocol does.
//!
//! Determinism: theta_0 comes from the task seed (ChaCha8 stream 0); the batch order of level
//! `l` from stream `l + 1` of the same seed; random pruning down to level `l` from stream
//! [`RANDOM_PRUNE_STREAM`]` + l`. Nothing else is random, so a trajectory resumed at level `l`
//! from the stored mask of level `l - 1` (retrained, then pruned) is bit-identical to an
//! uninterrupted one. A rewinding task resumed past level 0 recomputes its rewind point by
//! replaying the dense level's first `k` epochs ([`Trainer::rewind_point`]); a random-pruning
//! one does not retrain the level before the resume point (its pruning ignores the weights).
//!
//! Threads: [`run_task`] trains on the rayon pool it is called in; [`run_task_on`] asks for a
//! pool before every level, so that a worker can give a task more threads (or fewer) between
//! levels. The engine's arithmetic does not depend on the thread count, so neither do the
//! results.

use std::ops::ControlFlow;

use dfdx::prelude::Cpu;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::debug;

use shared::data::Dataset;
use shared::graph::{analyze, LayerMask};
use shared::metrics::LevelMetrics;
use shared::spec::{Method, TaskSpec, TrainSpec};

use crate::engine::layout::{Plan, SPARSE_BELOW};
use crate::model::Params;
use crate::prune::{self, BoolMasks};
use crate::train::{train_level, Cancel, Stopped, TrainedLevel};

/// One finished level: its figures and the mask the network was trained with at that level.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelOutcome {
    pub metrics: LevelMetrics,
    pub masks: Vec<LayerMask>,
}

/// Where to pick a trajectory up: the first level not yet reported, and the stored mask of the
/// level before it (`None` when `level == 0`).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub level: usize,
    pub previous_masks: Option<Vec<LayerMask>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImpError {
    #[error("invalid task: {0}")]
    InvalidTask(String),
    #[error("cannot resume: {0}")]
    BadResume(String),
    #[error("cancelled")]
    Cancelled,
    #[error("training diverged at level {level}, epoch {epoch}: the held-out loss is {loss}")]
    Diverged {
        level: usize,
        epoch: usize,
        loss: f64,
    },
}

/// Runs the IMP trajectory of `spec` from `resume`, calling `on_level` after every level in
/// order. `on_level` returning `Break` stops the run after that level (Ok). Setting `cancel`
/// stops training between epochs with `ImpError::Cancelled`. Deterministic: the same spec and
/// resume point give bit-identical outcomes, whatever the thread count.
pub fn run_task(
    spec: &TaskSpec,
    resume: Resume,
    cancel: &dyn Cancel,
    on_level: impl FnMut(LevelOutcome) -> ControlFlow<()>,
) -> Result<(), ImpError> {
    run(spec, resume, cancel, SPARSE_BELOW, None, on_level)
}

/// The pool a level trains in, asked for before each level with the level's plan (a worker's
/// share of its cores for the task at that moment, where more threads pay); `None`: the
/// caller's pool.
pub type LevelPool<'a> = &'a (dyn Fn(&Plan) -> Option<std::sync::Arc<rayon::ThreadPool>> + Sync);

/// [`run_task`] with every level (and the retraining before a resume point) trained in the
/// pool that `level_pool` gives at its start.
pub fn run_task_on(
    spec: &TaskSpec,
    resume: Resume,
    cancel: &dyn Cancel,
    level_pool: LevelPool,
    on_level: impl FnMut(LevelOutcome) -> ControlFlow<()>,
) -> Result<(), ImpError> {
    run(
        spec,
        resume,
        cancel,
        SPARSE_BELOW,
        Some(level_pool),
        on_level,
    )
}

/// [`run_task`] with another density below which layers train sparse (`0.0`: every layer
/// with a kept weight dense; `f64::INFINITY`: every layer sparse). For tests and benchmarks
/// that compare the paths; a worker always uses the engine's threshold.
pub fn run_task_with(
    spec: &TaskSpec,
    resume: Resume,
    cancel: &dyn Cancel,
    sparse_below: f64,
    on_level: impl FnMut(LevelOutcome) -> ControlFlow<()>,
) -> Result<(), ImpError> {
    run(spec, resume, cancel, sparse_below, None, on_level)
}

fn run(
    spec: &TaskSpec,
    resume: Resume,
    cancel: &dyn Cancel,
    sparse_below: f64,
    level_pool: Option<LevelPool>,
    mut on_level: impl FnMut(LevelOutcome) -> ControlFlow<()>,
) -> Result<(), ImpError> {
    spec.check()
        .map_err(|e| ImpError::InvalidTask(e.to_string()))?;
    let data = shared::data::generate(&spec.data)
        .map_err(|e| ImpError::InvalidTask(format!("data: {e}")))?;
    let trainer = Trainer {
        dev: Cpu::seed_from_u64(spec.seed),
        theta0: Params::init(&spec.shape, spec.train.init, spec.seed),
        data,
        spec,
        sparse_below,
        cancel,
        level_pool,
    };
    let tasks = spec.task_io();
    let levels = spec.prune.levels;
    let rewind = spec.train.rewind_epochs;
    // Where every level after the dense one starts: theta_0 (`None`) or the rewind point.
    let mut rewound: Option<Params> = None;

    let mut masks = match (resume.level, resume.previous_masks) {
        (0, _) => prune::dense(&spec.shape),
        (level, _) if level > levels => {
            return Err(ImpError::BadResume(format!(
                "level {level} is past the last level {levels}"
            )))
        }
        (_, None) => return Err(ImpError::BadResume("no mask for the previous level".into())),
        (level, Some(previous)) => {
            let mut masks = resumed_masks(spec, &previous, level)?;
            if rewind > 0 {
                rewound = Some(trainer.rewind_point()?);
            }
            if spec.prune.method == Method::Random {
                // Random pruning does not look at the trained weights.
                prune_random_to(spec, &mut masks, level);
            } else {
                debug!(
                    level = level - 1,
                    "retraining the level before the resume point"
                );
                let start = trainer.start(level - 1, rewound.as_ref());
                let trained = trainer.train(start, &masks, level - 1, None, &spec.train)?;
                prune_to(spec, &trained.params, &mut masks, level);
            }
            masks
        }
    };

    for level in resume.level..=levels {
        let start = trainer.start(level, rewound.as_ref());
        let keep_after = (level == 0 && rewind > 0).then_some(rewind);
        let trained = trainer.train(start, &masks, level, keep_after, &spec.train)?;
        if let Some(point) = trained.kept {
            rewound = Some(point);
        }
        let exchanged = prune::to_layer_masks(&spec.shape, &masks);
        let graph = analyze(&exchanged, &tasks);
        let metrics = LevelMetrics::new(level, &graph, trained.figures);
        debug!(
            level,
            remaining = metrics.remaining_weights,
            active = metrics.active_weights,
            status = ?metrics.status,
            epochs = metrics.epochs,
            "level finished"
        );
        let stop = spec.prune.stops_after(graph.status);
        if on_level(LevelOutcome {
            metrics,
            masks: exchanged,
        })
        .is_break()
            || stop
        {
            return Ok(());
        }
        if level < levels {
            prune_to(spec, &trained.params, &mut masks, level + 1);
        }
    }
    Ok(())
}

/// The stored mask of the level before the resume point `level`, checked against the shape
/// and the schedule.
fn resumed_masks(
    spec: &TaskSpec,
    previous: &[LayerMask],
    level: usize,
) -> Result<BoolMasks, ImpError> {
    let masks = prune::from_layer_masks(&spec.shape, previous).ok_or_else(|| {
        ImpError::BadResume(format!(
            "the mask of level {} does not fit the shape",
            level - 1
        ))
    })?;
    let expected = spec.prune.remaining[level - 1];
    if prune::kept(&masks) != expected {
        return Err(ImpError::BadResume(format!(
            "the mask of level {} keeps {} weights, the schedule says {expected}",
            level - 1,
            prune::kept(&masks)
        )));
    }
    Ok(masks)
}

/// What training a level of one task needs.
struct Trainer<'a> {
    dev: Cpu,
    data: Dataset,
    theta0: Params,
    spec: &'a TaskSpec,
    sparse_below: f64,
    cancel: &'a dyn Cancel,
    /// Where each level trains; `None`: the pool of the caller.
    level_pool: Option<LevelPool<'a>>,
}

impl Trainer<'_> {
    /// Where `level` starts: the dense level from theta_0, every later one from the rewind
    /// point when there is one, else from theta_0.
    fn start<'p>(&'p self, level: usize, rewound: Option<&'p Params>) -> &'p Params {
        match (level, rewound) {
            (1.., Some(point)) => point,
            _ => &self.theta0,
        }
    }

    /// Resets to `start` under `masks` and trains one level with that level's batch order and
    /// the settings `train`; `keep_after` as [`train_level`]'s.
    fn train(
        &self,
        start: &Params,
        masks: &BoolMasks,
        level: usize,
        keep_after: Option<usize>,
        train: &TrainSpec,
    ) -> Result<TrainedLevel, ImpError> {
        let spec = self.spec;
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(level as u64 + 1);
        let plan = Plan::with_threshold(&spec.shape, masks, self.sparse_below);
        debug!(
            level,
            trained_weights = plan.kept_weights(),
            paths = ?plan.layers.iter().map(|l| l.path).collect::<Vec<_>>(),
            "level plan"
        );
        let pool = self.level_pool.and_then(|level_pool| level_pool(&plan));
        let run = || {
            train_level(
                &self.dev,
                &self.data,
                start,
                masks,
                plan,
                train,
                &mut rng,
                self.cancel,
                keep_after,
            )
        };
        let trained = match pool {
            Some(pool) => {
                debug!(level, threads = pool.current_num_threads(), "level threads");
                pool.install(run)
            }
            None => run(),
        };
        trained.map_err(|stopped| match stopped {
            Stopped::Cancelled => ImpError::Cancelled,
            Stopped::Diverged { epoch, loss } => ImpError::Diverged { level, epoch, loss },
        })
    }

    /// The rewind point recomputed for a resumed task: the dense level's first
    /// `rewind_epochs` epochs replayed from theta_0 with level 0's batch order, stopping where
    /// the dense level stopped if that was earlier (the early-stopping decisions of those
    /// epochs are the same), so the weights are bit for bit those the uninterrupted run kept.
    fn rewind_point(&self) -> Result<Params, ImpError> {
        let k = self.spec.train.rewind_epochs;
        debug!(epochs = k, "replaying the dense level to the rewind point");
        let replay = TrainSpec {
            max_epochs: k.min(self.spec.train.max_epochs),
            ..self.spec.train.clone()
        };
        let dense = prune::dense(&self.spec.shape);
        let trained = self.train(&self.theta0, &dense, 0, Some(k), &replay)?;
        Ok(trained.kept.unwrap_or(trained.params))
    }
}

/// The stream of the task seed that random pruning down to level `level` draws from: stream
/// `RANDOM_PRUNE_STREAM + level`, far above theta_0's (0) and the batch orders' (`level + 1`,
/// at most [`shared::schedule::MAX_LEVELS`] + 1).
pub const RANDOM_PRUNE_STREAM: u64 = 1 << 32;

/// Prunes the trained weights down to the schedule's count for `level`: by magnitude, or at
/// random positions ([`prune_random_to`]).
fn prune_to(spec: &TaskSpec, trained: &Params, masks: &mut BoolMasks, level: usize) {
    match spec.prune.method {
        Method::Magnitude => {
            let remove = prune::kept(masks) - spec.prune.remaining[level];
            prune::prune(&trained.weights, masks, remove, spec.prune.scope);
        }
        Method::Random => prune_random_to(spec, masks, level),
    }
}

/// Prunes at random down to the schedule's count for `level`, drawing from the task seed's
/// stream [`RANDOM_PRUNE_STREAM`]` + level`: the same masks on every run and resume.
fn prune_random_to(spec: &TaskSpec, masks: &mut BoolMasks, level: usize) {
    let remove = prune::kept(masks) - spec.prune.remaining[level];
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    rng.set_stream(RANDOM_PRUNE_STREAM + level as u64);
    prune::prune_random(masks, remove, spec.prune.scope, &mut rng);
}
