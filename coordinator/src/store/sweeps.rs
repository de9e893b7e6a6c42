//! Submitted sweep files and their tasks.

use super::sql;
use rusqlite::{params, Connection, OptionalExtension};

use crate::submit::{self, ExpandedSweep};

use super::StoreError;

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub sweep: String,
    pub added: u64,
    pub existing: u64,
    pub total: u64,
}

/// One sweep with its task counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSummary {
    pub name: String,
    pub created_ms: i64,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
}

/// Stores a sweep, or adds the new tasks of a changed file under the same name (see
/// [`crate::submit`]). Existing tasks take their position in the new expansion.
pub fn submit(
    conn: &mut Connection,
    sweep: &ExpandedSweep,
    now_ms: i64,
) -> Result<Submitted, StoreError> {
    let tx = super::unit(conn)?;
    let stored_yaml: Option<String> = sql::row(
        &tx,
        "SELECT yaml FROM sweeps WHERE name = ?1",
        [&sweep.name],
        |r| r.get(0),
    )
    .optional()?;
    let stored = stored_ids(&tx, &sweep.name)?;
    let diff = submit::diff(&sweep.name, &stored, &sweep.tasks)?;

    match stored_yaml {
        None => {
            sql::exec(
                &tx,
                "INSERT INTO sweeps (name, yaml, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)",
                params![sweep.name, sweep.yaml, now_ms],
            )?;
        }
        Some(yaml) if yaml != sweep.yaml => {
            sql::exec(
                &tx,
                "UPDATE sweeps SET yaml = ?2, updated_ms = ?3 WHERE name = ?1",
                params![sweep.name, sweep.yaml, now_ms],
            )?;
        }
        Some(_) => {}
    }
    {
        let mut insert = tx.prepare(
            "INSERT INTO tasks (id, sweep, idx, spec_json, levels_planned, cost)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for &i in &diff.added {
            let task = &sweep.tasks[i];
            insert.execute(params![
                task.id,
                sweep.name,
                task.idx as i64,
                task.spec_json,
                task.levels_planned as i64,
                task.cost
            ])?;
        }
        if !diff.added.is_empty() && diff.existing > 0 {
            let mut reindex =
                tx.prepare("UPDATE tasks SET idx = ?3 WHERE sweep = ?1 AND id = ?2 AND idx != ?3")?;
            for task in &sweep.tasks {
                reindex.execute(params![sweep.name, task.id, task.idx as i64])?;
            }
        }
    }
    tx.commit()?;
    Ok(Submitted {
        sweep: sweep.name.clone(),
        added: diff.added.len() as u64,
        existing: diff.existing as u64,
        total: sweep.tasks.len() as u64,
    })
}

fn stored_ids(conn: &Connection, sweep: &str) -> Result<Vec<(String, usize)>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, idx FROM tasks WHERE sweep = ?1")?;
    let rows = stmt.query_map([sweep], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let rows: Vec<(String, i64)> = rows.collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(id, idx)| (id, usize::try_from(idx).unwrap_or(0)))
        .collect())
}

/// Every sweep, oldest first, with its task counts.
pub fn list(conn: &Connection) -> Result<Vec<SweepSummary>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT s.name, s.created_ms,
                COUNT(t.key),
                COALESCE(SUM(t.state = 'done'), 0),
                COALESCE(SUM(t.state = 'failed'), 0)
         FROM sweeps s LEFT JOIN tasks t ON t.sweep = s.name
         GROUP BY s.name ORDER BY s.created_ms, s.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SweepSummary {
            name: r.get(0)?,
            created_ms: r.get(1)?,
            total: r.get::<_, i64>(2)? as u64,
            done: r.get::<_, i64>(3)? as u64,
            failed: r.get::<_, i64>(4)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a sweep of this name exists.
pub fn exists(conn: &Connection, sweep: &str) -> Result<bool, StoreError> {
    Ok(sql::row(
        conn,
        "SELECT 1 FROM sweeps WHERE name = ?1",
        [sweep],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

/// The stored text of a sweep file.
pub fn yaml(conn: &Connection, sweep: &str) -> Result<Option<String>, StoreError> {
    Ok(sql::row(
        conn,
        "SELECT yaml FROM sweeps WHERE name = ?1",
        [sweep],
        |r| r.get(0),
    )
    .optional()?)
}

/// The ids of a sweep's tasks in expansion order.
pub fn task_ids(conn: &Connection, sweep: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT id FROM tasks WHERE sweep = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([sweep], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes failed tasks of `sweep` pending again with their attempts and last error cleared:
/// every failed task, or only `task` (which must exist and be failed). Stored levels are kept,
/// so a retried task resumes where it stopped. Returns the ids retried, in expansion order.
pub fn retry_failed(
    conn: &mut Connection,
    sweep: &str,
    task: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let tx = super::unit(conn)?;
    if !exists(&tx, sweep)? {
        return Err(StoreError::NotFound(format!("no sweep named {sweep:?}")));
    }
    if let Some(id) = task {
        let state: Option<String> = sql::row(
            &tx,
            "SELECT state FROM tasks WHERE sweep = ?1 AND id = ?2",
            params![sweep, id],
            |r| r.get(0),
        )
        .optional()?;
        match state.as_deref() {
            None => {
                return Err(StoreError::NotFound(format!(
                    "sweep {sweep:?} has no task {id:?}"
                )))
            }
            Some("failed") => {}
            Some(other) => {
                return Err(StoreError::Conflict(format!(
                    "task {id:?} is {other}, not failed: only failed tasks are retried"
                )))
            }
        }
    }
    let ids: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT id FROM tasks WHERE sweep = ?1 AND state = 'failed' \
             AND (?2 IS NULL OR id = ?2) ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![sweep, task], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    sql::exec(
        &tx,
        "UPDATE tasks SET state = 'pending', attempts = 0, last_error = NULL, finished_ms = NULL \
         WHERE sweep = ?1 AND state = 'failed' AND (?2 IS NULL OR id = ?2)",
        params![sweep, task],
    )?;
    tx.commit()?;
    Ok(ids)
}
