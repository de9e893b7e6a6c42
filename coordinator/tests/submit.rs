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
            priority: None,
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

/// The attempts charged to the tasks of `sweep`, in expansion order.
fn attempts(t: &TestServer, sweep: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open(&t.config.db_path).unwrap();
    let mut stmt = conn
        .prepare("SELECT attempts FROM tasks WHERE sweep = ?1 ORDER BY idx")
        .unwrap();
    let rows = stmt.query_map([sweep], |r| r.get(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

fn control(sweep: &str, action: &str, priority: Option<i64>) -> proto::v1::ControlSweepRequest {
    proto::v1::ControlSweepRequest {
        sweep: sweep.into(),
        action: action.into(),
        priority,
    }
}

#[tokio::test]
async fn a_paused_sweep_stops_mid_level_and_resumes_where_it_stood() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("life", 2, 1))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    let lease = worker.lease().await.unwrap().unwrap();
    assert!(worker.report(&lease, 0).await.unwrap());
    worker.heartbeat(&lease, 1).await.unwrap();

    // Paused while the worker trains level 1 (over the CLI).
    let (ok, out, err) = coordinator(&["pause", "life", "--coordinator", &t.url()]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("sweep life: paused, priority 0, 1 running task(s) stopped"),
        "{out}"
    );
    // Its next heartbeat and its report of level 1 find the lease gone; nothing is leased.
    assert!(worker.heartbeat(&lease, 1).await.is_err());
    assert!(worker.report(&lease, 1).await.is_err());
    assert!(worker.lease().await.unwrap().is_none());
    let s = status(&mut client, "life").await;
    assert_eq!(
        (s.state.as_str(), s.pending, s.leased, s.levels_done),
        ("paused", 1, 0, 1)
    );
    assert_eq!(attempts(&t, "life"), vec![0], "no attempt charged");

    // Resumed: the task continues at level 1 from its stored level 0.
    let (ok, out, err) = coordinator(&["resume", "life", "--coordinator", &t.url()]).await;
    assert!(ok && out.contains("sweep life: active"), "{out} {err}");
    let again = worker.lease().await.unwrap().unwrap();
    assert_eq!(
        (again.task_id.as_str(), again.resume_level),
        (lease.task_id.as_str(), 1)
    );
    worker.finish(&again).await.unwrap();
    let s = status(&mut client, "life").await;
    assert_eq!((s.state.as_str(), s.done, s.levels_done), ("active", 1, 3));
    assert_eq!(attempts(&t, "life"), vec![0]);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_sweep_keeps_its_levels_and_is_never_leased_again() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("gone", 2, 2))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    let first = worker.lease().await.unwrap().unwrap();
    worker.finish(&first).await.unwrap();
    let second = worker.lease().await.unwrap().unwrap();
    assert!(worker.report(&second, 0).await.unwrap());
    let answer = client
        .control_sweep(control("gone", "cancel", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.state.as_str(), answer.leases_returned),
        ("cancelled", 1)
    );
    assert!(worker.lease().await.unwrap().is_none());
    // A cancelled sweep cannot be resumed.
    let err = client
        .control_sweep(control("gone", "resume", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("was cancelled"), "{}", err.message());
    // Its stored levels stay, and `results` says they are partial.
    let (ok, out, err) = coordinator(&["results", "gone", "--coordinator", &t.url()]).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("sweep gone is cancelled: 1 of 2 tasks finished; the results are partial"),
        "{err}"
    );
    assert!(out.lines().count() >= 2, "{out}");
    let s = status(&mut client, "gone").await;
    assert_eq!(
        (s.state.as_str(), s.done, s.pending, s.levels_done),
        ("cancelled", 1, 1, 4)
    );
    // Unknown sweeps and actions are refused by name.
    let err = client
        .control_sweep(control("nope", "pause", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .control_sweep(control("gone", "stop", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sweep_of_higher_priority_is_leased_first() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("early", 1, 2))
        .await
        .unwrap();
    // Submitted later, with a higher priority (over the CLI).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("urgent.yaml");
    std::fs::write(&file, small_sweep("urgent", 1, 2)).unwrap();
    let (ok, _, err) = coordinator(&[
        "submit",
        file.to_str().unwrap(),
        "--priority",
        "5",
        "--coordinator",
        &t.url(),
    ])
    .await;
    assert!(ok, "{err}");
    let mut worker = t.worker("w").await;
    let lease = worker.lease().await.unwrap().unwrap();
    assert_eq!(lease.sweep, "urgent");
    worker.finish(&lease).await.unwrap();
    // The older sweep raised above it.
    let (ok, out, err) = coordinator(&["priority", "early", "10", "--coordinator", &t.url()]).await;
    assert!(
        ok && out.contains("sweep early: active, priority 10"),
        "{out} {err}"
    );
    let lease = worker.lease().await.unwrap().unwrap();
    assert_eq!(lease.sweep, "early");
    let s = status(&mut client, "urgent").await;
    assert_eq!(s.priority, 5);
    t.server.shutdown().await.unwrap();
}
