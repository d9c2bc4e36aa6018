//! Storing messages in JetStream, at least once: published a window at a time, their
//! acknowledgements awaited together (after an outage they time out together, not one after
//! another), those that failed published again under the same ids, which JetStream stores
//! once.

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
