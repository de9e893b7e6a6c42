//! Active weights at the first split against the weights remaining at that split level (what
//! pruning had left), one point per finished seed that split, both on log scales: the poster's
//! "splits at a similar number of active weights". Per grid point (every setting but the
//! seed) the thesis's summary: a marker at the mean with the min-max range over its seeds,
//! the median as a second marker, and beside it what sets the point apart: the dense
//! network's weight count when the networks differ in size (experiments 1 and 2), else the
//! value of what the sweep varies (experiment 3: "6 levels").

use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::labels::{self, Label, Rect};
use super::{
    describe, font, house_mesh, si_short, DrawResult, Figure, LegendEntry, Mark, Options,
    PlotError, Scale, Ticks, BLUE, GREY, INK, LIGHT_GREY, PALETTE, TICK, TITLE,
};
use crate::data::TaskResult;
use crate::stats::{self, Axis, Spread};

/// One finished network that split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitPoint {
    pub seed: u64,
    /// Its grid point: an index into [`ActiveFigure::summaries`].
    pub point: usize,
    /// The first split level.
    pub level: usize,
    /// Weights remaining at the split level (x).
    pub remaining: f64,
    /// Active weights at the split level (y).
    pub active: f64,
}

/// One grid point whose finished seeds split at least once.
#[derive(Debug, Clone, PartialEq)]
pub struct PointSummary {
    /// [`stats::point_of`] its tasks.
    pub point: String,
    /// Weights of its dense network.
    pub dense: f64,
    /// What the figure writes beside it (see [`point_label`]).
    pub label: String,
    /// Finished seeds.
    pub seeds: usize,
    /// Active weights at the first split over the seeds that split.
    pub active: Spread,
    /// Weights remaining at the first split level over the same seeds.
    pub remaining: Spread,
}

/// The figure of one facet.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveFigure {
    pub title: String,
    /// The axis the facet's grid points differ by (see [`x_axis`]).
    pub x_axis: Axis,
    pub points: Vec<SplitPoint>,
    /// In expansion order of the grid points.
    pub summaries: Vec<PointSummary>,
    /// The pruning target, when all networks share it.
    pub target: Option<f64>,
    /// Finished networks (done, with at least one level).
    pub networks: usize,
}

impl ActiveFigure {
    /// Builds the points from [`stats::summarize`] and the summaries from
    /// [`stats::grid_points`] over `tasks` (one facet's); only finished tasks count.
    pub fn new(title: String, tasks: &[TaskResult], x_axis: Axis) -> ActiveFigure {
        let summaries: Vec<PointSummary> = stats::grid_points(tasks)
            .into_iter()
            .filter_map(|p| {
                let dense = p.stats.available_weights?.median;
                Some(PointSummary {
                    label: point_label(x_axis, &p.spec, dense),
                    dense,
                    seeds: p.stats.tasks_done,
                    active: p.stats.active_at_split?,
                    remaining: p.stats.remaining_at_split?,
                    point: p.point,
                })
            })
            .collect();
        let finished: Vec<&TaskResult> = tasks
            .iter()
            .filter(|t| t.done && !t.levels.is_empty())
            .collect();
        let mut points = Vec::new();
        for t in &finished {
            let s = stats::summarize(t);
            let (Some(level), Some(active), Some(remaining)) = (
                s.first_split_level,
                s.active_at_first_split,
                s.remaining_at_first_split,
            ) else {
                continue;
            };
            let point = stats::point_of(&t.spec);
            let Some(point) = summaries.iter().position(|p| p.point == point) else {
                continue;
            };
            points.push(SplitPoint {
                seed: s.seed,
                point,
                level,
                remaining: remaining as f64,
                active: active as f64,
            });
        }
        let mut targets: Vec<usize> = tasks.iter().map(|t| t.spec.prune.target).collect();
        targets.sort_unstable();
        targets.dedup();
        ActiveFigure {
            title,
            x_axis,
            points,
            summaries,
            target: (targets.len() == 1).then(|| targets[0] as f64),
            networks: finished.len(),
        }
    }

    /// The colour of a grid point's seeds and label (one colour for all when they are many).
    fn colour_of(&self, point: usize) -> RGBColor {
        if self.summaries.len() > PALETTE.len() {
            BLUE
        } else {
            PALETTE[point % PALETTE.len()]
        }
    }
}

/// The chart of the figure: remaining weights (x) against active weights (y), both on
/// [`Scale`]s in drawing space.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticks, Ticks>>;

/// The radius of a seed's circle, and the half-size of the other markers and bar ends.
const MARKER: i32 = 12;
/// The half-size of a median's cross and a mean's square.
const CENTRE: i32 = 11;

impl super::Draw for ActiveFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let plot = super::legend(&area, &self.legend_entries())?;
        let (x, y) = self.scales();
        let mut chart = chart(&plot, &x, &y)?;
        draw_guides(&mut chart, &x, &y, self.target)?;
        self.draw_seeds(&mut chart, &x, &y)?;
        for s in &self.summaries {
            draw_ranges(&mut chart, &x, &y, s)?;
            draw_centres(&mut chart, &x, &y, s)?;
        }
        let pixels = Pixels::new(&plot, &chart, &x, &y);
        self.draw_labels(&plot, &pixels)
    }
}

impl ActiveFigure {
    /// The legend: the seeds, the summaries' marks, the guide lines and the counts.
    fn legend_entries(&self) -> Vec<LegendEntry> {
        let seeds = if self.summaries.len() > 1 && self.summaries.len() <= PALETTE.len() {
            "one network (seed), coloured by grid point"
        } else {
            "one network (seed)"
        };
        let mut entries = vec![
            LegendEntry::new(seeds, self.colour_of(0), &[Mark::Circle]),
            LegendEntry::new("mean and range per grid point", INK, &[Mark::Square]),
            LegendEntry::new("median", INK, &[Mark::Cross]),
            LegendEntry::new("all remaining weights active", LIGHT_GREY, &[Mark::Dashed]),
        ];
        if let Some(t) = self.target {
            let target = format!("pruning target ({t} weights)");
            entries.push(LegendEntry::new(target, GREY, &[Mark::Dashed]));
        }
        let counts = format!(
            "{} of {} finished networks split; label: {}",
            self.points.len(),
            self.networks,
            label_kind(self.x_axis)
        );
        entries.push(LegendEntry::new(counts, GREY, &[]));
        entries
    }

    /// The log scales of the remaining (x) and active (y) weights over every seed, every
    /// summary's range and the target; x with room on the right for the labels.
    fn scales(&self) -> (Scale, Scale) {
        let ranges = |of: fn(&PointSummary) -> &Spread| {
            self.summaries
                .iter()
                .flat_map(move |s| [of(s).min, of(s).max])
        };
        let xs: Vec<f64> = self
            .points
            .iter()
            .map(|p| p.remaining)
            .chain(ranges(|s| &s.remaining))
            .collect();
        let ys: Vec<f64> = self
            .points
            .iter()
            .map(|p| p.active)
            .chain(ranges(|s| &s.active))
            .chain(self.target)
            .collect();
        let mut x = Scale::fit(&xs, true, true);
        // Room on the right for the dense-weight labels.
        x.hi += x.nudge(0.12);
        (x, Scale::fit(&ys, true, true))
    }

    /// One circle per seed that split, in its grid point's colour.
    fn draw_seeds<DB: DrawingBackend>(
        &self,
        chart: &mut Chart<DB>,
        x: &Scale,
        y: &Scale,
    ) -> DrawResult {
        chart
            .draw_series(self.points.iter().map(|p| {
                EmptyElement::at((x.pos(p.remaining), y.pos(p.active)))
                    + Circle::new((0, 0), MARKER, self.colour_of(p.point).mix(0.6).filled())
                    + Circle::new((0, 0), MARKER, WHITE.stroke_width(2))
            }))
            .map_err(PlotError::draw)?;
        Ok(())
    }

    /// The grid points' labels, right of each one's range where there is room, elsewhere
    /// near it with a leader line (see `labels`): at the reproduction's widths of 8-104 the
    /// grid points crowd at 112-250 remaining weights.
    fn draw_labels<DB: DrawingBackend>(
        &self,
        plot: &DrawingArea<DB, Shift>,
        pixels: &Pixels<DB>,
    ) -> DrawResult {
        let style = font(TICK * 0.8);
        let mut markers: Vec<Rect> = self
            .points
            .iter()
            .map(|p| Rect::around(pixels.at(p.remaining, p.active), MARKER))
            .collect();
        let mut wanted = Vec::with_capacity(self.summaries.len());
        for s in &self.summaries {
            markers.extend(summary_markers(pixels, s));
            wanted.push(label_of(plot, pixels, s, &style)?);
        }
        let placed = labels::place(&wanted, &markers, pixels.bounds, 22);
        for (i, (placed, s)) in placed.into_iter().zip(&self.summaries).enumerate() {
            let colour = self.colour_of(i);
            if placed.moved {
                let anchor = wanted[i].anchor;
                plot.draw(&PathElement::new(
                    vec![anchor, placed.rect.nearest(anchor)],
                    colour.mix(0.5).stroke_width(2),
                ))
                .map_err(PlotError::draw)?;
            }
            plot.draw(&Text::new(
                s.label.clone(),
                (placed.rect.x0, placed.rect.y0),
                style.color(&colour).pos(Pos::new(HPos::Left, VPos::Top)),
            ))
            .map_err(PlotError::draw)?;
        }
        Ok(())
    }
}

/// The chart on `plot` with its mesh drawn.
fn chart<'a, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
    x: &Scale,
    y: &Scale,
) -> Result<Chart<'a, DB>, PlotError> {
    let mut chart = ChartBuilder::on(plot)
        .margin_left(20)
        .margin_right(50)
        .margin_top(10)
        .margin_bottom(10)
        .x_label_area_size(110)
        .y_label_area_size(150)
        .build_cartesian_2d(x.coord(), y.coord())
        .map_err(PlotError::draw)?;
    let x_label = |v: &f64| x.label(*v);
    let y_label = |v: &f64| y.label(*v);
    house_mesh(
        chart
            .configure_mesh()
            .x_desc("remaining weights at the split level (log scale)")
            .y_desc("active weights at the first split (log scale)")
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label),
    )
    .draw()
    .map_err(PlotError::draw)?;
    Ok(chart)
}

/// The dashed guide lines: active equals remaining (the diagonal, where both scales overlap)
/// and the pruning target.
fn draw_guides<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Scale,
    y: &Scale,
    target: Option<f64>,
) -> DrawResult {
    let mut dashed = |from: (f64, f64), to: (f64, f64), style: ShapeStyle| {
        chart
            .draw_series(DashedLineSeries::new([from, to], 18, 12, style))
            .map(|_| ())
            .map_err(PlotError::draw)
    };
    let (lo, hi) = (x.lo.max(y.lo), x.hi.min(y.hi));
    if lo < hi {
        dashed((lo, lo), (hi, hi), LIGHT_GREY.stroke_width(4))?;
    }
    if let Some(t) = target {
        let t = y.pos(t);
        dashed((x.lo, t), (x.hi, t), GREY.stroke_width(4))?;
    }
    Ok(())
}

/// A grid point's ranges around its mean: the active weights' (vertical) and the remaining
/// weights' (horizontal), each with a short bar across either end.
fn draw_ranges<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Scale,
    y: &Scale,
    s: &PointSummary,
) -> DrawResult {
    let bar = INK.stroke_width(3);
    let (mx, my) = (x.pos(s.remaining.mean), y.pos(s.active.mean));
    chart
        .draw_series([
            PathElement::new(
                vec![(mx, y.pos(s.active.min)), (mx, y.pos(s.active.max))],
                bar,
            ),
            PathElement::new(
                vec![(x.pos(s.remaining.min), my), (x.pos(s.remaining.max), my)],
                bar,
            ),
        ])
        .map_err(PlotError::draw)?;
    let mut end = |at: (f64, f64), across: [(i32, i32); 2]| {
        chart
            .draw_series(std::iter::once(
                EmptyElement::at(at) + PathElement::new(across.to_vec(), bar),
            ))
            .map(|_| ())
            .map_err(PlotError::draw)
    };
    let m = MARKER;
    for v in [s.active.min, s.active.max] {
        end((mx, y.pos(v)), [(-m, 0), (m, 0)])?;
    }
    for v in [s.remaining.min, s.remaining.max] {
        end((x.pos(v), my), [(0, -m), (0, m)])?;
    }
    Ok(())
}

/// A grid point's median (a cross) and mean (a square, drawn last, on top).
fn draw_centres<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x: &Scale,
    y: &Scale,
    s: &PointSummary,
) -> DrawResult {
    let (c, cross) = (CENTRE, INK.stroke_width(4));
    let median = (x.pos(s.remaining.median), y.pos(s.active.median));
    chart
        .draw_series(std::iter::once(
            EmptyElement::at(median)
                + PathElement::new(vec![(-c, -c), (c, c)], cross)
                + PathElement::new(vec![(-c, c), (c, -c)], cross),
        ))
        .map_err(PlotError::draw)?;
    let mean = (x.pos(s.remaining.mean), y.pos(s.active.mean));
    chart
        .draw_series(std::iter::once(
            EmptyElement::at(mean)
                + Rectangle::new([(-c, -c), (c, c)], INK.filled())
                + Rectangle::new([(-c, -c), (c, c)], WHITE.stroke_width(2)),
        ))
        .map_err(PlotError::draw)?;
    Ok(())
}

/// Pixel positions in the plot area (from its top left corner) of the chart's values.
struct Pixels<'c, 'a, DB: DrawingBackend> {
    chart: &'c Chart<'a, DB>,
    x: &'c Scale,
    y: &'c Scale,
    /// The plot area's top left corner in the backend's pixels.
    base: (i32, i32),
    /// The plotting area inside the axes.
    bounds: Rect,
}

impl<'c, 'a, DB: DrawingBackend> Pixels<'c, 'a, DB> {
    fn new(
        plot: &DrawingArea<DB, Shift>,
        chart: &'c Chart<'a, DB>,
        x: &'c Scale,
        y: &'c Scale,
    ) -> Self {
        let base = plot.get_base_pixel();
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let bounds = Rect {
            x0: xr.start - base.0,
            y0: yr.start - base.1,
            x1: xr.end - base.0,
            y1: yr.end - base.1,
        };
        Pixels {
            chart,
            x,
            y,
            base,
            bounds,
        }
    }

    /// The pixel of remaining weights `vx` and active weights `vy`.
    fn at(&self, vx: f64, vy: f64) -> (i32, i32) {
        let p = self.chart.backend_coord(&(self.x.pos(vx), self.y.pos(vy)));
        (p.0 - self.base.0, p.1 - self.base.1)
    }
}

/// What a grid point's label must not cover: its mean and median markers, and its range
/// bars as thin boxes (text over a line is hard to read).
fn summary_markers<DB: DrawingBackend>(pixels: &Pixels<DB>, s: &PointSummary) -> [Rect; 4] {
    let (r, a) = (&s.remaining, &s.active);
    let (left, right) = (pixels.at(r.min, a.mean), pixels.at(r.max, a.mean));
    let (top, bottom) = (pixels.at(r.mean, a.max), pixels.at(r.mean, a.min));
    [
        Rect::around(pixels.at(r.mean, a.mean), MARKER),
        Rect::around(pixels.at(r.median, a.median), MARKER),
        Rect {
            x0: left.0,
            y0: left.1 - MARKER,
            x1: right.0,
            y1: right.1 + MARKER,
        },
        Rect {
            x0: top.0 - MARKER,
            y0: top.1,
            x1: bottom.0 + MARKER,
            y1: bottom.1,
        },
    ]
}

/// A grid point's label to place: anchored right of its mean and range, as wide as its text
/// in `style` with a tenth to spare (SVG viewers set the text in their own sans-serif, a
/// little wider or narrower).
fn label_of<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    pixels: &Pixels<DB>,
    s: &PointSummary,
    style: &TextStyle,
) -> Result<Label, PlotError> {
    let (w, h) = plot
        .estimate_text_size(&s.label, style)
        .map_err(PlotError::draw)?;
    Ok(Label {
        anchor: pixels.at(s.remaining.max.max(s.remaining.mean), s.active.mean),
        width: w as i32 * 11 / 10,
        height: h as i32,
    })
}

/// The label of a grid point whose networks have `dense` weights, by the axis its figure's
/// points differ in: `dense 170k` by weights, `6 levels` by pruning levels, else the axis and
/// its value (`rate 0.32`).
pub fn point_label(x_axis: Axis, spec: &shared::spec::TaskSpec, dense: f64) -> String {
    match x_axis {
        Axis::Weights => format!("dense {}", si_short(dense)),
        Axis::Levels if spec.prune.levels == 1 => "1 level".to_string(),
        Axis::Levels => format!("{} levels", spec.prune.levels),
        axis => format!("{} {}", axis.name().replace('_', " "), axis.value(spec)),
    }
}

/// What [`point_label`] writes, for the legend.
fn label_kind(x_axis: Axis) -> &'static str {
    match x_axis {
        Axis::Weights => "dense weights",
        Axis::Levels => "pruning levels",
        axis => axis.label(),
    }
}

/// The axis that sets the facets of the active-weights figures apart from the grid points
/// within one: the available weights when networks differ in size, else what the sweep
/// varies.
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
        let title = super::facet_title(&options.sweep, "active weights at the first split", &facet);
        let figure = ActiveFigure::new(title, &group, x);
        let name = super::facet_name("active", &key);
        let caption = format!(
            "Active weights at the first split against the remaining weights at the split \
             level, one point per seed; mean, range and median per grid point, labelled by its \
             dense weights{}",
            super::facet_suffix(&facet)
        );
        out.push(super::render(&figure, &name, &caption, options.png)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{spec, task_with};
    use super::*;
    use shared::graph::Status::{Connected as C, Degraded as D, Split as S};

    /// Extension 0 (dense 112): seeds split at level 1 (200 remaining, 60 active), level 2
    /// (100, 30) and level 1 (200, 90), one never splits, one is not finished. Extension 2
    /// (dense 264): one seed splits at level 3 (40, 25).
    fn tasks() -> Vec<TaskResult> {
        vec![
            task_with(
                0,
                spec(0, 0),
                true,
                &[(C, 400, 390, 0.1), (S, 200, 60, 0.2), (S, 100, 50, 0.3)],
            ),
            task_with(
                1,
                spec(0, 1),
                true,
                &[(C, 400, 390, 0.1), (C, 200, 150, 0.2), (S, 100, 30, 0.3)],
            ),
            task_with(
                2,
                spec(0, 2),
                true,
                &[(C, 400, 390, 0.1), (S, 200, 90, 0.2), (D, 100, 20, 0.3)],
            ),
            task_with(
                3,
                spec(0, 3),
                true,
                &[(C, 400, 390, 0.1), (C, 200, 180, 0.2)],
            ),
            task_with(
                4,
                spec(0, 4),
                false,
                &[(C, 400, 390, 0.1), (S, 200, 10, 0.2)],
            ),
            task_with(
                5,
                spec(2, 0),
                true,
                &[
                    (C, 400, 390, 0.1),
                    (C, 200, 150, 0.2),
                    (C, 100, 80, 0.3),
                    (S, 40, 25, 0.4),
                ],
            ),
        ]
    }

    #[test]
    fn points_read_the_remaining_weights_of_the_split_level() {
        let figure = ActiveFigure::new(String::new(), &tasks(), Axis::ExtensionLevel);
        let seen: Vec<(usize, u64, usize, f64, f64)> = figure
            .points
            .iter()
            .map(|p| (p.point, p.seed, p.level, p.remaining, p.active))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, 0, 1, 200.0, 60.0),
                (0, 1, 2, 100.0, 30.0),
                (0, 2, 1, 200.0, 90.0),
                (1, 0, 3, 40.0, 25.0),
            ]
        );
        // Not the dense network's weights.
        assert_eq!(figure.summaries[0].dense, spec(0, 0).weights() as f64);
        assert!(figure
            .points
            .iter()
            .all(|p| p.remaining != figure.summaries[p.point].dense));
        assert_eq!(figure.networks, 5);
        assert_eq!(figure.target, Some(40.0));
    }

    #[test]
    fn summaries_are_the_mean_range_and_median_per_grid_point() {
        let figure = ActiveFigure::new(String::new(), &tasks(), Axis::ExtensionLevel);
        assert_eq!(figure.summaries.len(), 2);
        let s = &figure.summaries[0];
        assert_eq!(s.point, stats::point_of(&spec(0, 7)));
        assert_eq!(s.seeds, 4);
        assert_eq!(s.active.n, 3);
        assert!((s.active.mean - (60.0 + 30.0 + 90.0) / 3.0).abs() < 1e-9);
        assert_eq!(
            (s.active.min, s.active.median, s.active.max),
            (30.0, 60.0, 90.0)
        );
        assert!((s.remaining.mean - 500.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (s.remaining.min, s.remaining.median, s.remaining.max),
            (100.0, 200.0, 200.0)
        );
        let wide = &figure.summaries[1];
        assert_eq!((wide.active.mean, wide.remaining.mean), (25.0, 40.0));
        assert_eq!(wide.dense, spec(2, 0).weights() as f64);
    }

    #[test]
    fn svg_says_what_is_on_each_axis_and_labels_the_dense_count() {
        let options = Options {
            sweep: "a".into(),
            shape: None,
            png: true,
        };
        let figures = figures(&tasks(), &options).unwrap();
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["active"]);
        let svg = &figures[0].svg;
        for label in [
            "remaining weights at the split level",
            "active weights at the first split",
            &format!("dense {}", si_short(spec(0, 0).weights() as f64)),
            &format!("dense {}", si_short(spec(2, 0).weights() as f64)),
            "4 of 5 finished networks split",
        ] {
            assert!(svg.contains(label), "the figure lacks {label:?}");
        }
        assert!(figures[0].png.is_some());
        // No split at all still draws (an empty panel with the counts).
        let none = vec![task_with(0, spec(0, 0), true, &[(C, 400, 390, 0.1)])];
        let f = &super::figures(&none, &options).unwrap()[0];
        assert!(f.svg.contains("0 of 1 finished networks split"));
    }
}
