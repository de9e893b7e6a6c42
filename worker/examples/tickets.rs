//! What an epoch costs on IMP's own tickets instead of random masks: every level of a
//! `worker train --with-masks` output, measured like `worker bench` (16 Adam steps of batch 64
//! and the held-out loss, one thread, median of the repeats), with the whole network measured
//! in the same run, before the levels and after them, for the share of the dense epoch (their
//! mean).
//!
//! ```text
//! worker train sweeps/poster-extension.yaml --task 19 --with-masks --set seeds=1 \
//!     --set train.max_epochs=30 --set pruning.stop_at_first_degraded=false > t19.jsonl
//! cargo run -p worker --example tickets -- t19.jsonl 410
//! ```
//!
//! The task must have the bench's shape `[4, WIDTH, WIDTH, 2]`. A level's `seconds` in the
//! training output also holds what a level costs once (building the network, the final
//! evaluations), which short runs do not amortise: this measures the epochs alone.

use anyhow::{bail, Context, Result};
use shared::data::generate;
use shared::spec::{DataSpec, TrainSpec};
use worker::bench::{measure_masks, BenchConfig, PathChoice};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, width] = args.as_slice() else {
        bail!("usage: tickets FILE WIDTH (FILE: the output of `worker train --with-masks`)");
    };
    let width: usize = width
        .parse()
        .with_context(|| format!("width {width:?} is not a number"))?;
    let shape = vec![4, width, width, 2];
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let mut levels = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("{file}:{}", n + 1);
        let v: serde_json::Value = serde_json::from_str(line).with_context(at)?;
        let Some(masks) = v["masks"].as_array() else {
            bail!("{}: no masks (run `worker train` with --with-masks)", at());
        };
        if masks.len() != shape.len() - 1 {
            bail!(
                "{}: {} masks, the shape {shape:?} has {}",
                at(),
                masks.len(),
                shape.len() - 1
            );
        }
        let mut bool_masks = Vec::new();
        for (l, m) in masks.iter().enumerate() {
            let size = shape[l] * shape[l + 1];
            let mut keep = vec![false; size];
            for i in m.as_array().into_iter().flatten() {
                match i.as_u64().map(|i| i as usize) {
                    Some(i) if i < size => keep[i] = true,
                    _ => bail!("{}: mask {l} holds {i}, not an index below {size}", at()),
                }
            }
            bool_masks.push(keep);
        }
        levels.push((v["level"].as_u64().unwrap_or(n as u64), bool_masks));
    }

    let data = generate(&DataSpec::protocol()).context("the protocol's data")?;
    let spec = TrainSpec::protocol();
    let config = BenchConfig {
        widths: vec![width],
        densities: vec![],
        epochs: 3,
        repeats: 5,
        warmup: 1,
        path: PathChoice::Auto,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| {
        let whole: Vec<Vec<bool>> = shape.windows(2).map(|w| vec![true; w[0] * w[1]]).collect();
        let before = measure_masks(&data, &spec, &shape, &whole, 1.0, &config);
        let total = before.weights as f64;
        let rows: Vec<_> = levels
            .iter()
            .map(|(level, masks)| {
                let kept = masks.iter().flatten().filter(|&&k| k).count();
                let density = kept as f64 / total;
                (
                    level,
                    kept,
                    measure_masks(&data, &spec, &shape, masks, density, &config),
                )
            })
            .collect();
        let after = measure_masks(&data, &spec, &shape, &whole, 1.0, &config);
        let dense = (before.seconds_per_epoch + after.seconds_per_epoch) / 2.0;
        println!("| level | kept | density | trained | paths | s/epoch | share of dense |");
        println!("|---|---|---|---|---|---|---|");
        println!(
            "| dense | {} | 100% | {} | {} | {dense:.5} ({:.5}, {:.5}) | 100% |",
            before.kept,
            before.trained,
            before.paths.join(","),
            before.seconds_per_epoch,
            after.seconds_per_epoch
        );
        for (level, kept, row) in rows {
            println!(
                "| {level} | {kept} | {:.2}% | {} | {} | {:.5} | {:.1}% |",
                100.0 * kept as f64 / total,
                row.trained,
                row.paths.join(","),
                row.seconds_per_epoch,
                100.0 * row.seconds_per_epoch / dense
            );
        }
    });
    Ok(())
}
