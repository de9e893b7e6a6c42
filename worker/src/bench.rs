//! `worker bench`: seconds per training epoch of the protocol for a grid of widths and
//! densities, GFLOP/s counted on the kept weights, and peak memory.
//!
//! An epoch is what early stopping pays for every epoch of every level: 16 Adam steps of batch
//! 64 on the 1000 training points and the held-out loss on the 1000 test points. The network
//! is `[4, w, w, 2]` with Kaiming-normal weights; at density `d` every weight matrix keeps
//! `round(d * size)` weights at random positions (seeded) but the last, which stays whole, so
//! nearly every kept weight has a path to an output and is trained (see [`random_masks`]).
//! The same epoch in PyTorch is `bench/pytorch_epoch.py`.

use std::time::Instant;

use dfdx::prelude::Cpu;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use shared::data::{generate, Dataset};
use shared::spec::{DataSpec, Init, TrainSpec};

use crate::engine::layout::{Path, Plan, SPARSE_BELOW};
use crate::engine::network::Network;
use crate::model::Params;
use crate::prune::BoolMasks;
use crate::train::{evaluate, feature_major, train_epoch};

/// Which path the layers take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathChoice {
    /// The engine's choice by density (what training uses).
    Auto,
    /// Every layer dense (dfdx's matrix product under the mask).
    Dense,
    /// Every layer sparse.
    Sparse,
}

/// One (width, density) measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub width: usize,
    pub density: f64,
    pub weights: usize,
    /// Weights kept by the masks.
    pub kept: usize,
    /// Kept weights with a path to an output: what the engine trains.
    pub trained: usize,
    /// The path of each weight matrix, input layer first.
    pub paths: Vec<String>,
    pub threads: usize,
    pub epochs: usize,
    pub repeats: usize,
    /// Median over the repeats of the seconds per epoch.
    pub seconds_per_epoch: f64,
    pub seconds_per_epoch_min: f64,
    /// Floating-point operations of an epoch over the trained weights (2 per weight and sample
    /// forward, 4 backward), per second.
    pub gflops: f64,
    /// Peak resident memory of the process while training this row's epochs, MiB (Linux;
    /// 0 elsewhere). The allocator keeps freed memory, so this varies by a few MiB between
    /// runs.
    pub peak_rss_mib: f64,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub widths: Vec<usize>,
    pub densities: Vec<f64>,
    pub epochs: usize,
    pub repeats: usize,
    pub warmup: usize,
    pub path: PathChoice,
}

/// Measures every width x density in order, on the calling rayon pool's threads.
pub fn run(config: &BenchConfig, mut each: impl FnMut(&BenchRow)) -> Vec<BenchRow> {
    let data = generate(&DataSpec::protocol()).expect("the protocol's data generates");
    let spec = TrainSpec::protocol();
    let mut rows = Vec::new();
    for &width in &config.widths {
        for &density in &config.densities {
            let row = measure(&data, &spec, width, density, config);
            each(&row);
            rows.push(row);
        }
    }
    rows
}

fn measure(
    data: &Dataset,
    spec: &TrainSpec,
    width: usize,
    density: f64,
    config: &BenchConfig,
) -> BenchRow {
    let shape = vec![4, width, width, 2];
    let masks = random_masks(&shape, density, 1);
    measure_masks(data, spec, &shape, &masks, density, config)
}

/// One measurement of the network of layer widths `shape` (Kaiming-normal weights) under
/// `masks`, reported as of hidden width `shape[1]` and `density`.
pub fn measure_masks(
    data: &Dataset,
    spec: &TrainSpec,
    shape: &[usize],
    masks: &BoolMasks,
    density: f64,
    config: &BenchConfig,
) -> BenchRow {
    let (shape, masks, width) = (shape.to_vec(), masks.clone(), shape[1]);
    let params = Params::init(&shape, Init::KaimingNormal, 0);
    let threshold = match config.path {
        PathChoice::Auto => SPARSE_BELOW,
        PathChoice::Dense => 0.0,
        PathChoice::Sparse => f64::INFINITY,
    };
    let plan = Plan::with_threshold(&shape, &masks, threshold);
    let kept = masks.iter().map(|m| m.iter().filter(|&&k| k).count()).sum();
    let trained = plan.kept_weights();
    let paths = plan
        .layers
        .iter()
        .map(|l| match l.path {
            Path::Dense => "dense".to_string(),
            Path::Sparse => "sparse".to_string(),
        })
        .collect();
    // As at a level's start: nothing kept from the rows before (see `crate::alloc`).
    crate::alloc::release();
    let dev = Cpu::default();
    let mut net = Network::new(&dev, &params, &masks, plan, spec);
    drop(params);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut order: Vec<usize> = (0..data.n_train).collect();
    let test_x = feature_major(&data.test_x, data.n_test, data.inputs);
    let mut epoch = |net: &mut Network| {
        train_epoch(net, data, &mut order, &mut rng, spec.batch_size);
        evaluate(net, test_x.clone(), &data.test_y, data.n_test).loss
    };
    for _ in 0..config.warmup {
        epoch(&mut net);
    }
    // The peak of training, not of building the masks and the network.
    reset_peak_rss();
    let mut times = Vec::with_capacity(config.repeats);
    for _ in 0..config.repeats.max(1) {
        let started = Instant::now();
        for _ in 0..config.epochs.max(1) {
            std::hint::black_box(epoch(&mut net));
        }
        times.push(started.elapsed().as_secs_f64() / config.epochs.max(1) as f64);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let flops = trained as f64 * (6 * data.n_train + 2 * data.n_test) as f64;
    BenchRow {
        width,
        density,
        weights: shared::schedule::weight_count(&shape),
        kept,
        trained,
        paths,
        threads: rayon::current_num_threads(),
        epochs: config.epochs.max(1),
        repeats: times.len(),
        seconds_per_epoch: median,
        seconds_per_epoch_min: times[0],
        gflops: flops / median / 1e9,
        peak_rss_mib: peak_rss_mib(),
    }
}

/// Every weight matrix but the last keeps `round(density * size)` weights at seeded random
/// positions; the last (into the outputs, `2 w` weights) keeps all of them, so that nearly
/// every kept weight has a path to an output and is trained, as in IMP's tickets. (Random
/// masks on the last matrix too would cut most neurons off the outputs, and the engine would
/// leave them out: that would measure how little is left, not what a kept weight costs.)
pub fn random_masks(shape: &[usize], density: f64, seed: u64) -> BoolMasks {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layers = shape.len() - 1;
    shape
        .windows(2)
        .enumerate()
        .map(|(l, w)| {
            let size = w[0] * w[1];
            if l + 1 == layers {
                return vec![true; size];
            }
            let keep = ((density * size as f64).round() as usize).min(size);
            let mut mask = vec![false; size];
            for j in rand::seq::index::sample(&mut rng, size, keep) {
                mask[j] = true;
            }
            mask
        })
        .collect()
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

/// Resets VmHWM to the current resident size (Linux: `5` to `/proc/self/clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
