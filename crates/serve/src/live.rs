//! The live hunt: each new event goes through one long-lived stream, on a thread of its
//! own, as soon as it is stored; its detection is stored and can be read as soon as the
//! event passes the watermark (the newest event time less the lateness), without waiting for
//! the results of everything. Ingest (parse, store) and the live hunt run side by side.
//!
//! These detections come before the routine's verdict (which needs all the evidence):
//! `GET /api/v1/detections` gives the concluded ones. Text logs (stored as lines, read
//! whole) are in the concluded results only.
//!
//! A batch waits in a bounded queue (a full queue holds the ingest request back). Events
//! acknowledged but not yet through the live hunt are lost to it if the process dies; a
//! starting server forgets the stored live detections and finds them again from the events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use jiff::SignedDuration;
use towerwatch_event::Event;
use towerwatch_hunt::{Hunt, HuntStream};

use crate::store::Store;

/// Batches that may wait for the live hunt.
const QUEUE: usize = 8;

/// Where the ingest routes hand new events to the live hunt.
pub(crate) struct LiveHandle {
    queue: SyncSender<Vec<Event>>,
    pub counters: Arc<LiveCounters>,
}

/// What the live hunt has done, for `/metrics` and readers that wait for it.
#[derive(Default)]
pub(crate) struct LiveCounters {
    /// Events handed over and not yet through the live hunt.
    pub pending: AtomicU64,
    /// Events waiting behind the watermark.
    pub waiting: AtomicU64,
    /// Events later than the lateness allows (taken all the same).
    pub late: AtomicU64,
    /// Detections found.
    pub found: AtomicU64,
}

impl LiveHandle {
    /// Hands events just stored (never one the store held already) to the live hunt; waits
    /// while its queue is full.
    pub fn push(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        self.counters
            .pending
            .fetch_add(events.len() as u64, Ordering::SeqCst);
        let n = events.len() as u64;
        if self.queue.send(events).is_err() {
            // The live hunt stopped (its store failed): nothing will take them.
            self.counters.pending.fetch_sub(n, Ordering::SeqCst);
        }
    }
}

/// Starts the live hunt over `hunt`, brought up to date with the JSON events the store in
/// `data` holds (their detections found again), on a thread of its own.
pub(crate) fn start(
    hunt: &'static Hunt,
    lateness: SignedDuration,
    database: &crate::db::Database,
) -> Result<LiveHandle, crate::ServeError> {
    let mut store = Store::open_in(database)?;
    let mut stream = hunt.stream(lateness).detections_only();
    store.clear_live()?;
    let mut found = Vec::new();
    store.replay_events(|e| {
        stream.push(e);
        found.extend(take(&mut stream));
    })?;
    store.add_live(&found)?;
    let counters = Arc::new(LiveCounters::default());
    counters.found.store(found.len() as u64, Ordering::SeqCst);
    let (queue, batches) = sync_channel::<Vec<Event>>(QUEUE);
    let shared = counters.clone();
    std::thread::Builder::new()
        .name("live hunt".into())
        .spawn(move || {
            for batch in batches {
                let n = batch.len() as u64;
                for e in batch {
                    stream.push(e);
                }
                let found = take(&mut stream);
                let stored = store.add_live(&found);
                shared.found.fetch_add(found.len() as u64, Ordering::SeqCst);
                shared
                    .waiting
                    .store(stream.waiting() as u64, Ordering::SeqCst);
                shared.late.store(stream.late(), Ordering::SeqCst);
                shared.pending.fetch_sub(n, Ordering::SeqCst);
                if let Err(e) = stored {
                    eprintln!("towerwatch serve: the live hunt stops: {e}");
                    return;
                }
            }
        })?;
    Ok(LiveHandle { queue, counters })
}

/// The detections the stream found since the last call, as JSON lines.
fn take(stream: &mut HuntStream<'static>) -> Vec<String> {
    stream
        .take_detections()
        .iter()
        .map(|d| serde_json::to_string(d).expect("a detection serialises"))
        .collect()
}
