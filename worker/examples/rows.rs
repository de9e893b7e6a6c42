//! Where a thin weight matrix is cheaper on the sparse path than as dfdx's matrix product: one
//! whole layer at batch 64, forward and backward, (a) of 410 inputs and 2 to 32 rows (the
//! output layer; the measurement behind `engine::layout::SPARSE_ROWS`), and (b) of 2 to 32
//! inputs and 410 rows through a ReLU, with no input gradient (the first layer, which reads the
//! data; behind `engine::layout::SPARSE_COLS`).
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

/// Microseconds of one forward and backward of a whole `rows x cols` layer, dense and sparse.
fn measure(dev: &Cpu, pool: &Arc<Pool>, rows: usize, cols: usize, first: bool) -> (f64, f64) {
    let b = 64;
    let w: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(rows, cols));
    let x: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(cols, b));
    let bias: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(rows,));
    let dense = time(|| {
        // The first layer reads the data: no gradient for it, a ReLU after it.
        let x = if first {
            x.clone().retaped()
        } else {
            x.leaky_trace()
        };
        let z =
            w.leaky_trace().matmul(x) + bias.leaky_trace().broadcast_like::<_, Axis<1>>(&(rows, b));
        let z = if first { z.relu() } else { z };
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
            relu: first,
        };
        let x = if first {
            x.clone().retaped()
        } else {
            x.leaky_trace()
        };
        let z = sparse_chain(x, vec![l], !first, pool);
        let g = z.sum().backward();
        std::hint::black_box(g);
    });
    (dense, sparse)
}

fn main() {
    let dev = Cpu::default();
    let pool = Arc::new(Pool::default());
    for &rows in &[2usize, 4, 8, 16, 32] {
        let (dense, sparse) = measure(&dev, &pool, rows, 410, false);
        println!("rows {rows:3} x 410, batch 64: dense {dense:.1} us, sparse {sparse:.1} us");
    }
    for &cols in &[2usize, 4, 8, 16, 32] {
        let (dense, sparse) = measure(&dev, &pool, 410, cols, true);
        println!(
            "410 x cols {cols:3} + ReLU, batch 64: dense {dense:.1} us, sparse {sparse:.1} us"
        );
    }
}
