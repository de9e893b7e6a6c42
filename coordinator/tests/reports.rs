//! Validation of level reports: every malformed or dishonest report is refused with
//! INVALID_ARGUMENT and changes nothing; masks of the widest networks fit the messages.

mod common;

use common::*;
use coordinator::testkit::{self, synthetic_masks, synthetic_report, FakeWorker};
use proto::v1 as pb;
use proto::v1::layer_mask::Encoding;
use tonic::Code;

/// Sends `report` and expects a refusal mentioning `needle` that stores nothing.
async fn refused(
    worker: &mut FakeWorker,
    t: &TestServer,
    report: pb::ReportLevelRequest,
    needle: &str,
) {
    let before = levels_stored(&t.config);
    let err = worker.client.report_level(report).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(
        err.message().contains(needle),
        "{:?} lacks {needle:?}",
        err.message()
    );
    assert_eq!(
        levels_stored(&t.config),
        before,
        "a refused report stored something"
    );
}

fn with_layer(
    mut report: pb::ReportLevelRequest,
    layer: usize,
    encoding: Encoding,
) -> pb::ReportLevelRequest {
    report.masks[layer].encoding = Some(encoding);
    report
}

fn metrics(report: &mut pb::ReportLevelRequest) -> &mut pb::LevelMetrics {
    report.metrics.as_mut().unwrap()
}

#[tokio::test]
async fn bad_reports_are_refused_and_change_nothing() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("strict", 3, 1))
        .await
        .unwrap();
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    let worker_id = w.worker_id;
    let good = |level| synthetic_report(worker_id, &lease, level).unwrap();

    // Level order and range.
    refused(&mut w, &t, good(1), "level 0 is the next one expected").await;
    let mut beyond = good(0);
    beyond.level = 9;
    refused(&mut w, &t, beyond, "beyond the task's plan").await;

    // Masks: shape, count of matrices, decoding, kept counts.
    let mut shape = good(0);
    shape.masks[1].fan_in = 9;
    refused(&mut w, &t, shape, "layer 1: mask is 8x9").await;
    let mut layers = good(0);
    layers.masks.pop();
    refused(&mut w, &t, layers, "2 masks given but shape").await;
    refused(
        &mut w,
        &t,
        with_layer(good(0), 2, Encoding::Roaring(vec![1, 2, 3])),
        "layer 2: bad roaring",
    )
    .await;
    refused(
        &mut w,
        &t,
        with_layer(good(0), 2, Encoding::SortedIndices(vec![0, 100])),
        "out of range",
    )
    .await;
    refused(
        &mut w,
        &t,
        with_layer(good(0), 2, Encoding::SortedIndices(vec![1, 0])),
        "repeats",
    )
    .await;
    let mut unsorted = Vec::new();
    for v in [12346u32, 1] {
        unsorted.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0u16, 1] {
        unsorted.extend_from_slice(&v.to_le_bytes());
    }
    unsorted.extend_from_slice(&16u32.to_le_bytes());
    for v in [9u16, 3] {
        unsorted.extend_from_slice(&v.to_le_bytes());
    }
    refused(
        &mut w,
        &t,
        with_layer(good(0), 2, Encoding::Roaring(unsorted)),
        "layer 2: bad roaring",
    )
    .await;
    let mut count = good(0);
    let mut first = shared::graph::LayerMask::try_from(&count.masks[0]).unwrap();
    first.kept.pop();
    count.masks[0] = proto::v1::LayerMask::from(&first);
    refused(
        &mut w,
        &t,
        count,
        "masks keep 111 weights but level 0 of this task keeps exactly 112",
    )
    .await;
    let mut missing = good(0);
    missing.masks[0].encoding = None;
    refused(&mut w, &t, missing, "no encoding").await;

    // Metrics: presence, level, finiteness, claimed figures.
    let mut none = good(0);
    none.metrics = None;
    refused(&mut w, &t, none, "metrics are missing").await;
    let mut level = good(0);
    metrics(&mut level).level = 1;
    refused(&mut w, &t, level, "metrics are of level 1").await;
    let mut nan = good(0);
    metrics(&mut nan).test_accuracy[1] = f64::NAN;
    refused(&mut w, &t, nan, "test_accuracy[1] is not finite").await;
    let mut loss = good(0);
    metrics(&mut loss).test_loss = f64::INFINITY;
    refused(&mut w, &t, loss, "test_loss is not finite").await;
    let mut accuracies = good(0);
    metrics(&mut accuracies).test_accuracy.push(0.5);
    refused(
        &mut w,
        &t,
        accuracies,
        "3 entries but the task has 2 problems",
    )
    .await;
    let mut active = good(0);
    metrics(&mut active).active_weights += 1;
    refused(&mut w, &t, active, "claimed active_weights").await;
    let mut components = good(0);
    metrics(&mut components).components += 1;
    refused(&mut w, &t, components, "claimed components").await;
    let mut status = good(0);
    let claimed = if metrics(&mut status).status == pb::TicketStatus::Split as i32 {
        pb::TicketStatus::Degraded
    } else {
        pb::TicketStatus::Split
    };
    metrics(&mut status).status = claimed as i32;
    refused(&mut w, &t, status, "claimed status").await;
    let mut unspecified = good(0);
    metrics(&mut unspecified).status = 0;
    refused(&mut w, &t, unspecified, "status is unspecified").await;

    // The honest report is still level 0: nothing above was stored.
    assert!(w.report(&lease, 0).await.unwrap());
    assert!(w.report(&lease, 1).await.unwrap());

    // Level 2 keeping a weight that level 1 had pruned.
    let spec = testkit::lease_spec(&lease).unwrap();
    let level1 = synthetic_masks(&spec, 1);
    let mut level2 = synthetic_masks(&spec, 2);
    let (layer, pruned) = level1
        .iter()
        .enumerate()
        .find_map(|(l, m)| {
            let weights = (m.fan_in * m.fan_out) as u32;
            (0..weights).find(|i| !m.kept.contains(i)).map(|i| (l, i))
        })
        .unwrap();
    let kept = &mut level2[layer].kept;
    if kept.is_empty() {
        let donor = level2.iter().position(|m| !m.kept.is_empty()).unwrap();
        level2[donor].kept.pop();
    } else {
        level2[layer].kept.pop();
    }
    level2[layer].kept.push(pruned);
    level2[layer].kept.sort_unstable();
    let mut regrown = good(2);
    regrown.masks = proto::convert::masks_to_wire(&level2);
    refused(
        &mut w,
        &t,
        regrown,
        &format!("weight {pruned} is kept but level 1 had pruned it"),
    )
    .await;

    w.finish(&pb::Lease {
        resume_level: 2,
        ..lease
    })
    .await
    .unwrap();
    assert_eq!(status_of(&mut client).await, (1, 4));
    t.server.shutdown().await.unwrap();
}

async fn status_of(
    client: &mut proto::v1::coordinator_client::CoordinatorClient<tonic::transport::Channel>,
) -> (u64, u64) {
    let s = status(client, "strict").await;
    (s.done, s.levels_done)
}

#[tokio::test]
async fn dense_masks_of_the_widest_network_fit() {
    let t = start().await;
    let mut client = t.client().await;
    let yaml = "name: wide\nmodel:\n  shape: [4, 1310, 1310, 2]\npruning:\n  levels: 1\n  target: 112\nseeds: 1\n";
    submit(&mut client, yaml).await.unwrap();
    let mut w = t.worker("w").await;
    let lease = w.lease().await.unwrap().unwrap();
    let report = synthetic_report(w.worker_id, &lease, 0).unwrap();
    assert_eq!(
        report.metrics.as_ref().unwrap().remaining_weights,
        1_723_960
    );
    assert!(
        w.client
            .report_level(report)
            .await
            .unwrap()
            .into_inner()
            .stored
    );
    assert!(!w.fail(&lease, "preempted").await.unwrap());

    let again = w.lease().await.unwrap().unwrap();
    assert_eq!(again.resume_level, 1);
    let previous: usize = again
        .previous_masks
        .iter()
        .map(|m| shared::graph::LayerMask::try_from(m).unwrap().kept.len())
        .sum();
    assert_eq!(previous, 1_723_960);
    assert_eq!(w.finish(&again).await.unwrap(), 1);
    let rows = results(&mut client, "wide").await;
    assert_eq!((rows[0].weights, rows[0].seeds_done), (1_723_960, 1));
    t.server.shutdown().await.unwrap();
}
