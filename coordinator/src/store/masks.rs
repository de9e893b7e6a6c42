//! Reading stored masks back (as stored, encoded): every level of one task, one level, or
//! every level of a sweep.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// The stored masks (encoded) of every level of task `task_id` of `sweep`, in level order.
pub fn level_masks(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
) -> Result<Vec<(usize, Vec<u8>)>, StoreError> {
    let key = task_key(conn, sweep, task_id)?;
    let mut stmt =
        conn.prepare("SELECT level, masks FROM levels WHERE task = ?1 ORDER BY level")?;
    let rows = stmt.query_map([key], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (level, blob) = row?;
        out.push((level as usize, blob));
    }
    Ok(out)
}

/// The stored masks (encoded) of one level of a task, or `None` if that level is not stored.
pub fn masks_at(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
    level: usize,
) -> Result<Option<Vec<u8>>, StoreError> {
    let key = task_key(conn, sweep, task_id)?;
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT masks FROM levels WHERE task = ?1 AND level = ?2",
            params![key, level as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(blob)
}

/// The stored masks (encoded) of every level of every task of `sweep`: `(task index in the
/// expansion, level, blob)`, by task index and level.
pub fn sweep_masks(
    conn: &Connection,
    sweep: &str,
) -> Result<Vec<(usize, usize, Vec<u8>)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT t.idx, l.level, l.masks FROM levels l JOIN tasks t ON t.key = l.task
         WHERE t.sweep = ?1 ORDER BY t.idx, l.level",
    )?;
    let rows = stmt.query_map([sweep], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (idx, level, blob) = row?;
        out.push((idx as usize, level as usize, blob));
    }
    Ok(out)
}

fn task_key(conn: &Connection, sweep: &str, task_id: &str) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT key FROM tasks WHERE sweep = ?1 AND id = ?2",
        [sweep, task_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("sweep {sweep:?} has no task with id {task_id:?}")))
}
