//! The round-trip benchmark (`coordinator bench`, `cargo bench -p coordinator`): an
//! in-process coordinator on a durable SQLite database and `workers` synthetic workers over
//! loopback, each leasing, heartbeating, reporting one small level and completing tiny tasks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::server::{RunningServer, ServeError};
use crate::testkit::FakeWorker;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Concurrent synthetic workers.
    pub workers: usize,
    /// Tasks in the sweep (one level each).
    pub tasks: usize,
    /// The database (a fresh file; removed afterwards).
    pub db_path: PathBuf,
}

/// Task round trips (lease, heartbeat, report, complete) per second and their latency.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub tasks: usize,
    pub workers: usize,
    pub elapsed: Duration,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tasks by {} workers in {:.2} s: {:.0} task round trips/s (lease+heartbeat+report+complete), \
             latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.tasks,
            self.workers,
            self.elapsed.as_secs_f64(),
            self.per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3
        )
    }
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("cannot bind a loopback port: {0}")]
    Bind(std::io::Error),
    #[error("rpc failed: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("worker task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0} tasks were left unfinished")]
    Unfinished(usize),
}

/// The sweep of the benchmark: `tasks` seeds of a dense (4, 4, 2) network, one level each.
pub fn sweep_yaml(tasks: usize) -> String {
    format!(
        "name: bench\nmodel:\n  shape: [4, 4, 2]\npruning:\n  levels: 0\n  rate: 0.5\nseeds: {tasks}\n"
    )
}

/// Runs the benchmark.
pub async fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    let _ = std::fs::remove_file(&config.db_path);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(BenchError::Bind)?;
    let server = RunningServer::start(ServerConfig::new(&config.db_path), listener).await?;
    let url = server.url();
    let mut client = crate::client::connect(&url)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    client
        .submit_sweep(proto::v1::SubmitSweepRequest {
            name: String::new(),
            yaml: sweep_yaml(config.tasks),
            source: "bench.yaml".to_string(),
            priority: None,
        })
        .await?;

    let start = Instant::now();
    let mut handles = Vec::with_capacity(config.workers);
    for w in 0..config.workers.max(1) {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let mut worker = FakeWorker::register(&url, &format!("bench-{w}")).await?;
            let mut latencies = Vec::new();
            loop {
                let t = Instant::now();
                let Some(lease) = worker.lease().await? else {
                    break;
                };
                worker.finish(&lease).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(config.tasks);
    for handle in handles {
        latencies.extend(handle.await??);
    }
    let elapsed = start.elapsed();
    server.shutdown().await?;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = config.db_path.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    if latencies.len() != config.tasks {
        return Err(BenchError::Unfinished(
            config.tasks - latencies.len().min(config.tasks),
        ));
    }
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Ok(BenchReport {
        tasks: latencies.len(),
        workers: config.workers,
        elapsed,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50: pick(0.5),
        p99: pick(0.99),
        max: latencies.last().copied().unwrap_or_default(),
    })
}
