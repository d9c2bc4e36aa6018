//! The story builder: keeps the workers' facts in PostgreSQL and concludes them into the
//! hunt's detections and operations.
//!
//! Facts come through one durable pull consumer (`story-builder`), so a builder that stops
//! resumes where it was. A batch is acknowledged only once its rows are committed; a fact
//! already kept (an event judged twice) changes nothing. The conclusion runs when the facts
//! stop coming for a moment (and at least every `conclude_every` while they keep coming): all
//! facts are absorbed in time order by the hunt's stream, which concludes as a file hunt does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt;
use towerwatch_hunt::{Detection, DetectionSink, HeldDetection, Hunt, HuntError};

use crate::store::{self, Row};
use crate::{FleetError, FACTS, FACTS_SUBJECTS, RULES_HEADER};

/// How the builder batches and concludes.
#[derive(Debug, Clone)]
pub struct Pace {
    pub ack_wait: Duration,
    /// Facts kept per transaction (at least: whole messages are kept).
    pub batch: usize,
    /// Quiet time after which it concludes.
    pub settle: Duration,
    /// Longest time between conclusions while facts keep coming.
    pub conclude_every: Duration,
}

/// What the builder did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Facts received (a redelivered one again), and of those new to the store.
    pub received: AtomicU64,
    pub kept: AtomicU64,
    /// Facts refused: judged with other rules, or frames that are no fact.
    pub refused: AtomicU64,
    pub conclusions: AtomicU64,
    /// Time spent keeping facts and concluding (µs).
    pub keeping_us: AtomicU64,
    pub concluding_us: AtomicU64,
}

async fn consumer(js: &jetstream::Context, ack_wait: Duration) -> Result<PullConsumer, FleetError> {
    let filter = format!("{FACTS_SUBJECTS}.>");
    crate::durable(js, FACTS, "story-builder", filter, ack_wait, 50_000).await
}

/// A new connection when the one in hand is closed (PostgreSQL restarted).
async fn reconnect_if_closed(db: &mut tokio_postgres::Client, database: &str) {
    if db.is_closed() {
        if let Ok(c) = store::connect(database).await {
            *db = c;
        }
    }
}

/// Runs the builder until `stop` says so.
pub async fn run(
    hunt: &'static Hunt,
    js: jetstream::Context,
    database: &str,
    pace: Pace,
    tally: Arc<Tally>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(), FleetError> {
    crate::streams(&js).await?;
    let rules = crate::rules_digest(hunt);
    let mut db = store::connect(database).await?;
    let (kept, concluded) = store::progress(&db).await?;
    // Facts kept since the last conclusion (a builder stopped before it concluded).
    let mut dirty = kept != concluded;
    let mut last_fact = Instant::now();
    let mut last_conclusion = Instant::now();
    'pull: loop {
        let pulled = async {
            // Messages hold up to PER_MESSAGE facts: about a batch of facts at a time, so
            // that few wait (and come again) while a conclusion runs.
            crate::pull(
                consumer(&js, pace.ack_wait).await?,
                pace.batch.div_ceil(crate::wire::PER_MESSAGE).clamp(1, 100),
            )
            .await
        };
        let mut messages = match pulled.await {
            Ok(m) => m,
            // NATS away: pull again in a moment.
            Err(e) => {
                if stop() {
                    return Ok(());
                }
                eprintln!("towerwatch story-builder: {e} (pulling again)");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue 'pull;
            }
        };
        loop {
            if stop() {
                return Ok(());
            }
            let (mut batch, mut facts) = (Vec::new(), 0);
            let until = tokio::time::Instant::now() + Duration::from_millis(50);
            while facts < pace.batch {
                match tokio::time::timeout_at(until, messages.next()).await {
                    Ok(Some(Ok(m))) => {
                        facts += crate::wire::frames(&m.payload).count();
                        batch.push(m);
                    }
                    Ok(Some(Err(e))) => {
                        eprintln!("towerwatch story-builder: {e} (pulling again)");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue 'pull;
                    }
                    Ok(None) => continue 'pull,
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                let started = Instant::now();
                keep_batch(&mut db, database, &rules, batch, &tally, stop).await?;
                tally
                    .keeping_us
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                dirty = true;
                last_fact = Instant::now();
            }
            // After a failed conclusion, the next waits a settle period at least.
            let quiet =
                last_fact.elapsed() >= pace.settle && last_conclusion.elapsed() >= pace.settle;
            if dirty && (quiet || last_conclusion.elapsed() >= pace.conclude_every) {
                let started = Instant::now();
                match conclude(hunt, &mut db).await {
                    Ok(()) => {
                        tally.conclusions.fetch_add(1, Ordering::Relaxed);
                        dirty = false;
                    }
                    // PostgreSQL away, say: the facts are kept; conclude again later.
                    Err(e) => {
                        eprintln!("towerwatch story-builder: cannot conclude now: {e}");
                        reconnect_if_closed(&mut db, database).await;
                    }
                }
                tally
                    .concluding_us
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                last_conclusion = Instant::now();
            }
        }
    }
}

/// Keeps a batch's facts (retrying, reconnecting, while PostgreSQL is away), then
/// acknowledges them.
async fn keep_batch(
    db: &mut tokio_postgres::Client,
    database: &str,
    rules: &str,
    batch: Vec<Message>,
    tally: &Tally,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(), FleetError> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut keep = Vec::with_capacity(batch.len());
    for m in batch {
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        let frames = crate::wire::frames(&m.payload).count() as u64;
        tally.received.fetch_add(frames, Ordering::Relaxed);
        let theirs = m
            .headers
            .as_ref()
            .and_then(|h| h.get(RULES_HEADER))
            .map(|v| v.as_str());
        if theirs != Some(rules) {
            // Left for a builder with those rules (a rolling upgrade), not dropped.
            eprintln!(
                "towerwatch story-builder: {FACTS} message {seq} was judged with other rules ({}, here {rules}): left for a builder with those rules",
                theirs.unwrap_or("none named")
            );
            tally.refused.fetch_add(frames, Ordering::Relaxed);
            let _ = m
                .ack_with(AckKind::Nak(Some(Duration::from_secs(60))))
                .await;
            continue;
        }
        let before = rows.len();
        let (heads, bad) = crate::wire::read_frames(&m.payload, |f| {
            crate::wire::fact_head(f)
                .map(|head| (head, f))
                .ok_or_else(|| format!("{} bytes are too few for a fact", f.len()))
        });
        rows.extend(heads.into_iter().map(|(head, f)| Row {
            head,
            body: m.payload.slice_ref(f),
        }));
        if let Some(first_bad) = bad.first {
            // One line per message, however many of its frames are bad.
            eprintln!(
                "towerwatch story-builder: {FACTS} message {seq}: {} frames hold no fact (first: {first_bad})",
                bad.count
            );
            tally.refused.fetch_add(bad.count, Ordering::Relaxed);
        }
        if rows.len() > before {
            keep.push(m);
        } else {
            // Nothing in it to keep: acknowledged, so that it does not come back.
            let _ = m.ack_with(AckKind::Term).await;
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut backoff = Duration::from_millis(200);
    let new = loop {
        match store::keep(db, &rows).await {
            Ok(n) => break n,
            Err(e) => {
                if stop() {
                    // Not acknowledged: delivered again to the next builder.
                    return Ok(());
                }
                eprintln!(
                    "towerwatch story-builder: cannot keep facts ({e}); again in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                reconnect_if_closed(db, database).await;
            }
        }
    };
    tally.kept.fetch_add(new, Ordering::Relaxed);
    for m in keep {
        let _ = m.ack().await;
    }
    Ok(())
}

/// Absorbs every kept fact in time order and keeps what the hunt concludes.
async fn conclude(hunt: &'static Hunt, db: &mut tokio_postgres::Client) -> Result<(), FleetError> {
    let started = Instant::now();
    // In time order already: nothing waits behind the watermark.
    let mut stream = hunt.stream(jiff::SignedDuration::ZERO);
    let (mut facts, mut unusable, mut first) = (0i64, 0u64, None);
    {
        let mut rows = std::pin::pin!(store::facts_in_order(db).await?);
        while let Some(body) = rows.next().await {
            let body = body?;
            // Facts come from other machines: one that does not read back, or names a rule
            // this builder does not have, is left out and reported, never absorbed.
            match crate::wire::decode_fact(&body).map_err(|e| e.to_string()) {
                Ok(j) => match j.check(hunt) {
                    Ok(()) => {
                        stream.push_judged(j);
                        facts += 1;
                    }
                    Err(why) => {
                        unusable += 1;
                        first.get_or_insert_with(|| format!("{} {:?}: {why}", j.source, j.locator));
                    }
                },
                Err(why) => {
                    unusable += 1;
                    first.get_or_insert_with(|| format!("it does not read back ({why})"));
                }
            }
        }
    }
    if let Some(first) = first {
        eprintln!("towerwatch story-builder: {unusable} kept facts left out (first: {first})");
    }
    let read = started.elapsed();
    let mut lines = Lines(store::DetectionLines::new(LINES_IN_MEMORY));
    let outcome = stream.finish(&mut lines)?;
    let detections = lines.0.len();
    let saved = store::Conclusion {
        facts,
        events: outcome.summary.events() as i64,
        operations: json("the analysis", &outcome.analysis)?,
        exposure: outcome
            .exposure
            .as_ref()
            .map(|x| json("the exposure", x))
            .transpose()?,
        fired: json("what fired", &outcome.fired(hunt))?,
    };
    let finished = started.elapsed();
    let stories = outcome.analysis.operations.len();
    store::save_results(db, &saved, lines.0).await?;
    eprintln!(
        "towerwatch story-builder: concluded {facts} facts: {detections} detections, {stories} operations \
         ({} ms reading and absorbing, {} ms concluding, {} ms saving)",
        read.as_millis(),
        (finished - read).as_millis(),
        (started.elapsed() - finished).as_millis()
    );
    Ok(())
}

/// `v` as JSON text (`what` names it if it cannot be).
fn json(what: &str, v: &impl serde::Serialize) -> Result<String, FleetError> {
    serde_json::to_string(v).map_err(|e| FleetError::Io(format!("{what} does not serialise: {e}")))
}

/// Detection lines a conclusion keeps in memory before the rest wait on disk.
const LINES_IN_MEMORY: usize = 2_048;

/// Detections as JSON lines, as `hunt -o x.jsonl` writes them.
struct Lines(store::DetectionLines);

impl DetectionSink for Lines {
    fn detection(&mut self, d: &Detection) -> Result<(), HuntError> {
        Ok(self.0.push(serde_json::to_string(d)?)?)
    }

    fn held(&mut self, h: &HeldDetection) -> Result<(), HuntError> {
        Ok(self.0.push(h.json.clone())?)
    }
}
