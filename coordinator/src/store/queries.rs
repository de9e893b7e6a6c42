//! The read side of the store: sweep progress, live workers, throughput and ETA, and the rows
//! that results are aggregated from. Works on read-only connections too.

use std::collections::HashMap;

use proto::v1 as pb;
use rusqlite::{params, Connection};
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;

use crate::aggregate::TaskResult;
use crate::error::ApiError;

use super::{sweeps, StoreError};

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
) -> Result<pb::StatusResponse, ApiError> {
    let names: Vec<String> = match sweep {
        Some(name) => {
            if !sweeps::exists(conn, name)? {
                return Err(ApiError::NotFound(format!("no sweep named {name:?}")));
            }
            vec![name.to_string()]
        }
        None => sweeps::list(conn)?.into_iter().map(|s| s.name).collect(),
    };
    let sweeps = names
        .iter()
        .map(|name| sweep_status(conn, name, now_ms, windows.throughput_ms))
        .collect::<Result<_, _>>()?;
    Ok(pb::StatusResponse {
        sweeps,
        workers: workers(conn, now_ms - windows.alive_ms, sweep)?,
        window_seconds: windows.throughput_ms as f64 / 1000.0,
        now_unix_ms: now_ms,
    })
}

fn sweep_status(
    conn: &Connection,
    name: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<pb::SweepStatus, StoreError> {
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
            Ok(pb::TaskFailure {
                task_id: r.get(0)?,
                attempts: r.get(1)?,
                error: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(pb::SweepStatus {
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
        created_unix_ms: created_ms,
    })
}

/// Workers seen since `since_ms`, with their open leases (of `sweep` only, when given).
fn workers(
    conn: &Connection,
    since_ms: i64,
    sweep: Option<&str>,
) -> Result<Vec<pb::WorkerStatus>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, hostname, parallel, last_seen_ms, consecutive_failures
         FROM workers WHERE last_seen_ms >= ?1 ORDER BY id",
    )?;
    let mut workers: Vec<pb::WorkerStatus> = stmt
        .query_map([since_ms], |r| {
            Ok(pb::WorkerStatus {
                worker_id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                hostname: r.get(2)?,
                parallel: r.get(3)?,
                last_seen_unix_ms: r.get(4)?,
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
        "SELECT l.worker, l.id, t.id, t.sweep, l.level, l.deadline_ms
         FROM leases l JOIN tasks t ON t.key = l.task
         WHERE l.ended_ms IS NULL AND (?1 IS NULL OR t.sweep = ?1) ORDER BY l.id",
    )?;
    let leases = stmt.query_map([sweep], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            pb::WorkerTask {
                lease_id: r.get::<_, i64>(1)? as u64,
                task_id: r.get(2)?,
                sweep: r.get(3)?,
                level: r.get(4)?,
                deadline_unix_ms: r.get(5)?,
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

/// Every task of a sweep with its stored levels, for [`crate::aggregate::aggregate`].
pub fn task_results(conn: &Connection, sweep: &str) -> Result<Vec<TaskResult>, ApiError> {
    if !sweeps::exists(conn, sweep)? {
        return Err(ApiError::NotFound(format!("no sweep named {sweep:?}")));
    }
    let mut stmt =
        conn.prepare("SELECT key, idx, spec_json, state FROM tasks WHERE sweep = ?1 ORDER BY idx")?;
    let mut keys: HashMap<i64, usize> = HashMap::new();
    let mut tasks: Vec<TaskResult> = Vec::new();
    let rows = stmt.query_map([sweep], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (key, idx, spec_json, state) = row.map_err(StoreError::from)?;
        let spec: TaskSpec = serde_json::from_str(&spec_json)
            .map_err(|e| StoreError::Corrupt(format!("task spec: {e}")))?;
        keys.insert(key, tasks.len());
        tasks.push(TaskResult {
            idx: usize::try_from(idx).unwrap_or(0),
            spec,
            done: state == "done",
            levels: Vec::new(),
        });
    }
    let mut stmt = conn.prepare(
        "SELECT l.task, l.metrics_json FROM levels l JOIN tasks t ON t.key = l.task
         WHERE t.sweep = ?1 ORDER BY l.task, l.level",
    )?;
    let rows = stmt.query_map([sweep], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (key, json) = row.map_err(StoreError::from)?;
        let metrics: LevelMetrics = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("level metrics: {e}")))?;
        if let Some(&i) = keys.get(&key) {
            tasks[i].levels.push(metrics);
        }
    }
    Ok(tasks)
}
