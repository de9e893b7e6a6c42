//! Poster experiment 3's figures read along the number of pruning levels: one shape pruned to
//! one target in 0..L levels puts the level count on x in every figure (not a shape axis with
//! one point), each grid point at its own level count, and the active-weights figure names its
//! points by their level count rather than by the one dense weight count they share.

use analysis::data::TaskResult;
use analysis::plot::{self, active::ActiveFigure, fraction::FractionFigure};
use analysis::plot::{outcomes::OutcomeFigure, Options};
use analysis::stats::Axis;
use shared::graph::Status;
use shared::sweep::Sweep;
use shared::synthetic::{synthetic_masks, synthetic_metrics};

/// Shape (4, 30, 30, 2) pruned to 60 weights in 0..5 levels, 2 seeds; every pruned run splits
/// at its last level with `10 + levels` active weights.
fn tasks() -> Vec<TaskResult> {
    let yaml = "name: e3\nmodel:\n  shape: [4, 30, 30, 2]\npruning:\n  levels: 0..5\n  target: 60\nseeds: 2\n";
    let sweep = Sweep::from_yaml(yaml, "e3.yaml").unwrap();
    sweep
        .expand()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(idx, spec)| {
            let last = spec.prune.levels;
            let mut levels: Vec<_> = (0..=last)
                .map(|l| {
                    let mut m = synthetic_metrics(&spec, l, &synthetic_masks(&spec, l));
                    m.status = Status::Connected;
                    m
                })
                .collect();
            if last > 0 {
                levels[last].status = Status::Split;
                levels[last].active_weights = 10 + last;
            }
            TaskResult {
                idx,
                spec,
                done: true,
                levels,
            }
        })
        .collect()
}

#[test]
fn the_x_axis_is_the_number_of_levels_and_every_point_sits_at_its_own() {
    let tasks = tasks();
    assert_eq!(plot::x_axis(&tasks), Axis::Levels);
    assert!(
        plot::facet_axes(&tasks, Axis::Levels).is_empty(),
        "one figure each"
    );
    let expected: Vec<f64> = (0..=5).map(f64::from).collect();

    let fraction = FractionFigure::new(String::new(), &tasks, Axis::Levels);
    let xs: Vec<f64> = fraction.points.iter().map(|p| p.x).collect();
    assert_eq!(xs, expected);
    assert!(fraction.points.iter().all(|p| p.split.n == 2));
    assert_eq!(
        fraction.points[0].split.k, 0,
        "the dense network never splits"
    );
    assert!(fraction.points[1..].iter().all(|p| p.split.k == 2));

    let outcomes = OutcomeFigure::new(String::new(), &tasks, Axis::Levels);
    let xs: Vec<f64> = outcomes.bars.iter().map(|b| b.x).collect();
    assert_eq!(xs, expected);

    let x = plot::active::x_axis(&tasks);
    assert_eq!(x, Axis::Levels, "the dense weight count does not vary");
    let active = ActiveFigure::new(String::new(), &tasks, x);
    let labels: Vec<&str> = active.summaries.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        ["1 level", "2 levels", "3 levels", "4 levels", "5 levels"]
    );
    for p in &active.points {
        let levels = active.summaries[p.point].label.split(' ').next().unwrap();
        assert_eq!(p.level.to_string(), levels, "split at its last level");
        assert_eq!(p.active, 10.0 + p.level as f64);
    }
    assert_eq!(active.points.len(), 10);
}

#[test]
fn the_drawn_figures_say_pruning_levels() {
    let options = Options {
        sweep: "e3".into(),
        shape: None,
        png: false,
    };
    let figures = plot::sweep_figures(&tasks(), &options).unwrap();
    let by_name = |name: &str| {
        &figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .svg
    };
    for name in ["fraction", "outcomes"] {
        assert!(by_name(name).contains("pruning levels"), "{name}");
    }
    let active = by_name("active");
    assert!(active.contains("label: pruning levels"), "{active}");
    assert!(active.contains("3 levels\n"), "{active}");
    assert!(
        !active.contains("dense "),
        "no dense-weight labels: they are all the same"
    );
}
