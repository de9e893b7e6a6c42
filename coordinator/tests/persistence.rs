//! Durability: results survive a restart; the read-only database gives what gRPC gives; an
//! unknown schema version is refused.

mod common;

use common::*;
use coordinator::service::wire;
use coordinator::store::{results, Store};
use proto::v1 as pb;

/// The `Results` rows computed from the database directly.
fn rows_from_db(config: &coordinator::ServerConfig, sweep: &str) -> Vec<pb::AggregateRow> {
    let store = read_only(config);
    let name = sweep.to_string();
    let data = store
        .run_blocking(move |c| results::sweep_data(c, &name))
        .expect("the data set");
    analysis::stats::grid_points(&data.tasks)
        .iter()
        .map(wire::point_to_wire)
        .collect()
}

#[tokio::test]
async fn a_restart_keeps_every_result() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("durable", 3, 4))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    for _ in 0..2 {
        let lease = worker.lease().await.unwrap().unwrap();
        worker.finish(&lease).await.unwrap();
    }
    // A third task half done when the coordinator stops.
    let lease = worker.lease().await.unwrap().unwrap();
    worker.report(&lease, 0).await.unwrap();
    worker.report(&lease, 1).await.unwrap();
    let before = results(&mut client, "durable").await;
    let status_before = status(&mut client, "durable").await;

    let t = t.restart().await;
    let mut client = t.client().await;
    assert_eq!(results(&mut client, "durable").await, before);
    let s = status(&mut client, "durable").await;
    assert_eq!(
        (s.done, s.levels_done, s.total),
        (status_before.done, status_before.levels_done, 4)
    );

    // The worker holding a lease across the restart carries on with it.
    let mut back = coordinator::testkit::FakeWorker {
        client: coordinator::client::connect_with(&t.url(), &Default::default())
            .await
            .unwrap(),
        worker_id: worker.worker_id,
        arithmetic: worker.arithmetic.clone(),
    };
    assert_eq!(
        back.finish(&proto::v1::Lease {
            resume_level: 2,
            ..lease
        })
        .await
        .unwrap(),
        2
    );
    let mut other = t.worker("other").await;
    assert_eq!(other.drain().await.unwrap(), 1);
    let s = status(&mut client, "durable").await;
    assert_eq!((s.done, s.levels_done), (4, 16));
    t.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_read_only_database_gives_the_grpc_results() {
    let t = start().await;
    let mut client = t.client().await;
    submit(&mut client, &small_sweep("same", 2, 3))
        .await
        .unwrap();
    submit(&mut client, &small_sweep("other", 1, 2))
        .await
        .unwrap();
    let mut worker = t.worker("w").await;
    for _ in 0..3 {
        let lease = worker.lease().await.unwrap().unwrap();
        worker.finish(&lease).await.unwrap();
    }
    // While serving (WAL with a live writer).
    let grpc = results(&mut client, "same").await;
    assert_eq!(grpc.len(), 1);
    assert_eq!(grpc[0].seeds_done, 3);
    assert_eq!(rows_from_db(&t.config, "same"), grpc);
    assert_eq!(
        rows_from_db(&t.config, "other"),
        results(&mut client, "other").await
    );
    // And after the coordinator stopped.
    let config = t.config.clone();
    let dir = t.dir;
    t.server.shutdown().await.unwrap();
    assert_eq!(rows_from_db(&config, "same"), grpc);
    // Read-only really is read-only.
    let store = read_only(&config);
    let err = store
        .run_blocking(|c| c.execute("DELETE FROM levels", []))
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
    drop(dir);
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let future = coordinator::store::schema::SCHEMA_VERSION + 1;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE x (a); PRAGMA user_version = {future};"
        ))
        .unwrap();
    }
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(
        err.contains(&format!("schema version {future}"))
            && err.contains(&format!(
                "version {}",
                coordinator::store::schema::SCHEMA_VERSION
            )),
        "{err}"
    );
    let err = Store::open_read_only(&path).unwrap_err().to_string();
    assert!(err.contains(&format!("schema version {future}")), "{err}");

    let foreign = dir.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE x (a);").unwrap();
    }
    let err = Store::open(&foreign).unwrap_err().to_string();
    assert!(err.contains("not a coordinator database"), "{err}");
    let err = Store::open_read_only(&dir.path().join("missing.db"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.db"), "{err}");
}

#[tokio::test]
async fn grpc_health_reports_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

    let t = start().await;
    let channel = tonic::transport::Endpoint::from_shared(t.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "lottery.v1.Coordinator"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    t.server.shutdown().await.unwrap();
}
