//! The sparse kernels alone: nanoseconds per kept weight and 64 samples of the forward
//! product (also over 250 samples at once), the input gradient and the weight gradient, for a
//! few sizes and densities, at batch 64.
//! `cargo run -p worker --example kernels`.

use rand::{Rng, SeedableRng};
use std::time::Instant;
use worker::engine::kernels;
use worker::engine::structure::SparseStructure;

fn time<F: FnMut()>(name: &str, work: f64, mut f: F) {
    f();
    let mut v = vec![];
    for _ in 0..21 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:40} median {:.3} ms  {:.2} ns/nnz-row  {:.1} GFLOP/s",
        v[10] * 1e3,
        v[10] * 1e9 / work,
        work * 128.0 / v[10] / 1e9
    );
}

fn main() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for &(n, d) in &[(1310usize, 0.1f64), (1310, 0.01), (410, 0.1), (410, 0.01)] {
        let keep: Vec<bool> = (0..n * n).map(|_| rng.gen_bool(d)).collect();
        let s = SparseStructure::from_mask(n, n, &keep);
        let values: Vec<f32> = (0..s.nnz()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b = 64;
        let x: Vec<f32> = (0..n * b).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let bias = vec![0.0f32; n];
        let mut out = vec![0.0f32; n * b];
        let nnz = s.nnz() as f64;
        time(&format!("forward {n} {d}"), nnz, || {
            kernels::forward(&s, &values, &bias, &x, None, b, &mut out, false, None)
        });
        // The same product over 250 samples at once (per 64 samples: what the held-out loss
        // would pay in chunks of 250 instead of 64).
        let wide: Vec<f32> = (0..n * 250).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut wide_out = vec![0.0f32; n * 250];
        time(
            &format!("forward {n} {d}, batch 250"),
            nnz * 250.0 / 64.0,
            || {
                kernels::forward(
                    &s,
                    &values,
                    &bias,
                    &wide,
                    None,
                    250,
                    &mut wide_out,
                    false,
                    None,
                )
            },
        );
        let mut gx = vec![0.0f32; n * b];
        time(&format!("grad_input {n} {d}"), nnz, || {
            kernels::grad_input(
                &s,
                &s.to_csc(&values),
                &out,
                b,
                &mut gx,
                kernels::Dst::Accumulate,
                None,
                None,
            )
        });
        let mut gv = vec![0.0f32; s.nnz()];
        let mut gb = vec![0.0f32; n];
        time(&format!("grad_params {n} {d}"), nnz, || {
            kernels::grad_params(
                &s,
                &mut out,
                kernels::Relu::No,
                &x,
                None,
                b,
                &mut gv,
                &mut gb,
            )
        });
    }
}
