//! `worker bench`: seconds per IMP level for a few widths at a fixed epoch count, and the
//! process's peak resident memory after each width.
//!
//! Early stopping is switched off (patience above the epoch count) so that every level trains
//! exactly `epochs` epochs on the protocol's data (2000 points per problem, batch 64).

use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use shared::schedule::{remaining_counts, weight_count};
use shared::spec::{DataSpec, PruneSpec, Scope, TaskSpec, TrainSpec};

use crate::imp::{run_task, ImpError, Resume};

/// One width's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub width: usize,
    pub weights: usize,
    pub epochs: usize,
    pub levels: usize,
    /// Mean wall-clock seconds per IMP level (training plus pruning and graph analysis).
    pub seconds_per_level: f64,
    /// Seconds per epoch within a level.
    pub seconds_per_epoch: f64,
    /// Peak resident set size of the process so far, in MiB (Linux only; 0 elsewhere).
    pub peak_rss_mib: f64,
}

/// The task the benchmark runs for one width: shape `[4, w, w, 2]`, rate 0.32.
pub fn bench_task(width: usize, epochs: usize, levels: usize) -> TaskSpec {
    let shape = vec![4, width, width, 2];
    let weights = weight_count(&shape);
    let rate = 0.32;
    let target = shared::schedule::target_for(weights, rate, levels);
    TaskSpec {
        data: DataSpec::protocol(),
        shape,
        extension_level: None,
        train: TrainSpec {
            max_epochs: epochs,
            patience: epochs + 1,
            ..TrainSpec::protocol()
        },
        prune: PruneSpec {
            scope: Scope::Global,
            rate,
            levels,
            target,
            remaining: remaining_counts(weights, rate, levels, target),
            stop_at_first_degraded: false,
            stop_at_first_split: false,
        },
        seed: 0,
    }
}

/// Runs `levels + 1` IMP levels of `epochs` epochs for each width, in the order given.
pub fn run(widths: &[usize], epochs: usize, levels: usize) -> Result<Vec<BenchRow>, ImpError> {
    let mut rows = Vec::new();
    for &width in widths {
        let spec = bench_task(width, epochs, levels);
        let started = Instant::now();
        let mut trained_epochs = 0;
        let mut count = 0;
        run_task(&spec, Resume::default(), &AtomicBool::new(false), |level| {
            trained_epochs += level.metrics.epochs;
            count += 1;
            ControlFlow::Continue(())
        })?;
        let seconds = started.elapsed().as_secs_f64();
        rows.push(BenchRow {
            width,
            weights: spec.weights(),
            epochs,
            levels: count,
            seconds_per_level: seconds / count as f64,
            seconds_per_epoch: seconds / trained_epochs.max(1) as f64,
            peak_rss_mib: peak_rss_mib(),
        });
    }
    Ok(rows)
}

/// VmHWM from /proc/self/status, in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
