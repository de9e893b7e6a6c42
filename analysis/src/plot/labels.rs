//! Where to put point labels so that none covers another or a marker: a greedy search over
//! spots around each label's anchor, nearest first, in pixels.
//!
//! A label prefers the spot right of its anchor, then the one left of it, then spots a label's
//! height above and below those, further and further out. It takes the first spot inside the
//! plot that overlaps no label placed before it and no marker; when every spot overlaps
//! something, the one that overlaps least. Labels are placed from the top of the plot down, so
//! crowded labels stack in the order of their anchors. A label away from its preferred spot
//! gets a leader line to its anchor (drawn by the figure).

/// A rectangle in pixels, `x0 <= x1` and `y0 <= y1` (y down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    /// The square of half-side `r` around `(x, y)`.
    pub fn around((x, y): (i32, i32), r: i32) -> Rect {
        Rect {
            x0: x - r,
            y0: y - r,
            x1: x + r,
            y1: y + r,
        }
    }

    fn overlap(&self, other: &Rect) -> i64 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0) as i64;
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0) as i64;
        w * h
    }

    fn inside(&self, bounds: &Rect) -> bool {
        self.x0 >= bounds.x0 && self.x1 <= bounds.x1 && self.y0 >= bounds.y0 && self.y1 <= bounds.y1
    }

    /// The point of this rectangle nearest to `(x, y)`.
    pub fn nearest(&self, (x, y): (i32, i32)) -> (i32, i32) {
        (x.clamp(self.x0, self.x1), y.clamp(self.y0, self.y1))
    }
}

/// One label to place: its anchor (the point it names) and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub anchor: (i32, i32),
    pub width: i32,
    pub height: i32,
}

/// Where a label went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub rect: Rect,
    /// Not at its preferred spot: draw a leader line to the anchor.
    pub moved: bool,
}

/// How many label heights above and below the anchor the search goes.
const ROWS: i32 = 12;

/// Places `labels` (in their order in the result) `gap` pixels from their anchors, inside
/// `bounds`, avoiding each other and `markers`.
pub fn place(labels: &[Label], markers: &[Rect], bounds: Rect, gap: i32) -> Vec<Placed> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| (labels[i].anchor.1, labels[i].anchor.0));
    let mut placed: Vec<Option<Placed>> = vec![None; labels.len()];
    let mut taken: Vec<Rect> = Vec::with_capacity(labels.len());
    for i in order {
        let label = labels[i];
        let mut best: Option<(i64, Rect, bool)> = None;
        for (rect, moved) in spots(label, gap) {
            if !rect.inside(&bounds) {
                continue;
            }
            let cost: i64 = taken
                .iter()
                .chain(markers)
                .map(|other| rect.overlap(other))
                .sum();
            if best.is_none_or(|(c, ..)| cost < c) {
                best = Some((cost, rect, moved));
            }
            if cost == 0 {
                break;
            }
        }
        // Nowhere inside the bounds: the preferred spot, wherever it falls.
        let (rect, moved) = best
            .map(|(_, rect, moved)| (rect, moved))
            .unwrap_or_else(|| spots(label, gap).next().expect("a preferred spot"));
        taken.push(rect);
        placed[i] = Some(Placed { rect, moved });
    }
    placed
        .into_iter()
        .map(|p| p.expect("every label placed"))
        .collect()
}

/// The spots of a label, nearest first: right of the anchor, left of it, then rows above and
/// below, right before left.
fn spots(label: Label, gap: i32) -> impl Iterator<Item = (Rect, bool)> {
    let Label {
        anchor: (x, y),
        width,
        height,
    } = label;
    let step = height + height / 4;
    let rows = (0..=ROWS).flat_map(|k| if k == 0 { vec![0] } else { vec![k, -k] });
    rows.flat_map(move |k| {
        let top = y - height / 2 + k * step;
        let right = Rect {
            x0: x + gap,
            y0: top,
            x1: x + gap + width,
            y1: top + height,
        };
        let left = Rect {
            x0: x - gap - width,
            y0: top,
            x1: x - gap,
            y1: top + height,
        };
        [(right, k != 0), (left, true)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Rect = Rect {
        x0: 0,
        y0: 0,
        x1: 1000,
        y1: 600,
    };

    fn label(x: i32, y: i32) -> Label {
        Label {
            anchor: (x, y),
            width: 120,
            height: 26,
        }
    }

    #[test]
    fn a_lone_label_sits_right_of_its_anchor() {
        let placed = place(&[label(300, 300)], &[], BOUNDS, 20);
        assert_eq!(
            placed[0],
            Placed {
                rect: Rect {
                    x0: 320,
                    y0: 287,
                    x1: 440,
                    y1: 313
                },
                moved: false
            }
        );
    }

    #[test]
    fn crowded_labels_cover_neither_each_other_nor_the_markers() {
        // Twenty anchors within a few pixels of each other, with markers on them: the
        // reproduction's grid points at 112-250 remaining weights.
        let labels: Vec<Label> = (0..20).map(|i| label(300 + (i % 3) * 4, 300 + i)).collect();
        let markers: Vec<Rect> = labels.iter().map(|l| Rect::around(l.anchor, 11)).collect();
        let placed = place(&labels, &markers, BOUNDS, 20);
        for (i, a) in placed.iter().enumerate() {
            assert!(a.rect.inside(&BOUNDS));
            for m in &markers {
                assert_eq!(a.rect.overlap(m), 0, "label {i} covers a marker");
            }
            for (j, b) in placed.iter().enumerate().skip(i + 1) {
                assert_eq!(a.rect.overlap(&b.rect), 0, "labels {i} and {j} overlap");
            }
        }
        assert!(placed.iter().filter(|p| p.moved).count() >= 18);
    }

    #[test]
    fn labels_stay_inside_the_plot() {
        // An anchor at the right edge: the label goes left of it.
        let placed = place(&[label(990, 300)], &[], BOUNDS, 20);
        assert_eq!(placed[0].rect.x1, 970);
        assert!(placed[0].moved);
    }

    #[test]
    fn with_no_free_spot_a_label_takes_the_least_covered_one() {
        let labels = [label(300, 300)];
        // A marker over the whole plot: every spot costs the same.
        let everything = Rect {
            x0: 0,
            y0: 0,
            x1: 1000,
            y1: 600,
        };
        let placed = place(&labels, &[everything], BOUNDS, 20);
        assert!(placed[0].rect.inside(&BOUNDS));
        assert!(
            !placed[0].moved,
            "all spots cost the same: the preferred one"
        );
    }
}
