//! A detection worker: judges the events of its partitions and publishes their facts.
//!
//! Each partition has one durable pull consumer (`judge-<p>`); a worker pulls its own
//! (`p % workers == index`). An event is acknowledged only after its facts are stored in the
//! facts stream (their publish acknowledged), so a worker that dies loses nothing: its
//! unacknowledged events are delivered again after the ack wait, to whoever pulls the
//! partition. A partition that nobody pulls for two looks in a row while it holds work (its
//! worker is gone) is adopted by a worker that is alive; judging is per event, so any
//! worker may judge any partition, and the facts' identities make a second judging change
//! nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind, Message};
use async_nats::HeaderMap;
use futures::StreamExt;
use tokio::sync::mpsc;
use towerwatch_hunt::Hunt;

use crate::{FleetError, EVENTS, EVENTS_SUBJECTS, FACTS_SUBJECTS, PARTITIONS, RULES_HEADER};

/// Which share of the partitions a worker owns, and how it pulls.
#[derive(Debug, Clone)]
pub struct Share {
    pub index: u32,
    pub workers: u32,
    /// How long a delivered event may stay unacknowledged before it goes to another puller.
    pub ack_wait: Duration,
    /// Events judged between two publishes of their facts.
    pub batch: usize,
}

impl Share {
    fn owns(&self, p: u32) -> bool {
        p % self.workers.max(1) == self.index
    }
}

/// What a worker did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Events judged (a redelivered one again).
    pub judged: AtomicU64,
    /// Of those, delivered more than once.
    pub redelivered: AtomicU64,
    /// Messages that held no event (named on stderr, acknowledged so they do not return).
    pub rejected: AtomicU64,
    /// Bytes of events in, and of facts out.
    pub event_bytes: AtomicU64,
    pub fact_bytes: AtomicU64,
    /// Partitions adopted from a worker that stopped pulling them.
    pub adopted: AtomicU64,
}

/// The durable consumer of partition `p`.
pub async fn partition_consumer(
    js: &jetstream::Context,
    p: u32,
    ack_wait: Duration,
) -> Result<PullConsumer, FleetError> {
    let filter = format!("{EVENTS_SUBJECTS}.{p}.>");
    crate::durable(js, EVENTS, &format!("judge-{p}"), filter, ack_wait, 20_000).await
}

/// Pulls partition `p` into `tx` until the channel closes, pulling again after an error (an
/// outage of the server).
fn pull_partition(
    js: jetstream::Context,
    p: u32,
    ack_wait: Duration,
    tx: mpsc::Sender<(u32, Message)>,
) {
    tokio::spawn(async move {
        loop {
            let pulled = async {
                let consumer = partition_consumer(&js, p, ack_wait).await?;
                let mut messages = crate::pull(consumer, 500).await?;
                while let Some(m) = messages.next().await {
                    let m = m.map_err(FleetError::js)?;
                    if tx.send((p, m)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok::<(), FleetError>(())
            }
            .await;
            if tx.is_closed() {
                return;
            }
            if let Err(e) = pulled {
                eprintln!("towerwatch worker: partition {p}: {e} (pulling again)");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Runs a worker until `stop` says so: judges the events of its share with `hunt` and
/// publishes their facts.
pub async fn run(
    hunt: &'static Hunt,
    js: jetstream::Context,
    share: Share,
    tally: Arc<Tally>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(), FleetError> {
    crate::streams(&js).await?;
    let rules = crate::rules_digest(hunt);
    let (tx, mut rx) = mpsc::channel::<(u32, Message)>(4 * share.batch.max(1));
    let mut pulled = BTreeSet::new();
    for p in (0..PARTITIONS).filter(|&p| share.owns(p)) {
        pull_partition(js.clone(), p, share.ack_wait, tx.clone());
        pulled.insert(p);
    }
    let mut judge = hunt.judge();
    let mut strikes = [0u8; PARTITIONS as usize];
    let mut next_look = tokio::time::Instant::now() + share.ack_wait;
    loop {
        if stop() {
            return Ok(());
        }
        // A batch: what arrives within a few milliseconds of the first, up to the batch size.
        let mut batch = Vec::with_capacity(share.batch);
        tokio::select! {
            got = rx.recv() => match got {
                Some(m) => batch.push(m),
                None => return Ok(()),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(5);
        while batch.len() < share.batch && !batch.is_empty() {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(m)) => batch.push(m),
                _ => break,
            }
        }
        if !batch.is_empty() {
            judge_batch(&js, &mut judge, &rules, batch, &tally).await?;
        }
        if tokio::time::Instant::now() >= next_look {
            next_look = tokio::time::Instant::now() + share.ack_wait;
            adopt_orphans(&js, &share, &mut pulled, &mut strikes, &tx, &tally).await;
        }
    }
}

/// Judges a batch, publishes every fact, waits until the facts stream has them all, then
/// acknowledges the events.
async fn judge_batch(
    js: &jetstream::Context,
    judge: &mut towerwatch_hunt::Judge<'static>,
    rules: &str,
    batch: Vec<(u32, Message)>,
    tally: &Tally,
) -> Result<(), FleetError> {
    let mut out = Vec::with_capacity(batch.len());
    let mut keep = Vec::with_capacity(batch.len());
    for (p, m) in batch {
        if m.info().is_ok_and(|i| i.delivered > 1) {
            tally.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        tally
            .event_bytes
            .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
        match crate::wire::decode(&m.payload) {
            Ok(event) => {
                let judged = judge.judge(event);
                // The identity ingest gave the event, else where the event says it was read.
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .and_then(|v| crate::wire::from_hex(v.as_str()))
                    .unwrap_or_else(|| crate::wire::identity(&judged.source, judged.locator));
                let bytes = crate::wire::encode_fact(&id, &judged);
                let id = crate::wire::hex(&id);
                tally
                    .fact_bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                tally.judged.fetch_add(1, Ordering::Relaxed);
                out.push(crate::publish::Outgoing {
                    subject: format!("{FACTS_SUBJECTS}.{p}"),
                    id,
                    payload: bytes.into(),
                });
                keep.push(m);
            }
            Err(e) => {
                let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
                eprintln!(
                    "towerwatch worker: {} message {seq} ({}) holds no event: {e}",
                    EVENTS, m.subject
                );
                tally.rejected.fetch_add(1, Ordering::Relaxed);
                let _ = m.ack_with(AckKind::Term).await;
            }
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(RULES_HEADER, rules);
    crate::publish::store_all(js, Some(&headers), out, None).await?;
    for m in keep {
        // A lost acknowledgement only means the event is judged again: harmless.
        let _ = m.ack().await;
    }
    Ok(())
}

/// Adopts each partition that holds work while nobody has pulled it for two looks.
async fn adopt_orphans(
    js: &jetstream::Context,
    share: &Share,
    pulled: &mut BTreeSet<u32>,
    strikes: &mut [u8; PARTITIONS as usize],
    tx: &mpsc::Sender<(u32, Message)>,
    tally: &Tally,
) {
    let others: Vec<u32> = (0..PARTITIONS).filter(|p| !pulled.contains(p)).collect();
    for p in others {
        let Ok(mut consumer) = partition_consumer(js, p, share.ack_wait).await else {
            continue;
        };
        let orphaned = match consumer.info().await {
            Ok(i) => i.num_waiting == 0 && (i.num_pending > 0 || i.num_ack_pending > 0),
            Err(_) => false,
        };
        let s = &mut strikes[p as usize];
        *s = if orphaned { s.saturating_add(1) } else { 0 };
        if *s >= 2 {
            eprintln!(
                "towerwatch worker {}: adopting partition {p}, which nobody pulls",
                share.index
            );
            pull_partition(js.clone(), p, share.ack_wait, tx.clone());
            pulled.insert(p);
            tally.adopted.fetch_add(1, Ordering::Relaxed);
        }
    }
}
