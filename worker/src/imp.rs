//! The IMP trajectory of one task (docs/PROTOCOL.md "Iterative magnitude pruning"):
//! 1. train, 2. prune, 3. reset, 4. repeat.
//!
//! Level 0 trains the dense network from theta_0. Every later level prunes the trained weights
//! of the level before down to exactly `prune.remaining[level]` weights, resets every weight
//! and bias to theta_0 (masks stay), and trains again. Each level's mask is analysed as a ticket
//! graph and handed to the caller before the next level starts.
//!
//! Determinism: theta_0 comes from the task seed (ChaCha8 stream 0); the batch order of level
//! `l` from stream `l + 1` of the same seed. Nothing else is random, so a trajectory resumed
//! at level `l` from the stored mask of level `l - 1` (retrained, then pruned) is bit-identical
//! to an uninterrupted one.
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
use shared::metrics::{LevelMetrics, TrainingFigures};
use shared::spec::TaskSpec;

use crate::engine::layout::{Plan, SPARSE_BELOW};
use crate::model::Params;
use crate::prune::{self, BoolMasks};
use crate::train::{train_level, Cancel, Stopped};

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

    let mut masks = match (resume.level, resume.previous_masks) {
        (0, _) => prune::dense(&spec.shape),
        (level, _) if level > levels => {
            return Err(ImpError::BadResume(format!(
                "level {level} is past the last level {levels}"
            )))
        }
        (_, None) => return Err(ImpError::BadResume("no mask for the previous level".into())),
        (level, Some(previous)) => {
            let mut masks = prune::from_layer_masks(&spec.shape, &previous).ok_or_else(|| {
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
            debug!(
                level = level - 1,
                "retraining the level before the resume point"
            );
            let (trained, _) = trainer.train(&masks, level - 1)?;
            prune_to(spec, &trained, &mut masks, level);
            masks
        }
    };

    for level in resume.level..=levels {
        let (trained, figures) = trainer.train(&masks, level)?;
        let exchanged = prune::to_layer_masks(&spec.shape, &masks);
        let graph = analyze(&exchanged, &tasks);
        let metrics = LevelMetrics::new(level, &graph, figures);
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
            prune_to(spec, &trained, &mut masks, level + 1);
        }
    }
    Ok(())
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
    /// Resets to theta_0 under `masks` and trains one level with that level's batch order.
    fn train(
        &self,
        masks: &BoolMasks,
        level: usize,
    ) -> Result<(Params, TrainingFigures), ImpError> {
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
        let train = || {
            train_level(
                &self.dev,
                &self.data,
                &self.theta0,
                masks,
                plan,
                &spec.train,
                &mut rng,
                self.cancel,
            )
        };
        let trained = match pool {
            Some(pool) => {
                debug!(level, threads = pool.current_num_threads(), "level threads");
                pool.install(train)
            }
            None => train(),
        };
        trained.map_err(|stopped| match stopped {
            Stopped::Cancelled => ImpError::Cancelled,
            Stopped::Diverged { epoch, loss } => ImpError::Diverged { level, epoch, loss },
        })
    }
}

/// Prunes the trained weights down to the schedule's count for `level`.
fn prune_to(spec: &TaskSpec, trained: &Params, masks: &mut BoolMasks, level: usize) {
    let have = prune::kept(masks);
    let want = spec.prune.remaining[level];
    prune::prune(&trained.weights, masks, have - want, spec.prune.scope);
}
