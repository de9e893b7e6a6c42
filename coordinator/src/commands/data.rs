//! Reading a sweep's stored results for `results`, `plot`, `export` and `report`: from a
//! running coordinator (`TaskLevels`, `TicketMasks`, `Status`) or read-only from its
//! database; both give the same data set.

use analysis::{Progress, SweepData, TicketData};
use coordinator::service::{wire, CoordinatorService};
use coordinator::store::StoreError;
use coordinator::sweep_data;
use proto::v1 as pb;

use super::Source;

/// Every task of `sweep` with its state and stored levels.
pub async fn sweep(source: &Source, sweep: &str) -> anyhow::Result<SweepData> {
    if let Some(db) = &source.db {
        let store = Source::open_db(db.clone()).await?;
        let name = sweep.to_string();
        return store
            .run(move |c| sweep_data::load(c, &name))
            .await
            .map_err(|e: StoreError| anyhow::anyhow!(e));
    }
    let mut client = source.connect().await?;
    let answer = client
        .task_levels(pb::TaskLevelsRequest {
            sweep: sweep.to_string(),
        })
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    sweep_data::from_wire(&answer).map_err(|e| anyhow::anyhow!(e))
}

/// The masks of level `level` of task `task_id` of `sweep`.
pub async fn ticket(
    source: &Source,
    sweep: &str,
    task_id: &str,
    level: usize,
) -> anyhow::Result<TicketData> {
    if let Some(db) = &source.db {
        let store = Source::open_db(db.clone()).await?;
        let (name, id) = (sweep.to_string(), task_id.to_string());
        return store
            .run(move |c| sweep_data::load_ticket(c, &name, &id, level))
            .await
            .map_err(|e: StoreError| anyhow::anyhow!(e));
    }
    let mut client = source.connect().await?;
    let answer = client
        .ticket_masks(pb::TicketMasksRequest {
            sweep: sweep.to_string(),
            task_id: task_id.to_string(),
            level: level as u64,
        })
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    sweep_data::ticket_from_wire(&answer).map_err(|e| anyhow::anyhow!(e))
}

/// The progress of `sweep` (from the status report), from the same source.
pub async fn progress(source: &Source, sweep: &str) -> anyhow::Result<Progress> {
    let report = if let Some(db) = &source.db {
        let store = Source::open_db(db.clone()).await?;
        let name = sweep.to_string();
        let windows = CoordinatorService::windows(&coordinator::ServerConfig::new(store.path()));
        store
            .run(move |c| {
                coordinator::store::queries::status(
                    c,
                    Some(&name),
                    coordinator::clock::now_ms(),
                    windows,
                )
            })
            .await
            .map_err(|e: StoreError| anyhow::anyhow!(e))?
    } else {
        let mut client = source.connect().await?;
        wire::status_from_wire(
            client
                .status(pb::StatusRequest {
                    sweep: Some(sweep.to_string()),
                })
                .await
                .map_err(super::rpc_error)?
                .into_inner(),
        )
    };
    Ok(wire::progress(&report, sweep))
}
