//! Text, CSV and JSON renderings of grouped statistics (`coordinator results --by`), of the
//! per-task summaries and of the per-level weights. Pure: rows in, strings out.

use serde_json::{json, Map, Value};

use crate::convert::status_str;
use crate::render::table;
use crate::stats::{
    format_float, AxisValue, GroupStats, LevelStats, Proportion, Spread, TaskSummary,
};

fn frac(p: &Proportion) -> String {
    format!("{:.3}", p.frac)
}

fn ci(p: &Proportion) -> String {
    format!("[{:.2},{:.2}]", p.ci.0, p.ci.1)
}

/// `median [min-max]`, or the single value, or empty.
pub fn spread_text(s: Option<Spread>) -> String {
    match s {
        None => String::new(),
        Some(s) if s.min == s.max => format_float(s.median),
        Some(s) => format!(
            "{} [{}-{}]",
            format_float(s.median),
            format_float(s.min),
            format_float(s.max)
        ),
    }
}

fn accuracy(values: &[f64]) -> String {
    values
        .iter()
        .map(|a| format!("{a:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn axis_json(v: &AxisValue) -> Value {
    match v {
        AxisValue::None => Value::Null,
        AxisValue::Int(i) => json!(i),
        AxisValue::Float(f) => json!(f),
        AxisValue::Text(t) => json!(t),
        AxisValue::Shape(s) => json!(s),
    }
}

/// Grouped statistics as an aligned table: the axes, then the fractions with their 95%
/// Wilson intervals, the active weights and levels at the first split, the first degraded
/// level and the test accuracy.
pub fn groups_table(groups: &[GroupStats]) -> String {
    if groups.is_empty() {
        return "no tasks\n".to_string();
    }
    let mut headers: Vec<String> = groups[0]
        .key
        .iter()
        .map(|(a, _)| a.name().to_string())
        .collect();
    headers.extend(
        [
            "done",
            "of",
            "split",
            "95% ci",
            "ever_split",
            "95% ci",
            "connected",
            "95% ci",
            "degraded",
            "95% ci",
            "active@split",
            "split_level",
            "degraded_level",
            "test_accuracy",
        ]
        .map(String::from),
    );
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let mut cells: Vec<String> = g.key.iter().map(|(_, v)| v.to_string()).collect();
            cells.extend([
                g.tasks_done.to_string(),
                g.tasks_total.to_string(),
                frac(&g.split),
                ci(&g.split),
                frac(&g.ever_split),
                ci(&g.ever_split),
                frac(&g.connected),
                ci(&g.connected),
                frac(&g.degraded),
                ci(&g.degraded),
                spread_text(g.active_at_split),
                spread_text(g.first_split_level),
                spread_text(g.first_degraded_level),
                accuracy(&g.test_accuracy),
            ]);
            cells
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(&headers, &rows)
}

/// Grouped statistics as JSON: one object per group with the axes' values under their names
/// and `tasks_total`, `tasks_done`, `frac_split` and `frac_split_ci` (`[lo, hi]`), the same
/// for `frac_ever_split`, `frac_connected`, `frac_degraded` and `frac_ever_degraded`,
/// `active_at_split_{median,min,max}`, `first_split_level_{median,min,max}`,
/// `first_degraded_level_{median,min,max}` (null when none) and `test_accuracy`.
pub fn groups_json(groups: &[GroupStats]) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| {
                let mut o = Map::new();
                for (a, v) in &g.key {
                    o.insert(a.name().to_string(), axis_json(v));
                }
                o.insert("tasks_total".into(), json!(g.tasks_total));
                o.insert("tasks_done".into(), json!(g.tasks_done));
                for (name, p) in [
                    ("frac_split", &g.split),
                    ("frac_ever_split", &g.ever_split),
                    ("frac_connected", &g.connected),
                    ("frac_degraded", &g.degraded),
                    ("frac_ever_degraded", &g.ever_degraded),
                ] {
                    o.insert(name.into(), json!(p.frac));
                    o.insert(format!("{name}_ci"), json!([p.ci.0, p.ci.1]));
                }
                for (name, s) in [
                    ("active_at_split", g.active_at_split),
                    ("first_split_level", g.first_split_level),
                    ("first_degraded_level", g.first_degraded_level),
                ] {
                    o.insert(format!("{name}_median"), json!(s.map(|s| s.median)));
                    o.insert(format!("{name}_min"), json!(s.map(|s| s.min)));
                    o.insert(format!("{name}_max"), json!(s.map(|s| s.max)));
                }
                o.insert("test_accuracy".into(), json!(g.test_accuracy));
                Value::Object(o)
            })
            .collect(),
    )
}

/// Grouped statistics as CSV: the JSON's keys as columns (intervals as `_lo` / `_hi`,
/// shapes as `(4,8,8,2)`, test accuracies space-separated).
pub fn groups_csv(groups: &[GroupStats]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = groups
        .first()
        .map(|g| g.key.iter().map(|(a, _)| a.name().to_string()).collect())
        .unwrap_or_default();
    header.extend(["tasks_total", "tasks_done"].map(String::from));
    for name in [
        "frac_split",
        "frac_ever_split",
        "frac_connected",
        "frac_degraded",
        "frac_ever_degraded",
    ] {
        header.push(name.into());
        header.push(format!("{name}_ci_lo"));
        header.push(format!("{name}_ci_hi"));
    }
    for name in [
        "active_at_split",
        "first_split_level",
        "first_degraded_level",
    ] {
        for s in ["median", "min", "max"] {
            header.push(format!("{name}_{s}"));
        }
    }
    header.push("test_accuracy".into());
    let _ = writer.write_record(&header);
    for g in groups {
        let mut row: Vec<String> = g
            .key
            .iter()
            .map(|(_, v)| match v {
                AxisValue::None => String::new(),
                AxisValue::Float(f) => format!("{f}"),
                other => other.to_string(),
            })
            .collect();
        row.push(g.tasks_total.to_string());
        row.push(g.tasks_done.to_string());
        for p in [
            &g.split,
            &g.ever_split,
            &g.connected,
            &g.degraded,
            &g.ever_degraded,
        ] {
            row.push(format!("{}", p.frac));
            row.push(format!("{}", p.ci.0));
            row.push(format!("{}", p.ci.1));
        }
        for s in [
            g.active_at_split,
            g.first_split_level,
            g.first_degraded_level,
        ] {
            for v in [s.map(|s| s.median), s.map(|s| s.min), s.map(|s| s.max)] {
                row.push(v.map_or_else(String::new, |v| format!("{v}")));
            }
        }
        row.push(
            g.test_accuracy
                .iter()
                .map(|a| format!("{a}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        let _ = writer.write_record(&row);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Per-task summaries as table cells (header, rows).
pub fn task_cells(tasks: &[(String, TaskSummary)]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let headers = vec![
        "task",
        "grid point",
        "seed",
        "weights",
        "levels",
        "outcome",
        "first split",
        "active at split",
        "first degraded",
        "test accuracy",
    ];
    let rows = tasks
        .iter()
        .map(|(point, s)| {
            let opt = |v: Option<usize>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            vec![
                s.id.clone(),
                point.clone(),
                s.seed.to_string(),
                s.available_weights.to_string(),
                format!("{}/{}", s.levels_done, s.levels_planned + 1),
                s.outcome.map_or("-", status_str).to_string(),
                opt(s.first_split_level),
                opt(s.active_at_first_split),
                opt(s.first_degraded_level),
                accuracy(&s.test_accuracy),
            ]
        })
        .collect();
    (headers, rows)
}

/// Per-level weights as table cells (header, rows).
pub fn level_cells(levels: &[LevelStats]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let headers = vec![
        "level",
        "seeds",
        "remaining",
        "active",
        "zombie",
        "inactive",
        "split",
        "degraded",
        "test accuracy",
    ];
    let rows = levels
        .iter()
        .map(|l| {
            vec![
                l.level.to_string(),
                l.n.to_string(),
                spread_text(Some(l.remaining)),
                spread_text(Some(l.active)),
                spread_text(Some(l.zombie)),
                spread_text(Some(l.inactive)),
                l.split.to_string(),
                l.degraded.to_string(),
                l.test_accuracy
                    .iter()
                    .map(|s| format!("{:.3}", s.median))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    (headers, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{group_by, Axis};

    #[test]
    fn grouped_outputs_carry_intervals() {
        let tasks = crate::export::tests::sample_tasks();
        let groups = group_by(&tasks, &[Axis::ExtensionLevel]);
        assert_eq!(groups.len(), 2);
        let text = groups_table(&groups);
        assert!(text.starts_with("extension_level"), "{text}");
        assert!(text.contains("95% ci"), "{text}");
        let json = groups_json(&groups);
        let first = &json[0];
        assert_eq!(first["extension_level"], json!(2));
        assert_eq!(first["tasks_total"], json!(2));
        let ci = first["frac_split_ci"].as_array().unwrap();
        assert_eq!(ci.len(), 2);
        let csv = groups_csv(&groups);
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header[0], "extension_level");
        assert!(header.contains(&"frac_split_ci_lo"));
        assert_eq!(lines.count(), 2);
    }

    #[test]
    fn spreads_read() {
        assert_eq!(spread_text(None), "");
        let s = Spread {
            n: 3,
            median: 5.0,
            min: 2.0,
            max: 9.5,
        };
        assert_eq!(spread_text(Some(s)), "5 [2-9.5]");
    }
}
