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
    /// Events judged (at least) between two publishes of their facts.
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
    /// Frames of messages that held no event (named on stderr; a message with no event at
    /// all is acknowledged so that it does not return).
    pub rejected: AtomicU64,
    /// Bytes of events in, and of facts out.
    pub event_bytes: AtomicU64,
    pub fact_bytes: AtomicU64,
    /// Partitions adopted from a worker that stopped pulling them.
    pub adopted: AtomicU64,
    /// Events whose facts were over what a message may hold (named on stderr; not sent).
    pub oversized: AtomicU64,
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
                // A few thousand events at a time: all must be judged within the ack wait.
                let mut messages = crate::pull(consumer, 50).await?;
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
    // A few batches' worth of messages (each up to PER_MESSAGE events) wait here.
    let queued = 4 * share.batch.div_ceil(crate::wire::PER_MESSAGE).max(1);
    let (tx, mut rx) = mpsc::channel::<(u32, Message)>(queued);
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
        let mut batch = Vec::new();
        tokio::select! {
            got = rx.recv() => match got {
                Some(m) => batch.push(m),
                None => return Ok(()),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(5);
        let mut events: usize = batch
            .iter()
            .map(|(_, m)| crate::wire::frames(&m.payload).count())
            .sum();
        while events < share.batch && !batch.is_empty() {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(m)) => {
                    events += crate::wire::frames(&m.1.payload).count();
                    batch.push(m);
                }
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

/// Judges a batch of messages (each a frame per event), publishes each message's facts as
/// one message (a frame per fact, under the events message's id), waits until the facts
/// stream has them all, then acknowledges the events.
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
        let redelivered = m.info().is_ok_and(|i| i.delivered > 1);
        tally
            .event_bytes
            .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
        // The facts, in as many messages as they need (most need one).
        let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
        let (events, bad) = crate::wire::read_frames(&m.payload, |f| {
            crate::wire::decode_event_frame(f).map_err(|e| e.to_string())
        });
        let (first, judged) = (events.first().map(|(id, _)| *id), events.len());
        for (id, event) in events {
            let fact = crate::wire::encode_fact(&id, &judge.judge(event));
            if !crate::wire::fits(0, fact.len()) {
                eprintln!(
                    "towerwatch worker: the facts of event {} are {} bytes, over the {} a message may hold: not sent (its detections are lost)",
                    crate::wire::hex(&id),
                    fact.len(),
                    crate::wire::MAX_MESSAGE
                );
                tally.oversized.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !crate::wire::fits(parts.last().map_or(0, Vec::len), fact.len()) {
                parts.push(Vec::new());
            }
            let part = parts.last_mut().expect("one at least");
            crate::wire::push_frame(part, &fact);
        }
        if let Some(first_bad) = bad.first {
            // One line per message, however many of its frames are bad.
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            eprintln!(
                "towerwatch worker: {EVENTS} message {seq} ({}): {} frames hold no event (first: {first_bad})",
                m.subject, bad.count
            );
            tally.rejected.fetch_add(bad.count, Ordering::Relaxed);
        }
        tally.judged.fetch_add(judged as u64, Ordering::Relaxed);
        if redelivered {
            tally
                .redelivered
                .fetch_add(judged as u64, Ordering::Relaxed);
        }
        let Some(first) = first else {
            // Nothing in it to judge: acknowledged, so that it does not come back.
            let _ = m.ack_with(AckKind::Term).await;
            continue;
        };
        // The events message's id (the same events judged again are the same facts
        // messages), else one made the same way.
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_string())
            .unwrap_or_else(|| crate::wire::message_id(&first, judged));
        let several = parts.len() > 1;
        for (k, part) in parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            tally
                .fact_bytes
                .fetch_add(part.len() as u64, Ordering::Relaxed);
            out.push(crate::publish::Outgoing {
                subject: format!("{FACTS_SUBJECTS}.{p}"),
                id: if several {
                    format!("{id}/{k}")
                } else {
                    id.clone()
                },
                payload: part.into(),
            });
        }
        keep.push(m);
    }
    let mut headers = HeaderMap::new();
    headers.insert(RULES_HEADER, rules);
    crate::publish::store_all(js, Some(&headers), out, None).await?;
    for m in keep {
        // A lost acknowledgement only means the events are judged again: harmless.
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
