//! Storing messages in JetStream, at least once: published a window at a time, their
//! acknowledgements awaited together (after an outage they time out together, not one after
//! another), those that failed published again under the same ids, which JetStream stores
//! once.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::HeaderMap;

use crate::{FleetError, IN_FLIGHT};

/// One message for a stream, with the id JetStream de-duplicates it by.
pub(crate) struct Outgoing {
    pub subject: String,
    pub id: String,
    pub payload: bytes::Bytes,
}

/// Publishes every message (with `headers`) and returns once JetStream has stored each one,
/// with those it held already (their ids seen within its window). A message not
/// stored is published again with a growing pause, for `retry_for` at most (`None`: until it
/// is stored).
pub(crate) async fn store_all(
    js: &jetstream::Context,
    headers: Option<&HeaderMap>,
    mut todo: Vec<Outgoing>,
    retry_for: Option<Duration>,
) -> Result<Vec<Outgoing>, FleetError> {
    let started = Instant::now();
    let mut held = Vec::new();
    let mut backoff = Duration::from_millis(100);
    while !todo.is_empty() {
        let mut failed = Vec::new();
        let mut why = None;
        let mut rest = todo.into_iter().peekable();
        while rest.peek().is_some() {
            let window: Vec<Outgoing> = rest.by_ref().take(IN_FLIGHT).collect();
            let mut waiting = Vec::with_capacity(window.len());
            for m in window {
                let mut publish = jetstream::context::Publish::build()
                    .payload(m.payload.clone())
                    .message_id(&m.id);
                if let Some(h) = headers {
                    publish = publish.headers(h.clone());
                }
                match js.send_publish(m.subject.clone(), publish).await {
                    Ok(ack) => waiting.push((ack, m)),
                    Err(e) => {
                        why.get_or_insert_with(|| e.to_string());
                        failed.push(m);
                    }
                }
            }
            let (acks, sent): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
            let results =
                futures::future::join_all(acks.into_iter().map(|a| a.into_future())).await;
            for (r, m) in results.into_iter().zip(sent) {
                match r {
                    Ok(ack) if ack.duplicate => held.push(m),
                    Ok(_) => {}
                    Err(e) => {
                        why.get_or_insert_with(|| e.to_string());
                        failed.push(m);
                    }
                }
            }
        }
        if let Some(why) = why {
            if retry_for.is_some_and(|limit| started.elapsed() >= limit) {
                return Err(FleetError::JetStream(format!(
                    "{} messages not stored for {:?}: {why}",
                    failed.len(),
                    started.elapsed()
                )));
            }
            eprintln!(
                "towerwatch: {} messages not stored yet ({why}); again in {backoff:?}",
                failed.len()
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        todo = failed;
    }
    Ok(held)
}

/// Events read and not yet published, as messages per subject: a message is closed at
/// [`crate::wire::PER_MESSAGE`] events or [`crate::wire::MESSAGE_BYTES`].
#[derive(Default)]
pub(crate) struct Pending {
    open: BTreeMap<String, Open>,
    closed: Vec<Outgoing>,
    pub(crate) events: u64,
}

struct Open {
    first: [u8; 16],
    events: usize,
    payload: Vec<u8>,
}

impl Pending {
    pub(crate) fn push(&mut self, id: [u8; 16], e: &towerwatch_event::Event) {
        let subject = crate::wire::subject(e);
        let open = self.open.entry(subject.clone()).or_insert_with(|| Open {
            first: id,
            events: 0,
            payload: Vec::new(),
        });
        crate::wire::push_frame(&mut open.payload, &crate::wire::event_frame(&id, e));
        open.events += 1;
        self.events += 1;
        if open.events >= crate::wire::PER_MESSAGE
            || open.payload.len() >= crate::wire::MESSAGE_BYTES
        {
            let open = self.open.remove(&subject).expect("just pushed to");
            self.closed.push(open.into_message(subject));
        }
    }

    /// Every message, the open ones closed, and how many events they hold.
    pub(crate) fn take(&mut self) -> (Vec<Outgoing>, u64) {
        let mut out = std::mem::take(&mut self.closed);
        out.extend(
            std::mem::take(&mut self.open)
                .into_iter()
                .map(|(subject, open)| open.into_message(subject)),
        );
        (out, std::mem::take(&mut self.events))
    }
}

impl Open {
    fn into_message(self, subject: String) -> Outgoing {
        Outgoing {
            subject,
            id: crate::wire::message_id(&self.first, self.events),
            payload: self.payload.into(),
        }
    }
}

/// Events in `messages` (frames).
pub(crate) fn events_in(messages: &[Outgoing]) -> u64 {
    messages
        .iter()
        .map(|m| crate::wire::frames(&m.payload).count() as u64)
        .sum()
}

/// An ingest node's way into the events stream (`serve --fleet --nats`): events sent to it
/// are published as `ship --nats` publishes a file's, by their host's subject, each with
/// its identity.
pub struct Publisher {
    url: String,
    retry_for: Duration,
    js: tokio::sync::OnceCell<jetstream::Context>,
}

impl Publisher {
    /// A publisher to `url`, connected at its first use; a message JetStream does not store
    /// is published again for `retry_for` at most.
    pub fn new(url: &str, retry_for: Duration) -> Publisher {
        Publisher {
            url: url.to_string(),
            retry_for,
            js: tokio::sync::OnceCell::new(),
        }
    }

    /// Publishes `events`, the identity of each made of `scope` (where they were read: the
    /// sender's source) and its place, and returns once JetStream has stored them all, with
    /// how many it held already (sent before).
    pub async fn publish(
        &self,
        scope: &str,
        events: &[towerwatch_event::Event],
    ) -> Result<u64, FleetError> {
        let held = self
            .publish_identified(
                events
                    .iter()
                    .map(|e| (crate::wire::identity(scope, e.origin.locator), e)),
            )
            .await?;
        Ok(held.len() as u64)
    }

    /// Publishes events with the identities given, and returns once JetStream has stored
    /// them all, with the identities of those it held already.
    pub async fn publish_identified<'e>(
        &self,
        events: impl IntoIterator<Item = ([u8; 16], &'e towerwatch_event::Event)>,
    ) -> Result<std::collections::HashSet<[u8; 16]>, FleetError> {
        let js = self
            .js
            .get_or_try_init(|| async {
                let js = crate::connect(&self.url).await?;
                crate::streams(&js).await?;
                Ok::<_, FleetError>(js)
            })
            .await?;
        let mut pending = Pending::default();
        for (id, e) in events {
            pending.push(id, e);
        }
        let (messages, _) = pending.take();
        let held = store_all(js, None, messages, Some(self.retry_for)).await?;
        Ok(held
            .iter()
            .flat_map(|m| crate::wire::frames(&m.payload))
            .filter_map(|f| f.ok()?.get(..16)?.try_into().ok())
            .collect())
    }
}
