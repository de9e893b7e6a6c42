//! The `worker` binary.
//!
//! - `worker --coordinator URL [--parallel N] [--name NAME] [--exit-when-idle]
//!   [--token-file PATH] [--tls-ca PATH] [--shutdown-timeout S]` joins a coordinator and pulls
//!   tasks until stopped (SIGTERM: returns its leases within the timeout; see
//!   [`worker::client`]);
//! - `worker train SWEEP.yaml --task INDEX [--with-masks]` runs one task of a sweep file
//!   locally and prints one JSON object per IMP level on stdout;
//! - `worker data SWEEP.yaml --task INDEX` prints the task's data set as CSV on stdout (the
//!   standardised points every level trains and tests on);
//! - `worker bench` prints seconds per training epoch, GFLOP/s and peak memory for a grid of
//!   widths and densities.
//!
//! Logs and progress go to stderr through tracing; stdout carries only results.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use shared::sweep::Sweep;
use worker::imp::{run_task, Resume};

/// Large blocks of their own, kept for reuse once [`worker::alloc::recycle`] is called: see
/// [`worker::alloc`].
#[global_allocator]
static ALLOC: worker::alloc::Allocator = worker::alloc::Allocator;

#[derive(Parser)]
#[command(
    name = "worker",
    version,
    about = "Trains lottery tickets through iterative magnitude pruning, locally or for a coordinator"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    connect: worker::client::Args,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run one task of a sweep file locally; one JSON object per level on stdout.
    Train {
        /// The sweep file.
        sweep: PathBuf,
        /// The task's index in the expanded sweep (see `coordinator plan`).
        #[arg(long)]
        task: usize,
        /// Add each level's masks: per weight matrix ([fan_out, fan_in], input layer first) the
        /// sorted flat indices `o * fan_in + i` of the kept weights.
        #[arg(long)]
        with_masks: bool,
        /// Override a key of the sweep file (KEY=VALUE, a dotted key and a YAML value, e.g.
        /// train.max_epochs=10); repeatable, applied in order.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
        set: Vec<shared::sweep::Override>,
    },
    /// Print a task's data set as CSV: a header `split,x0,..,y0,..`, then one row per point,
    /// the train split first in training order, then the test split; inputs standardised
    /// with the train statistics exactly as training sees them.
    Data {
        /// The sweep file.
        sweep: PathBuf,
        /// The task's index in the expanded sweep (see `coordinator plan`); every task of a
        /// data seed shares one data set.
        #[arg(long, default_value_t = 0)]
        task: usize,
        /// Override a key of the sweep file (KEY=VALUE, e.g. data.seed=3); repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
        set: Vec<shared::sweep::Override>,
    },
    /// Seconds per training epoch (16 Adam steps of batch 64 and the held-out loss) for a
    /// grid of widths and densities, GFLOP/s on the kept weights, and peak memory.
    Bench {
        /// Hidden widths of the shapes [4, w, w, 2], comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![8, 38, 104, 410, 1310])]
        widths: Vec<usize>,
        /// Fractions of every weight matrix kept (at random positions), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1.0])]
        densities: Vec<f64>,
        /// Epochs per measurement.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Measurements per row; the table shows their median.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Untimed epochs before measuring.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Threads for the matrix products and sparse kernels.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Force every layer dense or sparse instead of the engine's choice by density.
        #[arg(long, value_enum, default_value_t = worker::bench::PathChoice::Auto)]
        path: worker::bench::PathChoice,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    if let Err(error) = shared::cpu::check() {
        eprintln!("Error: {error}");
        return ExitCode::FAILURE;
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    worker::client::init_tracing(cli.log_json);
    // Every command trains: freed large blocks are kept for the next step.
    worker::alloc::recycle();
    match cli.command {
        Some(Command::Train {
            sweep,
            task,
            with_masks,
            set,
        }) => train(&sweep, task, with_masks, &set),
        Some(Command::Data { sweep, task, set }) => data(&sweep, task, &set),
        Some(Command::Bench {
            widths,
            densities,
            epochs,
            repeats,
            warmup,
            threads,
            path,
            json,
        }) => {
            let config = worker::bench::BenchConfig {
                widths,
                densities,
                epochs,
                repeats,
                warmup,
                path,
            };
            bench(&config, threads, json)
        }
        None => worker::client::main(cli.connect),
    }
}

fn parse_override(s: &str) -> Result<shared::sweep::Override, String> {
    s.parse()
}

/// Task `index` of the sweep file at `path` with `overrides` applied.
fn task_of(
    path: &Path,
    index: usize,
    overrides: &[shared::sweep::Override],
) -> Result<shared::spec::TaskSpec> {
    let sweep = Sweep::from_path_with(path, overrides).map_err(anyhow::Error::new)?;
    let mut tasks = sweep.expand().map_err(anyhow::Error::new)?;
    if index >= tasks.len() {
        bail!(
            "{}: no task {index}: the sweep expands to {} tasks (indices 0..{})",
            path.display(),
            tasks.len(),
            tasks.len().saturating_sub(1)
        );
    }
    Ok(tasks.swap_remove(index))
}

fn data(path: &Path, index: usize, overrides: &[shared::sweep::Override]) -> Result<()> {
    let spec = task_of(path, index, overrides)?;
    let dataset = shared::data::generate(&spec.data)
        .with_context(|| format!("{}: task {index}: the data set", path.display()))?;
    let csv = shared::data::to_csv(&dataset);
    print_line(csv.trim_end_matches('\n'))
}

fn train(
    path: &Path,
    index: usize,
    with_masks: bool,
    overrides: &[shared::sweep::Override],
) -> Result<()> {
    let spec = &task_of(path, index, overrides)?;
    let id = spec.id();
    tracing::info!(task = index, id = %id, shape = ?spec.shape, levels = spec.prune.levels, "training");
    let mut failure = None;
    run_task(
        spec,
        Resume::default(),
        &AtomicBool::new(false),
        |outcome| {
            let mut line = serde_json::to_value(&outcome.metrics).expect("metrics serialise");
            if let Value::Object(map) = &mut line {
                map.insert("task".into(), json!(index));
                map.insert("id".into(), json!(id));
                if with_masks {
                    let masks: Vec<&Vec<u32>> = outcome.masks.iter().map(|m| &m.kept).collect();
                    map.insert("masks".into(), json!(masks));
                }
            }
            match print_line(&line.to_string()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    )?;
    failure.map_or(Ok(()), Err)
}

fn bench(config: &worker::bench::BenchConfig, threads: usize, json: bool) -> Result<()> {
    if let Some(bad) = config.densities.iter().find(|d| !(**d > 0.0 && **d <= 1.0)) {
        bail!("--densities: {bad} is outside (0, 1]");
    }
    if config.widths.contains(&0) {
        bail!("--widths: a width must be at least 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("starting the benchmark's threads")?;
    if !json {
        print_line(&format!(
            "{:>6} {:>8} {:>10} {:>10} {:>10} {:>22} {:>8} {:>11} {:>11} {:>8} {:>9}",
            "width",
            "density",
            "weights",
            "kept",
            "trained",
            "paths",
            "threads",
            "s/epoch",
            "min s/ep",
            "GFLOP/s",
            "peak MiB"
        ))?;
    }
    let mut failure = None;
    pool.install(|| {
        worker::bench::run(config, |row| {
            let line = if json {
                serde_json::to_string(row).expect("bench rows serialise")
            } else {
                format!(
                    "{:>6} {:>8} {:>10} {:>10} {:>10} {:>22} {:>8} {:>11.5} {:>11.5} {:>8.1} {:>9.1}",
                    row.width,
                    row.density,
                    row.weights,
                    row.kept,
                    row.trained,
                    row.paths.join(","),
                    row.threads,
                    row.seconds_per_epoch,
                    row.seconds_per_epoch_min,
                    row.gflops,
                    row.peak_rss_mib
                )
            };
            if failure.is_none() {
                failure = print_line(&line).err();
            }
        });
    });
    failure.map_or(Ok(()), Err)
}

/// Stdout was closed by its reader (`worker train ... | head`): the end of the output, which
/// `main` ends quietly, as Unix tools do. SIGPIPE stays ignored, as Rust leaves it: with its
/// default disposition a write to a socket whose peer has gone (hyper writes HTTP/2 with
/// `writev`, which raises the signal) would kill a worker and every task it runs.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
struct StdoutClosed;

/// Writes `line` and a newline to stdout, flushed.
fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write results to stdout")),
    }
}
