//! Figure 1: the fraction of networks that split (and that degraded) against what the sweep
//! varies (extension level, width, weights, pruning levels, ...), with 95% Wilson intervals
//! over seeds, and where the per-layer counts are known the random-mask baseline (a dashed
//! grey line, `crate::baseline`: the mean probability that a random mask with a seed's last
//! per-layer counts splits, to read against "split (last level)").

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    describe, font, house_mesh, log_axis, DrawResult, Figure, LegendEntry, Mark, Options,
    PlotError, Ticks, BLUE, GREY, LINE, SKY, TICK, TITLE, VERMILLION,
};
use crate::data::TaskResult;
use crate::stats::{self, Axis, Proportion};

/// One x position: the finished tasks there and their outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The value on the x axis.
    pub x: f64,
    /// The widest hidden layer of its networks (shown above the point by extension level).
    pub width: Option<i64>,
    pub split: Proportion,
    pub ever_split: Proportion,
    pub degraded: Proportion,
    /// The random-mask baseline's split fraction, when known.
    pub random_split: Option<Proportion>,
}

/// The fraction figure of one facet.
#[derive(Debug, Clone, PartialEq)]
pub struct FractionFigure {
    pub title: String,
    pub x_axis: Axis,
    pub points: Vec<Point>,
}

impl FractionFigure {
    /// Builds the figure's points from `tasks` (finished tasks count).
    pub fn new(title: String, tasks: &[TaskResult], x_axis: Axis) -> FractionFigure {
        let points = stats::group_by(tasks, &[x_axis])
            .into_iter()
            .filter(|g| g.tasks_done > 0)
            .filter_map(|g| {
                let x = g.value(x_axis)?.as_f64()?;
                let width = tasks
                    .iter()
                    .find(|t| x_axis.value(&t.spec).as_f64() == Some(x))
                    .and_then(|t| Axis::Width.value(&t.spec).as_f64())
                    .map(|w| w as i64);
                Some(Point {
                    x,
                    width,
                    split: g.split,
                    ever_split: g.ever_split,
                    degraded: g.degraded,
                    random_split: random_split(tasks, x_axis, x),
                })
            })
            .collect();
        FractionFigure {
            title,
            x_axis,
            points,
        }
    }

    fn with_baseline(&self) -> bool {
        self.points.iter().any(|p| p.random_split.is_some())
    }

    fn annotate_widths(&self) -> bool {
        self.x_axis == Axis::ExtensionLevel && self.points.iter().all(|p| p.width.is_some())
    }
}

/// The baseline's split fraction over the tasks at `x`, at the default number of draws.
fn random_split(tasks: &[TaskResult], x_axis: Axis, x: f64) -> Option<Proportion> {
    let at: Vec<&TaskResult> = tasks
        .iter()
        .filter(|t| x_axis.value(&t.spec).as_f64() == Some(x))
        .collect();
    crate::baseline::of_group(&at, shared::baseline::DEFAULT_DRAWS).map(|b| b.split)
}

impl super::Draw for FractionFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let seeds: Vec<usize> = self.points.iter().map(|p| p.split.n).collect();
        let n_note = match (seeds.iter().min(), seeds.iter().max()) {
            (Some(a), Some(b)) if a == b => format!("n = {a} per point"),
            (Some(a), Some(b)) => format!("n = {a} to {b} per point"),
            _ => String::new(),
        };
        let mut entries = vec![
            LegendEntry::new("split (last level)", BLUE, &[Mark::Line, Mark::Circle]),
            LegendEntry::new("split at some level", SKY, &[Mark::Dashed]),
            LegendEntry::new(
                "degraded (last level)",
                VERMILLION,
                &[Mark::Line, Mark::Triangle],
            ),
        ];
        if self.with_baseline() {
            entries.push(LegendEntry::new(
                "random mask, same counts",
                GREY,
                &[Mark::Dashed],
            ));
        }
        entries.push(LegendEntry::new(
            format!("bars: 95% Wilson CI, {n_note}"),
            GREY,
            &[],
        ));
        let plot = super::legend(&area, &entries)?;

        let log = log_axis(self.x_axis);
        let integer = matches!(
            self.x_axis,
            Axis::ExtensionLevel | Axis::Levels | Axis::Width | Axis::Weights | Axis::Target
        );
        let xs: Vec<f64> = self.points.iter().map(|p| p.x).collect();
        let scale = super::discrete_scale(&xs, log, integer);
        let top = if self.annotate_widths() { 1.16 } else { 1.04 };
        let y_ticks: Vec<f64> = (0..=5).map(|k| k as f64 * 0.2).collect();
        let x_desc = if self.annotate_widths() {
            format!("{} (hidden width above each point)", self.x_axis.label())
        } else {
            self.x_axis.label().to_string()
        };

        let mut chart = ChartBuilder::on(&plot)
            .margin_left(20)
            .margin_right(50)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(110)
            .y_label_area_size(150)
            .build_cartesian_2d(
                scale.coord(),
                Ticks {
                    lo: -0.03,
                    hi: top,
                    ticks: y_ticks,
                },
            )
            .map_err(PlotError::draw)?;
        let x_label = |v: &f64| scale.label(*v);
        let y_label = |v: &f64| format!("{v:.1}");
        house_mesh(
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("fraction of networks")
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label),
        )
        .draw()
        .map_err(PlotError::draw)?;

        let pos = |p: &Point| scale.pos(p.x);
        let dodge = scale.nudge(0.006);
        // Lines first, then bars and markers on top.
        if self.with_baseline() {
            chart
                .draw_series(DashedLineSeries::new(
                    self.points
                        .iter()
                        .filter_map(|p| Some((pos(p), p.random_split?.frac))),
                    10,
                    10,
                    GREY.stroke_width(LINE),
                ))
                .map_err(PlotError::draw)?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                self.points.iter().map(|p| (pos(p), p.ever_split.frac)),
                18,
                12,
                SKY.stroke_width(LINE),
            ))
            .map_err(PlotError::draw)?;
        for (colour, get, dx) in [
            (
                VERMILLION,
                (|p: &Point| p.degraded) as fn(&Point) -> Proportion,
                dodge,
            ),
            (BLUE, |p: &Point| p.split, -dodge),
        ] {
            chart
                .draw_series(LineSeries::new(
                    self.points.iter().map(|p| (pos(p) + dx, get(p).frac)),
                    colour.stroke_width(LINE),
                ))
                .map_err(PlotError::draw)?;
            for p in &self.points {
                let q = get(p);
                let x = pos(p) + dx;
                let bar = colour.stroke_width(3);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, q.ci.0), (x, q.ci.1)],
                        bar,
                    )))
                    .map_err(PlotError::draw)?;
                for y in [q.ci.0, q.ci.1] {
                    chart
                        .draw_series(std::iter::once(
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(-12, 0), (12, 0)], bar),
                        ))
                        .map_err(PlotError::draw)?;
                }
            }
        }
        chart
            .draw_series(self.points.iter().map(|p| {
                EmptyElement::at((pos(p) + dodge, p.degraded.frac))
                    + TriangleMarker::new((0, 0), 15, VERMILLION.filled())
            }))
            .map_err(PlotError::draw)?;
        chart
            .draw_series(self.points.iter().map(|p| {
                EmptyElement::at((pos(p) - dodge, p.split.frac))
                    + Circle::new((0, 0), 12, BLUE.filled())
            }))
            .map_err(PlotError::draw)?;
        if self.annotate_widths() {
            let style = font(TICK * 0.8)
                .color(&GREY)
                .pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ));
            chart
                .draw_series(self.points.iter().filter_map(|p| {
                    Some(Text::new(
                        p.width?.to_string(),
                        (pos(p), 1.1),
                        style.clone(),
                    ))
                }))
                .map_err(PlotError::draw)?;
        }
        Ok(())
    }
}

/// One fraction figure per facet of the sweep (see [`super::facet_axes`]).
pub fn figures(tasks: &[TaskResult], options: &Options) -> Result<Vec<Figure>, PlotError> {
    let x = super::x_axis(tasks);
    let facets = super::facet_axes(tasks, x);
    let mut out = Vec::new();
    for (key, group) in super::split_by(tasks, &facets) {
        let figure = FractionFigure::new(
            super::facet_title(&options.sweep, "networks that split", &describe(&key)),
            &group,
            x,
        );
        if figure.points.is_empty() {
            continue;
        }
        let name = super::facet_name("fraction", &key);
        let caption = format!(
            "Fraction of networks split and degraded by {}{}",
            x.name().replace('_', " "),
            if key.is_empty() {
                String::new()
            } else {
                format!(" ({})", describe(&key))
            }
        );
        out.push(super::render(&figure, &name, &caption, options.png)?);
    }
    Ok(out)
}
