//! The stored rows behind statistics, figures, exports and the report, in their wire form
//! (so that `--db` and `--coordinator` read exactly the same data): every task of a sweep
//! with its levels (`TaskLevels`), and the masks of one level of one task (`TicketMasks`).

use std::collections::HashMap;

use proto::v1 as pb;
use rusqlite::{params, Connection, OptionalExtension};
use shared::metrics::LevelMetrics;

use crate::convert;
use crate::error::ApiError;

use super::{sweeps, StoreError};

/// Every task of `sweep` (in expansion order) with its stored levels, and the sweep file.
pub fn task_levels(conn: &Connection, sweep: &str) -> Result<pb::TaskLevelsResponse, ApiError> {
    let yaml = sweeps::yaml(conn, sweep)?
        .ok_or_else(|| ApiError::NotFound(format!("no sweep named {sweep:?}")))?;
    let mut stmt = conn
        .prepare("SELECT key, idx, id, spec_json, state FROM tasks WHERE sweep = ?1 ORDER BY idx")
        .map_err(StoreError::from)?;
    let rows = stmt
        .query_map([sweep], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(StoreError::from)?;
    let mut tasks: Vec<pb::TaskLevelsRow> = Vec::new();
    let mut by_key: HashMap<i64, usize> = HashMap::new();
    for row in rows {
        let (key, idx, task_id, spec_json, state) = row.map_err(StoreError::from)?;
        by_key.insert(key, tasks.len());
        tasks.push(pb::TaskLevelsRow {
            index: u64::try_from(idx).unwrap_or(0),
            task_id,
            spec_json,
            state,
            levels: Vec::new(),
        });
    }
    let mut stmt = conn
        .prepare(
            "SELECT l.task, l.metrics_json FROM levels l JOIN tasks t ON t.key = l.task
             WHERE t.sweep = ?1 ORDER BY l.task, l.level",
        )
        .map_err(StoreError::from)?;
    let rows = stmt
        .query_map([sweep], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(StoreError::from)?;
    for row in rows {
        let (key, json) = row.map_err(StoreError::from)?;
        let metrics: LevelMetrics = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("level metrics: {e}")))?;
        if let Some(&i) = by_key.get(&key) {
            tasks[i].levels.push(convert::metrics_to_proto(&metrics));
        }
    }
    Ok(pb::TaskLevelsResponse {
        sweep: sweep.to_string(),
        yaml,
        tasks,
    })
}

/// The masks, metrics and spec of level `level` of task `task_id` of `sweep` (any sweep
/// holding that task when `sweep` is empty).
pub fn ticket_masks(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
    level: u64,
) -> Result<pb::TicketMasksResponse, ApiError> {
    let task: Option<(i64, String)> = conn
        .query_row(
            "SELECT key, spec_json FROM tasks WHERE id = ?1 AND (?2 = '' OR sweep = ?2)
             ORDER BY key LIMIT 1",
            params![task_id, sweep],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let (key, spec_json) = task.ok_or_else(|| {
        ApiError::NotFound(if sweep.is_empty() {
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
        .optional()
        .map_err(StoreError::from)?;
    let Some((metrics_json, blob)) = row else {
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM levels WHERE task = ?1", [key], |r| {
                r.get(0)
            })
            .map_err(StoreError::from)?;
        return Err(ApiError::NotFound(if stored == 0 {
            format!("task {task_id} has no level stored yet")
        } else {
            format!(
                "task {task_id} has no level {level} stored (levels 0 to {} are)",
                stored - 1
            )
        }));
    };
    let metrics: LevelMetrics = serde_json::from_str(&metrics_json)
        .map_err(|e| StoreError::Corrupt(format!("level metrics: {e}")))?;
    Ok(pb::TicketMasksResponse {
        spec_json,
        level,
        metrics: Some(convert::metrics_to_proto(&metrics)),
        masks: convert::blob_to_proto(&blob)?,
    })
}
