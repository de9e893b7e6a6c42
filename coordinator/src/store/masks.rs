//! Reading stored masks back, decoded: every level of one task, or one level.

use rusqlite::{params, Connection, OptionalExtension};
use shared::graph::LayerMask;

use crate::convert;
use crate::error::ApiError;

use super::StoreError;

/// The stored masks of every level of task `task_id` of `sweep`, in level order.
pub fn level_masks(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
) -> Result<Vec<(usize, Vec<LayerMask>)>, ApiError> {
    let key = task_key(conn, sweep, task_id)?;
    let mut stmt = conn
        .prepare("SELECT level, masks FROM levels WHERE task = ?1 ORDER BY level")
        .map_err(StoreError::from)?;
    let rows = stmt
        .query_map([key], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(StoreError::from)?;
    let mut out = Vec::new();
    for row in rows {
        let (level, blob) = row.map_err(StoreError::from)?;
        out.push((level as usize, convert::blob_to_masks(&blob)?));
    }
    Ok(out)
}

/// The stored masks of one level of a task, or `None` if that level is not stored.
pub fn masks_at(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
    level: usize,
) -> Result<Option<Vec<LayerMask>>, ApiError> {
    let key = task_key(conn, sweep, task_id)?;
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT masks FROM levels WHERE task = ?1 AND level = ?2",
            params![key, level as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    Ok(blob.map(|b| convert::blob_to_masks(&b)).transpose()?)
}

fn task_key(conn: &Connection, sweep: &str, task_id: &str) -> Result<i64, ApiError> {
    conn.query_row(
        "SELECT key FROM tasks WHERE sweep = ?1 AND id = ?2",
        [sweep, task_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::from)?
    .ok_or_else(|| ApiError::NotFound(format!("sweep {sweep:?} has no task with id {task_id:?}")))
}
