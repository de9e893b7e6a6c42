//! A simulated fleet on a compressed clock: how long a sweep takes on N one-slot workers in
//! the coordinator's lease order, against the old order (the sweep's expansion order) and the
//! lower bound max(longest task, total work / N). `coordinator bench --fleet` prints it.
//!
//! The coordinator's order is the store's own: a fresh database, the sweep submitted, N
//! workers registered, and every lease taken by [`leases::lease`] at the simulated time; a
//! level takes the seconds the stored run measured for it and is stored with its metrics at
//! its end, a task completes after its last stored level (early stops included). Nothing
//! trains and nothing sleeps, so a sweep of hours runs in seconds. The expansion order is
//! plain list scheduling of the same tasks in index order.

use std::collections::BinaryHeap;
use std::path::Path;

use analysis::data::TaskResult;

use crate::store::{leases, levels, sweeps, Store, StoreError};
use crate::submit::ExpandedSweep;

/// One fleet size's makespans, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Makespans {
    pub workers: usize,
    /// max(longest task, total / workers).
    pub lower_bound: f64,
    /// Leases in the coordinator's order (most expected work first).
    pub coordinator: f64,
    /// Tasks in expansion order (what the coordinator did before cost-aware leasing).
    pub expansion: f64,
}

/// The seconds of a task: its stored levels' training time.
fn task_seconds(task: &TaskResult) -> f64 {
    task.levels.iter().map(|l| l.seconds).sum()
}

/// The lower bound of a fleet of `workers` on `tasks`.
pub fn lower_bound(tasks: &[TaskResult], workers: usize) -> f64 {
    let total: f64 = tasks.iter().map(task_seconds).sum();
    let longest = tasks.iter().map(task_seconds).fold(0.0, f64::max);
    longest.max(total / workers.max(1) as f64)
}

/// List scheduling of `tasks` in index order on `workers` one-slot workers: each task goes to
/// the first worker free.
pub fn expansion_order(tasks: &[TaskResult], workers: usize) -> f64 {
    let mut sorted: Vec<&TaskResult> = tasks.iter().collect();
    sorted.sort_by_key(|t| t.idx);
    // Free times as a min-heap (negated milliseconds keep the ordering total).
    let mut free: BinaryHeap<i64> = (0..workers.max(1)).map(|_| 0).collect();
    let mut end = 0i64;
    for task in sorted {
        let start = -free.pop().unwrap_or(0);
        let finish = start + millis(task_seconds(task));
        end = end.max(finish);
        free.push(-finish);
    }
    end as f64 / 1000.0
}

fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// A worker of the simulation: its id and, while busy, its lease, task and next level.
struct Slot {
    worker: u64,
    busy: Option<Busy>,
}

struct Busy {
    lease: u64,
    task: usize,
    level: usize,
    ends_ms: i64,
}

/// The makespan of `tasks` (the stored levels of `sweep`'s tasks) on `workers` one-slot
/// workers leasing from a fresh coordinator database at `db`, in simulated seconds.
pub fn coordinator_order(
    sweep: &ExpandedSweep,
    tasks: &[TaskResult],
    workers: usize,
    db: &Path,
) -> Result<f64, StoreError> {
    let store = Store::open(db)?;
    store.run_blocking(|c| sweeps::submit(c, sweep, 0))?;
    let by_id: std::collections::HashMap<String, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.spec.id(), i))
        .collect();
    let mut slots = Vec::new();
    for i in 0..workers.max(1) {
        let name = format!("sim-{i}");
        let worker = leases::NewWorker {
            name: &name,
            hostname: "simulated",
            api_version: proto::API_VERSION,
            parallel: 1,
            engine: shared::synthetic::SYNTHETIC_ENGINE,
            arithmetic: shared::cpu::arithmetic(),
        };
        let id = store.run_blocking(|c| leases::register(c, &worker, 0))?;
        slots.push(Slot {
            worker: id,
            busy: None,
        });
    }
    let forever = i64::MAX / 4;
    let mut now = 0i64;
    loop {
        for slot in slots.iter_mut().filter(|s| s.busy.is_none()) {
            let answer = store.run_blocking(|c| leases::lease(c, slot.worker, 0, now, forever))?;
            let leases::LeaseAnswer::Granted(g) = answer else {
                break;
            };
            let task = *by_id.get(&g.task_id).ok_or_else(|| {
                StoreError::Corrupt(format!("task {} is not in the stored run", g.task_id))
            })?;
            let first = tasks[task].levels.first().map_or(0.0, |l| l.seconds);
            slot.busy = Some(Busy {
                lease: g.lease_id,
                task,
                level: 0,
                ends_ms: now + millis(first),
            });
        }
        let Some(next) = slots
            .iter_mut()
            .filter(|s| s.busy.is_some())
            .min_by_key(|s| s.busy.as_ref().map(|b| b.ends_ms))
        else {
            break;
        };
        let worker = next.worker;
        let b = next.busy.as_mut().expect("a busy slot");
        now = b.ends_ms;
        let stored = &tasks[b.task].levels;
        if let Some(metrics) = stored.get(b.level) {
            store.run_blocking(|c| levels::insert(c, worker, b.lease, metrics, &[0], now))?;
        }
        b.level += 1;
        match stored.get(b.level) {
            Some(l) => b.ends_ms = now + millis(l.seconds),
            None => {
                store.run_blocking(|c| leases::complete(c, worker, b.lease, now))?;
                next.busy = None;
            }
        }
    }
    Ok(now as f64 / 1000.0)
}

/// [`Makespans`] for each fleet size, every simulation on a fresh database in `dir`.
pub fn simulate(
    sweep: &ExpandedSweep,
    tasks: &[TaskResult],
    fleets: &[usize],
    dir: &Path,
) -> Result<Vec<Makespans>, StoreError> {
    fleets
        .iter()
        .map(|&workers| {
            let db = dir.join(format!("fleet-{workers}.db"));
            let coordinator = coordinator_order(sweep, tasks, workers, &db)?;
            Ok(Makespans {
                workers,
                lower_bound: lower_bound(tasks, workers),
                coordinator,
                expansion: expansion_order(tasks, workers),
            })
        })
        .collect()
}

/// The makespans as a table: hours, and each order's ratio to the lower bound.
pub fn table(rows: &[Makespans]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            let h = |s: f64| format!("{:.2}", s / 3600.0);
            let ratio = |s: f64| format!("{:.3}", s / m.lower_bound.max(f64::MIN_POSITIVE));
            vec![
                m.workers.to_string(),
                h(m.lower_bound),
                h(m.coordinator),
                ratio(m.coordinator),
                h(m.expansion),
                ratio(m.expansion),
            ]
        })
        .collect();
    analysis::tables::table(
        &[
            "workers",
            "bound_h",
            "coordinator_h",
            "ratio",
            "expansion_order_h",
            "ratio",
        ],
        &cells,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tasks of `yaml`, done, each level taking its expected cost (`shared::cost`) / 1e4 s.
    fn run_of(yaml: &str) -> (ExpandedSweep, Vec<TaskResult>) {
        let sweep = crate::submit::expand(yaml, "t.yaml", "").unwrap();
        let specs = shared::sweep::Sweep::from_yaml(yaml, "t.yaml")
            .unwrap()
            .expand()
            .unwrap();
        let tasks = specs
            .into_iter()
            .enumerate()
            .map(|(idx, spec)| {
                let dense = spec.weights();
                let levels = spec
                    .prune
                    .remaining
                    .iter()
                    .enumerate()
                    .map(|(level, &remaining)| {
                        let seconds = shared::cost::level_cost(dense, remaining) / 1e4;
                        crate::testkit::timed_level(level, remaining, seconds)
                    })
                    .collect();
                TaskResult {
                    idx,
                    spec,
                    done: true,
                    levels,
                }
            })
            .collect();
        (sweep, tasks)
    }

    #[test]
    fn the_coordinator_starts_the_widest_task_first_and_meets_the_bound() {
        // The widest task last in the file: in file order it starts only when a narrow one
        // ends, and the sweep waits for it.
        let (sweep, tasks) =
            run_of("name: t\nmodel:\n  hidden: [8, 64, 512]\npruning:\n  levels: 2\n  target: 100\nseeds: 1\n");
        let dir = tempfile::tempdir().unwrap();
        let rows = simulate(&sweep, &tasks, &[2], dir.path()).unwrap();
        let m = rows[0];
        let widest: f64 = tasks[2].levels.iter().map(|l| l.seconds).sum();
        assert!((m.lower_bound - widest).abs() < 1e-9, "{m:?}");
        assert!((m.coordinator - m.lower_bound).abs() < 0.01, "{m:?}");
        // In file order the widest task starts when the narrowest, on the other worker, ends.
        let narrowest: f64 = tasks[0].levels.iter().map(|l| l.seconds).sum();
        assert!((m.expansion - (narrowest + widest)).abs() < 0.01, "{m:?}");
    }
}
