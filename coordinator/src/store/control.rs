//! A sweep's life on a shared fleet: pause, resume, cancel and priority.
//!
//! Pausing or cancelling a sweep ends its open leases as `returned` (no attempt counted, every
//! stored level kept): their workers learn it at their next heartbeat or report, stop training
//! and drop the level in flight. The lease query passes over paused and cancelled sweeps. A
//! paused sweep resumed is leased again and each task resumes at its first level not stored,
//! bit-identically; a cancelled one is never leased again (its results stay, partial). Among
//! active sweeps the one of higher priority is leased first, then the older.

use super::sql;
use rusqlite::{params, Connection, OptionalExtension};

use super::leases::{self, OpenLease};
use super::StoreError;

/// Whether a sweep's tasks are leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepState {
    Active,
    Paused,
    Cancelled,
}

impl SweepState {
    pub fn as_str(self) -> &'static str {
        match self {
            SweepState::Active => "active",
            SweepState::Paused => "paused",
            SweepState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<SweepState> {
        match s {
            "active" => Some(SweepState::Active),
            "paused" => Some(SweepState::Paused),
            "cancelled" => Some(SweepState::Cancelled),
            _ => None,
        }
    }
}

/// A sweep's state and priority after a change, and the leases the change returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub state: SweepState,
    pub priority: i64,
    pub leases_returned: u64,
}

/// The state and priority of `sweep` (active at priority 0 on a database older than schema 8).
pub fn state(conn: &Connection, sweep: &str) -> Result<(SweepState, i64), StoreError> {
    if super::schema::user_version(conn)? < 8 {
        return Ok((SweepState::Active, 0));
    }
    let row: Option<(String, i64)> = sql::row(
        conn,
        "SELECT state, priority FROM sweeps WHERE name = ?1",
        [sweep],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    let (state, priority) =
        row.ok_or_else(|| StoreError::NotFound(format!("no sweep named {sweep:?}")))?;
    let state = SweepState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("sweep {sweep:?} has state {state:?}")))?;
    Ok((state, priority))
}

/// Pauses, resumes or cancels `sweep`. Pausing or cancelling returns its open leases; a
/// cancelled sweep cannot be resumed or paused.
pub fn set_state(
    conn: &mut Connection,
    sweep: &str,
    to: SweepState,
    now_ms: i64,
) -> Result<Control, StoreError> {
    let tx = super::unit(conn)?;
    let (from, priority) = state(&tx, sweep)?;
    if from == SweepState::Cancelled && to != SweepState::Cancelled {
        return Err(StoreError::Conflict(format!(
            "sweep {sweep:?} was cancelled and cannot be {}; submit its file under another name \
             to run it again",
            match to {
                SweepState::Active => "resumed",
                _ => "paused",
            }
        )));
    }
    sql::exec(
        &tx,
        "UPDATE sweeps SET state = ?2, updated_ms = ?3 WHERE name = ?1",
        params![sweep, to.as_str(), now_ms],
    )?;
    let mut returned = 0;
    if to != SweepState::Active {
        let reason = format!("sweep {}", to.as_str());
        for (worker, lease) in open_leases(&tx, sweep)? {
            leases::hand_back(&tx, &lease, worker, now_ms, Some(&reason), None)?;
            returned += 1;
        }
    }
    tx.commit()?;
    Ok(Control {
        state: to,
        priority,
        leases_returned: returned,
    })
}

/// Sets the priority of `sweep`: among active sweeps, a higher one's tasks are leased first.
pub fn set_priority(
    conn: &mut Connection,
    sweep: &str,
    priority: i64,
) -> Result<Control, StoreError> {
    let tx = super::unit(conn)?;
    let (state, _) = state(&tx, sweep)?;
    sql::exec(
        &tx,
        "UPDATE sweeps SET priority = ?2 WHERE name = ?1",
        params![sweep, priority],
    )?;
    tx.commit()?;
    Ok(Control {
        state,
        priority,
        leases_returned: 0,
    })
}

/// The open leases of `sweep`'s tasks, with their workers.
fn open_leases(tx: &Connection, sweep: &str) -> Result<Vec<(u64, OpenLease)>, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT l.worker, l.id, t.key, t.id, l.deadline_ms
         FROM leases l JOIN tasks t ON t.key = l.task
         WHERE t.sweep = ?1 AND l.ended_ms IS NULL",
    )?;
    let rows = stmt.query_map([sweep], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            OpenLease {
                lease_id: r.get::<_, i64>(1)? as u64,
                task_key: r.get(2)?,
                task_id: r.get(3)?,
                sweep: sweep.to_string(),
                deadline_ms: r.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
