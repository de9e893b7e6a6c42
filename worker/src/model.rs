//! The masked MLP's parameters as plain vectors (theta_0 and the trained weights between
//! levels), and their seeded initialisation.
//!
//! Layout: weight matrix `l` is stored row-major with shape `[fan_out, fan_in]` (PyTorch's
//! convention, and the mask format's: flat index `o * fan_in + i`). Pruned weights are kept at
//! exactly zero and never updated, which is the same function as multiplying by the mask.
//! Training runs on dfdx tensors built from these once per level ([`crate::engine`]).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use shared::spec::Init;

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
