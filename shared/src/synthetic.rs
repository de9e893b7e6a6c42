//! Synthetic IMP trajectories: valid levels without training, for tests, benchmarks and
//! smoke runs of everything downstream of a worker.
//!
//! Masks are deterministic and nested: level `l` keeps the first `prune.remaining[l]` weights
//! of a fixed pseudo-random order of all weights (from the task's seed), so every level prunes
//! a subset of the one before. Metrics come from [`crate::graph::analyze`] of those masks,
//! with made-up training figures.

use crate::graph::{self, LayerMask};
use crate::metrics::{LevelMetrics, TrainingFigures};
use crate::spec::TaskSpec;

/// The masks of `level` of `spec`'s synthetic trajectory.
pub fn synthetic_masks(spec: &TaskSpec, level: usize) -> Vec<LayerMask> {
    let keep = spec.prune.remaining.get(level).copied().unwrap_or(0);
    let layers: Vec<(usize, usize)> = spec.shape.windows(2).map(|w| (w[0], w[1])).collect();
    let mut order: Vec<(u64, usize, u32)> = Vec::with_capacity(spec.weights());
    for (layer, &(fan_in, fan_out)) in layers.iter().enumerate() {
        for index in 0..(fan_in * fan_out) as u32 {
            let key = splitmix(spec.seed ^ ((layer as u64) << 40) ^ u64::from(index));
            order.push((key, layer, index));
        }
    }
    order.sort_unstable();
    let mut kept: Vec<Vec<u32>> = vec![Vec::new(); layers.len()];
    for &(_, layer, index) in order.iter().take(keep) {
        kept[layer].push(index);
    }
    layers
        .iter()
        .zip(kept)
        .map(|(&(fan_in, fan_out), mut kept)| {
            kept.sort_unstable();
            LayerMask {
                fan_in,
                fan_out,
                kept,
            }
        })
        .collect()
}

/// One step of splitmix64: `x` plus the golden ratio, mixed (a cheap, well-spread hash).
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The engine version synthetic levels report: the real worker's
/// (`worker::engine::ENGINE_VERSION`, which `shared` cannot name), so that a test can hand a
/// task from a real worker to a synthetic one (the coordinator leases a started task only to
/// workers of its engine). `coordinator/tests/shutdown.rs` checks that the two agree.
pub const SYNTHETIC_ENGINE: u32 = 4;

/// The metrics of `masks` at `level`, with fixed training figures.
pub fn synthetic_metrics(spec: &TaskSpec, level: usize, masks: &[LayerMask]) -> LevelMetrics {
    let report = graph::analyze(masks, &spec.task_io());
    LevelMetrics::new(
        level,
        &report,
        TrainingFigures {
            test_accuracy: vec![0.9; spec.data.problems.len()],
            test_loss: 0.3,
            train_loss: 0.2,
            epochs: 10 + level,
            seconds: 0.01,
            engine: SYNTHETIC_ENGINE,
            arithmetic: crate::cpu::arithmetic().to_string(),
        },
    )
}
