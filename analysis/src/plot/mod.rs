//! Figures of a sweep's results, drawn with plotters into SVG (always) and PNG (optionally),
//! with an embedded font (DejaVu Sans, `analysis/assets/`): no system fonts, fontconfig or
//! other system libraries are needed.
//!
//! - [`fraction`]: fraction of networks split (and degraded) against what the sweep varies
//!   (extension level, width, weights, pruning levels, rate), with 95% Wilson intervals;
//! - [`outcomes`]: the four outcomes (separated, separated then degraded, interconnected,
//!   degraded without a split) as a stacked bar per value of what the sweep varies, with the
//!   number of finished seeds above each bar;
//! - [`active`]: active weights at the first split against the weights remaining at that
//!   level, per seed, with the mean, range and median per grid point (labelled by its dense
//!   weight count);
//! - [`loss`]: held-out loss against active weights through the pruning levels, one line per
//!   seed coloured by its outcome (the poster's inset);
//! - [`levels`]: remaining, active, zombie and inactive weights against the pruning level for
//!   one grid point (median and range over seeds);
//! - [`ticket`]: one ticket drawn as a layered network, subnetworks in colour;
//! - [`compare`]: several sweeps on one figure, the active weights at the first split of every
//!   run that split against its network's size (the poster's cross-experiment claim), drawn
//!   from the tasks or from the long CSVs alone;
//! - [`labels`]: where point labels go so that none covers another or a marker.
//!
//! Every figure is a pure function of stored rows (and masks, for the ticket) to SVG text and
//! PNG bytes; writing files is the CLI's business. Sizes and fonts are chosen to stay readable
//! when a figure is printed on a poster.

pub mod active;
pub mod compare;
pub mod fraction;
pub mod labels;
pub mod levels;
pub mod loss;
pub mod outcomes;
pub mod ticket;

use std::sync::Once;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, RGBColor};
use shared::outcome::Outcome;

use crate::data::TaskResult;
use crate::stats::{self, Axis};

/// DejaVu Sans (see `analysis/assets/DejaVu-LICENSE.txt`).
static FONT_REGULAR: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static FONT_BOLD: &[u8] = include_bytes!("../../assets/DejaVuSans-Bold.ttf");

/// The font family figures use; SVG viewers substitute their own sans-serif font.
pub const FAMILY: &str = "sans-serif";

/// Font sizes (pixels) of a 1600-pixel-wide figure.
pub const TITLE: f64 = 46.0;
pub const LABEL: f64 = 38.0;
pub const TICK: f64 = 32.0;
pub const LEGEND: f64 = 32.0;
/// Line width of data series (pixels).
pub const LINE: u32 = 5;

/// The Okabe-Ito colours (distinguishable with colour-blindness).
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const SKY: RGBColor = RGBColor(86, 180, 233);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
pub const GREY: RGBColor = RGBColor(120, 120, 120);
pub const LIGHT_GREY: RGBColor = RGBColor(190, 190, 190);
pub const INK: RGBColor = RGBColor(20, 20, 20);

/// Colours of series that are not otherwise named (seeds, subnetworks).
pub const PALETTE: [RGBColor; 7] = [BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, YELLOW];

/// The colour of an outcome in every figure that shows outcomes: blue for a split (as the
/// fraction figure's "split"), sky for a split that later degraded, green for interconnected,
/// vermillion for degraded without a split (as the fraction figure's "degraded").
pub fn outcome_colour(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Separated => BLUE,
        Outcome::SeparatedDegraded => SKY,
        Outcome::Interconnected => GREEN,
        Outcome::DegradedUnsplit => VERMILLION,
    }
}

/// Registers the embedded font with plotters (once per process).
pub fn init_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded files are valid fonts; a failure would show as missing text.
        let _ = register_font(FAMILY, FontStyle::Normal, FONT_REGULAR);
        let _ = register_font(FAMILY, FontStyle::Bold, FONT_BOLD);
    });
}

/// A font of the figures' family.
pub fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&INK)
}

/// A bold font of the figures' family.
pub fn bold(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size, FontStyle::Bold).into_font()).color(&INK)
}

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("nothing to plot: {0}")]
    NoData(String),
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

impl PlotError {
    fn draw<E: std::fmt::Display>(e: E) -> PlotError {
        PlotError::Draw(e.to_string())
    }
}

/// Result of drawing on any backend.
pub type DrawResult = Result<(), PlotError>;

/// A figure that can be drawn on any plotters backend.
pub trait Draw {
    /// Size in pixels.
    fn size(&self) -> (u32, u32) {
        (1600, 1000)
    }
    /// Draws the figure on `root` (white background already filled).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// A drawn figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem, e.g. `fraction` (`fraction.svg`, `fraction.png`).
    pub name: String,
    /// One line saying what it shows.
    pub title: String,
    pub svg: String,
    /// PNG bytes, when asked for.
    pub png: Option<Vec<u8>>,
}

/// Draws `figure` as SVG text and, with `png`, PNG bytes.
pub fn render(figure: &impl Draw, name: &str, title: &str, png: bool) -> Result<Figure, PlotError> {
    init_fonts();
    let (w, h) = figure.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(PlotError::draw)?;
        figure.draw(&root)?;
        root.present().map_err(PlotError::draw)?;
    }
    let png = if png {
        let mut pixels = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(PlotError::draw)?;
            figure.draw(&root)?;
            root.present().map_err(PlotError::draw)?;
        }
        Some(encode_png(&pixels, w, h)?)
    } else {
        None
    };
    Ok(Figure {
        name: name.to_string(),
        title: title.to_string(),
        svg,
        png,
    })
}

/// Encodes RGB pixels as PNG.
pub fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| PlotError::Png(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| PlotError::Png(e.to_string()))?;
    }
    Ok(out)
}

/// What the figures of a sweep are drawn from, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The sweep's name, for titles.
    pub sweep: String,
    /// The shape of the levels figure (default: the largest network).
    pub shape: Option<Vec<usize>>,
    /// Also encode PNG.
    pub png: bool,
}

/// The axis a sweep's figures put on x: the first grid axis with several values among
/// extension level, width, weights, pruning levels, rate and target; with none, the extension
/// level when there is one, else the width.
pub fn x_axis(tasks: &[TaskResult]) -> Axis {
    const CANDIDATES: [Axis; 6] = [
        Axis::ExtensionLevel,
        Axis::Width,
        Axis::Weights,
        Axis::Levels,
        Axis::Rate,
        Axis::Target,
    ];
    stats::varying_axes(tasks, &CANDIDATES)
        .first()
        .copied()
        .unwrap_or_else(|| {
            if tasks.iter().any(|t| t.spec.extension_level.is_some()) {
                Axis::ExtensionLevel
            } else {
                Axis::Width
            }
        })
}

/// The axes that split a sweep into separate figures besides `x`: those that take several
/// values at one value of `x` (e.g. two base shapes over the same extension levels, or the
/// controls of issue 22: the ticket and random pruning, couplings, rewinds, one figure each).
pub fn facet_axes(tasks: &[TaskResult], x: Axis) -> Vec<Axis> {
    const CANDIDATES: [Axis; 10] = [
        Axis::Depth,
        Axis::Width,
        Axis::Shape,
        Axis::Rate,
        Axis::Levels,
        Axis::Target,
        Axis::Scope,
        Axis::Method,
        Axis::Coupling,
        Axis::RewindEpochs,
    ];
    let mut facets: Vec<Axis> = Vec::new();
    for axis in CANDIDATES {
        if axis == x {
            continue;
        }
        let mut by: Vec<Axis> = vec![x];
        by.extend(&facets);
        let coarse = stats::group_by(tasks, &by).len();
        by.push(axis);
        if stats::group_by(tasks, &by).len() > coarse {
            facets.push(axis);
        }
    }
    facets
}

/// Whether `axis` is best shown on a logarithmic scale.
pub fn log_axis(axis: Axis) -> bool {
    matches!(axis, Axis::Width | Axis::Weights)
}

/// Every figure of a sweep that its results allow: the fractions split, the outcomes, the
/// active weights at the split and the loss against active weights (one per facet), and the
/// weights per level of one shape.
pub fn sweep_figures(tasks: &[TaskResult], options: &Options) -> Result<Vec<Figure>, PlotError> {
    if tasks.iter().all(|t| t.levels.is_empty()) {
        return Err(PlotError::NoData(format!(
            "sweep {:?} has no stored levels yet",
            options.sweep
        )));
    }
    let mut figures = Vec::new();
    figures.extend(fraction::figures(tasks, options)?);
    figures.extend(outcomes::figures(tasks, options)?);
    figures.extend(active::figures(tasks, options)?);
    figures.extend(loss::figures(tasks, options)?);
    figures.push(levels::figure(tasks, options)?);
    Ok(figures)
}

/// The title of one facet's figure: `SWEEP: what (facet)`, the sweep and the facet when given.
pub fn facet_title(sweep: &str, what: &str, facet: &str) -> String {
    let mut title = String::new();
    if !sweep.is_empty() {
        title.push_str(&format!("{sweep}: "));
    }
    title.push_str(what);
    title.push_str(&facet_suffix(facet));
    title
}

/// ` (facet)` to append to a title or caption, or nothing for the whole sweep.
pub fn facet_suffix(facet: &str) -> String {
    if facet.is_empty() {
        String::new()
    } else {
        format!(" ({facet})")
    }
}

/// The file name of one facet's figure: `base`, or `base_<slug>` for a facet.
pub fn facet_name(base: &str, key: &[(Axis, stats::AxisValue)]) -> String {
    if key.is_empty() {
        base.to_string()
    } else {
        format!("{base}_{}", slug(key))
    }
}

/// A file-name-safe slug of a facet value, e.g. `depth-2_rate-0.32`.
pub fn slug(parts: &[(Axis, stats::AxisValue)]) -> String {
    parts
        .iter()
        .map(|(a, v)| {
            let value: String = v
                .to_string()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("{}-{}", a.name(), value.trim_matches('-'))
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// The values of some axes, e.g. a facet's key.
pub type Key = Vec<(Axis, stats::AxisValue)>;

/// Splits `tasks` by the values of `facets` (one group when there are none).
pub fn split_by(tasks: &[TaskResult], facets: &[Axis]) -> Vec<(Key, Vec<TaskResult>)> {
    let mut groups: std::collections::BTreeMap<Vec<stats::AxisValue>, Vec<TaskResult>> =
        std::collections::BTreeMap::new();
    for t in tasks {
        groups
            .entry(facets.iter().map(|a| a.value(&t.spec)).collect())
            .or_default()
            .push(t.clone());
    }
    groups
        .into_iter()
        .map(|(values, group)| (facets.iter().copied().zip(values).collect(), group))
        .collect()
}

/// A human description of a facet, e.g. `depth 2, rate 0.32`.
pub fn describe(parts: &[(Axis, stats::AxisValue)]) -> String {
    parts
        .iter()
        .map(|(a, v)| format!("{} {}", a.name().replace('_', " "), v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Tick labels of a log axis: 1, 10, 100, 1k, 10k, 100k, 1M.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", stats::format_float(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", stats::format_float(v / 1e3))
    } else {
        stats::format_float(v)
    }
}

/// A count to three significant digits with an SI suffix, for labels beside points: `112`,
/// `5.83k`, `79k`, `1.72M`.
pub fn si_short(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = match scaled.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

/// A legend entry's sample: a short thick line.
pub fn legend_line(colour: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 40, y)], colour.stroke_width(width))
}

/// A numeric axis: linear, or logarithmic (drawn in log10 space with readable ticks).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub log: bool,
    /// Range in drawing space (log10 of the values on a log scale).
    pub lo: f64,
    pub hi: f64,
    /// Tick positions in drawing space.
    pub ticks: Vec<f64>,
    /// Ticks are whole numbers.
    pub integer: bool,
}

impl Scale {
    /// A scale holding `values` with some padding; `integer` keeps ticks on whole numbers.
    pub fn fit(values: &[f64], log: bool, integer: bool) -> Scale {
        let finite: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let (min, max) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let (min, max) = if min.is_finite() {
            (min, max)
        } else {
            (1.0, 1.0)
        };
        if log {
            let (lo, hi) = (min.log10(), max.log10());
            let pad = ((hi - lo) * 0.06).max(0.12);
            let (lo, hi) = (lo - pad, hi + pad);
            let mut ticks = Vec::new();
            let span = hi - lo;
            let mantissas: &[f64] = if span < 1.2 {
                &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
            } else if span < 3.5 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
                for m in mantissas {
                    let t = (m * 10f64.powi(e)).log10();
                    if t >= lo && t <= hi {
                        ticks.push(t);
                    }
                }
            }
            Scale {
                log,
                lo,
                hi,
                ticks,
                integer,
            }
        } else {
            let span = (max - min).max(if integer { 1.0 } else { 1e-9 });
            let pad = if integer { 0.5 } else { span * 0.06 };
            let (lo, hi) = (min - pad, max + pad);
            let step = nice_step(span / 10.0, integer);
            let mut ticks = Vec::new();
            let mut t = (lo / step).ceil() * step;
            while t <= hi + 1e-9 {
                ticks.push(if t.abs() < 1e-12 { 0.0 } else { t });
                t += step;
            }
            Scale {
                log,
                lo,
                hi,
                ticks,
                integer,
            }
        }
    }

    /// The drawing position of a value.
    pub fn pos(&self, v: f64) -> f64 {
        if self.log {
            v.max(f64::MIN_POSITIVE).log10()
        } else {
            v
        }
    }

    /// The tick label at drawing position `p`.
    pub fn label(&self, p: f64) -> String {
        let v = if self.log { 10f64.powf(p) } else { p };
        if self.log && self.integer && v < 1e5 {
            format!("{}", v.round() as i64)
        } else if self.log {
            si((v * 1000.0).round() / 1000.0)
        } else if self.integer {
            format!("{}", v.round() as i64)
        } else {
            stats::format_float(v)
        }
    }

    /// A small offset in drawing space (to set series side by side).
    pub fn nudge(&self, fraction: f64) -> f64 {
        (self.hi - self.lo) * fraction
    }
}

/// A plotters coordinate over `lo..hi` with exactly the given ticks (labelled by the chart's
/// formatter).
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
}

impl Ranged for Ticks {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points().max(1);
        let n = self.ticks.len();
        if n <= max {
            return self.ticks.clone();
        }
        let every = n.div_ceil(max);
        self.ticks.iter().copied().step_by(every).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl Scale {
    /// The plotters coordinate of this scale.
    pub fn coord(&self) -> Ticks {
        Ticks {
            lo: self.lo,
            hi: self.hi,
            ticks: self.ticks.clone(),
        }
    }
}

/// The smallest 1, 2 or 5 times a power of ten at least `raw` (at least 1 when `integer`).
pub fn nice_step(raw: f64, integer: bool) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw
    } else {
        1.0
    };
    let e = raw.log10().floor();
    let base = 10f64.powf(e);
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|&s| s >= raw * 0.999)
        .unwrap_or(10.0 * base);
    if integer {
        step.max(1.0).round()
    } else {
        step
    }
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Line,
    Dashed,
    Circle,
    Triangle,
    Square,
    /// An x-shaped cross.
    Cross,
    /// A filled band (a range).
    Band,
}

/// One entry of a legend row.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub colour: RGBColor,
    pub marks: Vec<Mark>,
}

impl LegendEntry {
    pub fn new(label: impl Into<String>, colour: RGBColor, marks: &[Mark]) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            colour,
            marks: marks.to_vec(),
        }
    }
}

/// Draws a marker centred on a pixel position.
pub fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: Mark,
    (x, y): (i32, i32),
    colour: RGBColor,
    size: i32,
) -> DrawResult {
    let r = size;
    match mark {
        Mark::Line => area.draw(&PathElement::new(
            vec![(x - 28, y), (x + 28, y)],
            colour.stroke_width(LINE),
        )),
        Mark::Dashed => {
            for k in 0..3 {
                let x0 = x - 28 + k * 21;
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 12, y)],
                    colour.stroke_width(LINE),
                ))
                .map_err(PlotError::draw)?;
            }
            Ok(())
        }
        Mark::Circle => area.draw(&Circle::new((x, y), r, colour.filled())),
        Mark::Triangle => area.draw(&Polygon::new(
            vec![(x, y - r - 2), (x - r - 2, y + r), (x + r + 2, y + r)],
            colour.filled(),
        )),
        Mark::Square => area.draw(&Rectangle::new(
            [(x - r, y - r), (x + r, y + r)],
            colour.filled(),
        )),
        Mark::Cross => area
            .draw(&PathElement::new(
                vec![(x - r, y - r), (x + r, y + r)],
                colour.stroke_width(4),
            ))
            .and_then(|_| {
                area.draw(&PathElement::new(
                    vec![(x - r, y + r), (x + r, y - r)],
                    colour.stroke_width(4),
                ))
            }),
        Mark::Band => area.draw(&Rectangle::new(
            [(x - 28, y - 12), (x + 28, y + 12)],
            colour.mix(0.25).filled(),
        )),
    }
    .map_err(PlotError::draw)
}

/// The house style of every chart's mesh: large labels, a light grid, thick axes.
pub fn house_mesh<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.axis_desc_style(font(LABEL))
        .label_style(font(TICK))
        .bold_line_style(RGBColor(225, 225, 225).stroke_width(2))
        .light_line_style(TRANSPARENT)
        .axis_style(INK.stroke_width(3))
        .set_all_tick_mark_size(10)
}

/// Draws `text` as a centred title line at the top of `area` (bold when `strong`), in a
/// smaller size where it would not fit the width (a long sweep name and shape), and returns
/// the area below it.
pub fn title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: f64,
    strong: bool,
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let height = (size * 1.7) as u32;
    let (band, rest) = area.split_vertically(height);
    let (w, h) = band.dim_in_pixel();
    let style_of = |size: f64| if strong { bold(size) } else { font(size) };
    let room = w.saturating_sub(60) as f64;
    let wide = band
        .estimate_text_size(text, &style_of(size))
        .map_err(PlotError::draw)?
        .0 as f64;
    let style = if wide > room && wide > 0.0 {
        style_of((size * room / wide).max(size * 0.5))
    } else {
        style_of(size)
    };
    band.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2 + (size * 0.1) as i32),
        style.pos(Pos::new(HPos::Center, VPos::Center)),
    ))
    .map_err(PlotError::draw)?;
    Ok(rest)
}

/// Draws legend entries (marks, then the label) in centred rows at the top of `area`,
/// wrapping as needed, and returns the area below them.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    const ROW: i32 = 54;
    const GAP: i32 = 48;
    let style = font(LEGEND);
    let (w, _) = area.dim_in_pixel();
    let sizes: Vec<i32> = entries
        .iter()
        .map(|e| {
            let (tw, _) = area
                .estimate_text_size(&e.label, &style)
                .unwrap_or((e.label.len() as u32 * 18, 30));
            let marks = if e.marks.is_empty() { 0 } else { 70 };
            marks + tw as i32 + GAP
        })
        .collect();
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 0;
    for (i, &s) in sizes.iter().enumerate() {
        if used + s > w as i32 - 60 && rows.last().is_some_and(|r| !r.is_empty()) {
            rows.push(Vec::new());
            used = 0;
        }
        if let Some(row) = rows.last_mut() {
            row.push(i);
        }
        used += s;
    }
    let (band, rest) = area.split_vertically(ROW as u32 * rows.len() as u32 + 10);
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|&i| sizes[i]).sum::<i32>() - GAP;
        let mut x = (w as i32 - total) / 2;
        let y = r as i32 * ROW + ROW / 2;
        for &i in row {
            let e = &entries[i];
            let mut text_x = x;
            if !e.marks.is_empty() {
                for &m in &e.marks {
                    draw_mark(&band, m, (x + 30, y), e.colour, 11)?;
                }
                text_x += 70;
            }
            band.draw(&Text::new(
                e.label.clone(),
                (text_x, y),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(PlotError::draw)?;
            x += sizes[i];
        }
    }
    Ok(rest)
}

/// Ticks at the values themselves when there are few distinct ones (a discrete axis).
pub fn discrete_scale(values: &[f64], log: bool, integer: bool) -> Scale {
    let mut scale = Scale::fit(values, log, integer);
    let mut distinct: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let spaced = distinct.windows(2).all(|w| {
        let gap = scale.pos(w[1]) - scale.pos(w[0]);
        gap >= (scale.hi - scale.lo) / 40.0
    });
    if !distinct.is_empty() && distinct.len() <= 16 && spaced {
        scale.ticks = distinct.iter().map(|&v| scale.pos(v)).collect();
    }
    scale
}

/// Hand-built and synthetic tasks for the figures' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use shared::graph::Status;
    use shared::metrics::LevelMetrics;
    use shared::spec::{DataSpec, PruneSpec, Scope, TaskSpec, TrainSpec};

    use crate::data::TaskResult;

    /// A network of extension level `extension` (hidden width `8 + 2 * extension`), pruned in
    /// three levels to 400, 200, 100 and 40 weights.
    pub fn spec(extension: usize, seed: u64) -> TaskSpec {
        let width = 8 + 2 * extension;
        TaskSpec {
            data: DataSpec::protocol(),
            shape: vec![4, width, width, 2],
            extension_level: Some(extension),
            train: TrainSpec::protocol(),
            prune: PruneSpec {
                scope: Scope::Global,
                method: Default::default(),
                rate: 0.32,
                levels: 3,
                target: 40,
                remaining: vec![400, 200, 100, 40],
                stop_at_first_degraded: false,
                stop_at_first_split: false,
            },
            seed,
        }
    }

    /// One level with the given weights and held-out loss.
    pub fn level(
        level: usize,
        status: Status,
        remaining: usize,
        active: usize,
        loss: f64,
    ) -> LevelMetrics {
        LevelMetrics {
            level,
            remaining_weights: remaining,
            active_weights: active,
            zombie_weights: 0,
            inactive_weights: remaining - active,
            active_neurons: 0,
            zombie_neurons: 0,
            inactive_neurons: 0,
            components: 1,
            status,
            coverage: vec![],
            test_accuracy: vec![0.9, 0.9],
            test_loss: loss,
            train_loss: 0.0,
            epochs: 1,
            seconds: 0.0,
            engine: 2,
            arithmetic: String::new(),
            kept_per_layer: Vec::new(),
        }
    }

    /// A task with the given levels `(status, remaining, active, loss)`, numbered from 0.
    pub fn task_with(
        idx: usize,
        spec: TaskSpec,
        done: bool,
        levels: &[(Status, usize, usize, f64)],
    ) -> TaskResult {
        TaskResult {
            idx,
            spec,
            done,
            levels: levels
                .iter()
                .enumerate()
                .map(|(l, &(s, remaining, active, loss))| level(l, s, remaining, active, loss))
                .collect(),
        }
    }

    /// A task whose levels have `statuses`, the schedule's remaining weights, half of them
    /// active, and a loss of 0.1 per level (from 0.1 at the dense network).
    pub fn task(
        idx: usize,
        extension: usize,
        seed: u64,
        done: bool,
        statuses: &[Status],
    ) -> TaskResult {
        let spec = spec(extension, seed);
        let levels: Vec<(Status, usize, usize, f64)> = statuses
            .iter()
            .enumerate()
            .map(|(l, &s)| {
                let remaining = spec.prune.remaining[l];
                (s, remaining, remaining / 2, 0.1 * (l + 1) as f64)
            })
            .collect();
        task_with(idx, spec, done, &levels)
    }

    /// Synthetic finished tasks of a sweep file (every level, masks from the testkit).
    pub fn synthetic_sweep(yaml: &str) -> Vec<TaskResult> {
        let sweep = shared::sweep::Sweep::from_yaml(yaml, "t.yaml").unwrap();
        sweep
            .expand()
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(idx, spec)| {
                let levels = (0..=spec.prune.levels)
                    .map(|l| {
                        let masks = shared::synthetic::synthetic_masks(&spec, l);
                        shared::synthetic::synthetic_metrics(&spec, l, &masks)
                    })
                    .collect();
                TaskResult {
                    idx,
                    spec,
                    done: true,
                    levels,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod si_tests {
    use super::si_short;

    #[test]
    fn short_counts_keep_three_digits() {
        assert_eq!(si_short(112.0), "112");
        assert_eq!(si_short(5832.0), "5.83k");
        assert_eq!(si_short(78952.0), "79k");
        assert_eq!(si_short(170560.0), "171k");
        assert_eq!(si_short(1_723_960.0), "1.72M");
        assert_eq!(si_short(2000.0), "2k");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Square;

    impl Draw for Square {
        fn size(&self) -> (u32, u32) {
            (400, 200)
        }
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
            root.draw(&Rectangle::new([(10, 10), (100, 100)], BLUE.filled()))
                .map_err(PlotError::draw)?;
            root.draw(&Text::new("Hello poster", (150, 80), font(LABEL)))
                .map_err(PlotError::draw)?;
            Ok(())
        }
    }

    #[test]
    fn renders_svg_and_png_with_the_embedded_font() {
        let f = render(&Square, "square", "A square", true).unwrap();
        assert!(f.svg.starts_with("<svg"), "{}", &f.svg[..50]);
        assert!(f.svg.contains("Hello poster"));
        let png = f.png.unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // Text was rasterised: some dark pixels right of the square.
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (400, 200));
        let dark = (0..200usize)
            .flat_map(|y| (150..400usize).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(y * 400 + x) * 3] < 100)
            .count();
        assert!(dark > 200, "text drew {dark} dark pixels");
    }

    #[test]
    fn si_ticks() {
        assert_eq!(si(112.0), "112");
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(1_723_960.0), "1.724M");
    }

    fn tasks_of(yaml: &str) -> Vec<TaskResult> {
        fixtures::synthetic_sweep(yaml)
    }

    #[test]
    fn figures_follow_what_the_sweep_varies() {
        // Extension levels: x is the extension level, one figure of each kind.
        let tasks = tasks_of(
            "name: e\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: [0, 1, 3]\nseeds: 2\n",
        );
        assert_eq!(x_axis(&tasks), Axis::ExtensionLevel);
        assert!(facet_axes(&tasks, Axis::ExtensionLevel).is_empty());
        let options = Options {
            sweep: "e".into(),
            shape: None,
            png: false,
        };
        let names: Vec<String> = sweep_figures(&tasks, &options)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            vec!["fraction", "outcomes", "active", "loss", "levels"]
        );

        // The fraction figure's points are the grouped statistics.
        let figure = fraction::FractionFigure::new(String::new(), &tasks, Axis::ExtensionLevel);
        let groups = stats::group_by(&tasks, &[Axis::ExtensionLevel]);
        assert_eq!(figure.points.len(), 3);
        for (p, g) in figure.points.iter().zip(&groups) {
            assert_eq!(Some(p.x), g.value(Axis::ExtensionLevel).unwrap().as_f64());
            assert_eq!(
                (p.split, p.degraded, p.ever_split),
                (g.split, g.degraded, g.ever_split)
            );
        }
        assert_eq!(
            figure.points.iter().map(|p| p.width).collect::<Vec<_>>(),
            vec![Some(8), Some(10), Some(16)]
        );

        // The levels figure shows the largest network, every level, over both seeds.
        let point = levels::chosen_point(&tasks, None).unwrap();
        assert_eq!(point.len(), 2);
        assert!(point.iter().all(|t| t.spec.shape == vec![4, 16, 16, 2]));
        let chosen = levels::chosen_point(&tasks, Some(&[4, 10, 10, 2])).unwrap();
        assert!(chosen.iter().all(|t| t.spec.shape == vec![4, 10, 10, 2]));
        assert!(levels::chosen_point(&tasks, Some(&[4, 9, 2])).is_none());

        // Two bases over the same extension levels: one figure per depth.
        let tasks = tasks_of(
            "name: b\nmodel:\n  base: [[4, 20, 2], [4, 4, 4, 4, 2]]\n  extension_levels: [0, 1]\nseeds: 1\n",
        );
        assert_eq!(facet_axes(&tasks, Axis::ExtensionLevel), vec![Axis::Depth]);
        let names: Vec<String> = fraction::figures(&tasks, &options)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, vec!["fraction_depth-1", "fraction_depth-3"]);

        // The controls: the ticket and random pruning, one figure each.
        let tasks = tasks_of(
            "name: c\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: [0, 1]\npruning:\n  method: [magnitude, random]\nseeds: 1\n",
        );
        assert_eq!(facet_axes(&tasks, Axis::ExtensionLevel), vec![Axis::Method]);
        let names: Vec<String> = fraction::figures(&tasks, &options)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            vec!["fraction_method-magnitude", "fraction_method-random"]
        );

        // A fixed shape over level counts: x is the number of levels.
        let tasks = tasks_of(
            "name: l\nmodel:\n  shape: [4, 12, 12, 2]\npruning:\n  levels: [1, 2, 3]\n  target: 40\nseeds: 1\n",
        );
        assert_eq!(x_axis(&tasks), Axis::Levels);
        assert_eq!(active::x_axis(&tasks), Axis::Levels);
    }

    #[test]
    fn scales_tick_readably() {
        let s = Scale::fit(&[0.0, 25.0], false, true);
        assert_eq!(s.ticks.first(), Some(&0.0));
        assert!(s.ticks.len() <= 14);
        let d = discrete_scale(&[0.0, 2.0, 4.0, 11.0], false, true);
        assert_eq!(d.ticks, vec![0.0, 2.0, 4.0, 11.0]);
        let log = Scale::fit(&[112.0, 1_723_960.0], true, true);
        assert!(
            log.ticks.iter().all(|t| (t.fract()).abs() < 1e-9),
            "{:?}",
            log.ticks
        );
        assert_eq!(log.label(3.0), "1000");
        assert_eq!(log.label(6.0), "1M");
        assert_eq!(nice_step(0.7, true), 1.0);
        assert_eq!(nice_step(0.07, false), 0.1);
        assert_eq!(nice_step(13.0, true), 20.0);
    }
}

#[cfg(test)]
mod title_tests {
    use super::*;

    /// The `font-size` of the first text of an SVG drawn with one title of `text`.
    fn title_size(text: &str) -> f64 {
        init_fonts();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (1600, 200)).into_drawing_area();
            title(&root, text, TITLE, true).unwrap();
            root.present().unwrap();
        }
        let at = svg.find("font-size=\"").expect("a text") + "font-size=\"".len();
        svg[at..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn a_title_too_wide_for_the_figure_is_set_smaller() {
        // The SVG writes plotters' own unit: compare sizes with a title that fits.
        let fits = title_size("poster-levels: networks that split");
        assert_eq!(fits, title_size("e3"));
        let long = "poster-levels-with-a-long-name: weights by pruning level, \
                    (4,410,410,2), 20 levels at rate 0.3069";
        let size = title_size(long);
        assert!(size < fits && size >= fits * 0.5, "{size} against {fits}");
    }
}
