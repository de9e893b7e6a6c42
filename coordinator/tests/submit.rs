//! Submitting sweeps: ids agree with `plan`, resubmission is a no-op, a changed file adds
//! only new tasks or is refused when existing settings change.

mod common;

use std::collections::BTreeSet;

use common::*;
use tonic::Code;

#[tokio::test]
async fn submitted_ids_are_the_plan_ids() {
    let t = start().await;
    let mut client = t.client().await;
    let yaml = small_sweep("ids", 3, 3);
    let answer = submit(&mut client, &yaml).await.unwrap();
    assert_eq!(
        (
            answer.sweep.as_str(),
            answer.added,
            answer.existing,
            answer.total
        ),
        ("ids", 3, 0, 3)
    );
    assert_eq!(task_ids(&t.config, "ids"), plan_ids(&yaml));

    let mut worker = t.worker("w").await;
    let mut leased = BTreeSet::new();
    while let Some(lease) = worker.lease().await.unwrap() {
        assert_eq!(lease.sweep, "ids");
        assert_eq!(lease.resume_level, 0);
        assert!(lease.previous_masks.is_empty());
        leased.insert(lease.task_id.clone());
        worker.finish(&lease).await.unwrap();
    }
    assert_eq!(leased, plan_ids(&yaml).into_iter().collect());
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn resubmitting_the_same_file_adds_nothing() {
    let t = start().await;
    let mut client = t.client().await;
    let yaml = small_sweep("again", 2, 2);
    submit(&mut client, &yaml).await.unwrap();
    let answer = submit(&mut client, &yaml).await.unwrap();
    assert_eq!((answer.added, answer.existing, answer.total), (0, 2, 2));
    assert_eq!(status(&mut client, "again").await.total, 2);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_changed_file_adds_only_new_tasks() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("grow", 2, 2))
        .await
        .unwrap();
    // Run one task so that a stored task with results is kept across the change.
    let mut worker = t.worker("w").await;
    let lease = worker.lease().await.unwrap().unwrap();
    worker.finish(&lease).await.unwrap();

    let grown = small_sweep("grow", 2, 4);
    let answer = submit(&mut client, &grown).await.unwrap();
    assert_eq!((answer.added, answer.existing, answer.total), (2, 2, 4));
    assert_eq!(task_ids(&t.config, "grow"), plan_ids(&grown));
    let s = status(&mut client, "grow").await;
    assert_eq!((s.total, s.done, s.pending), (4, 1, 3));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_file_changing_existing_settings_is_refused() {
    let t = start().await;
    let mut client = t.client().await;
    let original = small_sweep("fixed", 2, 2);
    submit(&mut client, &original).await.unwrap();
    let changed = original.replace("target: 40", "target: 50");
    let err = submit(&mut client, &changed).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let first = &plan_ids(&original)[0];
    assert!(err.message().contains(first.as_str()), "{}", err.message());
    assert!(err.message().contains("fixed"), "{}", err.message());
    assert_eq!(task_ids(&t.config, "fixed"), plan_ids(&original));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_files_are_refused_with_their_location() {
    let t = start().await;
    let mut client = t.client().await;
    let err = submit(&mut client, "name: broken\npruning:\n  rate: 1.5\n")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("test.yaml:3:"),
        "{}",
        err.message()
    );

    let err = client
        .submit_sweep(proto::v1::SubmitSweepRequest {
            name: "other".into(),
            yaml: small_sweep("mine", 1, 1),
            source: "mine.yaml".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("\"mine\""), "{}", err.message());
    let sweeps = client
        .list_sweeps(proto::v1::ListSweepsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sweeps;
    assert!(sweeps.is_empty());
    t.server.shutdown().await.unwrap();
}
