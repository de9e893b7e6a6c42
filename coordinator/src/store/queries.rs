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
    /// Seconds until every task is finished at the current throughput, when known.
    pub eta_seconds: Option<f64>,
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
    let levels_done: i64 = conn.query_row(
        "SELECT COUNT(*) FROM levels l JOIN tasks t ON t.key = l.task WHERE t.sweep = ?1",
        [name],
        |r| r.get(0),
    )?;
    let first_lease: Option<i64> = conn.query_row(
        "SELECT MIN(l.started_ms) FROM leases l JOIN tasks t ON t.key = l.task WHERE t.sweep = ?1",
        [name],
        |r| r.get(0),
    )?;
    let (tasks_per_hour, levels_per_minute) = match first_lease {
        None => (0.0, 0.0),
        Some(first) => {
            let since = (now_ms - window_ms).max(first);
            let elapsed_s = ((now_ms - since).max(1000)) as f64 / 1000.0;
            let tasks: i64 = conn.query_row(
                "SELECT COUNT(*) FROM tasks WHERE sweep = ?1 AND state = 'done' AND finished_ms >= ?2",
                params![name, since],
                |r| r.get(0),
            )?;
            let levels: i64 = conn.query_row(
                "SELECT COUNT(*) FROM levels l JOIN tasks t ON t.key = l.task
                 WHERE t.sweep = ?1 AND l.reported_at_ms >= ?2",
                params![name, since],
                |r| r.get(0),
            )?;
            (
                tasks as f64 * 3600.0 / elapsed_s,
                levels as f64 * 60.0 / elapsed_s,
            )
        }
    };
    let remaining_tasks = (pending + leased) as f64;
    let eta_seconds = if remaining_tasks == 0.0 {
        Some(0.0)
    } else if tasks_per_hour > 0.0 {
        Some(remaining_tasks / tasks_per_hour * 3600.0)
    } else if levels_per_minute > 0.0 {
        Some((levels_planned - levels_done).max(0) as f64 / levels_per_minute * 60.0)
    } else {
        None
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
        failures,
        created_ms,
    })
}

/// Workers seen since `since_ms`, with their open leases (of `sweep` only, when given).
fn workers(
    conn: &Connection,
    since_ms: i64,
    sweep: Option<&str>,
) -> Result<Vec<WorkerStatus>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, hostname, parallel, last_seen_ms, consecutive_failures
         FROM workers WHERE last_seen_ms >= ?1 ORDER BY id",
    )?;
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
