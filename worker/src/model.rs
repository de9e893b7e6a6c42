//! The masked MLP: parameters as plain vectors, the forward pass on dfdx tensors with runtime
//! shapes, and the hand-written Adam update.
//!
//! Layout: weight matrix `l` is stored row-major with shape `[fan_out, fan_in]` (PyTorch's
//! convention, and the mask format's: flat index `o * fan_in + i`). Pruned weights are kept at
//! exactly zero and never updated, which is the same function as multiplying by the mask.
//! dfdx's `nn` modules need compile-time sizes, so the network is a list of raw tensors built
//! from these vectors for each step; gradients come back through `Gradients::get`.

use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use shared::spec::{Init, TrainSpec};

/// A 2-D tensor with runtime dimensions on the CPU.
pub type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Cpu, T>;
/// A 1-D tensor with a runtime length on the CPU.
pub type Vector<T = NoneTape> = Tensor<(usize,), f32, Cpu, T>;

/// The weights and biases of an MLP of layer widths `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub shape: Vec<usize>,
    /// `weights[l]`: `[fan_out, fan_in]` row-major, `fan_in = shape[l]`, `fan_out = shape[l+1]`.
    pub weights: Vec<Vec<f32>>,
    pub biases: Vec<Vec<f32>>,
}

impl Params {
    /// theta_0: weights drawn from the seeded initialisation, biases zero.
    ///
    /// The draw order is fixed (layer by layer, row-major) and uses ChaCha8 stream 0 of `seed`,
    /// so the same seed gives the same network on every machine.
    pub fn init(shape: &[usize], init: Init, seed: u64) -> Params {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let mut weights = Vec::with_capacity(shape.len() - 1);
        let mut biases = Vec::with_capacity(shape.len() - 1);
        for w in shape.windows(2) {
            let (fan_in, fan_out) = (w[0], w[1]);
            let n = fan_in * fan_out;
            let layer: Vec<f32> = match init {
                Init::KaimingNormal => {
                    let std = (2.0 / fan_in as f64).sqrt();
                    let normal = Normal::new(0.0, std).expect("std is finite and positive");
                    (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
                }
                Init::KaimingUniform => {
                    let bound = (6.0 / fan_in as f64).sqrt();
                    let uniform = Uniform::new_inclusive(-bound, bound);
                    (0..n).map(|_| uniform.sample(&mut rng) as f32).collect()
                }
            };
            weights.push(layer);
            biases.push(vec![0.0; fan_out]);
        }
        Params {
            shape: shape.to_vec(),
            weights,
            biases,
        }
    }

    /// A copy with every pruned weight set to zero.
    pub fn masked(&self, masks: &[Vec<bool>]) -> Params {
        let mut out = self.clone();
        for (w, m) in out.weights.iter_mut().zip(masks) {
            for (w, &keep) in w.iter_mut().zip(m) {
                if !keep {
                    *w = 0.0;
                }
            }
        }
        out
    }

    pub fn layers(&self) -> usize {
        self.weights.len()
    }
}

/// Runs the network on a batch: ReLU between layers, raw logits out.
///
/// Generic over the tape so that the same code trains (with an `OwnedTape`) and evaluates.
pub fn forward<T>(mut h: Matrix<T>, layers: Vec<(Matrix<T>, Vector<T>)>) -> Matrix<T>
where
    T: Tape<f32, Cpu> + Merge<T>,
{
    let depth = layers.len();
    for (l, (w, b)) in layers.into_iter().enumerate() {
        let batch = h.shape().0;
        let fan_out = w.shape().0;
        h = h.matmul(w.permute::<_, Axes2<1, 0>>());
        h = h + b.broadcast_like::<_, Axis<0>>(&(batch, fan_out));
        if l + 1 < depth {
            h = h.relu();
        }
    }
    h
}

/// The network's parameters as dfdx tensors (no tape).
pub fn tensors(dev: &Cpu, params: &Params) -> Vec<(Matrix, Vector)> {
    params
        .shape
        .windows(2)
        .zip(params.weights.iter().zip(&params.biases))
        .map(|(s, (w, b))| {
            (
                dev.tensor_from_vec(w.clone(), (s[1], s[0])),
                dev.tensor_from_vec(b.clone(), (s[1],)),
            )
        })
        .collect()
}

/// Logits of `n` rows of `x` (row-major, `n × shape[0]`), row-major `n × outputs`.
pub fn predict(dev: &Cpu, params: &Params, x: &[f32], n: usize) -> Vec<f32> {
    let input = dev.tensor_from_vec(x.to_vec(), (n, params.shape[0]));
    forward(input, tensors(dev, params)).as_vec()
}

/// Adam (Kingma & Ba, PyTorch's form without weight decay) over plain vectors.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: i32,
    m_w: Vec<Vec<f32>>,
    v_w: Vec<Vec<f32>>,
    m_b: Vec<Vec<f32>>,
    v_b: Vec<Vec<f32>>,
}

impl Adam {
    /// Fresh moments for `params` (IMP resets the optimiser with the weights every level).
    pub fn new(spec: &TrainSpec, params: &Params) -> Adam {
        let zeros = |v: &Vec<Vec<f32>>| v.iter().map(|l| vec![0.0; l.len()]).collect::<Vec<_>>();
        Adam {
            lr: spec.learning_rate as f32,
            beta1: spec.beta1 as f32,
            beta2: spec.beta2 as f32,
            eps: spec.epsilon as f32,
            t: 0,
            m_w: zeros(&params.weights),
            v_w: zeros(&params.weights),
            m_b: zeros(&params.biases),
            v_b: zeros(&params.biases),
        }
    }

    /// One update. Weights whose mask is false are neither read nor changed: they stay zero.
    pub fn step(
        &mut self,
        params: &mut Params,
        masks: &[Vec<bool>],
        grad_w: &[Vec<f32>],
        grad_b: &[Vec<f32>],
    ) {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        let step = self.lr / c1;
        let c2_sqrt = c2.sqrt();
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let update = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / (v.sqrt() / c2_sqrt + eps);
        };
        for l in 0..params.weights.len() {
            let (w, g, m, v, mask) = (
                &mut params.weights[l],
                &grad_w[l],
                &mut self.m_w[l],
                &mut self.v_w[l],
                &masks[l],
            );
            for j in 0..w.len() {
                if mask[j] {
                    update(&mut w[j], g[j], &mut m[j], &mut v[j]);
                }
            }
            let (b, g, m, v) = (
                &mut params.biases[l],
                &grad_b[l],
                &mut self.m_b[l],
                &mut self.v_b[l],
            );
            for j in 0..b.len() {
                update(&mut b[j], g[j], &mut m[j], &mut v[j]);
            }
        }
    }
}

/// Mean binary cross-entropy with logits and the gradients of every weight and bias, on one
/// batch of `n` rows.
pub fn loss_and_grads(
    dev: &Cpu,
    params: &Params,
    x: Vec<f32>,
    y: Vec<f32>,
    n: usize,
) -> (f32, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let outputs = *params.shape.last().expect("a shape has an output layer");
    let plain = tensors(dev, params);
    let traced: Vec<_> = plain
        .iter()
        .map(|(w, b)| (w.leaky_trace(), b.leaky_trace()))
        .collect();
    let input = dev.tensor_from_vec(x, (n, params.shape[0])).leaky_traced();
    let target = dev.tensor_from_vec(y, (n, outputs));
    let logits = forward(input, traced);
    let loss = logits.bce_with_logits(target).mean();
    let value = loss.array();
    let grads = loss.backward();
    let grad_w = plain.iter().map(|(w, _)| grads.get(w).as_vec()).collect();
    let grad_b = plain.iter().map(|(_, b)| grads.get(b).as_vec()).collect();
    (value, grad_w, grad_b)
}
