//! Command-line overrides of a sweep file's keys: `--set train.max_epochs=10 --set seeds=1`.
//!
//! An override names a key by its dotted path (`pruning.rate`, `data.problems[1].noise`) and
//! gives a YAML value (`10`, `[0.2, 0.32]`, `0..5`, `{ kind: moons }`; `null` restores the
//! default). Overrides apply in order to the file's document before it is validated, so an
//! overridden key is checked exactly like a written one, and an error in it names the
//! `--set` that caused it. The sweep keeps the overridden document as its text (that is what
//! a coordinator stores), with a comment saying where it came from.

use std::fmt;
use std::str::FromStr;

use serde_yaml::{Mapping, Value};

use super::locate::{parse_field, Locator, SegRef};
use super::{Sweep, SweepError};

/// One `KEY=VALUE` override.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The dotted key path as written.
    pub key: String,
    /// The value, parsed as YAML.
    pub value: Value,
    /// The value as written.
    pub value_text: String,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value_text)
    }
}

impl FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Override, String> {
        let Some((key, value_text)) = s.split_once('=') else {
            return Err(format!(
                "{s:?}: expected KEY=VALUE, e.g. train.max_epochs=10"
            ));
        };
        let key = key.trim();
        match parse_field(key) {
            Some(path) if matches!(path.first(), Some(SegRef::Key(_))) => {}
            _ => {
                return Err(format!(
                    "{s:?}: {key:?} is not a key path (keys separated by dots, list entries as \
                     [i], e.g. pruning.rate or data.problems[1].noise)"
                ))
            }
        }
        let value: Value = serde_yaml::from_str(value_text)
            .map_err(|e| format!("{s:?}: the value is not YAML: {e}"))?;
        Ok(Override {
            key: key.to_string(),
            value,
            value_text: value_text.to_string(),
        })
    }
}

impl Sweep {
    /// [`Sweep::from_yaml`] after applying `overrides` in order (none: the file as written).
    pub fn from_yaml_with(
        text: &str,
        source: &str,
        overrides: &[Override],
    ) -> Result<Sweep, SweepError> {
        if overrides.is_empty() {
            return Sweep::from_yaml(text, source);
        }
        super::check_size(text, source)?;
        // Parse errors of the file itself are the file's, located as usual.
        let mut document: Value = match serde_yaml::from_str(text) {
            Ok(Value::Null) => Value::Mapping(Mapping::new()),
            Ok(v) => v,
            Err(_) => return Sweep::from_yaml(text, source),
        };
        for o in overrides {
            apply(&mut document, o).map_err(|message| SweepError {
                source_name: format!("--set {o}"),
                line: None,
                column: None,
                field: Some(o.key.clone()),
                message,
            })?;
        }
        let given: Vec<String> = overrides.iter().map(|o| format!("--set {o}")).collect();
        let merged = format!(
            "# {source} with {}\n{}",
            given.join(" "),
            serde_yaml::to_string(&document).expect("a YAML value serialises")
        );
        Sweep::from_yaml(&merged, source).map_err(|e| relocate(e, text, overrides))
    }

    /// [`Sweep::from_path`] after applying `overrides` in order.
    pub fn from_path_with(
        path: &std::path::Path,
        overrides: &[Override],
    ) -> Result<Sweep, SweepError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SweepError {
            source_name: source.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read the sweep file: {e}"),
        })?;
        Sweep::from_yaml_with(&text, &source, overrides)
    }
}

/// Sets the override's key in `document`, creating missing mappings on the way.
fn apply(document: &mut Value, o: &Override) -> Result<(), String> {
    let path = parse_field(&o.key).expect("checked when parsed");
    let mut node = document;
    let mut walked = String::new();
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        match *seg {
            SegRef::Key(k) => {
                if node.is_null() {
                    *node = Value::Mapping(Mapping::new());
                }
                let Value::Mapping(map) = node else {
                    return Err(format!(
                        "{walked} is not a mapping in the file, so it has no key {k:?}"
                    ));
                };
                let key = Value::String(k.to_string());
                if last {
                    map.insert(key, o.value.clone());
                    return Ok(());
                }
                node = map.entry(key).or_insert(Value::Null);
                if !walked.is_empty() {
                    walked.push('.');
                }
                walked.push_str(k);
            }
            SegRef::Index(n) => {
                let Value::Sequence(items) = node else {
                    return Err(format!(
                        "{walked} is not a list in the file, so it has no entry [{n}]"
                    ));
                };
                let len = items.len();
                let Some(item) = items.get_mut(n) else {
                    return Err(format!("{walked} has {len} entries, so there is no [{n}]"));
                };
                if last {
                    *item = o.value.clone();
                    return Ok(());
                }
                node = item;
                walked.push_str(&format!("[{n}]"));
            }
        }
    }
    Ok(())
}

/// An error found in the overridden document, told in terms of what the user wrote: the
/// `--set` it came from, or its place in the original file.
fn relocate(mut e: SweepError, original: &str, overrides: &[Override]) -> SweepError {
    e.line = None;
    e.column = None;
    let Some(field) = e.field.clone() else {
        return e;
    };
    let under = |parent: &str, child: &str| {
        child == parent
            || child
                .strip_prefix(parent)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    // The last override that set this field or one above it is where the value came from.
    if let Some(o) = overrides.iter().rev().find(|o| under(&o.key, &field)) {
        e.source_name = format!("--set {o}");
        return e;
    }
    if let Some((line, column)) = Locator::new(original).locate_field(&field) {
        e.line = Some(line);
        e.column = Some(column);
    }
    let inside: Vec<String> = overrides
        .iter()
        .filter(|o| under(&field, &o.key))
        .map(|o| format!("--set {o}"))
        .collect();
    if !inside.is_empty() {
        e.message = format!("{} (with {})", e.message, inside.join(", "));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Override {
        s.parse().unwrap()
    }

    const FILE: &str = "name: x\nmodel:\n  hidden: [8, 16]\ntrain:\n  max_epochs: 50\npruning:\n  rate: 0.5\n  levels: 2\nseeds: 3\n";

    #[test]
    fn overrides_replace_and_add_keys() {
        let sweep = Sweep::from_yaml_with(
            FILE,
            "x.yaml",
            &[
                o("train.max_epochs=10"),
                o("seeds=1"),
                o("data.samples=100"),
                o("pruning.rate=[0.2, 0.5]"),
            ],
        )
        .unwrap();
        let tasks = sweep.expand().unwrap();
        assert_eq!(tasks.len(), 2 * 2);
        assert!(tasks
            .iter()
            .all(|t| t.train.max_epochs == 10 && t.seed == 0));
        assert!(tasks.iter().all(|t| t.data.samples == 100));
        assert!(sweep
            .yaml()
            .starts_with("# x.yaml with --set train.max_epochs=10"));
        // The stored text is the overridden sweep.
        let again = Sweep::from_yaml(sweep.yaml(), "stored").unwrap();
        assert_eq!(again.expand().unwrap(), tasks);
    }

    #[test]
    fn a_bad_value_names_the_override() {
        let e = Sweep::from_yaml_with(FILE, "x.yaml", &[o("pruning.rate=1.5")]).unwrap_err();
        assert_eq!(e.source_name, "--set pruning.rate=1.5");
        assert_eq!(e.field.as_deref(), Some("pruning.rate"));
        assert!(
            e.to_string()
                .starts_with("--set pruning.rate=1.5: pruning.rate: "),
            "{e}"
        );
        let e = Sweep::from_yaml_with(FILE, "x.yaml", &[o("train.max_epoch=10")]).unwrap_err();
        assert_eq!(e.source_name, "--set train.max_epoch=10");
        assert!(e.message.contains("unknown field `max_epoch`"), "{e}");
        let e = Sweep::from_yaml_with(FILE, "x.yaml", &[o("seeds.count=2")]).unwrap_err();
        assert!(e.message.contains("seeds is not a mapping"), "{e}");
    }

    #[test]
    fn an_error_elsewhere_is_located_in_the_file() {
        let file = "name: x\ntrain:\n  batch_size: 0\n";
        let e = Sweep::from_yaml_with(file, "x.yaml", &[o("seeds=1")]).unwrap_err();
        assert_eq!(e.source_name, "x.yaml");
        assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
        assert_eq!(e.field.as_deref(), Some("train.batch_size"));
    }

    #[test]
    fn from_path_reads_the_file_as_written_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("sweep-from-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.yaml");
        std::fs::write(&path, FILE).unwrap();
        let read = Sweep::from_path(&path).unwrap();
        assert_eq!(read.yaml(), FILE);
        let parsed = Sweep::from_yaml(FILE, "x.yaml").unwrap();
        assert_eq!(read.expand().unwrap(), parsed.expand().unwrap());
        let missing = dir.join("missing.yaml");
        let e = Sweep::from_path(&missing).unwrap_err();
        assert_eq!(e.source_name, missing.display().to_string());
        assert!(e.message.starts_with("cannot read the sweep file: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_overrides_are_refused() {
        assert!("train.max_epochs"
            .parse::<Override>()
            .unwrap_err()
            .contains("KEY=VALUE"));
        assert!("=3".parse::<Override>().is_err());
        assert!("a..b=3".parse::<Override>().is_err());
        assert!("[0]=3".parse::<Override>().is_err());
        assert!("seeds=[1,"
            .parse::<Override>()
            .unwrap_err()
            .contains("not YAML"));
        assert_eq!(
            o("data.problems[1].noise=0.2").key,
            "data.problems[1].noise"
        );
    }
}
