//! Figure 3: remaining, active, zombie and inactive weights against the pruning level for one
//! grid point (one shape), median over seeds with the range shaded.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    font, house_mesh, DrawResult, Figure, LegendEntry, Mark, Options, PlotError, Scale, Ticks,
    BLUE, GREEN, INK, LINE, ORANGE, TICK, TITLE, VERMILLION,
};
use crate::data::TaskResult;
use crate::stats::{self, Axis, LevelStats, Spread};

/// Zero drawn at this height on the logarithmic axis.
const FLOOR: f64 = 0.6;

/// The figure.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelsFigure {
    pub title: String,
    pub levels: Vec<LevelStats>,
    pub first_split: Option<Spread>,
    pub first_degraded: Option<Spread>,
    pub seeds: usize,
}

/// The tasks of the grid point the levels figure shows: the one with `shape` (default: the
/// largest network) and, among those, the most pruning levels.
pub fn chosen_point<'a>(
    tasks: &'a [TaskResult],
    shape: Option<&[usize]>,
) -> Option<Vec<&'a TaskResult>> {
    let with_levels: Vec<&TaskResult> = tasks.iter().filter(|t| !t.levels.is_empty()).collect();
    let best = with_levels
        .iter()
        .filter(|t| shape.is_none_or(|s| t.spec.shape == s))
        .max_by(|a, b| {
            (
                a.spec.weights(),
                a.spec.prune.levels,
                std::cmp::Reverse(a.idx),
            )
                .cmp(&(
                    b.spec.weights(),
                    b.spec.prune.levels,
                    std::cmp::Reverse(b.idx),
                ))
        })?;
    let key = stats::key_of(&best.spec, &Axis::GRID);
    Some(
        with_levels
            .into_iter()
            .filter(|t| stats::key_of(&t.spec, &Axis::GRID) == key)
            .collect(),
    )
}

impl LevelsFigure {
    pub fn new(title: String, point: &[&TaskResult]) -> LevelsFigure {
        let group = stats::group_stats(Vec::new(), point);
        let summaries: Vec<stats::TaskSummary> =
            point.iter().map(|t| stats::summarize(t)).collect();
        let of = |f: &dyn Fn(&stats::TaskSummary) -> Option<usize>| {
            stats::spread(
                &summaries
                    .iter()
                    .filter_map(|s| f(s).map(|v| v as f64))
                    .collect::<Vec<_>>(),
            )
        };
        let _ = group;
        LevelsFigure {
            title,
            levels: stats::level_stats(point),
            first_split: of(&|s| s.first_split_level),
            first_degraded: of(&|s| s.first_degraded_level),
            seeds: point.len(),
        }
    }
}

fn floor(v: f64) -> f64 {
    if v < 1.0 {
        FLOOR
    } else {
        v
    }
}

impl super::Draw for LevelsFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        type Get = fn(&LevelStats) -> Spread;
        let series: [(&str, RGBColor, Get, Mark); 4] = [
            ("remaining", INK, |l| l.remaining, Mark::Dashed),
            ("active", BLUE, |l| l.active, Mark::Line),
            ("zombie", ORANGE, |l| l.zombie, Mark::Line),
            ("inactive", GREEN, |l| l.inactive, Mark::Line),
        ];
        let mut entries: Vec<LegendEntry> = series
            .iter()
            .map(|(name, colour, _, mark)| {
                let marks: &[Mark] = if self.seeds > 1 {
                    &[Mark::Band, *mark]
                } else {
                    std::slice::from_ref(mark)
                };
                LegendEntry::new(*name, *colour, marks)
            })
            .collect();
        entries.push(LegendEntry::new(
            if self.seeds > 1 {
                format!("median and range of {} seeds", self.seeds)
            } else {
                "1 seed".to_string()
            },
            INK,
            &[],
        ));
        let plot = super::legend(&area, &entries)?;

        let levels: Vec<f64> = self.levels.iter().map(|l| l.level as f64).collect();
        let x = super::discrete_scale(&levels, false, true);
        let max = self
            .levels
            .iter()
            .map(|l| l.remaining.max)
            .fold(1.0f64, f64::max);
        let y = Scale::fit(&[1.0, max], true, true);
        let y_lo = FLOOR.log10() - 0.05;
        let y_hi = y.hi.max(max.log10() + 0.25);

        let mut chart = ChartBuilder::on(&plot)
            .margin_left(20)
            .margin_right(50)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(110)
            .y_label_area_size(150)
            .build_cartesian_2d(
                x.coord(),
                Ticks {
                    lo: y_lo,
                    hi: y_hi,
                    ticks: y.ticks.iter().copied().filter(|t| *t >= 0.0).collect(),
                },
            )
            .map_err(PlotError::draw)?;
        let x_label = |v: &f64| x.label(*v);
        let y_label = |v: &f64| y.label(*v);
        house_mesh(
            chart
                .configure_mesh()
                .x_desc("pruning level (0 = dense network)")
                .y_desc("weights (log scale; 0 on the axis)")
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label),
        )
        .draw()
        .map_err(PlotError::draw)?;

        let at = |l: &LevelStats, v: f64| (l.level as f64, floor(v).log10());
        if self.seeds > 1 {
            for (_, colour, get, _) in &series {
                let mut band: Vec<(f64, f64)> =
                    self.levels.iter().map(|l| at(l, get(l).max)).collect();
                band.extend(self.levels.iter().rev().map(|l| at(l, get(l).min)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        colour.mix(0.18).filled(),
                    )))
                    .map_err(PlotError::draw)?;
            }
        }
        // Each marker's label has its own row below the top, so that two markers at nearby
        // levels do not write over each other.
        let marker = |name: &str, l: f64, row: u32, colour: RGBColor| -> DrawResult {
            chart
                .plotting_area()
                .draw(&PathElement::new(
                    vec![(l, y_lo), (l, y_hi)],
                    colour.mix(0.8).stroke_width(3),
                ))
                .map_err(PlotError::draw)?;
            chart
                .plotting_area()
                .draw(&Text::new(
                    name.to_string(),
                    (l, y_hi - f64::from(row) * 0.06 * (y_hi - y_lo)),
                    font(TICK)
                        .color(&colour)
                        .pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Right,
                            plotters::style::text_anchor::VPos::Top,
                        )),
                ))
                .map_err(PlotError::draw)?;
            Ok(())
        };
        let of = |n: usize| {
            if n == self.seeds {
                if n > 1 {
                    " (median)".to_string()
                } else {
                    String::new()
                }
            } else {
                format!(" ({n} of {} seeds)", self.seeds)
            }
        };
        if let Some(s) = self.first_split {
            marker(&format!("first split{} ", of(s.n)), s.median, 0, BLUE)?;
        }
        if let Some(d) = self.first_degraded {
            marker(
                &format!("first degraded{} ", of(d.n)),
                d.median,
                1,
                VERMILLION,
            )?;
        }
        for (_, colour, get, mark) in &series {
            let points: Vec<(f64, f64)> =
                self.levels.iter().map(|l| at(l, get(l).median)).collect();
            if *mark == Mark::Dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        points,
                        18,
                        12,
                        colour.stroke_width(LINE),
                    ))
                    .map_err(PlotError::draw)?;
            } else {
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(LINE)))
                    .map_err(PlotError::draw)?;
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 7, colour.filled())),
                    )
                    .map_err(PlotError::draw)?;
            }
        }
        Ok(())
    }
}

/// The levels figure of the chosen grid point.
pub fn figure(tasks: &[TaskResult], options: &Options) -> Result<Figure, PlotError> {
    let point = chosen_point(tasks, options.shape.as_deref()).ok_or_else(|| {
        PlotError::NoData(match &options.shape {
            Some(s) => format!("no stored levels for shape {}", stats::shape_name(s)),
            None => "no stored levels".to_string(),
        })
    })?;
    let spec = &point[0].spec;
    let what = format!(
        "{}, {} levels at rate {}",
        stats::shape_name(&spec.shape),
        spec.prune.levels,
        stats::format_float(spec.prune.rate)
    );
    let mut title = String::new();
    if !options.sweep.is_empty() {
        title.push_str(&format!("{}: ", options.sweep));
    }
    title.push_str(&format!("weights by pruning level, {what}"));
    let figure = LevelsFigure::new(title, &point);
    super::render(
        &figure,
        "levels",
        &format!("Remaining, active, zombie and inactive weights by pruning level for {what}"),
        options.png,
    )
}
