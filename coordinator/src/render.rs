//! Text, CSV and JSON renderings of status reports, aggregate rows and sweep plans, shared by
//! the CLI and embedded runs. Pure: strings in, strings out.

use proto::v1 as pb;
use serde_json::Value;

use crate::aggregate::Row;

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A duration in seconds as `1h02m`, `3m05s` or `42s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_string();
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Whether a worker failed (or lost to expiry) its last
/// [`UNHEALTHY_AFTER`](crate::store::leases::UNHEALTHY_AFTER) tasks or more in a row.
pub fn unhealthy(worker: &pb::WorkerStatus) -> bool {
    worker.consecutive_failures >= crate::store::leases::UNHEALTHY_AFTER
}

/// The status report as text: one line per sweep, its failures, then the live workers (an
/// unhealthy one flagged in the `health` column).
pub fn status_text(status: &pb::StatusResponse) -> String {
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
                    format!("{}/{}", s.done, s.total),
                    s.pending.to_string(),
                    s.leased.to_string(),
                    s.failed.to_string(),
                    format!("{}/{}", s.levels_done, s.levels_planned),
                    format!("{:.1}", s.tasks_per_hour),
                    format!("{:.1}", s.levels_per_minute),
                    s.eta_seconds.map_or_else(|| "-".to_string(), duration),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "sweep",
                "done",
                "pending",
                "leased",
                "failed",
                "levels",
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
                let tasks = if w.tasks.is_empty() {
                    "idle".to_string()
                } else {
                    w.tasks
                        .iter()
                        .map(|t| format!("{} level {}", t.task_id, t.level))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let ago = (status.now_unix_ms - w.last_seen_unix_ms).max(0) as f64 / 1000.0;
                vec![
                    w.worker_id.to_string(),
                    w.name.clone(),
                    w.hostname.clone(),
                    format!("{} ago", duration(ago)),
                    w.consecutive_failures.to_string(),
                    if unhealthy(w) { "UNHEALTHY" } else { "ok" }.to_string(),
                    tasks,
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "worker",
                "name",
                "host",
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

fn shape(shape: &[usize]) -> String {
    let widths: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("({})", widths.join(","))
}

fn opt(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v}"))
}

const RESULT_COLUMNS: [&str; 17] = [
    "shape",
    "extension_level",
    "weights",
    "levels",
    "rate",
    "target",
    "scope",
    "seeds_done",
    "seeds_total",
    "frac_split",
    "frac_ever_split",
    "frac_connected",
    "frac_degraded",
    "active_at_split_median",
    "first_split_level_median",
    "test_accuracy",
    "engine",
];

fn result_cells(r: &Row, precision: Option<usize>) -> Vec<String> {
    let num = |v: f64| match precision {
        Some(p) => format!("{v:.p$}"),
        None => format!("{v}"),
    };
    vec![
        shape(&r.shape),
        r.extension_level
            .map_or_else(String::new, |l| l.to_string()),
        r.weights.to_string(),
        r.levels.to_string(),
        num(r.rate),
        r.target.to_string(),
        r.scope.clone(),
        r.seeds_done.to_string(),
        r.seeds_total.to_string(),
        num(r.frac_split),
        num(r.frac_ever_split),
        num(r.frac_connected),
        num(r.frac_degraded),
        opt(r.active_at_split_median),
        opt(r.first_split_level_median),
        r.test_accuracy
            .iter()
            .map(|&a| num(a))
            .collect::<Vec<_>>()
            .join(" "),
        engines(&r.engines),
    ]
}

/// The engine of a point: its version, or every version and `mixed` when they differ.
fn engines(engines: &[u32]) -> String {
    let list: Vec<String> = engines.iter().map(u32::to_string).collect();
    match list.len() {
        0 | 1 => list.join(""),
        _ => format!("mixed:{}", list.join("+")),
    }
}

/// Aggregate rows as an aligned table.
pub fn results_table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no finished tasks yet\n".to_string();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = result_cells(r, Some(3));
            let (lo, hi) = result_intervals(r)[0].1;
            cells.insert(10, format!("[{lo:.2},{hi:.2}]"));
            cells
        })
        .collect();
    let headers = [
        "shape",
        "ext",
        "weights",
        "levels",
        "rate",
        "target",
        "scope",
        "done",
        "of",
        "split",
        "split_95%_ci",
        "ever_split",
        "connected",
        "degraded",
        "active@split",
        "split_level",
        "test_accuracy",
        "engine",
    ];
    table(&headers, &cells)
}

/// Aggregate rows as CSV with a header line (test accuracies space-separated in one field).
///
/// The last columns are the 95% Wilson intervals of the fractions: `frac_split_ci_lo`,
/// `frac_split_ci_hi`, then the same for ever split, connected and degraded.
pub fn results_csv(rows: &[Row]) -> String {
    let mut out = RESULT_COLUMNS.join(",");
    for key in [
        "frac_split",
        "frac_ever_split",
        "frac_connected",
        "frac_degraded",
    ] {
        out.push_str(&format!(",{key}_ci_lo,{key}_ci_hi"));
    }
    out.push('\n');
    for r in rows {
        let mut cells: Vec<String> = result_cells(r, None).into_iter().map(csv_field).collect();
        for (_, (lo, hi)) in result_intervals(r) {
            cells.push(format!("{lo}"));
            cells.push(format!("{hi}"));
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(cell: String) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// Aggregate rows as a JSON array of objects.
///
/// Each row also has the 95% Wilson intervals of its fractions over its finished seeds:
/// `frac_split_ci`, `frac_ever_split_ci`, `frac_connected_ci`, `frac_degraded_ci` (`[lo, hi]`).
pub fn results_json(rows: &[Row]) -> Result<String, serde_json::Error> {
    let mut values = Vec::with_capacity(rows.len());
    for r in rows {
        let mut value = serde_json::to_value(r)?;
        if let Value::Object(object) = &mut value {
            for (key, (lo, hi)) in result_intervals(r) {
                object.insert(format!("{key}_ci"), serde_json::json!([lo, hi]));
            }
        }
        values.push(value);
    }
    serde_json::to_string_pretty(&values)
}

/// The 95% Wilson intervals of a row's fractions, keyed by the fraction's name.
fn result_intervals(r: &Row) -> [(&'static str, (f64, f64)); 4] {
    let ci = |frac: f64| crate::stats::wilson95_of_fraction(frac, r.seeds_done);
    [
        ("frac_split", ci(r.frac_split)),
        ("frac_ever_split", ci(r.frac_ever_split)),
        ("frac_connected", ci(r.frac_connected)),
        ("frac_degraded", ci(r.frac_degraded)),
    ]
}

/// The planned tasks of a sweep (any serialisable rows) as a table, keys as columns.
pub fn plan_table(rows: &[Value]) -> String {
    const COLUMNS: [&str; 8] = [
        "index", "id", "shape", "weights", "levels", "rate", "target", "seed",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            COLUMNS
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
    let mut out = table(&COLUMNS, &cells);
    out.push_str(&format!("{} task(s)\n", rows.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_durations_read() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "1".into()]]);
        assert_eq!(t, "a    bb\nxxx  1\n");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn csv_quotes_commas() {
        assert_eq!(csv_field("(4,8,2)".into()), "\"(4,8,2)\"");
        assert_eq!(csv_field("0.5".into()), "0.5");
    }
}
