//! Where things are in the file: field paths (`pruning.rate`, `model.shapes[1]`), the
//! [`Locator`] that finds a path's line and column in the YAML text, and [`Ctx`], which builds
//! located [`SweepError`]s.

use super::SweepError;

/// A path into the file, for error messages and locating.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seg {
    Key(&'static str),
    Index(usize),
}

pub(super) type FieldPath = Vec<Seg>;

/// A path segment borrowed from anywhere (a dotted field name, an override's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SegRef<'a> {
    Key(&'a str),
    Index(usize),
}

impl Seg {
    fn as_ref(&self) -> SegRef<'static> {
        match *self {
            Seg::Key(k) => SegRef::Key(k),
            Seg::Index(i) => SegRef::Index(i),
        }
    }
}

/// The segments of a dotted field path: `a.b[2].c`; `None` when it is not one.
pub(super) fn parse_field(field: &str) -> Option<Vec<SegRef<'_>>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (name, mut indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return None;
        }
        out.push(SegRef::Key(name));
        while !indices.is_empty() {
            let close = indices.find(']')?;
            out.push(SegRef::Index(indices.get(1..close)?.parse().ok()?));
            indices = &indices[close + 1..];
            if !indices.is_empty() && !indices.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

pub(super) fn key(path: &[Seg], k: &'static str) -> FieldPath {
    let mut p = path.to_vec();
    p.push(Seg::Key(k));
    p
}

pub(super) fn index(path: &[Seg], i: usize) -> FieldPath {
    let mut p = path.to_vec();
    p.push(Seg::Index(i));
    p
}

fn field_name(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

pub(super) struct Ctx<'a> {
    source: &'a str,
    pub(super) locator: Locator,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(text: &str, source: &'a str) -> Self {
        Ctx {
            source,
            locator: Locator::new(text),
        }
    }

    pub(super) fn err_at(&self, at: Option<(usize, usize)>, message: String) -> SweepError {
        SweepError {
            source_name: self.source.to_string(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: None,
            message,
        }
    }

    /// An error about the field at `path`, located at its key (or its nearest written ancestor).
    pub(super) fn err(&self, path: &[Seg], message: String) -> SweepError {
        let mut e = self.err_at(self.locator.locate(path), message);
        if !path.is_empty() {
            e.field = Some(field_name(path));
        }
        e
    }

    pub(super) fn serde_err(&self, e: serde_yaml::Error) -> SweepError {
        let location = e.location().map(|l| (l.line(), l.column()));
        let mut text = e.to_string();
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line} column {column}");
            if let Some(i) = text.find(&suffix) {
                text.replace_range(i..i + suffix.len(), "");
            }
        }
        // serde_yaml writes "path.to[0].field: message" for errors inside the document.
        let mut field = None;
        if let Some((prefix, rest)) = text.split_once(": ") {
            let is_path = !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._[]?-".contains(c));
            if is_path {
                field = Some(prefix.to_string());
                text = rest.to_string();
            }
        }
        // Name the key itself for unknown and missing fields.
        for marker in ["unknown field `", "missing field `"] {
            if let Some(start) = text.find(marker) {
                let name = &text[start + marker.len()..];
                if let Some(end) = name.find('`') {
                    let name = &name[..end];
                    field = Some(match field {
                        Some(parent) => format!("{parent}.{name}"),
                        None => name.to_string(),
                    });
                }
            }
        }
        if text.starts_with("EOF while parsing") {
            text = "the file is empty; a sweep needs at least `name:`".to_string();
        }
        SweepError {
            source_name: self.source.to_string(),
            line: location.map(|l| l.0),
            column: location.map(|l| l.1),
            field,
            message: text,
        }
    }
}

/// Finds the line and column of a key path in YAML text, without a full parser: block mappings
/// and sequences by indentation, flow mappings and sequences by brackets. Good enough for the
/// sweep files people write; when a path is not found it returns its nearest written ancestor.
pub(super) struct Locator {
    /// Lines as characters, comments removed, trailing space trimmed.
    lines: Vec<Vec<char>>,
}

type Pos = (usize, usize);

impl Locator {
    pub(super) fn new(text: &str) -> Self {
        let lines = text
            .lines()
            .map(|line| {
                let mut out: Vec<char> = Vec::new();
                let mut quote: Option<char> = None;
                for c in line.chars() {
                    match quote {
                        Some(q) if c == q => quote = None,
                        Some(_) => {}
                        None if c == '"' || c == '\'' => quote = Some(c),
                        None if c == '#' && out.last().is_none_or(|p| p.is_whitespace()) => break,
                        None => {}
                    }
                    out.push(c);
                }
                while out.last().is_some_and(|c| c.is_whitespace()) {
                    out.pop();
                }
                out
            })
            .collect();
        Locator { lines }
    }

    fn first_content(&self, l: usize) -> Option<usize> {
        self.lines[l].iter().position(|c| !c.is_whitespace())
    }

    fn next_content_line(&self, from: usize) -> Option<(usize, usize)> {
        (from..self.lines.len()).find_map(|l| self.first_content(l).map(|c| (l, c)))
    }

    /// Start of the document's root node (skipping a `---` marker).
    pub(super) fn root(&self) -> Option<Pos> {
        let (l, c) = self.next_content_line(0)?;
        let line = &self.lines[l];
        if line[c..].starts_with(&['-', '-', '-']) && line.len() == c + 3 {
            return self.next_content_line(l + 1);
        }
        Some((l, c))
    }

    /// 1-based (line, column) of the deepest written part of `path`.
    fn locate(&self, path: &[Seg]) -> Option<(usize, usize)> {
        self.locate_segments(path.iter().map(Seg::as_ref))
    }

    /// 1-based (line, column) of the deepest written part of a dotted field path such as
    /// `model.shapes[1]` (as [`SweepError::field`] names it).
    pub(super) fn locate_field(&self, field: &str) -> Option<(usize, usize)> {
        self.locate_segments(parse_field(field)?.into_iter())
    }

    fn locate_segments<'s>(
        &self,
        path: impl Iterator<Item = SegRef<'s>>,
    ) -> Option<(usize, usize)> {
        let mut node = self.root();
        let mut found = None;
        for seg in path {
            let seg = &seg;
            let Some(pos) = node else { break };
            let Some((at, value)) = self.child(pos, seg) else {
                break;
            };
            found = Some(at);
            node = value;
        }
        found.map(|(l, c)| (l + 1, c + 1))
    }

    fn char_at(&self, (l, c): Pos) -> Option<char> {
        self.lines.get(l)?.get(c).copied()
    }

    fn is_dash(&self, (l, c): Pos) -> bool {
        self.char_at((l, c)) == Some('-')
            && self.char_at((l, c + 1)).is_none_or(|x| x.is_whitespace())
    }

    /// The position of `seg` inside the node starting at `pos`, and where its value starts.
    fn child(&self, pos: Pos, seg: &SegRef) -> Option<(Pos, Option<Pos>)> {
        match self.char_at(pos)? {
            '{' | '[' => self.flow_child(pos, seg),
            _ if self.is_dash(pos) => match seg {
                SegRef::Index(n) => self.block_item(pos, *n),
                SegRef::Key(_) => None,
            },
            _ => match seg {
                SegRef::Key(k) => self.block_key(pos, k),
                SegRef::Index(_) => None,
            },
        }
    }

    /// Where a value starts after column `from` of line `l` (same line, or a deeper next line).
    fn value_start(&self, l: usize, from: usize, parent_col: usize) -> Option<Pos> {
        let line = &self.lines[l];
        if let Some(c) = (from..line.len()).find(|&c| !line[c].is_whitespace()) {
            return Some((l, c));
        }
        let (l2, c2) = self.next_content_line(l + 1)?;
        if c2 > parent_col || (c2 == parent_col && self.is_dash((l2, c2))) {
            Some((l2, c2))
        } else {
            None
        }
    }

    fn block_key(&self, (l0, col): Pos, k: &str) -> Option<(Pos, Option<Pos>)> {
        for l in l0..self.lines.len() {
            let Some(f) = self.first_content(l) else {
                continue;
            };
            if l > l0 {
                if f < col {
                    break;
                }
                if f > col {
                    continue;
                }
            }
            let line = &self.lines[l];
            if let Some(after) = match_key(&line[col..], k) {
                let after = col + after;
                return Some(((l, col), self.value_start(l, after, col)));
            }
        }
        None
    }

    fn block_item(&self, (l0, col): Pos, n: usize) -> Option<(Pos, Option<Pos>)> {
        let mut count = 0;
        for l in l0..self.lines.len() {
            let Some(f) = self.first_content(l) else {
                continue;
            };
            if l > l0 {
                if f < col {
                    break;
                }
                if f > col {
                    continue;
                }
            }
            if !self.is_dash((l, col)) {
                break;
            }
            if count == n {
                let value = self.value_start(l, col + 1, col);
                let at = match value {
                    Some((vl, vc)) if vl == l => (vl, vc),
                    _ => (l, col),
                };
                return Some((at, value));
            }
            count += 1;
        }
        None
    }

    /// Children of a flow collection starting at `pos` (`{` or `[`).
    fn flow_child(&self, pos: Pos, seg: &SegRef) -> Option<(Pos, Option<Pos>)> {
        let is_map = self.char_at(pos)? == '{';
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        // (start, key text, value start)
        let mut items: Vec<(Pos, String, Option<Pos>)> = Vec::new();
        let mut awaiting_item = false;
        let mut awaiting_value = false;
        let mut seen_colon = false;
        let (mut l, mut c) = pos;
        'scan: while l < self.lines.len() {
            let line = &self.lines[l];
            while c < line.len() {
                let ch = line[c];
                let here = (l, c);
                c += 1;
                if let Some(q) = quote {
                    if ch == q {
                        quote = None;
                    }
                    if depth == 1 && !seen_colon {
                        if let Some(item) = items.last_mut() {
                            item.1.push(ch);
                        }
                    }
                    continue;
                }
                if depth == 1 && !ch.is_whitespace() {
                    if awaiting_item && ch != ',' && ch != ']' && ch != '}' {
                        items.push((here, String::new(), if is_map { None } else { Some(here) }));
                        awaiting_item = false;
                        seen_colon = false;
                    }
                    if awaiting_value && ch != ',' && ch != '}' {
                        if let Some(item) = items.last_mut() {
                            item.2 = Some(here);
                        }
                        awaiting_value = false;
                    }
                }
                match ch {
                    '"' | '\'' => {
                        quote = Some(ch);
                        if depth == 1 && !seen_colon {
                            if let Some(item) = items.last_mut() {
                                item.1.push(ch);
                            }
                        }
                    }
                    '[' | '{' => {
                        depth += 1;
                        if depth == 1 {
                            awaiting_item = true;
                        }
                    }
                    ']' | '}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break 'scan;
                        }
                    }
                    ',' if depth == 1 => {
                        awaiting_item = true;
                        awaiting_value = false;
                    }
                    ':' if depth == 1 && is_map && !seen_colon => {
                        let next = line.get(c).copied();
                        if next.is_none_or(|n| n.is_whitespace() || n == ',' || n == '}') {
                            seen_colon = true;
                            awaiting_value = true;
                        } else if let Some(item) = items.last_mut() {
                            item.1.push(ch);
                        }
                    }
                    _ if depth == 1 && !seen_colon => {
                        if let Some(item) = items.last_mut() {
                            item.1.push(ch);
                        }
                    }
                    _ => {}
                }
            }
            l += 1;
            c = 0;
        }
        match seg {
            SegRef::Key(k) if is_map => items
                .iter()
                .find(|(_, key, _)| unquote(key.trim()) == *k)
                .map(|(at, _, value)| (*at, *value)),
            SegRef::Index(n) if !is_map => items.get(*n).map(|(at, _, value)| (*at, *value)),
            _ => None,
        }
    }
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// If `text` starts with the mapping key `k` (plain or quoted) followed by `:`, the index just
/// after the colon.
fn match_key(text: &[char], k: &str) -> Option<usize> {
    let s: String = text.iter().collect();
    let (key_text, rest_start) =
        if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let end = s[1..].find(q)? + 1;
            (&s[1..end], end + 1)
        } else {
            let end = s.find(':')?;
            (s[..end].trim_end(), end)
        };
    if key_text != k {
        return None;
    }
    let rest = &s[rest_start..];
    let trimmed = rest.trim_start();
    let colon = rest_start + (rest.len() - trimmed.len());
    if !trimmed.starts_with(':') {
        return None;
    }
    let after = &trimmed[1..];
    if !(after.is_empty() || after.starts_with(char::is_whitespace)) {
        return None;
    }
    // Convert the byte offset to a char offset.
    Some(s[..colon + 1].chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
        Locator::new(text).locate(path)
    }

    #[test]
    fn locates_block_and_flow() {
        let text = "name: x\n# comment\npruning:\n  rate: 0.3  # c\n  levels: [1, 2,  3]\ndata:\n  problems:\n    - kind: circles\n      noise: 0.2\n    - { kind: moons, noise: 0.1 }\nmodel: { shapes: [[4, 8, 2], [4, 0, 2]] }\n";
        use Seg::*;
        assert_eq!(locate(text, &[Key("name")]), Some((1, 1)));
        assert_eq!(locate(text, &[Key("pruning"), Key("rate")]), Some((4, 3)));
        assert_eq!(
            locate(text, &[Key("pruning"), Key("levels"), Index(2)]),
            Some((5, 19))
        );
        assert_eq!(
            locate(
                text,
                &[Key("data"), Key("problems"), Index(0), Key("noise")]
            ),
            Some((9, 7))
        );
        assert_eq!(
            locate(
                text,
                &[Key("data"), Key("problems"), Index(1), Key("noise")]
            ),
            Some((10, 22))
        );
        assert_eq!(
            locate(text, &[Key("model"), Key("shapes"), Index(1), Index(1)]),
            Some((11, 34))
        );
        // Missing leaf: nearest ancestor.
        assert_eq!(locate(text, &[Key("pruning"), Key("target")]), Some((3, 1)));
        assert_eq!(locate(text, &[Key("seeds")]), None);
    }

    #[test]
    fn dash_at_key_indent() {
        let text = "seeds:\n- 1\n- 2\nname: y\n";
        assert_eq!(
            locate(text, &[Seg::Key("seeds"), Seg::Index(1)]),
            Some((3, 3))
        );
        assert_eq!(locate(text, &[Seg::Key("name")]), Some((4, 1)));
    }
}
