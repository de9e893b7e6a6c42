//! The values of grid axes as written: numbers, lists, inclusive ranges (`"0..25"`), `"base"`
//! targets, shapes of `model.base` and seeds, each parsed with its place in the file and
//! checked for repeats.

use super::locate::{index, Ctx, FieldPath, Seg};
use super::SweepError;
use crate::schedule::MAX_LEVELS;
use crate::spec::Method;
use serde_yaml::Value;

/// One value of a grid axis and where it was written.
#[derive(Debug, Clone)]
pub(super) struct Item<T> {
    pub(super) value: T,
    pub(super) path: FieldPath,
}

/// The `seeds` key: a count n (seeds 0..n-1) or a list.
#[derive(Debug, Clone)]
pub(super) enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

impl Seeds {
    pub(super) fn len(&self) -> usize {
        match self {
            Seeds::Count(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Seeds::List(v) => v.len(),
        }
    }

    pub(super) fn values(&self) -> Vec<u64> {
        match self {
            Seeds::Count(n) => (0..*n).collect(),
            Seeds::List(v) => v.clone(),
        }
    }
}

/// The message for an empty list of `what`.
pub(super) fn empty_list(what: &str) -> String {
    format!("the list of {what} is empty; an empty grid has no tasks")
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

/// Items of a number-or-list field: the values with their paths; an empty list is an error.
fn items<'v>(
    ctx: &Ctx,
    v: &'v Value,
    path: &[Seg],
) -> Result<Vec<(&'v Value, FieldPath)>, SweepError> {
    match v {
        Value::Sequence(list) => {
            if list.is_empty() {
                let name = match path.last() {
                    Some(Seg::Key(k)) => *k,
                    _ => "values",
                };
                return Err(ctx.err(path, empty_list(name)));
            }
            Ok(list
                .iter()
                .enumerate()
                .map(|(i, x)| (x, index(path, i)))
                .collect())
        }
        other => Ok(vec![(other, path.to_vec())]),
    }
}

/// `pruning.rate`: a rate in (0, 1) or a list of them, none repeated.
pub(super) fn parse_rates(
    ctx: &Ctx,
    v: &Value,
    path: &[Seg],
) -> Result<Vec<Item<f64>>, SweepError> {
    let mut out: Vec<Item<f64>> = Vec::new();
    for (x, p) in items(ctx, v, path)? {
        let r = match x {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
        .ok_or_else(|| {
            ctx.err(
                &p,
                format!(
                    "{} is not a rate; give a number in (0, 1) or a list of them",
                    describe(x)
                ),
            )
        })?;
        if !(r > 0.0 && r < 1.0) {
            return Err(ctx.err(&p, format!("{r} is outside (0, 1)")));
        }
        if out.iter().any(|o| o.value == r) {
            return Err(ctx.err(&p, format!("rate {r} is listed twice")));
        }
        out.push(Item { value: r, path: p });
    }
    Ok(out)
}

/// Parses `"a..b"` / `"a..=b"` (inclusive); `None` when `s` is not range syntax.
fn parse_range(s: &str) -> Option<Result<(u64, u64), String>> {
    let (a, b) = s.split_once("..")?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let (a, b) = (a.trim(), b.trim());
    let parse = |x: &str| {
        x.parse::<u64>()
            .ok()
            .filter(|_| x.chars().all(|c| c.is_ascii_digit()))
    };
    Some(match (parse(a), parse(b)) {
        (Some(a), Some(b)) if a <= b => Ok((a, b)),
        (Some(a), Some(b)) => Err(format!(
            "range {s:?} is empty ({a} > {b}); write \"low..high\", both ends included"
        )),
        _ => Err(format!(
            "{s:?} is not a range; write \"low..high\" with whole numbers, both ends included, e.g. \"0..20\""
        )),
    })
}

/// Counts (levels, extension levels): a whole number, an inclusive range string, or a list of
/// them; each at most [`MAX_LEVELS`], none repeated.
pub(super) fn parse_counts(
    ctx: &Ctx,
    v: &Value,
    path: &[Seg],
    what: &str,
    allow_zero: bool,
) -> Result<Vec<Item<usize>>, SweepError> {
    let mut out: Vec<Item<usize>> = Vec::new();
    let push = |value: u64, p: &FieldPath, out: &mut Vec<Item<usize>>| -> Result<(), SweepError> {
        if value > MAX_LEVELS as u64 {
            return Err(ctx.err(
                p,
                format!("{value} {what} is more than the limit of {MAX_LEVELS}"),
            ));
        }
        if !allow_zero && value == 0 {
            return Err(ctx.err(p, format!("0 {what} is not allowed")));
        }
        let value = value as usize;
        if out.iter().any(|o| o.value == value) {
            return Err(ctx.err(p, format!("{value} is listed twice in {what}")));
        }
        out.push(Item {
            value,
            path: p.clone(),
        });
        Ok(())
    };
    for (x, p) in items(ctx, v, path)? {
        match x {
            Value::Number(n) if n.as_u64().is_some() => push(n.as_u64().unwrap_or(0), &p, &mut out)?,
            Value::String(s) => match parse_range(s) {
                Some(Ok((a, b))) => {
                    if b > MAX_LEVELS as u64 {
                        return Err(ctx.err(
                            &p,
                            format!("range {s:?} goes beyond the limit of {MAX_LEVELS} {what}"),
                        ));
                    }
                    for value in a..=b {
                        push(value, &p, &mut out)?;
                    }
                }
                Some(Err(msg)) => return Err(ctx.err(&p, msg)),
                None => {
                    return Err(ctx.err(
                        &p,
                        format!("{s:?} is not allowed; give a whole number, an inclusive range \"a..b\", or a list of them"),
                    ))
                }
            },
            other => {
                return Err(ctx.err(
                    &p,
                    format!(
                        "{} is not allowed; give a whole number >= 0, an inclusive range \"a..b\", or a list of them",
                        describe(other)
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// `model.base`: one shape, or a list of shapes.
pub(super) fn parse_bases(
    ctx: &Ctx,
    v: &Value,
    path: &[Seg],
) -> Result<Vec<(Vec<usize>, FieldPath)>, SweepError> {
    let shape_of = |v: &Value, path: &[Seg]| -> Result<Vec<usize>, SweepError> {
        let Value::Sequence(list) = v else {
            return Err(ctx.err(
                path,
                format!(
                    "{} is not a shape; give a list of layer widths like [4, 8, 8, 2]",
                    describe(v)
                ),
            ));
        };
        list.iter()
            .enumerate()
            .map(|(i, x)| {
                match x {
                    Value::Number(n) => n.as_u64().and_then(|w| usize::try_from(w).ok()),
                    _ => None,
                }
                .ok_or_else(|| {
                    ctx.err(
                        &index(path, i),
                        format!(
                            "{} is not a layer width; widths are whole numbers >= 1",
                            describe(x)
                        ),
                    )
                })
            })
            .collect()
    };
    match v {
        Value::Sequence(list) if list.iter().any(|x| matches!(x, Value::Sequence(_))) => list
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let p = index(path, i);
                Ok((shape_of(x, &p)?, p))
            })
            .collect(),
        Value::Sequence(list) if list.is_empty() => Err(ctx.err(path, empty_list("base"))),
        _ => Ok(vec![(shape_of(v, path)?, path.to_vec())]),
    }
}

/// One `pruning.target`: a weight count, or `base` (the weight count of the shape's base).
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Count(usize),
    Base,
}

/// `pruning.target`: a weight count >= 1, `"base"`, or a list of them.
pub(super) fn parse_targets(
    ctx: &Ctx,
    v: &Value,
    path: &[Seg],
) -> Result<Vec<Item<Target>>, SweepError> {
    let mut out = Vec::new();
    for (x, p) in items(ctx, v, path)? {
        let value = match x {
            Value::Number(n) => match n.as_u64() {
                Some(0) => {
                    return Err(ctx.err(&p, "target 0 leaves no weights; the target must be at least 1".to_string()))
                }
                Some(c) => Target::Count(usize::try_from(c).unwrap_or(usize::MAX)),
                None => {
                    return Err(ctx.err(
                        &p,
                        format!("{n} is not a weight count; give a whole number >= 1, \"base\", or a list of them"),
                    ))
                }
            },
            Value::String(s) if s == "base" => Target::Base,
            other => {
                return Err(ctx.err(
                    &p,
                    format!(
                        "{} is not allowed; give a weight count >= 1, \"base\", or a list of them",
                        describe(other)
                    ),
                ))
            }
        };
        out.push(Item { value, path: p });
    }
    Ok(out)
}

/// `seeds`: a count >= 1 or a list of seeds, none repeated; 4 when absent.
pub(super) fn parse_seeds(ctx: &Ctx, v: Option<&Value>) -> Result<Seeds, SweepError> {
    let path = vec![Seg::Key("seeds")];
    let Some(v) = v else {
        return Ok(Seeds::Count(4));
    };
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(0) => Err(ctx.err(
                &path,
                "0 seeds is an empty grid; give a count >= 1 or a list of seeds".to_string(),
            )),
            Some(c) => Ok(Seeds::Count(c)),
            None => Err(ctx.err(
                &path,
                format!("{n} is not allowed; give a count >= 1 or a list of whole-number seeds"),
            )),
        },
        Value::Sequence(list) => {
            if list.is_empty() {
                return Err(ctx.err(&path, empty_list("seeds")));
            }
            let mut out: Vec<u64> = Vec::new();
            for (i, x) in list.iter().enumerate() {
                let p = index(&path, i);
                let s = match x {
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                }
                .ok_or_else(|| {
                    ctx.err(
                        &p,
                        format!(
                            "{} is not a seed; seeds are whole numbers >= 0",
                            describe(x)
                        ),
                    )
                })?;
                if out.contains(&s) {
                    return Err(ctx.err(&p, format!("seed {s} is listed twice")));
                }
                out.push(s);
            }
            Ok(Seeds::List(out))
        }
        other => Err(ctx.err(
            &path,
            format!(
                "{} is not allowed; give a count >= 1 or a list of seeds",
                describe(other)
            ),
        )),
    }
}

/// `pruning.method`: `magnitude`, `random`, or a list of them, none repeated; `[magnitude]`
/// when absent (`path` is then the field's place, for later errors).
pub(super) fn parse_methods(
    ctx: &Ctx,
    v: Option<&Value>,
    path: &[Seg],
) -> Result<Vec<Item<Method>>, SweepError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![Item {
            value: Method::Magnitude,
            path: path.to_vec(),
        }]);
    };
    let mut out: Vec<Item<Method>> = Vec::new();
    for (x, p) in items(ctx, v, path)? {
        let method = match x {
            Value::String(s) => Method::ALL.into_iter().find(|m| m.as_str() == s),
            _ => None,
        }
        .ok_or_else(|| {
            ctx.err(
                &p,
                format!(
                    "{} is not a pruning method; give magnitude, random, or a list of them",
                    describe(x)
                ),
            )
        })?;
        if out.iter().any(|o| o.value == method) {
            return Err(ctx.err(&p, format!("method {} is listed twice", method.as_str())));
        }
        out.push(Item {
            value: method,
            path: p,
        });
    }
    Ok(out)
}

/// `data.coupling`: an angle in degrees in `[0, 90]` or a list of them, none repeated; `[0]`
/// when absent. Above 0 only with two or more problems ([`crate::data::validate_coupling`]).
pub(super) fn parse_couplings(
    ctx: &Ctx,
    v: Option<&Value>,
    problems: usize,
) -> Result<Vec<Item<f64>>, SweepError> {
    let path = vec![Seg::Key("data"), Seg::Key("coupling")];
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![Item { value: 0.0, path }]);
    };
    let mut out: Vec<Item<f64>> = Vec::new();
    for (x, p) in items(ctx, v, &path)? {
        let degrees = match x {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
        .ok_or_else(|| {
            ctx.err(
                &p,
                format!(
                    "{} is not an angle; give degrees in [0, 90] or a list of them",
                    describe(x)
                ),
            )
        })?;
        crate::data::validate_coupling(degrees, problems).map_err(|message| {
            ctx.err(&p, format!("coupling {degrees} is not allowed: {message}"))
        })?;
        // -0 is 0: the uncoupled data, with the uncoupled task's id.
        let degrees = degrees + 0.0;
        if out.iter().any(|o| o.value == degrees) {
            return Err(ctx.err(&p, format!("coupling {degrees} is listed twice")));
        }
        out.push(Item {
            value: degrees,
            path: p,
        });
    }
    Ok(out)
}

/// `train.rewind_epochs`: a whole number of epochs, at most `max_epochs`, or a list of them,
/// none repeated; `[0]` when absent.
pub(super) fn parse_rewinds(
    ctx: &Ctx,
    v: Option<&Value>,
    max_epochs: usize,
) -> Result<Vec<Item<usize>>, SweepError> {
    let path = vec![Seg::Key("train"), Seg::Key("rewind_epochs")];
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![Item { value: 0, path }]);
    };
    let mut out: Vec<Item<usize>> = Vec::new();
    for (x, p) in items(ctx, v, &path)? {
        let epochs = match x {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or_else(|| {
            ctx.err(
                &p,
                format!(
                    "{} is not allowed; give a whole number of epochs >= 0 or a list of them",
                    describe(x)
                ),
            )
        })?;
        let epochs = usize::try_from(epochs)
            .ok()
            .filter(|&e| e <= max_epochs)
            .ok_or_else(|| {
                ctx.err(
                    &p,
                    format!(
                        "{epochs} epochs is more than train.max_epochs {max_epochs}: the dense \
                         level never trains that long"
                    ),
                )
            })?;
        if out.iter().any(|o| o.value == epochs) {
            return Err(ctx.err(&p, format!("rewind_epochs {epochs} is listed twice")));
        }
        out.push(Item {
            value: epochs,
            path: p,
        });
    }
    Ok(out)
}

/// Most data seeds one `data.seed` range may name (each is a data set of its own).
pub(super) const MAX_DATA_SEEDS: u64 = 10_000;

/// `data.seed`: a data seed, an inclusive range `"a..b"`, or a list of them, none repeated;
/// `[0]` when absent (the thesis kept data seed 0). Unlike `seeds`, a lone number is the seed
/// itself, not a count: `data.seed: 3` is data set 3, as it always was.
pub(super) fn parse_data_seeds(ctx: &Ctx, v: Option<&Value>) -> Result<Vec<u64>, SweepError> {
    let path = vec![Seg::Key("data"), Seg::Key("seed")];
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(vec![0]);
    };
    let mut out: Vec<u64> = Vec::new();
    let mut push = |s: u64, p: &FieldPath| -> Result<(), SweepError> {
        if out.contains(&s) {
            return Err(ctx.err(p, format!("data seed {s} is listed twice")));
        }
        out.push(s);
        Ok(())
    };
    for (x, p) in items(ctx, v, &path)? {
        match x {
            Value::Number(n) if n.as_u64().is_some() => push(n.as_u64().unwrap_or(0), &p)?,
            Value::String(s) => match parse_range(s) {
                Some(Ok((a, b))) if b - a < MAX_DATA_SEEDS => {
                    for seed in a..=b {
                        push(seed, &p)?;
                    }
                }
                Some(Ok(_)) => {
                    return Err(ctx.err(
                        &p,
                        format!("range {s:?} names more than {MAX_DATA_SEEDS} data seeds"),
                    ))
                }
                Some(Err(message)) => return Err(ctx.err(&p, message)),
                None => {
                    return Err(ctx.err(
                        &p,
                        format!(
                            "{s:?} is not a data seed; give a whole number >= 0, a range \"a..b\" or a list"
                        ),
                    ))
                }
            },
            other => {
                return Err(ctx.err(
                    &p,
                    format!(
                        "{} is not a data seed; give a whole number >= 0, a range \"a..b\" or a list",
                        describe(other)
                    ),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0..20"), Some(Ok((0, 20))));
        assert_eq!(parse_range("3..=5"), Some(Ok((3, 5))));
        assert!(matches!(parse_range("5..2"), Some(Err(_))));
        assert!(matches!(parse_range("a..2"), Some(Err(_))));
        assert!(matches!(parse_range("1.."), Some(Err(_))));
        assert!(matches!(parse_range("-1..2"), Some(Err(_))));
        assert_eq!(parse_range("base"), None);
    }
}
