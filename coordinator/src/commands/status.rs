//! `coordinator status`: sweep progress, live workers, throughput and ETA, once or watched.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use coordinator::service::{wire, CoordinatorService};
use coordinator::store::queries::StatusReport;
use coordinator::store::StoreError;
use coordinator::{clock, render, ServerConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use proto::v1 as pb;

use super::Source;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this sweep.
    pub sweep: Option<String>,
    /// Refresh every two seconds until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub source: Source,
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut reader = Reader::new(&args.source).await?;
    if !args.watch {
        super::output::print(render::status_text(
            &reader.fetch(args.sweep.clone()).await?,
        ))?;
        return Ok(());
    }
    let mut bars = Bars::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let status = reader.fetch(args.sweep.clone()).await?;
        if std::io::stderr().is_terminal() {
            bars.show(&status);
        } else {
            super::output::print(format!("{}\n", render::status_text(&status)))?;
        }
    }
}

/// Reads status reports from a coordinator or a database.
enum Reader {
    Remote(coordinator::client::Client),
    Db(coordinator::store::Store),
}

impl Reader {
    async fn new(source: &Source) -> anyhow::Result<Reader> {
        Ok(match &source.db {
            Some(db) => Reader::Db(Source::open_db(db.clone()).await?),
            None => Reader::Remote(source.connect().await?),
        })
    }

    async fn fetch(&mut self, sweep: Option<String>) -> anyhow::Result<StatusReport> {
        match self {
            Reader::Remote(client) => Ok(wire::status_from_wire(
                client
                    .status(pb::StatusRequest { sweep })
                    .await
                    .map_err(super::rpc_error)?
                    .into_inner(),
            )),
            Reader::Db(store) => {
                // The serving coordinator's windows with default settings.
                let windows = CoordinatorService::windows(&ServerConfig::new(store.path()));
                store
                    .run(move |c| {
                        coordinator::store::queries::status(
                            c,
                            sweep.as_deref(),
                            clock::now_ms(),
                            windows,
                        )
                    })
                    .await
                    .map_err(|e: StoreError| anyhow::anyhow!(e))
            }
        }
    }
}

/// One progress bar per sweep and a line for the workers.
struct Bars {
    multi: MultiProgress,
    sweeps: HashMap<String, ProgressBar>,
    workers: ProgressBar,
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::new();
        let workers = multi.add(ProgressBar::new_spinner());
        workers.set_style(
            ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Bars {
            multi,
            sweeps: HashMap::new(),
            workers,
        }
    }

    fn show(&mut self, status: &StatusReport) {
        for s in &status.sweeps {
            let bar = self.sweeps.entry(s.name.clone()).or_insert_with(|| {
                let bar = self
                    .multi
                    .insert_before(&self.workers, ProgressBar::new(s.total));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>16} [{bar:32}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(s.name.clone());
                bar
            });
            bar.set_length(s.total);
            bar.set_position(s.done + s.failed);
            bar.set_message(format!(
                "pending {} leased {} failed {} | work {} | {:.1} levels/min | eta {}",
                s.pending,
                s.leased,
                s.failed,
                coordinator::render::work_done(s.work_done),
                s.levels_per_minute,
                s.eta_seconds
                    .map_or_else(|| "-".to_string(), analysis::tables::duration)
            ));
        }
        let busy: Vec<String> = status
            .workers
            .iter()
            .map(|w| {
                let health = if w.unhealthy() { " (unhealthy)" } else { "" };
                match w.tasks.first() {
                    Some(t) => format!("{}{health}: {} level {}", w.name, t.task_id, t.level),
                    None => format!("{}{health}: idle", w.name),
                }
            })
            .collect();
        self.workers.set_message(format!(
            "{} live worker(s){}{}",
            status.workers.len(),
            if busy.is_empty() { "" } else { " | " },
            busy.join(" | ")
        ));
    }
}
