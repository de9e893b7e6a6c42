//! The arithmetic of a sparse masked linear layer on raw slices: the forward product, the
//! input gradient through the transpose, and the weight and bias gradients sampled at the kept
//! positions only.
//!
//! Layout: activations are feature-major, `[features, batch]` row-major, so one neuron's
//! values over the batch are contiguous and every kept weight costs one vector multiply-add
//! over the batch (forward and input gradient) or one dot product over the batch (weight
//! gradient). Each output value is computed by one sequential loop in a fixed order, so the
//! results do not depend on how many threads share the rows.
//!
//! On x86-64 with AVX2 and FMA (detected at run time, as gemm does) the kernels are explicit
//! 8-lane vector code with fused multiply-adds; elsewhere portable code with separate
//! multiplies and adds. The two round differently, so results are reproducible on machines of
//! the same instruction set, not across instruction sets.

use rayon::prelude::*;

use super::structure::SparseStructure;

/// Below this many multiply-adds a kernel runs on the calling thread only.
const PARALLEL_WORK: usize = 1 << 17;

/// Rows (or columns) per unit of parallel work.
const ROWS_PER_CHUNK: usize = 16;

/// `out[r, :] = bias[r] + sum over kept (r, c) of value * x[c, :]`, through ReLU when `relu`
/// is set (`z` where `z > 0`, else `+0.0`: NaN and `-0.0` become `+0.0`).
///
/// `x` is `[cols, batch]`, `out` is `[rows, batch]` (overwritten).
///
/// `x_silent` (`[cols]`, [`silent_rows`] of `x`) flags rows of `x` that are `+0.0` over the
/// whole batch: the terms that read them add only zeros and are left out (four at a time
/// where the kernels take four at a time), which changes no value; at most the sign of a zero
/// sum, which neither a ReLU, nor the loss, nor its gradient sees.
///
/// With `silent_out`, it is set to [`silent_rows`] of `out` on the way (`[rows]`).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    s: &SparseStructure,
    values: &[f32],
    bias: &[f32],
    x: &[f32],
    x_silent: Option<&[bool]>,
    batch: usize,
    out: &mut [f32],
    relu: bool,
    silent_out: Option<&mut Vec<bool>>,
) {
    assert_eq!(values.len(), s.nnz());
    assert_eq!(bias.len(), s.rows());
    assert_eq!(x.len(), s.cols() * batch);
    assert!(x_silent.is_none_or(|f| f.len() == s.cols()));
    assert_eq!(out.len(), s.rows() * batch);
    let flags = silent_out.map(|f| {
        f.clear();
        // A row of no values has none that is positive.
        f.resize(s.rows(), true);
        f.as_mut_slice()
    });
    if batch == 0 {
        return;
    }
    let chunk = |r0: usize, dst: &mut [f32], flags: Option<&mut [bool]>| {
        let gather = Gather {
            ptr: s.row_ptr(),
            index: s.col_idx(),
            height: s.cols(),
            values,
            start: Start::Values(bias),
            src: x,
            batch,
            relu,
            skip: None,
            src_silent: x_silent,
        };
        gather.run(r0, dst, flags);
    };
    for_chunks(out, flags, batch, s.nnz() * batch, chunk);
}

/// How [`grad_input`] treats what its destination holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst {
    /// Add to it.
    Accumulate,
    /// Ignore it: the result is what accumulating into zeros gives, bit for bit.
    Overwrite,
}

/// `gx[c, :] += sum over kept (r, c) of value * gout[r, :]` (the transpose, through CSC), or
/// `=` with [`Dst::Overwrite`].
///
/// The columns flagged in `masked` (`[cols]`) are left out, as if they had no kept weight
/// (`+0.0` with [`Dst::Overwrite`], untouched with [`Dst::Accumulate`]): those whose
/// gradient a ReLU will mask away anyway, because its output is zero over the whole batch
/// ([`silent_rows`]). The rows of `gout` flagged in `gout_silent` (`[rows]`) are `+0.0` over
/// the batch: their terms are left out, as in [`forward`].
///
/// `values_csc` are the values in CSC order ([`SparseStructure::to_csc`]: looking them up
/// through the CSC positions one by one would wait on memory for every entry); `gout` is
/// `[rows, batch]`, `gx` is `[cols, batch]`.
#[allow(clippy::too_many_arguments)]
pub fn grad_input(
    s: &SparseStructure,
    values_csc: &[f32],
    gout: &[f32],
    batch: usize,
    gx: &mut [f32],
    into: Dst,
    masked: Option<&[bool]>,
    gout_silent: Option<&[bool]>,
) {
    let values = values_csc;
    assert_eq!(values.len(), s.nnz());
    assert_eq!(gout.len(), s.rows() * batch);
    assert_eq!(gx.len(), s.cols() * batch);
    assert!(masked.is_none_or(|m| m.len() == s.cols()));
    assert!(gout_silent.is_none_or(|f| f.len() == s.rows()));
    if batch == 0 {
        return;
    }
    let chunk = |c0: usize, dst: &mut [f32], _: Option<&mut [bool]>| {
        let gather = Gather {
            ptr: s.col_ptr(),
            index: s.csc_row(),
            height: s.rows(),
            values,
            start: match into {
                Dst::Accumulate => Start::Dst,
                // Accumulating into zeros starts every sum at +0.0: so does this.
                Dst::Overwrite => Start::Zero,
            },
            src: gout,
            batch,
            relu: false,
            skip: masked,
            src_silent: gout_silent,
        };
        gather.run(c0, dst, None);
    };
    for_chunks(gx, None, batch, s.nnz() * batch, chunk);
}

/// What lies between a layer's product and the output whose gradient [`grad_params`] is
/// given.
#[derive(Debug, Clone, Copy)]
pub enum Relu<'a> {
    /// Nothing (the output layer): the gradient is the pre-activation's.
    No,
    /// A ReLU with this output (`[rows, batch]`, after the ReLU): the gradient is taken
    /// through it row by row as the rows are used (`+0.0` where the output is not positive).
    /// With `keep`, `gout` holds the result afterwards (for a [`grad_input`]); without it,
    /// what `gout` holds afterwards is unspecified.
    ///
    /// `silent` (`[rows]`, [`silent_rows`] of `out`) flags the rows whose output is zero over
    /// the whole batch: their gradient through the ReLU is `+0.0` everywhere, so their weight
    /// and bias gradients are left as they are (adding zeros would not change them) and, with
    /// `keep`, their `gout` rows are set to `+0.0`.
    Through {
        out: &'a [f32],
        keep: bool,
        silent: Option<&'a [bool]>,
    },
}

/// `gv[k] += gout[r, :] . x[c, :]` for every kept weight `k = (r, c)`, and
/// `gb[r] += sum of gout[r, :]`, `gout` taken through the layer's ReLU first (see [`Relu`]).
///
/// `x_silent` (`[cols]`, [`silent_rows`] of `x`) flags the rows of `x` that are zero over the
/// whole batch: the weights that read them are left as they are (their dot product is a sum
/// of zeros). Leaving out silent rows and columns gives the same bits as computing them,
/// whenever the gradients are finite and start at `+0.0` or any non-zero value (a fresh
/// gradient holds `+0.0`).
#[allow(clippy::too_many_arguments)]
pub fn grad_params(
    s: &SparseStructure,
    gout: &mut [f32],
    relu: Relu,
    x: &[f32],
    x_silent: Option<&[bool]>,
    batch: usize,
    gv: &mut [f32],
    gb: &mut [f32],
) {
    assert_eq!(gout.len(), s.rows() * batch);
    let (relu_out, write_back, silent) = match relu {
        Relu::No => (None, false, None),
        Relu::Through { out, keep, silent } => (Some(out), keep, silent),
    };
    assert!(relu_out.is_none_or(|h| h.len() == s.rows() * batch));
    assert!(silent.is_none_or(|f| f.len() == s.rows()));
    assert!(x_silent.is_none_or(|f| f.len() == s.cols()));
    assert_eq!(x.len(), s.cols() * batch);
    assert_eq!(gv.len(), s.nnz());
    assert_eq!(gb.len(), s.rows());
    if batch == 0 {
        return;
    }
    let rows = |r0: usize, gout: &mut [f32], gv: &mut [f32], gb: &mut [f32]| {
        let rows = gb.len();
        let mut dots = Dots {
            row_ptr: s.row_ptr(),
            col_idx: s.col_idx(),
            cols: s.cols(),
            gout,
            relu_out: relu_out.map(|h| &h[r0 * batch..(r0 + rows) * batch]),
            write_back,
            silent_rows: silent,
            silent_cols: x_silent,
            x,
            batch,
        };
        dots.run(r0, gv, gb);
    };
    if s.nnz() * batch < PARALLEL_WORK || rayon::current_num_threads() == 1 {
        rows(0, gout, gv, gb);
        return;
    }
    // Split the gradients at row boundaries so that every chunk owns its rows.
    let mut chunks = Vec::with_capacity(s.rows().div_ceil(ROWS_PER_CHUNK));
    let (mut g_rest, mut gv_rest, mut gb_rest) = (gout, gv, gb);
    let mut r0 = 0;
    while r0 < s.rows() {
        let r1 = (r0 + ROWS_PER_CHUNK).min(s.rows());
        let len = (s.row_ptr()[r1] - s.row_ptr()[r0]) as usize;
        let (g_head, g_tail) = std::mem::take(&mut g_rest).split_at_mut((r1 - r0) * batch);
        let (gv_head, gv_tail) = std::mem::take(&mut gv_rest).split_at_mut(len);
        let (gb_head, gb_tail) = std::mem::take(&mut gb_rest).split_at_mut(r1 - r0);
        chunks.push((r0, g_head, gv_head, gb_head));
        (g_rest, gv_rest, gb_rest) = (g_tail, gv_tail, gb_tail);
        r0 = r1;
    }
    chunks
        .into_par_iter()
        .for_each(|(r0, g, gv, gb)| rows(r0, g, gv, gb));
}

/// The flags of a chunk of rows, one a row.
type Flags<'a> = Option<&'a mut [bool]>;

/// Runs `f(first_row, rows, their flags)` over `dst` (`batch` values a row) and `flags` (one
/// a row) in chunks of rows: in parallel when the work is large enough to pay for it, else as
/// one chunk.
fn for_chunks(
    dst: &mut [f32],
    flags: Flags,
    batch: usize,
    work: usize,
    f: impl Fn(usize, &mut [f32], Flags) + Sync,
) {
    if work < PARALLEL_WORK || rayon::current_num_threads() == 1 {
        f(0, dst, flags);
        return;
    }
    let rows = dst.par_chunks_mut(batch * ROWS_PER_CHUNK).enumerate();
    match flags {
        Some(flags) => rows
            .zip(flags.par_chunks_mut(ROWS_PER_CHUNK))
            .for_each(|((chunk, rows), flags)| f(chunk * ROWS_PER_CHUNK, rows, Some(flags))),
        None => rows.for_each(|(chunk, rows)| f(chunk * ROWS_PER_CHUNK, rows, None)),
    }
}

/// What a [`Gather`]'s sums start from.
#[derive(Clone, Copy)]
enum Start<'a> {
    /// `values[i]` for row `i` (the bias).
    Values(&'a [f32]),
    /// `+0.0`.
    Zero,
    /// What the destination holds (accumulate).
    Dst,
}

/// `dst[i, :] = (start of row i) + sum over the entries k of row i of
/// values[k] * src[index[k], :]`: the forward product (CSR) and the input gradient (CSC) are
/// both this.
struct Gather<'a> {
    ptr: &'a [u32],
    /// Each below `height` (a structure's invariant).
    index: &'a [u32],
    height: usize,
    values: &'a [f32],
    start: Start<'a>,
    src: &'a [f32],
    batch: usize,
    /// ReLU on the result.
    relu: bool,
    /// Rows flagged here (by absolute row) are computed as if they had no entries.
    skip: Option<&'a [bool]>,
    /// Rows of `src` that are `+0.0` over the batch (`[height]`): their terms add nothing,
    /// and are left out.
    src_silent: Option<&'a [bool]>,
}

impl Gather<'_> {
    /// What the sums of row `r` start from; `None`: the destination's values.
    fn start(&self, r: usize) -> Option<f32> {
        match self.start {
            Start::Values(values) => Some(values[r]),
            Start::Zero => Some(0.0),
            Start::Dst => None,
        }
    }

    /// Whether row `c` of `src` is flagged silent (its terms are left out).
    fn src_silent(&self, c: usize) -> bool {
        self.src_silent.is_some_and(|f| f[c])
    }

    /// The entries `a..e` of row `r` that its sum takes (none for a skipped row).
    fn entries(&self, r: usize) -> (usize, usize) {
        let (a, e) = (self.ptr[r] as usize, self.ptr[r + 1] as usize);
        match self.skip {
            Some(skip) if skip[r] => (a, a),
            _ => (a, e),
        }
    }

    /// The rows `first..` into `dst`, and with `flags` whether each came out with no positive
    /// value ([`silent_rows`]).
    fn run(&self, first: usize, dst: &mut [f32], flags: Flags) {
        let rows = dst.len() / self.batch;
        assert!(flags.as_ref().is_none_or(|f| f.len() == rows));
        assert!(first + rows < self.ptr.len(), "rows outside the structure");
        let end = self.ptr[first + rows] as usize;
        assert!(end <= self.index.len() && end <= self.values.len());
        assert!(self.src.len() >= self.height * self.batch);
        assert!(self.skip.is_none_or(|s| s.len() + 1 >= self.ptr.len()));
        assert!(self.src_silent.is_none_or(|s| s.len() >= self.height));
        #[cfg(target_arch = "x86_64")]
        if fma_available() {
            // SAFETY: AVX2 and FMA are available; every index is below `height` (the
            // structure's invariant), and `src` has `height` rows (checked above).
            unsafe { avx2::gather(self, first, dst, flags) };
            return;
        }
        self.portable(first, dst, flags);
    }

    fn portable(&self, first: usize, dst: &mut [f32], mut flags: Flags) {
        let b = self.batch;
        for (i, row) in dst.chunks_exact_mut(b).enumerate() {
            let (a, e) = self.entries(first + i);
            if let Some(start) = self.start(first + i) {
                row.fill(start);
            }
            for k in a..e {
                let (w, j) = (self.values[k], self.index[k] as usize);
                if self.src_silent(j) {
                    continue;
                }
                for (d, &s) in row.iter_mut().zip(&self.src[j * b..(j + 1) * b]) {
                    *d += w * s;
                }
            }
            if self.relu {
                for d in row.iter_mut() {
                    *d = relu(*d);
                }
            }
            if let Some(f) = flags.as_deref_mut() {
                f[i] = silent(row);
            }
        }
    }
}

/// The weight and bias gradients of rows `first..`: one dot product per kept weight.
struct Dots<'a> {
    row_ptr: &'a [u32],
    /// Each below `cols` (a structure's invariant).
    col_idx: &'a [u32],
    cols: usize,
    /// The output gradient of these rows (from `first`), taken through the ReLU in place
    /// when `relu_out` (these rows of the output) is given.
    gout: &'a mut [f32],
    relu_out: Option<&'a [f32]>,
    /// Whether `gout` must hold the gradient through the ReLU afterwards (else it may).
    write_back: bool,
    /// Rows (absolute) whose ReLU output is zero over the batch: skipped, their `gout` set to
    /// `+0.0` when written back.
    silent_rows: Option<&'a [bool]>,
    /// Rows of `x` that are zero over the batch: the dot products that read them are skipped.
    silent_cols: Option<&'a [bool]>,
    x: &'a [f32],
    batch: usize,
}

impl Dots<'_> {
    fn run(&mut self, first: usize, gv: &mut [f32], gb: &mut [f32]) {
        let rows = gb.len();
        let (a, e) = (
            self.row_ptr[first] as usize,
            self.row_ptr[first + rows] as usize,
        );
        assert_eq!(gv.len(), e - a);
        assert_eq!(self.gout.len(), rows * self.batch);
        assert!(self.relu_out.is_none_or(|h| h.len() == rows * self.batch));
        assert!(self.x.len() >= self.cols * self.batch);
        assert!(self.silent_rows.is_none_or(|f| f.len() >= first + rows));
        assert!(self.silent_cols.is_none_or(|f| f.len() >= self.cols));
        #[cfg(target_arch = "x86_64")]
        if fma_available() {
            // SAFETY: AVX2 and FMA are available; every column index is below `cols` (the
            // structure's invariant), and `x` has `cols` rows (checked above).
            unsafe { avx2::dots(self, first, gv, gb) };
            return;
        }
        self.portable(first, gv, gb);
    }

    /// Whether row `r`'s output is zero over the batch.
    fn silent_row(&self, r: usize) -> bool {
        self.silent_rows.is_some_and(|f| f[r])
    }

    /// Whether row `c` of `x` is zero over the batch.
    fn silent_col(&self, c: usize) -> bool {
        self.silent_cols.is_some_and(|f| f[c])
    }

    fn portable(&mut self, first: usize, gv: &mut [f32], gb: &mut [f32]) {
        let b = self.batch;
        let base = self.row_ptr[first] as usize;
        // A copy: `gout`'s rows are borrowed mutably below.
        let silent_cols = self.silent_cols;
        for (i, gb) in gb.iter_mut().enumerate() {
            let r = first + i;
            let silent = self.silent_row(r);
            let g = &mut self.gout[i * b..(i + 1) * b];
            if silent {
                if self.write_back {
                    g.fill(0.0);
                }
                continue;
            }
            if let Some(h) = self.relu_out {
                for (g, &h) in g.iter_mut().zip(&h[i * b..(i + 1) * b]) {
                    *g = through_relu(*g, h);
                }
            }
            let g = &*g;
            *gb += g.iter().sum::<f32>();
            let (a, e) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
            for k in a..e {
                let c = self.col_idx[k] as usize;
                if silent_cols.is_some_and(|f| f[c]) {
                    continue;
                }
                let x = &self.x[c * b..(c + 1) * b];
                gv[k - base] += g.iter().zip(x).map(|(g, x)| g * x).sum::<f32>();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The kernels as explicit AVX2/FMA code. Callers check the indices first.

    use std::arch::x86_64::*;

    use super::{Dots, Flags, Gather};
    /// The kernels fetch the scattered source rows of the entry this many entries ahead
    /// (this row's or the next rows'): the hardware cannot guess them, and at width 1310 the
    /// rows come from beyond the L2 cache. Measured with `cargo run -p worker --example
    /// kernels` on one thread: the input gradient 15-35% and the weight gradient 25-45% faster at
    /// width 1310 and 10% density, the forward product up to 20%; width 410 within noise.
    const PF: usize = 16;

    /// Fetches the `bytes` from `row` into the cache ahead of use.
    #[inline(always)]
    unsafe fn prefetch(row: *const f32, bytes: usize) {
        let row = row as *const i8;
        for line in 0..bytes.div_ceil(64) {
            _mm_prefetch::<_MM_HINT_T0>(row.add(64 * line));
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gather(g: &Gather, first: usize, dst: &mut [f32], mut flags: Flags) {
        // The common batch sizes: one tile a row, in a loop of its own (the general one
        // below holds every tile width and spills registers around them).
        match g.batch {
            64 => return gather_fixed::<8>(g, first, dst, flags),
            40 => return gather_fixed::<5>(g, first, dst, flags),
            32 => return gather_fixed::<4>(g, first, dst, flags),
            _ => {}
        }
        let b = g.batch;
        let src = g.src.as_ptr();
        for (i, row) in dst.chunks_exact_mut(b).enumerate() {
            let r = first + i;
            let (a, e) = g.entries(r);
            let init = g.start(r);
            let out = row.as_mut_ptr();
            let (w, j) = (&g.values[a..e], &g.index[a..e]);
            let term = |k: usize| (*w.get_unchecked(k), *j.get_unchecked(k) as usize);
            gather_row(out, init, g.relu, b, src, e - a, term, |c| g.src_silent(c));
            if let Some(f) = flags.as_deref_mut() {
                f[i] = super::silent(row);
            }
        }
    }

    /// [`gather`] for a batch of exactly `8 NV` lanes: the same arithmetic as its tiles.
    #[inline(always)]
    unsafe fn gather_fixed<const NV: usize>(
        g: &Gather,
        first: usize,
        dst: &mut [f32],
        mut flags: Flags,
    ) {
        let b = 8 * NV;
        let src = g.src.as_ptr();
        let (values, index) = (g.values.as_ptr(), g.index.as_ptr());
        let out = dst.as_mut_ptr();
        let end = g.ptr[first + dst.len() / b] as usize;
        for i in 0..dst.len() / b {
            let r = first + i;
            let (a, e) = g.entries(r);
            let init = g.start(r);
            // Entries a..e are within the values and the index (checked by the caller).
            let term = |k: usize| (*values.add(a + k), *index.add(a + k) as usize);
            // The column of the entry `PF` after `k`, while it is one of this call's.
            let ahead = |k: usize| {
                let j = a + k + PF;
                (j < end).then(|| *index.add(j) as usize)
            };
            let (dst, relu, n) = (out.add(i * b), g.relu, e - a);
            // Every index is below `height`, and so is the length of the flags (checked by
            // the caller).
            let positive = match g.src_silent {
                Some(f) => {
                    let silent = |c: usize| *f.get_unchecked(c);
                    tile::<NV>(dst, init, relu, b, src, n, &term, &ahead, &silent)
                }
                None => tile::<NV>(dst, init, relu, b, src, n, &term, &ahead, &|_| false),
            };
            if let Some(f) = flags.as_deref_mut() {
                f[i] = !positive;
            }
        }
    }

    /// One destination row: tiles of up to 64 lanes kept in registers, then a scalar tail.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gather_row(
        dst: *mut f32,
        init: Option<f32>,
        relu: bool,
        b: usize,
        src: *const f32,
        n: usize,
        term: impl Fn(usize) -> (f32, usize),
        silent: impl Fn(usize) -> bool,
    ) {
        // The general path does not prefetch.
        let no_prefetch = |_: usize| None;
        let mut t = 0;
        // One tile of `8 NV` lanes at `t`.
        macro_rules! tile_at {
            ($nv:literal) => {
                tile::<$nv>(
                    dst.add(t),
                    init,
                    relu,
                    b,
                    src.add(t),
                    n,
                    &term,
                    &no_prefetch,
                    &silent,
                )
            };
        }
        while t + 64 <= b {
            tile_at!(8);
            t += 64;
        }
        _ = match (b - t) / 8 {
            7 => tile_at!(7),
            6 => tile_at!(6),
            5 => tile_at!(5),
            4 => tile_at!(4),
            3 => tile_at!(3),
            2 => tile_at!(2),
            1 => tile_at!(1),
            _ => false,
        };
        for j in t + (b - t) / 8 * 8..b {
            let mut acc = init.unwrap_or(*dst.add(j));
            for k in 0..n {
                let (w, c) = term(k);
                if !silent(c) {
                    acc = w.mul_add(*src.add(c * b + j), acc);
                }
            }
            *dst.add(j) = if relu { super::relu(acc) } else { acc };
        }
    }

    /// `8 NV` lanes of one destination row: its sum over the `n` terms but those that read a
    /// `silent` row, ReLU, store. Whether a stored value is positive.
    #[inline(always)]
    // The innermost loop's operands, kept apart so that they stay in registers.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const NV: usize>(
        dst: *mut f32,
        init: Option<f32>,
        relu: bool,
        b: usize,
        src: *const f32,
        n: usize,
        term: &impl Fn(usize) -> (f32, usize),
        ahead: &impl Fn(usize) -> Option<usize>,
        silent: &impl Fn(usize) -> bool,
    ) -> bool {
        let mut acc = [_mm256_setzero_ps(); NV];
        match init {
            Some(v) => acc = [_mm256_set1_ps(v); NV],
            None => {
                for (q, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_loadu_ps(dst.add(8 * q));
                }
            }
        }
        // Four entries at a time into a fresh partial sum: the accumulators then wait on one
        // add per four entries instead of one multiply-add per entry (10% faster).
        let mut k = 0;
        while k + 4 <= n {
            for e in 0..4 {
                if let Some(c) = ahead(k + e) {
                    prefetch(src.add(c * b), NV * 32);
                }
            }
            let (w0, c0) = term(k);
            let (w1, c1) = term(k + 1);
            let (w2, c2) = term(k + 2);
            let (w3, c3) = term(k + 3);
            // Four rows of zeros add a zero to every sum: nothing.
            if silent(c0) && silent(c1) && silent(c2) && silent(c3) {
                k += 4;
                continue;
            }
            let rows = [
                src.add(c0 * b),
                src.add(c1 * b),
                src.add(c2 * b),
                src.add(c3 * b),
            ];
            let w = [w0, w1, w2, w3].map(|w| _mm256_set1_ps(w));
            for (q, acc) in acc.iter_mut().enumerate() {
                let mut p = _mm256_mul_ps(w[0], _mm256_loadu_ps(rows[0].add(8 * q)));
                p = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(rows[1].add(8 * q)), p);
                p = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(rows[2].add(8 * q)), p);
                p = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(rows[3].add(8 * q)), p);
                *acc = _mm256_add_ps(*acc, p);
            }
            k += 4;
        }
        while k < n {
            let (w, c) = term(k);
            k += 1;
            if silent(c) {
                continue;
            }
            let w = _mm256_set1_ps(w);
            let row = src.add(c * b);
            for (q, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(row.add(8 * q)), *acc);
            }
        }
        if relu {
            // MAXPS returns its second operand (+0.0) for NaN and for zeros of either sign:
            // [`super::relu`].
            for acc in &mut acc {
                *acc = _mm256_max_ps(*acc, _mm256_setzero_ps());
            }
        }
        let mut positive = _mm256_setzero_ps();
        for (q, acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(dst.add(8 * q), *acc);
            positive = _mm256_or_ps(
                positive,
                _mm256_cmp_ps::<_CMP_GT_OQ>(*acc, _mm256_setzero_ps()),
            );
        }
        _mm256_movemask_ps(positive) != 0
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(d: &mut Dots, first: usize, gv: &mut [f32], gb: &mut [f32]) {
        match d.batch {
            64 => return dots_fixed::<8>(d, first, gv, gb),
            40 => return dots_fixed::<5>(d, first, gv, gb),
            32 => return dots_fixed::<4>(d, first, gv, gb),
            _ => {}
        }
        let b = d.batch;
        let base = d.row_ptr[first] as usize;
        for (i, gb) in gb.iter_mut().enumerate() {
            let r = first + i;
            let silent = d.silent_row(r);
            let g = d.gout.as_mut_ptr().add(i * b);
            if silent {
                if d.write_back {
                    std::slice::from_raw_parts_mut(g, b).fill(0.0);
                }
                continue;
            }
            if let Some(h) = d.relu_out {
                // Through the ReLU (`g` where the output is positive, else +0.0), while the
                // row is about to be read anyway.
                let h = h.as_ptr().add(i * b);
                let zero = _mm256_setzero_ps();
                for q in 0..b / 8 {
                    let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(h.add(8 * q)), zero);
                    let masked = _mm256_and_ps(_mm256_loadu_ps(g.add(8 * q)), positive);
                    _mm256_storeu_ps(g.add(8 * q), masked);
                }
                for j in b / 8 * 8..b {
                    *g.add(j) = super::through_relu(*g.add(j), *h.add(j));
                }
            }
            let g = g as *const f32;
            *gb += dot_with(g, b, |j| *g.add(j), |_| _mm256_set1_ps(1.0), false);
            let (a, e) = (d.row_ptr[r] as usize, d.row_ptr[r + 1] as usize);
            let out = &mut gv[a - base..e - base];
            for (gv, &c) in out.iter_mut().zip(&d.col_idx[a..e]) {
                if d.silent_col(c as usize) {
                    continue;
                }
                let x = d.x.as_ptr().add(c as usize * b);
                *gv += dot_with(
                    g,
                    b,
                    |j| *g.add(j) * *x.add(j),
                    |q| _mm256_loadu_ps(x.add(8 * q)),
                    true,
                );
            }
        }
    }

    /// [`dots`] for a batch of exactly `8 NV`: the output gradient's row is loaded once, taken
    /// through the ReLU in registers (and written back only when asked), and serves the bias
    /// sum and every dot product of the row. The same arithmetic as the general loop.
    #[inline(always)]
    unsafe fn dots_fixed<const NV: usize>(
        d: &mut Dots,
        first: usize,
        gv: &mut [f32],
        gb: &mut [f32],
    ) {
        let b = 8 * NV;
        let base = d.row_ptr[first] as usize;
        let last = d.row_ptr[first + gb.len()] as usize;
        let zero = _mm256_setzero_ps();
        for (i, gb) in gb.iter_mut().enumerate() {
            let r = first + i;
            let g = d.gout.as_mut_ptr().add(i * b);
            if d.silent_row(r) {
                if d.write_back {
                    for q in 0..NV {
                        _mm256_storeu_ps(g.add(8 * q), zero);
                    }
                }
                continue;
            }
            let mut gr = [zero; NV];
            for (q, gr) in gr.iter_mut().enumerate() {
                *gr = _mm256_loadu_ps(g.add(8 * q));
            }
            if let Some(h) = d.relu_out {
                let h = h.as_ptr().add(i * b);
                for (q, gr) in gr.iter_mut().enumerate() {
                    let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(h.add(8 * q)), zero);
                    *gr = _mm256_and_ps(*gr, positive);
                    if d.write_back {
                        _mm256_storeu_ps(g.add(8 * q), *gr);
                    }
                }
            }
            // The bias: what `dot_with` adds up, in its order.
            let mut sum = zero;
            for gr in &gr {
                sum = _mm256_add_ps(*gr, sum);
            }
            *gb += hsum(sum);
            let (a, e) = (d.row_ptr[r] as usize, d.row_ptr[r + 1] as usize);
            let later = &d.col_idx[a..last];
            let (x, cols, out) = (d.x.as_ptr(), &d.col_idx[a..e], &mut gv[a - base..e - base]);
            let ahead = |k: usize| later.get(k + PF).map(|&c| c as usize);
            // Every column is below `cols` (the structure's invariant), and so is the length
            // of the flags (checked by the caller).
            match d.silent_cols {
                Some(f) => row_dots::<NV>(&gr, x, cols, out, ahead, |c| *f.get_unchecked(c)),
                None => row_dots::<NV>(&gr, x, cols, out, ahead, |_| false),
            }
        }
    }

    /// `out[k] += g . x[cols[k], :]` for a batch of exactly `8 NV`, the row `g` in registers,
    /// except where `silent(cols[k])`.
    #[inline(always)]
    unsafe fn row_dots<const NV: usize>(
        gr: &[__m256; NV],
        x: *const f32,
        cols: &[u32],
        out: &mut [f32],
        ahead: impl Fn(usize) -> Option<usize>,
        silent: impl Fn(usize) -> bool,
    ) {
        let b = 8 * NV;
        for (k, (gv, &c)) in out.iter_mut().zip(cols).enumerate() {
            if let Some(c) = ahead(k) {
                prefetch(x.add(c * b), NV * 32);
            }
            if silent(c as usize) {
                continue;
            }
            let row = x.add(c as usize * b);
            let mut acc = _mm256_mul_ps(gr[0], _mm256_loadu_ps(row));
            for (q, gr) in gr.iter().enumerate().skip(1) {
                acc = _mm256_fmadd_ps(*gr, _mm256_loadu_ps(row.add(8 * q)), acc);
            }
            *gv += hsum(acc);
        }
    }

    /// The sum over `0..b` of `g[j] * other[j]` (`mul`: whether there is an `other`): 8-lane
    /// partial sums in order, then a scalar tail.
    #[inline(always)]
    unsafe fn dot_with(
        g: *const f32,
        b: usize,
        scalar: impl Fn(usize) -> f32,
        other: impl Fn(usize) -> __m256,
        mul: bool,
    ) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let vectors = b / 8;
        for q in 0..vectors {
            let v = _mm256_loadu_ps(g.add(8 * q));
            acc = if mul {
                _mm256_fmadd_ps(v, other(q), acc)
            } else {
                _mm256_add_ps(v, acc)
            };
        }
        let mut total = hsum(acc);
        for j in vectors * 8..b {
            total += scalar(j);
        }
        total
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// ReLU as the vector kernels compute it: `z` where `z > 0`, else `+0.0` (NaN and `-0.0`
/// included), as `_mm256_max_ps(z, 0)` and the vectorised `z.max(0.0)` give.
#[inline(always)]
fn relu(z: f32) -> f32 {
    if z > 0.0 {
        z
    } else {
        0.0
    }
}

/// A gradient `g` of a ReLU's output `h` taken through it: `g` where `h > 0`, else `+0.0`
/// (a ReLU's output is positive exactly where its input is). The vector kernels compute the
/// same with a compare and a mask.
#[inline(always)]
fn through_relu(g: f32, h: f32) -> f32 {
    if h > 0.0 {
        g
    } else {
        0.0
    }
}

/// `silent[i]`: row `i` of `h` (`[rows, batch]`, a ReLU's output) is zero over the whole batch
/// (no value is positive), so its gradient through the ReLU is zero everywhere and the terms
/// that read it add zeros, which all three kernels use to leave work out. [`forward`] computes
/// these flags of its output on the way; this is their definition.
pub fn silent_rows(h: &[f32], rows: usize) -> Vec<bool> {
    let batch = h.len().checked_div(rows).unwrap_or(0);
    assert_eq!(h.len(), rows * batch, "h is [rows, batch]");
    (0..rows)
        .map(|r| silent(&h[r * batch..(r + 1) * batch]))
        .collect()
}

/// One row of [`silent_rows`]: no value is positive.
fn silent(row: &[f32]) -> bool {
    !row.iter().any(|&v| v > 0.0)
}

/// Whether the vector kernels can run here (detected once).
#[cfg(target_arch = "x86_64")]
pub(crate) fn fma_available() -> bool {
    use std::sync::OnceLock;
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_recorded_arithmetic_names_the_kernels_that_run() {
        assert_eq!(
            fma_available(),
            shared::cpu::arithmetic() == "x86_64-avx2-fma"
        );
    }
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Dense reference arithmetic in f64.
    fn dense_of(s: &SparseStructure, values: &[f32]) -> Vec<f64> {
        let mut w = vec![0.0f64; s.rows() * s.cols()];
        for r in 0..s.rows() {
            for k in s.row_ptr()[r] as usize..s.row_ptr()[r + 1] as usize {
                w[r * s.cols() + s.col_idx()[k] as usize] = values[k] as f64;
            }
        }
        w
    }

    fn random(rows: usize, cols: usize, density: f64, seed: u64) -> (SparseStructure, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let kept: Vec<bool> = (0..rows * cols).map(|_| rng.gen_bool(density)).collect();
        let s = SparseStructure::from_mask(rows, cols, &kept);
        let values = (0..s.nnz()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        (s, values)
    }

    fn close(a: f32, b: f64) -> bool {
        (a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0)
    }

    #[test]
    fn kernels_agree_with_dense_arithmetic_for_every_batch_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (case, &batch) in [1usize, 7, 8, 32, 40, 63, 64, 65, 100, 1000]
            .iter()
            .enumerate()
        {
            let (rows, cols) = (rng.gen_range(1..40), rng.gen_range(1..40));
            let (s, values) = random(rows, cols, 0.3, case as u64);
            let w = dense_of(&s, &values);
            let x: Vec<f32> = (0..cols * batch)
                .map(|_| rng.gen_range(-2.0..2.0))
                .collect();
            let bias: Vec<f32> = (0..rows).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let gout: Vec<f32> = (0..rows * batch)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();

            let mut out = vec![f32::NAN; rows * batch];
            forward(&s, &values, &bias, &x, None, batch, &mut out, false, None);
            let mut gx = vec![0.5f32; cols * batch];
            grad_input(
                &s,
                &s.to_csc(&values),
                &gout,
                batch,
                &mut gx,
                Dst::Accumulate,
                None,
                None,
            );
            let mut gv = vec![0.25f32; s.nnz()];
            let mut gb = vec![-1.0f32; rows];
            grad_params(
                &s,
                &mut gout.clone(),
                Relu::No,
                &x,
                None,
                batch,
                &mut gv,
                &mut gb,
            );

            for r in 0..rows {
                for j in 0..batch {
                    let want = bias[r] as f64
                        + (0..cols)
                            .map(|c| w[r * cols + c] * x[c * batch + j] as f64)
                            .sum::<f64>();
                    assert!(
                        close(out[r * batch + j], want),
                        "forward r={r} j={j} batch {batch}"
                    );
                }
                let want_b = -1.0 + (0..batch).map(|j| gout[r * batch + j] as f64).sum::<f64>();
                assert!(close(gb[r], want_b), "bias gradient r={r} batch {batch}");
            }
            for c in 0..cols {
                for j in 0..batch {
                    let want = 0.5
                        + (0..rows)
                            .map(|r| w[r * cols + c] * gout[r * batch + j] as f64)
                            .sum::<f64>();
                    assert!(
                        close(gx[c * batch + j], want),
                        "input gradient c={c} j={j} batch {batch}"
                    );
                }
            }
            for (k, (r, c)) in s.positions().enumerate() {
                let want = 0.25
                    + (0..batch)
                        .map(|j| gout[r * batch + j] as f64 * x[c * batch + j] as f64)
                        .sum::<f64>();
                assert!(
                    close(gv[k], want),
                    "weight gradient r={r} c={c} batch {batch}"
                );
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (s, values) = random(300, 200, 0.2, 3);
        let batch = 64;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x: Vec<f32> = (0..200 * batch).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let gout: Vec<f32> = (0..300 * batch).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let bias = vec![0.1f32; 300];
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut out = vec![0.0; 300 * batch];
                forward(&s, &values, &bias, &x, None, batch, &mut out, false, None);
                let mut gx = vec![0.0; 200 * batch];
                grad_input(
                    &s,
                    &s.to_csc(&values),
                    &gout,
                    batch,
                    &mut gx,
                    Dst::Accumulate,
                    None,
                    None,
                );
                let mut gv = vec![0.0; s.nnz()];
                let mut gb = vec![0.0; 300];
                grad_params(
                    &s,
                    &mut gout.clone(),
                    Relu::No,
                    &x,
                    None,
                    batch,
                    &mut gv,
                    &mut gb,
                );
                // Through a ReLU, with the flags of its silent rows, in chunks of rows too.
                let mut h = vec![0.0; 300 * batch];
                let mut flags = Vec::new();
                let bias: Vec<f32> = (0..300)
                    .map(|r| if r % 2 == 0 { -9.0 } else { 0.1 })
                    .collect();
                forward(
                    &s,
                    &values,
                    &bias,
                    &x,
                    None,
                    batch,
                    &mut h,
                    true,
                    Some(&mut flags),
                );
                assert_eq!(flags, silent_rows(&h, 300));
                (out, gx, gv, gb, h, flags)
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }

    #[test]
    fn leaving_out_silent_rows_changes_no_value() {
        // A ReLU layer whose output has silent rows (no kept weight and a zero bias, as a
        // neuron no input reaches; or a bias too negative for any sample), then a layer that
        // reads it: every kernel with the flags against the same kernel without them.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for &batch in &[64usize, 40, 13] {
            let (rows0, cols0, rows1): (usize, usize, usize) = (24, 5, 9);
            let mut keep0: Vec<bool> = (0..rows0 * cols0).map(|_| rng.gen_bool(0.5)).collect();
            let mut bias0: Vec<f32> = (0..rows0).map(|_| rng.gen_range(-0.5..0.5)).collect();
            for r in 0..rows0 {
                if r.is_multiple_of(3) {
                    keep0[r * cols0..(r + 1) * cols0].fill(false);
                    bias0[r] = 0.0;
                } else if r.is_multiple_of(5) {
                    bias0[r] = -100.0;
                }
            }
            let s0 = SparseStructure::from_mask(rows0, cols0, &keep0);
            let v0: Vec<f32> = (0..s0.nnz()).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let x: Vec<f32> = (0..cols0 * batch)
                .map(|_| rng.gen_range(-2.0..2.0))
                .collect();
            let mut h = vec![f32::NAN; rows0 * batch];
            let mut flags = vec![false; 3];
            forward(
                &s0,
                &v0,
                &bias0,
                &x,
                None,
                batch,
                &mut h,
                true,
                Some(&mut flags),
            );
            assert_eq!(
                flags,
                silent_rows(&h, rows0),
                "forward flags its silent rows"
            );
            let silent = flags.iter().filter(|&&f| f).count();
            assert!(
                silent >= rows0 / 3 && silent < rows0,
                "{silent} silent rows"
            );

            let (s1, v1) = random(rows1, rows0, 0.6, batch as u64);
            let bias1: Vec<f32> = (0..rows1).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut z = vec![0.0; rows1 * batch];
            let mut z_flagged = vec![1.0; rows1 * batch];
            forward(&s1, &v1, &bias1, &h, None, batch, &mut z, false, None);
            forward(
                &s1,
                &v1,
                &bias1,
                &h,
                Some(&flags),
                batch,
                &mut z_flagged,
                false,
                None,
            );
            assert_eq!(z, z_flagged, "forward, batch {batch}");

            // The second layer's gradients: the weights that read silent rows are left out.
            let gout1: Vec<f32> = (0..rows1 * batch)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let run = |flags: Option<&[bool]>| {
                let mut gv = vec![0.0f32; s1.nnz()];
                gv[0] = 0.5;
                let mut gb = vec![0.0f32; rows1];
                let mut g = gout1.clone();
                grad_params(&s1, &mut g, Relu::No, &h, flags, batch, &mut gv, &mut gb);
                (gv, gb)
            };
            let (plain, flagged) = (run(None), run(Some(&flags)));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&plain.0),
                bits(&flagged.0),
                "weight gradient, batch {batch}"
            );
            assert_eq!(
                bits(&plain.1),
                bits(&flagged.1),
                "bias gradient, batch {batch}"
            );

            // The input gradient into the ReLU's output: the silent rows, which the ReLU masks
            // away, come out +0.0; the others as without the flags.
            let csc = s1.to_csc(&v1);
            let mut gh = vec![f32::NAN; rows0 * batch];
            let mut gh_flagged = vec![f32::NAN; rows0 * batch];
            grad_input(
                &s1,
                &csc,
                &gout1,
                batch,
                &mut gh,
                Dst::Overwrite,
                None,
                None,
            );
            let masked = Some(flags.as_slice());
            grad_input(
                &s1,
                &csc,
                &gout1,
                batch,
                &mut gh_flagged,
                Dst::Overwrite,
                masked,
                None,
            );
            for r in 0..rows0 {
                let (a, b) = (
                    &gh[r * batch..(r + 1) * batch],
                    &gh_flagged[r * batch..(r + 1) * batch],
                );
                if flags[r] {
                    assert!(
                        b.iter().all(|&v| v.to_bits() == 0),
                        "masked row {r} is +0.0"
                    );
                } else {
                    assert_eq!(bits(a), bits(b), "input gradient row {r}, batch {batch}");
                }
            }

            // The first layer's gradients through its ReLU, its silent rows left out.
            let run = |silent: Option<&[bool]>| {
                let mut g = gh.clone();
                let mut gv = vec![0.0f32; s0.nnz()];
                let mut gb = vec![0.25f32; rows0];
                let relu = Relu::Through {
                    out: &h,
                    keep: true,
                    silent,
                };
                grad_params(&s0, &mut g, relu, &x, None, batch, &mut gv, &mut gb);
                (g, gv, gb)
            };
            let (plain, flagged) = (run(None), run(Some(&flags)));
            assert_eq!(
                bits(&plain.0),
                bits(&flagged.0),
                "gradient through the ReLU"
            );
            assert_eq!(bits(&plain.1), bits(&flagged.1), "first weight gradient");
            assert_eq!(bits(&plain.2), bits(&flagged.2), "first bias gradient");

            // And the transpose reading that gradient, its silent rows left out.
            let csc0 = s0.to_csc(&v0);
            let mut gx = vec![0.0f32; cols0 * batch];
            let mut gx_flagged = vec![0.0f32; cols0 * batch];
            grad_input(
                &s0,
                &csc0,
                &plain.0,
                batch,
                &mut gx,
                Dst::Accumulate,
                None,
                None,
            );
            let skip = Some(flags.as_slice());
            grad_input(
                &s0,
                &csc0,
                &plain.0,
                batch,
                &mut gx_flagged,
                Dst::Accumulate,
                None,
                skip,
            );
            assert_eq!(gx, gx_flagged, "input gradient of the first layer");
        }
    }
}
