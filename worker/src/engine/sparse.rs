//! The sparse masked linear layer as a dfdx operation: `z = W x + b` over the kept weights of
//! `W` only, with its backward registered on the tape, so that a network mixes dense dfdx
//! layers and sparse ones in one computation and one `backward()`.
//!
//! Tensors are feature-major (`[features, batch]`); `W` is a vector of the kept values in the
//! order of its [`SparseStructure`]. The arithmetic is in [`super::kernels`].

use std::sync::Arc;

use dfdx::prelude::*;

use super::kernels;
use super::structure::SparseStructure;

/// A 2-D tensor with runtime dimensions on the CPU.
pub type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Cpu, T>;
/// A 1-D tensor with a runtime length on the CPU.
pub type Vector<T = NoneTape> = Tensor<(usize,), f32, Cpu, T>;

/// What follows the product in a sparse layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseOptions {
    /// Record the gradient of the input (not needed for the network's input).
    pub input_grad: bool,
    /// Apply ReLU to the output (a hidden layer), fused into the same operation.
    pub relu: bool,
}

/// `values` (the kept weights, `[nnz]`) times `x` (`[cols, batch]`) plus `bias` (`[rows]`),
/// optionally through ReLU: a `[rows, batch]` tensor. The tape records the gradients of the
/// values and the bias, and of `x` when asked to.
pub fn sparse_linear<T>(
    x: Matrix<T>,
    values: Vector<T>,
    bias: Vector<T>,
    structure: &Arc<SparseStructure>,
    options: SparseOptions,
) -> Matrix<T>
where
    T: Tape<f32, Cpu> + Merge<T>,
{
    let s = structure;
    let (cols, batch) = *x.shape();
    assert_eq!(
        cols, s.cols,
        "the input has {cols} features, the layer reads {}",
        s.cols
    );
    assert_eq!(values.shape().0, s.nnz(), "one value per kept weight");
    assert_eq!(bias.shape().0, s.rows, "one bias per row");
    let (x, x_tape) = x.split_tape();
    let (values, v_tape) = values.split_tape();
    let (bias, b_tape) = bias.split_tape();
    let mut tape = x_tape.merge(v_tape).merge(b_tape);

    let dev = x.device().clone();
    let x_data = contents(&x);
    let v_data = contents(&values);
    let b_data = contents(&bias);
    let mut out = vec![0.0f32; s.rows * batch];
    kernels::forward(s, &v_data, &b_data, &x_data, batch, &mut out);
    // ReLU's derivative is where the output is positive; kept for the backward pass.
    let mut positive = Vec::new();
    if options.relu {
        if T::OWNS_TAPE {
            positive = out.iter().map(|&z| z > 0.0).collect();
        }
        for z in &mut out {
            *z = z.max(0.0);
        }
    }
    let out = dev.tensor_from_vec(out, (s.rows, batch));
    let input_grad = options.input_grad;

    if T::OWNS_TAPE {
        let (x_ghost, v_ghost, b_ghost, out_ghost) =
            (x.ghost(), values.ghost(), bias.ghost(), out.ghost());
        let s = Arc::clone(s);
        tape.add_backward_op(move |grads| {
            grads.try_alloc_for(&out_ghost)?;
            grads.try_alloc_for(&v_ghost)?;
            grads.try_alloc_for(&b_ghost)?;
            if input_grad {
                grads.try_alloc_for(&x_ghost)?;
            }
            // Borrow the output gradient by moving it out (and back): the map hands out one
            // mutable entry at a time.
            let mut gout = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            if !positive.is_empty() {
                // Through the ReLU: the gradient of the pre-activation (the output's own
                // gradient is not read after this).
                for (g, &p) in gout.iter_mut().zip(&positive) {
                    *g = if p { *g } else { 0.0 };
                }
            }
            if input_grad {
                let gx = grads.get_or_alloc_mut(&x_ghost)?;
                kernels::grad_input(&s, &s.to_csc(&v_data), &gout, batch, gx);
            }
            let mut gv = std::mem::take(&mut **grads.get_or_alloc_mut(&v_ghost)?);
            let gb = grads.get_or_alloc_mut(&b_ghost)?;
            kernels::grad_params(&s, &gout, &x_data, batch, &mut gv, gb);
            **grads.get_or_alloc_mut(&v_ghost)? = gv;
            **grads.get_or_alloc_mut(&out_ghost)? = gout;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// The data of a contiguous tensor (dfdx gives read access to outside code only by copy;
/// unlike `as_vec`, this also works for an empty tensor).
pub fn contents<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Vec<f32> {
    let mut buf = vec![0.0f32; t.shape().num_elements()];
    t.copy_into(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The layer two ways: the sparse op, and dfdx's dense matmul of the masked matrix.
    fn compare(rows: usize, cols: usize, batch: usize, density: f64, seed: u64, relu: bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let keep: Vec<bool> = (0..rows * cols).map(|_| rng.gen_bool(density)).collect();
        let s = Arc::new(SparseStructure::from_mask(rows, cols, &keep));
        let dense_w: Vec<f32> = keep
            .iter()
            .map(|&k| if k { rng.gen_range(-1.0..1.0) } else { 0.0 })
            .collect();
        let values: Vec<f32> = s.positions().map(|(r, c)| dense_w[r * cols + c]).collect();
        let bias: Vec<f32> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let x: Vec<f32> = (0..cols * batch)
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        // A loss that weighs every output differently, so every gradient entry is exercised.
        let weights: Vec<f32> = (0..rows * batch)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();

        let dev = Cpu::default();
        let wt = dev.tensor_from_vec(weights, (rows, batch));

        let xs = dev.tensor_from_vec(x.clone(), (cols, batch));
        let vs = dev.tensor_from_vec(values, (s.nnz(),));
        let bs = dev.tensor_from_vec(bias.clone(), (rows,));
        let out = sparse_linear(
            xs.leaky_trace(),
            vs.leaky_trace(),
            bs.leaky_trace(),
            &s,
            SparseOptions {
                input_grad: true,
                relu,
            },
        );
        let sparse_out = out.retaped::<NoneTape>().as_vec();
        let grads = (out * wt.clone()).sum().backward();
        let (sgx, sgv, sgb) = (
            contents(&grads.get(&xs)),
            contents(&grads.get(&vs)),
            contents(&grads.get(&bs)),
        );

        let xd = dev.tensor_from_vec(x, (cols, batch));
        let wd = dev.tensor_from_vec(dense_w, (rows, cols));
        let bd = dev.tensor_from_vec(bias, (rows,));
        let z = wd.leaky_trace().matmul(xd.leaky_trace())
            + bd.leaky_trace()
                .broadcast_like::<_, Axis<1>>(&(rows, batch));
        let out = if relu { z.relu() } else { z };
        let dense_out = out.retaped::<NoneTape>().as_vec();
        let grads = (out * wt).sum().backward();
        let (dgx, dgw, dgb) = (
            grads.get(&xd).as_vec(),
            grads.get(&wd).as_vec(),
            grads.get(&bd).as_vec(),
        );
        let dgv: Vec<f32> = s.positions().map(|(r, c)| dgw[r * cols + c]).collect();

        let what = format!("{rows}x{cols}, batch {batch}, density {density}, relu {relu}");
        assert_close(&sparse_out, &dense_out, &format!("forward {what}"));
        assert_close(&sgx, &dgx, &format!("input gradient {what}"));
        assert_close(&sgv, &dgv, &format!("weight gradient {what}"));
        assert_close(&sgb, &dgb, &format!("bias gradient {what}"));
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * scale.max(y.abs()),
                "{what}: entry {j}: sparse {x}, dense {y}"
            );
        }
    }

    #[test]
    fn agrees_with_dense_masked_dfdx_on_random_shapes_and_densities() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..24 {
            let rows = rng.gen_range(1..70);
            let cols = rng.gen_range(1..70);
            let batch = [1, 5, 40, 64, 100][case % 5];
            let density = [1.0, 0.5, 0.25, 0.1, 0.03, 0.0][case % 6];
            compare(rows, cols, batch, density, case as u64, case % 2 == 0);
        }
    }

    #[test]
    fn handles_empty_rows_and_columns_and_a_single_weight() {
        // Density 0.05 on 30 x 30 leaves most rows and columns empty.
        compare(30, 30, 64, 0.05, 1, true);
        compare(30, 30, 64, 0.05, 2, false);
        // One weight in the whole layer.
        let dev = Cpu::default();
        let mut keep = vec![false; 12];
        keep[7] = true; // row 1, column 3
        let s = Arc::new(SparseStructure::from_mask(3, 4, &keep));
        let x = dev.tensor_from_vec((0..8).map(|v| v as f32).collect(), (4, 2));
        let v = dev.tensor_from_vec(vec![2.0], (1,));
        let b = dev.tensor_from_vec(vec![0.5, -1.0, 0.0], (3,));
        let out = sparse_linear(
            x.leaky_trace(),
            v.leaky_trace(),
            b.leaky_trace(),
            &s,
            SparseOptions {
                input_grad: true,
                relu: false,
            },
        );
        assert_eq!(
            out.retaped::<NoneTape>().as_vec(),
            vec![0.5, 0.5, 11.0, 13.0, 0.0, 0.0]
        );
        let grads = out.sum().backward();
        assert_eq!(grads.get(&v).as_vec(), vec![6.0 + 7.0]);
        assert_eq!(grads.get(&b).as_vec(), vec![2.0, 2.0, 2.0]);
        assert_eq!(
            grads.get(&x).as_vec(),
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0]
        );
        // And a layer with no weight at all is its bias.
        let s = Arc::new(SparseStructure::from_mask(2, 3, &[false; 6]));
        let x = dev.tensor_from_vec(vec![1.0; 3], (3, 1));
        let v = dev.tensor_from_vec(Vec::new(), (0,));
        let b = dev.tensor_from_vec(vec![0.25, 0.75], (2,));
        let out = sparse_linear(
            x,
            v,
            b,
            &s,
            SparseOptions {
                input_grad: false,
                relu: false,
            },
        );
        assert_eq!(out.as_vec(), vec![0.25, 0.75]);
    }
}
