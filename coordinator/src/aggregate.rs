//! Aggregates of a sweep's results: one row per grid point (every setting but the model seed)
//! over its finished seeds. Pure functions over rows read from the store; usable while a sweep
//! is running (only finished tasks count).
//!
//! A task's outcome is the status of the last level it ran (early stops included). Fractions
//! are over the point's finished seeds.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shared::graph::Status;
use shared::metrics::LevelMetrics;
use shared::spec::{Scope, TaskSpec};

/// One task with its stored levels (in level order).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    /// Position in the sweep's expansion.
    pub idx: usize,
    pub spec: TaskSpec,
    /// The task is done (all its levels stored or stopped early as its spec asks).
    pub done: bool,
    pub levels: Vec<LevelMetrics>,
}

/// The aggregate of one grid point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Hash of the settings without the seed.
    pub point: String,
    pub shape: Vec<usize>,
    pub extension_level: Option<usize>,
    /// Dense weight count of the shape.
    pub weights: usize,
    pub levels: usize,
    pub rate: f64,
    pub target: usize,
    pub scope: String,
    pub seeds_total: usize,
    pub seeds_done: usize,
    /// Outcome split.
    pub frac_split: f64,
    /// Split at any level.
    pub frac_ever_split: f64,
    /// Outcome connected.
    pub frac_connected: f64,
    /// Outcome degraded.
    pub frac_degraded: f64,
    /// Median active weights at the first split level, over seeds that ever split.
    pub active_at_split_median: Option<f64>,
    /// Median first split level, over seeds that ever split.
    pub first_split_level_median: Option<f64>,
    /// Mean test accuracy per problem at the last level, over finished seeds.
    pub test_accuracy: Vec<f64>,
    /// The training engines of the finished seeds' levels, ascending: more than one means
    /// the point mixes results of different engines (shown, never hidden).
    pub engines: Vec<u32>,
}

/// The grid point of a task: the id of its settings with the seed zeroed.
pub fn point_of(spec: &TaskSpec) -> String {
    let mut seedless = spec.clone();
    seedless.seed = 0;
    seedless.id()
}

/// The name of a pruning scope.
pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Global => "global",
        Scope::Layerwise => "layerwise",
    }
}

/// One row per grid point with at least one finished seed, in expansion order.
pub fn aggregate(tasks: &[TaskResult]) -> Vec<Row> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<&TaskResult>> = HashMap::new();
    let mut sorted: Vec<&TaskResult> = tasks.iter().collect();
    sorted.sort_by_key(|t| t.idx);
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
            aggregate_point(point, &group)
        })
        .collect()
}

fn aggregate_point(point: String, group: &[&TaskResult]) -> Option<Row> {
    let spec = &group.first()?.spec;
    let finished: Vec<&TaskResult> = group
        .iter()
        .copied()
        .filter(|t| t.done && !t.levels.is_empty())
        .collect();
    if finished.is_empty() {
        return None;
    }
    let n = finished.len() as f64;
    let outcome = |status: Status| {
        finished
            .iter()
            .filter(|t| t.levels.last().is_some_and(|l| l.status == status))
            .count() as f64
            / n
    };
    let first_splits: Vec<&LevelMetrics> = finished
        .iter()
        .filter_map(|t| t.levels.iter().find(|l| l.status == Status::Split))
        .collect();
    let problems = finished
        .iter()
        .filter_map(|t| t.levels.last())
        .map(|l| l.test_accuracy.len())
        .max()
        .unwrap_or(0);
    let test_accuracy = (0..problems)
        .map(|p| {
            let values: Vec<f64> = finished
                .iter()
                .filter_map(|t| t.levels.last()?.test_accuracy.get(p).copied())
                .collect();
            values.iter().sum::<f64>() / values.len().max(1) as f64
        })
        .collect();
    let mut engines: Vec<u32> = finished
        .iter()
        .flat_map(|t| t.levels.iter().map(|l| l.engine))
        .collect();
    engines.sort_unstable();
    engines.dedup();
    Some(Row {
        point,
        shape: spec.shape.clone(),
        extension_level: spec.extension_level,
        weights: spec.weights(),
        levels: spec.prune.levels,
        rate: spec.prune.rate,
        target: spec.prune.target,
        scope: scope_name(spec.prune.scope).to_string(),
        seeds_total: group.len(),
        seeds_done: finished.len(),
        frac_split: outcome(Status::Split),
        frac_ever_split: first_splits.len() as f64 / n,
        frac_connected: outcome(Status::Connected),
        frac_degraded: outcome(Status::Degraded),
        active_at_split_median: median(
            first_splits
                .iter()
                .map(|l| l.active_weights as f64)
                .collect(),
        ),
        first_split_level_median: median(first_splits.iter().map(|l| l.level as f64).collect()),
        test_accuracy,
        engines,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::spec::{DataSpec, PruneSpec, TrainSpec};

    fn spec(width: usize, seed: u64) -> TaskSpec {
        TaskSpec {
            data: DataSpec::protocol(),
            shape: vec![4, width, width, 2],
            extension_level: None,
            train: TrainSpec::protocol(),
            prune: PruneSpec {
                scope: Scope::Global,
                rate: 0.32,
                levels: 3,
                target: 112,
                remaining: vec![400, 300, 200, 112],
                stop_at_first_degraded: false,
                stop_at_first_split: false,
            },
            seed,
        }
    }

    fn level(level: usize, status: Status, active: usize, accuracy: [f64; 2]) -> LevelMetrics {
        LevelMetrics {
            level,
            remaining_weights: 100,
            active_weights: active,
            zombie_weights: 0,
            inactive_weights: 0,
            active_neurons: 0,
            zombie_neurons: 0,
            inactive_neurons: 0,
            components: 1,
            status,
            coverage: vec![],
            test_accuracy: accuracy.to_vec(),
            test_loss: 0.0,
            train_loss: 0.0,
            epochs: 1,
            seconds: 0.0,
            engine: 2,
        }
    }

    fn task(idx: usize, spec: TaskSpec, done: bool, statuses: &[(Status, usize)]) -> TaskResult {
        TaskResult {
            idx,
            spec,
            done,
            levels: statuses
                .iter()
                .enumerate()
                .map(|(l, &(s, a))| level(l, s, a, [0.9, 0.8 + l as f64 / 100.0]))
                .collect(),
        }
    }

    use Status::{Connected as C, Degraded as D, Split as S};

    #[test]
    fn fractions_medians_and_accuracy_of_one_point() {
        let tasks = vec![
            // Splits at level 1 (active 50) and stays split.
            task(0, spec(8, 0), true, &[(C, 400), (S, 50), (S, 40), (S, 30)]),
            // Splits at level 2 (active 70), then degrades: ever split, outcome degraded.
            task(1, spec(8, 1), true, &[(C, 400), (C, 90), (S, 70), (D, 20)]),
            // Never splits.
            task(2, spec(8, 2), true, &[(C, 400), (C, 90), (C, 60), (C, 50)]),
            // Not finished: ignored except in seeds_total.
            task(3, spec(8, 3), false, &[(S, 400)]),
        ];
        let rows = aggregate(&tasks);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.point, point_of(&spec(8, 7)));
        assert_eq!((r.seeds_total, r.seeds_done), (4, 3));
        assert_eq!(r.frac_split, 1.0 / 3.0);
        assert_eq!(r.frac_ever_split, 2.0 / 3.0);
        assert_eq!(r.frac_connected, 1.0 / 3.0);
        assert_eq!(r.frac_degraded, 1.0 / 3.0);
        assert_eq!(r.active_at_split_median, Some(60.0));
        assert_eq!(r.first_split_level_median, Some(1.5));
        assert_eq!(r.test_accuracy.len(), 2);
        assert!((r.test_accuracy[0] - 0.9).abs() < 1e-12);
        assert!((r.test_accuracy[1] - 0.83).abs() < 1e-12);
        assert_eq!(
            (r.levels, r.target, r.rate, r.scope.as_str()),
            (3, 112, 0.32, "global")
        );
        assert_eq!(r.weights, 4 * 8 + 8 * 8 + 8 * 2);
    }

    #[test]
    fn points_are_separate_and_in_expansion_order() {
        let tasks = vec![
            task(3, spec(8, 1), true, &[(S, 10)]),
            task(0, spec(16, 0), true, &[(C, 10)]),
            task(1, spec(8, 0), true, &[(C, 10)]),
            task(2, spec(32, 0), false, &[]),
        ];
        let rows = aggregate(&tasks);
        let shapes: Vec<usize> = rows.iter().map(|r| r.shape[1]).collect();
        assert_eq!(
            shapes,
            vec![16, 8],
            "points with no finished seed are left out"
        );
        assert_eq!(rows[1].seeds_done, 2);
        assert_eq!(rows[1].frac_split, 0.5);
        assert_eq!(rows[0].active_at_split_median, None);
        assert_eq!(rows[0].first_split_level_median, None);
    }

    #[test]
    fn early_stop_outcome_is_the_last_level_run() {
        let tasks = vec![task(0, spec(8, 0), true, &[(C, 400), (D, 20)])];
        let r = &aggregate(&tasks)[0];
        assert_eq!(
            (r.frac_degraded, r.frac_split, r.frac_ever_split),
            (1.0, 0.0, 0.0)
        );
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
