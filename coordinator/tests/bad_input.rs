//! Bad input never crashes the coordinator nor changes its state: oversized messages, huge
//! grids, masks of absurd sizes or bitmaps claiming billions of weights, non-finite metrics,
//! unknown workers and leases. (The validation of honest-looking but wrong reports is in
//! `reports.rs`.) After each refusal the server still serves.

mod common;

use common::*;
use coordinator::testkit::synthetic_report;
use proto::v1 as pb;
use proto::v1::coordinator_client::CoordinatorClient;
use proto::v1::layer_mask::Encoding;
use tonic::Code;

/// The server answers and holds exactly `sweeps` sweeps and `levels` levels.
async fn still_serving(t: &TestServer, sweeps: usize, levels: i64) {
    let mut client = t.client().await;
    let list = client
        .list_sweeps(pb::ListSweepsRequest {})
        .await
        .expect("the server still answers")
        .into_inner()
        .sweeps;
    assert_eq!(list.len(), sweeps);
    assert_eq!(levels_stored(&t.config), levels);
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_server_keeps_serving() {
    let t = start().await;
    let channel = tonic::transport::Endpoint::from_shared(t.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // A client that sends whatever it is given, past the API's limit.
    let mut unlimited = CoordinatorClient::new(channel).max_encoding_message_size(usize::MAX);
    let mut yaml = small_sweep("big", 1, 1);
    yaml.push('#');
    yaml.push_str(&"x".repeat(proto::MAX_MESSAGE_BYTES + 1024));
    let err = unlimited
        .submit_sweep(pb::SubmitSweepRequest {
            name: String::new(),
            yaml,
            source: "big.yaml".into(),
            priority: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{:?}: {}",
        err.code(),
        err.message()
    );
    still_serving(&t, 0, 0).await;

    // The same with an oversized level report from a registered worker.
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("ok", 1, 1)).await.unwrap();
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    let mut report = synthetic_report(w.worker_id, &lease, 0).unwrap();
    report.masks[0].encoding = Some(Encoding::SortedIndices(vec![
        1u8;
        proto::MAX_MESSAGE_BYTES + 1
    ]));
    let err = unlimited.report_level(report).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{:?}: {}",
        err.code(),
        err.message()
    );
    still_serving(&t, 1, 0).await;
    // The lease is intact: the honest report goes through.
    assert!(w.report(&lease, 0).await.unwrap());
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_huge_grid_is_refused_before_anything_is_expanded() {
    let t = start().await;
    let mut client = t.client().await;
    for seeds in ["200000", "1000000000000000000"] {
        let yaml = format!("name: huge\nmodel:\n  shape: [4, 8, 8, 2]\nseeds: {seeds}\n");
        let err = submit(&mut client, &yaml).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    }
    let yaml = "name: huge\nmodel:\n  hidden: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\npruning:\n  rate: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n  levels: 0..200\nseeds: 100\n";
    let err = submit(&mut client, yaml).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("limit"), "{}", err.message());
    // Not YAML, not a mapping, deeply nested, binary-looking text.
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    for text in [
        "::: not yaml :::",
        "- a list",
        nested.as_str(),
        "\u{0}\u{1}\u{2}",
        "",
    ] {
        let err = submit(&mut client, text).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{text:.40?}");
    }
    still_serving(&t, 0, 0).await;
    t.server.shutdown().await.unwrap();
}

/// Sends `report` expecting INVALID_ARGUMENT mentioning `needle`.
async fn refused(
    w: &mut coordinator::testkit::FakeWorker,
    report: pb::ReportLevelRequest,
    needle: &str,
) {
    let err = w.client.report_level(report).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(
        err.message().contains(needle),
        "{:?} lacks {needle:?}",
        err.message()
    );
}

#[tokio::test]
async fn absurd_masks_and_metrics_are_refused_without_allocating() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("absurd", 2, 1))
        .await
        .unwrap();
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    let worker_id = w.worker_id;
    let good = |level| synthetic_report(worker_id, &lease, level).unwrap();

    // A 4-billion-by-4-billion matrix.
    let mut huge = good(0);
    huge.masks[0].fan_in = u32::MAX;
    huge.masks[0].fan_out = u32::MAX;
    refused(&mut w, huge, "layer 0: mask is").await;
    // Bitmaps of a few bytes claiming the top of the 32-bit range, or all of it.
    let mut top = roaring::RoaringBitmap::new();
    top.insert_range(u32::MAX - 65_535..=u32::MAX);
    let mut full = roaring::RoaringBitmap::full();
    for (bitmap, max_bytes) in [(&mut top, 64), (&mut full, 1 << 20)] {
        bitmap.optimize();
        let mut bytes = Vec::new();
        bitmap.serialize_into(&mut bytes).unwrap();
        assert!(bytes.len() < max_bytes, "{} bytes", bytes.len());
        let mut claims = good(0);
        claims.masks[1].encoding = Some(Encoding::Roaring(bytes));
        refused(&mut w, claims, "out of range").await;
    }
    // Varints running past 32 bits, or cut short.
    let mut overflow = good(0);
    overflow.masks[1].encoding = Some(Encoding::SortedIndices(vec![0xff; 10]));
    refused(&mut w, overflow, "layer 1").await;
    let mut truncated = good(0);
    truncated.masks[1].encoding = Some(Encoding::SortedIndices(vec![0x80]));
    refused(&mut w, truncated, "truncated").await;
    // Levels far beyond any plan.
    let mut level = good(0);
    level.level = u32::MAX;
    refused(&mut w, level, "beyond the task's plan").await;
    let mut metrics_level = good(0);
    metrics_level.metrics.as_mut().unwrap().level = u64::MAX;
    refused(&mut w, metrics_level, "metrics are of level").await;
    // Non-finite and negative figures.
    let mut coverage = good(0);
    coverage.metrics.as_mut().unwrap().coverage[0].tasks[0] = f64::NAN;
    refused(&mut w, coverage, "not finite").await;
    let mut seconds = good(0);
    seconds.metrics.as_mut().unwrap().seconds = f64::NEG_INFINITY;
    refused(&mut w, seconds, "seconds is not finite").await;
    let mut loss = good(0);
    loss.metrics.as_mut().unwrap().train_loss = -1.0;
    refused(&mut w, loss, "train_loss is negative").await;
    let mut status = good(0);
    status.metrics.as_mut().unwrap().status = 99;
    refused(&mut w, status, "status").await;

    // Nothing stored; the honest reports still go through.
    still_serving(&t, 1, 0).await;
    assert_eq!(w.finish(&lease).await.unwrap(), 3);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_workers_and_leases_are_refused_everywhere() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("ids", 1, 2))
        .await
        .unwrap();
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    let id = w.worker_id;

    let report = |worker_id, lease_id| {
        let mut r = synthetic_report(id, &lease, 0).unwrap();
        r.worker_id = worker_id;
        r.lease_id = lease_id;
        r
    };
    for (worker_id, lease_id, code) in [
        (id, 9_999, Code::NotFound),
        (9_999, lease.lease_id, Code::NotFound),
        (u64::MAX, u64::MAX, Code::NotFound),
    ] {
        let err = client
            .report_level(report(worker_id, lease_id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "report: {}", err.message());
        let err = client
            .complete_task(pb::CompleteTaskRequest {
                worker_id,
                lease_id,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "complete: {}", err.message());
        let err = client
            .fail_task(pb::FailTaskRequest {
                worker_id,
                lease_id,
                error: "x".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "fail: {}", err.message());
        let err = client
            .return_lease(pb::ReturnLeaseRequest {
                worker_id,
                lease_id,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "return: {}", err.message());
        let err = client
            .heartbeat(pb::HeartbeatRequest {
                worker_id,
                lease_id,
                level: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "heartbeat: {}", err.message());
    }
    // Another worker cannot return or fail this lease.
    let mut other = t.worker("other").await;
    assert_eq!(
        other.return_lease(&lease).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        other.fail(&lease, "not mine").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // Results and status of an unknown sweep.
    let err = client
        .results(pb::ResultsRequest {
            sweep: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .status(pb::StatusRequest {
            sweep: Some("nope".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Nothing changed: the lease is still the owner's, and its task runs to the end.
    let s = status(&mut client, "ids").await;
    assert_eq!((s.pending, s.leased, s.failed), (1, 1, 0));
    w.finish(&lease).await.unwrap();
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_names_are_refused_and_long_errors_cut() {
    let t = start().await;
    let mut client = t.client().await;
    let err = client
        .register_worker(pb::RegisterWorkerRequest {
            name: "n".repeat(100_000),
            hostname: "h".into(),
            api_version: proto::API_VERSION,
            parallel: 1,
            engine: 2,
            arithmetic: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("limit"), "{}", err.message());

    submit(&mut client, &small_sweep("long", 1, 1))
        .await
        .unwrap();
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    // Over the request limit of FailTask: refused before it is decoded, changing nothing.
    let refused = w.fail(&lease, &"e".repeat(1_000_000)).await.unwrap_err();
    assert!(
        refused.message().contains("larger than its limit"),
        "{refused:?}"
    );
    // Under it: stored, cut to a few KiB.
    w.fail(&lease, &"e".repeat(200_000)).await.unwrap();
    let error: String = read_only(&t.config)
        .run_blocking(|c| c.query_row("SELECT last_error FROM tasks", [], |r| r.get(0)))
        .unwrap();
    assert!(error.len() < 5_000, "{} bytes kept", error.len());
    assert!(error.ends_with("bytes cut)"), "{error:.60}");
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_failing_in_a_row_is_flagged_unhealthy() {
    let t = start_with(|d| {
        let mut c = config(d);
        c.max_attempts = 10;
        c
    })
    .await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("sick", 1, 1))
        .await
        .unwrap();
    let mut w = t.worker("sick-worker").await;
    let text = |status: &pb::StatusResponse| {
        coordinator::render::status_text(&coordinator::service::wire::status_from_wire(
            status.clone(),
        ))
    };
    for round in 1..=3 {
        let lease = w.lease().await.unwrap().unwrap();
        w.fail(&lease, "cuda error").await.unwrap();
        let answer = client
            .status(pb::StatusRequest { sweep: None })
            .await
            .unwrap()
            .into_inner();
        let report = coordinator::service::wire::status_from_wire(answer.clone());
        let worker = report
            .workers
            .iter()
            .find(|x| x.worker_id == w.worker_id)
            .unwrap();
        assert_eq!(worker.consecutive_failures, round);
        assert_eq!(worker.unhealthy(), round >= 3);
        assert_eq!(
            text(&answer).contains("UNHEALTHY"),
            round >= 3,
            "{}",
            text(&answer)
        );
    }
    // A returned lease changes nothing; a completed task makes it healthy again.
    let lease = w.lease().await.unwrap().unwrap();
    w.return_lease(&lease).await.unwrap();
    let answer = client
        .status(pb::StatusRequest { sweep: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.workers[0].consecutive_failures, 3);
    let lease = w.lease().await.unwrap().unwrap();
    assert_eq!(lease.resume_level, 0);
    w.finish(&lease).await.unwrap();
    let answer = client
        .status(pb::StatusRequest { sweep: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.workers[0].consecutive_failures, 0);
    assert!(!text(&answer).contains("UNHEALTHY"));
    t.server.shutdown().await.unwrap();
}
