//! One ticket as a drawable graph: every neuron and kept weight classified (active, zombie,
//! inactive) and every active one labelled with its subnetwork, plus the GraphML and DOT
//! exports of the active graph. Pure functions over masks.
//!
//! The definitions are docs/PROTOCOL.md's ("The ticket as a graph") and the passes are
//! [`super::analyze`]'s: this module keeps the per-neuron and per-weight detail that a figure
//! or a network tool needs, where `analyze` only counts. Components are numbered by their
//! smallest `(layer, index)` neuron.

use std::fmt::Write as _;

use super::passes::{for_each_row, Passes};
use super::{LayerMask, TaskIo};

/// What a neuron or weight is (docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Reachable from an input and reaching an output.
    Active,
    /// Reaches an output, no input reaches it.
    Zombie,
    /// Reaches no output.
    Inactive,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Active => "active",
            Class::Zombie => "zombie",
            Class::Inactive => "inactive",
        }
    }
}

/// A neuron of the ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Neuron {
    pub layer: usize,
    pub index: usize,
    pub class: Class,
    /// The active subnetwork it belongs to (active neurons only).
    pub component: Option<usize>,
    /// Kept weights into or out of it.
    pub degree: usize,
}

/// A kept weight: from neuron `from` of layer `layer` to neuron `to` of layer `layer + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub layer: usize,
    pub from: usize,
    pub to: usize,
    pub class: Class,
    pub component: Option<usize>,
}

/// A ticket: its neurons (layer by layer), its kept weights and its subnetworks.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// Layer widths, inputs first.
    pub shape: Vec<usize>,
    /// `neurons[layer][index]`.
    pub neurons: Vec<Vec<Neuron>>,
    pub edges: Vec<Edge>,
    /// Number of subnetworks (connected components of the active weights).
    pub components: usize,
    /// The problems each component serves fully or partly (by input or output), in order.
    pub component_tasks: Vec<Vec<usize>>,
    pub tasks: Vec<TaskIo>,
}

impl Ticket {
    /// Classifies the kept weights of `masks` (which must pass `shared::graph::validate_masks`
    /// for their shape). `tasks` say which inputs and outputs belong to each problem.
    pub fn from_masks(masks: &[LayerMask], tasks: &[TaskIo]) -> Ticket {
        let mut shape: Vec<usize> = Vec::with_capacity(masks.len() + 1);
        if let Some(first) = masks.first() {
            shape.push(first.fan_in);
        }
        shape.extend(masks.iter().map(|m| m.fan_out));
        if masks.is_empty() {
            return Ticket {
                shape,
                neurons: Vec::new(),
                edges: Vec::new(),
                components: 0,
                component_tasks: Vec::new(),
                tasks: tasks.to_vec(),
            };
        }
        let layers = shape.len();
        let passes = Passes::new(masks);
        let (labels, _) = passes.components(masks);
        let offsets = &passes.offsets;
        let (fed, useful) = (&passes.fed, &passes.useful);
        let class = |x: usize| match (fed[x], useful[x]) {
            (_, false) => Class::Inactive,
            (false, true) => Class::Zombie,
            (true, true) => Class::Active,
        };
        let mut degree = vec![0usize; passes.neurons()];
        let mut edges = Vec::with_capacity(masks.iter().map(|m| m.kept.len()).sum());
        for (l, m) in masks.iter().enumerate() {
            for_each_row(m, |o, base, row| {
                let v = offsets[l + 1] + o;
                for &k in row {
                    let i = k as usize - base;
                    let u = offsets[l] + i;
                    degree[u] += 1;
                    degree[v] += 1;
                    let class = if !useful[v] {
                        Class::Inactive
                    } else if !fed[u] {
                        Class::Zombie
                    } else {
                        Class::Active
                    };
                    edges.push(Edge {
                        layer: l,
                        from: i,
                        to: o,
                        class,
                        component: (class == Class::Active).then(|| labels.of(u)).flatten(),
                    });
                }
            });
        }
        let components = labels.count;
        let component_of = |x: usize| labels.of(x);
        let neurons: Vec<Vec<Neuron>> = (0..layers)
            .map(|l| {
                (0..shape[l])
                    .map(|i| {
                        let x = offsets[l] + i;
                        Neuron {
                            layer: l,
                            index: i,
                            class: class(x),
                            component: component_of(x),
                            degree: degree[x],
                        }
                    })
                    .collect()
            })
            .collect();
        let mut component_tasks = vec![Vec::new(); components];
        for (t, task) in tasks.iter().enumerate() {
            let io = task
                .inputs
                .iter()
                .filter_map(|&i| neurons.first()?.get(i))
                .chain(task.outputs.iter().filter_map(|&o| neurons.last()?.get(o)));
            for neuron in io {
                if let Some(c) = neuron.component {
                    if !component_tasks[c].contains(&t) {
                        component_tasks[c].push(t);
                    }
                }
            }
        }
        Ticket {
            shape,
            neurons,
            edges,
            components,
            component_tasks,
            tasks: tasks.to_vec(),
        }
    }

    /// Kept weights of each class: `(active, zombie, inactive)`.
    pub fn weight_counts(&self) -> (usize, usize, usize) {
        let count = |c: Class| self.edges.iter().filter(|e| e.class == c).count();
        (
            count(Class::Active),
            count(Class::Zombie),
            count(Class::Inactive),
        )
    }

    /// Neurons of each class: `(active, zombie, inactive)`.
    pub fn neuron_counts(&self) -> (usize, usize, usize) {
        let count = |c: Class| {
            self.neurons
                .iter()
                .flatten()
                .filter(|n| n.class == c)
                .count()
        };
        (
            count(Class::Active),
            count(Class::Zombie),
            count(Class::Inactive),
        )
    }

    /// The label of a neuron: `x1..` for inputs, `y1..` for outputs, `h<layer>_<i>` for hidden
    /// units (1-based, as the protocol names them).
    pub fn neuron_label(&self, layer: usize, index: usize) -> String {
        if layer == 0 {
            format!("x{}", index + 1)
        } else if layer + 1 == self.shape.len() {
            format!("y{}", index + 1)
        } else {
            format!("h{}_{}", layer, index + 1)
        }
    }

    /// The problem an input or output column belongs to.
    pub fn task_of(&self, layer: usize, index: usize) -> Option<usize> {
        if layer == 0 {
            self.tasks.iter().position(|t| t.inputs.contains(&index))
        } else if layer + 1 == self.shape.len() {
            self.tasks.iter().position(|t| t.outputs.contains(&index))
        } else {
            None
        }
    }

    fn node_id(layer: usize, index: usize) -> String {
        format!("n{layer}_{index}")
    }

    /// The active graph as GraphML: the active neurons as nodes (layer, index, label,
    /// component, problem of inputs and outputs) and the active weights as directed edges
    /// (layer, component); with `all`, also the zombie and inactive ones, with their class.
    pub fn to_graphml(&self, all: bool) -> String {
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(
            "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
             http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        );
        for (id, on, name, kind) in [
            ("layer", "node", "layer", "int"),
            ("index", "node", "index", "int"),
            ("label", "node", "label", "string"),
            ("class", "node", "class", "string"),
            ("component", "node", "component", "int"),
            ("problem", "node", "problem", "int"),
            ("elayer", "edge", "layer", "int"),
            ("eclass", "edge", "class", "string"),
            ("ecomponent", "edge", "component", "int"),
        ] {
            let _ = writeln!(
                out,
                "  <key id=\"{id}\" for=\"{on}\" attr.name=\"{name}\" attr.type=\"{kind}\"/>"
            );
        }
        out.push_str("  <graph id=\"ticket\" edgedefault=\"directed\">\n");
        for neuron in self.neurons.iter().flatten() {
            if !all && neuron.class != Class::Active {
                continue;
            }
            let _ = writeln!(
                out,
                "    <node id=\"{}\">",
                Ticket::node_id(neuron.layer, neuron.index)
            );
            let _ = writeln!(out, "      <data key=\"layer\">{}</data>", neuron.layer);
            let _ = writeln!(out, "      <data key=\"index\">{}</data>", neuron.index);
            let _ = writeln!(
                out,
                "      <data key=\"label\">{}</data>",
                self.neuron_label(neuron.layer, neuron.index)
            );
            let _ = writeln!(
                out,
                "      <data key=\"class\">{}</data>",
                neuron.class.name()
            );
            if let Some(c) = neuron.component {
                let _ = writeln!(out, "      <data key=\"component\">{c}</data>");
            }
            if let Some(t) = self.task_of(neuron.layer, neuron.index) {
                let _ = writeln!(out, "      <data key=\"problem\">{t}</data>");
            }
            out.push_str("    </node>\n");
        }
        for (k, e) in self.edges.iter().enumerate() {
            if !all && e.class != Class::Active {
                continue;
            }
            let _ = writeln!(
                out,
                "    <edge id=\"e{k}\" source=\"{}\" target=\"{}\">",
                Ticket::node_id(e.layer, e.from),
                Ticket::node_id(e.layer + 1, e.to)
            );
            let _ = writeln!(out, "      <data key=\"elayer\">{}</data>", e.layer);
            let _ = writeln!(out, "      <data key=\"eclass\">{}</data>", e.class.name());
            if let Some(c) = e.component {
                let _ = writeln!(out, "      <data key=\"ecomponent\">{c}</data>");
            }
            out.push_str("    </edge>\n");
        }
        out.push_str("  </graph>\n</graphml>\n");
        out
    }

    /// The active graph in Graphviz DOT, layered left to right, one colour per subnetwork;
    /// with `all`, also the zombie and inactive weights (dashed, grey).
    pub fn to_dot(&self, all: bool) -> String {
        const COLOURS: [&str; 8] = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
        ];
        let colour = |c: Option<usize>| c.map_or("#b0b0b0", |c| COLOURS[c % COLOURS.len()]);
        let mut out = String::from("digraph ticket {\n  rankdir=LR;\n  node [shape=circle];\n");
        for (layer, neurons) in self.neurons.iter().enumerate() {
            let members: Vec<&Neuron> = neurons
                .iter()
                .filter(|n| all || n.class == Class::Active)
                .collect();
            if members.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  subgraph layer{layer} {{\n    rank=same;");
            for n in members {
                let _ = writeln!(
                    out,
                    "    {} [label=\"{}\", color=\"{}\", class=\"{}\"{}];",
                    Ticket::node_id(n.layer, n.index),
                    self.neuron_label(n.layer, n.index),
                    colour(n.component),
                    n.class.name(),
                    n.component
                        .map_or_else(String::new, |c| format!(", component={c}"))
                );
            }
            out.push_str("  }\n");
        }
        for e in &self.edges {
            if !all && e.class != Class::Active {
                continue;
            }
            let style = if e.class == Class::Active {
                String::new()
            } else {
                ", style=dashed".to_string()
            };
            let _ = writeln!(
                out,
                "  {} -> {} [color=\"{}\", class=\"{}\"{}{}];",
                Ticket::node_id(e.layer, e.from),
                Ticket::node_id(e.layer + 1, e.to),
                colour(e.component),
                e.class.name(),
                e.component
                    .map_or_else(String::new, |c| format!(", component={c}")),
                style
            );
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{analyze, Status};

    /// (4, 3, 2): problem 0 = x1,x2 -> y1 through h1; problem 1 = x3,x4 -> y2 through h2;
    /// h3 has a weight from x1 but none out (inactive); a second hidden layer is not needed.
    pub(crate) fn split_ticket() -> Vec<LayerMask> {
        // Layer 0: [3, 4], index o * 4 + i.
        let l0 = vec![0, 1, 4 + 2, 4 + 3, 8];
        // Layer 1: [2, 3], index o * 3 + i.
        let l1 = vec![0, 3 + 1];
        vec![
            LayerMask {
                fan_in: 4,
                fan_out: 3,
                kept: l0,
            },
            LayerMask {
                fan_in: 3,
                fan_out: 2,
                kept: l1,
            },
        ]
    }

    #[test]
    fn classifies_a_known_ticket() {
        let tasks = TaskIo::two_d_problems(2);
        let masks = split_ticket();
        assert_eq!(analyze(&masks, &tasks).status, Status::Split);
        let t = Ticket::from_masks(&masks, &tasks);
        assert_eq!(t.components, 2);
        assert_eq!(t.component_tasks, vec![vec![0], vec![1]]);
        assert_eq!(t.weight_counts(), (6, 0, 1));
        assert_eq!(t.neuron_counts(), (8, 0, 1));
        assert_eq!(t.neurons[1][2].class, Class::Inactive);
        assert_eq!(t.neurons[1][0].component, Some(0));
        assert_eq!(t.neurons[1][1].component, Some(1));
        assert_eq!(t.neurons[0][0].degree, 2);
        assert_eq!(t.neuron_label(0, 2), "x3");
        assert_eq!(t.neuron_label(1, 0), "h1_1");
        assert_eq!(t.neuron_label(2, 1), "y2");
    }

    #[test]
    fn zombies_reach_an_output_without_an_input() {
        // (4, 2, 2): h1_1 <- x1, x2 and y1 <- h1_1; h1_2 has no input but feeds y2.
        let masks = vec![
            LayerMask {
                fan_in: 4,
                fan_out: 2,
                kept: vec![0, 1],
            },
            LayerMask {
                fan_in: 2,
                fan_out: 2,
                kept: vec![0, 3],
            },
        ];
        let t = Ticket::from_masks(&masks, &TaskIo::two_d_problems(2));
        assert_eq!(t.weight_counts(), (3, 1, 0));
        assert_eq!(t.neuron_counts(), (4, 2, 2));
        assert_eq!(t.components, 1);
        assert_eq!(t.neurons[1][1].class, Class::Zombie);
        assert_eq!(t.neurons[2][1].class, Class::Zombie);
        assert_eq!(t.neurons[0][2].class, Class::Inactive);
        let zombie = t
            .edges
            .iter()
            .find(|e| e.layer == 1 && e.from == 1)
            .unwrap();
        assert_eq!((zombie.class, zombie.component), (Class::Zombie, None));
    }

    #[test]
    fn graphml_and_dot_of_a_known_ticket() {
        let t = Ticket::from_masks(&split_ticket(), &TaskIo::two_d_problems(2));
        let xml = t.to_graphml(false);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        // Active: x1..x4, h1_1, h1_2, y1, y2; 6 active weights.
        assert_eq!(xml.matches("<node id=").count(), 8);
        assert_eq!(xml.matches("<edge id=").count(), 6);
        assert!(xml.contains("<edge id=\"e0\" source=\"n0_0\" target=\"n1_0\">"));
        assert!(xml.contains("<data key=\"label\">h1_2</data>"));
        assert_eq!(
            xml.matches("<node ").count(),
            xml.matches("</node>").count()
        );
        assert_eq!(
            xml.matches("<edge ").count(),
            xml.matches("</edge>").count()
        );
        assert!(xml.trim_end().ends_with("</graphml>"));
        let all = t.to_graphml(true);
        assert_eq!(all.matches("<node id=").count(), 9);
        assert_eq!(all.matches("<edge id=").count(), 7);
        assert!(all.contains("<data key=\"eclass\">inactive</data>"));

        let dot = t.to_dot(false);
        assert!(dot.starts_with("digraph ticket {"));
        assert_eq!(dot.matches(" -> ").count(), 6);
        assert!(dot.contains("n0_2 -> n1_1 [color=\"#ff7f0e\", class=\"active\", component=1];"));
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
        assert_eq!(t.to_dot(true).matches(" -> ").count(), 7);
    }
}
