//! `coordinator submit`: send a sweep file to a coordinator.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The sweep file (YAML).
    #[arg(value_name = "SWEEP.yaml")]
    pub sweep: PathBuf,
    /// The coordinator's URL.
    #[arg(long, value_name = "URL", default_value = super::DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: super::ClientAuth,
    #[command(flatten)]
    pub overrides: super::SweepOverrides,
    /// The sweep's priority: among active sweeps a higher one's tasks are leased first
    /// (default 0; a sweep already submitted keeps its priority unless this is given).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i64>,
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    // Checked here first, so file errors name the local path and need no coordinator.
    let path = args.sweep.clone();
    let overrides = args.overrides.clone();
    let sweep = tokio::task::spawn_blocking(move || overrides.load(&path)).await??;
    let mut client = args.auth.connect(&args.coordinator).await?;
    let answer = client
        .submit_sweep(proto::v1::SubmitSweepRequest {
            name: sweep.name.clone(),
            yaml: sweep.yaml().to_string(),
            source: args.sweep.display().to_string(),
            priority: args.priority,
        })
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    super::output::print(format!(
        "sweep {}: {} task(s) added, {} already there, {} in total\n",
        answer.sweep, answer.added, answer.existing, answer.total
    ))?;
    Ok(())
}
