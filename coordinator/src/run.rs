//! `coordinator run`: a sweep on one machine, with an embedded coordinator and local workers.
//!
//! The coordinator is the same server `coordinator serve` runs, bound to a loopback port chosen
//! by the OS, on a database of its own per sweep (`results/<sweep>.db` unless `--db` says
//! otherwise), so a run that was interrupted resumes where it stood when started again. The
//! worker is the `worker` crate's pull loop, in-process, with one task slot and one training
//! thread per core (`--workers N`: N of each). Each task trains on one thread while there is
//! work for every slot (parallelism across tasks is what pays); once nothing is pending, the
//! idle slots' threads go to the tasks still running (`worker::client::cores`), so the end of
//! a sweep does not run its widest task on one core while the others idle. This is the only
//! module of the coordinator that links the worker crate.
//!
//! The embedded coordinator requires a random token generated for the run, which only the
//! in-process clients know: other users of the machine cannot call it over loopback.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use analysis::tables::ResultRow;
use coordinator::client::{ClientOptions, Token};
use coordinator::{sweep_data, RunningServer, ServerConfig};
use proto::v1::{StatusRequest, StatusResponse, SubmitSweepRequest, TaskLevelsRequest};
use shared::sweep::Sweep;

/// Arguments of `coordinator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The sweep file.
    pub sweep: PathBuf,
    /// Tasks trained at once, one thread each, by the local worker (default: one per core);
    /// once nothing is pending their threads go to the tasks still running.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// The SQLite database (default: results/<sweep name>.db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Format of the results printed at the end.
    #[arg(long, value_enum, default_value_t = crate::commands::results::Format::Table)]
    pub format: crate::commands::results::Format,
    #[command(flatten)]
    pub overrides: crate::commands::SweepOverrides,
}

/// Runs a sweep locally and prints its results.
pub async fn run(args: RunArgs) -> Result<()> {
    crate::commands::init_logging(false, "warn");
    // This process trains: freed large blocks are kept for the next step (`worker::alloc`).
    worker::alloc::recycle();
    let sweep = args
        .overrides
        .load(&args.sweep)
        .map_err(anyhow::Error::new)?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("{}.db", sweep.name)));
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for the embedded coordinator")?;
    let token = Token::generate();
    let server = RunningServer::start(ServerConfig::new(&db).with_token(token.clone()), listener)
        .await
        .with_context(|| format!("cannot start the coordinator on {}", db.display()))?;
    let url = server.url();
    let auth = ClientOptions::none().with_token(token);
    let outcome = drive(&args, &sweep, &url, &auth, workers).await;
    let shutdown = server.shutdown().await;
    let rows = outcome?;
    shutdown.context("the embedded coordinator failed")?;

    crate::commands::results::print_rows(&rows, args.format)?;
    eprintln!(
        "results stored in {} (query again with: coordinator results {} --db {})",
        db.display(),
        sweep.name,
        db.display()
    );
    Ok(())
}

/// Submits the sweep, runs the workers with a progress bar until the sweep is finished (or
/// Ctrl-C), and fetches the aggregates.
async fn drive(
    args: &RunArgs,
    sweep: &Sweep,
    url: &str,
    auth: &ClientOptions,
    workers: usize,
) -> Result<Vec<ResultRow>> {
    let mut client = coordinator::client::connect_with(url, auth).await?;
    let submitted = client
        .submit_sweep(SubmitSweepRequest {
            name: sweep.name.clone(),
            yaml: sweep.yaml().to_string(),
            source: args.sweep.display().to_string(),
            priority: None,
        })
        .await
        .map_err(crate::commands::rpc_error)?
        .into_inner();
    eprintln!(
        "sweep {}: {} tasks ({} new, {} already known), {} at once on the local worker",
        submitted.sweep, submitted.total, submitted.added, submitted.existing, workers
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut pool = tokio::task::JoinSet::new();
    let mut config = worker::client::Config::new(url);
    config.parallel = workers;
    config.name = "local".to_string();
    config.exit_when_idle = true;
    config.threads = workers;
    config.auth = auth.clone();
    let mut stop = stop_rx.clone();
    pool.spawn(async move {
        worker::client::run(config, async move {
            let _ = stop.wait_for(|&s| s).await;
        })
        .await
    });

    let bar = progress_bar();
    let mut interrupted = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                bar.println("interrupted: stopping the workers; run the same command again to resume");
                let _ = stop_tx.send(true);
            }
            Some(done) = pool.join_next() => {
                match done {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => bar.println(format!("a local worker stopped: {e:#}")),
                    Err(e) => bar.println(format!("a local worker panicked: {e}")),
                }
                if pool.is_empty() {
                    break;
                }
                continue;
            }
        }
        let status = client
            .status(StatusRequest {
                sweep: Some(sweep.name.clone()),
            })
            .await
            .map_err(crate::commands::rpc_error)?
            .into_inner();
        show(&bar, &status);
    }
    let status = client
        .status(StatusRequest {
            sweep: Some(sweep.name.clone()),
        })
        .await
        .map_err(crate::commands::rpc_error)?
        .into_inner();
    show(&bar, &status);
    bar.finish();
    if let Some(s) = status.sweeps.first() {
        for failure in &s.failures {
            eprintln!(
                "task {} failed after {} attempts: {}",
                failure.task_id, failure.attempts, failure.error
            );
        }
        if !interrupted && s.pending + s.leased > 0 {
            bail!(
                "the local worker stopped with {} tasks unfinished",
                s.pending + s.leased
            );
        }
    }
    let answer = client
        .task_levels(TaskLevelsRequest {
            sweep: sweep.name.clone(),
        })
        .await
        .map_err(crate::commands::rpc_error)?
        .into_inner();
    let data = sweep_data::from_wire(&answer).map_err(anyhow::Error::msg)?;
    Ok(ResultRow::of_tasks(&data.tasks))
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
            .expect("a valid progress template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Updates the bar from a status answer: the share of the expected cost stored as the bar (the
/// share of the planned levels from a coordinator that does not record costs), levels, tasks,
/// the coordinator's cost-aware ETA and the running tasks in the message.
fn show(bar: &ProgressBar, status: &StatusResponse) {
    let Some(sweep) = status.sweeps.first() else {
        return;
    };
    let fraction = sweep.work_done.unwrap_or(if sweep.levels_planned > 0 {
        sweep.levels_done as f64 / sweep.levels_planned as f64
    } else {
        0.0
    });
    bar.set_length(1000);
    bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0).round() as u64);
    let running: Vec<String> = status
        .workers
        .iter()
        .flat_map(|w| {
            w.tasks.iter().map(move |t| {
                format!(
                    "{}:{}@L{}",
                    w.name,
                    &t.task_id[..t.task_id.len().min(6)],
                    t.level
                )
            })
        })
        .collect();
    bar.set_message(format!(
        "{} of the work, {}/{} levels, tasks {}/{} done, {} failed, {:.1} levels/min, eta {}{}{}",
        coordinator::render::work_done(Some(fraction)),
        sweep.levels_done,
        sweep.levels_planned,
        sweep.done,
        sweep.total,
        sweep.failed,
        sweep.levels_per_minute,
        sweep
            .eta_seconds
            .map_or_else(|| "-".to_string(), analysis::tables::duration),
        if running.is_empty() { "" } else { " | " },
        running.join(" ")
    ));
}
