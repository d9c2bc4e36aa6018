//! Events on the wire: compact bytes (postcard), the identity JetStream de-duplicates by, and
//! the subject (partition, host) an event is published on.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use towerwatch_event::{Event, Field, Locator, Origin, Value};

use crate::PARTITIONS;

#[derive(Serialize, Deserialize)]
enum WireValue {
    Null,
    Bool(bool),
    Number(Box<str>),
    Text(Box<str>),
}

/// An event as bytes: every field of [`Event`], times in nanoseconds.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    source: Box<str>,
    locator: Locator,
    time_ns: Option<i128>,
    event_id: Option<u32>,
    channel: Option<Box<str>>,
    provider: Option<Box<str>>,
    computer: Option<Box<str>>,
    record_id: Option<u64>,
    fields: Vec<(Box<str>, WireValue)>,
}

/// `e` as bytes.
pub fn encode(e: &Event) -> Vec<u8> {
    let wire = WireEvent {
        source: e.origin.source.as_ref().into(),
        locator: e.origin.locator,
        time_ns: e.timestamp.map(|t| t.as_nanosecond()),
        event_id: e.event_id,
        channel: e.channel.clone(),
        provider: e.provider.clone(),
        computer: e.computer.clone(),
        record_id: e.record_id,
        fields: e
            .fields
            .iter()
            .map(|f| {
                let v = match &f.value {
                    Value::Null => WireValue::Null,
                    Value::Bool(b) => WireValue::Bool(*b),
                    Value::Number(n) => WireValue::Number(n.clone()),
                    Value::Text(t) => WireValue::Text(t.clone()),
                };
                (f.name.clone(), v)
            })
            .collect(),
    };
    postcard::to_stdvec(&wire).expect("an event serialises")
}

/// The event `bytes` hold (made by [`encode`]).
pub fn decode(bytes: &[u8]) -> Result<Event, postcard::Error> {
    let w: WireEvent = postcard::from_bytes(bytes)?;
    let timestamp = match w.time_ns {
        Some(ns) => Some(
            jiff::Timestamp::from_nanosecond(ns)
                .map_err(|_| postcard::Error::DeserializeBadEncoding)?,
        ),
        None => None,
    };
    Ok(Event {
        timestamp,
        event_id: w.event_id,
        channel: w.channel,
        provider: w.provider,
        computer: w.computer,
        record_id: w.record_id,
        fields: w
            .fields
            .into_iter()
            .map(|(name, v)| Field {
                name,
                value: match v {
                    WireValue::Null => Value::Null,
                    WireValue::Bool(b) => Value::Bool(b),
                    WireValue::Number(n) => Value::Number(n),
                    WireValue::Text(t) => Value::Text(t),
                },
            })
            .collect(),
        origin: Origin {
            source: w.source.into(),
            locator: w.locator,
        },
    })
}

/// An event's identity: where it was read (source and record or line), as 32 hex digits.
/// JetStream drops a message whose id it saw within its window; the story builder keeps one
/// fact per identity for ever.
pub fn identity(source: &str, locator: Locator) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    let (kind, at) = match locator {
        Locator::Record(r) => (b'r', r),
        Locator::Line(l) => (b'l', l),
    };
    h.update([0, kind]);
    h.update(at.to_be_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The host an event belongs to (its computer, else its source: a log without one).
pub fn host_of(e: &Event) -> &str {
    e.computer.as_deref().unwrap_or(&e.origin.source)
}

/// The partition of a host: the same on every machine and in every version.
pub fn partition(host: &str) -> u32 {
    (towerwatch_event::source_digest(&host.to_ascii_lowercase()) % PARTITIONS as u64) as u32
}

/// The subject an event is published on: `towerwatch.events.<partition>.<host>`, the host
/// as one subject token (characters NATS gives a meaning to become `_`).
pub fn subject(e: &Event) -> String {
    let host = host_of(e);
    let token: String = host
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let token = if token.is_empty() { "_".into() } else { token };
    format!("{}.{}.{token}", crate::EVENTS_SUBJECTS, partition(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_comes_back_whole_and_keeps_its_identity_and_subject() {
        let mut e = Event::new(Origin::record("C:/logs/Security.evtx", 4711));
        e.set_channel("Security");
        e.set_event_id(4624);
        e.computer = Some("DC01.corp.example".into());
        e.record_id = Some(4711);
        e.timestamp = "2019-03-05T10:00:00.1234567Z".parse().ok();
        e.push("TargetUserName", Value::text("adm.x"));
        e.push("LogonType", Value::Number("3".into()));
        e.push("Elevated", Value::Bool(true));
        e.push("Nothing", Value::Null);
        let back = decode(&encode(&e)).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            identity("C:/logs/Security.evtx", Locator::Record(4711)),
            identity(&back.origin.source, back.origin.locator)
        );
        assert_ne!(
            identity("C:/logs/Security.evtx", Locator::Record(4711)),
            identity("C:/logs/Security.evtx", Locator::Line(4711))
        );
        let s = subject(&e);
        assert!(s.starts_with("towerwatch.events."), "{s}");
        assert!(s.ends_with(".dc01_corp_example"), "{s}");
        assert_eq!(s.split('.').count(), 4, "{s}");
        // Case does not move a host to another worker.
        assert_eq!(partition("DC01"), partition("dc01"));
    }

    #[test]
    fn bytes_that_are_no_event_are_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(&[0xff; 40]).is_err());
    }
}
