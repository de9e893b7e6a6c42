//! Where a weight matrix of few rows is cheaper on the sparse path than as dfdx's matrix
//! product: one whole layer of 410 inputs at batch 64, forward and backward, for 2 to 32 rows
//! (the measurement behind `engine::layout::SPARSE_ROWS`).
//! `RAYON_NUM_THREADS=1 cargo run -p worker --example rows`.

use dfdx::prelude::*;
use std::sync::Arc;
use std::time::Instant;
use worker::engine::pool::Pool;
use worker::engine::sparse::{sparse_chain, ChainLayer};
use worker::engine::structure::SparseStructure;

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let mut v = vec![];
    for _ in 0..301 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[150] * 1e6
}

fn main() {
    let dev = Cpu::default();
    let pool = Arc::new(Pool::default());
    for &rows in &[2usize, 4, 8, 16, 32] {
        let cols = 410;
        let b = 64;
        let w: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(rows, cols));
        let x: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(cols, b));
        let bias: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(rows,));
        let dense = time(|| {
            let z = w.leaky_trace().matmul(x.leaky_trace())
                + bias.leaky_trace().broadcast_like::<_, Axis<1>>(&(rows, b));
            let g = z.sum().backward();
            std::hint::black_box(g);
        });
        let s = Arc::new(SparseStructure::from_mask(
            rows,
            cols,
            &vec![true; rows * cols],
        ));
        let v: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(rows * cols,));
        let sparse = time(|| {
            let l = ChainLayer {
                values: v.leaky_trace(),
                bias: bias.leaky_trace(),
                structure: Arc::clone(&s),
                relu: false,
            };
            let z = sparse_chain(x.leaky_trace(), vec![l], true, &pool);
            let g = z.sum().backward();
            std::hint::black_box(g);
        });
        println!("rows {rows:3} x {cols}, batch {b}: dense {dense:.1} us, sparse {sparse:.1} us");
    }
}
