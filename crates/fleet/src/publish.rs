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

/// An event whose frame alone is over what a message may hold (its size): not published.
#[derive(Debug)]
pub(crate) struct TooLarge(pub usize);

impl Pending {
    /// Takes an event (counted either way), or refuses it when it cannot travel.
    pub(crate) fn push(
        &mut self,
        id: [u8; 16],
        e: &towerwatch_event::Event,
    ) -> Result<(), TooLarge> {
        self.events += 1;
        let frame = crate::wire::event_frame(&id, e);
        if !crate::wire::fits(0, frame.len()) {
            return Err(TooLarge(frame.len()));
        }
        let subject = crate::wire::subject(e);
        if self
            .open
            .get(&subject)
            .is_some_and(|open| !crate::wire::fits(open.payload.len(), frame.len()))
        {
            let open = self.open.remove(&subject).expect("just looked at");
            self.closed.push(open.into_message(subject.clone()));
        }
        let open = self.open.entry(subject.clone()).or_insert_with(|| Open {
            first: id,
            events: 0,
            payload: Vec::new(),
        });
        crate::wire::push_frame(&mut open.payload, &frame);
        open.events += 1;
        if open.events >= crate::wire::PER_MESSAGE
            || open.payload.len() >= crate::wire::MESSAGE_BYTES
        {
            let open = self.open.remove(&subject).expect("just pushed to");
            self.closed.push(open.into_message(subject));
        }
        Ok(())
    }

    /// Every message, the open ones closed, and how many events were taken (refused ones
    /// too).
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
    nats: crate::NatsAccess,
    retry_for: Duration,
    js: tokio::sync::OnceCell<jetstream::Context>,
}

impl Publisher {
    /// A publisher to NATS, connected at its first use; a message JetStream does not store
    /// is published again for `retry_for` at most.
    pub fn new(nats: crate::NatsAccess, retry_for: Duration) -> Publisher {
        Publisher {
            nats,
            retry_for,
            js: tokio::sync::OnceCell::new(),
        }
    }

    /// Publishes `events`, each sent as its line of `source` (its identity:
    /// [`crate::wire::sent_identity`]), and returns once JetStream has stored them all.
    pub async fn publish(
        &self,
        source: &str,
        events: &[towerwatch_event::Event],
    ) -> Result<Published, FleetError> {
        self.publish_identified(
            events
                .iter()
                .map(|e| (crate::wire::sent_identity(source, e.origin.locator), e)),
        )
        .await
    }

    /// Publishes events with the identities given, and returns once JetStream has stored
    /// them all.
    pub async fn publish_identified<'e>(
        &self,
        events: impl IntoIterator<Item = ([u8; 16], &'e towerwatch_event::Event)>,
    ) -> Result<Published, FleetError> {
        let js = self
            .js
            .get_or_try_init(|| async {
                let js = crate::connect(&self.nats).await?;
                crate::streams(&js).await?;
                Ok::<_, FleetError>(js)
            })
            .await?;
        let mut pending = Pending::default();
        let mut too_large = std::collections::HashMap::new();
        for (id, e) in events {
            if let Err(TooLarge(size)) = pending.push(id, e) {
                too_large.insert(id, size);
            }
        }
        let (messages, _) = pending.take();
        let held = store_all(js, None, messages, Some(self.retry_for)).await?;
        Ok(Published {
            held: held
                .iter()
                .flat_map(|m| crate::wire::frames(&m.payload))
                .filter_map(|f| f.ok()?.get(..16)?.try_into().ok())
                .collect(),
            too_large,
        })
    }
}

/// What a [`Publisher`] did with the events it was given, by identity.
#[derive(Debug, Default)]
pub struct Published {
    /// Those JetStream held already (sent before).
    pub held: std::collections::HashSet<[u8; 16]>,
    /// Those over what a message may hold, with their size: not published.
    pub too_large: std::collections::HashMap<[u8; 16], usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use towerwatch_event::{Event, Origin, Value};

    fn event(line: u64, bytes: usize) -> Event {
        let mut e = Event::new(Origin::line("a.jsonl", line));
        e.computer = Some("WEB01".into());
        e.push("CommandLine", Value::text("x".repeat(bytes)));
        e
    }

    #[test]
    fn no_message_goes_past_what_nats_takes_and_an_event_too_large_for_any_is_refused() {
        let mut pending = Pending::default();
        let id = |n: u8| [n; 16];
        pending.push(id(1), &event(1, 250 * 1024)).unwrap();
        // It would take the open message past the limit: that one is closed first.
        pending.push(id(2), &event(2, 900 * 1024)).unwrap();
        let refused = pending.push(id(3), &event(3, 2 * 1024 * 1024));
        assert!(
            matches!(refused, Err(TooLarge(n)) if n > 2 * 1024 * 1024),
            "{refused:?}"
        );
        let (messages, taken) = pending.take();
        assert_eq!(taken, 3, "a refused event is counted with those passed");
        assert_eq!(messages.len(), 2);
        for m in &messages {
            assert!(
                m.payload.len() <= crate::wire::MAX_MESSAGE,
                "{}",
                m.payload.len()
            );
            assert_eq!(crate::wire::frames(&m.payload).count(), 1);
        }
        assert_eq!(events_in(&messages), 2);
        // Small events share a message, up to PER_MESSAGE of them.
        for n in 0..(crate::wire::PER_MESSAGE + 1) {
            pending.push(id(4), &event(n as u64, 10)).unwrap();
        }
        let (messages, _) = pending.take();
        let sizes: Vec<usize> = messages
            .iter()
            .map(|m| crate::wire::frames(&m.payload).count())
            .collect();
        assert_eq!(sizes, vec![crate::wire::PER_MESSAGE, 1]);
    }

    #[test]
    fn what_a_sender_names_never_takes_a_shipped_files_identities() {
        let shipped =
            crate::wire::identity("host\n/var/log/a.jsonl", towerwatch_event::Locator::Line(7));
        let sent = crate::wire::sent_identity(
            "host\n/var/log/a.jsonl",
            towerwatch_event::Locator::Line(7),
        );
        assert_ne!(shipped, sent);
    }
}
