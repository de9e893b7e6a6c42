//! The reproduction's committed figures and tables (`docs/reproduction/`) regenerate byte for
//! byte from the committed long CSVs and the sweep files, as `docs/reproduction.md` promises:
//! every folder there holding a `NAME-long.csv` is the export of sweep `sweeps/NAME.yaml`
//! (or of `NAME.yaml` beside it); its `NAME-results.csv` and every figure of `coordinator plot`
//! that the folder holds must be what the code draws from that CSV today.

use std::path::{Path, PathBuf};

use analysis::plot::{sweep_figures, Options};
use shared::sweep::Sweep;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `(folder, sweep name)` with a long CSV under `docs/reproduction/` and
/// `docs/controls/`.
fn exports() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![
        root().join("docs/reproduction"),
        root().join("docs/controls"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read docs/reproduction") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix("-long.csv"))
            {
                found.push((dir.clone(), name.to_string()));
            }
        }
    }
    found.sort();
    found
}

fn sweep_file(dir: &Path, name: &str) -> PathBuf {
    let beside = dir.join(format!("{name}.yaml"));
    if beside.exists() {
        beside
    } else {
        root().join(format!("sweeps/{name}.yaml"))
    }
}

#[test]
fn committed_figures_and_tables_regenerate_from_the_committed_csvs() {
    let exports = exports();
    assert!(!exports.is_empty(), "no long CSV under docs/reproduction");
    for (dir, name) in exports {
        let sweep = Sweep::from_path(&sweep_file(&dir, &name)).unwrap_or_else(|e| panic!("{e}"));
        let csv = std::fs::read_to_string(dir.join(format!("{name}-long.csv"))).unwrap();
        let tasks = analysis::import::long_csv(sweep.expand().unwrap(), &csv)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let results = dir.join(format!("{name}-results.csv"));
        let committed = std::fs::read_to_string(&results)
            .unwrap_or_else(|e| panic!("{}: {e}", results.display()));
        let rows = analysis::tables::ResultRow::of_tasks(&tasks);
        assert!(
            committed == analysis::tables::results_csv(&rows),
            "{} differs from what its long CSV gives (redraw: cargo run -p analysis --example \
             redraw)",
            results.display()
        );
        let options = Options {
            sweep: sweep.name.clone(),
            shape: None,
            png: false,
        };
        let mut compared = 0;
        for figure in sweep_figures(&tasks, &options).unwrap() {
            let path = dir.join(format!("{}.svg", figure.name));
            if let Ok(committed) = std::fs::read_to_string(&path) {
                assert!(
                    committed == figure.svg,
                    "{} differs from what its long CSV draws (redraw: cargo run -p analysis \
                     --example redraw)",
                    path.display()
                );
                compared += 1;
            }
        }
        assert!(compared >= 3, "{}: only {compared} figures", dir.display());
    }
}

#[test]
fn a_csv_of_another_sweep_is_refused_naming_the_line() {
    let export = root().join("docs/reproduction/engine-2/poster-extension-long.csv");
    let csv = std::fs::read_to_string(export).unwrap();
    let other = Sweep::from_path(&root().join("sweeps/poster-20-levels.yaml")).unwrap();
    let err = analysis::import::long_csv(other.expand().unwrap(), &csv).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("line 2: task 0 has id"), "{text}");
    assert!(text.contains("another sweep's"), "{text}");
    let none = analysis::import::long_csv(Vec::new(), "sweep,task_id\n").map(|t| t.len());
    assert_eq!(none, Ok(0));
    let err = analysis::import::long_csv(Vec::new(), "sweep\nx\n").unwrap_err();
    assert_eq!(err.to_string(), "the CSV has no column \"task_index\"");
    let err = analysis::import::long_csv(Vec::new(), "").unwrap_err();
    assert_eq!(err, analysis::import::ImportError::Empty);
}

#[test]
fn the_cost_of_the_engine_2_run_is_what_its_export_sums_to() {
    let export = root().join("docs/reproduction/engine-2/poster-extension-long.csv");
    let csv = std::fs::read_to_string(export).unwrap();
    let sweep = Sweep::from_path(&root().join("sweeps/poster-extension.yaml")).unwrap();
    let tasks = analysis::import::long_csv(sweep.expand().unwrap(), &csv).unwrap();
    let (total, parts) = analysis::stats::cost(&tasks);
    // docs/reproduction.md: 1,363 levels, 1,140,903 epochs, 17.9 h of training; issue 20:
    // about 501,000 GFLOP, 1.4 core-hours at 100 GFLOP/s a core.
    assert_eq!(
        (total.tasks, total.levels, total.epochs),
        (104, 1363, 1_140_903)
    );
    assert!(
        (total.seconds / 3600.0 - 17.9).abs() < 0.05,
        "{}",
        total.seconds
    );
    assert!((total.flop / 1e9 - 501_425.8).abs() < 0.1, "{}", total.flop);
    assert!((total.limit_core_hours() - 1.393).abs() < 0.001);
    assert_eq!(parts.len(), 26);
    assert!(parts
        .windows(2)
        .all(|w| w[0].cost.seconds >= w[1].cost.seconds));
    let summed: f64 = parts.iter().map(|s| s.cost.flop).sum();
    assert!((summed - total.flop).abs() < 1.0);
    let table = analysis::tables::cost_table(&total, &parts);
    assert!(
        table.starts_with("104 tasks, 1363 levels, 1140903 epochs"),
        "{table}"
    );
    let csv = analysis::tables::cost_csv(&total, &parts);
    assert_eq!(csv.lines().count(), 1 + 26 + 1);
    assert!(csv
        .lines()
        .last()
        .unwrap()
        .starts_with("total,,104,1363,1140903,"));
}

#[test]
fn the_random_mask_baseline_survives_a_csv_round_trip() {
    let dir = root().join("docs/reproduction/poster-levels");
    let sweep = Sweep::from_path(&root().join("sweeps/poster-levels.yaml")).unwrap();
    let csv = std::fs::read_to_string(dir.join("poster-levels-long.csv")).unwrap();
    let tasks = analysis::import::long_csv(sweep.expand().unwrap(), &csv).unwrap();
    let rows = analysis::tables::ResultRow::of_tasks_with(&tasks, 200);
    assert!(rows.iter().all(|r| r.baseline.is_some_and(|b| b.runs == 4)));
    // Written again and read back: the same counts, so the same baseline.
    let mut again = Vec::new();
    let table = analysis::export::long_table(&sweep.name, &tasks);
    analysis::export::write_csv(&table, &mut again).unwrap();
    let again = String::from_utf8(again).unwrap();
    let back = analysis::import::long_csv(sweep.expand().unwrap(), &again).unwrap();
    assert_eq!(back, tasks);
    assert_eq!(analysis::tables::ResultRow::of_tasks_with(&back, 200), rows);
    // The export's baseline columns are those of the last level's counts.
    let last = table
        .rows
        .iter()
        .find(|r| {
            r[table
                .columns
                .iter()
                .position(|c| c.name == "last_level")
                .unwrap()]
                == analysis::export::Cell::Bool(true)
        })
        .unwrap();
    let draws = table
        .columns
        .iter()
        .position(|c| c.name == "random_draws")
        .unwrap();
    assert_eq!(last[draws], analysis::export::Cell::Int(1000));
    // An export from before the counts were: read, with no baseline.
    let old = std::fs::read_to_string(
        root().join("docs/reproduction/engine-2/poster-extension-long.csv"),
    )
    .unwrap();
    let ext = Sweep::from_path(&root().join("sweeps/poster-extension.yaml")).unwrap();
    let old = analysis::import::long_csv(ext.expand().unwrap(), &old).unwrap();
    let rows = analysis::tables::ResultRow::of_tasks(&old);
    assert!(!rows.is_empty() && rows.iter().all(|r| r.baseline.is_none()));
}
