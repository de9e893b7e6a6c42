//! Text renderings of status reports and sweep plans for the CLI and embedded runs (the
//! results are `analysis::tables`'). Pure: data in, strings out.

use analysis::tables::{duration, table};
use serde_json::Value;

use crate::store::queries::StatusReport;

/// The fraction of a sweep's expected cost that is stored, as a percentage ("-" when the
/// database does not record costs).
pub fn work_done(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "-".to_string(), |f| format!("{:.0}%", 100.0 * f))
}

/// The status report as text: one line per sweep, its failures, then the live workers (an
/// unhealthy one flagged in the `health` column).
pub fn status_text(status: &StatusReport) -> String {
    let mut out = String::new();
    if status.sweeps.is_empty() {
        out.push_str("no sweeps\n");
    } else {
        let rows: Vec<Vec<String>> = status
            .sweeps
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.state.clone(),
                    s.priority.to_string(),
                    format!("{}/{}", s.done, s.total),
                    s.pending.to_string(),
                    s.leased.to_string(),
                    s.failed.to_string(),
                    format!("{}/{}", s.levels_done, s.levels_planned),
                    work_done(s.work_done),
                    format!("{:.1}", s.tasks_per_hour),
                    format!("{:.1}", s.levels_per_minute),
                    s.eta_seconds.map_or_else(|| "-".to_string(), duration),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "sweep",
                "state",
                "priority",
                "done",
                "pending",
                "leased",
                "failed",
                "levels",
                "work",
                "tasks/h",
                "levels/min",
                "eta",
            ],
            &rows,
        ));
    }
    for s in &status.sweeps {
        for f in &s.failures {
            out.push_str(&format!(
                "failed {} task {} after {} attempt(s): {}\n",
                s.name, f.task_id, f.attempts, f.error
            ));
        }
    }
    out.push('\n');
    if status.workers.is_empty() {
        out.push_str("no live workers\n");
    } else {
        let rows: Vec<Vec<String>> = status
            .workers
            .iter()
            .map(|w| {
                let tasks = if w.tasks.is_empty() && !w.idle_reason.is_empty() {
                    format!("idle: {}", w.idle_reason)
                } else if w.tasks.is_empty() {
                    "idle".to_string()
                } else {
                    w.tasks
                        .iter()
                        .map(|t| format!("{} level {}", t.task_id, t.level))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let ago = (status.now_ms - w.last_seen_ms).max(0) as f64 / 1000.0;
                vec![
                    w.worker_id.to_string(),
                    w.name.clone(),
                    w.hostname.clone(),
                    if w.arithmetic.is_empty() {
                        "-".to_string()
                    } else {
                        w.arithmetic.clone()
                    },
                    format!("{} ago", duration(ago)),
                    w.consecutive_failures.to_string(),
                    if w.unhealthy() { "UNHEALTHY" } else { "ok" }.to_string(),
                    tasks,
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "worker",
                "name",
                "host",
                "arithmetic",
                "last heartbeat",
                "failures",
                "health",
                "tasks",
            ],
            &rows,
        ));
    }
    out
}

/// The planned tasks of a sweep (any serialisable rows) as a table, keys as columns; the
/// controls (`method`, `coupling`, `rewind_epochs`) only where a task leaves their defaults.
pub fn plan_table(rows: &[Value]) -> String {
    const SETTINGS: [&str; 8] = [
        "index",
        "id",
        "shape",
        "weights",
        "levels",
        "rate",
        "target",
        "data_seed",
    ];
    const CONTROLS: [&str; 3] = ["method", "coupling", "rewind_epochs"];
    let is_default = |key: &str, v: &Value| match key {
        "method" => v.as_str() == Some("magnitude"),
        _ => v.as_f64() == Some(0.0),
    };
    let controls = rows.iter().any(|row| {
        CONTROLS
            .iter()
            .any(|&key| row.get(key).is_some_and(|v| !is_default(key, v)))
    });
    let columns: Vec<&str> = SETTINGS
        .into_iter()
        .chain(CONTROLS.into_iter().filter(|_| controls))
        .chain(["seed"])
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|&key| match row.get(key) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(items)) => format!(
                        "({})",
                        items
                            .iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    Some(Value::Number(n)) if key == "rate" => n
                        .as_f64()
                        .map_or_else(|| n.to_string(), |f| format!("{f:.4}")),
                    Some(other) => other.to_string(),
                })
                .collect()
        })
        .collect();
    let mut out = table(&columns, &cells);
    out.push_str(&format!("{} task(s)\n", rows.len()));
    out
}
