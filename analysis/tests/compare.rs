//! The cross-experiment figure (`analysis::plot::compare`): every split run of every sweep
//! appears once with its sweep's marker and runs that never split do not; the long CSV and
//! the tasks give the same rows (and the same SVG); a malformed CSV is refused with its line
//! and column, never a panic.

use std::collections::BTreeSet;

use analysis::export;
use analysis::plot::compare::{self, CompareFigure, CsvError, SweepRuns, XAxis, MARKS};
use analysis::TaskResult;
use shared::graph::Status::{self, Connected as C, Degraded as D, Split as S};
use shared::metrics::LevelMetrics;
use shared::spec::{DataSpec, PruneSpec, Scope, TaskSpec, TrainSpec};

/// Shape (4, w, w, 2) pruned in `levels` levels, halving the weights at each.
fn spec(width: usize, levels: usize, seed: u64) -> TaskSpec {
    let dense = 4 * width + width * width + 2 * width;
    let remaining: Vec<usize> = (0..=levels).map(|l| dense >> l).collect();
    TaskSpec {
        data: DataSpec::protocol(),
        shape: vec![4, width, width, 2],
        extension_level: None,
        train: TrainSpec::protocol(),
        prune: PruneSpec {
            scope: Scope::Global,
            method: Default::default(),
            rate: 0.5,
            levels,
            target: remaining[levels],
            remaining,
            stop_at_first_degraded: false,
            stop_at_first_split: false,
        },
        seed,
    }
}

/// A task with one level per status: the schedule's remaining weights, a third of them active
/// (less the seed, so that seeds differ).
fn task(idx: usize, spec: TaskSpec, done: bool, statuses: &[Status]) -> TaskResult {
    let levels = statuses
        .iter()
        .enumerate()
        .map(|(level, &status)| {
            let remaining = spec.prune.remaining[level];
            let active = remaining / 3 - spec.seed as usize;
            LevelMetrics {
                level,
                remaining_weights: remaining,
                active_weights: active,
                zombie_weights: 0,
                inactive_weights: remaining - active,
                active_neurons: 10,
                zombie_neurons: 0,
                inactive_neurons: 0,
                components: 2,
                status,
                coverage: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
                test_accuracy: vec![0.9, 0.95],
                test_loss: 0.25,
                train_loss: 0.125,
                epochs: 7,
                seconds: 0.5,
                engine: 4,
                arithmetic: String::new(),
                kept_per_layer: Vec::new(),
            }
        })
        .collect();
    TaskResult {
        idx,
        spec,
        done,
        levels,
    }
}

/// Three tiny sweeps: seeds of one shape (one never splits, one unfinished); two shapes, the
/// smaller the first sweep's; one shape over 1, 2 and 3 levels (one never splits).
fn sweeps() -> Vec<(&'static str, Vec<TaskResult>)> {
    vec![
        (
            "seeds",
            vec![
                task(0, spec(8, 3, 0), true, &[C, S, S, S]),
                task(1, spec(8, 3, 1), true, &[C, C, C, C]),
                task(2, spec(8, 3, 2), true, &[C, C, S, D]),
                task(3, spec(8, 3, 3), false, &[C, S]),
            ],
        ),
        (
            "sizes",
            vec![
                task(0, spec(8, 3, 0), true, &[C, C, S, S]),
                task(1, spec(16, 3, 0), true, &[C, S, C, C]),
                task(2, spec(16, 3, 1), true, &[C, D, D, D]),
            ],
        ),
        (
            "levels",
            vec![
                task(0, spec(12, 1, 0), true, &[C, S]),
                task(1, spec(12, 2, 0), true, &[C, C, S]),
                task(2, spec(12, 3, 0), true, &[C, C, C, C]),
            ],
        ),
    ]
}

fn runs_of(sweeps: &[(&str, Vec<TaskResult>)]) -> Vec<SweepRuns> {
    sweeps
        .iter()
        .map(|(name, tasks)| SweepRuns::from_tasks(name, tasks))
        .collect()
}

/// `(sweep, task id)` of the finished tasks whose statuses include a split.
fn split_ids(sweeps: &[(&str, Vec<TaskResult>)], split: bool) -> BTreeSet<(usize, String)> {
    let mut ids = BTreeSet::new();
    for (i, (_, tasks)) in sweeps.iter().enumerate() {
        for t in tasks.iter().filter(|t| t.done) {
            if t.levels.iter().any(|l| l.status == S) == split {
                ids.insert((i, t.spec.id()));
            }
        }
    }
    ids
}

#[test]
fn every_split_run_appears_once_with_its_sweeps_marker() {
    let given = sweeps();
    let runs = runs_of(&given);
    for x_axis in XAxis::ALL {
        let figure = CompareFigure::new(String::new(), &runs, x_axis);
        let seen: Vec<(usize, String)> = figure
            .points
            .iter()
            .map(|p| (p.sweep, p.task_id.clone()))
            .collect();
        let once: BTreeSet<(usize, String)> = seen.iter().cloned().collect();
        assert_eq!(once.len(), seen.len(), "a run appears twice: {seen:?}");
        assert_eq!(once, split_ids(&given, true));
        assert!(once.is_disjoint(&split_ids(&given, false)));
        let marks: Vec<_> = figure.sweeps.iter().map(|s| s.mark).collect();
        assert_eq!(marks, MARKS[..3].to_vec());
        let colours: BTreeSet<_> = figure
            .sweeps
            .iter()
            .map(|s| format!("{:?}", s.colour))
            .collect();
        assert_eq!(colours.len(), 3, "the sweeps share a colour");
        let counts: Vec<(&str, usize, usize)> = figure
            .sweeps
            .iter()
            .map(|s| (s.name.as_str(), s.split, s.finished))
            .collect();
        assert_eq!(
            counts,
            vec![("seeds", 2, 3), ("sizes", 2, 3), ("levels", 2, 3)]
        );
    }
}

#[test]
fn points_read_the_first_split_and_runs_at_one_x_do_not_overlap() {
    let runs = runs_of(&sweeps());
    let dense = CompareFigure::new(String::new(), &runs, XAxis::Dense);
    let first = &dense.points[0];
    // Sweep "seeds", seed 0: split at level 1 of (4, 8, 8, 2), 112 weights dense.
    assert_eq!((first.x, first.y), (112.0, (56 / 3) as f64));
    let remaining = CompareFigure::new(String::new(), &runs, XAxis::Remaining);
    assert_eq!(remaining.points[0].x, 56.0);
    // Both "seeds" runs and the "sizes" run of the same shape sit at x = 112, apart.
    let at_112: Vec<f64> = dense
        .points
        .iter()
        .filter(|p| p.x == 112.0)
        .map(|p| p.offset)
        .collect();
    assert_eq!(at_112.len(), 3);
    let distinct: BTreeSet<String> = at_112.iter().map(|o| format!("{o:.6}")).collect();
    assert_eq!(distinct.len(), 3, "{at_112:?}");
    assert!(at_112.iter().all(|o| o.abs() <= 1.0));
    // The "levels" sweep: one dense count, ordered by the number of levels.
    let levels: Vec<(usize, f64)> = dense
        .points
        .iter()
        .filter(|p| p.sweep == 2)
        .map(|p| (p.levels, p.offset))
        .collect();
    assert_eq!(levels, vec![(1, -0.8), (2, 0.8)]);
    // Medians of the active weights per sweep.
    // (4, 12, 12, 2) has 216 weights: 108 remain at level 1 (36 active), 54 at level 2 (18).
    assert_eq!(dense.sweeps[2].median, Some(27.0));
}

#[test]
fn the_svg_names_each_sweep_with_its_counts_and_axes() {
    let figures = compare::figures(&runs_of(&sweeps()), true).unwrap();
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["compare", "compare-remaining"]);
    for f in &figures {
        for text in [
            "seeds: 2 of 3 runs split, median",
            "sizes: 2 of 3 runs split, median",
            "levels: 2 of 3 runs split, median",
            "active weights at the first split (log scale)",
        ] {
            assert!(f.svg.contains(text), "{} lacks {text:?}", f.name);
        }
        assert!(f.png.is_some());
        assert!(f.title.contains("seeds, sizes, levels"), "{}", f.title);
    }
    assert!(figures[0].svg.contains("weights of the dense network"));
    assert!(figures[1]
        .svg
        .contains("remaining weights at the first split level"));
    assert!(figures[1].svg.contains("all remaining weights active"));
}

#[test]
fn nothing_to_plot_without_a_split() {
    let never = vec![task(0, spec(8, 1, 0), true, &[C, C])];
    let error = compare::figures(&[SweepRuns::from_tasks("flat", &never)], false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "nothing to plot: no finished run split in flat (1 finished)"
    );
    assert!(compare::figures(&[], false).is_err());
}

fn csv_of(name: &str, tasks: &[TaskResult]) -> String {
    let mut bytes = Vec::new();
    export::write_csv(&export::long_table(name, tasks), &mut bytes).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Synthetic levels of a small extension sweep (every level of every task), plus the
/// hand-built tasks of `sweeps()` after them (each settings once: a sweep's ids are distinct).
fn synthetic() -> Vec<TaskResult> {
    let yaml = "name: t\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: [0, 2, 4]\nseeds: 2\n";
    let sweep = shared::sweep::Sweep::from_yaml(yaml, "t.yaml").unwrap();
    let mut tasks: Vec<TaskResult> = sweep
        .expand()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(idx, spec)| {
            let levels = (0..=spec.prune.levels)
                .map(|l| {
                    let masks = shared::synthetic::synthetic_masks(&spec, l);
                    shared::synthetic::synthetic_metrics(&spec, l, &masks)
                })
                .collect();
            TaskResult {
                idx,
                done: idx != 1,
                spec,
                levels,
            }
        })
        .collect();
    let mut ids: BTreeSet<String> = tasks.iter().map(|t| t.spec.id()).collect();
    for t in sweeps().into_iter().flat_map(|(_, tasks)| tasks) {
        if ids.insert(t.spec.id()) {
            tasks.push(TaskResult {
                idx: tasks.len(),
                ..t
            });
        }
    }
    tasks
}

#[test]
fn the_long_csv_and_the_tasks_give_the_same_runs_and_svg() {
    // A name the CSV must quote: a comma and a double quote.
    let name = "poster, \"levels\"";
    let tasks = synthetic();
    let text = csv_of(name, &tasks);
    assert!(text.contains("\"(4,8,8,2)\""), "the shape is quoted");
    let from_tasks = SweepRuns::from_tasks(name, &tasks);
    // The synthetic trajectories never split: the hand-built tasks' five splits.
    assert_eq!(from_tasks.runs.len(), 5, "{from_tasks:?}");
    assert_eq!(from_tasks.finished, tasks.iter().filter(|t| t.done).count());
    let from_csv = SweepRuns::from_csv(&text).unwrap();
    assert_eq!(from_csv, vec![from_tasks.clone()]);
    let a = compare::figures(&[from_tasks], false).unwrap();
    let b = compare::figures(&from_csv, false).unwrap();
    assert_eq!(a, b);
    // Two sweeps in one CSV (concatenated exports without the second header), in order.
    let given = sweeps();
    let second = csv_of(given[1].0, &given[1].1);
    let both = format!(
        "{}{}",
        csv_of(given[0].0, &given[0].1),
        second.split_once('\n').unwrap().1
    );
    assert_eq!(SweepRuns::from_csv(&both).unwrap(), runs_of(&given[..2]));
}

/// The CSV of `sweeps()`'s first sweep with one cell of data row `row` (0-based) replaced.
fn with_cell(row: usize, column: &str, value: &str) -> String {
    let (name, tasks) = &sweeps()[0];
    let mut table = export::long_table(name, tasks);
    let at = table.columns.iter().position(|c| c.name == column).unwrap();
    table.rows[row][at] = export::Cell::Text(value.to_string());
    let mut bytes = Vec::new();
    export::write_csv(&table, &mut bytes).unwrap();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_malformed_csv_is_refused_with_its_line_and_column() {
    let bad_seed = SweepRuns::from_csv(&with_cell(1, "seed", "x")).unwrap_err();
    assert_eq!(
        bad_seed,
        CsvError::Value {
            line: 3,
            column: "seed",
            value: "x".into(),
            expected: "a whole number"
        }
    );
    assert_eq!(
        bad_seed.to_string(),
        "line 3, column seed: \"x\" is not a whole number"
    );
    // Row 1 is the first split of task 0 (every row of it carries the summary).
    let no_active = SweepRuns::from_csv(&with_cell(1, "active_at_first_split", "")).unwrap_err();
    assert!(matches!(
        no_active,
        CsvError::Missing {
            line: 3,
            column: "active_at_first_split",
            level: 1
        }
    ));
    let done = SweepRuns::from_csv(&with_cell(0, "task_done", "maybe")).unwrap_err();
    assert!(
        done.to_string()
            .starts_with("line 2, column task_done: \"maybe\""),
        "{done}"
    );

    let good = csv_of(sweeps()[0].0, &sweeps()[0].1);
    let renamed = good.replacen("remaining_at_first_split", "remaining", 1);
    let missing = SweepRuns::from_csv(&renamed).unwrap_err();
    assert_eq!(
        missing,
        CsvError::MissingColumn {
            column: "remaining_at_first_split"
        }
    );
    assert!(missing
        .to_string()
        .contains("no column \"remaining_at_first_split\""));
    assert!(matches!(
        SweepRuns::from_csv("").unwrap_err(),
        CsvError::MissingColumn { column: "sweep" }
    ));
    let (lines, fields) = (
        good.lines().count(),
        good.lines().next().unwrap().split(',').count(),
    );
    let short = SweepRuns::from_csv(&format!("{good}a,b,c\n")).unwrap_err();
    let expected = format!("line {}: 3 fields where the header has {fields}", lines + 1);
    assert_eq!(short.to_string(), expected);
}

#[test]
fn no_prefix_of_a_csv_panics() {
    let good = csv_of(sweeps()[0].0, &sweeps()[0].1);
    let mut refused = 0;
    for (end, _) in good.char_indices() {
        if SweepRuns::from_csv(&good[..end]).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0);
}
