//! The life of a lease: levels reported in order and completed; stale leases refused; expiry
//! and resumption from the stored masks; retries up to max-attempts; idempotent reports.

mod common;

use std::time::Duration;

use common::*;
use coordinator::testkit::{self, synthetic_masks, synthetic_report};
use proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn a_task_runs_from_lease_to_results() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("life", 3, 2))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;

    let lease = worker.lease().await.unwrap().unwrap();
    for level in 0..=3 {
        let deadline = worker.heartbeat(&lease, level).await.unwrap();
        assert!(deadline > lease.deadline_unix_ms - 1);
        assert!(
            worker.report(&lease, level).await.unwrap(),
            "level {level} newly stored"
        );
        let status = client
            .status(pb::StatusRequest { sweep: None })
            .await
            .unwrap()
            .into_inner();
        let me = status
            .workers
            .iter()
            .find(|w| w.worker_id == worker.worker_id)
            .unwrap();
        assert_eq!(me.tasks[0].task_id, lease.task_id);
        assert_eq!(me.tasks[0].level, level);
    }
    let s = status(&mut client, "life").await;
    assert_eq!((s.leased, s.levels_done, s.levels_planned), (1, 4, 8));
    assert!(
        results(&mut client, "life").await.is_empty(),
        "no finished seed yet"
    );
    worker.complete(&lease).await.unwrap();

    let s = status(&mut client, "life").await;
    assert_eq!((s.done, s.pending, s.leased, s.failed), (1, 1, 0, 0));
    assert!(s.tasks_per_hour > 0.0 && s.levels_per_minute > 0.0);
    assert!(s.eta_seconds.is_some());
    // One of two tasks of the same cost done: half the expected work (over gRPC).
    assert_eq!(s.work_done, Some(0.5));

    worker.drain().await.unwrap();
    let s = status(&mut client, "life").await;
    assert_eq!(
        (s.done, s.eta_seconds, s.work_done),
        (2, Some(0.0), Some(1.0))
    );
    let rows = results(&mut client, "life").await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.seeds_done, row.seeds_total, row.levels, row.target),
        (2, 2, 3, 40)
    );
    assert_eq!(row.shape, vec![4, 8, 8, 2]);
    assert_eq!(row.test_accuracy, vec![0.9, 0.9]);
    let total = row.frac_split + row.frac_connected + row.frac_degraded;
    assert!((total - 1.0).abs() < 1e-12);
    // Completing again with the ended lease is refused.
    let err = worker.complete(&lease).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn completing_before_all_levels_is_refused() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("early", 3, 1))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    let lease = worker.lease().await.unwrap().unwrap();
    worker.report(&lease, 0).await.unwrap();
    let err = worker.complete(&lease).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("1 of 4 levels"), "{}", err.message());
    assert_eq!(status(&mut client, "early").await.leased, 1);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_refused_and_the_next_lease_resumes() {
    let t = start_with(|d| short_leases(d, Duration::from_millis(400), 3)).await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("resume", 3, 1))
        .await
        .unwrap();
    let mut first = t.worker("first").await;
    let lease = first.lease().await.unwrap().unwrap();
    first.report(&lease, 0).await.unwrap();
    first.report(&lease, 1).await.unwrap();

    // Silence: the lease expires and the task goes back to pending with an attempt counted.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let s = status(&mut client, "resume").await;
    assert_eq!((s.pending, s.leased), (1, 0));
    let stored = levels_stored(&t.config);
    for err in [
        first.report(&lease, 2).await.unwrap_err(),
        first.heartbeat(&lease, 2).await.unwrap_err(),
        first.complete(&lease).await.unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(err.message().contains("expired"), "{}", err.message());
    }
    assert_eq!(levels_stored(&t.config), stored);

    let mut second = t.worker("second").await;
    let again = second.lease().await.unwrap().unwrap();
    assert_eq!(again.task_id, lease.task_id);
    assert_ne!(again.lease_id, lease.lease_id);
    assert_eq!(again.resume_level, 2);
    let spec = testkit::lease_spec(&again).unwrap();
    let previous: Vec<_> = again
        .previous_masks
        .iter()
        .map(|m| shared::graph::LayerMask::try_from(m).unwrap())
        .collect();
    assert_eq!(previous, synthetic_masks(&spec, 1));

    // The reassigned lease is refused, naming its successor, and changes nothing.
    let err = first.report(&lease, 2).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains(&format!("lease {}", again.lease_id)),
        "{}",
        err.message()
    );
    assert_eq!(levels_stored(&t.config), stored);

    assert_eq!(second.finish(&again).await.unwrap(), 2);
    let s = status(&mut client, "resume").await;
    assert_eq!((s.done, s.levels_done), (1, 4));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeats_keep_a_lease_alive() {
    let t = start_with(|d| short_leases(d, Duration::from_millis(300), 3)).await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("alive", 1, 1))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    let lease = worker.lease().await.unwrap().unwrap();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        worker.heartbeat(&lease, 0).await.unwrap();
    }
    worker.finish(&lease).await.unwrap();
    assert_eq!(status(&mut client, "alive").await.done, 1);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_task_fails_after_max_attempts_with_its_last_error() {
    let t = start_with(|d| short_leases(d, Duration::from_millis(300), 3)).await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("flaky", 1, 1))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;

    let lease = worker.lease().await.unwrap().unwrap();
    assert!(!worker.fail(&lease, "out of memory").await.unwrap());
    // A second attempt lost to expiry.
    let lease = worker.lease().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(worker.fail(&lease, "late").await.is_err());
    let lease = worker.lease().await.unwrap().unwrap();
    assert!(worker.fail(&lease, "diverged: loss is NaN").await.unwrap());

    assert!(worker.lease().await.unwrap().is_none());
    let s = status(&mut client, "flaky").await;
    assert_eq!((s.failed, s.pending, s.leased), (1, 0, 0));
    assert_eq!(s.failures.len(), 1);
    assert_eq!(s.failures[0].attempts, 3);
    assert_eq!(s.failures[0].error, "diverged: loss is NaN");
    let text = coordinator::render::status_text(&coordinator::service::wire::status_from_wire(
        client
            .status(pb::StatusRequest { sweep: None })
            .await
            .unwrap()
            .into_inner(),
    ));
    assert!(text.contains("diverged: loss is NaN"), "{text}");

    // `coordinator retry`: only failed tasks, named ones must exist; the task is pending again
    // with its attempts reset, and leases as new.
    let refused = client
        .retry_tasks(pb::RetryTasksRequest {
            sweep: "nope".into(),
            task_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    let failed_id = s.failures[0].task_id.clone();
    let refused = client
        .retry_tasks(pb::RetryTasksRequest {
            sweep: "flaky".into(),
            task_id: Some("0000000000000000".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    let retried = client
        .retry_tasks(pb::RetryTasksRequest {
            sweep: "flaky".into(),
            task_id: Some(failed_id.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.task_ids, vec![failed_id.clone()]);
    let s = status(&mut client, "flaky").await;
    assert_eq!((s.failed, s.pending, s.leased), (0, 1, 0));
    assert!(s.failures.is_empty());
    let lease = worker.lease().await.unwrap().unwrap();
    assert_eq!(lease.task_id, failed_id);
    let refused = client
        .retry_tasks(pb::RetryTasksRequest {
            sweep: "flaky".into(),
            task_id: Some(failed_id.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("not failed"), "{refused:?}");
    // Three fresh attempts, as for a new task.
    assert!(!worker.fail(&lease, "again").await.unwrap());
    let lease = worker.lease().await.unwrap().unwrap();
    worker.return_lease(&lease).await.unwrap();
    let lease = worker.lease().await.unwrap().unwrap();
    assert!(!worker.fail(&lease, "again").await.unwrap());
    let lease = worker.lease().await.unwrap().unwrap();
    assert!(worker.fail(&lease, "again").await.unwrap());
    let idle = client
        .lease_task(pb::LeaseTaskRequest {
            worker_id: worker.worker_id,
            request_id: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!idle.sweeps_active && idle.retry_after_ms > 0);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reports_are_idempotent() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("idem", 2, 1))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    let lease = worker.lease().await.unwrap().unwrap();
    let report = synthetic_report(worker.worker_id, &lease, 0).unwrap();
    assert!(
        worker
            .client
            .report_level(report.clone())
            .await
            .unwrap()
            .into_inner()
            .stored
    );
    // The same again (an answer lost on the way back): acknowledged, not duplicated.
    assert!(
        !worker
            .client
            .report_level(report.clone())
            .await
            .unwrap()
            .into_inner()
            .stored
    );
    // Timing differs on a retry: still the same level.
    let mut retimed = report.clone();
    retimed.metrics.as_mut().unwrap().seconds = 99.0;
    assert!(
        !worker
            .client
            .report_level(retimed)
            .await
            .unwrap()
            .into_inner()
            .stored
    );
    assert_eq!(levels_stored(&t.config), 1);
    // Different content for the stored level is refused.
    let mut other = report.clone();
    other.metrics.as_mut().unwrap().test_accuracy = vec![0.5, 0.5];
    let err = worker.client.report_level(other).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(levels_stored(&t.config), 1);
    worker
        .finish(&pb::Lease {
            resume_level: 1,
            ..lease
        })
        .await
        .unwrap();
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_workers_leases_and_versions_are_refused() {
    let t = start().await;
    let mut client = t.client().await;
    let err = client
        .register_worker(pb::RegisterWorkerRequest {
            name: "old".into(),
            hostname: "h".into(),
            api_version: 0,
            parallel: 1,
            engine: 2,
            arithmetic: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("version 0") && err.message().contains("version 1"),
        "{}",
        err.message()
    );

    let err = client
        .lease_task(pb::LeaseTaskRequest {
            worker_id: 4242,
            request_id: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    submit(&mut client, &small_sweep("refuse", 1, 2))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    let err = worker
        .client
        .heartbeat(pb::HeartbeatRequest {
            worker_id: worker.worker_id,
            lease_id: 777,
            level: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Parallel 1: a second lease while the first is held is refused.
    let lease = worker.lease().await.unwrap().unwrap();
    assert_eq!(
        worker.lease().await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // Another worker cannot use this lease.
    let mut other = t.worker("other").await;
    let err = other.report(&lease, 0).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(levels_stored(&t.config), 0);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn lease_tokens_are_unguessable_and_differ_across_databases() {
    // Two coordinators on fresh databases hand out their first leases: sequential ids would
    // give both the same token, so a worker of the first could end the lease of the second.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let t = start().await;
        let mut client = t.client().await;
        submit(&mut client, &small_sweep("tok", 1, 3))
            .await
            .unwrap();
        let mut worker = t.worker("w").await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let lease = worker.lease().await.unwrap().unwrap();
            ids.push(lease.lease_id);
            worker.finish(&lease).await.unwrap();
        }
        assert!(ids.iter().all(|&id| id > 0 && id < (1 << 53)), "{ids:?}");
        assert!(
            ids.windows(2).any(|w| w[1] != w[0] + 1),
            "sequential lease ids: {ids:?}"
        );
        tokens.push(ids);
        t.server.shutdown().await.unwrap();
    }
    assert!(
        tokens[0].iter().all(|id| !tokens[1].contains(id)),
        "{tokens:?}"
    );
}

#[tokio::test]
async fn a_task_continues_only_on_the_arithmetic_that_started_it() {
    // Two machines of different instruction sets: their kernels round differently, so a task
    // started on one must not continue on the other.
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("arith", 3, 1))
        .await
        .unwrap();
    let options = Default::default();
    let mut avx = testkit::FakeWorker::register_as(&t.url(), "avx", &options, "x86_64-avx2-fma")
        .await
        .unwrap();
    let mut arm = testkit::FakeWorker::register_as(&t.url(), "arm", &options, "aarch64-portable")
        .await
        .unwrap();
    // The avx worker stores level 0, then gives the lease back (it shuts down).
    let lease = avx.lease().await.unwrap().unwrap();
    assert!(avx.report(&lease, 0).await.unwrap());
    avx.return_lease(&lease).await.unwrap();

    // The task is pending, but not for the arm worker, which is told why.
    let answer = arm
        .client
        .lease_task(pb::LeaseTaskRequest {
            worker_id: arm.worker_id,
            request_id: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.lease.is_none());
    assert!(answer.sweeps_active);
    assert!(
        answer.idle_reason.contains("arithmetic x86_64-avx2-fma")
            && answer.idle_reason.contains("this worker: engine")
            && answer.idle_reason.contains("aarch64-portable"),
        "{}",
        answer.idle_reason
    );
    // So does `status`, with each worker's arithmetic.
    let status = client
        .status(pb::StatusRequest { sweep: None })
        .await
        .unwrap()
        .into_inner();
    let of = |name: &str| status.workers.iter().find(|w| w.name == name).unwrap();
    assert_eq!(of("arm").arithmetic, "aarch64-portable");
    assert_eq!(of("arm").idle_reason, answer.idle_reason);
    assert_eq!(of("avx").idle_reason, "");
    let text = coordinator::render::status_text(&coordinator::service::wire::status_from_wire(
        status.clone(),
    ));
    assert!(text.contains("idle: the pending tasks continue"), "{text}");

    // A level of the other arithmetic under a lease of this task is refused too.
    let lease = avx.lease().await.unwrap().unwrap();
    assert_eq!(lease.resume_level, 1);
    let mut wrong = synthetic_report(avx.worker_id, &lease, 1).unwrap();
    wrong.metrics.as_mut().unwrap().arithmetic = "aarch64-portable".into();
    let err = avx.client.report_level(wrong).await.unwrap_err();
    assert!(err.message().contains("arithmetic"), "{}", err.message());

    // The task finishes on its own arithmetic, and every level says which one.
    for level in 1..=3 {
        assert!(avx.report(&lease, level).await.unwrap());
    }
    avx.complete(&lease).await.unwrap();
    let levels = client
        .task_levels(pb::TaskLevelsRequest {
            sweep: "arith".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let recorded: Vec<&str> = levels
        .tasks
        .iter()
        .flat_map(|t| t.levels.iter())
        .map(|l| l.arithmetic.as_str())
        .collect();
    assert_eq!(recorded, vec!["x86_64-avx2-fma"; 4]);
    t.server.shutdown().await.unwrap();
}
