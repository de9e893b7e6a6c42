//! `coordinator pause|resume|cancel SWEEP` and `coordinator priority SWEEP N`: a sweep's life
//! on a shared fleet (`coordinator::store::control`).

use proto::v1::ControlSweepRequest;

#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// The sweep's name.
    pub sweep: String,
    /// The coordinator's URL.
    #[arg(long, value_name = "URL", default_value = super::DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: super::ClientAuth,
}

#[derive(Debug, clap::Args)]
pub struct PriorityArgs {
    /// The sweep's name.
    pub sweep: String,
    /// The new priority: among active sweeps a higher one's tasks are leased first.
    #[arg(allow_negative_numbers = true)]
    pub priority: i64,
    /// The coordinator's URL.
    #[arg(long, value_name = "URL", default_value = super::DEFAULT_COORDINATOR)]
    pub coordinator: String,
    #[command(flatten)]
    pub auth: super::ClientAuth,
}

/// Pauses, resumes or cancels a sweep (`action`: the RPC's word).
pub async fn state(args: ControlArgs, action: &str) -> anyhow::Result<()> {
    send(
        &args.coordinator,
        &args.auth,
        ControlSweepRequest {
            sweep: args.sweep,
            action: action.to_string(),
            priority: None,
        },
    )
    .await
}

/// Changes a sweep's priority.
pub async fn priority(args: PriorityArgs) -> anyhow::Result<()> {
    send(
        &args.coordinator,
        &args.auth,
        ControlSweepRequest {
            sweep: args.sweep,
            action: String::new(),
            priority: Some(args.priority),
        },
    )
    .await
}

async fn send(
    coordinator: &str,
    auth: &super::ClientAuth,
    request: ControlSweepRequest,
) -> anyhow::Result<()> {
    let sweep = request.sweep.clone();
    let mut client = auth.connect(coordinator).await?;
    let answer = client
        .control_sweep(request)
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    let returned = match answer.leases_returned {
        0 => String::new(),
        n => format!(", {n} running task(s) stopped and pending again (no attempt counted)"),
    };
    super::output::print(format!(
        "sweep {sweep}: {}, priority {}{returned}\n",
        answer.state, answer.priority
    ))?;
    Ok(())
}
