//! Workers and leases: registration, leasing the next task, heartbeats, completion, failure
//! and the expiry of overdue leases.
//!
//! A lease is valid while it has not ended and its deadline has not passed. Every operation on
//! a lease checks that first and refuses (changing nothing) otherwise. A task is `leased`
//! exactly while it has an open lease; a lease that fails or expires counts one attempt, and
//! a task with `max_attempts` attempts is `failed` with the last error kept. A lease returned
//! by a worker that shuts down counts nothing: its task is pending again at once.
//!
//! Workers carry a count of consecutive failures: a failed or expired lease adds one, a
//! completed task resets it, a returned lease leaves it. `coordinator status` flags a worker
//! at [`UNHEALTHY_AFTER`] or more as unhealthy.

use super::sql;
use rusqlite::{params, Connection, OptionalExtension};
use shared::graph::Status;
use shared::spec::TaskSpec;
use shared::state::TaskState;

use super::StoreError;

/// Consecutive failed or expired leases after which a worker is reported unhealthy.
pub const UNHEALTHY_AFTER: u32 = 3;

/// A lease just granted.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    pub lease_id: u64,
    pub task_id: String,
    pub sweep: String,
    pub spec_json: String,
    pub deadline_ms: i64,
    /// The first level not stored yet.
    pub resume_level: u32,
    /// The stored (encoded) masks of level `resume_level - 1`.
    pub previous_masks: Option<Vec<u8>>,
    /// The lease had been granted for the same request before (its reply was lost).
    pub replayed: bool,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseAnswer {
    Granted(Granted),
    /// Nothing pending now for this worker; `sweeps_active` when tasks are still pending or
    /// leased; `reason` when tasks are pending but continue on another engine or arithmetic.
    Idle {
        sweeps_active: bool,
        reason: Option<String>,
    },
}

/// A lease ended by [`expire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub lease_id: u64,
    pub task_id: String,
    pub worker_id: u64,
    /// The task's new state: pending, failed, or done when all its levels were stored.
    pub task_state: TaskState,
    /// Why: missed heartbeats, or no progress (the watchdog).
    pub reason: String,
}

/// An open, valid lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLease {
    pub lease_id: u64,
    pub task_key: i64,
    pub task_id: String,
    pub sweep: String,
    pub deadline_ms: i64,
}

/// A worker announcing itself.
#[derive(Debug, Clone, Copy)]
pub struct NewWorker<'a> {
    pub name: &'a str,
    pub hostname: &'a str,
    pub api_version: u32,
    /// Tasks at once (0 counts as 1).
    pub parallel: u32,
    /// Training engine version.
    pub engine: u32,
    /// Its arithmetic (`shared::cpu::arithmetic`; '' when it did not say).
    pub arithmetic: &'a str,
}

/// Records a worker; returns its id.
pub fn register(conn: &mut Connection, w: &NewWorker, now_ms: i64) -> Result<u64, StoreError> {
    sql::exec(conn,
        "INSERT INTO workers (name, hostname, api_version, parallel, registered_ms, last_seen_ms, engine, arithmetic)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        params![w.name, w.hostname, w.api_version, w.parallel.max(1), now_ms, w.engine, w.arithmetic],
    )?;
    Ok(conn.last_insert_rowid() as u64)
}

/// The next task for worker `?1`: active sweeps by priority, then in submission order (rowid
/// breaks ties within a millisecond; paused and cancelled sweeps are passed over), within a sweep the pending task with the most expected work left
/// (`shared::cost`; ties in expansion order), so that the widest tasks do not start last; a
/// task started by one engine and arithmetic continues only on that engine and arithmetic
/// (they round differently). The CROSS JOIN makes SQLite walk
/// the sweeps by priority and age (`sweeps_by_priority`) and seek each one's pending tasks by cost
/// (`tasks_by_cost`), so the first match ends the query: no sort, no scan of all pending tasks
/// (a test checks the plan).
const NEXT_TASK: &str = "SELECT t.key, t.id, t.sweep, t.spec_json
     FROM sweeps s CROSS JOIN tasks t ON t.sweep = s.name
     WHERE s.state = 'active' AND t.state = 'pending'
       AND (t.engine IS NULL OR t.engine = (SELECT engine FROM workers WHERE id = ?1))
       AND (t.arithmetic IS NULL OR t.arithmetic = (SELECT arithmetic FROM workers WHERE id = ?1))
     ORDER BY s.priority DESC, s.created_ms, s.rowid, t.cost DESC, t.idx LIMIT 1";

/// Leases the next pending task ([`NEXT_TASK`]: oldest sweep first, most expected work left
/// first within it) to a worker that holds fewer leases than its `parallel`.
///
/// `request_id` (non-zero) makes the request idempotent: a worker that lost the reply asks
/// again with the same id and gets the lease it was granted, with a fresh deadline, instead
/// of a refusal (its limit already counts that lease) and an orphan lease that would expire
/// and charge the task an attempt. Zero means the worker sent no id.
pub fn lease(
    conn: &mut Connection,
    worker_id: u64,
    request_id: u64,
    now_ms: i64,
    lease_ms: i64,
) -> Result<LeaseAnswer, StoreError> {
    let tx = super::unit(conn)?;
    let parallel = worker_parallel(&tx, worker_id)?;
    let deadline_ms = now_ms.saturating_add(lease_ms);
    if request_id != 0 {
        if let Some(granted) = replay(&tx, worker_id, request_id, now_ms, deadline_ms)? {
            tx.commit()?;
            return Ok(LeaseAnswer::Granted(granted));
        }
    }
    let held: i64 = sql::row(
        &tx,
        "SELECT COUNT(*) FROM leases WHERE worker = ?1 AND ended_ms IS NULL",
        params![worker_id as i64],
        |r| r.get(0),
    )?;
    if held >= parallel {
        return Err(StoreError::Conflict(format!(
            "worker {worker_id} already holds {held} lease(s) and registered parallel {parallel}"
        )));
    }
    let next = sql::row(&tx, NEXT_TASK, [worker_id as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })
    .optional()?;
    let Some((task_key, task_id, sweep, spec_json)) = next else {
        let active: bool = sql::row(
            &tx,
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE state IN ('pending', 'leased'))",
            [],
            |r| r.get(0),
        )?;
        let reason = idle_reason(&tx, worker_id)?;
        sql::exec(
            &tx,
            "UPDATE workers SET idle_reason = ?2 WHERE id = ?1",
            params![worker_id as i64, reason],
        )?;
        touch_worker(&tx, worker_id, now_ms)?;
        tx.commit()?;
        return Ok(LeaseAnswer::Idle {
            sweeps_active: active,
            reason,
        });
    };

    let (stored, previous_masks) = resume_point(&tx, task_key)?;
    sql::exec(&tx,
        // The id is the lease's token: random (SQLite's randomness is seeded from the OS) in
        // [1, 2^53), so it cannot be guessed and an old worker's token does not match a lease
        // of a fresh or restored database (ids stay exact in JSON).
        "INSERT INTO leases (id, task, worker, started_ms, deadline_ms, level, request, progress_ms) \
         VALUES ((abs(random()) % 9007199254740991) + 1, ?1, ?2, ?3, ?4, ?5, NULLIF(?6, 0), ?3)",
        params![task_key, worker_id as i64, now_ms, deadline_ms, stored, request_id as i64],
    )?;
    let lease_id = tx.last_insert_rowid() as u64;
    sql::exec(
        &tx,
        "UPDATE tasks SET state = ?2 WHERE key = ?1",
        params![task_key, TaskState::Leased.as_str()],
    )?;
    sql::exec(
        &tx,
        "UPDATE workers SET last_seen_ms = ?2, current_task = ?3, current_level = ?4,
                            idle_reason = NULL WHERE id = ?1",
        params![worker_id as i64, now_ms, task_id, stored],
    )?;
    tx.commit()?;
    Ok(LeaseAnswer::Granted(Granted {
        lease_id,
        task_id,
        sweep,
        spec_json,
        deadline_ms,
        resume_level: u32::try_from(stored).unwrap_or(u32::MAX),
        previous_masks,
        replayed: false,
    }))
}

/// Why [`NEXT_TASK`] found nothing for `worker_id` although a task is pending (every pending
/// task then continues on another engine or arithmetic), naming one such task's and the
/// worker's; `None` when nothing is pending. One indexed probe, not a scan.
fn idle_reason(tx: &Connection, worker_id: u64) -> Result<Option<String>, StoreError> {
    let pending = sql::row(
        tx,
        "SELECT t.id, t.engine, COALESCE(t.arithmetic, ''), w.engine, w.arithmetic
             FROM tasks t, workers w WHERE t.state = 'pending' AND w.id = ?1 LIMIT 1",
        [worker_id as i64],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    )
    .optional()?;
    Ok(pending.map(|(task, engine, arithmetic, own_engine, own_arithmetic)| {
        let named = |a: &str| if a.is_empty() { "unrecorded".to_string() } else { a.to_string() };
        format!(
            "the pending tasks continue on another engine or arithmetic (e.g. task {task}: engine {}, \
             arithmetic {}; this worker: engine {own_engine}, arithmetic {})",
            engine.map_or_else(|| "any".to_string(), |e| e.to_string()),
            named(&arithmetic),
            named(&own_arithmetic)
        )
    }))
}

/// The open lease granted to `worker_id` for `request_id`, again, with its deadline moved to
/// `deadline_ms`; `None` when that request got no lease still open.
fn replay(
    tx: &Connection,
    worker_id: u64,
    request_id: u64,
    now_ms: i64,
    deadline_ms: i64,
) -> Result<Option<Granted>, StoreError> {
    let open = sql::row(
        tx,
        "SELECT l.id, l.task, t.id, t.sweep, t.spec_json
             FROM leases l JOIN tasks t ON t.key = l.task
             WHERE l.worker = ?1 AND l.request = ?2 AND l.ended_ms IS NULL",
        params![worker_id as i64, request_id as i64],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    )
    .optional()?;
    let Some((lease_id, task_key, task_id, sweep, spec_json)) = open else {
        return Ok(None);
    };
    let (stored, previous_masks) = resume_point(tx, task_key)?;
    let deadline_ms: i64 = sql::row(
        tx,
        "UPDATE leases SET deadline_ms = MAX(deadline_ms, ?2) WHERE id = ?1 RETURNING deadline_ms",
        params![lease_id, deadline_ms],
        |r| r.get(0),
    )?;
    touch_worker(tx, worker_id, now_ms)?;
    Ok(Some(Granted {
        lease_id: lease_id as u64,
        task_id,
        sweep,
        spec_json,
        deadline_ms,
        resume_level: u32::try_from(stored).unwrap_or(u32::MAX),
        previous_masks,
        replayed: true,
    }))
}

/// Where a lease of `task_key` starts: the levels stored so far and the stored masks of the
/// last of them.
fn resume_point(tx: &Connection, task_key: i64) -> Result<(i64, Option<Vec<u8>>), StoreError> {
    let stored = stored_levels(tx, task_key)?;
    let previous_masks: Option<Vec<u8>> = if stored > 0 {
        Some(sql::row(
            tx,
            "SELECT masks FROM levels WHERE task = ?1 AND level = ?2",
            params![task_key, stored - 1],
            |r| r.get(0),
        )?)
    } else {
        None
    };
    Ok((stored, previous_masks))
}

/// Extends a valid lease to `now + lease` and records the level being trained.
pub fn heartbeat(
    conn: &mut Connection,
    worker_id: u64,
    lease_id: u64,
    level: u32,
    now_ms: i64,
    lease_ms: i64,
) -> Result<i64, StoreError> {
    let tx = super::unit(conn)?;
    let lease = check_lease(&tx, worker_id, lease_id)?;
    let deadline_ms = now_ms.saturating_add(lease_ms);
    sql::exec(
        &tx,
        "UPDATE leases SET deadline_ms = ?2, level = ?3 WHERE id = ?1",
        params![lease_id as i64, deadline_ms, level],
    )?;
    sql::exec(
        &tx,
        "UPDATE workers SET last_seen_ms = ?2, current_task = ?3, current_level = ?4 WHERE id = ?1",
        params![worker_id as i64, now_ms, lease.task_id, level],
    )?;
    tx.commit()?;
    Ok(deadline_ms)
}

/// Ends a valid lease whose task has all its levels stored (or stopped early as its spec
/// asks): the task is done.
pub fn complete(
    conn: &mut Connection,
    worker_id: u64,
    lease_id: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = super::unit(conn)?;
    let lease = check_lease(&tx, worker_id, lease_id)?;
    let progress = progress(&tx, lease.task_key)?;
    if !progress.finished() {
        return Err(StoreError::Conflict(format!(
            "task {} has {} of {} levels stored and its spec asks for no early stop there; \
             report the remaining levels before completing",
            lease.task_id, progress.stored, progress.planned
        )));
    }
    end_lease(&tx, lease_id, now_ms, "completed", None)?;
    finish_task(&tx, lease.task_key, now_ms)?;
    release_worker(
        &tx,
        worker_id,
        &lease.task_id,
        Some(now_ms),
        Failures::Reset,
    )?;
    tx.commit()?;
    Ok(())
}

/// Ends a valid lease with an error; returns whether the task is now failed for good.
pub fn fail(
    conn: &mut Connection,
    worker_id: u64,
    lease_id: u64,
    error: &str,
    now_ms: i64,
    max_attempts: u32,
) -> Result<bool, StoreError> {
    let tx = super::unit(conn)?;
    let lease = check_lease(&tx, worker_id, lease_id)?;
    end_lease(&tx, lease_id, now_ms, "failed", Some(error))?;
    let state = count_attempt(&tx, lease.task_key, error, now_ms, max_attempts)?;
    release_worker(&tx, worker_id, &lease.task_id, Some(now_ms), Failures::Add)?;
    tx.commit()?;
    Ok(state == TaskState::Failed)
}

/// What returning a lease did to its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Returned {
    /// Levels stored so far: the next lease resumes here.
    pub levels_stored: u64,
    /// Every level was already stored: the task is done rather than pending.
    pub task_done: bool,
}

/// Ends a valid lease given back by its worker (shutting down): the task is pending again
/// without an attempt counted (or done when every level is stored), its stored levels kept;
/// the worker's count of consecutive failures is unchanged.
pub fn return_lease(
    conn: &mut Connection,
    worker_id: u64,
    lease_id: u64,
    now_ms: i64,
) -> Result<Returned, StoreError> {
    let tx = super::unit(conn)?;
    let lease = check_lease(&tx, worker_id, lease_id)?;
    let returned = hand_back(&tx, &lease, worker_id, now_ms, None, Some(now_ms))?;
    tx.commit()?;
    Ok(returned)
}

/// Ends an open lease as `returned` (no attempt counted): its task is pending again (done if
/// every level it will get is stored) and its worker off it. `seen_ms`: when the worker was
/// heard from, if it was.
pub(super) fn hand_back(
    tx: &Connection,
    lease: &OpenLease,
    worker_id: u64,
    now_ms: i64,
    reason: Option<&str>,
    seen_ms: Option<i64>,
) -> Result<Returned, StoreError> {
    end_lease(tx, lease.lease_id, now_ms, "returned", reason)?;
    let progress = progress(tx, lease.task_key)?;
    let task_done = progress.finished();
    if task_done {
        finish_task(tx, lease.task_key, now_ms)?;
    } else {
        sql::exec(
            tx,
            "UPDATE tasks SET state = ?2 WHERE key = ?1",
            params![lease.task_key, TaskState::Pending.as_str()],
        )?;
    }
    release_worker(tx, worker_id, &lease.task_id, seen_ms, Failures::Keep)?;
    Ok(Returned {
        levels_stored: progress.stored,
        task_done,
    })
}

/// The stall watchdog: a lease whose heartbeats go on but whose worker stores no level (a hung
/// training thread, a report retried forever) expires once it has made no progress for
/// `factor` times the longest level its task has stored so far, and never sooner than
/// `floor_ms`. A `factor` of 0 turns it off. Before a task's first level is stored there is
/// nothing to compare with (the dense first level of the widest network may take an hour,
/// other tasks of its sweep seconds), so only missed heartbeats end such a lease.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watchdog {
    pub factor: f64,
    pub floor_ms: i64,
}

impl Watchdog {
    /// No watchdog: only missed heartbeats end a lease.
    pub const OFF: Watchdog = Watchdog {
        factor: 0.0,
        floor_ms: 0,
    };

    /// How long a lease may go without progress, given the longest level so far (seconds).
    pub fn limit_ms(&self, longest_level_s: Option<f64>) -> Option<i64> {
        if self.factor <= 0.0 {
            return None;
        }
        let longest = longest_level_s?;
        Some(((longest * self.factor * 1000.0) as i64).max(self.floor_ms))
    }
}

/// An open lease as the expiry judges it.
#[derive(Debug, Clone)]
struct OpenRow {
    lease_id: i64,
    task_key: i64,
    worker_id: i64,
    task_id: String,
    worker_name: String,
    deadline_ms: i64,
    progress_ms: i64,
    longest_level_s: Option<f64>,
}

/// Why an open lease ends now, or `None` when it stays.
fn overdue(row: &OpenRow, now_ms: i64, watchdog: Watchdog) -> Option<String> {
    let who = format!(
        "lease {} of worker {} ({})",
        row.lease_id, row.worker_id, row.worker_name
    );
    if row.deadline_ms < now_ms {
        return Some(format!(
            "{who} expired: no heartbeat for {} ms",
            now_ms - row.deadline_ms
        ));
    }
    let limit_ms = watchdog.limit_ms(row.longest_level_s)?;
    let idle_ms = now_ms - row.progress_ms;
    (idle_ms > limit_ms).then(|| {
        format!(
            "{who} stalled: no level stored for {:.1} s while its heartbeats went on (the \
             watchdog allows {:.1} s: {} x the longest level so far, {:.1} s)",
            idle_ms as f64 / 1000.0,
            limit_ms as f64 / 1000.0,
            watchdog.factor,
            row.longest_level_s.unwrap_or(0.0)
        )
    })
}

/// Ends every open lease whose deadline passed before `now`, or that the watchdog finds
/// stalled: its task goes back to pending (an attempt counted), becomes failed after
/// `max_attempts`, or is done when all its levels were already stored.
///
/// Each lease is judged on its own (a savepoint each): a task whose stored rows cannot be read
/// (a corrupt spec) is marked failed with that error and the other leases still expire. A
/// transient error (the database busy or full) ends the round, changing nothing, for the
/// next tick to try again.
pub fn expire(
    conn: &mut Connection,
    now_ms: i64,
    max_attempts: u32,
    watchdog: Watchdog,
) -> Result<Vec<Expired>, StoreError> {
    let mut tx = super::unit(conn)?;
    let open: Vec<OpenRow> = {
        let mut stmt = tx.prepare(
            "SELECT l.id, l.task, l.worker, t.id, w.name, l.deadline_ms,
                    COALESCE(l.progress_ms, l.started_ms),
                    CASE WHEN ?1 THEN (SELECT MAX(seconds) FROM levels WHERE task = l.task) END
             FROM leases l JOIN tasks t ON t.key = l.task JOIN workers w ON w.id = l.worker
             WHERE l.ended_ms IS NULL",
        )?;
        let rows = stmt.query_map([watchdog.factor > 0.0], |r| {
            Ok(OpenRow {
                lease_id: r.get(0)?,
                task_key: r.get(1)?,
                worker_id: r.get(2)?,
                task_id: r.get(3)?,
                worker_name: r.get(4)?,
                deadline_ms: r.get(5)?,
                progress_ms: r.get(6)?,
                longest_level_s: r.get(7)?,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut expired = Vec::new();
    for row in open {
        let Some(reason) = overdue(&row, now_ms, watchdog) else {
            continue;
        };
        let one = tx.savepoint()?;
        let task_state = match expire_one(&one, &row, &reason, now_ms, max_attempts) {
            Ok(state) => {
                one.commit()?;
                state
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                drop(one);
                let broken = tx.savepoint()?;
                let error = format!("{reason}; the task cannot be judged, so it is failed: {e}");
                end_lease(
                    &broken,
                    row.lease_id as u64,
                    now_ms,
                    "expired",
                    Some(&error),
                )?;
                // This attempt is its last, whatever max_attempts says.
                count_attempt(&broken, row.task_key, &error, now_ms, 1)?;
                release_worker(
                    &broken,
                    row.worker_id as u64,
                    &row.task_id,
                    None,
                    Failures::Add,
                )?;
                broken.commit()?;
                tracing::error!(lease_id = row.lease_id, task_id = %row.task_id, error = %e, "a task's stored rows cannot be read: marked failed");
                TaskState::Failed
            }
        };
        expired.push(Expired {
            lease_id: row.lease_id as u64,
            task_id: row.task_id,
            worker_id: row.worker_id as u64,
            task_state,
            reason,
        });
    }
    tx.commit()?;
    Ok(expired)
}

/// Ends one overdue lease: the task's new state.
fn expire_one(
    conn: &Connection,
    row: &OpenRow,
    reason: &str,
    now_ms: i64,
    max_attempts: u32,
) -> Result<TaskState, StoreError> {
    end_lease(conn, row.lease_id as u64, now_ms, "expired", Some(reason))?;
    let task_state = if progress(conn, row.task_key)?.finished() {
        finish_task(conn, row.task_key, now_ms)?;
        TaskState::Done
    } else {
        count_attempt(conn, row.task_key, reason, now_ms, max_attempts)?
    };
    release_worker(
        conn,
        row.worker_id as u64,
        &row.task_id,
        None,
        Failures::Add,
    )?;
    Ok(task_state)
}

/// Checks that `lease_id` is an open lease of `worker_id` (not ended by the expiry loop,
/// completion, failure or return).
pub fn check_lease(
    conn: &Connection,
    worker_id: u64,
    lease_id: u64,
) -> Result<OpenLease, StoreError> {
    worker_parallel(conn, worker_id)?;
    let row = sql::row(
        conn,
        "SELECT l.worker, l.task, t.id, t.sweep, l.deadline_ms, l.ended_ms, l.outcome
             FROM leases l JOIN tasks t ON t.key = l.task WHERE l.id = ?1",
        [lease_id as i64],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        },
    )
    .optional()?;
    let Some((owner, task_key, task_id, sweep, deadline_ms, ended_ms, outcome)) = row else {
        return Err(StoreError::NotFound(format!("unknown lease {lease_id}")));
    };
    if owner as u64 != worker_id {
        return Err(StoreError::Conflict(format!(
            "lease {lease_id} belongs to worker {owner}, not worker {worker_id}"
        )));
    }
    if ended_ms.is_some() {
        let outcome = outcome.unwrap_or_else(|| "ended".to_string());
        let successor = latest_lease(conn, task_key)?
            .filter(|&latest| latest != lease_id)
            .map(|latest| format!("; task {task_id} was leased again (lease {latest})"))
            .unwrap_or_default();
        return Err(StoreError::Conflict(format!(
            "lease {lease_id} of task {task_id} is no longer valid ({outcome}){successor}"
        )));
    }
    // A lease past its deadline that the expiry loop has not ended yet is still this worker's:
    // the loop alone judges expiry (with grace after a stall of the coordinator and deadlines
    // moved with a wall-clock jump), so a worker whose heartbeat was held up by a coordinator
    // that could not serve loses nothing.
    Ok(OpenLease {
        lease_id,
        task_key,
        task_id,
        sweep,
        deadline_ms,
    })
}

/// Stored levels of a task against its plan and early-stop settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stored: u64,
    pub planned: u64,
    /// The last stored level's status asks the run to stop there.
    pub stopped_early: bool,
}

impl Progress {
    /// Nothing more to train.
    pub fn finished(&self) -> bool {
        self.stored >= self.planned || self.stopped_early
    }
}

/// How far a task got.
pub fn progress(conn: &Connection, task_key: i64) -> Result<Progress, StoreError> {
    let (planned, spec_json): (i64, String) = sql::row(
        conn,
        "SELECT levels_planned, spec_json FROM tasks WHERE key = ?1",
        [task_key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let stored = stored_levels(conn, task_key)?;
    let mut stopped_early = false;
    if stored > 0 {
        let status: String = sql::row(
            conn,
            "SELECT status FROM levels WHERE task = ?1 AND level = ?2",
            params![task_key, stored - 1],
            |r| r.get(0),
        )?;
        let spec: TaskSpec = serde_json::from_str(&spec_json)
            .map_err(|e| StoreError::Corrupt(format!("task spec: {e}")))?;
        let status = Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown ticket status {status:?}")))?;
        stopped_early = spec.prune.stops_after(status);
    }
    Ok(Progress {
        stored: stored as u64,
        planned: planned as u64,
        stopped_early,
    })
}

/// Number of levels stored for a task (they are always levels `0..n`).
pub fn stored_levels(conn: &Connection, task_key: i64) -> Result<i64, StoreError> {
    Ok(sql::row(
        conn,
        "SELECT COUNT(*) FROM levels WHERE task = ?1",
        [task_key],
        |r| r.get(0),
    )?)
}

fn latest_lease(conn: &Connection, task_key: i64) -> Result<Option<u64>, StoreError> {
    Ok(sql::row(conn,
            "SELECT id FROM leases WHERE task = ?1 ORDER BY ended_ms IS NULL DESC, started_ms DESC LIMIT 1",
            [task_key],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|id| id as u64))
}

fn worker_parallel(conn: &Connection, worker_id: u64) -> Result<i64, StoreError> {
    sql::row(
        conn,
        "SELECT parallel FROM workers WHERE id = ?1",
        [worker_id as i64],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("unknown worker {worker_id}: register first")))
}

fn touch_worker(conn: &Connection, worker_id: u64, now_ms: i64) -> Result<(), StoreError> {
    sql::exec(
        conn,
        "UPDATE workers SET last_seen_ms = ?2 WHERE id = ?1",
        params![worker_id as i64, now_ms],
    )?;
    Ok(())
}

fn end_lease(
    conn: &Connection,
    lease_id: u64,
    now_ms: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sql::exec(
        conn,
        "UPDATE leases SET ended_ms = ?2, outcome = ?3, error = ?4 WHERE id = ?1",
        params![lease_id as i64, now_ms, outcome, error],
    )?;
    Ok(())
}

/// Counts a failed attempt; returns the task's new state.
fn count_attempt(
    conn: &Connection,
    task_key: i64,
    error: &str,
    now_ms: i64,
    max_attempts: u32,
) -> Result<TaskState, StoreError> {
    let attempts: i64 = sql::row(conn,
            "UPDATE tasks SET attempts = attempts + 1, last_error = ?2 WHERE key = ?1 RETURNING attempts",
            params![task_key, error],
            |r| r.get(0),
        )
        ?;
    let state = if attempts >= i64::from(max_attempts.max(1)) {
        TaskState::Failed
    } else {
        TaskState::Pending
    };
    sql::exec(conn,
        "UPDATE tasks SET state = ?2, finished_ms = CASE WHEN ?2 = 'failed' THEN ?3 END WHERE key = ?1",
        params![task_key, state.as_str(), now_ms],
    )?;
    Ok(state)
}

/// What ending a lease does to its worker's count of consecutive failures.
#[derive(Debug, Clone, Copy)]
enum Failures {
    /// A completed task: the count starts again.
    Reset,
    /// A returned lease: no failure, no success.
    Keep,
    /// A failed or expired lease.
    Add,
}

/// The worker is off `task_id` (it was heard from at `seen_ms`, when it was), with its count
/// of consecutive failures updated.
fn release_worker(
    conn: &Connection,
    worker_id: u64,
    task_id: &str,
    seen_ms: Option<i64>,
    failures: Failures,
) -> Result<(), StoreError> {
    let count = match failures {
        Failures::Reset => "0",
        Failures::Keep => "consecutive_failures",
        Failures::Add => "consecutive_failures + 1",
    };
    sql::exec(
        conn,
        &format!(
            "UPDATE workers SET consecutive_failures = {count},
                    last_seen_ms = COALESCE(?3, last_seen_ms),
                    current_task = NULLIF(current_task, ?2),
                    current_level = CASE WHEN current_task = ?2 THEN NULL ELSE current_level END
             WHERE id = ?1"
        ),
        params![worker_id as i64, task_id, seen_ms],
    )?;
    Ok(())
}

/// The task has every level it will get: done.
fn finish_task(conn: &Connection, task_key: i64, now_ms: i64) -> Result<(), StoreError> {
    sql::exec(
        conn,
        "UPDATE tasks SET state = ?3, finished_ms = ?2 WHERE key = ?1",
        params![task_key, now_ms, TaskState::Done.as_str()],
    )?;
    Ok(())
}

/// Gives every open lease at least until `deadline_ms`; the number of leases extended.
///
/// Called when a coordinator starts: its workers could not heartbeat while it was down, and
/// expiring their leases at once would throw away the levels they are waiting to report.
///
/// Their workers could not store levels either: the stall watchdog's clock of each open lease
/// starts again at `now_ms`.
pub fn extend_open(conn: &Connection, now_ms: i64, deadline_ms: i64) -> Result<usize, StoreError> {
    sql::exec(
        conn,
        "UPDATE leases SET progress_ms = MAX(COALESCE(progress_ms, started_ms), ?1)
         WHERE ended_ms IS NULL",
        [now_ms],
    )?;
    Ok(sql::exec(
        conn,
        "UPDATE leases SET deadline_ms = ?1 WHERE ended_ms IS NULL AND deadline_ms < ?1",
        [deadline_ms],
    )?)
}

/// Moves the deadlines of every open lease by `delta_ms` (the wall clock jumped by that much
/// relative to real time), so that each keeps the real time it had left. Returns how many.
pub fn shift_open(conn: &Connection, delta_ms: i64) -> Result<usize, StoreError> {
    Ok(sql::exec(
        conn,
        "UPDATE leases SET deadline_ms = deadline_ms + ?1,
                           progress_ms = COALESCE(progress_ms, started_ms) + ?1
         WHERE ended_ms IS NULL",
        [delta_ms],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_worker() -> NewWorker<'static> {
        NewWorker {
            name: "w",
            hostname: "h",
            api_version: 1,
            parallel: 1,
            engine: shared::synthetic::SYNTHETIC_ENGINE,
            arithmetic: shared::cpu::arithmetic(),
        }
    }
    use crate::store::{sweeps, Store};
    use crate::submit;

    /// Leases the next task for `request` at `now`; panics when nothing is granted.
    fn grant(store: &Store, worker: u64, request: u64, now: i64, lease_ms: i64) -> Granted {
        match store
            .run_blocking(|c| lease(c, worker, request, now, lease_ms))
            .unwrap()
        {
            LeaseAnswer::Granted(granted) => granted,
            other => panic!("no lease: {other:?}"),
        }
    }

    fn store_with_sweep(dir: &std::path::Path) -> Store {
        let store = Store::open(&dir.join("t.db")).unwrap();
        let yaml = "name: t\nmodel:\n  shape: [4, 8, 8, 2]\npruning:\n  levels: 2\n  target: 40\nseeds: 2\n";
        let sweep = submit::expand(yaml, "t.yaml", "").unwrap();
        store
            .run_blocking(|c| sweeps::submit(c, &sweep, 0))
            .unwrap();
        store
    }

    #[test]
    fn the_most_expensive_pending_task_goes_first_within_submission_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        // Two sweeps: the first's narrow tasks still come before the second's wide one.
        let first = "name: a\nmodel:\n  hidden: [8, 64, 16]\npruning:\n  levels: 2\n  target: 40\nseeds: 1\n";
        let second = "name: b\nmodel:\n  shape: [4, 128, 128, 2]\npruning:\n  levels: 1\n  target: 400\nseeds: 1\n";
        for (yaml, now) in [(first, 0), (second, 1)] {
            let sweep = submit::expand(yaml, "t.yaml", "").unwrap();
            store
                .run_blocking(move |c| sweeps::submit(c, &sweep, now))
                .unwrap();
        }
        let mut worker = test_worker();
        worker.parallel = 8;
        let worker = store.run_blocking(|c| register(c, &worker, 0)).unwrap();
        let order: Vec<(String, usize)> = (0..4)
            .map(|i| {
                let g = grant(&store, worker, 0, 10 + i, 100);
                let spec: shared::spec::TaskSpec = serde_json::from_str(&g.spec_json).unwrap();
                (g.sweep, spec.shape[1])
            })
            .collect();
        let want = [("a", 64), ("a", 16), ("a", 8), ("b", 128)];
        let want: Vec<(String, usize)> = want.iter().map(|(s, w)| (s.to_string(), *w)).collect();
        assert_eq!(order, want);
    }

    #[test]
    fn the_next_task_is_one_index_seek_without_a_sort() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let plan: Vec<String> = store
            .run_blocking(|c| {
                let mut q = c.prepare(&format!("EXPLAIN QUERY PLAN {NEXT_TASK}"))?;
                let rows = q.query_map([1], |r| r.get::<_, String>(3))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SCAN s USING INDEX sweeps_by_priority"),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH t USING INDEX tasks_by_cost (state=? AND sweep=?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_stored_level_lowers_its_tasks_expected_cost() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let cost = |store: &Store| -> f64 {
            store
                .run_blocking(|c| {
                    c.query_row("SELECT cost FROM tasks WHERE idx = 0", [], |r| r.get(0))
                        .map_err(StoreError::from)
                })
                .unwrap()
        };
        let before = cost(&store);
        let spec = shared::sweep::Sweep::from_yaml(
            "name: t\nmodel:\n  shape: [4, 8, 8, 2]\npruning:\n  levels: 2\n  target: 40\nseeds: 2\n",
            "t.yaml",
        )
        .unwrap()
        .expand()
        .unwrap()
        .remove(0);
        assert_eq!(before, shared::cost::remaining_cost(&spec, 0));
        lease_and_store_level_0(&store, worker, 10, 1.0);
        assert!((cost(&store) - shared::cost::remaining_cost(&spec, 1)).abs() < 1e-6);
    }

    #[test]
    fn lease_then_expire_then_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let granted = grant(&store, worker, 0, 10, 100);
        assert_eq!((granted.resume_level, granted.deadline_ms), (0, 110));
        let expired = store
            .run_blocking(|c| expire(c, 111, 2, Watchdog::OFF))
            .unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].task_state, TaskState::Pending);
        let err = store
            .run_blocking(|c| heartbeat(c, worker, granted.lease_id, 0, 112, 100))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let again = grant(&store, worker, 0, 120, 100);
        assert_eq!(
            again.task_id, granted.task_id,
            "the same task comes back first"
        );
        assert!(store
            .run_blocking(|c| fail(c, worker, again.lease_id, "boom", 130, 2))
            .unwrap());
    }

    #[test]
    fn a_repeated_lease_request_gets_the_same_lease_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let first = grant(&store, worker, 7, 10, 100);
        assert!(!first.replayed);
        // The reply was lost: the same request again gets the same lease, deadline renewed.
        let again = grant(&store, worker, 7, 50, 100);
        assert!(again.replayed);
        assert_eq!(
            (again.lease_id, &again.task_id, again.deadline_ms),
            (first.lease_id, &first.task_id, 150)
        );
        let open: i64 = store
            .run_blocking(|c| {
                c.query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(open, 1, "no second lease was made");
        // A new request of a worker at its limit is still refused, changing nothing.
        let err = store
            .run_blocking(|c| lease(c, worker, 8, 60, 100))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        // Once the lease ended, the old request id leases the next task.
        store
            .run_blocking(|c| fail(c, worker, first.lease_id, "boom", 70, 5))
            .unwrap();
        let next = grant(&store, worker, 7, 80, 100);
        assert!(!next.replayed);
        assert_ne!(next.lease_id, first.lease_id);
    }

    #[test]
    fn a_returned_lease_counts_no_attempt_and_keeps_its_levels() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let granted = grant(&store, worker, 0, 10, 100);
        let spec: TaskSpec = serde_json::from_str(&granted.spec_json).unwrap();
        let masks = crate::testkit::synthetic_masks(&spec, 0);
        let metrics = crate::testkit::synthetic_metrics(&spec, 0, &masks);
        store
            .run_blocking(|c| {
                crate::store::levels::insert(c, worker, granted.lease_id, &metrics, b"masks", 20)
            })
            .unwrap();
        // One failure before, so the count is visibly left alone.
        store
            .run_blocking(|c| {
                c.execute("UPDATE workers SET consecutive_failures = 1", [])
                    .map_err(StoreError::from)
            })
            .unwrap();
        let returned = store
            .run_blocking(|c| return_lease(c, worker, granted.lease_id, 30))
            .unwrap();
        assert_eq!(
            returned,
            Returned {
                levels_stored: 1,
                task_done: false
            }
        );
        let (state, attempts, failures): (String, i64, i64) = store
            .run_blocking(|c| {
                c.query_row(
                    "SELECT t.state, t.attempts, w.consecutive_failures FROM tasks t, workers w
                     WHERE t.id = ?1",
                    [&granted.task_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .unwrap();
        assert_eq!((state.as_str(), attempts, failures), ("pending", 0, 1));
        // The lease is over: using it again is refused, returning twice too.
        let err = store
            .run_blocking(|c| heartbeat(c, worker, granted.lease_id, 1, 31, 100))
            .unwrap_err();
        assert!(err.to_string().contains("(returned)"), "{err}");
        assert!(store
            .run_blocking(|c| return_lease(c, worker, granted.lease_id, 32))
            .is_err());
        // The other task has more work left, so it goes first; then the returned one resumes
        // at level 1.
        let other = grant(&store, worker, 0, 40, 100);
        assert_ne!(other.task_id, granted.task_id);
        assert_eq!(other.resume_level, 0);
        store
            .run_blocking(|c| return_lease(c, worker, other.lease_id, 41))
            .unwrap();
        store
            .run_blocking(|c| {
                c.execute(
                    "UPDATE tasks SET state = 'done' WHERE id = ?1",
                    [&other.task_id],
                )
                .map_err(StoreError::from)
            })
            .unwrap();
        let next = grant(&store, worker, 0, 42, 100);
        assert_eq!((next.task_id, next.resume_level), (granted.task_id, 1));
        assert!(next.previous_masks.is_some());
    }

    #[test]
    fn an_expired_lease_with_every_level_stored_finishes_its_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let granted = grant(&store, worker, 0, 10, 100);
        let spec: TaskSpec = serde_json::from_str(&granted.spec_json).unwrap();
        for level in 0..=spec.prune.levels {
            let masks = crate::testkit::synthetic_masks(&spec, level);
            let metrics = crate::testkit::synthetic_metrics(&spec, level, &masks);
            store
                .run_blocking(|c| {
                    crate::store::levels::insert(
                        c,
                        worker,
                        granted.lease_id,
                        &metrics,
                        b"masks",
                        20,
                    )
                })
                .unwrap();
        }
        // The worker dies between its last report and completing.
        let expired = store
            .run_blocking(|c| expire(c, 200, 3, Watchdog::OFF))
            .unwrap();
        assert_eq!(expired[0].task_state, TaskState::Done);
        let next = grant(&store, worker, 0, 210, 100);
        assert_ne!(next.task_id, granted.task_id);
    }

    /// Leases the next task to `worker` at `now` and stores its level 0, which took `seconds`.
    fn lease_and_store_level_0(store: &Store, worker: u64, now: i64, seconds: f64) -> Granted {
        let granted = grant(store, worker, 0, now, 1_000);
        let spec: TaskSpec = serde_json::from_str(&granted.spec_json).unwrap();
        let masks = crate::testkit::synthetic_masks(&spec, 0);
        let mut metrics = crate::testkit::synthetic_metrics(&spec, 0, &masks);
        metrics.seconds = seconds;
        store
            .run_blocking(|c| {
                crate::store::levels::insert(c, worker, granted.lease_id, &metrics, b"m", now)
            })
            .unwrap();
        granted
    }

    #[test]
    fn the_watchdog_ends_a_lease_that_heartbeats_but_stores_no_level() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        // Level 0 took 0.5 s and was stored at t = 20; heartbeats go on, nothing else comes.
        let granted = lease_and_store_level_0(&store, worker, 20, 0.5);
        let watchdog = Watchdog {
            factor: 2.0,
            floor_ms: 100,
        };
        for now in [900, 1_400] {
            store
                .run_blocking(|c| heartbeat(c, worker, granted.lease_id, 1, now, 1_000))
                .unwrap();
        }
        // 1 s without progress is allowed (2 x 0.5 s); the deadline is far.
        let kept = store
            .run_blocking(|c| expire(c, 1_019, 3, watchdog))
            .unwrap();
        assert!(kept.is_empty(), "{kept:?}");
        let none = store
            .run_blocking(|c| expire(c, 1_500, 3, Watchdog::OFF))
            .unwrap();
        assert!(none.is_empty(), "the watchdog is off: {none:?}");
        let ended = store
            .run_blocking(|c| expire(c, 1_500, 3, watchdog))
            .unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].task_state, TaskState::Pending);
        assert!(ended[0].reason.contains("stalled"), "{}", ended[0].reason);
        let err = store
            .run_blocking(|c| heartbeat(c, worker, granted.lease_id, 1, 1_501, 1_000))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        // The floor holds when the longest level is short.
        let floor = Watchdog {
            factor: 2.0,
            floor_ms: 10_000,
        };
        assert_eq!(floor.limit_ms(Some(0.5)), Some(10_000));
        assert_eq!(floor.limit_ms(None), None, "nothing to compare with yet");
        assert_eq!(Watchdog::OFF.limit_ms(Some(100.0)), None);
    }

    #[test]
    fn the_watchdog_leaves_a_first_level_to_the_heartbeats() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let mut two = test_worker();
        two.parallel = 2;
        let worker = store.run_blocking(|c| register(c, &two, 0)).unwrap();
        // One task has a quick level stored; the other is still on its first level.
        lease_and_store_level_0(&store, worker, 10, 0.01);
        let first = grant(&store, worker, 0, 10, 1_000_000);
        let watchdog = Watchdog {
            factor: 2.0,
            floor_ms: 100,
        };
        let ended = store
            .run_blocking(|c| expire(c, 500_000, 3, watchdog))
            .unwrap();
        assert!(
            ended.iter().all(|e| e.lease_id != first.lease_id),
            "the first level was judged by another task's levels: {ended:?}"
        );
    }

    #[test]
    fn a_task_whose_spec_is_corrupt_is_failed_and_the_other_leases_still_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let mut two = test_worker();
        two.parallel = 2;
        let worker = store.run_blocking(|c| register(c, &two, 0)).unwrap();
        let a = lease_and_store_level_0(&store, worker, 10, 0.1);
        let b = lease_and_store_level_0(&store, worker, 10, 0.1);
        store
            .run_blocking(|c| {
                c.execute(
                    "UPDATE tasks SET spec_json = '{not json' WHERE id = ?1",
                    [&a.task_id],
                )
                .map_err(StoreError::from)
            })
            .unwrap();
        let expired = store
            .run_blocking(|c| expire(c, 5_000, 3, Watchdog::OFF))
            .unwrap();
        let state = |id: &str| {
            expired
                .iter()
                .find(|e| e.task_id == id)
                .map(|e| e.task_state)
        };
        assert_eq!(state(&a.task_id), Some(TaskState::Failed));
        assert_eq!(state(&b.task_id), Some(TaskState::Pending));
        let (a_state, a_error): (String, String) = store
            .run_blocking(|c| {
                c.query_row(
                    "SELECT state, last_error FROM tasks WHERE id = ?1",
                    [&a.task_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(a_state, "failed");
        assert!(a_error.contains("task spec"), "{a_error}");
        let open: i64 = store
            .run_blocking(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM leases WHERE ended_ms IS NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(open, 0);
    }
}
