//! The read side of the store: sweep progress, live workers, throughput and ETA (the rows
//! behind results are in [`super::results`]). Works on read-only connections too.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::{sweeps, StoreError};

/// Progress of the sweeps asked about and the live workers.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub sweeps: Vec<SweepStatus>,
    /// Workers heard from within the liveness window.
    pub workers: Vec<WorkerStatus>,
    /// The throughput window, seconds.
    pub window_seconds: f64,
    pub now_ms: i64,
}

/// One sweep's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepStatus {
    pub name: String,
    pub pending: u64,
    pub leased: u64,
    pub done: u64,
    pub failed: u64,
    pub total: u64,
    /// Levels stored / levels planned over all tasks (early stops make the plan an upper
    /// bound).
    pub levels_done: u64,
    pub levels_planned: u64,
    pub tasks_per_hour: f64,
    pub levels_per_minute: f64,
    /// Seconds until every task is finished at the current throughput, when known: from the
    /// expected cost left ([`eta_seconds`]), or on a database older than schema 6 from the
    /// tasks or levels left.
    pub eta_seconds: Option<f64>,
    /// The fraction of the expected cost (`shared::cost`) stored so far, when the database
    /// records costs (schema 6); early stops make it an underestimate until the end.
    pub work_done: Option<f64>,
    /// `active`, `paused` or `cancelled` ([`super::control`]), and the priority.
    pub state: String,
    pub priority: i64,
    pub failures: Vec<TaskFailure>,
    pub created_ms: i64,
}

/// A task that failed for good.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFailure {
    pub task_id: String,
    pub attempts: u32,
    pub error: String,
}

/// A live worker and its open leases.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub worker_id: u64,
    pub name: String,
    pub hostname: String,
    pub parallel: u32,
    pub last_seen_ms: i64,
    pub tasks: Vec<WorkerTask>,
    pub consecutive_failures: u32,
    /// Its arithmetic ('' when it did not say).
    pub arithmetic: String,
    /// Why its last lease request got nothing while tasks were pending ('' when it did not).
    pub idle_reason: String,
}

impl WorkerStatus {
    /// Whether the worker failed [`UNHEALTHY_AFTER`](super::leases::UNHEALTHY_AFTER) tasks
    /// or more in a row (a machine that fails everything it takes).
    pub fn unhealthy(&self) -> bool {
        self.consecutive_failures >= super::leases::UNHEALTHY_AFTER
    }
}

/// One open lease of a worker, as status shows it: which task, not the lease's token (a
/// token is a credential of the worker that holds it).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerTask {
    pub task_id: String,
    pub sweep: String,
    pub level: u32,
    pub deadline_ms: i64,
}

/// Windows of the status report.
#[derive(Debug, Clone, Copy)]
pub struct StatusWindows {
    /// Throughput is measured over this many milliseconds (or since the sweep's first lease).
    pub throughput_ms: i64,
    /// Workers heard from within this many milliseconds are live.
    pub alive_ms: i64,
}

/// Progress of one sweep (or all), live workers and throughput at `now_ms`.
pub fn status(
    conn: &Connection,
    sweep: Option<&str>,
    now_ms: i64,
    windows: StatusWindows,
) -> Result<StatusReport, StoreError> {
    let names: Vec<String> = match sweep {
        Some(name) => {
            if !sweeps::exists(conn, name)? {
                return Err(StoreError::NotFound(format!("no sweep named {name:?}")));
            }
            vec![name.to_string()]
        }
        None => sweeps::list(conn)?.into_iter().map(|s| s.name).collect(),
    };
    let sweeps = names
        .iter()
        .map(|name| sweep_status(conn, name, now_ms, windows.throughput_ms))
        .collect::<Result<_, _>>()?;
    Ok(StatusReport {
        sweeps,
        workers: workers(conn, now_ms - windows.alive_ms, sweep)?,
        window_seconds: windows.throughput_ms as f64 / 1000.0,
        now_ms,
    })
}

fn sweep_status(
    conn: &Connection,
    name: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<SweepStatus, StoreError> {
    let (created_ms, pending, leased, done, failed, total, levels_planned): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = conn.query_row(
        "SELECT s.created_ms,
                    COALESCE(SUM(t.state = 'pending'), 0), COALESCE(SUM(t.state = 'leased'), 0),
                    COALESCE(SUM(t.state = 'done'), 0), COALESCE(SUM(t.state = 'failed'), 0),
                    COUNT(t.key), COALESCE(SUM(t.levels_planned), 0)
             FROM sweeps s LEFT JOIN tasks t ON t.sweep = s.name WHERE s.name = ?1 GROUP BY s.name",
        [name],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )?;
    let (state, priority) = super::control::state(conn, name)?;
    let with_costs = super::schema::user_version(conn)? >= 6;
    let cost = if with_costs { "l.cost" } else { "0.0" };
    let (levels_done, cost_done): (i64, f64) = conn.query_row(
        &format!(
            "SELECT COUNT(*), COALESCE(SUM({cost}), 0) FROM levels l JOIN tasks t ON t.key = l.task
             WHERE t.sweep = ?1"
        ),
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let first_lease: Option<i64> = conn.query_row(
        "SELECT MIN(l.started_ms) FROM leases l JOIN tasks t ON t.key = l.task WHERE t.sweep = ?1",
        [name],
        |r| r.get(0),
    )?;
    let (tasks_per_hour, levels_per_minute, cost_per_slot_second) = match first_lease {
        None => (0.0, 0.0, 0.0),
        Some(first) => {
            let since = (now_ms - window_ms).max(first);
            let elapsed_s = ((now_ms - since).max(1000)) as f64 / 1000.0;
            let tasks: i64 = conn.query_row(
                "SELECT COUNT(*) FROM tasks WHERE sweep = ?1 AND state = 'done' AND finished_ms >= ?2",
                params![name, since],
                |r| r.get(0),
            )?;
            let (levels, cost, seconds): (i64, f64, f64) = conn.query_row(
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM({cost}), 0), COALESCE(SUM(l.seconds), 0)
                     FROM levels l JOIN tasks t ON t.key = l.task
                     WHERE t.sweep = ?1 AND l.reported_at_ms >= ?2"
                ),
                params![name, since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            (
                tasks as f64 * 3600.0 / elapsed_s,
                levels as f64 * 60.0 / elapsed_s,
                if seconds > 0.0 { cost / seconds } else { 0.0 },
            )
        }
    };
    let remaining_tasks = (pending + leased) as u64;
    let (eta_seconds, work_done) = if with_costs {
        let (left, longest_left): (f64, f64) = conn.query_row(
            "SELECT COALESCE(SUM(cost), 0), COALESCE(MAX(cost), 0) FROM tasks
             WHERE sweep = ?1 AND state IN ('pending', 'leased')",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let work = Work {
            tasks_left: remaining_tasks,
            left,
            longest_left,
            per_slot_second: cost_per_slot_second,
            running: leased as u64,
        };
        let total = cost_done + left;
        let done = if total > 0.0 { cost_done / total } else { 1.0 };
        (eta_seconds(&work), Some(done))
    } else {
        let eta = if remaining_tasks == 0 {
            Some(0.0)
        } else if tasks_per_hour > 0.0 {
            Some(remaining_tasks as f64 / tasks_per_hour * 3600.0)
        } else if levels_per_minute > 0.0 {
            Some((levels_planned - levels_done).max(0) as f64 / levels_per_minute * 60.0)
        } else {
            None
        };
        (eta, None)
    };
    let mut stmt = conn.prepare(
        "SELECT id, attempts, COALESCE(last_error, '') FROM tasks
         WHERE sweep = ?1 AND state = 'failed' ORDER BY idx LIMIT 100",
    )?;
    let failures = stmt
        .query_map([name], |r| {
            Ok(TaskFailure {
                task_id: r.get(0)?,
                attempts: r.get(1)?,
                error: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(SweepStatus {
        name: name.to_string(),
        pending: pending as u64,
        leased: leased as u64,
        done: done as u64,
        failed: failed as u64,
        total: total as u64,
        levels_done: levels_done as u64,
        levels_planned: levels_planned as u64,
        tasks_per_hour,
        levels_per_minute,
        eta_seconds,
        work_done,
        state: state.as_str().to_string(),
        priority,
        failures,
        created_ms,
    })
}

/// What the ETA of a sweep is computed from, in `shared::cost`'s units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    /// Tasks pending or leased.
    pub tasks_left: u64,
    /// Expected cost of the levels not yet stored of those tasks.
    pub left: f64,
    /// The largest expected cost left of any one of them.
    pub longest_left: f64,
    /// The speed of one slot: the cost of the levels stored over the throughput window per
    /// second of their training (as the workers measured it). Measured per level, so a level
    /// in training does not count as time without work.
    pub per_slot_second: f64,
    /// Tasks leased now: the slots at work on this sweep.
    pub running: u64,
}

/// Seconds until the work left is done at the measured speed: the cost left over the speed of
/// the slots at work, or the largest task's cost left over one slot's speed when that is longer
/// (a task trains on one slot, so the end of a sweep waits for its longest task). None while
/// nothing has been measured.
pub fn eta_seconds(work: &Work) -> Option<f64> {
    if work.tasks_left == 0 {
        return Some(0.0);
    }
    if work.per_slot_second <= 0.0 {
        return None;
    }
    let fleet = work.left / (work.per_slot_second * work.running.max(1) as f64);
    let longest = work.longest_left / work.per_slot_second;
    Some(fleet.max(longest))
}

/// Workers seen since `since_ms`, with their open leases (of `sweep` only, when given).
fn workers(
    conn: &Connection,
    since_ms: i64,
    sweep: Option<&str>,
) -> Result<Vec<WorkerStatus>, StoreError> {
    let arithmetic = if super::schema::user_version(conn)? >= 7 {
        "arithmetic, COALESCE(idle_reason, '')"
    } else {
        "'', ''"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT id, name, hostname, parallel, last_seen_ms, consecutive_failures, {arithmetic}
         FROM workers WHERE last_seen_ms >= ?1 ORDER BY id"
    ))?;
    let mut workers: Vec<WorkerStatus> = stmt
        .query_map([since_ms], |r| {
            Ok(WorkerStatus {
                worker_id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                hostname: r.get(2)?,
                parallel: r.get(3)?,
                last_seen_ms: r.get(4)?,
                tasks: Vec::new(),
                consecutive_failures: r.get(5)?,
                arithmetic: r.get(6)?,
                idle_reason: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let index: HashMap<u64, usize> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| (w.worker_id, i))
        .collect();
    let mut stmt = conn.prepare(
        "SELECT l.worker, t.id, t.sweep, l.level, l.deadline_ms
         FROM leases l JOIN tasks t ON t.key = l.task
         WHERE l.ended_ms IS NULL AND (?1 IS NULL OR t.sweep = ?1) ORDER BY l.started_ms, t.idx",
    )?;
    let leases = stmt.query_map([sweep], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            WorkerTask {
                task_id: r.get(1)?,
                sweep: r.get(2)?,
                level: r.get(3)?,
                deadline_ms: r.get(4)?,
            },
        ))
    })?;
    for lease in leases {
        let (worker, task) = lease?;
        if let Some(&i) = index.get(&worker) {
            workers[i].tasks.push(task);
        }
    }
    Ok(workers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::leases::{self, LeaseAnswer, NewWorker};
    use crate::store::{levels, sweeps, Store};
    use shared::spec::TaskSpec;

    #[test]
    fn the_eta_is_the_fleet_rate_or_the_longest_task_whichever_is_longer() {
        let work = |left, longest_left, running| Work {
            tasks_left: 3,
            left,
            longest_left,
            per_slot_second: 2.5,
            running,
        };
        // Four slots of 2.5 units/s: 100 units left take 10 s, unless one task holds 60 of
        // them (one slot: 24 s); with no slot at work, as if one were.
        assert_eq!(eta_seconds(&work(100.0, 20.0, 4)), Some(10.0));
        assert_eq!(eta_seconds(&work(100.0, 60.0, 4)), Some(24.0));
        assert_eq!(eta_seconds(&work(100.0, 20.0, 0)), Some(40.0));
        let nothing_measured = Work {
            per_slot_second: 0.0,
            ..work(100.0, 60.0, 4)
        };
        assert_eq!(eta_seconds(&nothing_measured), None);
        let done = Work {
            tasks_left: 0,
            ..nothing_measured
        };
        assert_eq!(eta_seconds(&done), Some(0.0));
    }

    /// A cheap deterministic stream in [0.5, 1.5) (splitmix64).
    fn factor(state: &mut u64) -> f64 {
        let z = shared::synthetic::splitmix(*state);
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        0.5 + (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One worker of the simulated fleet: the lease it holds, its task, the next level and
    /// when the level in training ends.
    struct Busy {
        lease: u64,
        spec: TaskSpec,
        level: usize,
        started_ms: i64,
        ends_ms: i64,
    }

    #[test]
    fn the_eta_at_a_quarter_of_the_work_is_within_a_quarter_of_the_time_left() {
        // Tasks from 1 pruning level of the 4-8-8-2 network to 60 levels of a 4000-wide one
        // (16 million weights): their expected costs differ by about 1300x. A level takes its cost in the model times a
        // factor of 0.5 to 1.5 (epochs vary with early stopping), at 1 us a unit, on a fleet
        // of four one-slot workers, with the coordinator's own lease order.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("eta.db")).unwrap();
        let yaml = "name: eta\nmodel:\n  hidden: [8, 64, 512, 4000]\n\
                    pruning:\n  levels: [1, 60]\n  target: 100\nseeds: 3\n";
        let sweep = crate::submit::expand(yaml, "eta.yaml", "").unwrap();
        let costs: Vec<f64> = sweep.tasks.iter().map(|t| t.cost).collect();
        let spread = costs.iter().cloned().fold(0.0, f64::max)
            / costs.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(spread > 1000.0, "costs differ by {spread}x");
        store
            .run_blocking(|c| sweeps::submit(c, &sweep, 0))
            .unwrap();
        let workers: Vec<u64> = (0..4)
            .map(|i| {
                let name = format!("w{i}");
                let w = NewWorker {
                    name: &name,
                    hostname: "sim",
                    api_version: 1,
                    parallel: 1,
                    engine: shared::synthetic::SYNTHETIC_ENGINE,
                    arithmetic: shared::cpu::arithmetic(),
                };
                store.run_blocking(|c| leases::register(c, &w, 0)).unwrap()
            })
            .collect();
        let windows = StatusWindows {
            throughput_ms: 3_600_000,
            alive_ms: i64::MAX / 4,
        };
        let mut noise = 7u64;
        let mut busy: Vec<Option<Busy>> = workers.iter().map(|_| None).collect();
        let mut now = 0i64;
        let mut at_quarter: Option<(i64, f64)> = None;
        loop {
            for (slot, &worker) in busy.iter_mut().zip(&workers) {
                if slot.is_some() {
                    continue;
                }
                let answer = store
                    .run_blocking(|c| leases::lease(c, worker, 0, now, i64::MAX / 4))
                    .unwrap();
                if let LeaseAnswer::Granted(g) = answer {
                    let spec: TaskSpec = serde_json::from_str(&g.spec_json).unwrap();
                    let cost = shared::cost::level_cost(spec.weights(), spec.prune.remaining[0]);
                    *slot = Some(Busy {
                        lease: g.lease_id,
                        started_ms: now,
                        ends_ms: now + (cost * factor(&mut noise) / 1000.0).ceil() as i64,
                        spec,
                        level: 0,
                    });
                }
            }
            let Some(next) = (0..busy.len())
                .filter(|&i| busy[i].is_some())
                .min_by_key(|&i| busy[i].as_ref().map(|b| b.ends_ms))
            else {
                break;
            };
            let (worker, b) = (workers[next], busy[next].as_mut().unwrap());
            now = b.ends_ms;
            let metrics = crate::testkit::timed_level(
                b.level,
                b.spec.prune.remaining[b.level],
                (now - b.started_ms) as f64 / 1000.0,
            );
            store
                .run_blocking(|c| levels::insert(c, worker, b.lease, &metrics, &[0], now))
                .unwrap();
            b.level += 1;
            if b.level == b.spec.prune.remaining.len() {
                store
                    .run_blocking(|c| leases::complete(c, worker, b.lease, now))
                    .unwrap();
                busy[next] = None;
            } else {
                let dense = b.spec.weights();
                let cost = shared::cost::level_cost(dense, b.spec.prune.remaining[b.level]);
                b.started_ms = now;
                b.ends_ms = now + (cost * factor(&mut noise) / 1000.0).ceil() as i64;
            }
            if at_quarter.is_none() {
                let report = store
                    .run_blocking(|c| status(c, Some("eta"), now, windows))
                    .unwrap();
                let s = &report.sweeps[0];
                if s.work_done.unwrap() >= 0.25 {
                    at_quarter = Some((now, s.eta_seconds.unwrap()));
                }
            }
        }
        let (quarter_ms, eta) = at_quarter.expect("the sweep passed a quarter of its work");
        let actual = (now - quarter_ms) as f64 / 1000.0;
        assert!(
            (eta - actual).abs() <= 0.25 * actual,
            "eta {eta:.1} s at a quarter of the work, {actual:.1} s actually left"
        );
        let end = store
            .run_blocking(|c| status(c, Some("eta"), now, windows))
            .unwrap();
        assert_eq!(end.sweeps[0].work_done, Some(1.0));
        assert_eq!(end.sweeps[0].eta_seconds, Some(0.0));
    }
}
