//! The per-level reports of tasks.
//!
//! Storing a report is split in two so the (possibly heavy) validation runs outside the
//! database lock: [`context`] reads what the report is checked against, [`insert`] re-checks
//! the lease and the expected level inside its write transaction and stores the level.
//! Masks are stored as the caller encodes them (an opaque blob here).

use super::sql;
use rusqlite::{params, Connection, OptionalExtension};
use shared::graph::Status;
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;

use super::leases::{self, OpenLease};
use super::StoreError;

/// A stored level, as compared or resumed from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLevel {
    pub metrics_json: String,
    pub seconds: f64,
    pub status: Status,
    /// The stored masks, encoded as they were given to [`insert`].
    pub masks_blob: Vec<u8>,
}

/// What a report of `level` is checked against.
#[derive(Debug, Clone)]
pub struct ReportContext {
    pub lease: OpenLease,
    pub spec: TaskSpec,
    /// Levels stored: `0..stored`.
    pub stored: u64,
    /// Level `level - 1` when `level == stored` (the new level must nest inside it).
    pub previous: Option<StoredLevel>,
    /// The level itself when already stored (a re-report).
    pub existing: Option<StoredLevel>,
}

/// Reads the context of a report of `level` under a valid lease.
pub fn context(
    conn: &mut Connection,
    worker_id: u64,
    lease_id: u64,
    level: u32,
) -> Result<ReportContext, StoreError> {
    let tx = conn.transaction()?;
    let lease = leases::check_lease(&tx, worker_id, lease_id)?;
    let spec_json: String = sql::row(
        &tx,
        "SELECT spec_json FROM tasks WHERE key = ?1",
        [lease.task_key],
        |r| r.get(0),
    )?;
    let spec: TaskSpec = serde_json::from_str(&spec_json)
        .map_err(|e| StoreError::Corrupt(format!("spec of task {}: {e}", lease.task_id)))?;
    let stored = leases::stored_levels(&tx, lease.task_key)? as u64;
    let level = u64::from(level);
    let existing = if level < stored {
        load(&tx, lease.task_key, level)?
    } else {
        None
    };
    let previous = if level == stored && level > 0 {
        load(&tx, lease.task_key, level - 1)?
    } else {
        None
    };
    Ok(ReportContext {
        lease,
        spec,
        stored,
        previous,
        existing,
    })
}

fn load(conn: &Connection, task_key: i64, level: u64) -> Result<Option<StoredLevel>, StoreError> {
    let row = sql::row(
        conn,
        "SELECT metrics_json, seconds, status, masks FROM levels WHERE task = ?1 AND level = ?2",
        params![task_key, level as i64],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        },
    )
    .optional()?;
    row.map(|(metrics_json, seconds, status, blob)| {
        Ok(StoredLevel {
            metrics_json,
            seconds,
            status: Status::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown ticket status {status:?}")))?,
            masks_blob: blob,
        })
    })
    .transpose()
}

/// Stores a validated level of the task of a still valid lease, provided it is still the
/// next expected level. Durable once this returns.
pub fn insert(
    conn: &mut Connection,
    worker_id: u64,
    lease_id: u64,
    metrics: &LevelMetrics,
    masks_blob: &[u8],
    now_ms: i64,
) -> Result<(), StoreError> {
    let metrics_json = serde_json::to_string(metrics)
        .map_err(|e| StoreError::Invalid(format!("metrics do not serialise: {e}")))?;
    let blob = masks_blob;
    let tx = super::unit(conn)?;
    let lease = leases::check_lease(&tx, worker_id, lease_id)?;
    let stored = leases::stored_levels(&tx, lease.task_key)?;
    if stored != metrics.level as i64 {
        return Err(StoreError::Raced(format!(
            "level {} of task {} was stored by a concurrent report; report it again",
            metrics.level, lease.task_id
        )));
    }
    let (engine, arithmetic): (Option<i64>, Option<String>) = sql::row(
        &tx,
        "SELECT engine, arithmetic FROM tasks WHERE key = ?1",
        [lease.task_key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    match engine {
        None => {
            sql::exec(
                &tx,
                "UPDATE tasks SET engine = ?2 WHERE key = ?1",
                params![lease.task_key, metrics.engine],
            )?;
        }
        Some(e) if e != i64::from(metrics.engine) => {
            return Err(StoreError::Conflict(format!(
                "task {} was trained by engine {e} so far; a level of engine {} cannot continue \
                 it (results of different engines are never mixed in one task)",
                lease.task_id, metrics.engine
            )));
        }
        Some(_) => {}
    }
    match arithmetic {
        // The first level stored since arithmetic was recorded fixes the task's.
        None => {
            sql::exec(
                &tx,
                "UPDATE tasks SET arithmetic = ?2 WHERE key = ?1",
                params![lease.task_key, metrics.arithmetic],
            )?;
        }
        Some(a) if a != metrics.arithmetic => {
            return Err(StoreError::Conflict(format!(
                "task {} was trained with arithmetic {a:?} so far; a level of arithmetic {:?} \
                 cannot continue it (they round differently)",
                lease.task_id, metrics.arithmetic
            )));
        }
        Some(_) => {}
    }
    // The level's cost in `shared::cost`'s model (the dense count is level 0's, this one's
    // when it is level 0); the task's expected remaining cost loses it.
    let dense = if metrics.level == 0 {
        metrics.remaining_weights as i64
    } else {
        sql::row(
            &tx,
            "SELECT remaining_weights FROM levels WHERE task = ?1 AND level = 0",
            [lease.task_key],
            |r| r.get(0),
        )?
    };
    let cost = shared::cost::level_cost(dense.max(0) as usize, metrics.remaining_weights);
    sql::exec(
        &tx,
        "INSERT INTO levels (task, level, metrics_json, remaining_weights, active_weights,
                             zombie_weights, inactive_weights, components, status, epochs,
                             seconds, masks, reported_by, reported_at_ms, cost)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            lease.task_key,
            metrics.level as i64,
            metrics_json,
            metrics.remaining_weights as i64,
            metrics.active_weights as i64,
            metrics.zombie_weights as i64,
            metrics.inactive_weights as i64,
            metrics.components as i64,
            metrics.status.as_str(),
            metrics.epochs as i64,
            metrics.seconds,
            blob,
            lease_id as i64,
            now_ms,
            cost
        ],
    )?;
    sql::exec(
        &tx,
        "UPDATE tasks SET cost = MAX(0, cost - ?2) WHERE key = ?1",
        params![lease.task_key, cost],
    )?;
    sql::exec(
        &tx,
        "UPDATE leases SET level = ?2, progress_ms = ?3 WHERE id = ?1",
        params![lease_id as i64, metrics.level as i64, now_ms],
    )?;
    sql::exec(
        &tx,
        "UPDATE workers SET last_seen_ms = ?2, current_task = ?3, current_level = ?4 WHERE id = ?1",
        params![
            worker_id as i64,
            now_ms,
            lease.task_id,
            metrics.level as i64
        ],
    )?;
    tx.commit()?;
    Ok(())
}
