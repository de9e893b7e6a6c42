//! The network one level trains: the compacted layers of a [`Plan`] as persistent dfdx tensors,
//! one training step (forward, loss, `backward()`, Adam), and the forward pass without a tape
//! for the held-out loss.
//!
//! Parameters live in dfdx tensors for the whole level: nothing is copied into fresh tensors
//! and back per step. The gradients of a step are read in place from dfdx's `Gradients`, and
//! Adam is dfdx's own kernel (`AdamConfig::try_update`), which updates a tensor in place (the
//! update is bound by memory bandwidth at the widest shapes, so one pass is what it costs).
//! Its moments hold the kept weights only for a sparse layer, the compacted matrix for a
//! dense one, whose pruned entries get a zero gradient, so they and their moments stay
//! exactly zero.

use std::sync::Arc;

use dfdx::optim::AdamConfig;
use dfdx::prelude::*;

use shared::spec::TrainSpec;

use super::bias::bias_relu;
use super::layout::{LayerPlan, Path, Plan};
use super::pool::Pool;
use super::sparse::{contents, sparse_chain, ChainLayer, Matrix};
use super::structure::SparseStructure;
use crate::model::Params;
use crate::prune::BoolMasks;

/// Evaluation passes run over this many samples at a time: it bounds the activations' memory,
/// and it is the training batch, for which the sparse kernels have loops of their own
/// (250 at a time took 20-75% longer a sample in the forward product at widths 410 and 1310,
/// `cargo run -p worker --example kernels`).
const EVAL_CHUNK: usize = 64;

/// A buffer of dfdx's CPU device (what Adam's moments are kept in).
type Buf = <Cpu as Storage<f32>>::Vec;

/// A parameter: its tensor and Adam's moments.
struct Param<S: Shape> {
    tensor: Tensor<S, f32, Cpu>,
    m: Buf,
    v: Buf,
}

impl<S: Shape> Param<S> {
    fn new(dev: &Cpu, value: Vec<f32>, shape: S) -> Self {
        let n = value.len();
        Param {
            tensor: dev.tensor_from_vec(value, shape),
            m: dev.try_alloc_len(n).expect("memory for Adam's moments"),
            v: dev.try_alloc_len(n).expect("memory for Adam's moments"),
        }
    }

    fn len(&self) -> usize {
        self.m.len()
    }

    /// Adam step `t` on this parameter with its gradient from `grads`; entries where `keep` is
    /// false get a zero gradient.
    fn update(
        &mut self,
        adam: &AdamConfig,
        t: i32,
        grads: &mut Gradients<f32, Cpu>,
        keep: Option<&[bool]>,
    ) {
        let g = grads
            .get_or_alloc_mut(&self.tensor)
            .expect("gradient memory");
        if let Some(keep) = keep {
            for (g, &k) in g.iter_mut().zip(keep) {
                *g = if k { *g } else { 0.0 };
            }
        }
        adam.try_update(t, &mut self.tensor, &mut self.m, &mut self.v, g)
            .expect("an in-place update on the CPU");
    }

    fn values(&self) -> Vec<f32> {
        contents(&self.tensor)
    }

    /// Frees Adam's moments (the level's end: no more steps).
    fn drop_moments(&mut self) {
        let dev = self.tensor.device();
        self.m = dev.try_alloc_len(0).expect("an empty buffer");
        self.v = dev.try_alloc_len(0).expect("an empty buffer");
    }
}

/// The weights of one compacted layer.
enum Weights {
    /// `[rows, cols]`; `keep` is `None` when every entry is kept.
    Dense {
        w: Param<(usize, usize)>,
        keep: Option<Vec<bool>>,
    },
    /// The kept values in the structure's order.
    Sparse {
        values: Param<(usize,)>,
        structure: Arc<SparseStructure>,
    },
}

struct Layer {
    weights: Weights,
    bias: Param<(usize,)>,
}

impl Layer {
    fn drop_moments(&mut self) {
        match &mut self.weights {
            Weights::Dense { w, .. } => w.drop_moments(),
            Weights::Sparse { values, .. } => values.drop_moments(),
        }
        self.bias.drop_moments();
    }
}

/// The trainable network of one level.
pub struct Network {
    dev: Cpu,
    plan: Plan,
    layers: Vec<Layer>,
    adam: AdamConfig,
    step: i32,
    /// The sparse layers' buffers, reused from step to step.
    pool: Arc<Pool>,
}

impl Network {
    /// The network of `plan` starting from `params` under `masks` (weights the masks prune
    /// start at zero whatever `params` holds).
    pub fn new(
        dev: &Cpu,
        params: &Params,
        masks: &BoolMasks,
        plan: Plan,
        spec: &TrainSpec,
    ) -> Self {
        let layers = plan
            .layers
            .iter()
            .enumerate()
            .map(|(l, lp)| {
                let fan_in = params.shape[l];
                let (full_w, mask) = (&params.weights[l], &masks[l]);
                let (rows, cols) = (lp.rows.len(), lp.cols.len());
                let at = |r: usize, c: usize| lp.rows[r] * fan_in + lp.cols[c];
                let weights = match lp.path {
                    Path::Dense => {
                        let mut w = Vec::with_capacity(rows * cols);
                        let mut keep = Vec::with_capacity(rows * cols);
                        for r in 0..rows {
                            for c in 0..cols {
                                let j = at(r, c);
                                keep.push(mask[j]);
                                w.push(if mask[j] { full_w[j] } else { 0.0 });
                            }
                        }
                        let all = keep.iter().all(|&k| k);
                        Weights::Dense {
                            w: Param::new(dev, w, (rows, cols)),
                            keep: (!all).then_some(keep),
                        }
                    }
                    Path::Sparse => {
                        let positions = (0..rows).flat_map(|r| {
                            (0..cols)
                                .filter(move |&c| mask[at(r, c)])
                                .map(move |c| (r as u32, c as u32))
                        });
                        let structure = SparseStructure::from_sorted(rows, cols, positions);
                        let values: Vec<f32> = structure
                            .positions()
                            .map(|(r, c)| full_w[at(r, c)])
                            .collect();
                        let nnz = values.len();
                        Weights::Sparse {
                            values: Param::new(dev, values, (nnz,)),
                            structure: Arc::new(structure),
                        }
                    }
                };
                let bias: Vec<f32> = lp.rows.iter().map(|&o| params.biases[l][o]).collect();
                Layer {
                    weights,
                    bias: Param::new(dev, bias, (rows,)),
                }
            })
            .collect();
        Network {
            dev: dev.clone(),
            plan,
            layers,
            adam: AdamConfig {
                lr: spec.learning_rate,
                betas: [spec.beta1, spec.beta2],
                eps: spec.epsilon,
                weight_decay: None,
            },
            step: 0,
            pool: Arc::new(Pool::default()),
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One Adam step on a batch: `x` is `[inputs, batch]`, `y` is `[outputs, batch]`, both
    /// feature-major. The loss is the mean binary cross-entropy with logits.
    pub fn step(&mut self, x: Vec<f32>, y: Vec<f32>, batch: usize) {
        let inputs = x.len() / batch.max(1);
        let outputs = y.len() / batch.max(1);
        let x = self.dev.tensor_from_vec(x, (inputs, batch));
        let y = self.dev.tensor_from_vec(y, (outputs, batch));
        let logits = self.forward(x.leaky_traced());
        let mut grads = logits.bce_with_logits(y).mean().backward();
        self.step += 1;
        let (adam, t) = (&self.adam, self.step);
        for layer in &mut self.layers {
            match &mut layer.weights {
                Weights::Dense { w, keep } => w.update(adam, t, &mut grads, keep.as_deref()),
                Weights::Sparse { values, .. } => values.update(adam, t, &mut grads, None),
            }
            layer.bias.update(adam, t, &mut grads, None);
        }
    }

    /// The logits of `n` samples, `x` `[inputs, n]` feature-major; returns `[outputs, n]`.
    /// Runs without a tape, `EVAL_CHUNK` (64) samples at a time.
    pub fn logits(&self, x: Vec<f32>, n: usize) -> Vec<f32> {
        let inputs = x.len() / n.max(1);
        if n <= EVAL_CHUNK {
            let x = self.dev.tensor_from_vec(x, (inputs, n));
            return self.forward(x).as_vec();
        }
        let outputs = self.layers.last().map_or(0, |l| l.bias.len());
        let mut out = vec![0.0f32; outputs * n];
        for start in (0..n).step_by(EVAL_CHUNK) {
            let len = EVAL_CHUNK.min(n - start);
            let mut chunk = Vec::with_capacity(inputs * len);
            for f in 0..inputs {
                chunk.extend_from_slice(&x[f * n + start..f * n + start + len]);
            }
            let logits = self
                .forward(self.dev.tensor_from_vec(chunk, (inputs, len)))
                .as_vec();
            for k in 0..outputs {
                out[k * n + start..k * n + start + len]
                    .copy_from_slice(&logits[k * len..(k + 1) * len]);
            }
        }
        out
    }

    /// ReLU between layers, raw logits out. Every parameter joins the pass with a fresh tape
    /// of the pass's kind: an empty recording tape for training, none for evaluation.
    fn forward<T>(&self, x: Matrix<T>) -> Matrix<T>
    where
        T: Tape<f32, Cpu> + Merge<T>,
    {
        let depth = self.layers.len();
        let mut h = x;
        let mut l = 0;
        while l < depth {
            let layer = &self.layers[l];
            if let Weights::Dense { w, .. } = &layer.weights {
                let bias = layer.bias.tensor.retaped::<T>();
                let z = w.tensor.retaped::<T>().matmul(h);
                h = bias_relu(z, bias, l + 1 < depth, &self.pool);
                l += 1;
                continue;
            }
            // A run of sparse layers is one operation.
            let first = l;
            let mut chain = Vec::new();
            while let Some(Layer {
                weights: Weights::Sparse { values, structure },
                bias,
            }) = self.layers.get(l)
            {
                chain.push(ChainLayer {
                    values: values.tensor.retaped::<T>(),
                    bias: bias.tensor.retaped::<T>(),
                    structure: Arc::clone(structure),
                    relu: l + 1 < depth,
                });
                l += 1;
            }
            h = sparse_chain(h, chain, first > 0, &self.pool);
        }
        h
    }

    /// The trained network in the full layout: theta_0 under the masks (so pruned weights are
    /// zero and weights left out of the plan keep theta_0's values) with the trained weights
    /// and biases written over it. Adam's moments are freed before the result is allocated, so
    /// the level's end holds no more than its training did.
    pub fn into_params(mut self, theta0: &Params, masks: &BoolMasks) -> Params {
        for layer in &mut self.layers {
            layer.drop_moments();
        }
        let mut trained = theta0.masked(masks);
        self.write_back(&mut trained);
        trained
    }

    /// The trained weights written back into the full layout of `params` (weights left out of
    /// the plan keep the values they have there). Each layer's tensors are freed as soon as
    /// they are written.
    pub fn write_back(mut self, params: &mut Params) {
        let layers = std::mem::take(&mut self.layers);
        for (l, (layer, lp)) in layers.into_iter().zip(&self.plan.layers).enumerate() {
            write_layer(&layer, lp, l, params);
        }
    }

    /// The network as it is now in the full layout, training left to go on: `start` under
    /// the masks with the current weights and biases written over it (what [`Self::into_params`]
    /// would give at this step). Rewinding keeps the dense level's weights this way.
    pub fn params_now(&self, start: &Params, masks: &BoolMasks) -> Params {
        let mut now = start.masked(masks);
        for (l, (layer, lp)) in self.layers.iter().zip(&self.plan.layers).enumerate() {
            write_layer(layer, lp, l, &mut now);
        }
        now
    }
}

/// Writes one compacted layer's weights and biases into layer `l` of the full layout.
fn write_layer(layer: &Layer, lp: &LayerPlan, l: usize, params: &mut Params) {
    let fan_in = params.shape[l];
    let full = &mut params.weights[l];
    match &layer.weights {
        Weights::Dense { w, keep } => {
            let cols = lp.cols.len();
            let whole = keep.is_none()
                && lp.rows.len() * cols == full.len()
                && lp.cols.iter().enumerate().all(|(i, &c)| i == c)
                && lp.rows.iter().enumerate().all(|(i, &r)| i == r);
            if whole {
                // The plan is the whole matrix: straight into place.
                w.tensor.copy_into(full);
            } else {
                for (j, &v) in w.values().iter().enumerate() {
                    if keep.as_ref().is_none_or(|k| k[j]) {
                        full[lp.rows[j / cols] * fan_in + lp.cols[j % cols]] = v;
                    }
                }
            }
        }
        Weights::Sparse { values, structure } => {
            for ((r, c), v) in structure.positions().zip(values.values()) {
                full[lp.rows[r] * fan_in + lp.cols[c]] = v;
            }
        }
    }
    for (&o, b) in lp.rows.iter().zip(layer.bias.values()) {
        params.biases[l][o] = b;
    }
}
