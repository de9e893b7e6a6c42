//! `coordinator`: the command line of the sweep coordinator.
//!
//! The binary is a thin edge over the `coordinator` library (see `lib.rs` for the layout):
//! it parses arguments with clap, sets up logging, and turns every error into one line on
//! stderr and a non-zero exit code (anyhow).
//!
//! - `serve`: run the gRPC coordinator on a SQLite database;
//! - `submit`: send a sweep file to a coordinator;
//! - `status`: progress, live workers, throughput and ETA (from a coordinator or a database);
//! - `results`: per-grid-point aggregates as a table, CSV or JSON;
//! - `plan`: expand a sweep file locally and list its tasks;
//! - `plot`, `export`, `report`: figures, exports and the HTML report of a sweep's results
//!   (from a coordinator or a database);
//! - `compare`: several sweeps' first splits on one figure (from databases or long CSVs);
//! - `run`: run a sweep locally with an embedded coordinator and workers (`run.rs`; only
//!   with the default `local-run` feature, the one part that links the worker crate);
//! - `bench` (hidden): the round-trip benchmark.
//!
//! Each command lives in its own file under `commands/`.

mod commands;
#[cfg(feature = "local-run")]
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Large blocks get mappings of their own, unmapped when freed; `coordinator run`, which trains
/// in this process, keeps them for reuse as the worker binary does (see `worker::alloc`).
#[cfg(feature = "local-run")]
#[global_allocator]
static ALLOC: worker::alloc::Allocator = worker::alloc::Allocator;

/// Distributes lottery-ticket (iterative magnitude pruning) sweeps over workers and
/// aggregates their results.
#[derive(Debug, Parser)]
#[command(name = "coordinator", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the coordinator API over gRPC, storing results in SQLite.
    Serve(commands::serve::ServeArgs),
    /// Submit a sweep file (again: adds only its new tasks).
    Submit(commands::submit::SubmitArgs),
    /// Show sweep progress, live workers, throughput and ETA.
    Status(commands::status::StatusArgs),
    /// Make a sweep's failed tasks pending again, attempts reset (stored levels are kept).
    Retry(commands::retry::RetryArgs),
    /// Stop leasing a sweep's tasks; its running tasks stop and are pending again (no attempt
    /// counted, stored levels kept) until `resume`.
    Pause(commands::control::ControlArgs),
    /// Lease a paused sweep's tasks again; each resumes at its first level not stored.
    Resume(commands::control::ControlArgs),
    /// Stop a sweep for good: nothing of it is leased again; its stored levels stay (partial).
    Cancel(commands::control::ControlArgs),
    /// Set a sweep's priority: among active sweeps a higher one's tasks are leased first.
    Priority(commands::control::PriorityArgs),
    /// Show the aggregated results of a sweep, one row per grid point.
    Results(commands::results::ResultsArgs),
    /// List the tasks a sweep file expands to, without a coordinator.
    Plan(commands::plan::PlanArgs),
    /// Draw a sweep's figures (SVG and PNG), or one ticket.
    Plot(commands::plot::PlotArgs),
    /// Draw the active weights at the first split of several sweeps on one figure.
    Compare(commands::compare::CompareArgs),
    /// Export a sweep's results (CSV, JSON, Parquet), or one ticket's graph (GraphML, DOT).
    Export(commands::export::ExportArgs),
    /// Write a sweep's self-contained HTML report.
    Report(commands::report::ReportArgs),
    /// Run a sweep locally: an embedded coordinator with local workers.
    #[cfg(feature = "local-run")]
    Run(run::RunArgs),
    /// Measure task round trips per second against an in-process coordinator.
    #[command(hide = true)]
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    // Before anything runs that was compiled for the build's instruction set.
    if let Err(error) = shared::cpu::check() {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(dispatch()),
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::serve(args).await,
        Command::Submit(args) => commands::submit::submit(args).await,
        Command::Status(args) => commands::status::status(args).await,
        Command::Retry(args) => commands::retry::retry(args).await,
        Command::Pause(args) => commands::control::state(args, "pause").await,
        Command::Resume(args) => commands::control::state(args, "resume").await,
        Command::Cancel(args) => commands::control::state(args, "cancel").await,
        Command::Priority(args) => commands::control::priority(args).await,
        Command::Results(args) => commands::results::results(args).await,
        Command::Plan(args) => commands::plan::plan(args).await,
        Command::Plot(args) => commands::plot::plot(args).await,
        Command::Compare(args) => commands::compare::compare(args).await,
        Command::Export(args) => commands::export::export(args).await,
        Command::Report(args) => commands::report::report(args).await,
        #[cfg(feature = "local-run")]
        Command::Run(args) => run::run(args).await,
        Command::Bench(args) => commands::bench::bench(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout stopped reading (`| head`): the output ends there, quietly.
        Err(error) if error.is::<commands::output::StdoutClosed>() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
