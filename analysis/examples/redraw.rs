//! Redraws a sweep's figures (SVG) and its results table (`NAME-results.csv`, as `coordinator
//! results --format csv` writes it) from its long export (`coordinator export SWEEP --format
//! csv`) and its sweep file, without the database: for whoever has only the CSV, and for
//! figures whose drawing changed after the run.
//!
//!     cargo run -p analysis --example redraw -- sweeps/poster-extension.yaml \
//!         docs/reproduction/engine-2/poster-extension-long.csv OUT_DIR
//!
//! The export carries every number of every level, so the figures and table are those the
//! database gives, byte for byte (`analysis/tests/reproduction.rs` holds the reproduction's
//! committed files to it).

use std::path::Path;

use analysis::plot::{sweep_figures, Options};
use shared::sweep::Sweep;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sweep_file, csv, out] = args.as_slice() else {
        return Err("usage: redraw SWEEP.yaml LONG.csv OUT_DIR".into());
    };
    let sweep = Sweep::from_path(Path::new(sweep_file))?;
    let text = std::fs::read_to_string(csv)?;
    let tasks =
        analysis::import::long_csv(sweep.expand()?, &text).map_err(|e| format!("{csv}: {e}"))?;
    let options = Options {
        sweep: sweep.name.clone(),
        shape: None,
        png: false,
    };
    std::fs::create_dir_all(out)?;
    for figure in sweep_figures(&tasks, &options)? {
        let path = Path::new(out).join(format!("{}.svg", figure.name));
        std::fs::write(&path, &figure.svg)?;
        println!("{}", path.display());
    }
    let rows = analysis::tables::ResultRow::of_tasks(&tasks);
    let path = Path::new(out).join(format!("{}-results.csv", sweep.name));
    std::fs::write(&path, analysis::tables::results_csv(&rows))?;
    println!("{}", path.display());
    Ok(())
}
