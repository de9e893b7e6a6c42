//! Figure 2: active weights at the first split against the available weights (the dense
//! network), one point per seed: the poster's "splits at a similar number of active weights".
//! When every network has the same size, the x axis is what the sweep varies instead.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    describe, house_mesh, log_axis, slug, DrawResult, Figure, LegendEntry, Mark, Options,
    PlotError, Ticks, GREY, INK, LINE, PALETTE, TITLE,
};
use crate::data::TaskResult;
use crate::stats::{self, Axis};

/// One network that split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitPoint {
    pub x: f64,
    pub seed: u64,
    pub active: f64,
    pub level: usize,
}

/// The figure of one facet.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveFigure {
    pub title: String,
    pub x_axis: Axis,
    pub points: Vec<SplitPoint>,
    /// Median over seeds per x.
    pub medians: Vec<(f64, f64)>,
    /// The pruning target, when all networks share it.
    pub target: Option<f64>,
    /// Networks with at least one stored level.
    pub networks: usize,
    /// Finished networks that never split: (x, seed).
    pub no_split: Vec<(f64, u64)>,
    pub seeds: Vec<u64>,
}

impl ActiveFigure {
    pub fn new(title: String, tasks: &[TaskResult], x_axis: Axis) -> ActiveFigure {
        let mut points = Vec::new();
        let mut no_split = Vec::new();
        let mut networks = 0;
        for t in tasks.iter().filter(|t| !t.levels.is_empty()) {
            networks += 1;
            let Some(x) = x_axis.value(&t.spec).as_f64() else {
                continue;
            };
            if let Some(level) = stats::first_level(&t.levels, shared::graph::Status::Split) {
                points.push(SplitPoint {
                    x,
                    seed: t.spec.seed,
                    active: level.active_weights as f64,
                    level: level.level,
                });
            } else if t.done {
                no_split.push((x, t.spec.seed));
            }
        }
        let mut xs: Vec<f64> = points.iter().map(|p| p.x).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let medians = xs
            .iter()
            .filter_map(|&x| {
                let v: Vec<f64> = points
                    .iter()
                    .filter(|p| p.x == x)
                    .map(|p| p.active)
                    .collect();
                Some((x, stats::median(v)?))
            })
            .collect();
        let mut targets: Vec<usize> = tasks.iter().map(|t| t.spec.prune.target).collect();
        targets.sort_unstable();
        targets.dedup();
        let mut seeds: Vec<u64> = tasks.iter().map(|t| t.spec.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        ActiveFigure {
            title,
            x_axis,
            points,
            medians,
            target: (targets.len() == 1).then(|| targets[0] as f64),
            networks,
            no_split,
            seeds,
        }
    }

    fn colour_of(&self, seed: u64) -> RGBColor {
        if self.seeds.len() > PALETTE.len() {
            return PALETTE[0];
        }
        let i = self.seeds.iter().position(|&s| s == seed).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }
}

impl super::Draw for ActiveFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let mut entries: Vec<LegendEntry> = if self.seeds.len() > PALETTE.len() {
            vec![LegendEntry::new(
                "one network (seed)",
                PALETTE[0],
                &[Mark::Circle],
            )]
        } else {
            self.seeds
                .iter()
                .map(|&s| LegendEntry::new(format!("seed {s}"), self.colour_of(s), &[Mark::Circle]))
                .collect()
        };
        entries.push(LegendEntry::new("median", INK, &[Mark::Line]));
        if !self.no_split.is_empty() {
            entries.push(LegendEntry::new("never split", GREY, &[Mark::Cross]));
        }
        if let Some(t) = self.target {
            entries.push(LegendEntry::new(
                format!("pruning target ({t} weights)"),
                GREY,
                &[Mark::Dashed],
            ));
        }
        entries.push(LegendEntry::new(
            format!("{} of {} networks split", self.points.len(), self.networks),
            GREY,
            &[],
        ));
        let plot = super::legend(&area, &entries)?;

        let log = log_axis(self.x_axis);
        let integer = !matches!(self.x_axis, Axis::Rate);
        let xs: Vec<f64> = self
            .points
            .iter()
            .map(|p| p.x)
            .chain(self.no_split.iter().map(|p| p.0))
            .collect();
        let scale = super::discrete_scale(&xs, log, integer);
        let y_max = self
            .points
            .iter()
            .map(|p| p.active)
            .chain(self.target)
            .fold(10.0f64, f64::max)
            * 1.15;
        let y_step = super::nice_step(y_max / 6.0, true);
        let y_ticks: Vec<f64> = (0..)
            .map(|k| k as f64 * y_step)
            .take_while(|&v| v <= y_max)
            .collect();

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
                    lo: 0.0,
                    hi: y_max,
                    ticks: y_ticks,
                },
            )
            .map_err(PlotError::draw)?;
        let x_label = |v: &f64| scale.label(*v);
        let y_label = |v: &f64| format!("{}", v.round() as i64);
        house_mesh(
            chart
                .configure_mesh()
                .x_desc(self.x_axis.label())
                .y_desc("active weights at the first split")
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label),
        )
        .draw()
        .map_err(PlotError::draw)?;

        if let Some(t) = self.target {
            chart
                .draw_series(DashedLineSeries::new(
                    [(scale.lo, t), (scale.hi, t)],
                    18,
                    12,
                    GREY.stroke_width(4),
                ))
                .map_err(PlotError::draw)?;
        }
        chart
            .draw_series(LineSeries::new(
                self.medians.iter().map(|&(x, m)| (scale.pos(x), m)),
                INK.stroke_width(LINE),
            ))
            .map_err(PlotError::draw)?;
        // Seeds side by side at one x.
        let k = self.seeds.len().max(1) as f64;
        let spread = scale.nudge(0.012);
        let cross = GREY.stroke_width(4);
        chart
            .draw_series(self.no_split.iter().map(|&(x, seed)| {
                let i = self.seeds.iter().position(|&s| s == seed).unwrap_or(0) as f64;
                let dx = if k > 1.0 && k <= 12.0 {
                    (i - (k - 1.0) / 2.0) * spread
                } else {
                    0.0
                };
                EmptyElement::at((scale.pos(x) + dx, y_max * 0.03))
                    + PathElement::new(vec![(-10, -10), (10, 10)], cross)
                    + PathElement::new(vec![(-10, 10), (10, -10)], cross)
            }))
            .map_err(PlotError::draw)?;
        chart
            .draw_series(self.points.iter().map(|p| {
                let i = self.seeds.iter().position(|&s| s == p.seed).unwrap_or(0) as f64;
                let dx = if k > 1.0 && k <= 12.0 {
                    (i - (k - 1.0) / 2.0) * spread
                } else {
                    0.0
                };
                EmptyElement::at((scale.pos(p.x) + dx, p.active))
                    + Circle::new((0, 0), 12, self.colour_of(p.seed).mix(0.9).filled())
                    + Circle::new((0, 0), 12, WHITE.stroke_width(2))
            }))
            .map_err(PlotError::draw)?;
        Ok(())
    }
}

/// The x axis of the active-weights figure: the available weights when networks differ in
/// size, else what the sweep varies.
pub fn x_axis(tasks: &[TaskResult]) -> Axis {
    if stats::varying_axes(tasks, &[Axis::Weights]).is_empty() {
        super::x_axis(tasks)
    } else {
        Axis::Weights
    }
}

/// One figure per facet.
pub fn figures(tasks: &[TaskResult], options: &Options) -> Result<Vec<Figure>, PlotError> {
    let x = x_axis(tasks);
    let facets = super::facet_axes(tasks, x);
    let mut out = Vec::new();
    for (key, group) in super::split_by(tasks, &facets) {
        let facet = describe(&key);
        let mut title = String::new();
        if !options.sweep.is_empty() {
            title.push_str(&format!("{}: ", options.sweep));
        }
        title.push_str("active weights when the network first splits");
        if !facet.is_empty() {
            title.push_str(&format!(" ({facet})"));
        }
        let figure = ActiveFigure::new(title, &group, x);
        let name = if key.is_empty() {
            "active".to_string()
        } else {
            format!("active_{}", slug(&key))
        };
        let caption = format!(
            "Active weights at the first split against {}, one point per seed{}",
            x.label(),
            if facet.is_empty() {
                String::new()
            } else {
                format!(" ({facet})")
            }
        );
        out.push(super::render(&figure, &name, &caption, options.png)?);
    }
    Ok(out)
}
