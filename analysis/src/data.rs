//! The data set everything here is computed from: a sweep's tasks with their stored levels,
//! one ticket's masks, and (for live pages) the progress of the sweep. Plain data.

use shared::graph::{LayerMask, Status};
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;
use shared::state::TaskState;

/// One task with its stored levels (in level order).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    /// Position in the sweep's expansion.
    pub idx: usize,
    pub spec: TaskSpec,
    /// The task is done (all its levels stored or stopped early as its spec asks): only done
    /// tasks count in statistics.
    pub done: bool,
    pub levels: Vec<LevelMetrics>,
}

/// A sweep's stored results.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepData {
    pub sweep: String,
    /// The sweep file as submitted.
    pub yaml: String,
    /// Every task in expansion order.
    pub tasks: Vec<TaskResult>,
    /// Each task's state, as `tasks`.
    pub states: Vec<TaskState>,
    /// The sweep's own state: `active`, `paused` or `cancelled` (its results are then
    /// partial).
    pub state: String,
}

/// One level of one task with its masks.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketData {
    pub spec: TaskSpec,
    pub level: usize,
    pub metrics: Option<LevelMetrics>,
    pub masks: Vec<LayerMask>,
}

/// How a running sweep is doing, for the live page: throughput, failures and the workers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// The sweep's throughput and failures, when the coordinator knows the sweep.
    pub sweep: Option<SweepProgress>,
    /// The coordinator's live workers.
    pub workers: Vec<WorkerView>,
}

/// One sweep's throughput and failures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SweepProgress {
    pub tasks_per_hour: f64,
    pub levels_per_minute: f64,
    /// Seconds until every task is finished at the current throughput, when known.
    pub eta_seconds: Option<f64>,
    /// The fraction of the expected cost stored, when the coordinator records costs.
    pub work_done: Option<f64>,
    pub failures: Vec<Failure>,
}

/// A task that failed for good.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub task_id: String,
    pub attempts: u32,
    pub error: String,
}

/// A live worker and what it trains.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub name: String,
    pub hostname: String,
    /// Seconds since it was last heard from.
    pub seconds_since_seen: f64,
    /// `(task id, level)` of each task it trains.
    pub tasks: Vec<(String, u32)>,
}

impl SweepData {
    /// Tasks in each state: `(pending, leased, done, failed)`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |s: TaskState| self.states.iter().filter(|x| **x == s).count();
        (
            count(TaskState::Pending),
            count(TaskState::Leased),
            count(TaskState::Done),
            count(TaskState::Failed),
        )
    }

    /// The ticket the report shows: the first split of the largest network that split
    /// (ties: lowest expansion index), else the last level of the largest network.
    pub fn showcase(&self) -> Option<(String, usize)> {
        let best_split = self
            .tasks
            .iter()
            .filter_map(|t| {
                let l = crate::stats::first_level(&t.levels, Status::Split)?;
                Some((t, l.level))
            })
            .max_by_key(|(t, _)| (t.spec.weights(), std::cmp::Reverse(t.idx)));
        if let Some((t, level)) = best_split {
            return Some((t.spec.id(), level));
        }
        self.tasks
            .iter()
            .filter(|t| !t.levels.is_empty())
            .max_by_key(|t| (t.spec.weights(), std::cmp::Reverse(t.idx)))
            .map(|t| (t.spec.id(), t.levels.len() - 1))
    }
}
