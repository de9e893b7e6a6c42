//! The stored rows behind statistics, figures, exports and the report: every task of a sweep
//! with its state and levels (the data set [`SweepData`]), and one level of one task with its
//! masks. The `TaskLevels` / `TicketMasks` RPCs serve exactly these, so `--db` and
//! `--coordinator` read the same data.

use std::collections::HashMap;

use analysis::{SweepData, TaskResult};
use rusqlite::{params, Connection, OptionalExtension};
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;
use shared::state::TaskState;

use super::{sweeps, StoreError};

/// One stored level of one task, with its masks as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTicket {
    pub spec: TaskSpec,
    pub level: usize,
    pub metrics: LevelMetrics,
    /// The masks, encoded as the service stored them.
    pub masks_blob: Vec<u8>,
}

/// Every task of `sweep` (in expansion order) with its state and stored levels, and the
/// sweep file.
pub fn sweep_data(conn: &Connection, sweep: &str) -> Result<SweepData, StoreError> {
    let yaml = sweeps::yaml(conn, sweep)?
        .ok_or_else(|| StoreError::NotFound(format!("no sweep named {sweep:?}")))?;
    let mut stmt =
        conn.prepare("SELECT key, idx, spec_json, state FROM tasks WHERE sweep = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([sweep], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut tasks: Vec<TaskResult> = Vec::new();
    let mut states: Vec<TaskState> = Vec::new();
    let mut by_key: HashMap<i64, usize> = HashMap::new();
    for row in rows {
        let (key, idx, spec_json, state) = row?;
        let spec: TaskSpec = serde_json::from_str(&spec_json)
            .map_err(|e| StoreError::Corrupt(format!("task spec: {e}")))?;
        let state = TaskState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown task state {state:?}")))?;
        by_key.insert(key, tasks.len());
        tasks.push(TaskResult {
            idx: usize::try_from(idx).unwrap_or(0),
            spec,
            done: state == TaskState::Done,
            levels: Vec::new(),
        });
        states.push(state);
    }
    let mut stmt = conn.prepare(
        "SELECT l.task, l.metrics_json FROM levels l JOIN tasks t ON t.key = l.task
         WHERE t.sweep = ?1 ORDER BY l.task, l.level",
    )?;
    let rows = stmt.query_map([sweep], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (key, json) = row?;
        let metrics: LevelMetrics = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("level metrics: {e}")))?;
        if let Some(&i) = by_key.get(&key) {
            tasks[i].levels.push(metrics);
        }
    }
    let (state, _) = super::control::state(conn, sweep)?;
    Ok(SweepData {
        sweep: sweep.to_string(),
        yaml,
        tasks,
        states,
        state: state.as_str().to_string(),
    })
}

/// Level `level` of task `task_id` of `sweep` (any sweep holding that task when `sweep` is
/// empty).
pub fn ticket(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
    level: u64,
) -> Result<StoredTicket, StoreError> {
    let task: Option<(i64, String)> = conn
        .query_row(
            "SELECT key, spec_json FROM tasks WHERE id = ?1 AND (?2 = '' OR sweep = ?2)
             ORDER BY key LIMIT 1",
            params![task_id, sweep],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (key, spec_json) = task.ok_or_else(|| {
        StoreError::NotFound(if sweep.is_empty() {
            format!("no task with id {task_id:?}")
        } else {
            format!("sweep {sweep:?} has no task with id {task_id:?}")
        })
    })?;
    let row: Option<(String, Vec<u8>)> = conn
        .query_row(
            "SELECT metrics_json, masks FROM levels WHERE task = ?1 AND level = ?2",
            params![key, i64::try_from(level).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((metrics_json, masks_blob)) = row else {
        let stored: i64 =
            conn.query_row("SELECT COUNT(*) FROM levels WHERE task = ?1", [key], |r| {
                r.get(0)
            })?;
        return Err(StoreError::NotFound(if stored == 0 {
            format!("task {task_id} has no level stored yet")
        } else {
            format!(
                "task {task_id} has no level {level} stored (levels 0 to {} are)",
                stored - 1
            )
        }));
    };
    let spec: TaskSpec = serde_json::from_str(&spec_json)
        .map_err(|e| StoreError::Corrupt(format!("task spec: {e}")))?;
    let metrics: LevelMetrics = serde_json::from_str(&metrics_json)
        .map_err(|e| StoreError::Corrupt(format!("level metrics: {e}")))?;
    Ok(StoredTicket {
        spec,
        level: usize::try_from(level).unwrap_or(usize::MAX),
        metrics,
        masks_blob,
    })
}
