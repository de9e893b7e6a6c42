//! `coordinator retry`: make a sweep's failed tasks pending again (after fixing what made them
//! fail), with their attempts reset; their stored levels are kept.

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// The sweep's name.
    pub sweep: String,
    /// Only this task (its id, as `status` lists it); default: every failed task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// The coordinator's URL.
    #[arg(long, value_name = "URL", default_value = super::DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: super::ClientAuth,
}

pub async fn retry(args: RetryArgs) -> anyhow::Result<()> {
    let mut client = args.auth.connect(&args.coordinator).await?;
    let answer = client
        .retry_tasks(proto::v1::RetryTasksRequest {
            sweep: args.sweep.clone(),
            task_id: args.task.clone(),
        })
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    if answer.task_ids.is_empty() {
        super::output::print(format!("sweep {}: no failed task to retry\n", args.sweep))?;
    } else {
        super::output::print(format!(
            "sweep {}: {} failed task(s) pending again: {}\n",
            args.sweep,
            answer.task_ids.len(),
            answer.task_ids.join(" ")
        ))?;
    }
    Ok(())
}
