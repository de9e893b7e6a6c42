//! The poster's cross-experiment claim as one figure: networks split into one subnetwork per
//! problem at a similar number of active weights, over model sizes and pruning levels. One
//! marker per finished run (task) that split, from several sweeps on one set of axes: the
//! active weights at its first split (y) against the weights of its dense network (`compare`)
//! or against the weights remaining at the first split level (`compare-remaining`), all on log
//! scales. Marker shape and colour tell the sweeps apart, a dashed line in the sweep's colour
//! marks its median, and the legend says how many of its finished runs split.
//!
//! This module owns the figure's input rows ([`SplitRun`] in [`SweepRuns`]) and their two
//! sources, which give the same rows for the same data (tested): a sweep's tasks, through
//! [`stats::summarize`] (the one computation of the first split), and the long CSV of
//! [`crate::export`] (its task-level columns), so that the figure can be drawn from exported
//! files alone.
//!
//! Runs at the same x (the seeds of one shape; every run of a one-shape sweep in `compare`) are
//! set side by side within a narrow band: the sweeps there in their order, then each sweep's
//! runs by pruning levels (fewer to the left) and seed. The offset is a fixed function of the
//! data, so the figure stays deterministic; the caption says it is not data.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    house_mesh, si_short, DrawResult, Figure, LegendEntry, Mark, PlotError, Scale, Ticks,
    LIGHT_GREY, PALETTE, TITLE,
};
use crate::data::TaskResult;
use crate::stats;

/// One finished run (task) that split at some level: what the figure shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRun {
    pub sweep: String,
    pub task_id: String,
    /// Position in its sweep's expansion.
    pub task_index: usize,
    pub seed: u64,
    /// Layer widths as the export writes them, e.g. `(4,410,410,2)`.
    pub shape: String,
    /// Weights of the dense network.
    pub weights: usize,
    /// Pruning levels planned.
    pub levels: usize,
    pub first_split_level: usize,
    /// Active weights at the first split level.
    pub active: usize,
    /// Weights remaining (what pruning had left) at the first split level.
    pub remaining: usize,
}

/// One sweep's finished runs: how many, and those that split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRuns {
    pub sweep: String,
    /// Finished runs (done, with at least one stored level).
    pub finished: usize,
    /// The finished runs that split, by task index.
    pub runs: Vec<SplitRun>,
}

impl SweepRuns {
    /// The finished runs of a sweep's tasks, with [`stats::summarize`]'s first split.
    pub fn from_tasks(sweep: &str, tasks: &[TaskResult]) -> SweepRuns {
        let finished: Vec<&TaskResult> = tasks
            .iter()
            .filter(|t| t.done && !t.levels.is_empty())
            .collect();
        let mut runs: Vec<SplitRun> = finished
            .iter()
            .filter_map(|t| SplitRun::of(sweep, t))
            .collect();
        sort_runs(&mut runs);
        SweepRuns {
            sweep: sweep.to_string(),
            finished: finished.len(),
            runs,
        }
    }

    /// The sweeps of a long CSV (`coordinator export --format csv`), in order of appearance:
    /// one run per task, from the task-level columns of its first row; finished tasks only.
    pub fn from_csv(text: &str) -> Result<Vec<SweepRuns>, CsvError> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = Header::find(reader.headers().map_err(syntax)?)?;
        let mut seen = BTreeSet::new();
        let mut sweeps: Vec<SweepRuns> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(syntax)?;
            let task = Row::new(&header, &record).task()?;
            if !seen.insert((task.sweep.clone(), task.task_id.clone())) || !task.done {
                continue;
            }
            let sweep = match sweeps.iter().position(|s| s.sweep == task.sweep) {
                Some(i) => &mut sweeps[i],
                None => {
                    sweeps.push(SweepRuns::empty(&task.sweep));
                    sweeps.last_mut().expect("just pushed")
                }
            };
            sweep.finished += 1;
            sweep.runs.extend(task.run);
        }
        sweeps.iter_mut().for_each(|s| sort_runs(&mut s.runs));
        Ok(sweeps)
    }

    fn empty(sweep: &str) -> SweepRuns {
        SweepRuns {
            sweep: sweep.to_string(),
            finished: 0,
            runs: Vec::new(),
        }
    }
}

impl SplitRun {
    /// The run of a finished task, when it split.
    fn of(sweep: &str, task: &TaskResult) -> Option<SplitRun> {
        let s = stats::summarize(task);
        Some(SplitRun {
            sweep: sweep.to_string(),
            task_id: s.id,
            task_index: s.idx,
            seed: s.seed,
            shape: stats::shape_name(&task.spec.shape),
            weights: s.available_weights,
            levels: s.levels_planned,
            first_split_level: s.first_split_level?,
            active: s.active_at_first_split?,
            remaining: s.remaining_at_first_split?,
        })
    }
}

fn sort_runs(runs: &mut [SplitRun]) {
    runs.sort_by(|a, b| (a.task_index, &a.task_id).cmp(&(b.task_index, &b.task_id)));
}

/// Why a long CSV could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: {message}")]
    Syntax { line: u64, message: String },
    #[error(
        "the header has no column {column:?}: expected the long CSV of \
         `coordinator export SWEEP --format csv`"
    )]
    MissingColumn { column: &'static str },
    #[error("line {line}, column {column}: {value:?} is not {expected}")]
    Value {
        line: u64,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("line {line}, column {column}: empty, but the task split (first_split_level {level})")]
    Missing {
        line: u64,
        column: &'static str,
        level: usize,
    },
}

fn syntax(e: csv::Error) -> CsvError {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        _ => e.to_string(),
    };
    CsvError::Syntax { line, message }
}

/// The task-level columns a run is read from.
const COLUMNS: [&str; 11] = [
    "sweep",
    "task_id",
    "task_index",
    "seed",
    "shape",
    "weights",
    "levels",
    "task_done",
    "first_split_level",
    "active_at_first_split",
    "remaining_at_first_split",
];

const WHOLE: &str = "a whole number";

/// Where each of [`COLUMNS`] is in a header.
struct Header([usize; COLUMNS.len()]);

impl Header {
    fn find(header: &csv::StringRecord) -> Result<Header, CsvError> {
        let mut at = [0; COLUMNS.len()];
        for (slot, column) in at.iter_mut().zip(COLUMNS) {
            *slot = header
                .iter()
                .position(|h| h.trim() == column)
                .ok_or(CsvError::MissingColumn { column })?;
        }
        Ok(Header(at))
    }
}

/// One task as one CSV row has it.
struct CsvTask {
    sweep: String,
    task_id: String,
    done: bool,
    run: Option<SplitRun>,
}

/// One CSV record, read by column name.
struct Row<'r> {
    header: &'r Header,
    record: &'r csv::StringRecord,
    line: u64,
}

impl<'r> Row<'r> {
    fn new(header: &'r Header, record: &'r csv::StringRecord) -> Row<'r> {
        let line = record.position().map_or(0, |p| p.line());
        Row {
            header,
            record,
            line,
        }
    }

    fn raw(&self, column: &'static str) -> &'r str {
        let at = COLUMNS.iter().position(|c| *c == column).unwrap_or(0);
        self.record.get(self.header.0[at]).unwrap_or("").trim()
    }

    fn error(&self, column: &'static str, expected: &'static str) -> CsvError {
        CsvError::Value {
            line: self.line,
            column,
            value: self.raw(column).to_string(),
            expected,
        }
    }

    fn text(&self, column: &'static str) -> Result<String, CsvError> {
        match self.raw(column) {
            "" => Err(self.error(column, "non-empty text")),
            text => Ok(text.to_string()),
        }
    }

    fn value<T: FromStr>(&self, column: &'static str) -> Result<T, CsvError> {
        self.raw(column)
            .parse()
            .map_err(|_| self.error(column, WHOLE))
    }

    fn optional<T: FromStr>(&self, column: &'static str) -> Result<Option<T>, CsvError> {
        match self.raw(column) {
            "" => Ok(None),
            _ => self.value(column).map(Some),
        }
    }

    fn done(&self) -> Result<bool, CsvError> {
        match self.raw("task_done").to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(self.error("task_done", "true or false")),
        }
    }

    fn task(&self) -> Result<CsvTask, CsvError> {
        let run = SplitRun {
            sweep: self.text("sweep")?,
            task_id: self.text("task_id")?,
            task_index: self.value("task_index")?,
            seed: self.value("seed")?,
            shape: self.text("shape")?,
            weights: self.value("weights")?,
            levels: self.value("levels")?,
            first_split_level: 0,
            active: 0,
            remaining: 0,
        };
        Ok(CsvTask {
            sweep: run.sweep.clone(),
            task_id: run.task_id.clone(),
            done: self.done()?,
            run: self.split(run)?,
        })
    }

    /// `run` with its first split, or `None` when it never split.
    fn split(&self, run: SplitRun) -> Result<Option<SplitRun>, CsvError> {
        let Some(level) = self.optional("first_split_level")? else {
            return Ok(None);
        };
        let count = |column| {
            self.optional(column)?.ok_or(CsvError::Missing {
                line: self.line,
                column,
                level,
            })
        };
        Ok(Some(SplitRun {
            first_split_level: level,
            active: count("active_at_first_split")?,
            remaining: count("remaining_at_first_split")?,
            ..run
        }))
    }
}

/// What the x axis shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// The weights of the run's dense network.
    Dense,
    /// The weights remaining at its first split level.
    Remaining,
}

impl XAxis {
    pub const ALL: [XAxis; 2] = [XAxis::Dense, XAxis::Remaining];

    /// The value of a run on this axis.
    pub fn of(self, run: &SplitRun) -> usize {
        match self {
            XAxis::Dense => run.weights,
            XAxis::Remaining => run.remaining,
        }
    }

    /// The figure's file stem.
    pub fn file(self) -> &'static str {
        match self {
            XAxis::Dense => "compare",
            XAxis::Remaining => "compare-remaining",
        }
    }

    fn desc(self) -> &'static str {
        match self {
            XAxis::Dense => "weights of the dense network (log scale)",
            XAxis::Remaining => "remaining weights at the first split level (log scale)",
        }
    }

    fn title(self) -> &'static str {
        match self {
            XAxis::Dense => "Active weights at the first split, by network size",
            XAxis::Remaining => "Active weights at the first split, by weights remaining",
        }
    }
}

/// The marker shapes of the sweeps, in order (then again, with the next colours).
pub const MARKS: [Mark; 4] = [Mark::Circle, Mark::Triangle, Mark::Square, Mark::Cross];

/// How one sweep is drawn and what its legend entry says.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedSweep {
    pub name: String,
    pub finished: usize,
    /// Finished runs that split (its points).
    pub split: usize,
    pub colour: RGBColor,
    pub mark: Mark,
    /// The median active weights at the first split over its split runs.
    pub median: Option<f64>,
}

impl ComparedSweep {
    /// The legend text, e.g. `poster-levels: 61 of 84 runs split, median 1.23k`.
    pub fn label(&self) -> String {
        let counts = format!(
            "{}: {} of {} runs split",
            self.name, self.split, self.finished
        );
        match self.median {
            Some(m) => format!("{counts}, median {}", si_short(m)),
            None => counts,
        }
    }
}

/// One run that split.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparePoint {
    /// Its sweep: an index into [`CompareFigure::sweeps`].
    pub sweep: usize,
    pub task_id: String,
    pub seed: u64,
    pub levels: usize,
    pub x: f64,
    /// Active weights at the first split.
    pub y: f64,
    /// Sideways offset within the band of its x, in [-1, 1] (0: at x exactly), so that runs at
    /// the same x do not hide each other; not data.
    pub offset: f64,
}

/// The figure: every split run of every sweep, with the sweeps' medians.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareFigure {
    pub title: String,
    pub x_axis: XAxis,
    /// In the order given.
    pub sweeps: Vec<ComparedSweep>,
    /// Sweep by sweep, each in task order.
    pub points: Vec<ComparePoint>,
}

impl CompareFigure {
    pub fn new(title: String, sweeps: &[SweepRuns], x_axis: XAxis) -> CompareFigure {
        let styled = sweeps
            .iter()
            .enumerate()
            .map(|(i, s)| ComparedSweep {
                name: s.sweep.clone(),
                finished: s.finished,
                split: s.runs.len(),
                colour: PALETTE[i % PALETTE.len()],
                mark: MARKS[i % MARKS.len()],
                median: stats::median(s.runs.iter().map(|r| r.active as f64).collect()),
            })
            .collect();
        let mut points: Vec<ComparePoint> = sweeps
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.runs.iter().map(move |r| point(i, r, x_axis)))
            .collect();
        set_offsets(&mut points);
        CompareFigure {
            title,
            x_axis,
            sweeps: styled,
            points,
        }
    }
}

fn point(sweep: usize, run: &SplitRun, x_axis: XAxis) -> ComparePoint {
    ComparePoint {
        sweep,
        task_id: run.task_id.clone(),
        seed: run.seed,
        levels: run.levels,
        x: x_axis.of(run) as f64,
        y: run.active as f64,
        offset: 0.0,
    }
}

/// Sets the points at one x side by side: the band [-1, 1] is cut into one slot per sweep
/// there (in sweep order, as wide as its share of the points), and each sweep's points spread
/// over the middle 80% of its slot by (levels, seed).
pub fn set_offsets(points: &mut [ComparePoint]) {
    let mut groups: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        groups.entry(p.x.to_bits()).or_default().push(i);
    }
    for members in groups.values() {
        let sweeps: BTreeSet<usize> = members.iter().map(|&i| points[i].sweep).collect();
        let mut start = -1.0;
        for sweep in sweeps {
            let mut mine: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| points[i].sweep == sweep)
                .collect();
            mine.sort_by_key(|&i| (points[i].levels, points[i].seed, points[i].task_id.clone()));
            let width = 2.0 * mine.len() as f64 / members.len() as f64;
            let centre = start + width / 2.0;
            let last = mine.len().saturating_sub(1).max(1) as f64;
            for (k, &i) in mine.iter().enumerate() {
                let t = if mine.len() > 1 {
                    2.0 * k as f64 / last - 1.0
                } else {
                    0.0
                };
                points[i].offset = centre + 0.4 * width * t;
            }
            start += width;
        }
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticks, Ticks>>;

/// Marker radius (pixels).
const R: i32 = 11;

impl super::Draw for CompareFigure {
    fn size(&self) -> (u32, u32) {
        (1600, 1100)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let plot = super::legend(&area, &self.legend())?;
        let xs: Vec<f64> = self.points.iter().map(|p| p.x).collect();
        let ys: Vec<f64> = self.points.iter().map(|p| p.y).collect();
        let (x, y) = (Scale::fit(&xs, true, true), Scale::fit(&ys, true, true));
        let mut chart = ChartBuilder::on(&plot)
            .margin_left(20)
            .margin_right(50)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(110)
            .y_label_area_size(150)
            .build_cartesian_2d(x.coord(), y.coord())
            .map_err(PlotError::draw)?;
        let (x_label, y_label) = (|v: &f64| x.label(*v), |v: &f64| y.label(*v));
        house_mesh(
            chart
                .configure_mesh()
                .x_desc(self.x_axis.desc())
                .y_desc("active weights at the first split (log scale)")
                .x_label_formatter(&x_label)
                .y_label_formatter(&y_label),
        )
        .draw()
        .map_err(PlotError::draw)?;
        if self.x_axis == XAxis::Remaining {
            draw_diagonal(&mut chart, &x, &y)?;
        }
        let half = self.band(&chart, &x);
        for (i, sweep) in self.sweeps.iter().enumerate() {
            let at = self
                .points
                .iter()
                .filter(|p| p.sweep == i)
                .map(|p| ((x.pos(p.x), y.pos(p.y)), (p.offset * half).round() as i32));
            draw_runs(&mut chart, at.collect(), sweep.mark, sweep.colour)?;
        }
        for i in 0..self.sweeps.len() {
            self.draw_median(&mut chart, i, &x, &y, half)?;
        }
        Ok(())
    }
}

impl CompareFigure {
    fn legend(&self) -> Vec<LegendEntry> {
        let mut entries: Vec<LegendEntry> = self
            .sweeps
            .iter()
            .map(|s| match s.median {
                Some(_) => LegendEntry::new(s.label(), s.colour, &[Mark::Dashed, s.mark]),
                None => LegendEntry::new(s.label(), s.colour, &[s.mark]),
            })
            .collect();
        if self.x_axis == XAxis::Remaining {
            entries.push(LegendEntry::new(
                "all remaining weights active",
                LIGHT_GREY,
                &[Mark::Dashed],
            ));
        }
        entries
    }

    /// Half the width (pixels) of the band runs at one x spread over: 40% of the closest gap
    /// between two x positions, within 10 to 36 pixels.
    fn band<DB: DrawingBackend>(&self, chart: &Chart<DB>, x: &Scale) -> f64 {
        let mut px: Vec<i32> = self
            .points
            .iter()
            .map(|p| chart.backend_coord(&(x.pos(p.x), x.lo)).0)
            .collect();
        px.sort_unstable();
        px.dedup();
        let gap = px.windows(2).map(|w| w[1] - w[0]).min();
        gap.map_or(36.0, |g| (0.4 * g as f64).clamp(10.0, 36.0))
    }

    /// Sweep `i`'s median: a dashed line in its colour across its points' band.
    fn draw_median<DB: DrawingBackend>(
        &self,
        chart: &mut Chart<DB>,
        i: usize,
        x: &Scale,
        y: &Scale,
        half: f64,
    ) -> DrawResult {
        let sweep = &self.sweeps[i];
        let Some(median) = sweep.median else {
            return Ok(());
        };
        let xs: Vec<f64> = self
            .points
            .iter()
            .filter(|p| p.sweep == i)
            .map(|p| p.x)
            .collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let anchor = (x.pos(lo), y.pos(median));
        let span = chart.backend_coord(&(x.pos(hi), anchor.1)).0 - chart.backend_coord(&anchor).0;
        let reach = half as i32 + R + 4;
        let style = sweep.colour.stroke_width(4);
        let dashes = dashes(-reach, span + reach).map(move |(a, b)| {
            EmptyElement::at(anchor) + PathElement::new(vec![(a, 0), (b, 0)], style)
        });
        chart.draw_series(dashes).map_err(PlotError::draw)?;
        Ok(())
    }
}

/// Dashes of 18 pixels, 10 apart, from `from` to `to`.
fn dashes(from: i32, to: i32) -> impl Iterator<Item = (i32, i32)> {
    (from..to).step_by(28).map(move |a| (a, (a + 18).min(to)))
}

/// Active equals remaining: the diagonal where both scales overlap.
fn draw_diagonal<DB: DrawingBackend>(chart: &mut Chart<DB>, x: &Scale, y: &Scale) -> DrawResult {
    let (lo, hi) = (x.lo.max(y.lo), x.hi.min(y.hi));
    if lo < hi {
        let line = DashedLineSeries::new([(lo, lo), (hi, hi)], 18, 12, LIGHT_GREY.stroke_width(4));
        chart.draw_series(line).map_err(PlotError::draw)?;
    }
    Ok(())
}

/// One sweep's runs at `(position, sideways pixels)`: a translucent marker with a solid edge,
/// so that overlapping markers stay visible.
fn draw_runs<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    at: Vec<((f64, f64), i32)>,
    mark: Mark,
    colour: RGBColor,
) -> DrawResult {
    let (fill, edge) = (colour.mix(0.35).filled(), colour.stroke_width(3));
    let at = at.into_iter();
    let drawn = match mark {
        Mark::Circle => chart.draw_series(at.map(|(c, dx)| {
            EmptyElement::at(c) + Circle::new((dx, 0), R, fill) + Circle::new((dx, 0), R, edge)
        })),
        Mark::Triangle => chart.draw_series(at.map(|(c, dx)| {
            let corners = vec![(dx, -R - 3), (dx - R - 2, R), (dx + R + 2, R), (dx, -R - 3)];
            EmptyElement::at(c)
                + Polygon::new(corners.clone(), fill)
                + PathElement::new(corners, edge)
        })),
        Mark::Square => chart.draw_series(at.map(|(c, dx)| {
            let corners = [(dx - R + 1, -R + 1), (dx + R - 1, R - 1)];
            EmptyElement::at(c) + Rectangle::new(corners, fill) + Rectangle::new(corners, edge)
        })),
        _ => chart.draw_series(at.map(|(c, dx)| {
            let cross = colour.stroke_width(4);
            EmptyElement::at(c)
                + PathElement::new(vec![(dx - R, -R), (dx + R, R)], cross)
                + PathElement::new(vec![(dx - R, R), (dx + R, -R)], cross)
        })),
    };
    drawn.map(|_| ()).map_err(PlotError::draw)
}

/// The caption of one variant.
fn caption(sweeps: &[SweepRuns], x_axis: XAxis) -> String {
    let names: Vec<&str> = sweeps.iter().map(|s| s.sweep.as_str()).collect();
    let against = match x_axis {
        XAxis::Dense => "the weights of its dense network",
        XAxis::Remaining => "the weights remaining at that level",
    };
    format!(
        "Active weights at the first split of every finished run that split, against {against}, \
         from {}: one marker per run, shape and colour by sweep, a dashed line at each sweep's \
         median; runs that never split are left out. Runs at the same x are set side by side \
         (sweeps, then pruning levels and seed): the sideways offset is not data.",
        names.join(", ")
    )
}

/// Both figures (`compare`, `compare-remaining`) of the sweeps, in the order given.
pub fn figures(sweeps: &[SweepRuns], png: bool) -> Result<Vec<Figure>, PlotError> {
    if sweeps.iter().all(|s| s.runs.is_empty()) {
        let counts: Vec<String> = sweeps
            .iter()
            .map(|s| format!("{} ({} finished)", s.sweep, s.finished))
            .collect();
        return Err(PlotError::NoData(if counts.is_empty() {
            "no sweep given".to_string()
        } else {
            format!("no finished run split in {}", counts.join(", "))
        }));
    }
    XAxis::ALL
        .into_iter()
        .map(|axis| {
            let figure = CompareFigure::new(axis.title().to_string(), sweeps, axis);
            super::render(&figure, axis.file(), &caption(sweeps, axis), png)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sweep: usize, x: f64, levels: usize, seed: u64) -> ComparePoint {
        ComparePoint {
            sweep,
            task_id: format!("{sweep}-{levels}-{seed}"),
            seed,
            levels,
            x,
            y: 100.0,
            offset: 9.0,
        }
    }

    #[test]
    fn runs_at_one_x_are_set_side_by_side_by_sweep_then_levels() {
        let mut points = vec![
            at(0, 100.0, 3, 1),
            at(1, 100.0, 2, 0),
            at(0, 100.0, 1, 0),
            at(0, 200.0, 1, 0),
        ];
        set_offsets(&mut points);
        // At x = 100, sweep 0 (two points) in [-1, 1/3], fewer levels left; sweep 1 (one) at
        // the centre of [1/3, 1]. Alone at x = 200: no offset.
        let third = 1.0 / 3.0;
        for (p, want) in points
            .iter()
            .zip([0.2, 2.0 * third, -0.6 - 0.8 * third, 0.0])
        {
            assert!((p.offset - want).abs() < 1e-9, "{p:?} is not at {want}");
        }
    }
}
