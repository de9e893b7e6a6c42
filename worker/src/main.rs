//! The `worker` binary.
//!
//! - `worker --coordinator URL [--parallel N] [--name NAME] [--exit-when-idle]
//!   [--token-file PATH] [--tls-ca PATH] [--shutdown-timeout S]` joins a coordinator and pulls
//!   tasks until stopped (SIGTERM: returns its leases within the timeout; see
//!   [`worker::client`]);
//! - `worker train SWEEP.yaml --task INDEX [--with-masks]` runs one task of a sweep file
//!   locally and prints one JSON object per IMP level on stdout;
//! - `worker bench` prints seconds per IMP level and peak memory for a few widths.
//!
//! Logs and progress go to stderr through tracing; stdout carries only results.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use shared::sweep::Sweep;
use worker::imp::{run_task, Resume};

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
    },
    /// Seconds per IMP level and peak memory for a few widths, at a fixed epoch count.
    Bench {
        /// Hidden widths of the shapes [4, w, w, 2], comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = vec![8, 104, 410, 1310])]
        widths: Vec<usize>,
        /// Epochs per level (early stopping off).
        #[arg(long, default_value_t = 5)]
        epochs: usize,
        /// Pruning levels after the dense level.
        #[arg(long, default_value_t = 2)]
        levels: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    restore_sigpipe();
    let cli = Cli::parse();
    worker::client::init_tracing(cli.log_json);
    match cli.command {
        Some(Command::Train {
            sweep,
            task,
            with_masks,
        }) => train(&sweep, task, with_masks),
        Some(Command::Bench {
            widths,
            epochs,
            levels,
            json,
        }) => bench(&widths, epochs, levels, json),
        None => worker::client::main(cli.connect),
    }
}

fn train(path: &Path, index: usize, with_masks: bool) -> Result<()> {
    let sweep = Sweep::from_path(path).map_err(anyhow::Error::new)?;
    let tasks = sweep.expand().map_err(anyhow::Error::new)?;
    let Some(spec) = tasks.get(index) else {
        bail!(
            "{}: no task {index}: the sweep expands to {} tasks (indices 0..{})",
            path.display(),
            tasks.len(),
            tasks.len().saturating_sub(1)
        );
    };
    let id = spec.id();
    tracing::info!(task = index, id = %id, shape = ?spec.shape, levels = spec.prune.levels, "training");
    let stdout = std::io::stdout();
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
            let mut out = stdout.lock();
            match writeln!(out, "{line}").and_then(|_| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    )?;
    if let Some(e) = failure {
        return Err(e).context("writing results to stdout");
    }
    Ok(())
}

fn bench(widths: &[usize], epochs: usize, levels: usize, json: bool) -> Result<()> {
    if !json {
        println!(
            "{:>6} {:>10} {:>7} {:>7} {:>12} {:>12} {:>10}",
            "width", "weights", "epochs", "levels", "s/level", "s/epoch", "peak MiB"
        );
    }
    for &width in widths {
        let row = worker::bench::run(&[width], epochs, levels)?.remove(0);
        if json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            println!(
                "{:>6} {:>10} {:>7} {:>7} {:>12.3} {:>12.4} {:>10.1}",
                row.width,
                row.weights,
                row.epochs,
                row.levels,
                row.seconds_per_level,
                row.seconds_per_epoch,
                row.peak_rss_mib
            );
        }
    }
    Ok(())
}

/// Dies quietly on a closed stdout (`worker train ... | head`), like other Unix tools,
/// instead of panicking in `println!`: Rust ignores SIGPIPE by default.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread is spawned; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
