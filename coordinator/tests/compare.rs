//! `coordinator compare`: the cross-experiment figure from long CSVs and from a database (every
//! sweep in it, read-only), the same result from both, and one-line errors.

mod common;

use std::path::Path;

use common::*;

/// The task-level columns are all a long CSV needs (two rows of task t0, as an export has one
/// per level; t1 never split; t2 is unfinished).
const HEADER: &str = "sweep,task_id,task_index,seed,shape,weights,levels,task_done,\
                      first_split_level,active_at_first_split,remaining_at_first_split\n";

fn csv(sweep: &str) -> String {
    format!(
        "{HEADER}{sweep},t0,0,0,\"(4,8,8,2)\",112,3,true,1,18,56\n\
         {sweep},t0,0,0,\"(4,8,8,2)\",112,3,true,1,18,56\n\
         {sweep},t1,1,1,\"(4,8,8,2)\",112,3,true,,,\n\
         {sweep},t2,2,2,\"(4,8,8,2)\",112,3,false,1,20,56\n"
    )
}

#[tokio::test]
async fn compare_draws_both_figures_from_long_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.csv", &csv("a"));
    let b = write(dir.path(), "b.csv", &csv("b"));
    let out = dir.path().join("figures");
    let out_s = out.display().to_string();
    let (ok, stdout, err) = coordinator(&["compare", "--out", &out_s, &a, &b]).await;
    assert!(ok, "{err}");
    let names: Vec<String> = [
        "compare.svg",
        "compare.png",
        "compare-remaining.svg",
        "compare-remaining.png",
    ]
    .iter()
    .map(|n| out.join(n).display().to_string())
    .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), names);
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(svg.contains("a: 1 of 2 runs split, median 18"), "{svg}");
    assert!(svg.contains("b: 1 of 2 runs split, median 18"));

    let (ok, _, err) = coordinator(&[
        "compare", "--out", &out_s, "--no-png", "--sweep", "b", &a, &b,
    ])
    .await;
    assert!(ok, "{err}");
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(!svg.contains("a: 1 of 2") && svg.contains("b: 1 of 2"));
}

#[tokio::test]
async fn compare_errors_say_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures").display().to_string();
    let missing = dir.path().join("missing.db").display().to_string();
    let (ok, _, err) = coordinator(&["compare", "--out", &out, &missing]).await;
    assert!(
        !ok && err.contains(&format!("input {missing} does not exist")),
        "{err}"
    );

    let short = write(
        dir.path(),
        "short.csv",
        &csv("s").replace(",remaining_at_first_split", ""),
    );
    let (ok, _, err) = coordinator(&["compare", "--out", &out, &short]).await;
    assert!(!ok && err.contains(&short), "{err}");
    assert!(
        err.contains("no column \"remaining_at_first_split\""),
        "{err}"
    );

    let flat = csv("f").replace("true,1,18,56", "true,,,");
    let flat = write(dir.path(), "flat.csv", &flat);
    let (ok, _, err) = coordinator(&["compare", "--out", &out, &flat]).await;
    assert!(!ok, "{err}");
    assert_eq!(
        err.trim(),
        "error: nothing to plot: no finished run split in f (2 finished)"
    );
    assert!(!Path::new(&out).exists());

    let a = write(dir.path(), "a.csv", &csv("a"));
    let (ok, _, err) = coordinator(&["compare", "--out", &out, "--sweep", "z", &a]).await;
    assert!(
        !ok && err.contains("no sweep z in the inputs (they hold a)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_and_its_export_give_the_same_figure() {
    let t = start().await;
    let db = t.config.db_path.display().to_string();
    let file = write(t.dir.path(), "cmp.yaml", &small_sweep("cmp", 2, 2));
    let (ok, _, err) = coordinator(&["submit", &file, "--coordinator", &t.url()]).await;
    assert!(ok, "{err}");
    t.worker("w").await.drain().await.unwrap();
    let csv = t.dir.path().join("cmp.csv").display().to_string();
    let (ok, _, err) = coordinator(&[
        "export", "cmp", "--db", &db, "--format", "csv", "--out", &csv,
    ])
    .await;
    assert!(ok, "{err}");

    // Read-only while the coordinator serves the database.
    let (from_db, from_csv) = (t.dir.path().join("db-figs"), t.dir.path().join("csv-figs"));
    let run = |out: &Path, input: &str| {
        let (out, input) = (out.display().to_string(), input.to_string());
        async move { coordinator(&["compare", "--no-png", "--out", &out, &input]).await }
    };
    let (ok_db, _, err_db) = run(&from_db, &db).await;
    let (ok_csv, _, err_csv) = run(&from_csv, &csv).await;
    assert_eq!(ok_db, ok_csv, "{err_db}{err_csv}");
    if ok_db {
        for name in ["compare.svg", "compare-remaining.svg"] {
            let read = |dir: &Path| std::fs::read(dir.join(name)).unwrap();
            assert_eq!(read(&from_db), read(&from_csv), "{name} differs");
        }
    } else {
        // Synthetic workers' tickets seldom split: then both say so, with the same counts.
        assert_eq!(err_db, err_csv);
        assert!(err_db.contains("nothing to plot: no finished run split in cmp (2 finished)"));
    }

    let (ok, _, err) = coordinator(&["compare", "--out", "x", &db, &csv]).await;
    assert!(!ok && err.contains("sweep cmp is in both"), "{err}");
    t.server.shutdown().await.unwrap();
}
