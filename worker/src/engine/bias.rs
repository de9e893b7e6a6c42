//! What follows a dense layer's matrix product, as one dfdx operation: the bias added to every
//! column and, for a hidden layer, the ReLU: `out = relu(z + b)`.
//!
//! dfdx writes this as three operations (`broadcast_like`, `+`, `relu`), whose backward walks
//! the broadcast with a general strided index per element (at width 410 the bias gradient
//! alone took 6% of a dense epoch) and allocates and zeroes a gradient for the sum in between.
//! Here the forward is one pass over `z` and the backward one pass over the output's gradient,
//! writing the gradients of `z` and of the bias together.
//!
//! The arithmetic is dfdx's, term for term, so a network gives the same bits either way: the
//! sum is `z + b`, the ReLU `x.max(0.0)`; backward, the ReLU's gradient is `0.0 + df * g`
//! (`df` 1 where the output is positive, else 0, so `0 * NaN` stays NaN and a `-0.0` becomes
//! `+0.0`), and the sum hands `1.0 * that` to `z`'s gradient and adds it to the bias's
//! gradient column by column in order. A test holds this against dfdx's own operations.

use std::sync::Arc;

use dfdx::prelude::*;

use super::pool::Pool;
use super::sparse::{Matrix, Vector};

/// `z` (`[rows, batch]`) plus `bias` (`[rows]`) on every column, through ReLU when `relu` is
/// set. The tape records the gradients of `z` and of `bias`.
pub fn bias_relu<T>(z: Matrix<T>, bias: Vector<T>, relu: bool, pool: &Arc<Pool>) -> Matrix<T>
where
    T: Tape<f32, Cpu> + Merge<T>,
{
    let (rows, batch) = *z.shape();
    assert_eq!(bias.shape().0, rows, "one bias per row");
    let (z, z_tape) = z.split_tape();
    let (b, b_tape) = bias.split_tape();
    let mut tape = z_tape.merge(b_tape);
    let dev = z.device().clone();
    let mut b_data = pool.take(rows);
    b.copy_into(&mut b_data);
    let mut buf = pool.take(rows * batch);
    z.copy_into(&mut buf);
    let activate = |v: f32| if relu { v.max(0.0) } else { v };
    // `batch` values a row (`max(1)`: a batch of none has no rows to walk).
    let step = batch.max(1);
    // The output goes to dfdx and stays in `buf`, for the ReLU's derivative (whether it is
    // positive) in the backward pass.
    let mut out = Vec::with_capacity(rows * batch);
    for (row, &bias) in buf.chunks_exact_mut(step).zip(&b_data) {
        out.extend(row.iter_mut().map(|v| {
            *v = activate(*v + bias);
            *v
        }));
    }
    pool.give(b_data);
    if !T::OWNS_TAPE {
        pool.give(buf);
        return dev.tensor_from_vec(out, (rows, batch)).put_tape(tape);
    }
    let result = dev.tensor_from_vec(out, (rows, batch));
    let (z_ghost, b_ghost, out_ghost) = (z.ghost(), b.ghost(), result.ghost());
    drop(z);
    let pool = Arc::clone(pool);
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&z_ghost)?;
        grads.try_alloc_for(&b_ghost)?;
        grads.try_alloc_for(&out_ghost)?;
        // The map hands out one mutable entry at a time: the output's and the bias's
        // gradients are moved out while `z`'s is written, and back afterwards.
        let gout = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
        let mut gb = std::mem::take(&mut **grads.get_or_alloc_mut(&b_ghost)?);
        let gz = grads.get_or_alloc_mut(&z_ghost)?;
        let rows = gz
            .chunks_exact_mut(step)
            .zip(&mut gb)
            .zip(buf.chunks_exact(step).zip(gout.chunks_exact(step)));
        for ((gz, gb), (out, g)) in rows {
            let mut sum = *gb;
            if relu {
                for ((gz, &o), &g) in gz.iter_mut().zip(out).zip(g) {
                    let df = if o > 0.0 { 1.0f32 } else { 0.0 };
                    let through = 0.0 + df * g;
                    *gz += 1.0 * through;
                    sum += 1.0 * through;
                }
            } else {
                for (gz, &g) in gz.iter_mut().zip(g) {
                    *gz += 1.0 * g;
                    sum += 1.0 * g;
                }
            }
            *gb = sum;
        }
        **grads.get_or_alloc_mut(&b_ghost)? = gb;
        **grads.get_or_alloc_mut(&out_ghost)? = gout;
        pool.give(buf);
        Ok(())
    });
    result.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sparse::contents;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The output and the gradients of `z` and `bias` under a loss that weighs every output
    /// differently, through [`bias_relu`] and through dfdx's own operations.
    fn both_ways(
        z: &[f32],
        bias: &[f32],
        batch: usize,
        relu: bool,
        seed: u64,
    ) -> [[Vec<f32>; 3]; 2] {
        let rows = bias.len();
        let dev = Cpu::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let weights: Vec<f32> = (0..rows * batch)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let run = |fused: bool| {
            let zt = dev.tensor_from_vec(z.to_vec(), (rows, batch));
            let bt = dev.tensor_from_vec(bias.to_vec(), (rows,));
            let wt = dev.tensor_from_vec(weights.clone(), (rows, batch));
            // `z` enters as the output of an operation (as the matrix product's does), so
            // that its gradient is one dfdx allocates.
            let zin = zt.leaky_trace() * 1.0;
            let out = if fused {
                bias_relu(zin, bt.leaky_trace(), relu, &Arc::new(Pool::default()))
            } else {
                let sum = zin
                    + bt.leaky_trace()
                        .broadcast_like::<_, Axis<1>>(&(rows, batch));
                if relu {
                    sum.relu()
                } else {
                    sum
                }
            };
            let values = out.retaped::<NoneTape>().as_vec();
            let grads = (out * wt).sum().backward();
            [values, contents(&grads.get(&zt)), contents(&grads.get(&bt))]
        };
        [run(true), run(false)]
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn gives_the_bits_of_dfdx_broadcast_add_and_relu() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for case in 0..12 {
            let rows = rng.gen_range(1..40);
            let batch = [1, 3, 64, 40][case % 4];
            let bias: Vec<f32> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut z: Vec<f32> = (0..rows * batch)
                .map(|_| rng.gen_range(-2.0..2.0))
                .collect();
            // Exact cancellations, zeros of both signs, a row that is all zero.
            for (i, v) in z.iter_mut().enumerate().step_by(7) {
                *v = match i % 3 {
                    0 => -bias[i / batch],
                    1 => -0.0,
                    _ => 0.0,
                };
            }
            let relu = case % 3 != 2;
            let [fused, dfdx] = both_ways(&z, &bias, batch, relu, case as u64);
            for (what, (a, b)) in ["output", "z gradient", "bias gradient"]
                .iter()
                .zip(fused.iter().zip(&dfdx))
            {
                assert_eq!(bits(a), bits(b), "{what}, case {case}, relu {relu}");
            }
        }
    }

    #[test]
    fn without_a_tape_gives_the_taped_values() {
        let dev = Cpu::default();
        let pool = Arc::new(Pool::default());
        let z = dev.tensor_from_vec(vec![1.0, -2.0, 0.5, 3.0, -1.0, 0.0], (2, 3));
        let b = dev.tensor_from_vec(vec![0.5, -1.0], (2,));
        let plain = bias_relu(z.clone(), b.clone(), true, &pool).as_vec();
        assert_eq!(plain, vec![1.5, 0.0, 1.0, 2.0, 0.0, 0.0]);
        let taped = bias_relu(z.leaky_trace(), b.leaky_trace(), true, &pool);
        assert_eq!(taped.retaped::<NoneTape>().as_vec(), plain);
        let linear = bias_relu(z, b, false, &pool).as_vec();
        assert_eq!(linear, vec![1.5, -1.5, 1.0, 2.0, -2.0, -1.0]);
    }
}
