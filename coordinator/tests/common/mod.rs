//! Shared helpers of the integration tests: an in-process coordinator on a temporary
//! database, clients, and small sweep files.
#![allow(dead_code)]

pub mod tls;

use std::path::Path;
use std::time::Duration;

use coordinator::testkit::FakeWorker;
use coordinator::{RunningServer, ServerConfig};
use proto::v1 as pb;
use proto::v1::coordinator_client::CoordinatorClient;
use tonic::transport::Channel;

/// A coordinator serving a database in a temporary folder.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub server: RunningServer,
    pub config: ServerConfig,
}

impl TestServer {
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub async fn client(&self) -> CoordinatorClient<Channel> {
        coordinator::client::connect(&self.url())
            .await
            .expect("connect")
    }

    pub async fn worker(&self, name: &str) -> FakeWorker {
        FakeWorker::register(&self.url(), name)
            .await
            .expect("register")
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            dir,
            server,
            config,
        } = self;
        server.shutdown().await.expect("shutdown");
        let server = start_on(config.clone()).await;
        TestServer {
            dir,
            server,
            config,
        }
    }
}

/// Default test settings: 30 s leases.
pub fn config(dir: &Path) -> ServerConfig {
    ServerConfig::new(dir.join("db").join("sweeps.db"))
}

/// Short leases checked often, for expiry tests.
pub fn short_leases(dir: &Path, lease: Duration, max_attempts: u32) -> ServerConfig {
    let mut config = config(dir).with_lease(lease);
    config.expiry_interval = Duration::from_millis(25);
    config.max_attempts = max_attempts;
    config
}

pub async fn start_on(config: ServerConfig) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    RunningServer::start(config, listener).await.expect("start")
}

pub async fn start() -> TestServer {
    start_with(config).await
}

pub async fn start_with(make: impl FnOnce(&Path) -> ServerConfig) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = make(dir.path());
    let server = start_on(config.clone()).await;
    TestServer {
        dir,
        server,
        config,
    }
}

/// A small sweep: shape (4, 8, 8, 2), `levels` levels to 40 weights, `seeds` seeds.
/// Runs the `coordinator` binary: (success, stdout, stderr).
pub async fn coordinator(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordinator"))
        .args(args)
        .output()
        .await
        .expect("run coordinator");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

pub fn small_sweep(name: &str, levels: usize, seeds: usize) -> String {
    format!(
        "name: {name}\nmodel:\n  shape: [4, 8, 8, 2]\npruning:\n  levels: {levels}\n  target: 40\nseeds: {seeds}\n"
    )
}

pub async fn submit(
    client: &mut CoordinatorClient<Channel>,
    yaml: &str,
) -> Result<pb::SubmitSweepResponse, tonic::Status> {
    client
        .submit_sweep(pb::SubmitSweepRequest {
            name: String::new(),
            yaml: yaml.to_string(),
            source: "test.yaml".to_string(),
            priority: None,
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn status(client: &mut CoordinatorClient<Channel>, sweep: &str) -> pb::SweepStatus {
    let mut answer = client
        .status(pb::StatusRequest {
            sweep: Some(sweep.to_string()),
        })
        .await
        .expect("status")
        .into_inner();
    answer.sweeps.remove(0)
}

/// The rows of the `Results` RPC.
pub async fn results(
    client: &mut CoordinatorClient<Channel>,
    sweep: &str,
) -> Vec<pb::AggregateRow> {
    client
        .results(pb::ResultsRequest {
            sweep: sweep.to_string(),
        })
        .await
        .expect("results")
        .into_inner()
        .rows
}

/// The ids `coordinator plan` gives for a sweep text.
pub fn plan_ids(yaml: &str) -> Vec<String> {
    let sweep = shared::sweep::Sweep::from_yaml(yaml, "test.yaml").expect("sweep");
    shared::sweep::plan_rows(&sweep.expand().expect("expand"))
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Reads the database read-only, as `--db` does.
pub fn read_only(config: &ServerConfig) -> coordinator::store::Store {
    coordinator::store::Store::open_read_only(&config.db_path).expect("open read-only")
}

pub fn task_ids(config: &ServerConfig, sweep: &str) -> Vec<String> {
    read_only(config)
        .run_blocking(|c| coordinator::store::sweeps::task_ids(c, sweep))
        .expect("task ids")
}

pub fn levels_stored(config: &ServerConfig) -> i64 {
    read_only(config)
        .run_blocking(|c| c.query_row("SELECT COUNT(*) FROM levels", [], |r| r.get(0)))
        .expect("count levels")
}
