//! The random-mask baseline against exact counts on tiny shapes: the enumerator against a
//! brute-force count over every subset of weights, and the Monte-Carlo estimate against the
//! enumerator within five binomial standard errors (deterministic: the seed is fixed).

use shared::baseline::{self, Counts};
use shared::graph::{analyze, LayerMask, Status, TaskIo};

const SHAPE: [usize; 4] = [4, 2, 2, 2];

/// Every subset of the 16 weights of (4,2,2,2) whose per-layer counts are `kept`, analysed.
fn brute_force(kept: &[usize]) -> Counts {
    let tasks = TaskIo::two_d_problems(2);
    let layers: Vec<(usize, usize)> = SHAPE.windows(2).map(|w| (w[0], w[1])).collect();
    let total: usize = layers.iter().map(|(i, o)| i * o).sum();
    let mut counts = Counts::default();
    for bits in 0u32..1 << total {
        let mut offset = 0;
        let masks: Vec<LayerMask> = layers
            .iter()
            .map(|&(fan_in, fan_out)| {
                let n = fan_in * fan_out;
                let kept = (0..n as u32)
                    .filter(|i| bits >> (offset + *i as usize) & 1 == 1)
                    .collect();
                offset += n;
                LayerMask {
                    fan_in,
                    fan_out,
                    kept,
                }
            })
            .collect();
        if masks.iter().zip(kept).any(|(m, &k)| m.kept.len() != k) {
            continue;
        }
        counts.draws += 1;
        match analyze(&masks, &tasks).status {
            Status::Split => counts.split += 1,
            Status::Connected => counts.connected += 1,
            Status::Degraded => counts.degraded += 1,
        }
    }
    counts
}

/// Per-layer counts with every status possible (and the dense and empty edges).
const CASES: [[usize; 3]; 6] = [
    [4, 2, 2],
    [5, 3, 2],
    [6, 3, 3],
    [4, 4, 2],
    [8, 4, 4],
    [0, 2, 2],
];

#[test]
fn the_enumerator_agrees_with_a_brute_force_count() {
    let tasks = TaskIo::two_d_problems(2);
    for kept in CASES {
        let exact = baseline::exact(&SHAPE, &kept, &tasks).unwrap();
        assert_eq!(exact, brute_force(&kept), "kept {kept:?}");
    }
    // Each status occurs somewhere, so the comparisons below test all three.
    let exact = baseline::exact(&SHAPE, &[4, 2, 2], &tasks).unwrap();
    assert!(
        exact.split > 0 && exact.connected > 0 && exact.degraded > 0,
        "{exact:?}"
    );
}

#[test]
fn the_estimate_is_within_five_standard_errors_of_the_exact_probability() {
    let tasks = TaskIo::two_d_problems(2);
    let draws = 20_000;
    for kept in CASES {
        let exact = baseline::exact(&SHAPE, &kept, &tasks).unwrap();
        let est = baseline::estimate(&SHAPE, &kept, &tasks, draws, baseline::seed("t", 3)).unwrap();
        assert_eq!(est.draws, draws);
        assert_eq!(est.split + est.connected + est.degraded, draws);
        for (name, e, x) in [
            ("split", est.split, exact.split),
            ("connected", est.connected, exact.connected),
            ("degraded", est.degraded, exact.degraded),
        ] {
            let p = x as f64 / exact.draws as f64;
            let got = e as f64 / draws as f64;
            let se = (p * (1.0 - p) / draws as f64).sqrt();
            // A probability of exactly 0 or 1 must be estimated exactly.
            assert!(
                (got - p).abs() <= 5.0 * se,
                "kept {kept:?}: {name} {got} against exact {p} (se {se})"
            );
        }
    }
}

#[test]
fn estimates_are_seeded_and_nested() {
    let tasks = TaskIo::two_d_problems(2);
    let kept = [4, 2, 2];
    let a = baseline::estimate(&SHAPE, &kept, &tasks, 500, baseline::seed("abc", 1)).unwrap();
    let b = baseline::estimate(&SHAPE, &kept, &tasks, 500, baseline::seed("abc", 1)).unwrap();
    let c = baseline::estimate(&SHAPE, &kept, &tasks, 500, baseline::seed("abc", 2)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c, "another level draws other masks");
    // The first draws of a longer estimate are those of a shorter one.
    let mut last = Counts::default();
    for draws in [1, 2, 3, 10, 100] {
        let e = baseline::estimate(&SHAPE, &kept, &tasks, draws, baseline::seed("abc", 1)).unwrap();
        assert!(e.split >= last.split && e.connected >= last.connected);
        assert!(e.degraded >= last.degraded);
        last = e;
    }
}

#[test]
fn a_dense_network_has_one_possible_mask() {
    let tasks = TaskIo::two_d_problems(2);
    let shape = [4, 30, 30, 2];
    let kept = [120, 900, 60];
    let dense = analyze(&LayerMask::dense_network(&shape), &tasks).status;
    let e = baseline::estimate(&shape, &kept, &tasks, 1000, baseline::seed("x", 0)).unwrap();
    assert_eq!(dense, Status::Connected);
    assert_eq!((e.draws, e.connected), (1000, 1000));
    assert_eq!(baseline::exact(&shape, &kept, &tasks).unwrap().draws, 1);
}
