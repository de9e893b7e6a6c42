//! A real cluster on loopback: `coordinator serve` and `worker` processes finish
//! `sweeps/quick.yaml`, a worker that joins mid-sweep picks up work, and what the coordinator
//! stored equals what `worker train` prints for the same tasks, bit for bit (training is
//! deterministic, so a distributed run must not change a single mask or metric).

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_finish_the_quick_sweep_exactly_like_worker_train() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("cluster.db");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = coordinator(dir.path(), &db, port, &[]);

    let sweep = repo().join("sweeps/quick.yaml");
    let submitted = coordinator_cli(&[
        "submit",
        &sweep.display().to_string(),
        "--coordinator",
        &url,
    ]);
    assert!(submitted.contains("14"), "{submitted}");

    // One worker starts; a second joins once the first has finished a task.
    let mut first = worker(dir.path(), &url, "first", &[]);
    wait_until(
        Duration::from_secs(120),
        "a first finished task",
        || async {
            sweep_status(&url, "quick")
                .await
                .is_some_and(|s| s.done >= 1)
        },
    )
    .await;
    let mut second = worker(dir.path(), &url, "second", &[]);

    for w in [&mut first, &mut second] {
        let status = w.wait_for_exit(Duration::from_secs(300));
        assert!(
            status.is_some_and(|s| s.success()),
            "worker {} did not exit cleanly: {}",
            w.name,
            w.log_text()
        );
    }
    let status = sweep_status(&url, "quick").await.expect("status");
    assert_eq!(
        (status.done, status.failed, status.pending, status.leased),
        (14, 0, 0, 0)
    );
    let second_log = second.log_text();
    assert!(
        second_log.contains("task done"),
        "the worker that joined mid-sweep did no work: {second_log}"
    );

    // The same results as local runs of every task.
    let stored = stored_levels(&db, "quick");
    let local = worker_train_levels(&sweep, 14);
    assert_eq!(stored.len(), 14);
    for (i, (s, l)) in stored.iter().zip(&local).enumerate() {
        assert_eq!(s.len(), l.len(), "task {i}: level count");
        for (level, (a, b)) in s.iter().zip(l).enumerate() {
            assert_eq!(a.0, b.0, "task {i} level {level}: metrics");
            assert!(a.1 == b.1, "task {i} level {level}: masks differ");
        }
    }

    // The aggregate the CLI prints agrees with the stored levels: some of the widest shapes
    // split (the quick sweep is tuned so that they do).
    let json = coordinator_cli(&[
        "results",
        "quick",
        "--format",
        "json",
        "--coordinator",
        &url,
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).expect("results json");
    assert_eq!(rows.len(), 7);
    let ever_split: f64 = rows
        .iter()
        .map(|r| r["frac_ever_split"].as_f64().expect("a fraction"))
        .sum();
    let stored_ever_split = stored
        .iter()
        .filter(|levels| levels.iter().any(|(m, _)| m["status"] == "split"))
        .count();
    assert!(stored_ever_split > 0, "no quick task ever split");
    assert!((ever_split * 2.0 - stored_ever_split as f64).abs() < 1e-9);
}
