//! Text, CSV and JSON renderings of the statistics: the grid points (`coordinator results`),
//! grouped statistics (`results --by`), what training cost (`results --cost`), the per-task
//! summaries and the per-level weights, and the aligned-table and duration formats the other
//! outputs share. Pure: rows in, strings out.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::baseline::BaselineStats;
use shared::outcome::Outcome;

use crate::stats::{
    format_float, grid_points, AxisValue, Cost, GroupStats, LevelStats, PartCost, PointStats,
    Proportion, Spread, TaskSummary, REFERENCE_GFLOPS_PER_CORE,
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
    let with_baseline = groups.iter().any(|g| g.baseline.is_some());
    let mut headers: Vec<String> = groups[0]
        .key
        .iter()
        .map(|(a, _)| a.name().to_string())
        .collect();
    headers.extend(["done", "of", "separated", "95% ci"].map(String::from));
    if with_baseline {
        headers.extend(["random_split", "95% ci"].map(String::from));
    }
    headers.extend(
        [
            "sep>degraded",
            "95% ci",
            "interconnected",
            "95% ci",
            "degraded",
            "95% ci",
            "active@split",
            "remaining@split",
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
                frac(&g.separated),
                ci(&g.separated),
            ]);
            if with_baseline {
                cells.extend(match &g.baseline {
                    Some(b) => [frac(&b.split), ci(&b.split)],
                    None => [String::new(), String::new()],
                });
            }
            cells.extend([
                frac(&g.separated_degraded),
                ci(&g.separated_degraded),
                frac(&g.interconnected),
                ci(&g.interconnected),
                frac(&g.degraded_unsplit),
                ci(&g.degraded_unsplit),
                spread_text(g.active_at_split),
                spread_text(g.remaining_at_split),
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
/// for `frac_ever_split`, `frac_connected`, `frac_degraded`, `frac_ever_degraded` and the
/// four outcomes (`frac_separated`, `frac_separated_degraded`, `frac_interconnected`,
/// `frac_degraded_unsplit`), the outcomes' counts (`separated`, ...),
/// `active_at_split_{median,mean,min,max}`, the same for `remaining_at_split`,
/// `first_split_level` and `first_degraded_level` (null when none) and `test_accuracy`; where
/// the group has a random-mask baseline ([`crate::baseline::fill`]) also `baseline_runs`,
/// `baseline_draws`, `frac_split_random` with `frac_split_random_ci`, `frac_connected_random`
/// and `frac_degraded_random`.
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
                    ("frac_separated", &g.separated),
                    ("frac_separated_degraded", &g.separated_degraded),
                    ("frac_interconnected", &g.interconnected),
                    ("frac_degraded_unsplit", &g.degraded_unsplit),
                ] {
                    o.insert(name.into(), json!(p.frac));
                    o.insert(format!("{name}_ci"), json!([p.ci.0, p.ci.1]));
                }
                for (outcome, p) in g.outcomes() {
                    o.insert(outcome.as_str().into(), json!(p.k));
                }
                for (name, s) in [
                    ("active_at_split", g.active_at_split),
                    ("remaining_at_split", g.remaining_at_split),
                    ("first_split_level", g.first_split_level),
                    ("first_degraded_level", g.first_degraded_level),
                ] {
                    o.insert(format!("{name}_median"), json!(s.map(|s| s.median)));
                    o.insert(format!("{name}_mean"), json!(s.map(|s| s.mean)));
                    o.insert(format!("{name}_min"), json!(s.map(|s| s.min)));
                    o.insert(format!("{name}_max"), json!(s.map(|s| s.max)));
                }
                o.insert("test_accuracy".into(), json!(g.test_accuracy));
                if let Some(b) = &g.baseline {
                    insert_baseline_json(&mut o, b);
                }
                Value::Object(o)
            })
            .collect(),
    )
}

/// Grouped statistics as CSV: the JSON's keys as columns (intervals as `_lo` / `_hi`,
/// shapes as `(4,8,8,2)`, test accuracies space-separated), and last, where any group has
/// the random-mask baseline, its [`BASELINE_COLUMNS`].
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
        "frac_separated",
        "frac_separated_degraded",
        "frac_interconnected",
        "frac_degraded_unsplit",
    ] {
        header.push(name.into());
        header.push(format!("{name}_ci_lo"));
        header.push(format!("{name}_ci_hi"));
    }
    for outcome in Outcome::ALL {
        header.push(outcome.as_str().into());
    }
    for name in [
        "active_at_split",
        "remaining_at_split",
        "first_split_level",
        "first_degraded_level",
    ] {
        for s in ["median", "mean", "min", "max"] {
            header.push(format!("{name}_{s}"));
        }
    }
    header.push("test_accuracy".into());
    let with_baseline = groups.iter().any(|g| g.baseline.is_some());
    if with_baseline {
        header.extend(BASELINE_COLUMNS.map(String::from));
    }
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
            &g.separated,
            &g.separated_degraded,
            &g.interconnected,
            &g.degraded_unsplit,
        ] {
            row.push(format!("{}", p.frac));
            row.push(format!("{}", p.ci.0));
            row.push(format!("{}", p.ci.1));
        }
        for (_, p) in g.outcomes() {
            row.push(p.k.to_string());
        }
        for s in [
            g.active_at_split,
            g.remaining_at_split,
            g.first_split_level,
            g.first_degraded_level,
        ] {
            for v in [
                s.map(|s| s.median),
                s.map(|s| s.mean),
                s.map(|s| s.min),
                s.map(|s| s.max),
            ] {
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
        if with_baseline {
            row.extend(baseline_cells(g.baseline.as_ref()));
        }
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
        "trajectory",
        "first split",
        "active at split",
        "remaining at split",
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
                s.outcome.map_or("-", |o| o.as_str()).to_string(),
                s.trajectory.map_or("-", |o| o.as_str()).to_string(),
                opt(s.first_split_level),
                opt(s.active_at_first_split),
                opt(s.remaining_at_first_split),
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

/// The cells of a cost row: tasks, levels, epochs, training hours, share of the total
/// training seconds, TFLOP, GFLOP/s.
fn cost_cells(c: &Cost, total_seconds: f64) -> Vec<String> {
    let share = if total_seconds > 0.0 {
        c.seconds / total_seconds
    } else {
        0.0
    };
    vec![
        c.tasks.to_string(),
        c.levels.to_string(),
        c.epochs.to_string(),
        format!("{:.3}", c.seconds / 3600.0),
        format!("{share:.3}"),
        format!("{:.1}", c.flop / 1e12),
        format!("{:.1}", c.gflops()),
    ]
}

const COST_COLUMNS: [&str; 9] = [
    "shape",
    "pruning_levels",
    "tasks",
    "levels",
    "epochs",
    "training_hours",
    "share",
    "tflop",
    "gflops",
];

/// What a sweep's training cost (`coordinator results --cost`): the totals, the FLOP limit at
/// [`REFERENCE_GFLOPS_PER_CORE`], then one row per shape and pruning levels, most training first.
pub fn cost_table(total: &Cost, parts: &[PartCost]) -> String {
    let mut out = format!(
        "{} tasks, {} levels, {} epochs; training {} summed over levels ({:.1} GFLOP/s on \
         average); {:.1} TFLOP: {:.2} core-hours at {} GFLOP/s a core\n",
        total.tasks,
        total.levels,
        total.epochs,
        duration(total.seconds),
        total.gflops(),
        total.flop / 1e12,
        total.limit_core_hours(),
        REFERENCE_GFLOPS_PER_CORE
    );
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|s| {
            let mut row = vec![shape(&s.shape), s.pruning_levels.to_string()];
            row.extend(cost_cells(&s.cost, total.seconds));
            row
        })
        .collect();
    out.push_str(&table(&COST_COLUMNS, &rows));
    out
}

/// [`cost_table`] as CSV: one row per shape and pruning levels, then a row `total` (with an
/// empty `pruning_levels`).
pub fn cost_csv(total: &Cost, parts: &[PartCost]) -> String {
    let mut out = COST_COLUMNS.join(",");
    out.push('\n');
    let rows = parts
        .iter()
        .map(|s| (shape(&s.shape), s.pruning_levels.to_string(), &s.cost))
        .chain([("total".to_string(), String::new(), total)]);
    for (name, levels, c) in rows {
        let mut cells = vec![csv_field(name), levels];
        cells.extend(cost_cells(c, total.seconds));
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// [`cost_table`] as JSON: `total` (with `limit_core_hours` and `gflops`) and `parts` (shape,
/// pruning levels, cost).
pub fn cost_json(total: &Cost, parts: &[PartCost]) -> Value {
    let with_rates = |c: &Cost| {
        let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
        if let Value::Object(o) = &mut v {
            o.insert("gflops".into(), json!(c.gflops()));
            o.insert("limit_core_hours".into(), json!(c.limit_core_hours()));
        }
        v
    };
    json!({
        "total": with_rates(total),
        "reference_gflops_per_core": REFERENCE_GFLOPS_PER_CORE,
        "parts": parts
            .iter()
            .map(|s| json!({
                "shape": s.shape,
                "pruning_levels": s.pruning_levels,
                "cost": with_rates(&s.cost),
            }))
            .collect::<Vec<_>>(),
    })
}

/// One row of `coordinator results`: a grid point over its finished seeds, with the keys of
/// the `results --format json` contract (README, "Output contracts").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    /// Hash of the settings without the seed.
    pub point: String,
    pub shape: Vec<usize>,
    pub extension_level: Option<usize>,
    /// Dense weight count of the shape.
    pub weights: usize,
    pub levels: usize,
    pub rate: f64,
    pub target: usize,
    pub scope: String,
    /// The controls (issue 22): `pruning.method`, `data.coupling` in degrees and
    /// `train.rewind_epochs` (magnitude, 0 and 0: the protocol).
    pub method: String,
    pub coupling: f64,
    pub rewind_epochs: usize,
    /// The data seed (`data.seed`).
    pub data_seed: u64,
    pub seeds_total: usize,
    pub seeds_done: usize,
    /// Outcome split.
    pub frac_split: f64,
    /// Split at any level.
    pub frac_ever_split: f64,
    /// Outcome connected.
    pub frac_connected: f64,
    /// Outcome degraded.
    pub frac_degraded: f64,
    /// Median active weights at the first split level, over seeds that ever split.
    pub active_at_split_median: Option<f64>,
    /// Median first split level, over seeds that ever split.
    pub first_split_level_median: Option<f64>,
    /// Mean test accuracy per problem at the last level, over finished seeds.
    pub test_accuracy: Vec<f64>,
    /// The training engines of the point's levels (more than one: mixed).
    pub engines: Vec<u32>,
    /// The recorded arithmetics of the point's levels (more than one: mixed roundings).
    pub arithmetics: Vec<String>,
    /// The four outcomes of the trajectories (`shared::outcome`), fractions of the finished
    /// seeds that sum to 1: split at the last level (the same seeds as `frac_split`).
    pub frac_separated: f64,
    /// Split at some level, not at the last (degraded later).
    pub frac_separated_degraded: f64,
    /// Never split, never degraded.
    pub frac_interconnected: f64,
    /// Degraded without ever having split.
    pub frac_degraded_unsplit: f64,
    /// Active weights at the first split level: mean, min and max over the seeds that split
    /// (the thesis's summary).
    pub active_at_split_mean: Option<f64>,
    pub active_at_split_min: Option<f64>,
    pub active_at_split_max: Option<f64>,
    /// Median weights remaining (what pruning had left) at the first split level.
    pub remaining_at_split_median: Option<f64>,
    /// The counts behind the fractions (k of n, with their intervals).
    #[serde(skip)]
    pub counts: Counts,
    /// The random-mask baseline at the seeds' last levels (`crate::baseline`), when asked for
    /// and the per-layer counts are known.
    #[serde(skip)]
    pub baseline: Option<BaselineStats>,
}

/// The counts of a [`ResultRow`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    pub split: Proportion,
    pub ever_split: Proportion,
    pub connected: Proportion,
    pub degraded: Proportion,
    pub separated: Proportion,
    pub separated_degraded: Proportion,
    pub interconnected: Proportion,
    pub degraded_unsplit: Proportion,
}

impl ResultRow {
    /// The row of a grid point.
    pub fn of(p: &PointStats) -> ResultRow {
        let (spec, g) = (&p.spec, &p.stats);
        ResultRow {
            point: p.point.clone(),
            shape: spec.shape.clone(),
            extension_level: spec.extension_level,
            weights: spec.weights(),
            levels: spec.prune.levels,
            rate: spec.prune.rate,
            target: spec.prune.target,
            scope: spec.prune.scope.as_str().to_string(),
            method: spec.prune.method.as_str().to_string(),
            coupling: spec.data.coupling,
            rewind_epochs: spec.train.rewind_epochs,
            data_seed: spec.data.seed,
            seeds_total: g.tasks_total,
            seeds_done: g.tasks_done,
            frac_split: g.split.frac,
            frac_ever_split: g.ever_split.frac,
            frac_connected: g.connected.frac,
            frac_degraded: g.degraded.frac,
            active_at_split_median: g.active_at_split.map(|s| s.median),
            first_split_level_median: g.first_split_level.map(|s| s.median),
            test_accuracy: g.test_accuracy.clone(),
            engines: g.engines.clone(),
            arithmetics: g.arithmetics.clone(),
            frac_separated: g.separated.frac,
            frac_separated_degraded: g.separated_degraded.frac,
            frac_interconnected: g.interconnected.frac,
            frac_degraded_unsplit: g.degraded_unsplit.frac,
            active_at_split_mean: g.active_at_split.map(|s| s.mean),
            active_at_split_min: g.active_at_split.map(|s| s.min),
            active_at_split_max: g.active_at_split.map(|s| s.max),
            remaining_at_split_median: g.remaining_at_split.map(|s| s.median),
            counts: Counts {
                split: g.split,
                ever_split: g.ever_split,
                connected: g.connected,
                degraded: g.degraded,
                separated: g.separated,
                separated_degraded: g.separated_degraded,
                interconnected: g.interconnected,
                degraded_unsplit: g.degraded_unsplit,
            },
            baseline: None,
        }
    }

    /// The rows of every grid point of `tasks` with a finished seed, in expansion order, with
    /// the random-mask baseline at the default number of draws.
    pub fn of_tasks(tasks: &[crate::data::TaskResult]) -> Vec<ResultRow> {
        ResultRow::of_tasks_with(tasks, shared::baseline::DEFAULT_DRAWS)
    }

    /// As [`ResultRow::of_tasks`] with `draws` random masks per seed (0: no baseline).
    pub fn of_tasks_with(tasks: &[crate::data::TaskResult], draws: usize) -> Vec<ResultRow> {
        let points: Vec<String> = tasks
            .iter()
            .map(|t| crate::stats::point_of(&t.spec))
            .collect();
        grid_points(tasks)
            .iter()
            .map(|p| {
                let group: Vec<&crate::data::TaskResult> = tasks
                    .iter()
                    .zip(&points)
                    .filter(|(_, point)| **point == p.point)
                    .map(|(t, _)| t)
                    .collect();
                ResultRow {
                    baseline: crate::baseline::of_group(&group, draws),
                    ..ResultRow::of(p)
                }
            })
            .collect()
    }
}

fn shape(shape: &[usize]) -> String {
    let widths: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("({})", widths.join(","))
}

fn opt(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| format!("{v}"))
}

const RESULT_COLUMNS: [&str; 26] = [
    "shape",
    "extension_level",
    "weights",
    "levels",
    "rate",
    "target",
    "scope",
    "data_seed",
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
    "frac_separated",
    "frac_separated_degraded",
    "frac_interconnected",
    "frac_degraded_unsplit",
    "active_at_split_mean",
    "active_at_split_min",
    "active_at_split_max",
    "remaining_at_split_median",
];

fn result_cells(r: &ResultRow, precision: Option<usize>) -> Vec<String> {
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
        r.data_seed.to_string(),
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
        engines(&r.engines, &r.arithmetics),
        num(r.frac_separated),
        num(r.frac_separated_degraded),
        num(r.frac_interconnected),
        num(r.frac_degraded_unsplit),
        opt(r.active_at_split_mean),
        opt(r.active_at_split_min),
        opt(r.active_at_split_max),
        opt(r.remaining_at_split_median),
    ]
}

/// The control columns and their cells, in [`Axis::CONTROLS`] order: `method`, `coupling`,
/// `rewind_epochs`.
const CONTROL_COLUMNS: [&str; 3] = ["method", "coupling", "rewind_epochs"];

fn control_cells(r: &ResultRow, precision: Option<usize>) -> [String; 3] {
    let coupling = match precision {
        Some(_) => format_float(r.coupling),
        None => format!("{}", r.coupling),
    };
    [r.method.clone(), coupling, r.rewind_epochs.to_string()]
}

/// Whether any row leaves the protocol's value of a control (then tables show the controls).
fn controls_set(rows: &[ResultRow]) -> bool {
    rows.iter()
        .any(|r| r.method != "magnitude" || r.coupling != 0.0 || r.rewind_epochs != 0)
}

/// The engine of a point: its version, or every version and `mixed` when they differ; and
/// when its levels were trained with more than one arithmetic, ` mixed-arithmetic:` and them.
fn engines(engines: &[u32], arithmetics: &[String]) -> String {
    let list: Vec<String> = engines.iter().map(u32::to_string).collect();
    let mut cell = match list.len() {
        0 | 1 => list.join(""),
        _ => format!("mixed:{}", list.join("+")),
    };
    if arithmetics.len() > 1 {
        cell.push_str(&format!(" mixed-arithmetic:{}", arithmetics.join("+")));
    }
    cell
}

/// The position of a column of [`RESULT_COLUMNS`] in [`result_cells`].
fn column(name: &str) -> usize {
    RESULT_COLUMNS
        .iter()
        .position(|&c| c == name)
        .unwrap_or_else(|| panic!("no result column {name}"))
}

/// Aggregate rows as an aligned table: the settings (the data seed only where the rows differ
/// in it), the four outcomes (`sep` separated, `sep>deg` separated then degraded, `inter`
/// interconnected, `deg` degraded without a split) as fractions of the finished seeds with the
/// separated fraction's 95% interval, where any row has one the random-mask baseline
/// (`random_split`: the mean probability that a random mask with a seed's last per-layer
/// counts splits, with its Monte-Carlo interval), active weights at the split (mean [min-max]) against the
/// weights remaining then (median).
pub fn results_table(rows: &[ResultRow]) -> String {
    if rows.is_empty() {
        return "no finished tasks yet\n".to_string();
    }
    let data_seeds_differ = rows.iter().any(|r| r.data_seed != rows[0].data_seed);
    let controls = controls_set(rows);
    let with_baseline = rows.iter().any(|r| r.baseline.is_some());
    let settings: Vec<usize> = ["shape", "extension_level", "weights", "levels", "rate"]
        .into_iter()
        .chain(["target", "scope"])
        .chain(data_seeds_differ.then_some("data_seed"))
        .chain(["seeds_done", "seeds_total"])
        .map(column)
        .collect();
    // The controls go after the scope, where a sweep uses them.
    let after_scope = 7;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let all = result_cells(r, Some(3));
            let (lo, hi) = r.counts.separated.ci;
            let active = match (
                r.active_at_split_mean,
                r.active_at_split_min,
                r.active_at_split_max,
            ) {
                (Some(mean), Some(min), Some(max)) => format!("{mean:.0} [{min}-{max}]"),
                _ => String::new(),
            };
            let mut cells: Vec<String> = settings.iter().map(|&i| all[i].clone()).collect();
            if controls {
                cells.splice(after_scope..after_scope, control_cells(r, Some(3)));
            }
            cells.extend([
                format!("{:.3}", r.frac_separated),
                format!("[{lo:.2},{hi:.2}]"),
            ]);
            if with_baseline {
                cells.extend(match r.baseline {
                    Some(b) => [
                        format!("{:.3}", b.split.frac),
                        format!("[{:.3},{:.3}]", b.split.ci.0, b.split.ci.1),
                    ],
                    None => [String::new(), String::new()],
                });
            }
            cells.extend([
                format!("{:.3}", r.frac_separated_degraded),
                format!("{:.3}", r.frac_interconnected),
                format!("{:.3}", r.frac_degraded_unsplit),
                active,
                opt(r.remaining_at_split_median),
                opt(r.first_split_level_median),
                all[column("test_accuracy")].clone(),
                all[column("engine")].clone(),
            ]);
            cells
        })
        .collect();
    let mut headers = vec![
        "shape", "ext", "weights", "levels", "rate", "target", "scope",
    ];
    if controls {
        headers.extend(CONTROL_COLUMNS);
    }
    if data_seeds_differ {
        headers.push("data_seed");
    }
    headers.extend(["done", "of", "sep", "sep_95%_ci"]);
    if with_baseline {
        headers.extend(["random_split", "random_95%_ci"]);
    }
    headers.extend([
        "sep>deg",
        "inter",
        "deg",
        "active@split",
        "remaining@split",
        "split_level",
        "test_accuracy",
        "engine",
    ]);
    table(&headers, &cells)
}

/// Aggregate rows as CSV with a header line (test accuracies space-separated in one field).
///
/// The last columns are the 95% Wilson intervals of the fractions: `frac_split_ci_lo`,
/// `frac_split_ci_hi`, then the same for ever split, connected, degraded and the four
/// outcomes, then the counts behind the four outcomes (`separated`, `separated_degraded`,
/// `interconnected`, `degraded_unsplit`: seeds of `seeds_done`), then the random-mask
/// baseline ([`BASELINE_COLUMNS`], empty where there is none), and, where a row leaves the
/// protocol's value of a control, the controls `method`, `coupling` (degrees) and
/// `rewind_epochs` (so the results of sweeps without controls keep their columns).
pub fn results_csv(rows: &[ResultRow]) -> String {
    let controls = controls_set(rows);
    let mut out = RESULT_COLUMNS.join(",");
    for key in INTERVAL_KEYS {
        out.push_str(&format!(",{key}_ci_lo,{key}_ci_hi"));
    }
    for outcome in Outcome::ALL {
        out.push_str(&format!(",{}", outcome.as_str()));
    }
    out.push_str(&format!(",{}", BASELINE_COLUMNS.join(",")));
    if controls {
        out.push_str(&format!(",{}", CONTROL_COLUMNS.join(",")));
    }
    out.push('\n');
    for r in rows {
        let mut cells: Vec<String> = result_cells(r, None).into_iter().map(csv_field).collect();
        for (_, (lo, hi)) in result_intervals(r) {
            cells.push(format!("{lo}"));
            cells.push(format!("{hi}"));
        }
        for (_, k) in outcome_counts(r) {
            cells.push(k.to_string());
        }
        cells.extend(baseline_cells(r.baseline.as_ref()));
        if controls {
            cells.extend(control_cells(r, None));
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The random-mask baseline's columns in `results --format csv` and keys in JSON
/// (`crate::baseline`): the seeds it counts, the draws per seed, the mean probabilities split,
/// connected and degraded, and the split probability's Monte-Carlo interval.
pub const BASELINE_COLUMNS: [&str; 7] = [
    "baseline_runs",
    "baseline_draws",
    "frac_split_random",
    "frac_split_random_ci_lo",
    "frac_split_random_ci_hi",
    "frac_connected_random",
    "frac_degraded_random",
];

/// The baseline's keys of a JSON row or group: `baseline_runs`, `baseline_draws`,
/// `frac_split_random` with `frac_split_random_ci`, `frac_connected_random`,
/// `frac_degraded_random`.
fn insert_baseline_json(object: &mut Map<String, Value>, b: &BaselineStats) {
    object.insert("baseline_runs".into(), json!(b.runs));
    object.insert("baseline_draws".into(), json!(b.draws));
    object.insert("frac_split_random".into(), json!(b.split.frac));
    object.insert(
        "frac_split_random_ci".into(),
        json!([b.split.ci.0, b.split.ci.1]),
    );
    object.insert("frac_connected_random".into(), json!(b.connected.frac));
    object.insert("frac_degraded_random".into(), json!(b.degraded.frac));
}

fn baseline_cells(b: Option<&BaselineStats>) -> Vec<String> {
    match b {
        Some(b) => vec![
            b.runs.to_string(),
            b.draws.to_string(),
            format!("{}", b.split.frac),
            format!("{}", b.split.ci.0),
            format!("{}", b.split.ci.1),
            format!("{}", b.connected.frac),
            format!("{}", b.degraded.frac),
        ],
        None => vec![String::new(); BASELINE_COLUMNS.len()],
    }
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
/// `frac_split_ci`, `frac_ever_split_ci`, `frac_connected_ci`, `frac_degraded_ci`, and the
/// same for the four outcomes (`frac_separated_ci`, ...; `[lo, hi]`), and the counts behind the
/// four outcomes (`separated`, `separated_degraded`, `interconnected`, `degraded_unsplit`),
/// and where there is one the random-mask baseline: `baseline_runs`, `baseline_draws`,
/// `frac_split_random` with `frac_split_random_ci`, `frac_connected_random`,
/// `frac_degraded_random`.
pub fn results_json(rows: &[ResultRow]) -> Result<String, serde_json::Error> {
    let mut values = Vec::with_capacity(rows.len());
    for r in rows {
        let mut value = serde_json::to_value(r)?;
        if let Value::Object(object) = &mut value {
            for (key, (lo, hi)) in result_intervals(r) {
                object.insert(format!("{key}_ci"), serde_json::json!([lo, hi]));
            }
            for (key, k) in outcome_counts(r) {
                object.insert(key.to_string(), serde_json::json!(k));
            }
            if let Some(b) = &r.baseline {
                insert_baseline_json(object, b);
            }
        }
        values.push(value);
    }
    serde_json::to_string_pretty(&values)
}

/// The 95% Wilson intervals of a row's fractions, keyed by the fraction's name.
const INTERVAL_KEYS: [&str; 8] = [
    "frac_split",
    "frac_ever_split",
    "frac_connected",
    "frac_degraded",
    "frac_separated",
    "frac_separated_degraded",
    "frac_interconnected",
    "frac_degraded_unsplit",
];

fn result_intervals(r: &ResultRow) -> [(&'static str, (f64, f64)); 8] {
    let c = &r.counts;
    let cis = [
        c.split.ci,
        c.ever_split.ci,
        c.connected.ci,
        c.degraded.ci,
        c.separated.ci,
        c.separated_degraded.ci,
        c.interconnected.ci,
        c.degraded_unsplit.ci,
    ];
    std::array::from_fn(|i| (INTERVAL_KEYS[i], cis[i]))
}

/// The counts of the four outcomes of a row, keyed by the outcome's name.
fn outcome_counts(r: &ResultRow) -> [(&'static str, usize); 4] {
    let c = &r.counts;
    [
        (Outcome::Separated.as_str(), c.separated.k),
        (Outcome::SeparatedDegraded.as_str(), c.separated_degraded.k),
        (Outcome::Interconnected.as_str(), c.interconnected.k),
        (Outcome::DegradedUnsplit.as_str(), c.degraded_unsplit.k),
    ]
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
    use crate::stats::{group_by, Axis};

    #[test]
    fn grouped_outputs_carry_the_baseline_where_filled() {
        let mut tasks = crate::export::tests::sample_tasks();
        for t in &mut tasks {
            for (l, level) in t.levels.iter_mut().enumerate() {
                let masks = shared::synthetic::synthetic_masks(&t.spec, l);
                level.kept_per_layer = masks.iter().map(|m| m.kept.len()).collect();
            }
        }
        let mut groups = group_by(&tasks, &[Axis::ExtensionLevel]);
        assert!(!groups_table(&groups).contains("random_split"));
        assert!(!groups_csv(&groups).contains("frac_split_random"));
        crate::baseline::fill(&mut groups, &tasks, 200);
        for g in &groups {
            let members: Vec<&crate::data::TaskResult> = tasks
                .iter()
                .filter(|t| Axis::ExtensionLevel.value(&t.spec) == g.key[0].1)
                .collect();
            assert!(g.baseline.is_some());
            assert_eq!(g.baseline, crate::baseline::of_group(&members, 200));
        }
        assert!(groups_table(&groups).contains("random_split"));
        assert_eq!(groups_json(&groups)[0]["baseline_draws"], json!(200));
        let csv = groups_csv(&groups);
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert!(header.ends_with(&BASELINE_COLUMNS.join(",")), "{header}");
        let width = header.split(',').count();
        for line in lines {
            // Shapes are quoted: count the fields outside quotes.
            let fields = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes())
                .records()
                .next()
                .unwrap()
                .unwrap()
                .len();
            assert_eq!(fields, width, "{line}");
        }
    }

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
    fn data_seeds_are_grid_points_and_shown_where_they_differ() {
        let yaml = "name: t\nmodel:\n  shape: [4, 8, 8, 2]\npruning: { levels: 2, target: 50 }\ndata: { seed: [0, 3] }\nseeds: 2\n";
        let tasks = crate::plot::fixtures::synthetic_sweep(yaml);
        let rows = ResultRow::of_tasks(&tasks);
        assert_eq!(rows.len(), 2, "one grid point per data seed");
        assert_eq!((rows[0].data_seed, rows[1].data_seed), (0, 3));
        assert!(rows.iter().all(|r| r.seeds_done == 2));
        let text = results_table(&rows);
        let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header[7..9], ["data_seed", "done"], "{text}");
        let at = text.find("data_seed").unwrap();
        let second = text.lines().nth(2).unwrap();
        assert!(second[at..].starts_with("3 "), "{text}");
        // One data seed: no column in the text table; CSV and JSON always carry it.
        let one = results_table(&rows[1..]);
        assert!(!one.contains("data_seed"), "{one}");
        let csv = results_csv(&rows[1..]);
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let at = header.iter().position(|&c| c == "data_seed").unwrap();
        // The shape, quoted, is the first field: the others follow its closing quote.
        let row = csv.lines().nth(1).unwrap().split_once("\",").unwrap().1;
        assert_eq!(row.split(',').nth(at - 1), Some("3"), "{csv}");
        let json: Value = serde_json::from_str(&results_json(&rows).unwrap()).unwrap();
        assert_eq!(json[1]["data_seed"], json!(3));
        // Grouping by the data seed pools the model seeds of each data set.
        let groups = group_by(&tasks, &[Axis::DataSeed]);
        assert_eq!(groups.len(), 2);
        assert_eq!(Axis::parse("data").unwrap(), Axis::DataSeed);
    }

    const CONTROLS: &str = "name: t\nmodel:\n  shape: [4, 8, 8, 2]\npruning: { levels: 2, target: 50, method: [magnitude, random] }\ndata: { coupling: [0, 45] }\ntrain: { rewind_epochs: [0, 3] }\nseeds: 2\n";

    #[test]
    fn the_controls_are_grid_points_columns_and_axes() {
        let tasks = crate::plot::fixtures::synthetic_sweep(CONTROLS);
        assert_eq!(tasks.len(), 16);
        let rows = ResultRow::of_tasks(&tasks);
        assert_eq!(rows.len(), 8, "one grid point per setting of the controls");
        let settings: Vec<(&str, f64, usize)> = rows
            .iter()
            .map(|r| (r.method.as_str(), r.coupling, r.rewind_epochs))
            .collect();
        assert_eq!(settings[0], ("magnitude", 0.0, 0));
        assert_eq!(settings[1], ("magnitude", 0.0, 3));
        assert_eq!(settings[7], ("random", 45.0, 3));
        assert!(rows.iter().all(|r| r.seeds_done == 2));
        let text = results_table(&rows);
        let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header[6..11],
            ["scope", "method", "coupling", "rewind_epochs", "done"],
            "{text}"
        );
        let last = text.lines().last().unwrap();
        assert!(last.contains(" random ") && last.contains(" 45 "), "{text}");
        let csv = results_csv(&rows);
        assert!(
            csv.lines()
                .next()
                .unwrap()
                .ends_with(",method,coupling,rewind_epochs"),
            "{csv}"
        );
        assert!(
            csv.lines().last().unwrap().ends_with(",random,45,3"),
            "{csv}"
        );
        let json: Value = serde_json::from_str(&results_json(&rows).unwrap()).unwrap();
        assert_eq!(json[7]["method"], json!("random"));
        assert_eq!(json[7]["coupling"], json!(45.0));
        assert_eq!(json[7]["rewind_epochs"], json!(3));
        // `results --by method` (and coupling, rewind): the other settings pooled.
        for (name, axis, values) in [
            (
                "method",
                Axis::Method,
                [json!("magnitude"), json!("random")],
            ),
            ("coupling", Axis::Coupling, [json!(0.0), json!(45.0)]),
            ("rewind", Axis::RewindEpochs, [json!(0), json!(3)]),
        ] {
            assert_eq!(Axis::parse(name).unwrap(), axis);
            let groups = group_by(&tasks, &[axis]);
            assert_eq!(groups.len(), 2, "{name}");
            assert!(groups.iter().all(|g| g.tasks_total == 8));
            let json = groups_json(&groups);
            assert_eq!(
                [json[0][axis.name()].clone(), json[1][axis.name()].clone()],
                values
            );
        }
        // A sweep without controls: no control columns (its results keep their bytes).
        let plain = crate::plot::fixtures::synthetic_sweep(
            "name: t\nmodel:\n  shape: [4, 8, 8, 2]\npruning: { levels: 2, target: 50 }\nseeds: 2\n",
        );
        let rows = ResultRow::of_tasks(&plain);
        assert!(!results_csv(&rows).contains("method"));
        assert!(!results_table(&rows).contains("method"));
    }

    #[test]
    fn the_long_export_carries_the_controls_through_a_csv_round_trip() {
        let tasks = crate::plot::fixtures::synthetic_sweep(CONTROLS);
        let table = crate::export::long_table("t", &tasks);
        let mut csv = Vec::new();
        crate::export::write_csv(&table, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let at = header.iter().position(|&c| c == "method").unwrap();
        assert_eq!(
            header[at - 1..at + 3],
            ["data_seed", "method", "coupling", "rewind_epochs"]
        );
        let specs = shared::sweep::Sweep::from_yaml(CONTROLS, "t.yaml")
            .unwrap()
            .expand()
            .unwrap();
        let back = crate::import::long_csv(specs, &csv).unwrap();
        assert_eq!(back, tasks);
        assert_eq!(ResultRow::of_tasks(&back), ResultRow::of_tasks(&tasks));
        // The columns read back as the settings they came from.
        let read = crate::export::read_csv(&table.columns, csv.as_bytes()).unwrap();
        assert_eq!(read, table);
    }

    #[test]
    fn spreads_read() {
        assert_eq!(spread_text(None), "");
        let s = Spread {
            n: 3,
            median: 5.0,
            mean: 5.5,
            min: 2.0,
            max: 9.5,
        };
        assert_eq!(spread_text(Some(s)), "5 [2-9.5]");
    }
}
