//! The poster's inset: held-out loss (`test_loss`) against the active weights of each pruning
//! level, one line per seed (task) through its levels, coloured by the outcome of its
//! trajectory (the colours of the outcome figure). The active-weights axis is logarithmic and
//! reversed, so pruning proceeds to the right. All tasks of a facet share one panel.

use plotters::coord::Shift;
use plotters::prelude::*;
use shared::outcome::Outcome;

use super::{
    describe, house_mesh, outcome_colour, DrawResult, Figure, LegendEntry, Mark, Options,
    PlotError, Scale, Ticks, GREY, LIGHT_GREY, TITLE,
};
use crate::data::TaskResult;
use crate::stats;

/// Zero active weights are drawn at this value on the logarithmic axis.
const FLOOR: f64 = 0.6;

/// One task's levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The task's id.
    pub task: String,
    pub seed: u64,
    /// Finished: its outcome is final.
    pub done: bool,
    /// The outcome of its trajectory so far ([`stats::TaskSummary::trajectory`]).
    pub outcome: Option<Outcome>,
    /// `(active weights, held-out loss)` per stored level, in level order.
    pub points: Vec<(f64, f64)>,
}

/// The loss figure of one facet.
#[derive(Debug, Clone, PartialEq)]
pub struct LossFigure {
    pub title: String,
    /// One per task with at least one stored level, in the tasks' order.
    pub lines: Vec<Line>,
}

impl LossFigure {
    pub fn new(title: String, tasks: &[TaskResult]) -> LossFigure {
        let lines = tasks
            .iter()
            .filter(|t| !t.levels.is_empty())
            .map(|t| {
                let summary = stats::summarize(t);
                let mut levels: Vec<_> = t.levels.iter().collect();
                levels.sort_by_key(|l| l.level);
                Line {
                    task: summary.id,
                    seed: summary.seed,
                    done: summary.done,
                    outcome: summary.trajectory,
                    points: levels
                        .iter()
                        .map(|l| (l.active_weights as f64, l.test_loss))
                        .collect(),
                }
            })
            .collect();
        LossFigure { title, lines }
    }

    /// The colour of a line: its outcome's for a finished task, light grey while it runs.
    pub fn colour_of(line: &Line) -> RGBColor {
        match line.outcome {
            Some(o) if line.done => outcome_colour(o),
            _ => LIGHT_GREY,
        }
    }
}

impl super::Draw for LossFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let mut entries: Vec<LegendEntry> = Outcome::ALL
            .iter()
            .filter(|&&o| self.lines.iter().any(|l| l.done && l.outcome == Some(o)))
            .map(|&o| LegendEntry::new(o.label(), outcome_colour(o), &[Mark::Line]))
            .collect();
        if self.lines.iter().any(|l| !l.done) {
            entries.push(LegendEntry::new("not finished", LIGHT_GREY, &[Mark::Line]));
        }
        entries.push(LegendEntry::new(
            format!("one line per seed, {} networks", self.lines.len()),
            GREY,
            &[],
        ));
        let plot = super::legend(&area, &entries)?;

        let points = || self.lines.iter().flat_map(|l| l.points.iter().copied());
        let zero = points().any(|(a, _)| a < 1.0);
        let actives: Vec<f64> = points()
            .map(|(a, _)| a)
            .filter(|&a| a >= 1.0)
            .chain(zero.then_some(FLOOR))
            .collect();
        let losses: Vec<f64> = points().map(|(_, l)| l).filter(|l| l.is_finite()).collect();
        let x = Scale::fit(&actives, true, true);
        let y = Scale::fit(&losses, false, false);
        // Reversed: drawn at minus the log, so fewer active weights lie further right. Ticks
        // at whole weights, and one for zero at the floor.
        let floor = -FLOOR.log10();
        let x_coord = Ticks {
            lo: -x.hi,
            hi: -x.lo,
            ticks: x
                .ticks
                .iter()
                .rev()
                .filter(|&&t| t >= 0.0)
                .map(|t| -t)
                .chain(zero.then_some(floor))
                .collect(),
        };
        let pos = |a: f64| -x.pos(if a < 1.0 { FLOOR } else { a });

        let mut chart = ChartBuilder::on(&plot)
            .margin_left(20)
            .margin_right(50)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(110)
            .y_label_area_size(150)
            .build_cartesian_2d(x_coord, y.coord())
            .map_err(PlotError::draw)?;
        let x_label = |v: &f64| {
            if zero && (v - floor).abs() < 1e-9 {
                "0".to_string()
            } else {
                x.label(-v)
            }
        };
        let y_label = |v: &f64| y.label(*v);
        let x_desc = format!(
            "active weights (log scale, decreasing: pruning proceeds to the right{})",
            if zero { "; 0 at the edge" } else { "" }
        );
        house_mesh(
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("held-out loss")
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label),
        )
        .draw()
        .map_err(PlotError::draw)?;

        // Unfinished tasks underneath, then the finished by outcome.
        let mut order: Vec<&Line> = self.lines.iter().collect();
        order.sort_by_key(|l| (l.done, l.outcome));
        for line in order {
            let colour = LossFigure::colour_of(line);
            let drawn: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter(|(_, l)| l.is_finite())
                .map(|&(a, l)| (pos(a), l))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    drawn.clone(),
                    colour.mix(0.8).stroke_width(3),
                ))
                .map_err(PlotError::draw)?;
            chart
                .draw_series(
                    drawn
                        .into_iter()
                        .map(|p| Circle::new(p, 6, colour.filled())),
                )
                .map_err(PlotError::draw)?;
        }
        Ok(())
    }
}

/// One loss figure per facet of the sweep (see [`super::facet_axes`]), every task of the
/// facet in one panel.
pub fn figures(tasks: &[TaskResult], options: &Options) -> Result<Vec<Figure>, PlotError> {
    let x = super::x_axis(tasks);
    let facets = super::facet_axes(tasks, x);
    let mut out = Vec::new();
    for (key, group) in super::split_by(tasks, &facets) {
        let facet = describe(&key);
        let title = super::facet_title(
            &options.sweep,
            "held-out loss against active weights",
            &facet,
        );
        let figure = LossFigure::new(title, &group);
        if figure.lines.is_empty() {
            continue;
        }
        let name = super::facet_name("loss", &key);
        let caption = format!(
            "Held-out loss against active weights through the pruning levels, one line per \
             seed coloured by its outcome{}",
            super::facet_suffix(&facet)
        );
        out.push(super::render(&figure, &name, &caption, options.png)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{spec, task, task_with};
    use super::*;
    use shared::graph::Status::{Connected as C, Degraded as D, Split as S};

    fn tasks() -> Vec<TaskResult> {
        vec![
            task_with(
                0,
                spec(0, 0),
                true,
                &[(C, 400, 390, 0.12), (S, 200, 60, 0.2), (S, 100, 50, 0.35)],
            ),
            task_with(
                1,
                spec(0, 1),
                true,
                &[(C, 400, 380, 0.1), (S, 200, 70, 0.25), (D, 100, 0, 0.9)],
            ),
            task(2, 0, 2, true, &[C, C, C, C]),
            task(3, 0, 3, true, &[C, D]),
            // Not finished, and one with no level yet (no line).
            task(4, 0, 4, false, &[C, S]),
            task(5, 0, 5, false, &[]),
        ]
    }

    #[test]
    fn one_line_per_task_with_levels_through_its_levels() {
        let tasks = tasks();
        let figure = LossFigure::new(String::new(), &tasks);
        assert_eq!(
            figure.lines.len(),
            tasks.iter().filter(|t| !t.levels.is_empty()).count()
        );
        for (line, t) in figure.lines.iter().zip(&tasks) {
            assert_eq!(line.task, t.spec.id());
            let expected: Vec<(f64, f64)> = t
                .levels
                .iter()
                .map(|l| (l.active_weights as f64, l.test_loss))
                .collect();
            assert_eq!(line.points, expected);
        }
        assert_eq!(
            figure.lines[1].points,
            vec![(380.0, 0.1), (70.0, 0.25), (0.0, 0.9)]
        );
        // Stored out of order: drawn in level order.
        let mut shuffled = tasks[0].clone();
        shuffled.levels.reverse();
        let line = &LossFigure::new(String::new(), &[shuffled]).lines[0];
        assert_eq!(line.points, figure.lines[0].points);
    }

    #[test]
    fn colours_follow_the_outcome() {
        let figure = LossFigure::new(String::new(), &tasks());
        let outcomes: Vec<Option<Outcome>> = figure.lines.iter().map(|l| l.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                Some(Outcome::Separated),
                Some(Outcome::SeparatedDegraded),
                Some(Outcome::Interconnected),
                Some(Outcome::DegradedUnsplit),
                Some(Outcome::Separated),
            ]
        );
        let colours: Vec<RGBColor> = figure.lines.iter().map(LossFigure::colour_of).collect();
        assert_eq!(
            colours,
            vec![
                outcome_colour(Outcome::Separated),
                outcome_colour(Outcome::SeparatedDegraded),
                outcome_colour(Outcome::Interconnected),
                outcome_colour(Outcome::DegradedUnsplit),
                LIGHT_GREY,
            ]
        );
        // Four distinct outcome colours.
        let mut distinct: Vec<(u8, u8, u8)> = Outcome::ALL
            .iter()
            .map(|&o| {
                let c = outcome_colour(o);
                (c.0, c.1, c.2)
            })
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn svg_has_the_axes_and_the_outcome_legend() {
        let options = Options {
            sweep: "l".into(),
            shape: None,
            png: true,
        };
        let figures = figures(&tasks(), &options).unwrap();
        assert_eq!(figures.len(), 1);
        let f = &figures[0];
        assert_eq!(f.name, "loss");
        for label in [
            "held-out loss",
            "active weights (log scale",
            "0 at the edge",
            "not finished",
            "one line per seed, 5 networks",
        ] {
            assert!(f.svg.contains(label), "the figure lacks {label:?}");
        }
        for o in Outcome::ALL {
            assert!(f.svg.contains(o.label()), "legend lacks {}", o.label());
        }
        assert!(f.png.is_some());
        // Nothing stored: no figure.
        assert!(super::figures(&[task(0, 0, 0, false, &[])], &options)
            .unwrap()
            .is_empty());
    }
}
