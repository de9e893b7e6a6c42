//! Timing of the random-mask baseline on poster experiment 1 (sweeps/poster-extension.yaml:
//! 104 tasks, widths 8..1310). Per-layer counts come from the synthetic trajectory of each
//! task (`shared::synthetic`: a random order of all weights, so the counts are what global
//! pruning at random would leave, close to the real tickets'). Prints the seconds for the
//! baseline of every task's last level and of every level, at 1,000 draws.
//! Run with `cargo bench -p shared --bench baseline`.

use std::path::Path;
use std::time::Instant;

use shared::baseline::{self, kept_per_layer, DEFAULT_DRAWS};
use shared::spec::TaskSpec;
use shared::sweep::Sweep;
use shared::synthetic::synthetic_masks;

/// Seconds for the baseline of the given `(task, level, kept per layer)`s, and the splits
/// found.
fn time(levels: &[(&TaskSpec, usize, Vec<usize>)], draws: usize) -> (f64, usize) {
    let start = Instant::now();
    let mut split = 0;
    for (spec, level, kept) in levels {
        let (spec, level) = (*spec, *level);
        let seed = baseline::seed(&spec.id(), level);
        let counts = baseline::estimate(&spec.shape, kept, &spec.task_io(), draws, seed)
            .expect("valid counts");
        split += counts.split;
    }
    (start.elapsed().as_secs_f64(), split)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run a short smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sweep = Sweep::from_path(&root.join("sweeps/poster-extension.yaml")).expect("sweep");
    let mut tasks = sweep.expand().expect("expands");
    if !full {
        tasks.retain(|t| t.weights() < 5000);
    }
    let draws = if full { DEFAULT_DRAWS } else { 20 };
    // The counts of every level, before any timing (the synthetic masks sort every weight).
    let every: Vec<(&TaskSpec, usize, Vec<usize>)> = tasks
        .iter()
        .flat_map(|t| (0..=t.prune.levels).map(move |l| (t, l)))
        .map(|(t, l)| (t, l, kept_per_layer(&synthetic_masks(t, l))))
        .collect();
    let last: Vec<(&TaskSpec, usize, Vec<usize>)> = every
        .iter()
        .filter(|(t, l, _)| *l == t.prune.levels)
        .cloned()
        .collect();
    println!(
        "{} tasks, {} levels, {draws} draws",
        tasks.len(),
        every.len()
    );
    let (s, split) = time(&last, draws);
    println!("last level of each task: {s:.2} s ({split} split draws)");
    let (s, split) = time(&every, draws);
    println!("every level: {s:.2} s ({split} split draws)");
}
