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

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
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
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseAnswer {
    Granted(Granted),
    /// Nothing pending now; `sweeps_active` when tasks are still pending or leased.
    Idle {
        sweeps_active: bool,
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
}

/// Records a worker; returns its id.
pub fn register(conn: &mut Connection, w: &NewWorker, now_ms: i64) -> Result<u64, StoreError> {
    conn.execute(
        "INSERT INTO workers (name, hostname, api_version, parallel, registered_ms, last_seen_ms, engine)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![w.name, w.hostname, w.api_version, w.parallel.max(1), now_ms, w.engine],
    )?;
    Ok(conn.last_insert_rowid() as u64)
}

/// Leases the next pending task (oldest sweep first, in expansion order) to a worker that
/// holds fewer leases than its `parallel`.
pub fn lease(
    conn: &mut Connection,
    worker_id: u64,
    now_ms: i64,
    lease_ms: i64,
) -> Result<LeaseAnswer, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let parallel = worker_parallel(&tx, worker_id)?;
    let held: i64 = tx.query_row(
        "SELECT COUNT(*) FROM leases WHERE worker = ?1 AND ended_ms IS NULL AND deadline_ms >= ?2",
        params![worker_id as i64, now_ms],
        |r| r.get(0),
    )?;
    if held >= parallel {
        return Err(StoreError::Conflict(format!(
            "worker {worker_id} already holds {held} lease(s) and registered parallel {parallel}"
        )));
    }
    // Sweeps in submission order (rowid breaks ties within a millisecond), tasks in order;
    // a task started by one engine continues only on that engine.
    let next = tx
        .query_row(
            "SELECT t.key, t.id, t.sweep, t.spec_json
             FROM tasks t JOIN sweeps s ON s.name = t.sweep
             WHERE t.state = 'pending'
               AND (t.engine IS NULL OR t.engine = (SELECT engine FROM workers WHERE id = ?1))
             ORDER BY s.created_ms, s.rowid, t.idx LIMIT 1",
            [worker_id as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((task_key, task_id, sweep, spec_json)) = next else {
        let active: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE state IN ('pending', 'leased'))",
            [],
            |r| r.get(0),
        )?;
        touch_worker(&tx, worker_id, now_ms)?;
        tx.commit()?;
        return Ok(LeaseAnswer::Idle {
            sweeps_active: active,
        });
    };

    let stored = stored_levels(&tx, task_key)?;
    let previous_masks: Option<Vec<u8>> = if stored > 0 {
        Some(tx.query_row(
            "SELECT masks FROM levels WHERE task = ?1 AND level = ?2",
            params![task_key, stored - 1],
            |r| r.get(0),
        )?)
    } else {
        None
    };
    let deadline_ms = now_ms.saturating_add(lease_ms);
    tx.execute(
        // The id is the lease's token: random (SQLite's randomness is seeded from the OS) in
        // [1, 2^53), so it cannot be guessed and an old worker's token does not match a lease
        // of a fresh or restored database (ids stay exact in JSON).
        "INSERT INTO leases (id, task, worker, started_ms, deadline_ms, level) \
         VALUES ((abs(random()) % 9007199254740991) + 1, ?1, ?2, ?3, ?4, ?5)",
        params![task_key, worker_id as i64, now_ms, deadline_ms, stored],
    )?;
    let lease_id = tx.last_insert_rowid() as u64;
    tx.execute(
        "UPDATE tasks SET state = ?2 WHERE key = ?1",
        params![task_key, TaskState::Leased.as_str()],
    )?;
    tx.execute(
        "UPDATE workers SET last_seen_ms = ?2, current_task = ?3, current_level = ?4 WHERE id = ?1",
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
    }))
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
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let lease = check_lease(&tx, worker_id, lease_id)?;
    let deadline_ms = now_ms.saturating_add(lease_ms);
    tx.execute(
        "UPDATE leases SET deadline_ms = ?2, level = ?3 WHERE id = ?1",
        params![lease_id as i64, deadline_ms, level],
    )?;
    tx.execute(
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
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let lease = check_lease(&tx, worker_id, lease_id)?;
    end_lease(&tx, lease_id, now_ms, "returned", None)?;
    let progress = progress(&tx, lease.task_key)?;
    let task_done = progress.finished();
    if task_done {
        finish_task(&tx, lease.task_key, now_ms)?;
    } else {
        tx.execute(
            "UPDATE tasks SET state = ?2 WHERE key = ?1",
            params![lease.task_key, TaskState::Pending.as_str()],
        )?;
    }
    release_worker(&tx, worker_id, &lease.task_id, Some(now_ms), Failures::Keep)?;
    tx.commit()?;
    Ok(Returned {
        levels_stored: progress.stored,
        task_done,
    })
}

/// Ends every open lease whose deadline passed before `now`: its task goes back to pending
/// (an attempt counted), becomes failed after `max_attempts`, or is done when all its levels
/// were already stored.
pub fn expire(
    conn: &mut Connection,
    now_ms: i64,
    max_attempts: u32,
) -> Result<Vec<Expired>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let overdue: Vec<(i64, i64, i64, String, String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT l.id, l.task, l.worker, t.id, w.name, l.deadline_ms
             FROM leases l JOIN tasks t ON t.key = l.task JOIN workers w ON w.id = l.worker
             WHERE l.ended_ms IS NULL AND l.deadline_ms < ?1",
        )?;
        let rows = stmt.query_map([now_ms], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut expired = Vec::with_capacity(overdue.len());
    for (lease_id, task_key, worker_id, task_id, worker_name, deadline_ms) in overdue {
        let error = format!(
            "lease {lease_id} of worker {worker_id} ({worker_name}) expired: no heartbeat for {} ms",
            now_ms - deadline_ms
        );
        end_lease(&tx, lease_id as u64, now_ms, "expired", Some(&error))?;
        let task_state = if progress(&tx, task_key)?.finished() {
            finish_task(&tx, task_key, now_ms)?;
            TaskState::Done
        } else {
            count_attempt(&tx, task_key, &error, now_ms, max_attempts)?
        };
        release_worker(&tx, worker_id as u64, &task_id, None, Failures::Add)?;
        expired.push(Expired {
            lease_id: lease_id as u64,
            task_id,
            worker_id: worker_id as u64,
            task_state,
        });
    }
    tx.commit()?;
    Ok(expired)
}

/// Checks that `lease_id` is an open lease of `worker_id` (not ended by the expiry loop,
/// completion, failure or return).
pub fn check_lease(
    conn: &Connection,
    worker_id: u64,
    lease_id: u64,
) -> Result<OpenLease, StoreError> {
    worker_parallel(conn, worker_id)?;
    let row = conn
        .query_row(
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
    let (planned, spec_json): (i64, String) = conn.query_row(
        "SELECT levels_planned, spec_json FROM tasks WHERE key = ?1",
        [task_key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let stored = stored_levels(conn, task_key)?;
    let mut stopped_early = false;
    if stored > 0 {
        let status: String = conn.query_row(
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
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM levels WHERE task = ?1",
        [task_key],
        |r| r.get(0),
    )?)
}

fn latest_lease(conn: &Connection, task_key: i64) -> Result<Option<u64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id FROM leases WHERE task = ?1 ORDER BY ended_ms IS NULL DESC, started_ms DESC LIMIT 1",
            [task_key],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|id| id as u64))
}

fn worker_parallel(conn: &Connection, worker_id: u64) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT parallel FROM workers WHERE id = ?1",
        [worker_id as i64],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("unknown worker {worker_id}: register first")))
}

fn touch_worker(conn: &Connection, worker_id: u64, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
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
    conn.execute(
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
    let attempts: i64 = conn
        .query_row(
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
    conn.execute(
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
    conn.execute(
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
    conn.execute(
        "UPDATE tasks SET state = ?3, finished_ms = ?2 WHERE key = ?1",
        params![task_key, now_ms, TaskState::Done.as_str()],
    )?;
    Ok(())
}

/// Gives every open lease at least until `deadline_ms`; the number of leases extended.
///
/// Called when a coordinator starts: its workers could not heartbeat while it was down, and
/// expiring their leases at once would throw away the levels they are waiting to report.
pub fn extend_open(conn: &Connection, deadline_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE leases SET deadline_ms = ?1 WHERE ended_ms IS NULL AND deadline_ms < ?1",
        [deadline_ms],
    )?)
}

/// Moves the deadlines of every open lease by `delta_ms` (the wall clock jumped by that much
/// relative to real time), so that each keeps the real time it had left. Returns how many.
pub fn shift_open(conn: &Connection, delta_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE leases SET deadline_ms = deadline_ms + ?1 WHERE ended_ms IS NULL",
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
            engine: 2,
        }
    }
    use crate::store::{sweeps, Store};
    use crate::submit;

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
    fn lease_then_expire_then_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let granted = match store.run_blocking(|c| lease(c, worker, 10, 100)).unwrap() {
            LeaseAnswer::Granted(g) => g,
            other => panic!("{other:?}"),
        };
        assert_eq!((granted.resume_level, granted.deadline_ms), (0, 110));
        let expired = store.run_blocking(|c| expire(c, 111, 2)).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].task_state, TaskState::Pending);
        let err = store
            .run_blocking(|c| heartbeat(c, worker, granted.lease_id, 0, 112, 100))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let again = match store.run_blocking(|c| lease(c, worker, 120, 100)).unwrap() {
            LeaseAnswer::Granted(g) => g,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            again.task_id, granted.task_id,
            "the same task comes back first"
        );
        assert!(store
            .run_blocking(|c| fail(c, worker, again.lease_id, "boom", 130, 2))
            .unwrap());
    }

    #[test]
    fn a_returned_lease_counts_no_attempt_and_keeps_its_levels() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_sweep(dir.path());
        let worker = store
            .run_blocking(|c| register(c, &test_worker(), 0))
            .unwrap();
        let LeaseAnswer::Granted(granted) =
            store.run_blocking(|c| lease(c, worker, 10, 100)).unwrap()
        else {
            panic!("no lease");
        };
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
        // The next lease resumes at level 1.
        let LeaseAnswer::Granted(next) = store.run_blocking(|c| lease(c, worker, 40, 100)).unwrap()
        else {
            panic!("no lease");
        };
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
        let LeaseAnswer::Granted(granted) =
            store.run_blocking(|c| lease(c, worker, 10, 100)).unwrap()
        else {
            panic!("no lease");
        };
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
        let expired = store.run_blocking(|c| expire(c, 200, 3)).unwrap();
        assert_eq!(expired[0].task_state, TaskState::Done);
        let LeaseAnswer::Granted(next) =
            store.run_blocking(|c| lease(c, worker, 210, 100)).unwrap()
        else {
            panic!("no lease");
        };
        assert_ne!(next.task_id, granted.task_id);
    }
}
