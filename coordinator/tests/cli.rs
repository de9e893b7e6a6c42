//! The `coordinator` binary: plan, submit, status and results against an in-process server,
//! `--db` agreeing with `--coordinator`, and one-line errors.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn plan_submit_status_and_results() {
    let t = start().await;
    let url = t.url();
    let db = t.config.db_path.display().to_string();
    let yaml = small_sweep("cli", 2, 2);
    let file = write(t.dir.path(), "cli.yaml", &yaml);

    let (ok, out, err) = coordinator(&["plan", &file, "--json"]).await;
    assert!(ok, "{err}");
    let plan: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(plan.len(), 2);
    for key in [
        "index",
        "id",
        "shape",
        "weights",
        "levels",
        "rate",
        "target",
        "data_seed",
        "method",
        "coupling",
        "rewind_epochs",
        "seed",
    ] {
        assert!(plan[0].get(key).is_some(), "plan lacks {key}");
    }
    // The table shows the controls only where a task leaves their defaults.
    let (ok, out, _) = coordinator(&["plan", &file]).await;
    assert!(ok && !out.contains("rewind_epochs"), "{out}");
    let (ok, out, _) = coordinator(&["plan", &file, "--set", "train.rewind_epochs=[0,3]"]).await;
    assert!(
        ok && out.contains("rewind_epochs") && out.contains("4 task(s)"),
        "{out}"
    );
    let ids: Vec<&str> = plan.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, plan_ids(&yaml));
    let (ok, out, _) = coordinator(&["plan", &file]).await;
    assert!(
        ok && out.contains(ids[0]) && out.contains("2 task(s)"),
        "{out}"
    );

    let (ok, out, err) = coordinator(&["submit", &file, "--coordinator", &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("2 task(s) added"), "{out}");
    let (ok, out, _) = coordinator(&["submit", &file, "--coordinator", &url]).await;
    assert!(
        ok && out.contains("0 task(s) added, 2 already there"),
        "{out}"
    );

    t.worker("w").await.drain().await.unwrap();

    let (ok, out, err) = coordinator(&["status", "cli", "--coordinator", &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("2/2"), "{out}");
    let (ok, db_status, err) = coordinator(&["status", "--db", &db]).await;
    assert!(
        ok && db_status.contains("cli") && db_status.contains("2/2"),
        "{db_status}{err}"
    );

    let (ok, grpc, err) =
        coordinator(&["results", "cli", "--format", "json", "--coordinator", &url]).await;
    assert!(ok, "{err}");
    let (ok, local, err) = coordinator(&["results", "cli", "--format", "json", "--db", &db]).await;
    assert!(ok, "{err}");
    assert_eq!(grpc, local);
    let rows: Vec<Value> = serde_json::from_str(&grpc).unwrap();
    assert_eq!(rows.len(), 1);
    for key in [
        "shape",
        "levels",
        "rate",
        "target",
        "seeds_done",
        "frac_split",
        "frac_ever_split",
        "frac_connected",
        "frac_degraded",
        "active_at_split_median",
        "test_accuracy",
    ] {
        assert!(rows[0].get(key).is_some(), "results lack {key}");
    }
    assert_eq!(rows[0]["seeds_done"], 2);
    assert_eq!(rows[0]["test_accuracy"].as_array().unwrap().len(), 2);

    let (ok, csv, _) = coordinator(&["results", "cli", "--format", "csv", "--db", &db]).await;
    assert!(ok && csv.starts_with("shape,extension_level,"), "{csv}");
    assert_eq!(csv.lines().count(), 2);
    let (ok, table, _) = coordinator(&["results", "cli", "--coordinator", &url]).await;
    assert!(ok && table.contains("(4,8,8,2)"), "{table}");
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_are_one_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", "name: bad\npruning:\n  rate: 1.5\n");
    for args in [vec!["plan", bad.as_str()], vec!["submit", bad.as_str()]] {
        let (ok, _, err) = coordinator(&args).await;
        assert!(!ok);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("bad.yaml:3:3: pruning.rate:"), "{err}");
    }
    let missing = dir.path().join("none.db").display().to_string();
    let (ok, _, err) = coordinator(&["results", "x", "--db", &missing]).await;
    assert!(
        !ok && err.lines().count() == 1 && err.contains("none.db"),
        "{err}"
    );
    let (ok, _, err) = coordinator(&["status", "--coordinator", "http://127.0.0.1:9"]).await;
    assert!(
        !ok && err.lines().count() == 1 && err.contains("cannot reach"),
        "{err}"
    );

    let t = start().await;
    let db = t.config.db_path.display().to_string();
    let (ok, _, err) = coordinator(&["results", "nope", "--db", &db]).await;
    assert!(!ok && err.contains("no sweep named \"nope\""), "{err}");
    let (ok, _, err) = coordinator(&["results", "nope", "--coordinator", &t.url()]).await;
    assert!(!ok && err.contains("no sweep named \"nope\""), "{err}");
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_closed_stdout_ends_the_output_quietly() {
    // The reader is gone before the first byte: the write meets EPIPE.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let sweep = format!("{}/../sweeps/quick.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(["plan", &sweep])
        .stdout(writer)
        .output()
        .await
        .expect("run coordinator");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
