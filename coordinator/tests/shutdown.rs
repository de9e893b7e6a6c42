//! A worker told to stop (SIGTERM on preemption or scale-down) stops taking tasks, delivers
//! the levels it finished, gives its leases back and exits within its shutdown timeout; the
//! task is pending again at once, without a failed attempt, and the next lease resumes it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::sync::oneshot;

/// One task of many levels, each training long enough to be interrupted in the middle.
fn slow_sweep(name: &str) -> String {
    format!(
        "name: {name}\ndata:\n  samples: 1000\nmodel:\n  shape: [4, 8, 8, 2]\ntrain:\n  max_epochs: 300\n  patience: 10000\npruning:\n  levels: 20\n  target: 40\nseeds: 1\n"
    )
}

fn worker_config(url: &str, shutdown_timeout: Duration) -> worker::client::Config {
    let mut config = worker::client::Config::new(url);
    config.parallel = 1;
    config.threads = 1;
    config.name = "preemptible".into();
    config.shutdown_timeout = shutdown_timeout;
    config
}

/// (state, attempts) of the only task, and the outcome of its latest lease.
fn task_row(config: &coordinator::ServerConfig) -> (String, i64, Option<String>) {
    read_only(config)
        .run_blocking(|c| {
            c.query_row(
                "SELECT t.state, t.attempts,
                        (SELECT outcome FROM leases WHERE task = t.key ORDER BY id DESC LIMIT 1)
                 FROM tasks t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .unwrap()
}

async fn wait_for_levels(t: &TestServer, sweep: &str, levels: u64) {
    let mut client = t.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&mut client, sweep).await.levels_done < levels {
        assert!(Instant::now() < deadline, "no level stored within a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_test_workers_speak_the_real_workers_engine() {
    // The next worker below is a synthetic one; it may continue the real worker's task only
    // if both report the same engine.
    assert_eq!(
        coordinator::testkit::TEST_ENGINE,
        worker::engine::ENGINE_VERSION,
        "shared::synthetic::SYNTHETIC_ENGINE must follow worker::engine::ENGINE_VERSION"
    );
}

#[tokio::test]
async fn a_stopped_worker_returns_its_lease_and_the_next_one_resumes() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &slow_sweep("preempt")).await.unwrap();

    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(worker::client::run(
        worker_config(&t.url(), Duration::from_secs(20)),
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for_levels(&t, "preempt", 1).await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .expect("the worker stops within its shutdown timeout")
        .unwrap()
        .expect("a clean shutdown");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert_eq!(
        (summary.returned, summary.completed, summary.failed),
        (1, 0, 0)
    );

    // Pending again at once (no expiry wait), no attempt counted, the levels kept.
    let stored = levels_stored(&t.config);
    assert!(stored >= 1);
    assert_eq!(stored as usize, summary.levels_reported);
    assert_eq!(
        task_row(&t.config),
        ("pending".into(), 0, Some("returned".into()))
    );
    let s = status(&mut client, "preempt").await;
    assert_eq!((s.pending, s.leased, s.failed), (1, 0, 0));
    let failures: i64 = read_only(&t.config)
        .run_blocking(|c| c.query_row("SELECT consecutive_failures FROM workers", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(failures, 0, "returning a lease is not a failure");

    // The next worker resumes at the first level not stored.
    let mut next = t.worker("next").await;
    let lease = next.lease().await.unwrap().unwrap();
    assert_eq!(i64::from(lease.resume_level), stored);
    assert!(!lease.previous_masks.is_empty());
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_cut_off_from_its_coordinator_still_stops_in_bounded_time() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &slow_sweep("cutoff")).await.unwrap();

    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(worker::client::run(
        worker_config(&t.url(), Duration::from_secs(8)),
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for_levels(&t, "cutoff", 1).await;
    drop(client);
    // The coordinator goes away; levels the worker finishes now cannot be delivered.
    t.server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let asked = Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), worker)
        .await
        .expect("the worker stops within its shutdown timeout")
        .unwrap();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(9), "stopping took {took:?}");
    if let Ok(summary) = result {
        assert_eq!((summary.returned, summary.completed), (0, 0));
    }
}

#[tokio::test]
async fn a_sweep_paused_mid_level_resumes_bit_identically_on_a_real_worker() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &slow_sweep("pausing")).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(worker::client::run(
        worker_config(&t.url(), Duration::from_secs(20)),
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for_levels(&t, "pausing", 2).await;
    let pause = proto::v1::ControlSweepRequest {
        sweep: "pausing".into(),
        action: "pause".into(),
        priority: None,
    };
    let answer = client.control_sweep(pause).await.unwrap().into_inner();
    assert_eq!(
        (answer.state.as_str(), answer.leases_returned),
        ("paused", 1)
    );

    // The worker learns it at its next report and stops: nothing more is stored or leased,
    // and no attempt is charged.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = status(&mut client, "pausing").await;
    assert_eq!(
        (held.state.as_str(), held.leased, held.pending),
        ("paused", 0, 1)
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        status(&mut client, "pausing").await.levels_done,
        held.levels_done
    );
    let (_, attempts, outcome) = task_row(&t.config);
    assert_eq!((attempts, outcome.as_deref()), (0, Some("returned")));

    // Resumed: the same worker takes the task up again and finishes it.
    let resume = proto::v1::ControlSweepRequest {
        sweep: "pausing".into(),
        action: "resume".into(),
        priority: None,
    };
    client.control_sweep(resume).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while status(&mut client, "pausing").await.done < 1 {
        assert!(
            Instant::now() < deadline,
            "the resumed sweep did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();

    // Every level as an uninterrupted run gives it, bit for bit (seconds aside).
    let spec = shared::sweep::Sweep::from_yaml(&slow_sweep("pausing"), "pausing.yaml")
        .unwrap()
        .expand()
        .unwrap()
        .remove(0);
    let mut expected = Vec::new();
    worker::imp::run_task(
        &spec,
        worker::imp::Resume::default(),
        &std::sync::atomic::AtomicBool::new(false),
        |level| {
            expected.push(level);
            std::ops::ControlFlow::Continue(())
        },
    )
    .unwrap();
    let store = read_only(&t.config);
    let (data, masks) = store
        .run_blocking(|c| {
            let data = coordinator::store::results::sweep_data(c, "pausing")?;
            let masks = coordinator::store::masks::level_masks(c, "pausing", &spec.id())?;
            Ok::<_, coordinator::store::StoreError>((data, masks))
        })
        .unwrap();
    let stored = &data.tasks[0].levels;
    assert_eq!(stored.len(), expected.len());
    for ((got, (_, blob)), want) in stored.iter().zip(&masks).zip(&expected) {
        let (mut got, mut want_metrics) = (got.clone(), want.metrics.clone());
        got.seconds = 0.0;
        want_metrics.seconds = 0.0;
        assert_eq!(got, want_metrics, "level {}", want.metrics.level);
        assert_eq!(
            proto::convert::masks_from_blob(blob).unwrap(),
            want.masks,
            "level {}",
            want.metrics.level
        );
    }
    t.server.shutdown().await.unwrap();
}
