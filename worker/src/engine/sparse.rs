//! The sparse masked linear layers as a dfdx operation: `z = W x + b` over the kept weights of
//! `W` only, with the backward registered on the tape, so that a network mixes dense dfdx
//! layers and sparse ones in one computation and one `backward()`.
//!
//! Consecutive sparse layers run as one operation, a [`sparse_chain`]: the activations between
//! them never become dfdx tensors, so they are neither copied out of dfdx to be read nor
//! allocated and zeroed as gradients by it; they live in buffers of a [`Pool`] that the next
//! step reuses. Only the chain's input, its output and its parameters are dfdx tensors. What
//! the forward pass keeps for the backward pass is one `Saved`, whose buffers are lent by the
//! pool ([`Lent`]) and go back to it when it is dropped. The arithmetic of every value is that
//! of one sparse layer after another ([`super::kernels`]), so a chain gives the same bits as
//! its layers run one by one.
//!
//! Inside a chain the kernels also know which rows of every hidden activation are zero over
//! the whole batch (*silent*: a zombie neuron, which no input reaches and whose bias stays zero,
//! or a neuron no sample of the batch drives): the products that read such a row add zeros,
//! and the gradient through its ReLU is zero, so they are left out, forward and backward,
//! without changing a value ([`kernels::silent_rows`]).
//!
//! Tensors are feature-major (`[features, batch]`); `W` is a vector of the kept values in the
//! order of its [`SparseStructure`].

use std::sync::Arc;

use dfdx::prelude::*;

use super::kernels::{self, Dst, Relu};
use super::pool::{Lent, Pool};
use super::structure::SparseStructure;

/// A 2-D tensor with runtime dimensions on the CPU.
pub type Matrix<T = NoneTape> = Tensor<(usize, usize), f32, Cpu, T>;
/// A 1-D tensor with a runtime length on the CPU.
pub type Vector<T = NoneTape> = Tensor<(usize,), f32, Cpu, T>;

/// Checking every term for a silent source row pays only when most rows are silent: over a
/// mixed pattern the check is a mispredicted branch on many terms. Below this share of silent
/// rows the terms are not checked; the rows (one branch a row: the gradient through a silent
/// ReLU row, the input gradient into one) always are. Either way the results are the same.
/// Measured with `worker bench` at width 1310 and random masks, alternating builds: at 10%
/// density (two thirds of the first hidden layer silent) checking every term made the epoch
/// about 20% slower; at 3% and 1% (89-96% silent) the checks halve it
/// (docs/performance.md). IMP's own tickets have few silent rows, and no term checks.
const CHECK_TERMS_FROM: f64 = 0.75;

/// `flags` for the per-term checks, when most of them are set.
fn for_terms(flags: &[bool]) -> Option<&[bool]> {
    let silent = flags.iter().filter(|&&f| f).count();
    (silent > 0 && silent as f64 >= CHECK_TERMS_FROM * flags.len() as f64).then_some(flags)
}

/// One layer of a [`sparse_chain`].
pub struct ChainLayer<T> {
    /// The kept weights, `[nnz]` in the structure's order.
    pub values: Vector<T>,
    /// `[rows]`.
    pub bias: Vector<T>,
    pub structure: Arc<SparseStructure>,
    /// ReLU after the product (a hidden layer).
    pub relu: bool,
}

/// The layers one after another on `x` (`[cols of the first, batch]`): a `[rows of the last,
/// batch]` tensor. The tape records the gradients of every layer's values and bias, and of
/// `x` when `input_grad` is set. Buffers come from and go back to `pool`.
pub fn sparse_chain<T>(
    x: Matrix<T>,
    layers: Vec<ChainLayer<T>>,
    input_grad: bool,
    pool: &Arc<Pool>,
) -> Matrix<T>
where
    T: Tape<f32, Cpu> + Merge<T>,
{
    check_widths(x.shape().0, &layers);
    let (x, mut tape) = x.split_tape();
    let mut saved = Saved::new(&x, pool);
    let depth = layers.len();
    // Where the gradients of the layers' values and biases go, when there is a tape.
    let mut params = Vec::new();
    let mut out = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        let (values, v_tape) = layer.values.split_tape();
        let (bias, b_tape) = layer.bias.split_tape();
        tape = tape.merge(v_tape).merge(b_tape);
        let link = Link {
            structure: layer.structure,
            relu: layer.relu,
        };
        if i + 1 < depth {
            saved.forward_hidden(link, &values, &bias);
        } else {
            out = saved.forward_last(link, &values, &bias, T::OWNS_TAPE);
        }
        if T::OWNS_TAPE {
            params.push(ParamSlots::new(&values, &bias));
        }
    }
    let batch = saved.batch;
    let rows = out.len() / batch.max(1);
    let result = x.device().tensor_from_vec(out, (rows, batch));
    if T::OWNS_TAPE {
        // Without a tape nothing is kept for a backward pass: `saved` goes back to the pool.
        let slots = Slots::new(&x, &result, params, input_grad);
        tape.add_backward_op(move |grads| saved.backward(&slots, grads));
    }
    result.put_tape(tape)
}

/// Panics unless every layer reads as many features as the one before it gives (the first:
/// `cols`, the features of the chain's input) and has one value per kept weight and one bias
/// per row.
fn check_widths<T>(cols: usize, layers: &[ChainLayer<T>]) {
    assert!(!layers.is_empty(), "a chain has at least one layer");
    let mut width = cols;
    for (i, l) in layers.iter().enumerate() {
        let s = &l.structure;
        assert_eq!(
            width,
            s.cols(),
            "layer {i} of the chain reads {} features, it is given {width}",
            s.cols()
        );
        assert_eq!(l.values.shape().0, s.nnz(), "one value per kept weight");
        assert_eq!(l.bias.shape().0, s.rows(), "one bias per row");
        width = s.rows();
    }
}

/// A layer of a chain as the backward pass sees it.
struct Link {
    structure: Arc<SparseStructure>,
    /// ReLU after the product.
    relu: bool,
}

/// What a chain's forward pass keeps for its backward pass, outside dfdx: every buffer is a
/// [`Lent`] of the chain's pool, so all of them go back to it when this is dropped (after the
/// backward pass, or at once without a tape).
struct Saved {
    pool: Arc<Pool>,
    batch: usize,
    /// The layers run so far.
    links: Vec<Link>,
    /// The chain's input (`[cols of the first layer, batch]`).
    input: Lent,
    /// Every layer's values, for the products of the input gradients.
    values: Vec<Lent>,
    /// The output of every layer but the last.
    hidden: Vec<Lent>,
    /// The last layer's output, where the gradient is taken through its ReLU.
    last: Option<Lent>,
    /// For every layer with a ReLU, which rows of its output are zero over the whole batch
    /// (neurons that no input reaches, or that no sample of the batch drives); empty for the
    /// others. The terms that read such a row add zeros, and the gradient through it is zero,
    /// so the kernels leave them out, forward and backward.
    silent: Vec<Vec<bool>>,
}

impl Saved {
    /// Nothing run yet; `x`, the chain's input, copied into a buffer of `pool`.
    fn new(x: &Matrix, pool: &Arc<Pool>) -> Saved {
        let (cols, batch) = *x.shape();
        let mut input = pool.lend(cols * batch);
        x.copy_into(&mut input);
        Saved {
            pool: Arc::clone(pool),
            batch,
            links: Vec::new(),
            input,
            values: Vec::new(),
            hidden: Vec::new(),
            last: None,
            silent: Vec::new(),
        }
    }

    /// Runs the next layer, a hidden one, keeping its output.
    fn forward_hidden(&mut self, link: Link, values: &Vector, bias: &Vector) {
        let (values, bias) = (self.copy(values), self.copy(bias));
        let mut z = self.pool.lend(link.structure.rows() * self.batch);
        self.run(link, values, &bias, &mut z, true);
        self.hidden.push(z);
    }

    /// Runs the last layer: its output, for dfdx. With a tape, the output is also kept where
    /// its ReLU's derivative is needed; without one it is written straight into the result.
    fn forward_last(&mut self, link: Link, values: &Vector, bias: &Vector, tape: bool) -> Vec<f32> {
        let (values, bias) = (self.copy(values), self.copy(bias));
        let len = link.structure.rows() * self.batch;
        if !tape {
            let mut out = vec![0.0; len];
            self.run(link, values, &bias, &mut out, false);
            return out;
        }
        let relu = link.relu;
        let mut z = self.pool.lend(len);
        self.run(link, values, &bias, &mut z, relu);
        let out = z.to_vec();
        if relu {
            self.last = Some(z);
        }
        out
    }

    /// The contents of `t` in a buffer of the pool.
    fn copy(&self, t: &Vector) -> Lent {
        let mut buf = self.pool.lend(t.shape().0);
        t.copy_into(&mut buf);
        buf
    }

    /// The product of layer `link` (the next one) into `z`, with its silent rows when
    /// `record` (a ReLU whose output a later product or the backward pass reads).
    fn run(&mut self, link: Link, values: Lent, bias: &[f32], z: &mut [f32], record: bool) {
        let i = self.links.len();
        let src_terms = self.src_silent(i).and_then(for_terms);
        let mut flags = Vec::new();
        let silent_out = (link.relu && record).then_some(&mut flags);
        let s = &link.structure;
        let src = self.src(i);
        kernels::forward(
            s, &values, bias, src, src_terms, self.batch, z, link.relu, silent_out,
        );
        self.silent.push(flags);
        self.values.push(values);
        self.links.push(link);
    }

    /// The input of layer `i`.
    fn src(&self, i: usize) -> &[f32] {
        match i {
            0 => &self.input,
            _ => &self.hidden[i - 1],
        }
    }

    /// The output of layer `i` (of the last: where its ReLU kept it).
    fn output(&self, i: usize) -> &[f32] {
        match self.hidden.get(i) {
            Some(h) => h,
            None => self.last.as_deref().expect("a ReLU's output is kept"),
        }
    }

    /// The silent rows of layer `i`'s output, where it has a ReLU.
    fn silent_of(&self, i: usize) -> Option<&[bool]> {
        self.links[i].relu.then(|| self.silent[i].as_slice())
    }

    /// The silent rows of layer `i`'s input: nothing is known of the chain's input, which is
    /// not a ReLU output of the chain's.
    fn src_silent(&self, i: usize) -> Option<&[bool]> {
        i.checked_sub(1).and_then(|p| self.silent_of(p))
    }
}

/// A tensor's gradient in dfdx's gradient map (allocated on first use).
type Slot = Box<dyn Fn(&mut Gradients<f32, Cpu>) -> Result<&mut Vec<f32>, CpuError>>;

/// The slot of `t`'s gradient (found through its ghost, which holds none of its data).
fn slot<S: Shape>(t: &Tensor<S, f32, Cpu>) -> Slot {
    let ghost = t.ghost();
    boxed(move |grads| Ok(&mut **grads.get_or_alloc_mut(&ghost)?))
}

/// `f` as a [`Slot`] (a closure given to a function with this bound returns a borrow of its
/// argument).
fn boxed<F>(f: F) -> Slot
where
    F: Fn(&mut Gradients<f32, Cpu>) -> Result<&mut Vec<f32>, CpuError> + 'static,
{
    Box::new(f)
}

/// Where the gradients of a layer's parameters are.
struct ParamSlots {
    values: Slot,
    bias: Slot,
}

impl ParamSlots {
    fn new(values: &Vector, bias: &Vector) -> ParamSlots {
        ParamSlots {
            values: slot(values),
            bias: slot(bias),
        }
    }
}

/// Where the gradients of a chain's tensors are.
struct Slots {
    /// The chain's input, where its gradient is recorded.
    input: Option<Slot>,
    output: Slot,
    /// Every layer's, in order.
    params: Vec<ParamSlots>,
}

impl Slots {
    fn new(x: &Matrix, out: &Matrix, params: Vec<ParamSlots>, input_grad: bool) -> Slots {
        Slots {
            input: input_grad.then(|| slot(x)),
            output: slot(out),
            params,
        }
    }

    /// Allocates every gradient the backward pass adds to or reads.
    fn alloc(&self, grads: &mut Gradients<f32, Cpu>) -> Result<(), CpuError> {
        (self.output)(grads)?;
        for p in &self.params {
            (p.values)(grads)?;
            (p.bias)(grads)?;
        }
        if let Some(input) = &self.input {
            input(grads)?;
        }
        Ok(())
    }
}

impl Saved {
    /// The chain's backward pass: from the gradient of its output, layer by layer down, the
    /// gradients of every layer's parameters and of the chain's input (when recorded).
    fn backward(&self, slots: &Slots, grads: &mut Gradients<f32, Cpu>) -> Result<(), CpuError> {
        slots.alloc(grads)?;
        let last = self.links.len() - 1;
        // The output's gradient, moved out of the map and back after its layer: the map hands
        // out one mutable entry at a time.
        let mut gout = std::mem::take((slots.output)(grads)?);
        let mut passed = self.backward_layer(last, &mut gout, slots, grads)?;
        *(slots.output)(grads)? = gout;
        for i in (0..last).rev() {
            let mut gout = passed.expect("every layer after the first passes a gradient down");
            passed = self.backward_layer(i, &mut gout, slots, grads)?;
        }
        Ok(())
    }

    /// The backward pass of layer `i` from `gout`, its output's gradient: adds its parameters'
    /// gradients, then returns its input's gradient (a layer after the first) or adds it to
    /// the chain's input gradient (the first, when recorded).
    fn backward_layer(
        &self,
        i: usize,
        gout: &mut [f32],
        slots: &Slots,
        grads: &mut Gradients<f32, Cpu>,
    ) -> Result<Option<Lent>, CpuError> {
        let needs_input_grad = i > 0 || slots.input.is_some();
        self.grad_params(i, gout, needs_input_grad, &slots.params[i], grads)?;
        if !needs_input_grad {
            return Ok(None);
        }
        let s = &self.links[i].structure;
        let mut csc = self.pool.lend(s.nnz());
        s.to_csc_into(&self.values[i], &mut csc);
        let gout_terms = self.silent_of(i).and_then(for_terms);
        let batch = self.batch;
        if i == 0 {
            let input = slots
                .input
                .as_ref()
                .expect("the chain's input gradient is recorded");
            let gx = input(grads)?;
            kernels::grad_input(s, &csc, gout, batch, gx, Dst::Accumulate, None, gout_terms);
            return Ok(None);
        }
        let mut g_in = self.pool.lend(s.cols() * batch);
        // The rows a ReLU will mask away need no sums.
        let masked = self.src_silent(i);
        let into = Dst::Overwrite;
        kernels::grad_input(s, &csc, gout, batch, &mut g_in, into, masked, gout_terms);
        Ok(Some(g_in))
    }

    /// Adds the gradients of layer `i`'s values and bias, taking `gout` through its ReLU on
    /// the way (a ReLU's output is positive exactly where its input is); with `keep`, `gout`
    /// holds the result afterwards, for the input gradient.
    fn grad_params(
        &self,
        i: usize,
        gout: &mut [f32],
        keep: bool,
        slots: &ParamSlots,
        grads: &mut Gradients<f32, Cpu>,
    ) -> Result<(), CpuError> {
        let link = &self.links[i];
        let relu = match link.relu {
            false => Relu::No,
            true => Relu::Through {
                out: self.output(i),
                keep,
                silent: self.silent_of(i),
            },
        };
        let src_terms = self.src_silent(i).and_then(for_terms);
        // Moved out of the map while the bias's gradient is borrowed from it.
        let mut gv = std::mem::take((slots.values)(grads)?);
        let gb = (slots.bias)(grads)?;
        let (s, src) = (&link.structure, self.src(i));
        kernels::grad_params(s, gout, relu, src, src_terms, self.batch, &mut gv, gb);
        *(slots.values)(grads)? = gv;
        Ok(())
    }
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

    /// What follows the product in a sparse layer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct SparseOptions {
        /// Record the gradient of the input (not needed for the network's input).
        input_grad: bool,
        /// Apply ReLU to the output (a hidden layer), fused into the same operation.
        relu: bool,
    }

    /// `values` (the kept weights, `[nnz]`) times `x` (`[cols, batch]`) plus `bias` (`[rows]`),
    /// optionally through ReLU: a `[rows, batch]` tensor. The tape records the gradients of the
    /// values and the bias, and of `x` when asked to. A chain of one layer.
    fn sparse_linear<T>(
        x: Matrix<T>,
        values: Vector<T>,
        bias: Vector<T>,
        structure: &Arc<SparseStructure>,
        options: SparseOptions,
    ) -> Matrix<T>
    where
        T: Tape<f32, Cpu> + Merge<T>,
    {
        let layer = ChainLayer {
            values,
            bias,
            structure: Arc::clone(structure),
            relu: options.relu,
        };
        sparse_chain(
            x,
            vec![layer],
            options.input_grad,
            &Arc::new(Pool::default()),
        )
    }

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

    /// A chain of `widths.len() - 1` layers two ways: one sparse chain, and dfdx's dense
    /// products of the masked matrices with ReLU between them. Returns the chain's output and
    /// gradients (input, then values and bias of each layer) and the dense reference's. With
    /// `zombies`, the first layer's biases are zero, as IMP starts every level, and every third
    /// neuron of the first hidden layer has no kept input: a neuron no input reaches.
    fn chain_against_dense(
        widths: &[usize],
        density: f64,
        batch: usize,
        seed: u64,
        pool: &Arc<Pool>,
        zombies: bool,
    ) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let depth = widths.len() - 1;
        let dev = Cpu::default();
        let mut structures = Vec::new();
        let mut dense_ws = Vec::new();
        let mut values = Vec::new();
        let mut biases = Vec::new();
        for l in 0..depth {
            let (cols, rows) = (widths[l], widths[l + 1]);
            let mut keep: Vec<bool> = (0..rows * cols).map(|_| rng.gen_bool(density)).collect();
            let zombie = |r: usize| zombies && l == 0 && r.is_multiple_of(3);
            for r in (0..rows).filter(|&r| zombie(r)) {
                keep[r * cols..(r + 1) * cols].fill(false);
            }
            let s = Arc::new(SparseStructure::from_mask(rows, cols, &keep));
            let w: Vec<f32> = keep
                .iter()
                .map(|&k| if k { rng.gen_range(-1.0..1.0) } else { 0.0 })
                .collect();
            values.push(
                s.positions()
                    .map(|(r, c)| w[r * cols + c])
                    .collect::<Vec<f32>>(),
            );
            biases.push(
                (0..rows)
                    .map(|_| rng.gen_range(-0.5..0.5) * if zombies && l == 0 { 0.0 } else { 1.0 })
                    .collect::<Vec<f32>>(),
            );
            dense_ws.push(w);
            structures.push(s);
        }
        let x: Vec<f32> = (0..widths[0] * batch)
            .map(|_| rng.gen_range(-2.0..2.0))
            .collect();
        let out_rows = widths[depth];
        let weights = dev.tensor_from_vec(
            (0..out_rows * batch)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect::<Vec<f32>>(),
            (out_rows, batch),
        );

        let xs = dev.tensor_from_vec(x.clone(), (widths[0], batch));
        let vs: Vec<Vector> = values
            .iter()
            .map(|v| dev.tensor_from_vec(v.clone(), (v.len(),)))
            .collect();
        let bs: Vec<Vector> = biases
            .iter()
            .map(|b| dev.tensor_from_vec(b.clone(), (b.len(),)))
            .collect();
        let layers = (0..depth)
            .map(|l| ChainLayer {
                values: vs[l].leaky_trace(),
                bias: bs[l].leaky_trace(),
                structure: Arc::clone(&structures[l]),
                relu: l + 1 < depth,
            })
            .collect();
        let out = sparse_chain(xs.leaky_trace(), layers, true, pool);
        let mut sparse = vec![out.retaped::<NoneTape>().as_vec()];
        let grads = (out * weights.clone()).sum().backward();
        sparse.push(contents(&grads.get(&xs)));
        for l in 0..depth {
            sparse.push(contents(&grads.get(&vs[l])));
            sparse.push(contents(&grads.get(&bs[l])));
        }

        let xd = dev.tensor_from_vec(x, (widths[0], batch));
        let wd: Vec<Matrix> = (0..depth)
            .map(|l| dev.tensor_from_vec(dense_ws[l].clone(), (widths[l + 1], widths[l])))
            .collect();
        let bd: Vec<Vector> = biases
            .iter()
            .map(|b| dev.tensor_from_vec(b.clone(), (b.len(),)))
            .collect();
        let mut h = xd.leaky_trace();
        for l in 0..depth {
            let rows = widths[l + 1];
            let z = wd[l].leaky_trace().matmul(h)
                + bd[l]
                    .leaky_trace()
                    .broadcast_like::<_, Axis<1>>(&(rows, batch));
            h = if l + 1 < depth { z.relu() } else { z };
        }
        let mut dense = vec![h.retaped::<NoneTape>().as_vec()];
        let grads = (h * weights).sum().backward();
        dense.push(grads.get(&xd).as_vec());
        for l in 0..depth {
            let g = grads.get(&wd[l]).as_vec();
            let cols = widths[l];
            dense.push(
                structures[l]
                    .positions()
                    .map(|(r, c)| g[r * cols + c])
                    .collect(),
            );
            dense.push(grads.get(&bd[l]).as_vec());
        }
        (sparse, dense)
    }

    #[test]
    fn a_chain_of_sparse_layers_agrees_with_dense_masked_dfdx_layer_by_layer() {
        let pool = Arc::new(Pool::default());
        // With zombies, whole rows of the first hidden layer's output are zero, and the chain
        // leaves out the products that read them or feed their gradient.
        let cases: [(&[usize], f64, usize, bool); 11] = [
            (&[4, 30, 30, 2], 0.2, 64, false),
            (&[4, 30, 30, 2], 0.05, 40, false),
            (&[7, 50, 20, 33, 3], 0.3, 100, false),
            (&[3, 9, 1], 1.0, 1, false),
            (&[5, 40, 40, 40, 2], 0.02, 64, false),
            (&[4, 30, 30, 2], 0.5, 64, true),
            (&[4, 60, 30, 20, 2], 0.3, 40, true),
            (&[2, 12, 5], 1.0, 7, true),
            // Most of the first hidden layer silent: the kernels check every term too.
            (&[4, 60, 30, 2], 0.03, 64, true),
            (&[4, 80, 40, 40, 2], 0.02, 40, true),
            (&[4, 200, 30, 2], 0.05, 64, true),
        ];
        for (case, &(widths, density, batch, zombies)) in cases.iter().enumerate() {
            let seed = case as u64;
            let (sparse, dense) = chain_against_dense(widths, density, batch, seed, &pool, zombies);
            let names = ["output", "input gradient"];
            for (k, (a, b)) in sparse.iter().zip(&dense).enumerate() {
                let what = match k {
                    0 | 1 => names[k].to_string(),
                    _ => format!(
                        "layer {} {} gradient",
                        (k - 2) / 2,
                        ["value", "bias"][(k - 2) % 2]
                    ),
                };
                assert_close(
                    a,
                    b,
                    &format!("{what}, widths {widths:?}, density {density}"),
                );
            }
        }
    }

    #[test]
    fn reused_buffers_change_nothing() {
        // The same chain three times on one pool (whose buffers then hold stale values of
        // other shapes) and once on a fresh pool: the same bits every time.
        let pool = Arc::new(Pool::default());
        let run = |pool: &Arc<Pool>| chain_against_dense(&[4, 30, 30, 2], 0.2, 64, 9, pool, true).0;
        let first = run(&pool);
        chain_against_dense(&[7, 50, 20, 33, 3], 0.3, 100, 3, &pool, false);
        let again = run(&pool);
        let fresh = run(&Arc::new(Pool::default()));
        assert_eq!(first, again);
        assert_eq!(first, fresh);
        assert!(pool.held() > 0, "the pool keeps its buffers");
    }
}
