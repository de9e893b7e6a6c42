//! Timing of the ticket-graph analysis on the shapes of the extension experiment.
//! Run with `cargo bench -p shared --bench graph`; prints milliseconds per call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::graph::{analyze, LayerMask, TaskIo};

/// Masks of `shape` keeping each weight with probability `density`.
fn random_masks(shape: &[usize], density: f64, rng: &mut ChaCha8Rng) -> Vec<LayerMask> {
    shape
        .windows(2)
        .map(|w| LayerMask {
            fan_in: w[0],
            fan_out: w[1],
            kept: (0..(w[0] * w[1]) as u32)
                .filter(|_| rng.gen_bool(density))
                .collect(),
        })
        .collect()
}

/// Mean milliseconds per call, repeating for at least `budget`.
fn time(masks: &[LayerMask], tasks: &[TaskIo], budget: Duration) -> (f64, usize) {
    black_box(analyze(masks, tasks)); // warm up
    let start = Instant::now();
    let mut calls = 0;
    while calls < 3 || start.elapsed() < budget {
        black_box(analyze(black_box(masks), tasks));
        calls += 1;
    }
    (start.elapsed().as_secs_f64() * 1e3 / calls as f64, calls)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run a short smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let budget = Duration::from_millis(if full { 500 } else { 1 });
    let tasks = TaskIo::two_d_problems(2);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    println!(
        "{:>6} {:>8} {:>10} {:>10} {:>8} {:>10} {:>10}",
        "width", "density", "weights", "kept", "comps", "ms/call", "calls"
    );
    for h in [8usize, 104, 410, 1310] {
        let shape = [4, h, h, 2];
        for density in [1.0, 0.01] {
            let masks = if density == 1.0 {
                LayerMask::dense_network(&shape)
            } else {
                random_masks(&shape, density, &mut rng)
            };
            let weights: usize = shape.windows(2).map(|w| w[0] * w[1]).sum();
            let r = analyze(&masks, &tasks);
            let (ms, calls) = time(&masks, &tasks, budget);
            println!(
                "{h:>6} {density:>8} {weights:>10} {:>10} {:>8} {ms:>10.4} {calls:>10}",
                r.remaining_weights, r.components
            );
        }
    }
}
