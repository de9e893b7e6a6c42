//! The training engine's paths agree: a network trained sparse takes the same Adam step as the
//! same network trained dense, a whole short IMP run gives the same masks and statuses on
//! either path, and weights with no path to an output are never trained (they keep theta_0,
//! as in the full masked network, where their gradient is exactly zero).

use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;

use dfdx::prelude::Cpu;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use shared::schedule::{remaining_counts, weight_count};
use shared::spec::{DataSpec, Init, PruneSpec, Scope, TaskSpec, TrainSpec};
use worker::bench::random_masks;
use worker::engine::layout::{live_neurons, Path, Plan};
use worker::engine::network::Network;
use worker::imp::{run_task_with, LevelOutcome, Resume};
use worker::model::Params;

/// Every matrix keeps each weight with probability `density` (the last one too, so that
/// some hidden neurons lose every path to an output).
fn masks_everywhere(shape: &[usize], density: f64, seed: u64) -> Vec<Vec<bool>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    shape
        .windows(2)
        .map(|w| (0..w[0] * w[1]).map(|_| rng.gen_bool(density)).collect())
        .collect()
}

/// The same Network built twice from the same parameters, one path each.
fn pair(
    shape: &[usize],
    masks: Vec<Vec<bool>>,
    seed: u64,
) -> (Params, Vec<Vec<bool>>, Network, Network) {
    let params = Params::init(shape, Init::KaimingNormal, seed).masked(&masks);
    let dev = Cpu::default();
    let spec = TrainSpec::protocol();
    let dense = Plan::with_threshold(shape, &masks, 0.0);
    let sparse = Plan::with_threshold(shape, &masks, f64::INFINITY);
    assert!(dense
        .layers
        .iter()
        .all(|l| l.kept == 0 || l.path == Path::Dense));
    assert!(sparse.layers.iter().all(|l| l.path == Path::Sparse));
    let a = Network::new(&dev, &params, &masks, dense, &spec);
    let b = Network::new(&dev, &params, &masks, sparse, &spec);
    (params, masks, a, b)
}

fn batch(inputs: usize, outputs: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = (0..inputs * n).map(|_| next() * 4.0 - 2.0).collect();
    let y = (0..outputs * n)
        .map(|_| (next() > 0.5) as u8 as f32)
        .collect();
    (x, y)
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1e-3);
        assert!(
            (x - y).abs() <= 1e-5 * scale,
            "{what}: entry {j}: {x} vs {y}"
        );
    }
}

#[test]
fn one_adam_step_agrees_between_the_dense_and_the_sparse_path() {
    for (shape, density) in [
        (vec![4, 24, 24, 2], 1.0),
        (vec![4, 24, 24, 2], 0.3),
        (vec![4, 40, 40, 2], 0.05),
        (vec![4, 6, 5, 7, 2], 0.5),
    ] {
        let (params, _, mut dense, mut sparse) = pair(&shape, random_masks(&shape, density, 3), 3);
        let (x, y) = batch(4, 2, 64, 9);
        // Before the step: the same logits.
        assert_close(
            &dense.logits(x.clone(), 64),
            &sparse.logits(x.clone(), 64),
            "logits before",
        );
        dense.step(x.clone(), y.clone(), 64);
        sparse.step(x.clone(), y, 64);
        assert_close(
            &dense.logits(x.clone(), 64),
            &sparse.logits(x, 64),
            "logits after",
        );
        let (mut pd, mut ps) = (params.clone(), params.clone());
        dense.write_back(&mut pd);
        sparse.write_back(&mut ps);
        for l in 0..pd.layers() {
            let what = format!("{shape:?} at density {density}, layer {l}");
            assert_close(
                &pd.weights[l],
                &ps.weights[l],
                &format!("weights of {what}"),
            );
            assert_close(&pd.biases[l], &ps.biases[l], &format!("biases of {what}"));
            // The step moved every trained weight (Adam's first step is +-lr).
            let moved = pd.weights[l]
                .iter()
                .zip(&params.weights[l])
                .filter(|(a, b)| a != b)
                .count();
            assert!(moved > 0, "nothing trained in {what}");
        }
    }
}

#[test]
fn pruned_and_inactive_weights_keep_their_values() {
    // A sparse network leaves many hidden neurons without a path to an output.
    let shape = vec![4, 30, 30, 2];
    let (params, masks, mut dense, mut sparse) = pair(&shape, masks_everywhere(&shape, 0.08, 5), 5);
    let live = live_neurons(&shape, &masks);
    let inactive: usize = (1..3)
        .map(|l| live[l].iter().filter(|&&v| !v).count())
        .sum();
    assert!(inactive > 0, "the example must have inactive neurons");
    for seed in 0..5 {
        let (x, y) = batch(4, 2, 64, seed);
        dense.step(x.clone(), y.clone(), 64);
        sparse.step(x, y, 64);
    }
    for net in [dense, sparse] {
        // What a level hands to pruning: theta_0 under the masks, the trained weights over it.
        let trained = net.into_params(&params, &masks);
        for l in 0..trained.layers() {
            let fan_in = shape[l];
            for (j, (&now, &before)) in trained.weights[l]
                .iter()
                .zip(&params.weights[l])
                .enumerate()
            {
                let (o, i) = (j / fan_in, j % fan_in);
                if !masks[l][j] {
                    assert_eq!(now, 0.0, "a pruned weight stays zero");
                } else if !live[l + 1][o] {
                    assert_eq!(
                        now, before,
                        "an inactive weight keeps theta_0 (layer {l}, {o}<-{i})"
                    );
                }
            }
        }
    }
}

fn task(hidden: usize, levels: usize, epochs: usize, seed: u64) -> TaskSpec {
    let shape = vec![4, hidden, hidden, 2];
    let weights = weight_count(&shape);
    let rate: f64 = 0.5;
    let target = (weights as f64 * (1.0 - rate).powi(levels as i32)).round() as usize;
    TaskSpec {
        data: DataSpec {
            samples: 400,
            ..DataSpec::protocol()
        },
        shape,
        extension_level: None,
        train: TrainSpec {
            learning_rate: 1e-2,
            max_epochs: epochs,
            patience: epochs + 1,
            ..TrainSpec::protocol()
        },
        prune: PruneSpec {
            scope: Scope::Global,
            method: Default::default(),
            rate,
            levels,
            target,
            remaining: remaining_counts(weights, rate, levels, target),
            stop_at_first_degraded: false,
            stop_at_first_split: false,
        },
        seed,
    }
}

fn run(spec: &TaskSpec, sparse_below: f64) -> Vec<LevelOutcome> {
    let mut out = Vec::new();
    run_task_with(
        spec,
        Resume::default(),
        &AtomicBool::new(false),
        sparse_below,
        |l| {
            out.push(l);
            ControlFlow::Continue(())
        },
    )
    .expect("the task runs");
    out
}

#[test]
fn a_short_imp_run_gives_the_same_tickets_on_either_path() {
    let spec = task(12, 4, 8, 2);
    let dense = run(&spec, 0.0);
    let sparse = run(&spec, f64::INFINITY);
    assert_eq!(dense.len(), 5);
    assert_eq!(sparse.len(), 5);
    for (d, s) in dense.iter().zip(&sparse) {
        let level = d.metrics.level;
        assert_eq!(d.masks, s.masks, "masks of level {level}");
        assert_eq!(
            d.metrics.status, s.metrics.status,
            "status of level {level}"
        );
        assert_eq!(d.metrics.active_weights, s.metrics.active_weights);
        assert!(
            (d.metrics.test_loss - s.metrics.test_loss).abs() < 1e-3,
            "held-out loss of level {level}: {} vs {}",
            d.metrics.test_loss,
            s.metrics.test_loss
        );
    }
}
