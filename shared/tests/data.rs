//! The data sets: shapes, determinism, split, standardisation and the problems' geometry.

use shared::data::{
    couple, coupling_matrix, coupling_pairs, generate, generate_problem, problem_rng,
    validate_coupling, DataError, Dataset,
};
use shared::spec::{DataSpec, Problem};

const CIRCLES: Problem = Problem::Circles {
    noise: 0.1,
    factor: 0.35,
};
const MOONS: Problem = Problem::Moons { noise: 0.1 };

fn thesis(seed: u64) -> DataSpec {
    DataSpec {
        problems: vec![CIRCLES, MOONS],
        samples: 2000,
        test_fraction: 0.5,
        seed,
        coupling: 0.0,
    }
}

fn column(x: &[f32], cols: usize, c: usize) -> Vec<f64> {
    x.chunks(cols).map(|r| f64::from(r[c])).collect()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

fn bits(d: &Dataset) -> Vec<u32> {
    [&d.train_x, &d.train_y, &d.test_x, &d.test_y]
        .iter()
        .flat_map(|v| v.iter().map(|x| x.to_bits()))
        .collect()
}

#[test]
fn thesis_shapes_and_split() {
    let d = generate(&thesis(0)).unwrap();
    assert_eq!((d.inputs, d.outputs), (4, 2));
    assert_eq!((d.n_train, d.n_test), (1000, 1000));
    assert_eq!(d.train_x.len(), 1000 * 4);
    assert_eq!(d.train_y.len(), 1000 * 2);
    assert_eq!(d.test_x.len(), 1000 * 4);
    assert_eq!(d.test_y.len(), 1000 * 2);
    assert!(d
        .train_y
        .iter()
        .chain(&d.test_y)
        .all(|&y| y == 0.0 || y == 1.0));
    assert!(d.train_x.iter().chain(&d.test_x).all(|x| x.is_finite()));
}

#[test]
fn split_sizes_follow_the_fraction() {
    for (samples, tf, train, test) in [
        (2000, 0.5, 1000, 1000),
        (1000, 0.2, 800, 200),
        (7, 0.3, 5, 2),
    ] {
        let d = generate(&DataSpec {
            problems: vec![MOONS],
            samples,
            test_fraction: tf,
            seed: 3,
            coupling: 0.0,
        })
        .unwrap();
        assert_eq!((d.n_train, d.n_test), (train, test), "{samples} {tf}");
        assert_eq!(d.train_x.len(), train * 2);
        assert_eq!(d.test_y.len(), test);
    }
}

#[test]
fn deterministic_from_the_seed() {
    let a = generate(&thesis(0)).unwrap();
    let b = generate(&thesis(0)).unwrap();
    assert_eq!(bits(&a), bits(&b));
    let c = generate(&thesis(1)).unwrap();
    assert_ne!(bits(&a), bits(&c));
    assert_ne!(a.train_x, c.train_x);
}

#[test]
fn pinned_first_values() {
    // Portability guard: ChaCha8 is platform independent, so these bits must never change
    // (a change means every stored result was made on different data).
    let d = generate(&thesis(0)).unwrap();
    let want = [-0.5859798f32, 0.3303278, 1.4684442, 0.14559257];
    for (got, want) in d.train_x[..4].iter().zip(want) {
        assert!((got - want).abs() <= 1e-6, "{got} != {want}");
    }
    println!("first train row of the thesis data: {:?}", &d.train_x[..4]);
}

#[test]
fn train_columns_are_standardised() {
    let d = generate(&thesis(0)).unwrap();
    for c in 0..d.inputs {
        let (m, s) = mean_std(&column(&d.train_x, d.inputs, c));
        assert!(m.abs() < 1e-6, "column {c}: mean {m}");
        assert!((s - 1.0).abs() < 1e-5, "column {c}: std {s}");
        // The test part uses the train statistics: close to, not exactly, standard.
        let (m, s) = mean_std(&column(&d.test_x, d.inputs, c));
        assert!(
            m.abs() < 0.15 && (s - 1.0).abs() < 0.15,
            "test column {c}: {m} {s}"
        );
    }
}

#[test]
fn circles_and_moons_labels_are_balanced() {
    for p in [CIRCLES, MOONS] {
        let (pts, labels) = generate_problem(&p, 2000, &mut problem_rng(0, 0));
        assert_eq!(pts.len(), 2000);
        assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 1000, "{p:?}");
        let (_, odd) = generate_problem(&p, 2001, &mut problem_rng(0, 0));
        assert_eq!(odd.iter().filter(|&&l| l == 0).count(), 1000, "{p:?}");
    }
    // After the split each half is still roughly balanced.
    let d = generate(&thesis(0)).unwrap();
    for k in 0..2 {
        let ones = column(&d.train_y, 2, k).iter().sum::<f64>();
        assert!((400.0..600.0).contains(&ones), "output {k}: {ones}");
    }
}

#[test]
fn labels_are_shuffled() {
    let (_, labels) = generate_problem(&CIRCLES, 2000, &mut problem_rng(0, 0));
    let first_half = labels[..1000].iter().filter(|&&l| l == 1).count();
    assert!((400..600).contains(&first_half), "{first_half}");
}

/// Accuracy of the best threshold on one feature (either direction).
fn best_threshold(feature: &[f64], labels: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..feature.len()).collect();
    idx.sort_by(|&a, &b| feature[a].total_cmp(&feature[b]));
    let n = labels.len() as f64;
    let total1 = labels.iter().filter(|&&l| l == 1).count() as f64;
    let mut ones_below = 0.0;
    let mut best: f64 = 0.0;
    for (k, &i) in idx.iter().enumerate() {
        // Threshold after the first k points: predict 0 below, 1 above (or the reverse).
        let below = k as f64;
        let acc = ((below - ones_below) + (total1 - ones_below)) / n;
        best = best.max(acc).max(1.0 - acc);
        ones_below += f64::from(labels[i]);
    }
    best
}

#[test]
fn circles_are_separated_by_radius() {
    let (pts, labels) = generate_problem(&CIRCLES, 2000, &mut problem_rng(0, 0));
    let radius: Vec<f64> = pts.iter().map(|p| p[0].hypot(p[1])).collect();
    let outer: Vec<f64> = radius
        .iter()
        .zip(&labels)
        .filter(|(_, &l)| l == 0)
        .map(|(r, _)| *r)
        .collect();
    let inner: Vec<f64> = radius
        .iter()
        .zip(&labels)
        .filter(|(_, &l)| l == 1)
        .map(|(r, _)| *r)
        .collect();
    let (mo, so) = mean_std(&outer);
    let (mi, _) = mean_std(&inner);
    assert!((mo - 1.0).abs() < 0.02, "outer radius {mo}");
    assert!((mi - 0.35).abs() < 0.05, "inner radius {mi}");
    assert!((so - 0.1).abs() < 0.03, "outer radial spread {so}");
    assert!(best_threshold(&radius, &labels) > 0.97);
    // No single coordinate separates them.
    for c in 0..2 {
        let f: Vec<f64> = pts.iter().map(|p| p[c]).collect();
        assert!(best_threshold(&f, &labels) < 0.75, "coordinate {c}");
    }
}

#[test]
fn moons_are_not_linearly_trivial() {
    let (pts, labels) = generate_problem(&MOONS, 2000, &mut problem_rng(0, 0));
    // Projections on many directions: none separates the moons cleanly.
    let mut best: f64 = 0.0;
    for k in 0..180 {
        let a = std::f64::consts::PI * k as f64 / 180.0;
        let f: Vec<f64> = pts
            .iter()
            .map(|p| p[0] * a.cos() + p[1] * a.sin())
            .collect();
        best = best.max(best_threshold(&f, &labels));
    }
    assert!((0.75..0.93).contains(&best), "best linear accuracy {best}");
    // But they are separable: 1-nearest-neighbour on held-out points.
    let (train, test) = pts.split_at(1500);
    let correct = test
        .iter()
        .zip(&labels[1500..])
        .filter(|(p, &l)| {
            let nn = train
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| {
                    let da = (a[0] - p[0]).powi(2) + (a[1] - p[1]).powi(2);
                    let db = (b[0] - p[0]).powi(2) + (b[1] - p[1]).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap()
                .0;
            labels[nn] == l
        })
        .count();
    assert!(correct as f64 / 500.0 > 0.97, "1-nn accuracy {correct}/500");
    // The shape of make_moons: x in about [-1, 2], y in about [-0.5, 1].
    let (mx, _) = mean_std(&pts.iter().map(|p| p[0]).collect::<Vec<_>>());
    let (my, _) = mean_std(&pts.iter().map(|p| p[1]).collect::<Vec<_>>());
    assert!(
        (mx - 0.5).abs() < 0.05 && (my - 0.25).abs() < 0.05,
        "{mx} {my}"
    );
}

#[test]
fn other_problems() {
    let xor = Problem::Xor { noise: 0.05 };
    let (pts, labels) = generate_problem(&xor, 4000, &mut problem_rng(1, 0));
    let ones = labels.iter().filter(|&&l| l == 1).count();
    assert!((1800..2200).contains(&ones), "{ones}");
    let agree = pts
        .iter()
        .zip(&labels)
        .filter(|(p, &l)| u8::from(p[0] * p[1] > 0.0) == l)
        .count();
    assert!(agree as f64 / 4000.0 > 0.9, "{agree}");
    assert!(pts.iter().all(|p| p[0].abs() < 1.5 && p[1].abs() < 1.5));

    let blobs = Problem::Blobs { std: 0.3 };
    let (pts, labels) = generate_problem(&blobs, 1000, &mut problem_rng(1, 1));
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 500);
    let f: Vec<f64> = pts.iter().map(|p| p[0] + p[1]).collect();
    assert!(best_threshold(&f, &labels) > 0.99);

    let spirals = Problem::Spirals {
        noise: 0.0,
        turns: 1.5,
    };
    let (pts, labels) = generate_problem(&spirals, 1000, &mut problem_rng(1, 2));
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 500);
    assert!(pts.iter().all(|p| p[0].hypot(p[1]) <= 1.0 + 1e-12));
    // Noiseless arms are point reflections of each other.
    let mut arm0: Vec<[f64; 2]> = pts
        .iter()
        .zip(&labels)
        .filter(|(_, &l)| l == 0)
        .map(|(p, _)| *p)
        .collect();
    let mut arm1: Vec<[f64; 2]> = pts
        .iter()
        .zip(&labels)
        .filter(|(_, &l)| l == 1)
        .map(|(p, _)| [-p[0], -p[1]])
        .collect();
    let key = |p: &[f64; 2]| p[0].hypot(p[1]);
    arm0.sort_by(|a, b| key(a).total_cmp(&key(b)));
    arm1.sort_by(|a, b| key(a).total_cmp(&key(b)));
    for (a, b) in arm0.iter().zip(&arm1) {
        assert!((a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9);
    }

    // All kinds in one data set: three... five problems, ten inputs.
    let d = generate(&DataSpec {
        problems: vec![CIRCLES, MOONS, xor, spirals, blobs],
        samples: 300,
        test_fraction: 0.5,
        seed: 9,
        coupling: 0.0,
    })
    .unwrap();
    assert_eq!(
        (d.inputs, d.outputs, d.n_train, d.n_test),
        (10, 5, 150, 150)
    );
}

#[test]
fn problems_have_independent_streams() {
    // Adding a problem leaves the columns of the others unchanged.
    let one = generate(&DataSpec {
        problems: vec![CIRCLES],
        ..thesis(4)
    })
    .unwrap();
    let two = generate(&thesis(4)).unwrap();
    assert_eq!(column(&one.train_x, 2, 0), column(&two.train_x, 4, 0));
    assert_eq!(column(&one.test_x, 2, 1), column(&two.test_x, 4, 1));
    assert_eq!(column(&one.train_y, 1, 0), column(&two.train_y, 2, 0));
    // Two identical problems get different points.
    let twins = generate(&DataSpec {
        problems: vec![MOONS, MOONS],
        ..thesis(4)
    })
    .unwrap();
    assert_ne!(column(&twins.train_x, 4, 0), column(&twins.train_x, 4, 2));
}

#[test]
fn rows_keep_their_problems_together() {
    // Row j of the data set is point j of every problem: with noiseless circles the first
    // two columns of every row lie on a circle (before standardisation, radius 1 or 0.35).
    let spec = DataSpec {
        problems: vec![
            Problem::Circles {
                noise: 0.0,
                factor: 0.5,
            },
            MOONS,
        ],
        samples: 400,
        test_fraction: 0.25,
        seed: 2,
        coupling: 0.0,
    };
    let d = generate(&spec).unwrap();
    let (pts, labels) = generate_problem(&spec.problems[0], 400, &mut problem_rng(2, 0));
    assert!(pts.iter().all(|p| {
        let r = p[0].hypot(p[1]);
        (r - 1.0).abs() < 1e-12 || (r - 0.5).abs() < 1e-12
    }));
    // Recover the raw values through the (affine) standardisation: labels follow radius.
    let all_x: Vec<&[f32]> = d.train_x.chunks(4).chain(d.test_x.chunks(4)).collect();
    let all_y: Vec<&[f32]> = d.train_y.chunks(2).chain(d.test_y.chunks(2)).collect();
    let n_inner = labels.iter().filter(|&&l| l == 1).count();
    let n_inner_rows = all_y.iter().filter(|y| y[0] == 1.0).count();
    assert_eq!(n_inner, n_inner_rows);
    // Points of the inner circle are nearer the centre in standardised units too.
    let r = |x: &[f32]| f64::from(x[0]).hypot(f64::from(x[1]));
    let (ri, ro): (Vec<f64>, Vec<f64>) = {
        let mut ri = Vec::new();
        let mut ro = Vec::new();
        for (x, y) in all_x.iter().zip(&all_y) {
            if y[0] == 1.0 {
                ri.push(r(x))
            } else {
                ro.push(r(x))
            }
        }
        (ri, ro)
    };
    let max_inner = ri.iter().cloned().fold(f64::MIN, f64::max);
    let min_outer = ro.iter().cloned().fold(f64::MAX, f64::min);
    assert!(max_inner < min_outer, "{max_inner} {min_outer}");
}

#[test]
fn errors() {
    let base = thesis(0);
    assert_eq!(
        generate(&DataSpec {
            problems: vec![],
            ..base.clone()
        }),
        Err(DataError::NoProblems)
    );
    assert_eq!(
        generate(&DataSpec {
            samples: 1,
            ..base.clone()
        }),
        Err(DataError::TooFewSamples(1))
    );
    for tf in [0.0, 1.0, -0.5, f64::NAN] {
        let e = generate(&DataSpec {
            test_fraction: tf,
            ..base.clone()
        })
        .unwrap_err();
        assert!(matches!(e, DataError::BadTestFraction(_)), "{tf}: {e}");
    }
    let e = generate(&DataSpec {
        samples: 10,
        test_fraction: 0.01,
        ..base.clone()
    })
    .unwrap_err();
    assert!(matches!(e, DataError::EmptySplit { n_test: 0, .. }), "{e}");
    let e = generate(&DataSpec {
        problems: vec![CIRCLES, Problem::Moons { noise: -1.0 }],
        ..base.clone()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            DataError::BadProblem {
                index: 1,
                kind: "moons",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "problem 1 (moons): noise must be a finite number >= 0, got -1"
    );
}

#[test]
fn the_csv_export_reads_back_to_the_same_bits() {
    let spec = DataSpec {
        seed: 7,
        ..DataSpec::protocol()
    };
    let data = shared::data::generate(&spec).unwrap();
    let csv = shared::data::to_csv(&data);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("split,x0,x1,x2,x3,y0,y1"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), data.n_train + data.n_test);
    let (mut xs, mut ys) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 7);
        let train = i < data.n_train;
        assert_eq!(row[0], if train { "train" } else { "test" });
        let values: Vec<f32> = row[1..].iter().map(|v| v.parse().unwrap()).collect();
        let (x, y) = if train {
            (&mut xs.0, &mut ys.0)
        } else {
            (&mut xs.1, &mut ys.1)
        };
        x.extend_from_slice(&values[..4]);
        y.extend_from_slice(&values[4..]);
    }
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&xs.0), bits(&data.train_x));
    assert_eq!(bits(&xs.1), bits(&data.test_x));
    assert_eq!(bits(&ys.0), bits(&data.train_y));
    assert_eq!(bits(&ys.1), bits(&data.test_y));
}

// ------------------------------------------------------------------------------------------
// The coupling control (`data.coupling`).

fn coupled(degrees: f64) -> DataSpec {
    DataSpec {
        coupling: degrees,
        ..thesis(0)
    }
}

/// FNV-1a over the bits of every matrix of the data set.
fn digest(d: &Dataset) -> u64 {
    bits(d).iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn coupling_zero_is_the_uncoupled_data_bit_for_bit() {
    // The thesis data as every stored result was trained on (the digest of every bit; the
    // coupling is skipped, not applied as an identity rotation).
    let plain = generate(&thesis(0)).unwrap();
    assert_eq!(
        digest(&plain),
        0x5f89_4071_eef9_01fd,
        "{:#x}",
        digest(&plain)
    );
    assert_eq!(bits(&generate(&coupled(0.0)).unwrap()), bits(&plain));
    assert_eq!(bits(&generate(&coupled(-0.0)).unwrap()), bits(&plain));
    // And the spec's JSON (so the task id) has no coupling key at 0.
    let json = serde_json::to_string(&coupled(0.0)).unwrap();
    assert!(!json.contains("coupling"), "{json}");
    let back: DataSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back.coupling, 0.0);
    assert!(serde_json::to_string(&coupled(15.0))
        .unwrap()
        .contains("\"coupling\":15.0"));
}

#[test]
fn the_coupling_is_an_orthonormal_map_for_any_number_of_problems() {
    assert!(coupling_pairs(1).is_empty());
    assert_eq!(coupling_pairs(2), vec![(0, 1)]);
    assert_eq!(coupling_pairs(3), vec![(0, 1), (1, 2), (2, 0)]);
    for problems in 1..=6 {
        for degrees in [0.0, 1.0, 15.0, 30.0, 45.0, 60.0, 89.5, 90.0] {
            let r = coupling_matrix(problems, degrees);
            for i in 0..problems {
                for j in 0..problems {
                    let dot: f64 = (0..problems)
                        .map(|k| r[k * problems + i] * r[k * problems + j])
                        .sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (dot - want).abs() < 1e-12,
                        "{problems} problems at {degrees}: (R^T R)[{i}][{j}] = {dot}"
                    );
                }
            }
        }
    }
    // Two problems: (x1, x3) and (x2, x4) rotated by θ.
    let (s, c) = 30f64.to_radians().sin_cos();
    let r = coupling_matrix(2, 30.0);
    for (got, want) in r.iter().zip([c, -s, s, c]) {
        assert!((got - want).abs() < 1e-15, "{r:?}");
    }
    let mut row = [1.0, 2.0, 3.0, 4.0];
    couple(&mut row, 2, 30.0);
    let want = [
        c - 3.0 * s,
        2.0 * c - 4.0 * s,
        s + 3.0 * c,
        2.0 * s + 4.0 * c,
    ];
    for (got, want) in row.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{row:?}");
    }
}

#[test]
fn coupling_rotates_the_raw_points_before_standardising() {
    // The coupled data are the standardised rotation of the very points the uncoupled data
    // hold: the raw points of every problem, rotated by the matrix, norms preserved.
    for problems in [2usize, 3] {
        let spec = DataSpec {
            problems: [CIRCLES, MOONS, Problem::Xor { noise: 0.1 }][..problems].to_vec(),
            samples: 300,
            test_fraction: 0.5,
            seed: 5,
            coupling: 45.0,
        };
        let raw: Vec<Vec<[f64; 2]>> = (0..problems)
            .map(|k| generate_problem(&spec.problems[k], 300, &mut problem_rng(5, k)).0)
            .collect();
        let width = 2 * problems;
        let mut x: Vec<f64> = (0..300)
            .flat_map(|j| raw.iter().flat_map(move |p| p[j]))
            .collect();
        let norms: Vec<f64> = x
            .chunks(width)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        couple(&mut x, problems, 45.0);
        for (row, n) in x.chunks(width).zip(&norms) {
            let now: f64 = row.iter().map(|v| v * v).sum();
            assert!((now - n).abs() < 1e-9 * n.max(1.0), "{now} vs {n}");
        }
        // Every coupled coordinate draws on every problem at 45 degrees.
        let r = coupling_matrix(problems, 45.0);
        assert!(r.iter().all(|v| v.abs() > 0.1), "{r:?}");
        // The generated data are these rotated points, standardised with the train split.
        let d = generate(&spec).unwrap();
        let uncoupled = generate(&DataSpec {
            coupling: 0.0,
            ..spec.clone()
        })
        .unwrap();
        assert_eq!(
            d.train_y, uncoupled.train_y,
            "labels stay the problems' own"
        );
        for c in 0..width {
            let got = column(&d.train_x, width, c);
            let (m, s) = mean_std(&got);
            assert!(
                m.abs() < 1e-6 && (s - 1.0).abs() < 1e-5,
                "column {c}: {m} {s}"
            );
        }
    }
}

/// Pearson correlation.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let ((ma, sa), (mb, sb)) = (mean_std(a), mean_std(b));
    let cov = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / a.len() as f64;
    cov / (sa * sb)
}

#[test]
fn at_45_degrees_each_label_depends_on_the_other_problems_columns() {
    // The moons' label goes with the moon's second coordinate (upper moon 0, lower 1). Uncoupled,
    // the circles' columns know nothing of it; coupled, the circles' second column carries it.
    let moons_label_vs_circles_x2 = |degrees: f64| {
        let d = generate(&coupled(degrees)).unwrap();
        let y2: Vec<f64> = d.train_y.chunks(2).map(|r| f64::from(r[1])).collect();
        correlation(&y2, &column(&d.train_x, 4, 1))
    };
    let (zero, coupled45) = (
        moons_label_vs_circles_x2(0.0),
        moons_label_vs_circles_x2(45.0),
    );
    assert!(zero.abs() < 0.08, "uncoupled: {zero}");
    assert!(coupled45.abs() > 0.3, "coupled at 45 degrees: {coupled45}");
}

#[test]
fn bad_couplings_are_refused() {
    for degrees in [-1.0, 90.5, f64::NAN, f64::INFINITY] {
        let e = generate(&coupled(degrees)).unwrap_err();
        assert!(matches!(e, DataError::BadCoupling(..)), "{e}");
        assert!(e.to_string().contains("[0, 90]"), "{e}");
    }
    let one = DataSpec {
        problems: vec![MOONS],
        ..coupled(10.0)
    };
    let e = generate(&one).unwrap_err();
    assert!(e.to_string().contains("at least two problems"), "{e}");
    assert!(validate_coupling(90.0, 2).is_ok());
}
