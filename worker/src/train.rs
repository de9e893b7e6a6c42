//! One level's training: shuffled mini-batches, Adam, early stopping on the held-out loss
//! (docs/PROTOCOL.md "Model and training"), and the figures of the trained network.
//!
//! The held-out loss is computed on the test split after every epoch, as the thesis did; the
//! weights of the last epoch are kept (not restored to the best epoch). The network trained is
//! the level's [`Plan`]: see [`crate::engine`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use dfdx::prelude::Cpu;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use shared::data::Dataset;
use shared::metrics::TrainingFigures;
use shared::spec::TrainSpec;

use crate::engine::layout::Plan;
use crate::engine::network::Network;
use crate::model::Params;
use crate::prune::BoolMasks;

/// A request to stop training, checked between epochs: an [`AtomicBool`] set from outside,
/// or the worker's [`tokio_util::sync::CancellationToken`] of a lease (see
/// [`crate::shutdown`]).
pub trait Cancel: Sync {
    /// True once training should stop.
    fn is_cancelled(&self) -> bool;
}

impl Cancel for AtomicBool {
    fn is_cancelled(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// Why a level's training did not finish.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopped {
    /// Stopped from outside between two epochs.
    Cancelled,
    /// The held-out loss stopped being a finite number (the learning rate is too large for
    /// this network): there is no meaningful ticket to report.
    Diverged { epoch: usize, loss: f64 },
}

/// A trained level: the trained weights (in full, pruned ones zero), the level's figures, and
/// the weights kept on the way when asked for ([`train_level`]'s `keep_after`).
#[derive(Debug, Clone)]
pub struct TrainedLevel {
    pub params: Params,
    pub figures: TrainingFigures,
    /// The weights after `keep_after` epochs, or after the last epoch when training stopped
    /// earlier (early stopping, `max_epochs`); `None` when not asked for.
    pub kept: Option<Params>,
}

/// Trains the network of `plan` from `start` (theta_0, or the rewind point) under `masks`
/// (the pruned weights are zero). With `keep_after: Some(k)` the weights after epoch `k`
/// (`start` itself for 0) are kept too: the rewind point of late resetting.
#[allow(clippy::too_many_arguments)]
pub fn train_level(
    dev: &Cpu,
    data: &Dataset,
    start: &Params,
    masks: &BoolMasks,
    plan: Plan,
    spec: &TrainSpec,
    rng: &mut ChaCha8Rng,
    cancel: &dyn Cancel,
    keep_after: Option<usize>,
) -> Result<TrainedLevel, Stopped> {
    let started = Instant::now();
    // Blocks kept for reuse (see `crate::alloc`) have the sizes of what ran before, another
    // level's network or its results: they go back to the kernel before this level's
    // network takes its own. The same at the end, for the next level.
    crate::alloc::release();
    let mut net = Network::new(dev, start, masks, plan, spec);
    let mut kept = (keep_after == Some(0)).then(|| start.masked(masks));
    let test_x = feature_major(&data.test_x, data.n_test, data.inputs);
    let mut order: Vec<usize> = (0..data.n_train).collect();
    let mut best = f64::INFINITY;
    let mut since_best = 0usize;
    let mut epochs = 0usize;
    let batch_size = spec.batch_size.max(1);
    while epochs < spec.max_epochs {
        if cancel.is_cancelled() {
            return Err(Stopped::Cancelled);
        }
        train_epoch(&mut net, data, &mut order, rng, batch_size);
        epochs += 1;
        if keep_after == Some(epochs) {
            kept = Some(net.params_now(start, masks));
        }
        let held_out = evaluate(&net, test_x.clone(), &data.test_y, data.n_test).loss;
        if !held_out.is_finite() {
            return Err(Stopped::Diverged {
                epoch: epochs,
                loss: held_out,
            });
        }
        if held_out < best - spec.min_delta {
            best = held_out;
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= spec.patience {
                break;
            }
        }
    }
    let test = evaluate(&net, test_x, &data.test_y, data.n_test);
    let train_x = feature_major(&data.train_x, data.n_train, data.inputs);
    let train = evaluate(&net, train_x, &data.train_y, data.n_train);
    let trained = net.into_params(start, masks);
    if keep_after.is_some() && kept.is_none() {
        // Stopped before epoch `keep_after`: the last epoch's weights.
        kept = Some(trained.clone());
    }
    crate::alloc::release();
    let figures = TrainingFigures {
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        train_loss: train.loss,
        epochs,
        seconds: started.elapsed().as_secs_f64(),
        engine: crate::engine::ENGINE_VERSION,
        arithmetic: shared::cpu::arithmetic().to_string(),
    };
    Ok(TrainedLevel {
        params: trained,
        figures,
        kept,
    })
}

/// One pass over the training split in a freshly shuffled `order`, one Adam step per batch.
pub fn train_epoch(
    net: &mut Network,
    data: &Dataset,
    order: &mut [usize],
    rng: &mut ChaCha8Rng,
    batch_size: usize,
) {
    order.shuffle(rng);
    for batch in order.chunks(batch_size.max(1)) {
        let x = gather(&data.train_x, data.inputs, batch);
        let y = gather(&data.train_y, data.outputs, batch);
        net.step(x, y, batch.len());
    }
}

/// Loss and per-output accuracy of the network on a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean binary cross-entropy with logits over rows and outputs.
    pub loss: f64,
    /// Fraction of rows whose logit has the label's sign, per output.
    pub accuracy: Vec<f64>,
}

/// Evaluates on `n` rows (`x` feature-major, `y` row-major); the loss uses the numerically
/// stable form of BCE with logits, summed in f64 row by row.
pub fn evaluate(net: &Network, x: Vec<f32>, y: &[f32], n: usize) -> Evaluation {
    let outputs = y.len() / n.max(1);
    let logits = net.logits(x, n);
    let mut loss = 0.0f64;
    let mut correct = vec![0usize; outputs];
    for r in 0..n {
        for (k, correct) in correct.iter_mut().enumerate() {
            let (z, t) = (logits[k * n + r] as f64, y[r * outputs + k] as f64);
            loss += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
            if (z > 0.0) == (t > 0.5) {
                *correct += 1;
            }
        }
    }
    Evaluation {
        loss: loss / (n * outputs).max(1) as f64,
        accuracy: correct
            .iter()
            .map(|&c| c as f64 / n.max(1) as f64)
            .collect(),
    }
}

/// The `rows` of a row-major `[_, width]` matrix, feature-major: `[width, rows.len()]`.
fn gather(data: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    let n = rows.len();
    let mut out = vec![0.0f32; width * n];
    for (j, &row) in rows.iter().enumerate() {
        for f in 0..width {
            out[f * n + j] = data[row * width + f];
        }
    }
    out
}

/// A row-major `[n, width]` matrix as feature-major `[width, n]`.
pub fn feature_major(data: &[f32], n: usize, width: usize) -> Vec<f32> {
    let rows: Vec<usize> = (0..n).collect();
    gather(data, width, &rows)
}
