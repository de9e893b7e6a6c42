//! What statistics, figures, exports and the report are computed from: a sweep's tasks with
//! their stored levels (and, on demand, one level's masks), decoded from the wire form the
//! `TaskLevels` and `TicketMasks` RPCs return. Reading a database directly goes through the
//! same wire form ([`crate::store::results`]), so `--db` and `--coordinator` agree exactly.

use proto::v1 as pb;
use rusqlite::Connection;
use shared::graph::LayerMask;
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;

use crate::aggregate::TaskResult;
use crate::convert;
use crate::error::ApiError;
use crate::store::results;

/// A sweep's stored results.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepData {
    pub sweep: String,
    /// The sweep file as submitted.
    pub yaml: String,
    /// Every task in expansion order.
    pub tasks: Vec<TaskResult>,
    /// Each task's state (`pending`, `leased`, `done`, `failed`), as `tasks`.
    pub states: Vec<String>,
}

/// One level of one task with its masks.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketData {
    pub spec: TaskSpec,
    pub level: usize,
    pub metrics: Option<LevelMetrics>,
    pub masks: Vec<LayerMask>,
}

/// Decodes a `TaskLevels` answer.
pub fn from_proto(answer: &pb::TaskLevelsResponse) -> Result<SweepData, String> {
    let mut tasks = Vec::with_capacity(answer.tasks.len());
    let mut states = Vec::with_capacity(answer.tasks.len());
    for row in &answer.tasks {
        let spec: TaskSpec = serde_json::from_str(&row.spec_json)
            .map_err(|e| format!("task {}: bad spec: {e}", row.task_id))?;
        let levels = row
            .levels
            .iter()
            .map(convert::metrics_from_proto)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("task {}: {e}", row.task_id))?;
        tasks.push(TaskResult {
            idx: usize::try_from(row.index).unwrap_or(usize::MAX),
            spec,
            done: row.state == "done",
            levels,
        });
        states.push(row.state.clone());
    }
    Ok(SweepData {
        sweep: answer.sweep.clone(),
        yaml: answer.yaml.clone(),
        tasks,
        states,
    })
}

/// Decodes a `TicketMasks` answer.
pub fn ticket_from_proto(answer: &pb::TicketMasksResponse) -> Result<TicketData, String> {
    let spec: TaskSpec =
        serde_json::from_str(&answer.spec_json).map_err(|e| format!("bad task spec: {e}"))?;
    let metrics = answer
        .metrics
        .as_ref()
        .map(convert::metrics_from_proto)
        .transpose()?;
    let masks = answer
        .masks
        .iter()
        .map(|m| convert::mask_from_proto(m).map_err(|e| format!("bad mask: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TicketData {
        spec,
        level: usize::try_from(answer.level).unwrap_or(usize::MAX),
        metrics,
        masks,
    })
}

fn corrupt(e: String) -> ApiError {
    ApiError::Store(crate::store::StoreError::Corrupt(e))
}

/// Reads a sweep's results from a database connection.
pub fn load(conn: &Connection, sweep: &str) -> Result<SweepData, ApiError> {
    from_proto(&results::task_levels(conn, sweep)?).map_err(corrupt)
}

/// Reads one level's masks from a database connection.
pub fn load_ticket(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
    level: usize,
) -> Result<TicketData, ApiError> {
    ticket_from_proto(&results::ticket_masks(conn, sweep, task_id, level as u64)?).map_err(corrupt)
}

impl SweepData {
    /// Tasks in each state: `(pending, leased, done, failed)`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |s: &str| self.states.iter().filter(|x| *x == s).count();
        (
            count("pending"),
            count("leased"),
            count("done"),
            count("failed"),
        )
    }

    /// The ticket the report shows: the first split of the largest network that split
    /// (ties: lowest expansion index), else the last level of the largest network.
    pub fn showcase(&self) -> Option<(String, usize)> {
        let best_split = self
            .tasks
            .iter()
            .filter_map(|t| {
                let l = crate::stats::first_level(&t.levels, shared::graph::Status::Split)?;
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
