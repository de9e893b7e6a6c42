//! Figure 4: one ticket (a task at one level) drawn as a layered network: neurons in columns,
//! active weights as edges coloured by subnetwork, zombie and inactive weights faded, the
//! problems' inputs and outputs labelled. Hidden neurons without any kept weight are left out
//! (the column says how many there are).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use shared::graph::LayerMask;
use shared::metrics::LevelMetrics;
use shared::spec::{Problem, TaskSpec};

use super::{
    font, DrawResult, Figure, LegendEntry, Mark, PlotError, GREY, INK, LABEL, LEGEND, LIGHT_GREY,
    PALETTE, TICK, TITLE,
};
use crate::stats;
use shared::graph::{Class, Ticket};

/// Zombie weights and neurons.
const FADED_PURPLE: RGBColor = RGBColor(232, 188, 213);

/// The most kept weights a ticket figure draws.
pub const MAX_EDGES: usize = 60_000;

/// The name of a problem, e.g. `circles`.
pub fn problem_name(problem: &Problem) -> &'static str {
    match problem {
        Problem::Circles { .. } => "circles",
        Problem::Moons { .. } => "moons",
        Problem::Xor { .. } => "xor",
        Problem::Spirals { .. } => "spirals",
        Problem::Blobs { .. } => "blobs",
    }
}

/// The figure of one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFigure {
    pub title: String,
    pub subtitle: String,
    pub ticket: Ticket,
    pub problems: Vec<String>,
}

impl TicketFigure {
    /// The ticket of `spec` at the level whose metrics and masks are given.
    pub fn new(
        sweep: &str,
        spec: &TaskSpec,
        metrics: Option<&LevelMetrics>,
        level: usize,
        masks: &[LayerMask],
    ) -> TicketFigure {
        let ticket = Ticket::from_masks(masks, &spec.task_io());
        let (active, zombie, inactive) = ticket.weight_counts();
        let mut title = String::new();
        if !sweep.is_empty() {
            title.push_str(&format!("{sweep}: "));
        }
        title.push_str(&format!(
            "ticket of task {} {} seed {}, level {}",
            spec.id(),
            stats::shape_name(&spec.shape),
            spec.seed,
            level
        ));
        let mut subtitle = format!(
            "{} weights: {active} active, {zombie} zombie, {inactive} inactive; {} subnetwork{}",
            active + zombie + inactive,
            ticket.components,
            if ticket.components == 1 { "" } else { "s" }
        );
        if let Some(m) = metrics {
            subtitle = format!("{} \u{2014} {subtitle}", m.status.as_str());
            if !m.test_accuracy.is_empty() {
                let acc: Vec<String> = m
                    .test_accuracy
                    .iter()
                    .map(|a| format!("{:.1}%", a * 100.0))
                    .collect();
                subtitle.push_str(&format!("; test accuracy {}", acc.join(" / ")));
            }
        }
        TicketFigure {
            title,
            subtitle,
            ticket,
            problems: spec
                .data
                .problems
                .iter()
                .map(|p| problem_name(p).to_string())
                .collect(),
        }
    }

    fn component_colour(&self, c: Option<usize>) -> RGBColor {
        c.map_or(GREY, |c| PALETTE[c % PALETTE.len()])
    }

    fn component_label(&self, c: usize) -> String {
        let tasks = &self.ticket.component_tasks[c];
        let names: Vec<String> = tasks
            .iter()
            .map(|&t| {
                let name = self
                    .problems
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| format!("problem {}", t + 1));
                let io = &self.ticket.tasks[t];
                let ins: Vec<String> = io.inputs.iter().map(|i| format!("x{}", i + 1)).collect();
                let outs: Vec<String> = io.outputs.iter().map(|o| format!("y{}", o + 1)).collect();
                format!("{name} ({} \u{2192} {})", ins.join(","), outs.join(","))
            })
            .collect();
        format!("subnetwork {}: {}", c + 1, names.join(" + "))
    }

    /// Vertical order of the drawn neurons of every layer (indices into the layer).
    fn order(&self) -> Vec<Vec<usize>> {
        let t = &self.ticket;
        let last = t.shape.len().saturating_sub(1);
        let mut order: Vec<Vec<usize>> = Vec::with_capacity(t.shape.len());
        let mut rank: Vec<Vec<f64>> = Vec::with_capacity(t.shape.len());
        for (l, neurons) in t.neurons.iter().enumerate() {
            let drawn: Vec<usize> = neurons
                .iter()
                .filter(|n| l == 0 || l == last || n.degree > 0)
                .map(|n| n.index)
                .collect();
            let mut keyed: Vec<(usize, usize, f64, usize)> = drawn
                .iter()
                .map(|&i| {
                    let n = &neurons[i];
                    let class = match n.class {
                        Class::Active => 0,
                        Class::Zombie => 1,
                        Class::Inactive => 2,
                    };
                    // Barycentre of the drawn predecessors.
                    let bary = if l == 0 || l == last {
                        i as f64
                    } else {
                        let ys: Vec<f64> = t
                            .edges
                            .iter()
                            .filter(|e| e.layer + 1 == l && e.to == i)
                            .filter_map(|e| rank[l - 1].get(e.from).copied())
                            .filter(|v| v.is_finite())
                            .collect();
                        if ys.is_empty() {
                            f64::INFINITY
                        } else {
                            ys.iter().sum::<f64>() / ys.len() as f64
                        }
                    };
                    let component = if l == 0 || l == last {
                        0
                    } else {
                        n.component.unwrap_or(usize::MAX)
                    };
                    (
                        class.min(if l == 0 || l == last { 0 } else { 2 }),
                        component,
                        bary,
                        i,
                    )
                })
                .collect();
            keyed.sort_by(|a, b| {
                (a.0, a.1)
                    .cmp(&(b.0, b.1))
                    .then(a.2.total_cmp(&b.2))
                    .then(a.3.cmp(&b.3))
            });
            let layer_order: Vec<usize> = keyed.iter().map(|k| k.3).collect();
            let mut r = vec![f64::NAN; neurons.len()];
            for (pos, &i) in layer_order.iter().enumerate() {
                r[i] = (pos as f64 + 0.5) / layer_order.len().max(1) as f64;
            }
            rank.push(r);
            order.push(layer_order);
        }
        order
    }
}

impl super::Draw for TicketFigure {
    fn size(&self) -> (u32, u32) {
        (1600, 1200)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::title(root, &self.title, TITLE, true)?;
        let area = area
            .titled(&self.subtitle, font(LEGEND))
            .map_err(PlotError::draw)?;
        let t = &self.ticket;
        let mut entries: Vec<LegendEntry> = (0..t.components)
            .map(|c| {
                LegendEntry::new(
                    self.component_label(c),
                    self.component_colour(Some(c)),
                    &[Mark::Line],
                )
            })
            .collect();
        let (_, zombie, inactive) = t.weight_counts();
        if zombie > 0 {
            entries.push(LegendEntry::new("zombie", FADED_PURPLE, &[Mark::Line]));
        }
        if inactive > 0 {
            entries.push(LegendEntry::new("inactive", LIGHT_GREY, &[Mark::Line]));
        }
        let body = super::legend(&area, &entries)?;

        let (w, h) = body.dim_in_pixel();
        let (w, h) = (w as f64, h as f64);
        let (left, right, top, bottom) = (230.0, 230.0, 30.0, 80.0);
        let layers = t.shape.len();
        if layers < 2 {
            return Ok(());
        }
        let order = self.order();
        let col_x = |l: usize| left + (w - left - right) * l as f64 / (layers - 1) as f64;
        let span = h - top - bottom;
        let mut pos: Vec<Vec<(i32, i32)>> =
            t.neurons.iter().map(|n| vec![(-1, -1); n.len()]).collect();
        let mut radius: Vec<i32> = Vec::with_capacity(layers);
        for (l, layer_order) in order.iter().enumerate() {
            let k = layer_order.len().max(1) as f64;
            let step = (span / k).min(110.0);
            radius.push((step * 0.38).clamp(2.5, 16.0) as i32);
            let start = top + (span - step * (k - 1.0)) / 2.0;
            for (p, &i) in layer_order.iter().enumerate() {
                pos[l][i] = (col_x(l) as i32, (start + step * p as f64) as i32);
            }
        }

        // Edges: faded first, active on top.
        let active_edges = t.edges.iter().filter(|e| e.class == Class::Active).count();
        let active_width = match active_edges {
            0..=400 => 4,
            401..=3000 => 2,
            _ => 1,
        };
        let faded_width = if t.edges.len() > 3000 { 1 } else { 2 };
        for pass in [Class::Inactive, Class::Zombie, Class::Active] {
            for e in t.edges.iter().filter(|e| e.class == pass) {
                let (a, b) = (pos[e.layer][e.from], pos[e.layer + 1][e.to]);
                let style = match e.class {
                    Class::Active => self
                        .component_colour(e.component)
                        .stroke_width(active_width),
                    Class::Zombie => FADED_PURPLE.stroke_width(faded_width),
                    Class::Inactive => LIGHT_GREY.mix(0.6).stroke_width(faded_width),
                };
                body.draw(&PathElement::new(vec![a, b], style))
                    .map_err(PlotError::draw)?;
            }
        }
        // Neurons.
        for (l, layer_order) in order.iter().enumerate() {
            for &i in layer_order {
                let n = &t.neurons[l][i];
                let fill = match n.class {
                    Class::Active => self.component_colour(n.component).filled(),
                    Class::Zombie => FADED_PURPLE.filled(),
                    Class::Inactive => LIGHT_GREY.filled(),
                };
                let at = pos[l][i];
                let r = radius[l];
                body.draw(&Circle::new(at, r, fill))
                    .map_err(PlotError::draw)?;
                if r >= 5 {
                    body.draw(&Circle::new(at, r, WHITE.stroke_width(2)))
                        .map_err(PlotError::draw)?;
                }
            }
        }
        // Labels of inputs and outputs, and the neuron counts of the columns.
        let last = layers - 1;
        for (l, anchor, dx) in [
            (0, HPos::Right, -(radius[0] + 14)),
            (last, HPos::Left, radius[last] + 14),
        ] {
            for &i in &order[l] {
                let (x, y) = pos[l][i];
                let problem = t
                    .task_of(l, i)
                    .and_then(|p| self.problems.get(p).cloned())
                    .unwrap_or_default();
                let label = if problem.is_empty() {
                    t.neuron_label(l, i)
                } else if l == 0 {
                    format!("{} {}", problem, t.neuron_label(l, i))
                } else {
                    format!("{} {}", t.neuron_label(l, i), problem)
                };
                body.draw(&Text::new(
                    label,
                    (x + dx, y),
                    font(LABEL).pos(Pos::new(anchor, VPos::Center)),
                ))
                .map_err(PlotError::draw)?;
            }
        }
        for (l, layer_order) in order.iter().enumerate() {
            let shown = layer_order.len();
            let total = t.shape[l];
            let name = if l == 0 {
                "inputs".to_string()
            } else if l == last {
                "outputs".to_string()
            } else {
                format!("hidden {l}")
            };
            let text = if shown == total {
                format!("{name}: {total}")
            } else {
                format!("{name}: {shown} of {total}")
            };
            body.draw(&Text::new(
                text,
                (col_x(l) as i32, (h - bottom / 2.0) as i32),
                font(TICK)
                    .color(&GREY)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(PlotError::draw)?;
        }
        let _ = INK;
        Ok(())
    }
}

/// Draws the ticket of `spec` at `level` from its masks.
pub fn figure(
    sweep: &str,
    spec: &TaskSpec,
    metrics: Option<&LevelMetrics>,
    level: usize,
    masks: &[LayerMask],
    png: bool,
) -> Result<Figure, PlotError> {
    let kept: usize = masks.iter().map(|m| m.kept.len()).sum();
    if kept > MAX_EDGES {
        return Err(PlotError::NoData(format!(
            "level {level} keeps {kept} weights, more than the {MAX_EDGES} a ticket figure draws: \
             pick a later level"
        )));
    }
    shared::graph::validate_masks(&spec.shape, masks)
        .map_err(|e| PlotError::NoData(format!("stored masks do not fit the task: {e}")))?;
    let figure = TicketFigure::new(sweep, spec, metrics, level, masks);
    let name = format!("ticket_{}_level{}", spec.id(), level);
    let caption = format!(
        "The ticket of task {} {} seed {} at level {}: {}",
        spec.id(),
        stats::shape_name(&spec.shape),
        spec.seed,
        level,
        figure.subtitle
    );
    super::render(&figure, &name, &caption, png)
}
