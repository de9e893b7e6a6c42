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
//!
//! Shutting down (SIGTERM on preemption or scale-down, Ctrl-C) is bounded by
//! `--shutdown-timeout`: the worker stops leasing, cancels training between epochs, delivers
//! the levels already finished (a few tries each), gives every open lease back with
//! `ReturnLease` (the task is pending again at once, no attempt counted, its stored levels
//! kept) and exits. A task that finishes meanwhile is completed instead.
//!
//! Credentials: the shared token (`--token-file`, `COORDINATOR_TOKEN_FILE` or
//! `COORDINATOR_TOKEN`) is sent on every call, and an `https://` coordinator is verified
//! against `--tls-ca`. A coordinator that answers UNAUTHENTICATED, or a certificate that does
//! not verify, stops the worker at once with a clear message: no retry can fix either.

use std::future::Future;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tonic::{Code, Status};
use tracing::{debug, error, info, warn};

use proto::auth::{is_auth_error, AuthClient, ClientOptions};
use proto::convert::{masks_from_wire, masks_to_wire};
use proto::v1::{
    CompleteTaskRequest, FailTaskRequest, HeartbeatRequest, Lease, LeaseTaskRequest,
    RegisterWorkerRequest, ReportLevelRequest, ReturnLeaseRequest,
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
    /// File holding the coordinator's shared token (default: the token in COORDINATOR_TOKEN,
    /// if set). Never pass the token itself on the command line.
    #[arg(
        long,
        value_name = "PATH",
        env = proto::auth::TOKEN_FILE_ENV,
        hide_env_values = true
    )]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to verify an https:// coordinator against.
    #[arg(long, value_name = "PATH", env = proto::auth::TLS_CA_ENV)]
    pub tls_ca: Option<PathBuf>,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) may take to cancel training, deliver finished
    /// levels and return leases before the worker exits anyway.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub shutdown_timeout: u64,
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
    /// The shared token and the CA of an `https://` coordinator.
    pub auth: ClientOptions,
    /// How long a shutdown may take before the worker gives up and exits.
    pub shutdown_timeout: Duration,
}

impl Config {
    /// A worker of `coordinator` with the defaults of the `worker` command: one task per
    /// core, no token, no TLS, 30 s to shut down.
    pub fn new(coordinator: impl Into<String>) -> Config {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            coordinator: coordinator.into(),
            parallel: cores,
            name: format!("{}-{}", hostname(), std::process::id()),
            exit_when_idle: false,
            threads: cores,
            auth: ClientOptions::none(),
            shutdown_timeout: Duration::from_secs(30),
        }
    }

    /// Resolves the flags; reads the token and CA files (warning about a token file others
    /// can read).
    pub fn from_args(args: Args) -> Result<Config> {
        let (auth, warnings) =
            ClientOptions::load(args.token_file.as_deref(), args.tls_ca.as_deref())?;
        for warning in warnings {
            warn!("{warning}");
        }
        let mut config = Config::new(args.coordinator);
        config.parallel = args.parallel.unwrap_or(config.parallel).max(1);
        if let Some(name) = args.name {
            config.name = name;
        }
        config.exit_when_idle = args.exit_when_idle;
        config.auth = auth;
        config.shutdown_timeout = Duration::from_secs(args.shutdown_timeout);
        Ok(config)
    }
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub completed: usize,
    pub failed: usize,
    pub abandoned: usize,
    /// Leases given back while shutting down.
    pub returned: usize,
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
    let config = Config::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async move {
        let summary = run(config, shutdown_signal()).await?;
        info!(
            completed = summary.completed,
            failed = summary.failed,
            abandoned = summary.abandoned,
            returned = summary.returned,
            levels = summary.levels_reported,
            "worker stopped"
        );
        Ok(())
    });
    // Training threads still finishing an epoch do not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
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
///
/// Once `shutdown` resolves the worker stops leasing, cancels training, delivers finished
/// levels, returns its open leases and ends within `config.shutdown_timeout` (an error when
/// it could not). A refusal of its credentials ends it the same way, with that error.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<Summary> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let fatal = Fatal {
        message: Arc::new(OnceLock::new()),
        stop: stop_tx.clone(),
    };
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("imp-{i}"))
            .build()
            .context("starting the training thread pool")?,
    );
    let grace = config.shutdown_timeout;
    let mut stopped = stop_rx.clone();
    let work = pull_loop(config, pool, stop_rx, fatal.clone());
    tokio::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        _ = async {
            tokio::select! {
                _ = shutdown => {
                    info!(timeout_s = grace.as_secs_f64(), "shutting down: no new tasks, cancelling training, delivering finished levels, returning leases");
                }
                _ = stopped.wait_for(|&s| s) => {}
            }
        } => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(grace, &mut work).await {
                Ok(result) => result,
                Err(_) => Err(anyhow!(
                    "shutdown did not finish within {} s: exiting anyway; leases not returned expire on the coordinator",
                    grace.as_secs_f64()
                )),
            }
        }
    };
    if let Some(message) = fatal.message.get() {
        bail!("{message}");
    }
    result
}

/// A refusal no retry can fix (credentials): the first one is kept and stops the worker.
#[derive(Clone)]
struct Fatal {
    message: Arc<OnceLock<String>>,
    stop: Arc<watch::Sender<bool>>,
}

impl Fatal {
    fn raise(&self, message: String) {
        if self.message.set(message.clone()).is_ok() {
            error!(error = %message, "stopping the worker");
        }
        let _ = self.stop.send(true);
    }

    /// Raises the error of an UNAUTHENTICATED answer; true when `status` was one.
    fn check(&self, status: &Status) -> bool {
        if is_auth_error(status) {
            self.raise(unauthenticated(status));
            true
        } else {
            false
        }
    }
}

/// The message of a worker whose token was refused.
fn unauthenticated(status: &Status) -> String {
    format!(
        "the coordinator refused this worker's credentials (UNAUTHENTICATED: {}); give it the \
         coordinator's token with --token-file, {} or {}",
        status.message(),
        proto::auth::TOKEN_FILE_ENV,
        proto::auth::TOKEN_ENV
    )
}

async fn connect(
    url: &str,
    auth: &ClientOptions,
    stop: &watch::Receiver<bool>,
) -> Result<AuthClient> {
    let endpoint = auth
        .endpoint(url)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .tcp_keepalive(Some(Duration::from_secs(30)));
    let mut backoff = Backoff::new();
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(auth.client(channel)),
            Err(e) => {
                let error = error_chain(&e);
                if error.contains("invalid peer certificate") {
                    bail!(
                        "the coordinator's TLS certificate does not verify ({error}): check --tls-ca \
                         and that the certificate names the host in {url}"
                    );
                }
                warn!(coordinator = url, %error, "coordinator unreachable, retrying");
                if backoff.wait(stop).await {
                    bail!("stopped before the coordinator could be reached");
                }
            }
        }
    }
}

/// An error with its causes: tonic's "transport error" alone does not say which.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn register(
    client: &mut AuthClient,
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
            engine: crate::engine::ENGINE_VERSION,
        };
        match client.register_worker(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let heartbeat = Duration::from_millis(reply.heartbeat_interval_ms.max(100));
                info!(worker_id = reply.worker_id, name = %config.name, parallel = config.parallel, "registered");
                return Ok((reply.worker_id, heartbeat));
            }
            Err(status) if is_auth_error(&status) => bail!("{}", unauthenticated(&status)),
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
    fatal: Fatal,
) -> Result<Summary> {
    let mut client = connect(&config.coordinator, &config.auth, &stop).await?;
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
        // A slot freed by a task that stopped for the shutdown: no new lease.
        if *stop.borrow() {
            break;
        }
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
                        fatal: fatal.clone(),
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
            Err(status) if fatal.check(&status) => {
                drop(permit);
                break;
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
    client: AuthClient,
    worker_id: u64,
    heartbeat: Duration,
    pool: Arc<rayon::ThreadPool>,
    stop: watch::Receiver<bool>,
    fatal: Fatal,
}

/// How one lease ended.
#[derive(Debug)]
enum TaskEnd {
    Completed {
        levels: usize,
    },
    Failed {
        levels: usize,
    },
    Abandoned {
        levels: usize,
    },
    /// Given back with `ReturnLease` while shutting down.
    Returned {
        levels: usize,
    },
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
            Ok(TaskEnd::Returned { levels }) => {
                self.returned += 1;
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
        fatal,
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
            fail(&mut client, worker_id, lease_id, &message, &stop, &fatal).await;
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

    // Shutting down cancels training (between epochs); finished levels are still delivered.
    let on_stop = {
        let cancel = cancel.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            if stop.wait_for(|&s| s).await.is_ok() {
                cancel.store(true, Ordering::Relaxed);
            }
        })
    };

    // Heartbeats until the task ends; a lost lease cancels training.
    let lost = Arc::new(AtomicBool::new(false));
    let beat = {
        let mut client = client.clone();
        let cancel = cancel.clone();
        let lost = lost.clone();
        let fatal = fatal.clone();
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
                    Err(status) if fatal.check(&status) => return,
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
    // A finished level could not be delivered before shutting down: give the lease back.
    let mut undelivered = false;
    while let Some(outcome) = rx.recv().await {
        if abandoned || undelivered {
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
            Err(ReportError::Refused(status)) if fatal.check(&status) => {
                cancel.store(true, Ordering::Relaxed);
                undelivered = true;
            }
            Err(ReportError::Refused(status)) => {
                let message = status.message().to_string();
                error!(task = %task_id, level = outcome.metrics.level, error = %message, "report refused");
                cancel.store(true, Ordering::Relaxed);
                beat.abort();
                on_stop.abort();
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
                    &fatal,
                )
                .await;
                return TaskEnd::Failed { levels: reported };
            }
            Err(ReportError::Stopped) => {
                warn!(task = %task_id, level = outcome.metrics.level, "shutting down before this level could be delivered");
                cancel.store(true, Ordering::Relaxed);
                undelivered = true;
            }
        }
    }
    on_stop.abort();
    let result = training.await;
    if abandoned || lost.load(Ordering::Relaxed) {
        beat.abort();
        return TaskEnd::Abandoned { levels: reported };
    }
    let stopping = *stop.borrow();
    let cancelled = matches!(result, Ok(Err(ImpError::Cancelled)));
    if undelivered || (stopping && cancelled) {
        // Heartbeats go on until the lease is given back.
        let returned = give_back(&mut client, worker_id, lease_id, &task_id, &fatal).await;
        beat.abort();
        return if returned {
            TaskEnd::Returned { levels: reported }
        } else {
            TaskEnd::Abandoned { levels: reported }
        };
    }
    beat.abort();
    match result {
        Ok(Ok(())) => match complete(&mut client, worker_id, lease_id, &mut stop, &fatal).await {
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
            fail(
                &mut client,
                worker_id,
                lease_id,
                &e.to_string(),
                &stop,
                &fatal,
            )
            .await;
            TaskEnd::Failed { levels: reported }
        }
        Err(join) => {
            let message = format!("training panicked: {join}");
            error!(task = %task_id, error = %message);
            fail(&mut client, worker_id, lease_id, &message, &stop, &fatal).await;
            TaskEnd::Failed { levels: reported }
        }
    }
}

/// Gives a lease back (shutting down): a few quick tries, each with a short deadline, since
/// the worker is about to exit. True when the coordinator took it.
async fn give_back(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    task_id: &str,
    fatal: &Fatal,
) -> bool {
    const TRIES: u32 = 3;
    for attempt in 1..=TRIES {
        let mut request = tonic::Request::new(ReturnLeaseRequest {
            worker_id,
            lease_id,
        });
        request.set_timeout(Duration::from_secs(5));
        match client.return_lease(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                info!(task = %task_id, lease = lease_id, levels_stored = reply.levels_stored, task_done = reply.task_done, "lease returned");
                return true;
            }
            Err(status) if fatal.check(&status) => return false,
            Err(status) if status.code() == Code::Unimplemented => {
                warn!(task = %task_id, "the coordinator cannot take leases back (an older version): the lease will expire");
                return false;
            }
            Err(status) if transient(&status) && attempt < TRIES => {
                debug!(task = %task_id, error = %status.message(), "lease not returned yet, retrying");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(status) => {
                warn!(task = %task_id, lease = lease_id, error = %status.message(), "could not return the lease: it will expire");
                return false;
            }
        }
    }
    false
}

enum ReportError {
    /// The lease expired, was reassigned or is unknown: someone else owns the task now.
    LeaseLost(String),
    /// The coordinator refused the report (invalid, or not authenticated).
    Refused(Status),
    /// The worker is shutting down.
    Stopped,
}

/// Attempts at a delivery while shutting down, so a shutdown stays short.
const TRIES_WHILE_STOPPING: u32 = 3;

/// Delivers one level, retrying while the coordinator is unreachable (a few times only once
/// the worker is shutting down).
async fn report(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    outcome: &LevelOutcome,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ReportError> {
    let request = ReportLevelRequest {
        worker_id,
        lease_id,
        level: outcome.metrics.level as u32,
        metrics: Some(proto::v1::LevelMetrics::from(&outcome.metrics)),
        masks: masks_to_wire(&outcome.masks),
    };
    let mut backoff = Backoff::new();
    loop {
        match client.report_level(request.clone()).await {
            Ok(_) => return Ok(()),
            Err(status) if transient(&status) => {
                warn!(level = outcome.metrics.level, error = %status.message(), "report not delivered, retrying");
                // A finished level is worth waiting for even while shutting down, for a while.
                if backoff.attempts >= TRIES_WHILE_STOPPING && *stop.borrow() {
                    return Err(ReportError::Stopped);
                }
                backoff.pause(stop).await;
            }
            Err(status) if lease_gone(&status) => {
                return Err(ReportError::LeaseLost(status.message().to_string()))
            }
            Err(status) => return Err(ReportError::Refused(status)),
        }
    }
}

async fn complete(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    stop: &mut watch::Receiver<bool>,
    fatal: &Fatal,
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
                if backoff.attempts >= TRIES_WHILE_STOPPING && *stop.borrow() {
                    return Err("stopped before the task could be completed".into());
                }
                backoff.pause(stop).await;
            }
            Err(status) => {
                fatal.check(&status);
                return Err(status.message().to_string());
            }
        }
    }
}

async fn fail(
    client: &mut AuthClient,
    worker_id: u64,
    lease_id: u64,
    message: &str,
    stop: &watch::Receiver<bool>,
    fatal: &Fatal,
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
            Err(status) if fatal.check(&status) => return,
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

    /// Sleeps the next delay before another try, cut short when `stop` is raised, and at
    /// most half a second a try once it is: a shutdown gets a few quick tries.
    async fn pause(&mut self, stop: &watch::Receiver<bool>) {
        let delay = self.next_delay();
        if *stop.borrow() {
            tokio::time::sleep(delay.min(Duration::from_millis(500))).await;
        } else {
            sleep_or_stop(delay, stop).await;
        }
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
