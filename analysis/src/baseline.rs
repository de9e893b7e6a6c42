//! The random-mask baseline of a group of runs, beside the ticket's split fraction.
//!
//! The quantity: for each finished run, the probability that a random mask with the same kept
//! weights per layer as the run's *last stored level* is split (and connected, degraded),
//! estimated by `shared::baseline::estimate` (seeded by the task id and that level, so it never
//! changes between queries); for a group, the mean of those probabilities over its finished
//! runs. It is the fraction of the group's runs that would be split at their last level if
//! their last masks were drawn at random with the same per-layer counts: the comparison for
//! the ticket's `frac_split` (split at the last level, the `separated` outcome).
//!
//! The interval is the 95% Wilson interval of the pooled draws (split draws of all runs out of
//! all draws): the Monte-Carlo uncertainty of that mean, nothing more. It does not describe
//! the spread over seeds (the ticket's interval does that) nor say what random masks that were
//! trained, or random masks along a whole trajectory, would do (random pruning is its own
//! control). Runs whose per-layer counts are unknown (a long CSV exported before the counts
//! were) are left out; `runs` says how many count.

use serde::{Deserialize, Serialize};
use shared::baseline::{self, Counts};

use crate::data::TaskResult;
use crate::stats::{GroupStats, Proportion};

/// The random-mask baseline of a group of runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineStats {
    /// Finished runs with known per-layer counts at their last level.
    pub runs: usize,
    /// Random masks drawn per run.
    pub draws: usize,
    /// Draws split, out of `runs * draws`: the mean per-run probability and its Monte-Carlo
    /// interval.
    pub split: Proportion,
    pub connected: Proportion,
    pub degraded: Proportion,
}

/// The baseline of one run at its last stored level: `None` if the run is not finished, its
/// per-layer counts are unknown, or `draws` is 0.
pub fn of_task(task: &TaskResult, draws: usize) -> Option<Counts> {
    let last = task.levels.last().filter(|_| task.done && draws > 0)?;
    if last.kept_per_layer.is_empty() {
        return None;
    }
    let seed = baseline::seed(&task.spec.id(), last.level);
    let tasks = task.spec.task_io();
    baseline::estimate(&task.spec.shape, &last.kept_per_layer, &tasks, draws, seed).ok()
}

/// The baseline of a group of runs (see the module documentation); `None` when no run counts.
pub fn of_group(tasks: &[&TaskResult], draws: usize) -> Option<BaselineStats> {
    let counts: Vec<Counts> = tasks.iter().filter_map(|t| of_task(t, draws)).collect();
    if counts.is_empty() {
        return None;
    }
    let total = |f: fn(&Counts) -> usize| counts.iter().map(f).sum::<usize>();
    let n = total(|c| c.draws);
    Some(BaselineStats {
        runs: counts.len(),
        draws,
        split: Proportion::new(total(|c| c.split), n),
        connected: Proportion::new(total(|c| c.connected), n),
        degraded: Proportion::new(total(|c| c.degraded), n),
    })
}

/// Sets the baseline of each group of [`crate::stats::group_by`] over `tasks` (the tasks whose
/// axis values are the group's key), with `draws` random masks per run.
pub fn fill(groups: &mut [GroupStats], tasks: &[TaskResult], draws: usize) {
    for g in groups {
        let members: Vec<&TaskResult> = tasks
            .iter()
            .filter(|t| g.key.iter().all(|(axis, v)| axis.value(&t.spec) == *v))
            .collect();
        g.baseline = of_group(&members, draws);
    }
}
