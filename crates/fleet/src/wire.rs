//! Events on the wire: compact bytes (postcard), each event's identity, the subject
//! (partition, host) its message is published on, and the framing that puts many events (or
//! many facts) in one message: JetStream's work and acknowledgements are per message, so a
//! message per event would cost more than judging the event.

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

/// An event's identity, 16 bytes: where it was read — `scope` (the shipper's host and the
/// file's canonical path: two hosts' `Security.evtx` are two files, one file named two ways
/// is one) and its record or line. Given at ingest and carried with the event (its message
/// id, [`hex`]) into its facts: JetStream drops a message whose id it saw within its window,
/// the story builder keeps one fact per identity for ever.
pub fn identity(scope: &str, locator: Locator) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    let (kind, at) = match locator {
        Locator::Record(r) => (b'r', r),
        Locator::Line(l) => (b'l', l),
    };
    h.update([0, kind]);
    h.update(at.to_be_bytes());
    h.finalize()[..16].try_into().expect("16 bytes")
}

/// An identity as the message id JetStream de-duplicates by.
pub fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity a message id names (`None`: not one of ours).
pub fn from_hex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

/// Where a shipper on this host reads `path` from: the scope of its events' identities.
pub fn scope_of(path: &std::path::Path) -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{host}\n{}", canonical.display())
}

/// What the story builder needs of a fact to keep it, ahead of the fact itself, so that it
/// keeps facts without reading them: identity, time (µs; untimed first) and record order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactHead {
    pub id: [u8; 16],
    pub time_us: i64,
    pub order: (u64, u64),
}

const HEAD: usize = 16 + 8 + 8 + 8;

/// A judged event (of identity `id`) as the bytes a worker publishes: its head, then the
/// judged event.
pub fn encode_fact(id: &[u8; 16], j: &towerwatch_hunt::Judged) -> Vec<u8> {
    let order = j.order_key();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(id);
    out.extend_from_slice(
        &j.time
            .map_or(i64::MIN, |t| t.as_microsecond())
            .to_be_bytes(),
    );
    out.extend_from_slice(&order.0.to_be_bytes());
    out.extend_from_slice(&order.1.to_be_bytes());
    postcard::to_io(j, &mut out).expect("facts serialise");
    out
}

/// The head of a fact's bytes (`None`: too short to be one).
pub fn fact_head(bytes: &[u8]) -> Option<FactHead> {
    let b = bytes.get(..HEAD)?;
    let word = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Some(FactHead {
        id: b[..16].try_into().expect("16 bytes"),
        time_us: word(16) as i64,
        order: (word(24), word(32)),
    })
}

/// The judged event a fact's bytes hold.
pub fn decode_fact(bytes: &[u8]) -> Result<towerwatch_hunt::Judged, postcard::Error> {
    postcard::from_bytes(
        bytes
            .get(HEAD..)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?,
    )
}

/// Events (or facts) per message at most.
pub const PER_MESSAGE: usize = 100;
/// Bytes a message is closed at.
pub const MESSAGE_BYTES: usize = 256 * 1024;
/// Bytes a message never goes past: NATS refuses payloads over its `max_payload` (1 MiB
/// unless configured otherwise), headers included. A frame that would take a message past
/// it goes to the next; one that alone is over it cannot travel (it is refused and said).
pub const MAX_MESSAGE: usize = 1024 * 1024 - 8 * 1024;

/// Appends `item` as one frame (its length, then it) to a message's payload.
pub fn push_frame(payload: &mut Vec<u8>, item: &[u8]) {
    let len = u32::try_from(item.len()).expect("a frame under 4 GiB");
    payload.extend_from_slice(&len.to_be_bytes());
    payload.extend_from_slice(item);
}

/// The frames of a payload, in order; a payload cut short ends with an error naming the
/// offset where its last frame should be, after the frames it held whole.
pub fn frames(payload: &[u8]) -> impl Iterator<Item = Result<&[u8], String>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= payload.len() {
            return None;
        }
        let frame = payload.get(at..at + 4).and_then(|len| {
            let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
            payload.get(at + 4..(at + 4).checked_add(len)?)
        });
        Some(match frame {
            Some(f) => {
                at += 4 + f.len();
                Ok(f)
            }
            None => {
                let offset = at;
                at = payload.len();
                Err(format!(
                    "a frame at byte {offset} runs past the end of the message"
                ))
            }
        })
    })
}

/// The frames of a message that do not read as they should: how many, and the first one
/// (its place and why), said in one line however many there are.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BadFrames {
    pub count: u64,
    pub first: Option<String>,
}

/// Each frame of `payload` as `read` reads it; those it cannot read, counted apart.
pub fn read_frames<'p, T>(
    payload: &'p [u8],
    mut read: impl FnMut(&'p [u8]) -> Result<T, String>,
) -> (Vec<T>, BadFrames) {
    let (mut good, mut bad) = (Vec::new(), BadFrames::default());
    for (i, frame) in frames(payload).enumerate() {
        match frame.and_then(&mut read) {
            Ok(t) => good.push(t),
            Err(why) => {
                bad.count += 1;
                bad.first.get_or_insert_with(|| format!("frame {i}: {why}"));
            }
        }
    }
    (good, bad)
}

/// An event frame: its identity, then the event's bytes ([`encode`]).
pub fn event_frame(id: &[u8; 16], e: &Event) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&encode(e));
    out
}

/// The identity and the event an event frame holds.
pub fn decode_event_frame(frame: &[u8]) -> Result<([u8; 16], Event), postcard::Error> {
    let id = frame
        .get(..16)
        .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    Ok((id.try_into().expect("16 bytes"), decode(&frame[16..])?))
}

/// Whether a message of `payload` bytes has room for a frame of `frame` bytes.
pub fn fits(payload: usize, frame: usize) -> bool {
    payload + 4 + frame <= MAX_MESSAGE
}

/// The identity of an event sent to an ingest node (`serve --fleet --nats`) as line `at`
/// of `source`, a name its sender gives: scoped apart from every file `ship --nats` reads
/// (a shipper's scope starts with its host name, which holds no NUL), so that no sender can
/// take the identities of a shipped file's records.
pub fn sent_identity(source: &str, at: Locator) -> [u8; 16] {
    identity(&format!("\0sent\0{source}"), at)
}

/// The id of a message holding frames of identities `first`.. (`n` of them): the same
/// batch of the same events is the same message, which JetStream stores once.
pub fn message_id(first: &[u8; 16], n: usize) -> String {
    format!("{}-{n}", hex(first))
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
    fn frames_come_back_in_order_and_a_cut_message_is_an_error_after_its_whole_frames() {
        let mut payload = Vec::new();
        for item in [&b"one"[..], b"", b"three"] {
            push_frame(&mut payload, item);
        }
        let back: Vec<_> = frames(&payload).collect();
        assert_eq!(back, vec![Ok(&b"one"[..]), Ok(&b""[..]), Ok(&b"three"[..])]);
        let cut = &payload[..payload.len() - 2];
        let back: Vec<_> = frames(cut).collect();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1], Ok(&b""[..]));
        assert_eq!(
            back[2],
            Err("a frame at byte 11 runs past the end of the message".to_string())
        );
        // Read: the frames read, and those not (the empty one, the cut one) counted apart.
        let (good, bad) = read_frames(cut, |f| {
            if f.is_empty() {
                Err("empty".to_string())
            } else {
                Ok(f.len())
            }
        });
        assert_eq!(good, vec![3]);
        assert_eq!(bad.count, 2);
        assert_eq!(bad.first.as_deref(), Some("frame 1: empty"));
        assert_eq!(frames(&[0, 0]).count(), 1);
        assert_eq!(frames(&[]).count(), 0);
        let mut e = Event::new(Origin::line("a.jsonl", 3));
        e.push("x", Value::text("y"));
        let id = identity("h\n/a.jsonl", Locator::Line(3));
        assert_eq!(decode_event_frame(&event_frame(&id, &e)).unwrap(), (id, e));
        assert!(decode_event_frame(&[1; 10]).is_err());
    }

    proptest::proptest! {
        /// Messages come from other machines: whatever their bytes, reading them gives
        /// frames or errors, never a panic, and never reads past the end.
        #[test]
        fn any_bytes_read_as_frames_events_or_facts_without_a_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let mut whole = 0;
            for frame in frames(&bytes) {
                let Ok(f) = frame else { continue };
                whole += 4 + f.len();
                let _ = decode_event_frame(f);
                let _ = fact_head(f);
                let _ = decode_fact(f);
            }
            proptest::prop_assert!(whole <= bytes.len());
            let _ = decode(&bytes);
            let _ = decode_fact(&bytes);
        }
    }

    #[test]
    fn bytes_that_are_no_event_are_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(&[0xff; 40]).is_err());
        assert!(fact_head(&[0; 39]).is_none());
        assert!(decode_fact(&[0; 39]).is_err());
    }

    #[test]
    fn a_fact_heads_its_bytes_with_what_the_builder_keeps_it_by() {
        let j = towerwatch_hunt::Judged {
            source: "WEB01.jsonl".into(),
            locator: Locator::Line(12),
            time: "2019-03-05T10:00:00Z".parse().ok(),
            facts: Default::default(),
        };
        let id = identity("web01\n/logs/WEB01.jsonl", Locator::Line(12));
        let bytes = encode_fact(&id, &j);
        let head = fact_head(&bytes).unwrap();
        assert_eq!(head.id, id);
        assert_eq!(from_hex(&hex(&id)), Some(id));
        assert_eq!(from_hex("not an id"), None);
        assert_eq!(head.time_us, j.time.unwrap().as_microsecond());
        assert_eq!(head.order, Origin::line("WEB01.jsonl", 12).order_key());
        let back = decode_fact(&bytes).unwrap();
        assert_eq!(
            (back.source, back.locator, back.time),
            (j.source, j.locator, j.time)
        );
    }
}
