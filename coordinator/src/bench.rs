//! The round-trip benchmark (`coordinator bench`, `cargo bench -p coordinator`): a coordinator
//! on a durable SQLite database and `workers` synthetic workers over loopback.
//!
//! Two loads:
//! - **saturated** (no [`Pace`]): every worker leases, heartbeats, reports one small level and
//!   completes tiny tasks as fast as the coordinator answers: the most the write path takes;
//! - **paced** ([`Pace`]): every worker sends at a real worker's rates (a level report every
//!   `level`, a heartbeat every `heartbeat`, a lease and a completion per task of `levels + 1`
//!   levels), starting at a random offset, and the latency of each call is measured: what a
//!   fleet of that size sees.
//!
//! The coordinator runs in this process, or as a child process (`coordinator serve`, the
//! deployed binary), whose peak memory is then reported too.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
    /// Tasks in the sweep.
    pub tasks: usize,
    /// The database (a fresh file; removed afterwards).
    pub db_path: PathBuf,
    /// Send at these rates instead of as fast as possible.
    pub pace: Option<Pace>,
    /// Run the coordinator as a child process of this executable (`EXE serve`) instead of in
    /// this process: its peak memory is then measured.
    pub server_exe: Option<PathBuf>,
}

/// A real worker's rates.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Time between two level reports of one worker.
    pub level: Duration,
    /// Time between two heartbeats of one lease.
    pub heartbeat: Duration,
    /// Pruning levels per task (each task reports `levels + 1` levels).
    pub levels: usize,
}

/// Throughput and latency.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub tasks: usize,
    pub workers: usize,
    pub paced: bool,
    pub elapsed: Duration,
    /// Calls (lease, heartbeat, report, complete) per second.
    pub calls_per_second: f64,
    /// Tasks finished per second.
    pub tasks_per_second: f64,
    /// Saturated: of one task's four calls together; paced: of each call.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Writes committed per disk flush (group commit), on average (in-process only).
    pub writes_per_commit: Option<f64>,
    /// The coordinator's peak resident memory, in MiB (child process on Linux only).
    pub peak_mib: Option<f64>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (what, latency) = if self.paced {
            ("paced", "call latency")
        } else {
            ("saturated", "task round-trip latency (4 calls)")
        };
        write!(
            f,
            "{what}: {} tasks by {} workers in {:.2} s: {:.0} task round trips/s, {:.0} calls/s; \
             {latency} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.tasks,
            self.workers,
            self.elapsed.as_secs_f64(),
            self.tasks_per_second,
            self.calls_per_second,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
        )?;
        if let Some(w) = self.writes_per_commit {
            write!(f, "; {w:.1} writes per commit")?;
        }
        if let Some(m) = self.peak_mib {
            write!(f, "; coordinator peak memory {m:.0} MiB")?;
        }
        Ok(())
    }
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("cannot bind a loopback port: {0}")]
    Bind(std::io::Error),
    #[error("cannot start the coordinator process {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the coordinator process did not answer on {0} within 30 s")]
    NoAnswer(String),
    #[error("rpc failed: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("worker task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0} tasks were left unfinished")]
    Unfinished(usize),
}

/// The sweep of the benchmark: `tasks` seeds of a (4, 4, 2) network with one level, or of a
/// (4, 16, 16, 2) network with `levels` pruning levels (paced).
pub fn sweep_yaml(tasks: usize, pace: Option<&Pace>) -> String {
    match pace {
        None => format!(
            "name: bench\nmodel:\n  shape: [4, 4, 2]\npruning:\n  levels: 0\n  rate: 0.5\nseeds: {tasks}\n"
        ),
        Some(p) => format!(
            "name: bench\nmodel:\n  shape: [4, 16, 16, 2]\npruning:\n  levels: {}\n  rate: 0.2\nseeds: {tasks}\n",
            p.levels
        ),
    }
}

/// The coordinator under test: in this process or a child process.
enum Server {
    InProcess(RunningServer),
    Child(ChildServer),
}

/// A `coordinator serve` child process, killed when dropped (a failed benchmark too).
struct ChildServer(Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the benchmark.
pub async fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    remove_db(&config.db_path);
    let (server, url) = start(&config).await?;
    let mut client = crate::client::connect(&url)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    client
        .submit_sweep(proto::v1::SubmitSweepRequest {
            name: String::new(),
            yaml: sweep_yaml(config.tasks, config.pace.as_ref()),
            source: "bench.yaml".to_string(),
            priority: None,
        })
        .await?;

    let start = Instant::now();
    let mut handles = Vec::with_capacity(config.workers);
    for w in 0..config.workers.max(1) {
        let (url, pace) = (url.clone(), config.pace);
        handles.push(tokio::spawn(async move {
            let worker = register(&url, w).await?;
            match pace {
                None => saturate(worker).await,
                Some(pace) => paced(worker, pace, w as u64).await,
            }
        }));
    }
    let (mut latencies, mut tasks, mut calls) = (Vec::new(), 0, 0);
    for handle in handles {
        let load = handle.await??;
        latencies.extend(load.latencies);
        tasks += load.tasks;
        calls += load.calls;
    }
    let elapsed = start.elapsed();
    let (writes_per_commit, peak_mib) = stop(server).await?;
    remove_db(&config.db_path);
    if tasks != config.tasks {
        return Err(BenchError::Unfinished(
            config.tasks - tasks.min(config.tasks),
        ));
    }
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    let seconds = elapsed.as_secs_f64().max(1e-9);
    Ok(BenchReport {
        tasks,
        workers: config.workers,
        paced: config.pace.is_some(),
        elapsed,
        calls_per_second: calls as f64 / seconds,
        tasks_per_second: tasks as f64 / seconds,
        p50: pick(0.5),
        p99: pick(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        writes_per_commit,
        peak_mib,
    })
}

/// What one synthetic worker did.
struct Load {
    latencies: Vec<Duration>,
    tasks: usize,
    calls: usize,
}

/// Registers worker `w`, retrying while the coordinator turns calls away (a thousand
/// workers starting at once exceed its limit of calls at once, as real workers would; they
/// retry too).
async fn register(url: &str, w: usize) -> Result<FakeWorker, tonic::Status> {
    loop {
        match FakeWorker::register(url, &format!("bench-{w}")).await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(20 + (w % 50) as u64)).await
            }
            other => return other,
        }
    }
}

/// Leases and finishes tasks back to back; one latency per task (its four calls, each tried
/// again while the coordinator turns it away for being at its limit of calls at once).
async fn saturate(worker: FakeWorker) -> Result<Load, tonic::Status> {
    let mut load = Load {
        latencies: Vec::new(),
        tasks: 0,
        calls: 0,
    };
    loop {
        let t = Instant::now();
        let lease = retry(|| {
            let mut w = worker.clone();
            async move { w.lease().await }
        })
        .await?;
        load.calls += 1;
        let Some(lease) = lease else {
            return Ok(load);
        };
        retry(|| {
            let (mut w, lease) = (worker.clone(), lease.clone());
            async move { w.heartbeat(&lease, 0).await }
        })
        .await?;
        retry(|| {
            let (mut w, lease) = (worker.clone(), lease.clone());
            async move { w.report(&lease, 0).await }
        })
        .await?;
        retry(|| {
            let (mut w, lease) = (worker.clone(), lease.clone());
            async move { w.complete(&lease).await }
        })
        .await?;
        load.latencies.push(t.elapsed());
        load.tasks += 1;
        load.calls += 3;
    }
}

/// Leases tasks and reports their levels at `pace`, from a random offset; one latency per call
/// (from its first try to its answer: a call turned away is tried again, as real workers do).
async fn paced(worker: FakeWorker, pace: Pace, w: u64) -> Result<Load, tonic::Status> {
    let mut load = Load {
        latencies: Vec::new(),
        tasks: 0,
        calls: 0,
    };
    let fraction = (shared::synthetic::splitmix(w) >> 11) as f64 / (1u64 << 53) as f64;
    tokio::time::sleep(pace.level.mul_f64(fraction)).await;
    loop {
        let lease = timed(&mut load, || {
            let mut w = worker.clone();
            async move { w.lease().await }
        })
        .await?;
        let Some(lease) = lease else {
            return Ok(load);
        };
        let mut beat = Instant::now();
        for level in 0..=pace.levels as u32 {
            tokio::time::sleep(pace.level).await;
            if beat.elapsed() >= pace.heartbeat {
                timed(&mut load, || {
                    let (mut w, lease) = (worker.clone(), lease.clone());
                    async move { w.heartbeat(&lease, level).await }
                })
                .await?;
                beat = Instant::now();
            }
            timed(&mut load, || {
                let (mut w, lease) = (worker.clone(), lease.clone());
                async move { w.report(&lease, level).await }
            })
            .await?;
        }
        timed(&mut load, || {
            let (mut w, lease) = (worker.clone(), lease.clone());
            async move { w.complete(&lease).await }
        })
        .await?;
        load.tasks += 1;
    }
}

/// Makes one call and records its latency (from its first try to its answer).
async fn timed<T, F, Fut>(load: &mut Load, call: F) -> Result<T, tonic::Status>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let t = Instant::now();
    let answer = retry(call).await;
    load.latencies.push(t.elapsed());
    load.calls += 1;
    answer
}

/// Makes one call, again after a short wait each time the coordinator turns it away for being
/// at its limit of calls at once (as real workers do).
async fn retry<T, F, Fut>(call: F) -> Result<T, tonic::Status>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    loop {
        match call().await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => return other,
        }
    }
}

/// Starts the coordinator and returns it with its URL.
async fn start(config: &BenchConfig) -> Result<(Server, String), BenchError> {
    let Some(exe) = &config.server_exe else {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::Bind)?;
        let server = RunningServer::start(ServerConfig::new(&config.db_path), listener).await?;
        let url = server.url();
        return Ok((Server::InProcess(server), url));
    };
    // A free port: bound, then released for the child (another process could take it in
    // between; the benchmark then fails to connect and says so).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(BenchError::Bind)?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = ChildServer(
        Command::new(exe)
            .arg("serve")
            .args(["--listen", &addr, "--db"])
            .arg(&config.db_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                exe: exe.clone(),
                source,
            })?,
    );
    let url = format!("http://{addr}");
    for _ in 0..300 {
        if crate::client::connect(&url).await.is_ok() {
            return Ok((Server::Child(child), url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::NoAnswer(url))
}

/// Stops the coordinator: its writes per commit (in process) or peak memory (child).
async fn stop(server: Server) -> Result<(Option<f64>, Option<f64>), BenchError> {
    match server {
        Server::InProcess(server) => {
            let commits = server.store().group_stats();
            server.shutdown().await?;
            let per = commits.writes as f64 / commits.groups.max(1) as f64;
            Ok((Some(per), None))
        }
        Server::Child(child) => Ok((None, peak_mib(child.0.id()))),
    }
}

/// A process's peak resident memory (`VmHWM` in `/proc/PID/status`), where Linux gives it.
fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn remove_db(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut path = db.to_path_buf().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}
