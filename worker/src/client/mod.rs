//! The pull loop against a coordinator: register, lease, run, heartbeat, report, complete.
//!
//! One async task leases work while fewer than `parallel` tasks run. Each leased task trains on
//! a blocking thread, each level inside a rayon pool of its own (dfdx's matrix products run on
//! it) sized by [`cores`]: `threads / parallel` threads while there is work for every slot,
//! the idle slots' threads too while the coordinator has nothing pending. It hands every
//! finished level to an async reporter through a channel. The reporter retries a report with backoff while the coordinator is unreachable, so
//! a finished level is never dropped while its lease stands; a heartbeat task keeps the lease
//! alive. When the coordinator says the lease is gone (expired, reassigned, unknown) the task is
//! cancelled between epochs and abandoned: the coordinator hands it to someone else, who
//! resumes at the first level not stored.
//!
//! Shutting down (SIGTERM on preemption or scale-down, Ctrl-C) is bounded by
//! `--shutdown-timeout`: the worker stops leasing, cancels training between epochs, delivers
//! the levels already finished (a few tries each), gives every open lease back with
//! `ReturnLease` (the task is pending again at once, no attempt counted, its stored levels
//! kept) and exits. A task that finishes meanwhile is completed instead. The phases and the
//! tokens behind them are [`crate::shutdown`]'s.
//!
//! Credentials: the shared token (`--token-file`, `COORDINATOR_TOKEN_FILE` or
//! `COORDINATOR_TOKEN`) is sent on every call, and an `https://` coordinator is verified
//! against `--tls-ca`. A coordinator that answers UNAUTHENTICATED, or a certificate that does
//! not verify, stops the worker at once with a clear message: no retry can fix either.
//!
//! # Layout
//!
//! One job per file, from the outside in:
//!
//! - this file: the `worker` command's flags ([`Args`]), the resolved settings ([`Config`]),
//!   what a run did ([`Summary`]), logging ([`init_tracing`]), the process entry point
//!   ([`main`]) and [`run`], which owns the shutdown and its deadline;
//! - `pull`: connecting, registering and the pull loop: lease while a slot is free, spawn a
//!   task per lease, wait when there is nothing to do;
//! - `cores`: how the training threads are shared among the running tasks;
//! - `lease`: one lease from start to end, in named steps: prepare the resume point, train
//!   level by level, heartbeat, report each level, then complete, fail or give the lease back
//!   (an explicit `Ending`, decided by a pure function);
//! - `rpc`: the calls that end a level or a lease, with their retry policy; which
//!   `tonic::Status` codes are transient, which mean the lease is gone, and the refusal of
//!   credentials that stops the worker;
//! - `backoff`: exponential backoff with jitter and the sleep that a shutdown cuts short.

mod backoff;
pub mod cores;
mod lease;
mod pull;
mod rpc;

use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tracing::{error, info, warn};

use proto::auth::ClientOptions;

pub use crate::shutdown::shutdown_signal;
use crate::shutdown::Shutdown;
use lease::TaskEnd;
use rpc::Fatal;

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
    // `--token-file` and `--tls-ca`.
    #[command(flatten)]
    pub auth: proto::flags::ClientFlags,
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
    /// Training threads, split evenly among the `parallel` task slots (at least one each), or
    /// among the running tasks when the coordinator has nothing pending ([`cores`]).
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
        let (auth, warnings) = args.auth.load()?;
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

/// Pulls and runs tasks until `shutdown` resolves or, with `exit_when_idle`, no work is left.
///
/// Once `shutdown` resolves the worker stops leasing, cancels training, delivers finished
/// levels, returns its open leases and ends within `config.shutdown_timeout` (an error when
/// it could not). A refusal of its credentials ends it the same way, with that error.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<Summary> {
    let stop = Shutdown::new();
    let fatal = Fatal::new(stop.clone());
    let cores = cores::Cores::new(config.threads, config.parallel);
    let grace = config.shutdown_timeout;
    let work = pull::pull_loop(config, cores, stop.clone(), fatal.clone());
    tokio::pin!(work);
    let result = tokio::select! {
        result = &mut work => result,
        _ = async {
            tokio::select! {
                _ = shutdown => {
                    info!(timeout_s = grace.as_secs_f64(), "shutting down: no new tasks, cancelling training, delivering finished levels, returning leases");
                }
                _ = stop.stopping() => {}
            }
        } => {
            // Phase 1: stop leasing, cancel training, deliver, give back. Phase 2: the deadline.
            stop.begin();
            match tokio::time::timeout(grace, &mut work).await {
                Ok(result) => result,
                Err(_) => Err(anyhow!(
                    "shutdown did not finish within {} s: exiting anyway; leases not returned expire on the coordinator",
                    grace.as_secs_f64()
                )),
            }
        }
    };
    if let Some(message) = fatal.message() {
        bail!("{message}");
    }
    result
}

impl Summary {
    /// Counts a lease's end (a lease task that panicked counts as failed).
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

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_summary_counts_every_ending_and_its_levels() {
        let mut summary = Summary::default();
        summary.add(Ok(TaskEnd::Completed { levels: 5 }));
        summary.add(Ok(TaskEnd::Completed { levels: 1 }));
        summary.add(Ok(TaskEnd::Failed { levels: 2 }));
        summary.add(Ok(TaskEnd::Abandoned { levels: 3 }));
        summary.add(Ok(TaskEnd::Returned { levels: 4 }));
        let panicked = tokio::spawn(async { panic!("boom") })
            .await
            .expect_err("the task panics");
        summary.add(Err(panicked));
        assert_eq!(
            summary,
            Summary {
                completed: 2,
                failed: 2,
                abandoned: 1,
                returned: 1,
                levels_reported: 15,
            }
        );
    }

    #[test]
    fn the_flags_resolve_to_a_config() {
        use clap::Parser;

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::try_parse_from([
            "worker",
            "--coordinator",
            "http://example:1",
            "--parallel",
            "0",
            "--name",
            "w",
            "--exit-when-idle",
            "--shutdown-timeout",
            "7",
        ])
        .expect("the flags parse");
        let config = Config::from_args(cli.args).expect("no files to read");
        assert_eq!(config.coordinator, "http://example:1");
        // At least one task at a time.
        assert_eq!(config.parallel, 1);
        assert_eq!(config.name, "w");
        assert!(config.exit_when_idle);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(7));
    }
}
