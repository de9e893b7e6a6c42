//! The four outcomes of the runs (separated, separated then degraded, interconnected,
//! degraded without a split) as one stacked bar per value of what the sweep varies (extension
//! level, width, pruning levels, ...): the fractions of the finished seeds there, so every
//! bar reaches 1, with the number of finished seeds written above each bar. The bars stand
//! side by side in the order of the x values, evenly spaced.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use shared::outcome::Outcome;

use super::{
    describe, font, house_mesh, log_axis, outcome_colour, si, DrawResult, Figure, LegendEntry,
    Mark, Options, PlotError, Ticks, GREY, TICK, TITLE,
};
use crate::data::TaskResult;
use crate::stats::{self, Axis};

/// Half the width of a bar, in bar positions (one apart).
const HALF: f64 = 0.32;

/// One bar: the finished seeds at one x value and how many had each outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The value on the x axis.
    pub x: f64,
    /// Finished seeds (the denominator of the fractions).
    pub n: usize,
    /// Seeds per outcome, in [`Outcome::ALL`]'s order (they sum to `n`).
    pub counts: [usize; 4],
}

impl Bar {
    /// The fraction of the bar's seeds with each outcome, in [`Outcome::ALL`]'s order.
    pub fn fractions(&self) -> [f64; 4] {
        self.counts.map(|k| {
            if self.n == 0 {
                0.0
            } else {
                k as f64 / self.n as f64
            }
        })
    }
}

/// The outcome figure of one facet.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeFigure {
    pub title: String,
    pub x_axis: Axis,
    /// In ascending order of x; x values with no finished seed are left out.
    pub bars: Vec<Bar>,
}

impl OutcomeFigure {
    /// Builds the bars from `tasks` (one facet's): the outcome counts of
    /// [`stats::group_by`] over `x_axis`.
    pub fn new(title: String, tasks: &[TaskResult], x_axis: Axis) -> OutcomeFigure {
        let bars = stats::group_by(tasks, &[x_axis])
            .into_iter()
            .filter(|g| g.tasks_done > 0)
            .filter_map(|g| {
                let x = g.value(x_axis)?.as_f64()?;
                Some(Bar {
                    x,
                    n: g.tasks_done,
                    counts: g.outcomes().map(|(_, p)| p.k),
                })
            })
            .collect();
        OutcomeFigure {
            title,
            x_axis,
            bars,
        }
    }

    /// The tick label of a bar.
    fn x_label(&self, x: f64) -> String {
        if log_axis(self.x_axis) {
            si(x)
        } else {
            stats::format_float(x)
        }
    }

    /// The label above a bar: `n = 5`, or just `5` when bars are too many for the long form.
    fn n_label(&self, n: usize) -> String {
        if self.bars.len() <= 8 {
            format!("n = {n}")
        } else {
            n.to_string()
        }
    }
}

impl super::Draw for OutcomeFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let mut entries: Vec<LegendEntry> = Outcome::ALL
            .iter()
            .map(|&o| LegendEntry::new(o.label(), outcome_colour(o), &[Mark::Square]))
            .collect();
        entries.push(LegendEntry::new(
            "above each bar: finished seeds (n)",
            GREY,
            &[],
        ));
        let plot = super::legend(&area, &entries)?;

        let count = self.bars.len().max(1);
        let x_coord = Ticks {
            lo: -0.6,
            hi: count as f64 - 0.4,
            ticks: (0..self.bars.len()).map(|i| i as f64).collect(),
        };
        let y_ticks: Vec<f64> = (0..=5).map(|k| k as f64 * 0.2).collect();
        let mut chart = ChartBuilder::on(&plot)
            .margin_left(20)
            .margin_right(50)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(110)
            .y_label_area_size(150)
            .build_cartesian_2d(
                x_coord,
                Ticks {
                    lo: 0.0,
                    hi: 1.12,
                    ticks: y_ticks,
                },
            )
            .map_err(PlotError::draw)?;
        let x_label = |v: &f64| {
            let i = v.round();
            match self.bars.get(i as usize) {
                Some(b) if i >= 0.0 && (v - i).abs() < 1e-9 => self.x_label(b.x),
                _ => String::new(),
            }
        };
        let y_label = |v: &f64| format!("{v:.1}");
        house_mesh(
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_desc(self.x_axis.label())
                .y_desc("fraction of finished seeds")
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label),
        )
        .draw()
        .map_err(PlotError::draw)?;

        for (i, bar) in self.bars.iter().enumerate() {
            let x = i as f64;
            let mut bottom = 0.0;
            for (&outcome, frac) in Outcome::ALL.iter().zip(bar.fractions()) {
                if frac <= 0.0 {
                    continue;
                }
                let top = bottom + frac;
                let corners = [(x - HALF, bottom), (x + HALF, top)];
                chart
                    .draw_series([
                        Rectangle::new(corners, outcome_colour(outcome).filled()),
                        Rectangle::new(corners, WHITE.stroke_width(2)),
                    ])
                    .map_err(PlotError::draw)?;
                bottom = top;
            }
        }
        let style = font(TICK).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(
                self.bars.iter().enumerate().map(|(i, bar)| {
                    Text::new(self.n_label(bar.n), (i as f64, 1.015), style.clone())
                }),
            )
            .map_err(PlotError::draw)?;
        Ok(())
    }
}

/// One outcome figure per facet of the sweep (see [`super::facet_axes`]), over the x axis of
/// [`super::x_axis`].
pub fn figures(tasks: &[TaskResult], options: &Options) -> Result<Vec<Figure>, PlotError> {
    let x = super::x_axis(tasks);
    let facets = super::facet_axes(tasks, x);
    let mut out = Vec::new();
    for (key, group) in super::split_by(tasks, &facets) {
        let facet = describe(&key);
        let title = super::facet_title(&options.sweep, "outcomes of the runs", &facet);
        let figure = OutcomeFigure::new(title, &group, x);
        if figure.bars.is_empty() {
            continue;
        }
        let name = super::facet_name("outcomes", &key);
        let caption = format!(
            "Outcomes (separated, separated then degraded, interconnected, degraded without a \
             split) of the finished seeds by {}{}",
            x.name().replace('_', " "),
            super::facet_suffix(&facet)
        );
        out.push(super::render(&figure, &name, &caption, options.png)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{synthetic_sweep, task};
    use super::*;
    use shared::graph::Status::{Connected as C, Degraded as D, Split as S};

    /// Extension 0: separated, separated then degraded, interconnected, and one unfinished;
    /// extension 2: degraded without a split twice and one separated.
    fn tasks() -> Vec<TaskResult> {
        vec![
            task(0, 0, 0, true, &[C, S, S, S]),
            task(1, 0, 1, true, &[C, S, D, D]),
            task(2, 0, 2, true, &[C, C, C, C]),
            task(3, 0, 3, false, &[C, S]),
            task(4, 2, 0, true, &[C, D]),
            task(5, 2, 1, true, &[C, C, D, D]),
            task(6, 2, 2, true, &[C, C, S, S]),
        ]
    }

    #[test]
    fn bars_count_the_outcomes_of_finished_seeds() {
        let figure = OutcomeFigure::new(String::new(), &tasks(), Axis::ExtensionLevel);
        assert_eq!(
            figure.bars,
            vec![
                Bar {
                    x: 0.0,
                    n: 3,
                    counts: [1, 1, 1, 0]
                },
                Bar {
                    x: 2.0,
                    n: 3,
                    counts: [1, 0, 0, 2]
                },
            ]
        );
        for bar in &figure.bars {
            assert_eq!(bar.counts.iter().sum::<usize>(), bar.n);
            assert!((bar.fractions().iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // The same counts as the statistics of each x value.
        let groups = stats::group_by(&tasks(), &[Axis::ExtensionLevel]);
        for (bar, g) in figure.bars.iter().zip(&groups) {
            assert_eq!(bar.counts, g.outcomes().map(|(_, p)| p.k));
        }
    }

    #[test]
    fn stacked_counts_sum_to_n_over_a_synthetic_sweep() {
        let tasks = synthetic_sweep(
            "name: o\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: [0, 1, 3]\nseeds: 3\n",
        );
        let figure = OutcomeFigure::new(String::new(), &tasks, super::super::x_axis(&tasks));
        assert_eq!(figure.bars.len(), 3);
        for bar in &figure.bars {
            assert_eq!(bar.n, 3);
            assert_eq!(bar.counts.iter().sum::<usize>(), bar.n);
        }
    }

    #[test]
    fn svg_shows_n_above_each_bar_and_the_outcome_legend() {
        let options = Options {
            sweep: "o".into(),
            shape: None,
            png: true,
        };
        let mut tasks = tasks();
        tasks.push(task(7, 2, 3, true, &[C, C, C, C]));
        let figures = figures(&tasks, &options).unwrap();
        assert_eq!(figures.len(), 1);
        let f = &figures[0];
        assert_eq!(f.name, "outcomes");
        assert!(f.svg.contains("n = 3") && f.svg.contains("n = 4"));
        for o in Outcome::ALL {
            assert!(f.svg.contains(o.label()), "legend lacks {}", o.label());
        }
        assert!(f.svg.contains("model extension level"));
        assert!(f.png.as_ref().is_some_and(|p| &p[1..4] == b"PNG"));
        // Nothing finished: no figure.
        let running: Vec<TaskResult> = vec![task(0, 0, 0, false, &[C])];
        assert!(figures_of(&running).is_empty());
    }

    fn figures_of(tasks: &[TaskResult]) -> Vec<Figure> {
        figures(tasks, &Options::default()).unwrap()
    }
}
