//! One level's training: shuffled mini-batches, Adam, early stopping on the held-out loss
//! (PROTOCOL.md "Model and training"), and the figures of the trained network.
//!
//! The held-out loss is computed on the test split after every epoch, as the thesis did; the
//! weights of the last epoch are kept (not restored to the best epoch).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use dfdx::prelude::Cpu;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use shared::data::Dataset;
use shared::metrics::TrainingFigures;
use shared::spec::TrainSpec;

use crate::model::{loss_and_grads, predict, Adam, Params};

/// Why a level's training did not finish.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopped {
    /// Stopped from outside between two epochs.
    Cancelled,
    /// The held-out loss stopped being a finite number (the learning rate is too large for
    /// this network): there is no meaningful ticket to report.
    Diverged { epoch: usize, loss: f64 },
}

/// Trains `params` in place (pruned weights stay zero) and returns the level's figures.
pub fn train_level(
    dev: &Cpu,
    data: &Dataset,
    params: &mut Params,
    masks: &[Vec<bool>],
    spec: &TrainSpec,
    rng: &mut ChaCha8Rng,
    cancel: &AtomicBool,
) -> Result<TrainingFigures, Stopped> {
    let started = Instant::now();
    let mut adam = Adam::new(spec, params);
    let (d_in, d_out) = (data.inputs, data.outputs);
    let mut order: Vec<usize> = (0..data.n_train).collect();
    let mut best = f64::INFINITY;
    let mut since_best = 0usize;
    let mut epochs = 0usize;
    let batch_size = spec.batch_size.max(1);
    while epochs < spec.max_epochs {
        if cancel.load(Ordering::Relaxed) {
            return Err(Stopped::Cancelled);
        }
        order.shuffle(rng);
        for batch in order.chunks(batch_size) {
            let mut x = Vec::with_capacity(batch.len() * d_in);
            let mut y = Vec::with_capacity(batch.len() * d_out);
            for &row in batch {
                x.extend_from_slice(&data.train_x[row * d_in..(row + 1) * d_in]);
                y.extend_from_slice(&data.train_y[row * d_out..(row + 1) * d_out]);
            }
            let (_, grad_w, grad_b) = loss_and_grads(dev, params, x, y, batch.len());
            adam.step(params, masks, &grad_w, &grad_b);
        }
        epochs += 1;
        let held_out = evaluate(dev, params, &data.test_x, &data.test_y, data.n_test).loss;
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
    let test = evaluate(dev, params, &data.test_x, &data.test_y, data.n_test);
    let train = evaluate(dev, params, &data.train_x, &data.train_y, data.n_train);
    Ok(TrainingFigures {
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        train_loss: train.loss,
        epochs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Loss and per-output accuracy of the network on a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean binary cross-entropy with logits over rows and outputs.
    pub loss: f64,
    /// Fraction of rows whose logit has the label's sign, per output.
    pub accuracy: Vec<f64>,
}

/// Evaluates on `n` rows; the loss uses the numerically stable form of BCE with logits.
pub fn evaluate(dev: &Cpu, params: &Params, x: &[f32], y: &[f32], n: usize) -> Evaluation {
    let outputs = *params.shape.last().expect("a shape has an output layer");
    let logits = predict(dev, params, x, n);
    let mut loss = 0.0f64;
    let mut correct = vec![0usize; outputs];
    for (k, (&z, &t)) in logits.iter().zip(y).enumerate() {
        let (z, t) = (z as f64, t as f64);
        loss += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
        if (z > 0.0) == (t > 0.5) {
            correct[k % outputs] += 1;
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
