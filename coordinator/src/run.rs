//! `coordinator run`: a sweep run locally, with an embedded coordinator and local workers.
//!
//! PLACEHOLDER: the lead replaces this file (it is the only part of the binary that links the
//! worker crate). The embedding API it builds on is `coordinator::RunningServer::start`.

use std::path::PathBuf;

/// Arguments of `coordinator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The sweep file.
    pub sweep: PathBuf,
}

/// Runs a sweep locally.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "`coordinator run {}` is not available in this build yet: use `coordinator serve` with workers",
        args.sweep.display()
    )
}
