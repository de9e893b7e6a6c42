//! The pull loop against a coordinator: register, lease, run, heartbeat, report, complete.
//!
//! One async task leases work while fewer than `parallel` tasks run. Each leased task trains on
//! a blocking thread inside one rayon pool sized to the machine (so dfdx's own gemm threads and
//! the tasks share the cores), and hands every finished level to an async reporter through a
//! channel. The reporter retries a report with backoff while the coordinator is unreachable, so
//! a finished level is never dropped while its lease stands; a heartbeat task keeps the lease
//! alive. When the coordinator says the lease is gone (expired, reassigned, unknown) the task is
//! cancelled between epochs and abandoned: the coordinator hands it to someone else, who
//! resumes at the first level not stored.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::{debug, error, info, warn};

use proto::convert::{masks_from_wire, masks_to_wire, metrics_to_wire};
use proto::v1::coordinator_client::CoordinatorClient;
use proto::v1::{
    CompleteTaskRequest, FailTaskRequest, HeartbeatRequest, Lease, LeaseTaskRequest,
    RegisterWorkerRequest, ReportLevelRequest,
};
use shared::spec::TaskSpec;

use crate::imp::{run_task, ImpError, LevelOutcome, Resume};

/// How a worker joins a coordinator (the `worker` command's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The coordinator's address.
    #[arg(
        long,
        env = "COORDINATOR_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub coordinator: String,
    /// Tasks to run at once (default: one per core).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// The name shown by `coordinator status` (default: HOSTNAME-PID).
    #[arg(long)]
    pub name: Option<String>,
    /// Exit once the coordinator has no pending or running task left.
    #[arg(long)]
    pub exit_when_idle: bool,
}

/// A worker's settings, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub coordinator: String,
    pub parallel: usize,
    pub name: String,
    pub exit_when_idle: bool,
    /// Threads of the training pool that the tasks and dfdx's matrix products share.
    pub threads: usize,
}

impl Config {
    pub fn from_args(args: Args) -> Config {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            coordinator: args.coordinator,
            parallel: args.parallel.unwrap_or(cores).max(1),
            name: args
                .name
                .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id())),
            exit_when_idle: args.exit_when_idle,
            threads: cores,
        }
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub completed: usize,
    pub failed: usize,
    pub abandoned: usize,
    pub levels_reported: usize,
}

/// Logs to stderr: human-readable, or JSON lines; `RUST_LOG` overrides the `info` default.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The `worker` command: runs until idle (with `--exit-when-idle`) or until Ctrl-C / SIGTERM.
pub fn main(args: Args) -> Result<()> {
    let config = Config::from_args(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let summary = run(config, shutdown_signal()).await?;
        info!(
            completed = summary.completed,
            failed = summary.failed,
            abandoned = summary.abandoned,
            levels = summary.levels_reported,
            "worker stopped"
        );
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Pulls and runs tasks until `shutdown` resolves or, with `exit_when_idle`, no work is left.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<Summary> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("imp-{i}"))
            .build()
            .context("starting the training thread pool")?,
    );
    let work = pull_loop(config, pool, stop_rx);
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => result,
        _ = shutdown => {
            info!("shutting down: no new tasks, cancelling running ones");
            let _ = stop_tx.send(true);
            work.await
        }
    }
}

async fn connect(url: &str, stop: &watch::Receiver<bool>) -> Result<CoordinatorClient<Channel>> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("bad coordinator address {url:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(30)));
    let mut backoff = Backoff::new();
    loop {
        match endpoint.connect().await {
            Ok(channel) => {
                return Ok(CoordinatorClient::new(channel)
                    .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(proto::MAX_MESSAGE_BYTES))
            }
            Err(e) => {
                warn!(coordinator = url, error = %e, "coordinator unreachable, retrying");
                if backoff.wait(stop).await {
                    bail!("stopped before the coordinator could be reached");
                }
            }
        }
    }
}

async fn register(
    client: &mut CoordinatorClient<Channel>,
    config: &Config,
    stop: &watch::Receiver<bool>,
) -> Result<(u64, Duration)> {
    let mut backoff = Backoff::new();
    loop {
        let request = RegisterWorkerRequest {
            name: config.name.clone(),
            hostname: hostname(),
            api_version: proto::API_VERSION,
            parallel: config.parallel as u32,
        };
        match client.register_worker(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let heartbeat = Duration::from_millis(reply.heartbeat_interval_ms.max(100));
                info!(worker_id = reply.worker_id, name = %config.name, parallel = config.parallel, "registered");
                return Ok((reply.worker_id, heartbeat));
            }
            Err(status) if transient(&status) => {
                warn!(error = %status.message(), "cannot register yet, retrying");
                if backoff.wait(stop).await {
                    bail!("stopped before registering");
                }
            }
            Err(status) => bail!("the coordinator refused this worker: {}", status.message()),
        }
    }
}

async fn pull_loop(
    config: Config,
    pool: Arc<rayon::ThreadPool>,
    stop: watch::Receiver<bool>,
) -> Result<Summary> {
    let mut client = connect(&config.coordinator, &stop).await?;
    let (mut worker_id, mut heartbeat) = register(&mut client, &config, &stop).await?;
    let slots = Arc::new(Semaphore::new(config.parallel));
    let mut running: JoinSet<TaskEnd> = JoinSet::new();
    let mut summary = Summary::default();
    let mut backoff = Backoff::new();
    loop {
        while let Some(done) = running.try_join_next() {
            summary.add(done);
        }
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            Some(done) = running.join_next(), if !running.is_empty() => { summary.add(done); continue; }
        };
        let reply = client.lease_task(LeaseTaskRequest { worker_id }).await;
        match reply {
            Ok(reply) => {
                backoff.reset();
                let reply = reply.into_inner();
                if let Some(lease) = reply.lease {
                    let ctx = TaskContext {
                        client: client.clone(),
                        worker_id,
                        heartbeat,
                        pool: pool.clone(),
                        stop: stop.clone(),
                    };
                    running.spawn(async move {
                        let end = run_lease(ctx, lease).await;
                        drop(permit);
                        end
                    });
                    continue;
                }
                drop(permit);
                if config.exit_when_idle && !reply.sweeps_active && running.is_empty() {
                    info!("no work left, exiting");
                    break;
                }
                let wait = Duration::from_millis(reply.retry_after_ms.clamp(100, 5_000));
                if sleep_or_stop(wait, &stop).await {
                    break;
                }
            }
            Err(status) if status.code() == Code::NotFound => {
                drop(permit);
                warn!("the coordinator forgot this worker, registering again");
                (worker_id, heartbeat) = register(&mut client, &config, &stop).await?;
            }
            Err(status) if transient(&status) => {
                drop(permit);
                warn!(error = %status.message(), "cannot lease, retrying");
                if backoff.wait(&stop).await {
                    break;
                }
            }
            Err(status) => bail!("the coordinator refused a lease: {}", status.message()),
        }
    }
    while let Some(done) = running.join_next().await {
        summary.add(done);
    }
    Ok(summary)
}

struct TaskContext {
    client: CoordinatorClient<Channel>,
    worker_id: u64,
    heartbeat: Duration,
    pool: Arc<rayon::ThreadPool>,
    stop: watch::Receiver<bool>,
}

/// How one lease ended.
#[derive(Debug)]
enum TaskEnd {
    Completed { levels: usize },
    Failed { levels: usize },
    Abandoned { levels: usize },
}

impl Summary {
    fn add(&mut self, end: Result<TaskEnd, tokio::task::JoinError>) {
        match end {
            Ok(TaskEnd::Completed { levels }) => {
                self.completed += 1;
                self.levels_reported += levels;
            }
            Ok(TaskEnd::Failed { levels }) => {
                self.failed += 1;
                self.levels_reported += levels;
            }
            Ok(TaskEnd::Abandoned { levels }) => {
                self.abandoned += 1;
                self.levels_reported += levels;
            }
            Err(e) => {
                error!(error = %e, "a task runner panicked");
                self.failed += 1;
            }
        }
    }
}

/// Runs one leased task to its end: trains, heartbeats, reports every level, completes.
async fn run_lease(ctx: TaskContext, lease: Lease) -> TaskEnd {
    let TaskContext {
        mut client,
        worker_id,
        heartbeat,
        pool,
        mut stop,
    } = ctx;
    let lease_id = lease.lease_id;
    let task_id = lease.task_id.clone();
    info!(task = %task_id, sweep = %lease.sweep, lease = lease_id, resume_level = lease.resume_level, "leased");

    let prepared = serde_json::from_str::<TaskSpec>(&lease.spec_json)
        .map_err(|e| format!("the task's settings do not parse: {e}"))
        .and_then(|spec| {
            let previous = if lease.resume_level == 0 {
                None
            } else {
                Some(
                    masks_from_wire(&lease.previous_masks)
                        .map_err(|e| format!("stored mask: {e}"))?,
                )
            };
            Ok((spec, previous))
        });
    let (spec, previous) = match prepared {
        Ok(ok) => ok,
        Err(message) => {
            fail(&mut client, worker_id, lease_id, &message, &stop).await;
            return TaskEnd::Failed { levels: 0 };
        }
    };

    let cancel = Arc::new(AtomicBool::new(false));
    let level_now = Arc::new(AtomicU32::new(lease.resume_level));
    let (tx, mut rx) = mpsc::unbounded_channel::<LevelOutcome>();
    let training = {
        let cancel = cancel.clone();
        let level_now = level_now.clone();
        let resume = Resume {
            level: lease.resume_level as usize,
            previous_masks: previous,
        };
        tokio::task::spawn_blocking(move || {
            pool.install(|| {
                run_task(&spec, resume, &cancel, |outcome| {
                    level_now.store(outcome.metrics.level as u32 + 1, Ordering::Relaxed);
                    match tx.send(outcome) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_) => ControlFlow::Break(()),
                    }
                })
            })
        })
    };

    // Heartbeats until the task ends; a lost lease cancels training.
    let lost = Arc::new(AtomicBool::new(false));
    let beat = {
        let mut client = client.clone();
        let cancel = cancel.clone();
        let lost = lost.clone();
        let level_now = level_now.clone();
        let task_id = task_id.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(heartbeat);
            tick.tick().await;
            loop {
                tick.tick().await;
                let request = HeartbeatRequest {
                    worker_id,
                    lease_id,
                    level: level_now.load(Ordering::Relaxed),
                };
                match client.heartbeat(request).await {
                    Ok(_) => {}
                    Err(status) if transient(&status) => {
                        debug!(task = %task_id, error = %status.message(), "heartbeat not delivered");
                    }
                    Err(status) => {
                        warn!(task = %task_id, error = %status.message(), "lease lost, abandoning the task");
                        lost.store(true, Ordering::Relaxed);
                        cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        })
    };

    let mut reported = 0;
    let mut abandoned = false;
    while let Some(outcome) = rx.recv().await {
        if abandoned {
            continue;
        }
        match report(&mut client, worker_id, lease_id, &outcome, &mut stop).await {
            Ok(()) => {
                reported += 1;
                debug!(task = %task_id, level = outcome.metrics.level, status = ?outcome.metrics.status, "level reported");
            }
            Err(ReportError::LeaseLost(message)) => {
                warn!(task = %task_id, level = outcome.metrics.level, error = %message, "lease lost, abandoning the task");
                lost.store(true, Ordering::Relaxed);
                cancel.store(true, Ordering::Relaxed);
                abandoned = true;
            }
            Err(ReportError::Refused(message)) => {
                error!(task = %task_id, level = outcome.metrics.level, error = %message, "report refused");
                cancel.store(true, Ordering::Relaxed);
                beat.abort();
                let _ = training.await;
                fail(
                    &mut client,
                    worker_id,
                    lease_id,
                    &format!(
                        "report of level {} refused: {message}",
                        outcome.metrics.level
                    ),
                    &stop,
                )
                .await;
                return TaskEnd::Failed { levels: reported };
            }
            Err(ReportError::Stopped) => {
                cancel.store(true, Ordering::Relaxed);
                abandoned = true;
            }
        }
    }
    beat.abort();
    let result = training.await;
    if abandoned || lost.load(Ordering::Relaxed) {
        return TaskEnd::Abandoned { levels: reported };
    }
    match result {
        Ok(Ok(())) => match complete(&mut client, worker_id, lease_id, &mut stop).await {
            Ok(()) => {
                info!(task = %task_id, levels = reported, "task done");
                TaskEnd::Completed { levels: reported }
            }
            Err(message) => {
                warn!(task = %task_id, error = %message, "could not complete the task");
                TaskEnd::Abandoned { levels: reported }
            }
        },
        Ok(Err(ImpError::Cancelled)) => TaskEnd::Abandoned { levels: reported },
        Ok(Err(e)) => {
            fail(&mut client, worker_id, lease_id, &e.to_string(), &stop).await;
            TaskEnd::Failed { levels: reported }
        }
        Err(join) => {
            let message = format!("training panicked: {join}");
            error!(task = %task_id, error = %message);
            fail(&mut client, worker_id, lease_id, &message, &stop).await;
            TaskEnd::Failed { levels: reported }
        }
    }
}

enum ReportError {
    /// The lease expired, was reassigned or is unknown: someone else owns the task now.
    LeaseLost(String),
    /// The coordinator found the report invalid.
    Refused(String),
    /// The worker is shutting down.
    Stopped,
}

/// Delivers one level, retrying while the coordinator is unreachable.
async fn report(
    client: &mut CoordinatorClient<Channel>,
    worker_id: u64,
    lease_id: u64,
    outcome: &LevelOutcome,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ReportError> {
    let request = ReportLevelRequest {
        worker_id,
        lease_id,
        level: outcome.metrics.level as u32,
        metrics: Some(metrics_to_wire(&outcome.metrics)),
        masks: masks_to_wire(&outcome.masks),
    };
    let mut backoff = Backoff::new();
    loop {
        match client.report_level(request.clone()).await {
            Ok(_) => return Ok(()),
            Err(status) if transient(&status) => {
                warn!(level = outcome.metrics.level, error = %status.message(), "report not delivered, retrying");
                // A finished level is worth waiting for even while shutting down, for a while.
                if backoff.attempts > 20 && *stop.borrow() {
                    return Err(ReportError::Stopped);
                }
                backoff.sleep().await;
            }
            Err(status) if lease_gone(&status) => {
                return Err(ReportError::LeaseLost(status.message().to_string()))
            }
            Err(status) => return Err(ReportError::Refused(status.message().to_string())),
        }
    }
}

async fn complete(
    client: &mut CoordinatorClient<Channel>,
    worker_id: u64,
    lease_id: u64,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let mut backoff = Backoff::new();
    loop {
        match client
            .complete_task(CompleteTaskRequest {
                worker_id,
                lease_id,
            })
            .await
        {
            Ok(_) => return Ok(()),
            Err(status) if transient(&status) => {
                if backoff.attempts > 20 && *stop.borrow() {
                    return Err("stopped before the task could be completed".into());
                }
                backoff.sleep().await;
            }
            Err(status) => return Err(status.message().to_string()),
        }
    }
}

async fn fail(
    client: &mut CoordinatorClient<Channel>,
    worker_id: u64,
    lease_id: u64,
    message: &str,
    stop: &watch::Receiver<bool>,
) {
    warn!(lease = lease_id, error = %message, "failing the task");
    let mut backoff = Backoff::new();
    loop {
        let request = FailTaskRequest {
            worker_id,
            lease_id,
            error: message.to_string(),
        };
        match client.fail_task(request).await {
            Err(status) if transient(&status) => {
                if backoff.wait(stop).await {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Errors that go away by themselves: the coordinator is down, restarting or overloaded.
fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
    )
}

/// Errors that mean the lease no longer belongs to this worker.
fn lease_gone(status: &Status) -> bool {
    matches!(status.code(), Code::FailedPrecondition | Code::NotFound)
}

/// Exponential backoff from 200 ms to 10 s, with jitter from the process id and attempt.
struct Backoff {
    attempts: u32,
}

impl Backoff {
    fn new() -> Self {
        Backoff { attempts: 0 }
    }

    fn reset(&mut self) {
        self.attempts = 0;
    }

    fn next_delay(&mut self) -> Duration {
        self.attempts += 1;
        let base = 200u64.saturating_mul(1 << self.attempts.min(6));
        let jitter =
            (u64::from(std::process::id()) * 7919 + u64::from(self.attempts) * 104_729) % 200;
        Duration::from_millis(base.min(10_000) + jitter)
    }

    async fn sleep(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Sleeps the next delay; true if `stop` was raised meanwhile.
    async fn wait(&mut self, stop: &watch::Receiver<bool>) -> bool {
        let delay = self.next_delay();
        sleep_or_stop(delay, stop).await
    }
}

/// Sleeps `delay`; true if `stop` was raised before or meanwhile.
async fn sleep_or_stop(delay: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut stop = stop.clone();
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.wait_for(|s| *s) => return true,
    }
    let stopped = *stop.borrow();
    stopped
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
