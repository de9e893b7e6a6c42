//! The data set (docs/PROTOCOL.md, "Data"): independent 2-D binary problems, concatenated
//! column-wise, split once into train and test, standardised with the train statistics.
//!
//! Everything is a pure function of the [`DataSpec`]: the randomness comes from
//! [`ChaCha8Rng`] seeded with `spec.seed` (portable, unlike `StdRng`), one stream per use:
//!
//! - stream `k + 1` draws the points of problem `k` ([`generate_problem`]), so adding a problem
//!   leaves the points of the others unchanged;
//! - stream `0` draws the train/test split, which depends on `samples` and the test fraction only.
//!
//! Layout: row `j` is (problem 0 point `j`, problem 1 point `j`, ...). Problem `k` owns input
//! columns `2k, 2k + 1` and output column `k`, as [`crate::graph::TaskIo::two_d_problems`] says.
//!
//! The coupling control ([`couple`], `data.coupling: θ` degrees) rotates the raw inputs before
//! they are split and standardised, so that at θ > 0 problem `k`'s columns carry parts of the
//! other problems' points while the labels stay each problem's own: see [`coupling_pairs`] for
//! the scheme. At θ = 0 nothing is rotated (the data are bit for bit the uncoupled data).

use std::f64::consts::PI;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::spec::{DataSpec, Problem};

/// A generated, split and standardised data set. All matrices are row-major: `train_x` is
/// `n_train x inputs`, `train_y` is `n_train x outputs`; labels are `0.0` or `1.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: usize,
    pub outputs: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub train_x: Vec<f32>,
    pub train_y: Vec<f32>,
    pub test_x: Vec<f32>,
    pub test_y: Vec<f32>,
}

/// Why a [`DataSpec`] cannot be turned into a data set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error("the data set has no problems")]
    NoProblems,
    #[error("samples must be at least 2, got {0}")]
    TooFewSamples(usize),
    #[error("test_fraction must be a number strictly between 0 and 1, got {0}")]
    BadTestFraction(f64),
    #[error(
        "test_fraction {test_fraction} of {samples} samples leaves {n_train} train and {n_test} \
         test points; both must be at least 1"
    )]
    EmptySplit {
        samples: usize,
        test_fraction: f64,
        n_train: usize,
        n_test: usize,
    },
    #[error("coupling {0} is not allowed: {1}")]
    BadCoupling(f64, String),
    #[error("problem {index} ({kind}): {message}")]
    BadProblem {
        index: usize,
        kind: &'static str,
        message: String,
    },
}

/// The snake_case name of a problem kind, as in sweep files.
pub fn problem_kind(problem: &Problem) -> &'static str {
    match problem {
        Problem::Circles { .. } => "circles",
        Problem::Moons { .. } => "moons",
        Problem::Xor { .. } => "xor",
        Problem::Spirals { .. } => "spirals",
        Problem::Blobs { .. } => "blobs",
    }
}

/// Checks the parameters of one problem: noise and `std` finite and `>= 0`, circle `factor`
/// in `[0, 1)`, spiral `turns` finite and `> 0`.
pub fn validate_problem(problem: &Problem) -> Result<(), String> {
    fn non_negative(name: &str, v: f64) -> Result<(), String> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(format!("{name} must be a finite number >= 0, got {v}"))
        }
    }
    match *problem {
        Problem::Circles { noise, factor } => {
            non_negative("noise", noise)?;
            if !(factor.is_finite() && (0.0..1.0).contains(&factor)) {
                return Err(format!("factor must be in [0, 1), got {factor}"));
            }
            Ok(())
        }
        Problem::Moons { noise } | Problem::Xor { noise } => non_negative("noise", noise),
        Problem::Spirals { noise, turns } => {
            non_negative("noise", noise)?;
            if !(turns.is_finite() && turns > 0.0) {
                return Err(format!("turns must be a finite number > 0, got {turns}"));
            }
            Ok(())
        }
        Problem::Blobs { std } => non_negative("std", std),
    }
}

/// The largest coupling in degrees: at 90 every problem's inputs have turned fully into the
/// next problem's columns (for two problems the columns swap, up to sign).
pub const MAX_COUPLING_DEGREES: f64 = 90.0;

/// Checks a coupling: a finite number of degrees in `[0, 90]`, and above 0 only with two or
/// more problems to couple.
pub fn validate_coupling(degrees: f64, problems: usize) -> Result<(), String> {
    if !(degrees.is_finite() && (0.0..=MAX_COUPLING_DEGREES).contains(&degrees)) {
        return Err(format!(
            "the coupling must be a finite angle in [0, {MAX_COUPLING_DEGREES}] degrees"
        ));
    }
    if degrees != 0.0 && problems < 2 {
        return Err("coupling needs at least two problems to rotate into each other".into());
    }
    Ok(())
}

/// The pairs of problems the coupling rotates, in the order it rotates them: `(p, (p + 1) mod
/// P)` for `p = 0..P` when there are `P > 2` problems (a cycle, each problem into the next and
/// the last into the first), the one pair `(0, 1)` for two problems (the cycle's second pair
/// `(1, 0)` is the same plane and would rotate back), none for one.
pub fn coupling_pairs(problems: usize) -> Vec<(usize, usize)> {
    match problems {
        0 | 1 => Vec::new(),
        2 => vec![(0, 1)],
        n => (0..n).map(|p| (p, (p + 1) % n)).collect(),
    }
}

/// Rotates one coordinate of every problem (`v[p]`: problem `p`'s x1, or its x2) by the
/// coupling's Givens rotations in [`coupling_pairs`] order: `(v[p], v[q])` becomes
/// `(cos θ v[p] - sin θ v[q], sin θ v[p] + cos θ v[q])`. A product of rotations, so the map is
/// orthonormal for any θ.
fn rotate_problems(v: &mut [f64], pairs: &[(usize, usize)], (sin, cos): (f64, f64)) {
    for &(p, q) in pairs {
        let (a, b) = (v[p], v[q]);
        v[p] = cos * a - sin * b;
        v[q] = sin * a + cos * b;
    }
}

/// The coupling as a `P x P` row-major matrix `R` over the problems: the coupled first
/// coordinates are `R` times the raw first coordinates (x1 of every problem), and the same
/// for the second coordinates. Orthonormal (`R^T R = I`).
pub fn coupling_matrix(problems: usize, degrees: f64) -> Vec<f64> {
    let pairs = coupling_pairs(problems);
    let angle = degrees.to_radians().sin_cos();
    let mut r = vec![0.0; problems * problems];
    for j in 0..problems {
        let mut unit = vec![0.0; problems];
        unit[j] = 1.0;
        rotate_problems(&mut unit, &pairs, angle);
        for (i, v) in unit.into_iter().enumerate() {
            r[i * problems + j] = v;
        }
    }
    r
}

/// Couples the raw inputs `x` (rows of `2 P` columns, problem `k` in columns `2k, 2k + 1`) in
/// place: every row's first coordinates (columns `0, 2, 4, ...`) are rotated by
/// [`coupling_matrix`], and so are its second coordinates (columns `1, 3, 5, ...`). For two
/// problems this rotates (x1, x3) and (x2, x4) by θ.
pub fn couple(x: &mut [f64], problems: usize, degrees: f64) {
    let pairs = coupling_pairs(problems);
    let angle = degrees.to_radians().sin_cos();
    let mut v = vec![0.0; problems];
    for row in x.chunks_exact_mut(2 * problems) {
        for c in 0..2 {
            for (p, v) in v.iter_mut().enumerate() {
                *v = row[2 * p + c];
            }
            rotate_problems(&mut v, &pairs, angle);
            for (p, v) in v.iter().enumerate() {
                row[2 * p + c] = *v;
            }
        }
    }
}

/// Sizes of the split: `(n_train, n_test)` with `n_test = round(samples * test_fraction)`.
pub fn split_sizes(samples: usize, test_fraction: f64) -> (usize, usize) {
    let n_test = ((samples as f64) * test_fraction).round() as usize;
    let n_test = n_test.min(samples);
    (samples - n_test, n_test)
}

/// The data set as CSV, for tools outside the project (`worker data`, `bench/pytorch_imp.py`):
/// a header `split,x0,x1,..,y0,..`, then one line per point, the train split first in its
/// stored order, then the test split; values printed as the shortest decimal that reads back
/// to the same `f32`.
pub fn to_csv(data: &Dataset) -> String {
    let mut out = String::from("split");
    for i in 0..data.inputs {
        out.push_str(&format!(",x{i}"));
    }
    for o in 0..data.outputs {
        out.push_str(&format!(",y{o}"));
    }
    out.push('\n');
    let splits = [
        ("train", &data.train_x, &data.train_y, data.n_train),
        ("test", &data.test_x, &data.test_y, data.n_test),
    ];
    for (name, x, y, n) in splits {
        for row in 0..n {
            out.push_str(name);
            let xs = &x[row * data.inputs..(row + 1) * data.inputs];
            let ys = &y[row * data.outputs..(row + 1) * data.outputs];
            for v in xs.iter().chain(ys) {
                out.push_str(&format!(",{v}"));
            }
            out.push('\n');
        }
    }
    out
}

/// Generates, splits and standardises the data set of `spec`. Same spec, same bits.
pub fn generate(spec: &DataSpec) -> Result<Dataset, DataError> {
    if spec.problems.is_empty() {
        return Err(DataError::NoProblems);
    }
    if spec.samples < 2 {
        return Err(DataError::TooFewSamples(spec.samples));
    }
    let tf = spec.test_fraction;
    if !(tf.is_finite() && tf > 0.0 && tf < 1.0) {
        return Err(DataError::BadTestFraction(tf));
    }
    let (n_train, n_test) = split_sizes(spec.samples, tf);
    if n_train == 0 || n_test == 0 {
        return Err(DataError::EmptySplit {
            samples: spec.samples,
            test_fraction: tf,
            n_train,
            n_test,
        });
    }
    for (index, problem) in spec.problems.iter().enumerate() {
        validate_problem(problem).map_err(|message| DataError::BadProblem {
            index,
            kind: problem_kind(problem),
            message,
        })?;
    }
    validate_coupling(spec.coupling, spec.problems.len())
        .map_err(|message| DataError::BadCoupling(spec.coupling, message))?;

    let n = spec.samples;
    let n_problems = spec.problems.len();
    let inputs = 2 * n_problems;
    let outputs = n_problems;

    // Column-wise concatenation, in f64 until standardised.
    let mut x = vec![0.0f64; n * inputs];
    let mut y = vec![0.0f32; n * outputs];
    for (k, problem) in spec.problems.iter().enumerate() {
        let mut rng = problem_rng(spec.seed, k);
        let (points, labels) = generate_problem(problem, n, &mut rng);
        for (j, (p, &label)) in points.iter().zip(&labels).enumerate() {
            x[j * inputs + 2 * k] = p[0];
            x[j * inputs + 2 * k + 1] = p[1];
            y[j * outputs + k] = f32::from(label);
        }
    }
    // Uncoupled data are left exactly as drawn (no identity rotation).
    if spec.coupling != 0.0 {
        couple(&mut x, n_problems, spec.coupling);
    }

    // One shuffled split, shared by all problems.
    let mut order: Vec<usize> = (0..n).collect();
    let mut split_rng = ChaCha8Rng::seed_from_u64(spec.seed);
    split_rng.set_stream(0);
    order.shuffle(&mut split_rng);
    let (train_rows, test_rows) = order.split_at(n_train);

    // Train statistics per input column: mean and population standard deviation.
    let mut mean = vec![0.0f64; inputs];
    let mut std = vec![0.0f64; inputs];
    for c in 0..inputs {
        let m = train_rows.iter().map(|&r| x[r * inputs + c]).sum::<f64>() / n_train as f64;
        let var = train_rows
            .iter()
            .map(|&r| (x[r * inputs + c] - m).powi(2))
            .sum::<f64>()
            / n_train as f64;
        let s = var.sqrt();
        mean[c] = m;
        // A constant column is only centred.
        std[c] = if s.is_finite() && s > 0.0 { s } else { 1.0 };
    }

    let gather = |rows: &[usize]| -> (Vec<f32>, Vec<f32>) {
        let mut gx = Vec::with_capacity(rows.len() * inputs);
        let mut gy = Vec::with_capacity(rows.len() * outputs);
        for &r in rows {
            for c in 0..inputs {
                gx.push(((x[r * inputs + c] - mean[c]) / std[c]) as f32);
            }
            gy.extend_from_slice(&y[r * outputs..(r + 1) * outputs]);
        }
        (gx, gy)
    };
    let (train_x, train_y) = gather(train_rows);
    let (test_x, test_y) = gather(test_rows);

    Ok(Dataset {
        inputs,
        outputs,
        n_train,
        n_test,
        train_x,
        train_y,
        test_x,
        test_y,
    })
}

/// The random stream [`generate`] uses for problem `k` of a data set with seed `seed`.
pub fn problem_rng(seed: u64, k: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(k as u64 + 1);
    rng
}

/// Draws `samples` points of one problem: the points (raw, not standardised) and their labels
/// (0 or 1), in shuffled order. Class 0 gets `samples / 2` points, class 1 the rest, for every
/// kind except xor (whose labels follow the uniform draw).
///
/// - circles: scikit-learn `make_circles`: outer circle (radius 1) label 0, inner circle
///   (radius `factor`) label 1, angles `linspace(0, 2 pi)` without endpoint;
/// - moons: scikit-learn `make_moons`: upper moon label 0, lower moon (shifted by (1, -0.5))
///   label 1, angles `linspace(0, pi)` with endpoint (as scikit-learn);
/// - xor: uniform in `[-1, 1]^2`, label `x * y > 0`, decided before the noise is added;
/// - spirals: two arms, label = arm; point `j` of an arm sits at `t = (j + 0.5) / n_arm`,
///   radius `t`, angle `2 pi turns t` (the second arm rotated by pi);
/// - blobs: label 0 around (-1, -1), label 1 around (1, 1), standard deviation `std`.
///
/// Circles, moons, xor and spirals then get independent Gaussian noise of standard deviation
/// `noise` on both coordinates; finally points and labels are shuffled together.
///
/// Parameters are not checked here (see [`validate_problem`]).
pub fn generate_problem<R: Rng + ?Sized>(
    problem: &Problem,
    samples: usize,
    rng: &mut R,
) -> (Vec<[f64; 2]>, Vec<u8>) {
    let n0 = samples / 2;
    let n1 = samples - n0;
    let mut pts: Vec<([f64; 2], u8)> = Vec::with_capacity(samples);
    let noise = match *problem {
        Problem::Circles { noise, factor } => {
            for j in 0..n0 {
                let a = 2.0 * PI * j as f64 / n0 as f64;
                pts.push(([a.cos(), a.sin()], 0));
            }
            for j in 0..n1 {
                let a = 2.0 * PI * j as f64 / n1 as f64;
                pts.push(([factor * a.cos(), factor * a.sin()], 1));
            }
            noise
        }
        Problem::Moons { noise } => {
            for j in 0..n0 {
                let a = linspace_with_end(PI, j, n0);
                pts.push(([a.cos(), a.sin()], 0));
            }
            for j in 0..n1 {
                let a = linspace_with_end(PI, j, n1);
                pts.push(([1.0 - a.cos(), 1.0 - a.sin() - 0.5], 1));
            }
            noise
        }
        Problem::Xor { noise } => {
            for _ in 0..samples {
                let a: f64 = rng.gen_range(-1.0..1.0);
                let b: f64 = rng.gen_range(-1.0..1.0);
                pts.push(([a, b], u8::from(a * b > 0.0)));
            }
            noise
        }
        Problem::Spirals { noise, turns } => {
            for (label, n_arm) in [(0u8, n0), (1u8, n1)] {
                let phase = PI * f64::from(label);
                for j in 0..n_arm {
                    let t = (j as f64 + 0.5) / n_arm as f64;
                    let a = 2.0 * PI * turns * t + phase;
                    pts.push(([t * a.cos(), t * a.sin()], label));
                }
            }
            noise
        }
        Problem::Blobs { std } => {
            for (label, n_blob, c) in [(0u8, n0, -1.0), (1u8, n1, 1.0)] {
                for _ in 0..n_blob {
                    pts.push(([c, c], label));
                }
            }
            std
        }
    };
    if noise != 0.0 {
        for (p, _) in &mut pts {
            let dx: f64 = rng.sample(StandardNormal);
            let dy: f64 = rng.sample(StandardNormal);
            p[0] += noise * dx;
            p[1] += noise * dy;
        }
    }
    pts.shuffle(rng);
    pts.into_iter().unzip()
}

/// Point `j` of numpy's `linspace(0, end, n)` (endpoint included).
fn linspace_with_end(end: f64, j: usize, n: usize) -> f64 {
    if n <= 1 {
        0.0
    } else {
        end * j as f64 / (n - 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_round() {
        assert_eq!(split_sizes(2000, 0.5), (1000, 1000));
        assert_eq!(split_sizes(10, 0.25), (7, 3)); // 2.5 rounds away from zero
        assert_eq!(split_sizes(3, 0.5), (1, 2));
    }

    #[test]
    fn linspace_matches_numpy() {
        assert_eq!(linspace_with_end(PI, 0, 1), 0.0);
        assert_eq!(linspace_with_end(PI, 0, 3), 0.0);
        assert_eq!(linspace_with_end(PI, 2, 3), PI);
        assert!((linspace_with_end(PI, 1, 3) - PI / 2.0).abs() < 1e-15);
    }

    #[test]
    fn noiseless_circles_lie_on_their_circles() {
        let mut rng = problem_rng(0, 0);
        let (p, l) = generate_problem(
            &Problem::Circles {
                noise: 0.0,
                factor: 0.35,
            },
            101,
            &mut rng,
        );
        assert_eq!(l.iter().filter(|&&v| v == 0).count(), 50);
        for (p, l) in p.iter().zip(&l) {
            let r = p[0].hypot(p[1]);
            let want = if *l == 0 { 1.0 } else { 0.35 };
            assert!((r - want).abs() < 1e-12);
        }
    }

    #[test]
    fn problem_validation() {
        assert!(validate_problem(&Problem::Circles {
            noise: 0.1,
            factor: 1.0
        })
        .is_err());
        assert!(validate_problem(&Problem::Moons { noise: -0.1 }).is_err());
        assert!(validate_problem(&Problem::Spirals {
            noise: 0.1,
            turns: 0.0
        })
        .is_err());
        assert!(validate_problem(&Problem::Blobs { std: f64::NAN }).is_err());
        assert!(validate_problem(&Problem::Xor { noise: 0.0 }).is_ok());
    }
}
