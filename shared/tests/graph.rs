//! The ticket graph on small hand-built masks, every count checked, plus a brute-force
//! cross-check on random masks.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::graph::{analyze, validate_masks, GraphReport, LayerMask, MaskError, Status, TaskIo};

/// A mask from `(o, i)` pairs (any order).
fn mask(fan_in: usize, fan_out: usize, edges: &[(usize, usize)]) -> LayerMask {
    let mut kept: Vec<u32> = edges
        .iter()
        .map(|&(o, i)| {
            assert!(o < fan_out && i < fan_in);
            (o * fan_in + i) as u32
        })
        .collect();
    kept.sort_unstable();
    kept.dedup();
    LayerMask {
        fan_in,
        fan_out,
        kept,
    }
}

#[allow(clippy::too_many_arguments)]
fn expect(
    r: &GraphReport,
    remaining: usize,
    weights: [usize; 3],
    neurons: [usize; 3],
    components: usize,
    coverage: &[&[f64]],
    status: Status,
) {
    assert_eq!(r.remaining_weights, remaining, "remaining: {r:?}");
    assert_eq!(
        [r.active_weights, r.zombie_weights, r.inactive_weights],
        weights,
        "weights active/zombie/inactive: {r:?}"
    );
    assert_eq!(
        [r.active_neurons, r.zombie_neurons, r.inactive_neurons],
        neurons,
        "neurons active/zombie/inactive: {r:?}"
    );
    assert_eq!(r.components, components, "components: {r:?}");
    let cov: Vec<Vec<f64>> = coverage.iter().map(|c| c.to_vec()).collect();
    assert_eq!(r.coverage, cov, "coverage: {r:?}");
    assert_eq!(r.status, status, "status: {r:?}");
}

/// Shape [4, 2, 2, 2]: task 0 (inputs 0, 1) through hidden unit 0 of both layers to output 0,
/// task 1 (inputs 2, 3) through hidden unit 1 to output 1.
fn split_net() -> Vec<LayerMask> {
    vec![
        mask(4, 2, &[(0, 0), (0, 1), (1, 2), (1, 3)]),
        mask(2, 2, &[(0, 0), (1, 1)]),
        mask(2, 2, &[(0, 0), (1, 1)]),
    ]
}

#[test]
fn dense_net_is_connected() {
    let shape = [4, 3, 3, 2];
    let masks = LayerMask::dense_network(&shape);
    validate_masks(&shape, &masks).unwrap();
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    expect(
        &r,
        27,
        [27, 0, 0],
        [12, 0, 0],
        1,
        &[&[1.0, 1.0]],
        Status::Connected,
    );
}

#[test]
fn dense_thesis_base_is_connected() {
    let r = analyze(
        &LayerMask::dense_network(&[4, 8, 8, 2]),
        &TaskIo::two_d_problems(2),
    );
    expect(
        &r,
        112,
        [112, 0, 0],
        [22, 0, 0],
        1,
        &[&[1.0, 1.0]],
        Status::Connected,
    );
}

#[test]
fn two_disjoint_paths_split() {
    let masks = split_net();
    validate_masks(&[4, 2, 2, 2], &masks).unwrap();
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    expect(
        &r,
        8,
        [8, 0, 0],
        [10, 0, 0],
        2,
        &[&[1.0, 0.0], &[0.0, 1.0]],
        Status::Split,
    );
}

#[test]
fn components_are_ordered_by_smallest_node_not_by_task() {
    // The same split net with the tasks listed in the other order.
    let tasks = vec![
        TaskIo {
            inputs: vec![2, 3],
            outputs: vec![1],
        },
        TaskIo {
            inputs: vec![0, 1],
            outputs: vec![0],
        },
    ];
    let r = analyze(&split_net(), &tasks);
    expect(
        &r,
        8,
        [8, 0, 0],
        [10, 0, 0],
        2,
        &[&[0.0, 1.0], &[1.0, 0.0]],
        Status::Split,
    );
}

#[test]
fn one_cross_weight_connects() {
    let mut masks = split_net();
    // Hidden unit 0 of layer 1 also feeds hidden unit 1 of layer 2.
    masks[1] = mask(2, 2, &[(0, 0), (1, 1), (1, 0)]);
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    expect(
        &r,
        9,
        [9, 0, 0],
        [10, 0, 0],
        1,
        &[&[1.0, 1.0]],
        Status::Connected,
    );
}

#[test]
fn cut_off_input_degrades() {
    let mut masks = split_net();
    // Input 1 loses its only weight.
    masks[0] = mask(4, 2, &[(0, 0), (1, 2), (1, 3)]);
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    expect(
        &r,
        7,
        [7, 0, 0],
        [9, 0, 1],
        2,
        &[&[0.5, 0.0], &[0.0, 1.0]],
        Status::Degraded,
    );
}

#[test]
fn cut_off_output_degrades() {
    let mut masks = split_net();
    // Output 1 loses its only weight: the whole second path becomes a dead end.
    masks[2] = mask(2, 2, &[(0, 0)]);
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    // Active: the 4 weights of task 0; inactive: inputs 2,3 -> h1, h1 -> h1'.
    // Neurons: inputs 0,1, h0, h0', out 0 active; out 1 zombie (useful, not fed);
    // inputs 2, 3, h1, h1' inactive.
    expect(
        &r,
        7,
        [4, 0, 3],
        [5, 1, 4],
        1,
        &[&[1.0, 0.0]],
        Status::Degraded,
    );
}

#[test]
fn more_components_than_tasks_degrades() {
    // One task owning inputs 0, 1 and output 0; input 2 and output 1 belong to no task but
    // form a second component of their own.
    let masks = vec![
        mask(3, 2, &[(0, 0), (0, 1), (1, 2)]),
        mask(2, 2, &[(0, 0), (1, 1)]),
    ];
    let tasks = vec![TaskIo {
        inputs: vec![0, 1],
        outputs: vec![0],
    }];
    let r = analyze(&masks, &tasks);
    expect(
        &r,
        5,
        [5, 0, 0],
        [7, 0, 0],
        2,
        &[&[1.0], &[0.0]],
        Status::Degraded,
    );
}

#[test]
fn one_task_split_in_two_components_degrades() {
    // Shape [2, 2, 2], one task owning everything, two disjoint paths.
    let masks = vec![mask(2, 2, &[(0, 0), (1, 1)]), mask(2, 2, &[(0, 0), (1, 1)])];
    let tasks = vec![TaskIo {
        inputs: vec![0, 1],
        outputs: vec![0, 1],
    }];
    let r = analyze(&masks, &tasks);
    expect(
        &r,
        4,
        [4, 0, 0],
        [6, 0, 0],
        2,
        &[&[0.25], &[0.25]],
        Status::Degraded,
    );
}

#[test]
fn zombie_and_inactive_weights() {
    // Shape [2, 4, 3, 1], one task (inputs 0, 1; output 0).
    // Active path: i0 -> a0 -> b0 -> o and i1 -> a1 -> b0.
    // Dead ends (inactive): i1 -> a2 (a2 has no outgoing weight), a1 -> b1 (b1 neither).
    // Zombie chain: a3 (no incoming weight) -> b2 -> o; and a3 -> b1 is inactive.
    let masks = vec![
        mask(2, 4, &[(0, 0), (1, 1), (2, 1)]),
        mask(4, 3, &[(0, 0), (0, 1), (1, 1), (1, 3), (2, 3)]),
        mask(3, 1, &[(0, 0), (0, 2)]),
    ];
    validate_masks(&[2, 4, 3, 1], &masks).unwrap();
    let tasks = vec![TaskIo {
        inputs: vec![0, 1],
        outputs: vec![0],
    }];
    let r = analyze(&masks, &tasks);
    // Neurons: active i0 i1 a0 a1 b0 o; zombie a3 b2; inactive a2 b1.
    // One task, one component: split by definition.
    expect(&r, 10, [5, 2, 3], [6, 2, 2], 1, &[&[1.0]], Status::Split);
}

#[test]
fn fully_pruned_layer_degrades() {
    let masks = vec![
        LayerMask::dense(4, 3),
        LayerMask {
            fan_in: 3,
            fan_out: 3,
            kept: vec![],
        },
        LayerMask::dense(3, 2),
    ];
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    // First matrix: fed but useless (inactive); last: useful but unfed (zombie).
    // Neurons: 4 inputs + 3 hidden inactive; 3 hidden + 2 outputs zombie.
    expect(&r, 18, [0, 6, 12], [0, 5, 7], 0, &[], Status::Degraded);
}

fn three_task_split() -> Vec<LayerMask> {
    // Shape [6, 3, 3]: inputs 2k, 2k+1 -> hidden k -> output k.
    vec![
        mask(6, 3, &[(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)]),
        mask(3, 3, &[(0, 0), (1, 1), (2, 2)]),
    ]
}

#[test]
fn three_tasks_split() {
    let r = analyze(&three_task_split(), &TaskIo::two_d_problems(3));
    expect(
        &r,
        9,
        [9, 0, 0],
        [12, 0, 0],
        3,
        &[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]],
        Status::Split,
    );
}

#[test]
fn three_tasks_two_merged_is_connected() {
    let mut masks = three_task_split();
    // Hidden 0 also feeds output 1: tasks 0 and 1 share a component.
    masks[1] = mask(3, 3, &[(0, 0), (1, 1), (2, 2), (1, 0)]);
    let r = analyze(&masks, &TaskIo::two_d_problems(3));
    expect(
        &r,
        10,
        [10, 0, 0],
        [12, 0, 0],
        2,
        &[&[1.0, 1.0, 0.0], &[0.0, 0.0, 1.0]],
        Status::Connected,
    );
}

#[test]
fn three_tasks_dense_is_connected() {
    let r = analyze(
        &LayerMask::dense_network(&[6, 5, 3]),
        &TaskIo::two_d_problems(3),
    );
    expect(
        &r,
        45,
        [45, 0, 0],
        [14, 0, 0],
        1,
        &[&[1.0, 1.0, 1.0]],
        Status::Connected,
    );
}

#[test]
fn deep_net_four_hidden_layers() {
    // Shape [4, 3, 3, 3, 3, 2]: task k runs through hidden unit k of every layer.
    // Extra: h1_0 -> h2_2 (a dead end: inactive), h3_2 -> h4_0 (h3_2 unfed: zombie).
    let shape = [4, 3, 3, 3, 3, 2];
    let masks = vec![
        mask(4, 3, &[(0, 0), (0, 1), (1, 2), (1, 3)]),
        mask(3, 3, &[(0, 0), (1, 1), (2, 0)]),
        mask(3, 3, &[(0, 0), (1, 1)]),
        mask(3, 3, &[(0, 0), (1, 1), (0, 2)]),
        mask(3, 2, &[(0, 0), (1, 1)]),
    ];
    validate_masks(&shape, &masks).unwrap();
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    // Neurons: 4 inputs + 2 per hidden layer + 2 outputs active; h3_2 zombie;
    // h1_2, h2_2, h4_2 inactive.
    expect(
        &r,
        14,
        [12, 1, 1],
        [14, 1, 3],
        2,
        &[&[1.0, 0.0], &[0.0, 1.0]],
        Status::Split,
    );
}

#[test]
fn one_hidden_and_no_hidden_layer() {
    let r = analyze(
        &LayerMask::dense_network(&[4, 20, 2]),
        &TaskIo::two_d_problems(2),
    );
    expect(
        &r,
        120,
        [120, 0, 0],
        [26, 0, 0],
        1,
        &[&[1.0, 1.0]],
        Status::Connected,
    );
    // No hidden layer: inputs wired straight to their own output.
    let masks = vec![mask(4, 2, &[(0, 0), (0, 1), (1, 2), (1, 3)])];
    let r = analyze(&masks, &TaskIo::two_d_problems(2));
    expect(
        &r,
        4,
        [4, 0, 0],
        [6, 0, 0],
        2,
        &[&[1.0, 0.0], &[0.0, 1.0]],
        Status::Split,
    );
}

// ---------- validate_masks ----------

#[test]
fn validate_masks_errors() {
    let shape = [4, 3, 2];
    let good = LayerMask::dense_network(&shape);
    assert_eq!(validate_masks(&shape, &good), Ok(()));

    assert_eq!(
        validate_masks(&[4], &[]),
        Err(MaskError::ShapeTooShort { shape: vec![4] })
    );
    assert_eq!(
        validate_masks(&shape, &good[..1]),
        Err(MaskError::LayerCount {
            expected: 2,
            got: 1
        })
    );

    let mut bad = good.clone();
    bad[1] = LayerMask::dense(3, 3);
    let e = validate_masks(&shape, &bad).unwrap_err();
    assert_eq!(
        e,
        MaskError::Dimensions {
            layer: 1,
            fan_in: 3,
            fan_out: 3,
            expected_fan_in: 3,
            expected_fan_out: 2
        }
    );
    assert!(e.to_string().starts_with("layer 1:"), "{e}");

    let mut bad = good.clone();
    bad[0].kept = vec![0, 5, 3, 2];
    let e = validate_masks(&shape, &bad).unwrap_err();
    assert_eq!(
        e,
        MaskError::NotIncreasing {
            layer: 0,
            position: 2,
            index: 3,
            previous: 5
        }
    );
    assert_eq!(
        e.to_string(),
        "layer 0: kept index 3 at position 2 is not greater than the previous index 5"
    );

    let mut bad = good.clone();
    bad[1].kept = vec![1, 6, 7];
    let e = validate_masks(&shape, &bad).unwrap_err();
    assert_eq!(
        e,
        MaskError::OutOfRange {
            layer: 1,
            position: 1,
            index: 6,
            weights: 6
        }
    );
    assert_eq!(
        e.to_string(),
        "layer 1: kept index 6 at position 1 is out of range (the layer has 6 weights)"
    );

    let huge = [100_000, 100_000];
    let masks = vec![LayerMask {
        fan_in: 100_000,
        fan_out: 100_000,
        kept: vec![],
    }];
    assert!(matches!(
        validate_masks(&huge, &masks),
        Err(MaskError::TooLarge { layer: 0, .. })
    ));

    // Every message is lowercase at the start.
    for e in [
        MaskError::ShapeTooShort { shape: vec![] },
        MaskError::LayerCount {
            expected: 1,
            got: 2,
        },
    ] {
        let s = e.to_string();
        assert!(s.chars().next().unwrap().is_lowercase(), "{s}");
    }
}

// ---------- brute force cross-check ----------

/// The definitions, spelt out naively: adjacency lists, BFS, label propagation.
fn reference(shape: &[usize], masks: &[LayerMask], tasks: &[TaskIo]) -> GraphReport {
    let mut off = vec![0];
    for &w in shape {
        off.push(off.last().unwrap() + w);
    }
    let n = *off.last().unwrap();
    let mut edges = Vec::new();
    for (l, m) in masks.iter().enumerate() {
        for &k in &m.kept {
            let (o, i) = (k as usize / m.fan_in, k as usize % m.fan_in);
            edges.push((off[l] + i, off[l + 1] + o));
        }
    }
    let reach = |starts: Vec<usize>, forward: bool| {
        let mut seen = vec![false; n];
        let mut stack = starts;
        while let Some(x) = stack.pop() {
            if std::mem::replace(&mut seen[x], true) {
                continue;
            }
            for &(u, v) in &edges {
                let (a, b) = if forward { (u, v) } else { (v, u) };
                if a == x && !seen[b] {
                    stack.push(b);
                }
            }
        }
        seen
    };
    let last = shape.len() - 1;
    let fed = reach((0..shape[0]).collect(), true);
    let useful = reach((off[last]..n).collect(), false);
    let active: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(u, v)| fed[u] && useful[v])
        .collect();
    let zombie_w = edges.iter().filter(|&&(u, v)| !fed[u] && useful[v]).count();
    // Label propagation to the minimum id.
    let mut lab: Vec<usize> = (0..n).collect();
    loop {
        let mut changed = false;
        for &(u, v) in &active {
            let m = lab[u].min(lab[v]);
            if lab[u] != m || lab[v] != m {
                lab[u] = m;
                lab[v] = m;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let in_comp = |x: usize| active.iter().any(|&(u, v)| u == x || v == x);
    let mut roots: Vec<usize> = (0..n).filter(|&x| in_comp(x)).map(|x| lab[x]).collect();
    roots.sort();
    roots.dedup();
    let comp = |x: usize| {
        if in_comp(x) {
            roots.iter().position(|&r| r == lab[x])
        } else {
            None
        }
    };
    let mut coverage = vec![vec![0.0; tasks.len()]; roots.len()];
    for (t, task) in tasks.iter().enumerate() {
        for (c, row) in coverage.iter_mut().enumerate() {
            let i = task.inputs.iter().filter(|&&i| comp(i) == Some(c)).count();
            let o = task
                .outputs
                .iter()
                .filter(|&&o| comp(off[last] + o) == Some(c))
                .count();
            row[t] = (i as f64 / task.inputs.len() as f64) * (o as f64 / task.outputs.len() as f64);
        }
    }
    let covered = tasks
        .iter()
        .enumerate()
        .all(|(t, _)| coverage.iter().any(|row| row[t] == 1.0));
    let status = if !covered || roots.len() > tasks.len() {
        Status::Degraded
    } else if roots.len() == tasks.len() {
        Status::Split
    } else {
        Status::Connected
    };
    let an = (0..n).filter(|&x| fed[x] && useful[x]).count();
    let zn = (0..n).filter(|&x| !fed[x] && useful[x]).count();
    GraphReport {
        remaining_weights: edges.len(),
        active_weights: active.len(),
        zombie_weights: zombie_w,
        inactive_weights: edges.len() - active.len() - zombie_w,
        active_neurons: an,
        zombie_neurons: zn,
        inactive_neurons: n - an - zn,
        components: roots.len(),
        coverage,
        status,
    }
}

#[test]
fn matches_brute_force_on_random_masks() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut seen = [0usize; 3];
    for case in 0..600 {
        let problems = rng.gen_range(1..=3);
        let depth = rng.gen_range(0..=4);
        let mut shape = vec![2 * problems];
        for _ in 0..depth {
            shape.push(rng.gen_range(1..=6));
        }
        shape.push(problems);
        let density: f64 = rng.gen_range(0.05..0.6);
        let masks: Vec<LayerMask> = shape
            .windows(2)
            .map(|w| LayerMask {
                fan_in: w[0],
                fan_out: w[1],
                kept: (0..(w[0] * w[1]) as u32)
                    .filter(|_| rng.gen_bool(density))
                    .collect(),
            })
            .collect();
        validate_masks(&shape, &masks).unwrap();
        let tasks = TaskIo::two_d_problems(problems);
        let got = analyze(&masks, &tasks);
        let want = reference(&shape, &masks, &tasks);
        assert_eq!(got, want, "case {case}, shape {shape:?}, masks {masks:?}");
        seen[match got.status {
            Status::Split => 0,
            Status::Connected => 1,
            Status::Degraded => 2,
        }] += 1;
    }
    // The random cases exercise every status.
    assert!(seen.iter().all(|&s| s > 10), "{seen:?}");
}

#[test]
fn wide_dense_and_sparse_nets() {
    let shape = [4, 410, 410, 2];
    let r = analyze(
        &LayerMask::dense_network(&shape),
        &TaskIo::two_d_problems(2),
    );
    let w = 4 * 410 + 410 * 410 + 410 * 2;
    expect(
        &r,
        w,
        [w, 0, 0],
        [826, 0, 0],
        1,
        &[&[1.0, 1.0]],
        Status::Connected,
    );

    // The split net embedded in a wide network: the other hidden units are unconnected.
    let wide = vec![
        mask(4, 410, &[(0, 0), (0, 1), (409, 2), (409, 3)]),
        mask(410, 410, &[(5, 0), (7, 409)]),
        mask(410, 2, &[(0, 5), (1, 7)]),
    ];
    let r = analyze(&wide, &TaskIo::two_d_problems(2));
    expect(
        &r,
        8,
        [8, 0, 0],
        [10, 0, 816],
        2,
        &[&[1.0, 0.0], &[0.0, 1.0]],
        Status::Split,
    );
}
