//! `towerwatch worker`, `towerwatch story-builder` and `ship --nats`: arguments → the hunt →
//! `towerwatch_fleet`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use towerwatch_fleet::{builder, ship, worker};
use towerwatch_hunt::Hunt;

use crate::term::{complainln, sayln};
use crate::{FleetHuntArgs, ShipArgs, StoryBuilderArgs, WorkerArgs};

fn hunt(args: &FleetHuntArgs) -> Result<&'static Hunt> {
    Ok(Box::leak(Box::new(crate::hunt::configure_setup(
        &args.setup,
    )?)))
}

/// One thread: a worker judges on it, and a second would only contend for the cores the
/// other workers use.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn worker(args: WorkerArgs) -> Result<ExitCode> {
    let hunt = hunt(&args.hunt)?;
    crate::interrupt::flag();
    let share = worker::Share {
        index: args.index,
        workers: args.workers.max(1),
        ack_wait: Duration::from_secs(args.hunt.ack_wait.max(1)),
        batch: args.batch.max(1),
    };
    if share.index >= share.workers {
        anyhow::bail!(
            "--index {} is not below --workers {}",
            share.index,
            share.workers
        );
    }
    let tally = Arc::new(worker::Tally::default());
    runtime()?.block_on(async {
        let js = towerwatch_fleet::connect(&args.hunt.access()).await?;
        worker::run(
            hunt,
            js,
            share,
            tally.clone(),
            &crate::interrupt::interrupted,
        )
        .await
    })?;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    sayln!(
        "towerwatch worker {}: {} events judged ({} delivered again), {} refused, {} with facts too large to send; {} bytes of events in, {} of facts out; {} partitions adopted",
        args.index,
        n(&tally.judged),
        n(&tally.redelivered),
        n(&tally.rejected),
        n(&tally.oversized),
        n(&tally.event_bytes),
        n(&tally.fact_bytes),
        n(&tally.adopted)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn story_builder(args: StoryBuilderArgs) -> Result<ExitCode> {
    let hunt = hunt(&args.hunt)?;
    crate::interrupt::flag();
    let pace = builder::Pace {
        ack_wait: Duration::from_secs(args.hunt.ack_wait.max(1)),
        batch: 2000,
        settle: Duration::from_millis(args.settle_ms),
        conclude_every: Duration::from_secs(args.conclude_every.max(1)),
    };
    let tally = Arc::new(builder::Tally::default());
    runtime()?.block_on(async {
        let js = towerwatch_fleet::connect(&args.hunt.access()).await?;
        builder::run(
            hunt,
            js,
            &args.database,
            pace,
            tally.clone(),
            &crate::interrupt::interrupted,
        )
        .await
    })?;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    sayln!(
        "towerwatch story-builder: {} facts received, {} new, {} refused; {} conclusions; {} ms keeping facts, {} ms concluding",
        n(&tally.received),
        n(&tally.kept),
        n(&tally.refused),
        n(&tally.conclusions),
        n(&tally.keeping_us) / 1000,
        n(&tally.concluding_us) / 1000
    );
    Ok(ExitCode::SUCCESS)
}

pub fn ship(nats: &str, args: &ShipArgs) -> Result<ExitCode> {
    let nats = args.nats_tls.access(nats);
    crate::interrupt::flag();
    let shipper = ship::NatsShipper {
        state: args
            .state
            .clone()
            .unwrap_or_else(|| PathBuf::from("towerwatch-ship.offsets.json")),
        retry_for: Duration::from_secs(args.retry_for),
    };
    let shipped = runtime()?.block_on(async {
        let js = towerwatch_fleet::connect(&nats).await?;
        let mut note = |note| match note {
            ship::Note::Rejected(what) => complainln!("towerwatch ship: {what}"),
            ship::Note::Skipped { path, why } => {
                complainln!("towerwatch ship: {path} skipped: {why}")
            }
            ship::Note::Restarted { path, source } => complainln!(
                "towerwatch ship: {path} was replaced or truncated: shipped again as {source}"
            ),
        };
        let stop = &crate::interrupt::interrupted;
        if args.follow {
            let poll = Duration::from_millis(args.poll_ms.max(1));
            shipper
                .follow(&js, &args.paths, poll, stop, &mut note)
                .await
        } else {
            shipper.run(&js, &args.paths, stop, &mut note).await
        }
    })?;
    sayln!(
        "towerwatch ship: {} files, {} events stored by {} ({} of them held already); {} records rejected, {} files skipped",
        shipped.files,
        shipped.events,
        nats.shown(),
        shipped.duplicates,
        shipped.rejected,
        shipped.skipped
    );
    Ok(if shipped.stopped {
        ExitCode::from(crate::interrupt::EXIT_CODE)
    } else {
        ExitCode::SUCCESS
    })
}
