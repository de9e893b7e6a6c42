//! The statistics people look at, as pure functions over stored rows (no I/O).
//!
//! - [`wilson`]: the Wilson score interval of a binomial proportion (95% with [`Z95`]);
//! - [`summarize`]: per task, the level of the first split, the active weights there, the
//!   level of the first degradation, the outcome and the test accuracy at the last level;
//! - [`level_stats`]: per pruning level, remaining / active / zombie / inactive weights over
//!   seeds (median and range);
//! - [`group_by`]: tasks grouped by any grid axes ([`Axis`]), with the counts (k of n) and
//!   fractions split, connected and degraded and their intervals;
//! - [`grid_points`]: one group per grid point (every setting but the seed), in expansion
//!   order: what `coordinator results` shows.
//!
//! A task's outcome is its status at the last level it ran, and the fractions count finished
//! tasks only (done, with at least one level).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use shared::graph::Status;
use shared::metrics::LevelMetrics;
use shared::outcome::{self, Outcome};
use shared::spec::TaskSpec;

pub use crate::axis::{format_float, shape_name, Axis, AxisValue};
use crate::data::TaskResult;

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The standard normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `k` successes out of `n` at normal quantile `z`.
///
/// Exact at the edges: the lower bound is 0 when `k == 0` and the upper bound 1 when
/// `k == n`. With no trials at all nothing is known: `(0, 1)`.
pub fn wilson(k: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let k = k.min(n);
    let nf = n as f64;
    let p = k as f64 / nf;
    let z2 = z * z;
    let denominator = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denominator;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denominator;
    let lo = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (lo, hi)
}

/// The 95% Wilson interval of `k` out of `n`.
pub fn wilson95(k: usize, n: usize) -> (f64, f64) {
    wilson(k, n, Z95)
}

/// A proportion with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub k: usize,
    pub n: usize,
    /// `k / n`; 0 when `n == 0`.
    pub frac: f64,
    pub ci: (f64, f64),
}

impl Proportion {
    pub fn new(k: usize, n: usize) -> Proportion {
        Proportion {
            k,
            n,
            frac: if n == 0 { 0.0 } else { k as f64 / n as f64 },
            ci: wilson95(k, n),
        }
    }
}

/// Median, mean and range of some values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub median: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// The median and range of `values`; `None` when empty.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let median = median(values.to_vec())?;
    Some(Spread {
        n: values.len(),
        median,
        mean: values.iter().sum::<f64>() / values.len() as f64,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// What one task showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub idx: usize,
    pub id: String,
    pub seed: u64,
    pub done: bool,
    /// Weights of the dense network.
    pub available_weights: usize,
    pub levels_planned: usize,
    pub levels_done: usize,
    /// Status at the last level stored.
    pub outcome: Option<Status>,
    /// The outcome of the trajectory (separated, separated-degraded, interconnected,
    /// degraded without a split).
    pub trajectory: Option<Outcome>,
    pub first_split_level: Option<usize>,
    /// Active weights at the first split level.
    pub active_at_first_split: Option<usize>,
    /// Weights remaining (what pruning had left) at the first split level.
    pub remaining_at_first_split: Option<usize>,
    pub first_degraded_level: Option<usize>,
    /// Test accuracy per problem at the last level stored.
    pub test_accuracy: Vec<f64>,
}

/// The first level of `levels` with `status`.
pub fn first_level(levels: &[LevelMetrics], status: Status) -> Option<&LevelMetrics> {
    levels.iter().find(|l| l.status == status)
}

/// Summarises one task's stored levels.
pub fn summarize(task: &TaskResult) -> TaskSummary {
    let first_split = first_level(&task.levels, Status::Split);
    let trajectory = outcome::classify(task.levels.iter().map(|l| (l.level, l.status)));
    TaskSummary {
        idx: task.idx,
        id: task.spec.id(),
        seed: task.spec.seed,
        done: task.done,
        available_weights: task.spec.weights(),
        levels_planned: task.spec.prune.levels,
        levels_done: task.levels.len(),
        outcome: task.levels.last().map(|l| l.status),
        trajectory: trajectory.map(|t| t.outcome),
        first_split_level: trajectory.and_then(|t| t.first_split_level),
        active_at_first_split: first_split.map(|l| l.active_weights),
        remaining_at_first_split: first_split.map(|l| l.remaining_weights),
        first_degraded_level: trajectory.and_then(|t| t.first_degraded_level),
        test_accuracy: task
            .levels
            .last()
            .map(|l| l.test_accuracy.clone())
            .unwrap_or_default(),
    }
}

/// The weights of one pruning level over the tasks (seeds) that stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    pub level: usize,
    /// Tasks with this level stored.
    pub n: usize,
    pub remaining: Spread,
    pub active: Spread,
    pub zombie: Spread,
    pub inactive: Spread,
    /// Tasks split at this level.
    pub split: usize,
    /// Tasks degraded at this level.
    pub degraded: usize,
    /// Test accuracy per problem (median and range).
    pub test_accuracy: Vec<Spread>,
}

/// Per level, the weights over `tasks` (typically the seeds of one grid point), in level order.
pub fn level_stats(tasks: &[&TaskResult]) -> Vec<LevelStats> {
    let mut by_level: BTreeMap<usize, Vec<&LevelMetrics>> = BTreeMap::new();
    for task in tasks {
        for level in &task.levels {
            by_level.entry(level.level).or_default().push(level);
        }
    }
    by_level
        .into_iter()
        .filter_map(|(level, rows)| {
            let of = |f: fn(&LevelMetrics) -> usize| {
                spread(&rows.iter().map(|l| f(l) as f64).collect::<Vec<_>>())
            };
            let problems = rows
                .iter()
                .map(|l| l.test_accuracy.len())
                .max()
                .unwrap_or(0);
            let test_accuracy = (0..problems)
                .filter_map(|p| {
                    spread(
                        &rows
                            .iter()
                            .filter_map(|l| l.test_accuracy.get(p).copied())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            Some(LevelStats {
                level,
                n: rows.len(),
                remaining: of(|l| l.remaining_weights)?,
                active: of(|l| l.active_weights)?,
                zombie: of(|l| l.zombie_weights)?,
                inactive: of(|l| l.inactive_weights)?,
                split: rows.iter().filter(|l| l.status == Status::Split).count(),
                degraded: rows.iter().filter(|l| l.status == Status::Degraded).count(),
                test_accuracy,
            })
        })
        .collect()
}

/// The statistics of one group of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// The axes grouped by and this group's values, in the order asked.
    pub key: Vec<(Axis, AxisValue)>,
    pub tasks_total: usize,
    /// Finished tasks: the denominators of the fractions.
    pub tasks_done: usize,
    /// Outcome (status at the last level) split.
    pub split: Proportion,
    /// Split at any level.
    pub ever_split: Proportion,
    pub connected: Proportion,
    pub degraded: Proportion,
    /// Degraded at any level.
    pub ever_degraded: Proportion,
    /// The four outcomes of the trajectories (they partition the finished tasks).
    pub separated: Proportion,
    pub separated_degraded: Proportion,
    pub interconnected: Proportion,
    pub degraded_unsplit: Proportion,
    /// Active weights at the first split, over finished tasks that split.
    pub active_at_split: Option<Spread>,
    /// Weights remaining at the first split level, over the same tasks.
    pub remaining_at_split: Option<Spread>,
    pub first_split_level: Option<Spread>,
    pub first_degraded_level: Option<Spread>,
    /// Dense weight counts of the group's tasks.
    pub available_weights: Option<Spread>,
    /// The random-mask baseline of the group's finished runs, where asked for
    /// ([`crate::baseline::fill`]; `None` from [`group_by`]: it costs draws).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::baseline::BaselineStats>,
    /// Mean test accuracy per problem at the last level, over finished tasks.
    pub test_accuracy: Vec<f64>,
    /// The training engines of the finished tasks' levels, ascending: more than one means the
    /// group mixes results of different engines (shown, never hidden).
    pub engines: Vec<u32>,
    /// The arithmetics (`shared::cpu::arithmetic`) recorded with the finished tasks' levels,
    /// sorted and distinct: more than one means the group mixes roundings (shown, never
    /// hidden). Levels stored before the arithmetic was recorded are left out.
    pub arithmetics: Vec<String>,
}

impl GroupStats {
    /// The four outcomes with their proportions, in [`Outcome::ALL`]'s order.
    pub fn outcomes(&self) -> [(Outcome, Proportion); 4] {
        [
            (Outcome::Separated, self.separated),
            (Outcome::SeparatedDegraded, self.separated_degraded),
            (Outcome::Interconnected, self.interconnected),
            (Outcome::DegradedUnsplit, self.degraded_unsplit),
        ]
    }

    /// The value of `axis` in this group's key.
    pub fn value(&self, axis: Axis) -> Option<&AxisValue> {
        self.key.iter().find(|(a, _)| *a == axis).map(|(_, v)| v)
    }
}

/// The key of a task for `axes`.
pub fn key_of(spec: &TaskSpec, axes: &[Axis]) -> Vec<(Axis, AxisValue)> {
    axes.iter().map(|&a| (a, a.value(spec))).collect()
}

/// Groups tasks by the values of `axes` and computes each group's statistics. Groups are
/// ordered by their values (in the order of `axes`); groups with no task are absent, groups
/// with no finished task have zero counts. No axes: one group of everything.
pub fn group_by(tasks: &[TaskResult], axes: &[Axis]) -> Vec<GroupStats> {
    let mut groups: BTreeMap<Vec<AxisValue>, Vec<&TaskResult>> = BTreeMap::new();
    for task in tasks {
        let values = axes.iter().map(|a| a.value(&task.spec)).collect();
        groups.entry(values).or_default().push(task);
    }
    groups
        .into_iter()
        .map(|(values, group)| {
            let key = axes.iter().copied().zip(values).collect();
            group_stats(key, &group)
        })
        .collect()
}

/// The statistics of one group of tasks.
pub fn group_stats(key: Vec<(Axis, AxisValue)>, group: &[&TaskResult]) -> GroupStats {
    let finished: Vec<&TaskResult> = group
        .iter()
        .copied()
        .filter(|t| t.done && !t.levels.is_empty())
        .collect();
    let n = finished.len();
    let count = |f: &dyn Fn(&TaskResult) -> bool| finished.iter().filter(|t| f(t)).count();
    let outcome = |s: Status| count(&|t| t.levels.last().is_some_and(|l| l.status == s));
    let summaries: Vec<TaskSummary> = finished.iter().map(|t| summarize(t)).collect();
    let trajectories = |o: Outcome| {
        let k = summaries.iter().filter(|s| s.trajectory == Some(o)).count();
        Proportion::new(k, n)
    };
    let values = |f: &dyn Fn(&TaskSummary) -> Option<f64>| {
        spread(&summaries.iter().filter_map(f).collect::<Vec<_>>())
    };
    let problems = summaries
        .iter()
        .map(|s| s.test_accuracy.len())
        .max()
        .unwrap_or(0);
    let test_accuracy = (0..problems)
        .map(|p| {
            let v: Vec<f64> = summaries
                .iter()
                .filter_map(|s| s.test_accuracy.get(p).copied())
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        })
        .collect();
    GroupStats {
        key,
        tasks_total: group.len(),
        tasks_done: n,
        split: Proportion::new(outcome(Status::Split), n),
        ever_split: Proportion::new(
            count(&|t| first_level(&t.levels, Status::Split).is_some()),
            n,
        ),
        connected: Proportion::new(outcome(Status::Connected), n),
        degraded: Proportion::new(outcome(Status::Degraded), n),
        ever_degraded: Proportion::new(
            count(&|t| first_level(&t.levels, Status::Degraded).is_some()),
            n,
        ),
        separated: trajectories(Outcome::Separated),
        separated_degraded: trajectories(Outcome::SeparatedDegraded),
        interconnected: trajectories(Outcome::Interconnected),
        degraded_unsplit: trajectories(Outcome::DegradedUnsplit),
        active_at_split: values(&|s| s.active_at_first_split.map(|v| v as f64)),
        remaining_at_split: values(&|s| s.remaining_at_first_split.map(|v| v as f64)),
        first_split_level: values(&|s| s.first_split_level.map(|v| v as f64)),
        first_degraded_level: values(&|s| s.first_degraded_level.map(|v| v as f64)),
        available_weights: spread(
            &group
                .iter()
                .map(|t| t.spec.weights() as f64)
                .collect::<Vec<_>>(),
        ),
        baseline: None,
        test_accuracy,
        engines: engines(&finished),
        arithmetics: arithmetics(&finished),
    }
}

/// The recorded arithmetics of the tasks' levels, sorted and distinct.
fn arithmetics(tasks: &[&TaskResult]) -> Vec<String> {
    distinct(tasks, |l| {
        Some(l.arithmetic.clone()).filter(|a| !a.is_empty())
    })
}

/// The engines of the tasks' levels, ascending and distinct.
fn engines(tasks: &[&TaskResult]) -> Vec<u32> {
    distinct(tasks, |l| Some(l.engine))
}

/// What `of` gives for the tasks' levels, sorted and distinct (`None` left out).
fn distinct<T: Ord>(tasks: &[&TaskResult], of: impl Fn(&LevelMetrics) -> Option<T>) -> Vec<T> {
    let mut all: Vec<T> = tasks
        .iter()
        .flat_map(|t| t.levels.iter().filter_map(&of))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The grid point of a task: the id of its settings with the seed zeroed.
pub fn point_of(spec: &TaskSpec) -> String {
    let mut seedless = spec.clone();
    seedless.seed = 0;
    seedless.id()
}

/// One grid point: every setting but the seed, and the statistics of its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct PointStats {
    /// [`point_of`] its tasks.
    pub point: String,
    /// The settings of its first task in expansion order (the seed aside, all its tasks
    /// share them).
    pub spec: TaskSpec,
    /// The statistics of its tasks, keyed by [`Axis::GRID`].
    pub stats: GroupStats,
}

/// One [`PointStats`] per grid point with at least one finished seed, in expansion order
/// (of each point's first task).
pub fn grid_points(tasks: &[TaskResult]) -> Vec<PointStats> {
    let mut sorted: Vec<&TaskResult> = tasks.iter().collect();
    sorted.sort_by_key(|t| t.idx);
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<&TaskResult>> = HashMap::new();
    for task in sorted {
        let point = point_of(&task.spec);
        groups
            .entry(point.clone())
            .or_insert_with(|| {
                order.push(point);
                Vec::new()
            })
            .push(task);
    }
    order
        .into_iter()
        .filter_map(|point| {
            let group = groups.remove(&point)?;
            let spec = group.first()?.spec.clone();
            let stats = group_stats(key_of(&spec, &Axis::GRID), &group);
            (stats.tasks_done > 0).then_some(PointStats { point, spec, stats })
        })
        .collect()
}

/// FLOP of one epoch of a level with `remaining` weights on `n_train` training and `n_test`
/// held-out points: a forward and a backward pass over the train split (2 + 4 FLOP per weight
/// and point) and a forward pass over the held-out split (2).
pub fn epoch_flop(remaining: usize, n_train: usize, n_test: usize) -> f64 {
    remaining as f64 * (6 * n_train + 2 * n_test) as f64
}

/// The dense path's throughput that the FLOP limit of [`Cost::limit_core_hours`] assumes: about
/// 100 GFLOP/s a core on the development machines (docs/performance.md).
pub const REFERENCE_GFLOPS_PER_CORE: f64 = 100.0;

/// What training some tasks cost, from their stored levels.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Cost {
    /// Tasks with at least one stored level.
    pub tasks: usize,
    pub levels: usize,
    pub epochs: u64,
    /// Training seconds summed over the levels (each level's own clock).
    pub seconds: f64,
    /// [`epoch_flop`] summed over every epoch of every level.
    pub flop: f64,
}

impl Cost {
    fn add(&mut self, task: &TaskResult) {
        let (n_train, n_test) =
            shared::data::split_sizes(task.spec.data.samples, task.spec.data.test_fraction);
        self.tasks += usize::from(!task.levels.is_empty());
        for l in &task.levels {
            self.levels += 1;
            self.epochs += l.epochs as u64;
            self.seconds += l.seconds;
            self.flop += l.epochs as f64 * epoch_flop(l.remaining_weights, n_train, n_test);
        }
    }

    /// Core-hours the FLOP would take at [`REFERENCE_GFLOPS_PER_CORE`].
    pub fn limit_core_hours(&self) -> f64 {
        self.flop / (REFERENCE_GFLOPS_PER_CORE * 1e9) / 3600.0
    }

    /// The average throughput of the training seconds, GFLOP/s.
    pub fn gflops(&self) -> f64 {
        if self.seconds > 0.0 {
            self.flop / self.seconds / 1e9
        } else {
            0.0
        }
    }
}

/// One part of a [`Cost`]: the tasks of one shape pruned over one number of levels (a shape in
/// poster experiments 1 and 2, a level count in experiment 3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartCost {
    pub shape: Vec<usize>,
    /// The pruning levels of the schedule (`prune.levels`), not the levels stored.
    pub pruning_levels: usize,
    pub cost: Cost,
}

/// What training `tasks` cost, in total and per shape and pruning levels (most training seconds
/// first).
pub fn cost(tasks: &[TaskResult]) -> (Cost, Vec<PartCost>) {
    let mut total = Cost::default();
    let mut by_part: BTreeMap<(Vec<usize>, usize), Cost> = BTreeMap::new();
    for task in tasks {
        total.add(task);
        by_part
            .entry((task.spec.shape.clone(), task.spec.prune.levels))
            .or_default()
            .add(task);
    }
    let mut parts: Vec<PartCost> = by_part
        .into_iter()
        .filter(|(_, c)| c.levels > 0)
        .map(|((shape, pruning_levels), cost)| PartCost {
            shape,
            pruning_levels,
            cost,
        })
        .collect();
    parts.sort_by(|a, b| b.cost.seconds.total_cmp(&a.cost.seconds));
    (total, parts)
}

/// The axes along which `tasks` take more than one value (the seed excluded unless asked).
pub fn varying_axes(tasks: &[TaskResult], candidates: &[Axis]) -> Vec<Axis> {
    candidates
        .iter()
        .copied()
        .filter(|&axis| {
            let mut values: Vec<AxisValue> = tasks.iter().map(|t| axis.value(&t.spec)).collect();
            values.sort();
            values.dedup();
            values.len() > 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::spec::{DataSpec, PruneSpec, Scope, TrainSpec};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_at_zero_all_and_known_values() {
        // None of 4 split: [0, z^2 / (n + z^2)].
        let (lo, hi) = wilson95(0, 4);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.4899), "{hi}");
        assert!(close(hi, Z95 * Z95 / (4.0 + Z95 * Z95)));
        // All of 4 split: [n / (n + z^2), 1].
        let (lo, hi) = wilson95(4, 4);
        assert_eq!(hi, 1.0);
        assert!(close(lo, 0.5101), "{lo}");
        // Textbook values.
        let (lo, hi) = wilson95(5, 10);
        assert!(close(lo, 0.2366) && close(hi, 0.7634), "{lo} {hi}");
        let (lo, hi) = wilson95(1, 4);
        assert!(close(lo, 0.0456) && close(hi, 0.6994), "{lo} {hi}");
        let (lo, hi) = wilson95(81, 263);
        assert!(close(lo, 0.2553) && close(hi, 0.3662), "{lo} {hi}");
        // Symmetric, inside [0, 1], containing the estimate; nothing known without trials.
        for n in 1..30 {
            for k in 0..=n {
                let (lo, hi) = wilson95(k, n);
                let (lo2, hi2) = wilson95(n - k, n);
                assert!(close(lo, 1.0 - hi2) && close(hi, 1.0 - lo2));
                let p = k as f64 / n as f64;
                assert!((0.0..=p).contains(&lo) && (p..=1.0).contains(&hi));
            }
        }
        assert_eq!(wilson95(0, 0), (0.0, 1.0));
    }

    fn spec(width: usize, rate: f64, seed: u64) -> TaskSpec {
        TaskSpec {
            data: DataSpec::protocol(),
            shape: vec![4, width, width, 2],
            extension_level: Some(width / 8),
            train: TrainSpec::protocol(),
            prune: PruneSpec {
                scope: Scope::Global,
                method: Default::default(),
                rate,
                levels: 3,
                target: 112,
                remaining: vec![400, 300, 200, 112],
                stop_at_first_degraded: false,
                stop_at_first_split: false,
            },
            seed,
        }
    }

    fn level(level: usize, status: Status, weights: [usize; 4]) -> LevelMetrics {
        LevelMetrics {
            level,
            remaining_weights: weights[0],
            active_weights: weights[1],
            zombie_weights: weights[2],
            inactive_weights: weights[3],
            active_neurons: 0,
            zombie_neurons: 0,
            inactive_neurons: 0,
            components: 1,
            status,
            coverage: vec![],
            test_accuracy: vec![0.9, 0.8 + level as f64 / 100.0],
            test_loss: 0.0,
            train_loss: 0.0,
            epochs: 1,
            seconds: 0.0,
            engine: 2,
            arithmetic: String::new(),
            kept_per_layer: Vec::new(),
        }
    }

    use Status::{Connected as C, Degraded as D, Split as S};

    fn task(idx: usize, spec: TaskSpec, done: bool, levels: &[(Status, usize)]) -> TaskResult {
        TaskResult {
            idx,
            spec,
            done,
            levels: levels
                .iter()
                .enumerate()
                .map(|(l, &(s, active))| {
                    let remaining = 400 - 100 * l;
                    level(l, s, [remaining, active, 3, remaining - active - 3])
                })
                .collect(),
        }
    }

    fn tasks() -> Vec<TaskResult> {
        vec![
            task(
                0,
                spec(8, 0.32, 0),
                true,
                &[(C, 390), (S, 50), (S, 40), (S, 30)],
            ),
            task(
                1,
                spec(8, 0.32, 1),
                true,
                &[(C, 390), (C, 90), (S, 70), (D, 20)],
            ),
            task(
                2,
                spec(8, 0.32, 2),
                true,
                &[(C, 390), (C, 90), (C, 60), (C, 50)],
            ),
            task(3, spec(8, 0.32, 3), false, &[(S, 390)]),
            task(4, spec(16, 0.32, 0), true, &[(C, 390), (D, 10)]),
            task(5, spec(16, 0.5, 0), true, &[(S, 390), (S, 10)]),
        ]
    }

    #[test]
    fn summaries_find_first_split_and_degradation() {
        let t = tasks();
        let s = summarize(&t[1]);
        assert_eq!(s.first_split_level, Some(2));
        assert_eq!(s.active_at_first_split, Some(70));
        assert_eq!(s.first_degraded_level, Some(3));
        assert_eq!(s.outcome, Some(D));
        assert_eq!(s.levels_done, 4);
        assert_eq!(s.test_accuracy, vec![0.9, 0.8 + 3.0 / 100.0]);
        let s = summarize(&t[2]);
        assert_eq!((s.first_split_level, s.active_at_first_split), (None, None));
        assert_eq!(s.first_degraded_level, None);
        assert_eq!(s.id, t[2].spec.id());
    }

    #[test]
    fn level_stats_take_median_and_range_over_seeds() {
        let t = tasks();
        let point: Vec<&TaskResult> = t[..3].iter().collect();
        let levels = level_stats(&point);
        assert_eq!(levels.len(), 4);
        let l2 = &levels[2];
        assert_eq!((l2.level, l2.n, l2.split), (2, 3, 2));
        assert_eq!(
            (l2.active.median, l2.active.min, l2.active.max),
            (60.0, 40.0, 70.0)
        );
        assert_eq!(l2.remaining.median, 200.0);
        assert_eq!(l2.zombie.max, 3.0);
        assert_eq!(l2.inactive.min, 200.0 - 70.0 - 3.0);
        assert_eq!(levels[3].degraded, 1);
        assert!(close(levels[3].test_accuracy[1].median, 0.83));
    }

    #[test]
    fn grid_points_count_finished_seeds_in_expansion_order() {
        let tasks = vec![
            // Splits at level 1 (active 50) and stays split.
            task(
                4,
                spec(8, 0.32, 0),
                true,
                &[(C, 390), (S, 50), (S, 40), (S, 30)],
            ),
            // Splits at level 2 (active 70), then degrades: ever split, outcome degraded.
            task(
                5,
                spec(8, 0.32, 1),
                true,
                &[(C, 390), (C, 90), (S, 70), (D, 20)],
            ),
            // Never splits.
            task(
                6,
                spec(8, 0.32, 2),
                true,
                &[(C, 390), (C, 90), (C, 60), (C, 50)],
            ),
            // Not finished: counts in the total only.
            task(7, spec(8, 0.32, 3), false, &[(S, 390)]),
            // An earlier point in the expansion, and one with no finished seed (left out).
            task(0, spec(16, 0.32, 0), true, &[(C, 10)]),
            task(1, spec(32, 0.32, 0), false, &[]),
        ];
        let points = grid_points(&tasks);
        let widths: Vec<usize> = points.iter().map(|p| p.spec.shape[1]).collect();
        assert_eq!(widths, vec![16, 8]);
        let p = &points[1];
        assert_eq!(p.point, point_of(&spec(8, 0.32, 9)));
        let g = &p.stats;
        assert_eq!((g.tasks_total, g.tasks_done), (4, 3));
        assert_eq!(
            (g.split.k, g.ever_split.k, g.connected.k, g.degraded.k),
            (1, 2, 1, 1)
        );
        assert_eq!(g.split.n, 3);
        assert_eq!(g.split.ci, wilson95(1, 3));
        assert_eq!(g.active_at_split.map(|s| s.median), Some(60.0));
        assert_eq!(g.first_split_level.map(|s| s.median), Some(1.5));
        assert!((g.test_accuracy[0] - 0.9).abs() < 1e-12);
        assert!((g.test_accuracy[1] - 0.83).abs() < 1e-12);
        assert_eq!(g.engines, vec![2]);
        assert_eq!(g.key, key_of(&spec(8, 0.32, 0), &Axis::GRID));
        // An early stop's outcome is the last level it ran.
        let stopped = grid_points(&[task(0, spec(8, 0.32, 0), true, &[(C, 390), (D, 20)])]);
        assert_eq!(stopped[0].stats.degraded.k, 1);
        assert_eq!(stopped[0].stats.first_split_level, None);
        assert!(stopped[0].stats.arithmetics.is_empty(), "none recorded");
    }

    #[test]
    fn a_point_lists_the_recorded_arithmetics_of_its_levels() {
        let with = |idx, arithmetic: &[&str]| {
            let mut t = task(idx, spec(8, 0.32, idx as u64), true, &[(C, 390), (S, 60)]);
            for (l, a) in t.levels.iter_mut().zip(arithmetic) {
                l.arithmetic = a.to_string();
            }
            t
        };
        // Unrecorded levels (older workers) do not count as an arithmetic of their own.
        let one = grid_points(&[
            with(0, &["", "x86_64-avx2-fma"]),
            with(1, &["x86_64-avx2-fma"]),
        ]);
        assert_eq!(one[0].stats.arithmetics, vec!["x86_64-avx2-fma"]);
        let mixed = grid_points(&[
            with(0, &["x86_64-avx2-fma"]),
            with(1, &["aarch64-portable"]),
        ]);
        assert_eq!(
            mixed[0].stats.arithmetics,
            vec!["aarch64-portable", "x86_64-avx2-fma"]
        );
        let row = crate::tables::ResultRow::of(&mixed[0]);
        let text = crate::tables::results_table(&[row]);
        assert!(
            text.contains("2 mixed-arithmetic:aarch64-portable+x86_64-avx2-fma"),
            "{text}"
        );
    }

    #[test]
    fn grouping_by_chosen_axes_pools_the_others() {
        let t = tasks();
        let by_rate = group_by(&t, &[Axis::Rate]);
        assert_eq!(by_rate.len(), 2);
        assert_eq!(by_rate[0].key, vec![(Axis::Rate, AxisValue::Float(0.32))]);
        assert_eq!((by_rate[0].tasks_total, by_rate[0].tasks_done), (5, 4));
        // Outcomes of the 4 finished: S, D, C, D.
        assert_eq!(by_rate[0].split.k, 1);
        assert_eq!(by_rate[0].degraded.k, 2);
        assert_eq!(by_rate[0].ever_split.k, 2);
        assert_eq!(by_rate[0].ever_degraded.k, 2);
        assert_eq!(by_rate[0].split.ci, wilson95(1, 4));
        assert_eq!(by_rate[1].split.k, 1);
        assert_eq!(by_rate[1].split.ci, (wilson95(1, 1).0, 1.0));

        let by_width = group_by(&t, &[Axis::Width, Axis::Rate]);
        let keys: Vec<String> = by_width
            .iter()
            .map(|g| {
                g.key
                    .iter()
                    .map(|(_, v)| v.to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        assert_eq!(keys, vec!["8/0.32", "16/0.32", "16/0.5"]);
        let wide = &by_width[1];
        assert_eq!(wide.first_degraded_level.map(|s| s.median), Some(1.0));
        assert_eq!(wide.active_at_split, None);

        let all = group_by(&t, &[]);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].tasks_total, 6);
        assert_eq!(
            all[0].available_weights.map(|s| (s.min, s.max)),
            Some((112.0, 4.0 * 16.0 + 256.0 + 32.0))
        );
    }

    #[test]
    fn axes_parse_and_vary() {
        assert_eq!(
            Axis::parse_list("shape, ext,Rate,rate").unwrap(),
            vec![Axis::Shape, Axis::ExtensionLevel, Axis::Rate]
        );
        assert!(Axis::parse("colour")
            .unwrap_err()
            .contains("extension_level"));
        assert!(Axis::parse_list(",").is_err());
        let t = tasks();
        assert_eq!(
            varying_axes(&t, &Axis::ALL),
            vec![
                Axis::Shape,
                Axis::Width,
                Axis::Weights,
                Axis::ExtensionLevel,
                Axis::Rate,
                Axis::Seed
            ]
        );
        assert_eq!(format_float(0.32), "0.32");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.123456), "0.1235");
        assert_eq!(AxisValue::Shape(vec![4, 8, 2]).to_string(), "(4,8,2)");
    }
}
