//! The normalized event every towerwatch source yields.
//!
//! An [`Event`] is one log record, whatever its origin (EVTX, JSON Lines, …), reduced to what
//! detection needs: a UTC timestamp, the routing keys Sigma log sources are made of (channel,
//! event id, provider, computer), a flat list of named fields, and where it came from
//! ([`Origin`]) so every detection can be traced back to its evidence.
//!
//! Field access follows Sigma conventions: `EventData`/`UserData` children by their own name,
//! System values as `EventID`, `Channel`, `Provider_Name`, `Computer`, `Security_UserID`, …, and
//! a few Security-log names answered under the Sysmon names Sigma rules use
//! (`NewProcessName` is also `Image` in a 4688 event, see [`sigma_aliases`]).
//!
//! ```
//! use towerwatch_event::{Event, Origin, Value};
//!
//! let mut event = Event::new(Origin::line("example.jsonl", 1));
//! event.set_channel("Security");
//! event.set_event_id(4688);
//! event.push("NewProcessName", Value::text("C:\\Windows\\System32\\cmd.exe"));
//! let image: Vec<_> = event.values("Image").filter_map(|v| v.as_str()).collect();
//! assert_eq!(image, ["C:\\Windows\\System32\\cmd.exe"]);
//! ```

use std::sync::Arc;

pub use jiff::Timestamp;

mod csv_cell;
mod detection;
pub use csv_cell::{csv_cell, csv_row, CsvCell};
pub use detection::{Detection, Level, RuleRef};

/// A field value as the log wrote it. Matching works on the text; numbers keep their
/// textual form so that `EventID: 4688` and `"4688"` are the same to a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An explicit null or an empty XML element.
    Null,
    Bool(bool),
    /// A number, kept in its textual form.
    Number(Box<str>),
    Text(Box<str>),
}

impl Value {
    pub fn text(s: impl Into<Box<str>>) -> Self {
        Value::Text(s.into())
    }

    /// The text a rule matches against; `None` for null.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Null => None,
            Value::Bool(true) => Some("true"),
            Value::Bool(false) => Some("false"),
            Value::Number(s) | Value::Text(s) => Some(s),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON, numbers as numbers where they parse.
    /// The value as JSON text, as serde_json writes [`to_json`](Self::to_json)'s value.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            // Rare, and a number's canonical form is serde_json's business.
            Value::Number(_) => {
                let _ = serde_json::to_writer(&mut *out, &self.to_json());
            }
            Value::Text(s) => write_json_str(out, s),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(s) => s
                .parse::<serde_json::Number>()
                .map(serde_json::Value::Number)
                .unwrap_or_else(|_| serde_json::Value::String(s.to_string())),
            Value::Text(s) => serde_json::Value::String(s.to_string()),
        }
    }
}

/// A JSON string literal (serde_json's escaping).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// One named value of an event. A name may occur several times (a list in the source);
/// a rule on that name matches if any of the values matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Box<str>,
    pub value: Value,
}

/// Where an event was read: the source (a file path or `-`) and the record number (EVTX)
/// or line number (text formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Arc<str>,
    pub locator: Locator,
}

/// The position of a record inside its source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Locator {
    /// EVTX `EventRecordID`.
    Record(u64),
    /// 1-based line number of the first line of the record.
    Line(u64),
}

impl Origin {
    pub fn record(source: impl Into<Arc<str>>, record_id: u64) -> Self {
        Origin {
            source: source.into(),
            locator: Locator::Record(record_id),
        }
    }

    pub fn line(source: impl Into<Arc<str>>, line: u64) -> Self {
        Origin {
            source: source.into(),
            locator: Locator::Line(line),
        }
    }
}

/// The order of records that share a time, from what they are rather than from when they
/// were read. Stages that sort by `(time, OrderKey)` give the same result whether inputs
/// come as files on parallel workers or as one shuffled live stream.
pub type OrderKey = (u64, u64);

impl Origin {
    pub fn order_key(&self) -> OrderKey {
        order_key(&self.source, self.locator)
    }
}

/// The [`OrderKey`] of the record at `locator` in `source` (an [`Origin`]'s, without one).
pub fn order_key(source: &str, locator: Locator) -> OrderKey {
    let at = match locator {
        Locator::Record(r) => r,
        Locator::Line(l) => l,
    };
    (source_digest(source), at)
}

/// A digest of a source's name that is the same on every machine and in every version
/// (FNV-1a, 64 bits): an order, not a security property.
pub fn source_digest(source: &str) -> u64 {
    source.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.locator {
            Locator::Record(r) => write!(f, "{} record {}", self.source, r),
            Locator::Line(l) => write!(f, "{}:{}", self.source, l),
        }
    }
}

/// One normalized log record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub timestamp: Option<Timestamp>,
    pub event_id: Option<u32>,
    pub channel: Option<Box<str>>,
    pub provider: Option<Box<str>>,
    pub computer: Option<Box<str>>,
    pub record_id: Option<u64>,
    pub fields: Vec<Field>,
    pub origin: Origin,
}

impl Event {
    pub fn new(origin: Origin) -> Self {
        Event {
            timestamp: None,
            event_id: None,
            channel: None,
            provider: None,
            computer: None,
            record_id: None,
            fields: Vec::new(),
            origin,
        }
    }

    /// Appends a field; names may repeat.
    pub fn push(&mut self, name: impl Into<Box<str>>, value: Value) {
        self.fields.push(Field {
            name: name.into(),
            value,
        });
    }

    /// Sets the channel and its `Channel` field.
    pub fn set_channel(&mut self, channel: &str) {
        self.channel = Some(channel.into());
        self.replace("Channel", Value::text(channel));
    }

    /// Sets the event id and its `EventID` field.
    pub fn set_event_id(&mut self, id: u32) {
        self.event_id = Some(id);
        self.replace("EventID", Value::Number(id.to_string().into()));
    }

    fn replace(&mut self, name: &str, value: Value) {
        self.fields.retain(|f| &*f.name != name);
        self.push(name, value);
    }

    /// Every value a Sigma rule sees under `name`: fields of that name, and fields whose
    /// log-specific name is an alias of it (see [`sigma_aliases`]).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        let table = alias_table(self.channel.as_deref(), self.event_id);
        self.fields
            .iter()
            .filter(move |f| &*f.name == name || aliases_in(table, &f.name).contains(&name))
            .map(|f| &f.value)
    }

    /// Whether a field of that name (or an alias of it) exists, null or not.
    pub fn has(&self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    /// The first text value of `name`.
    pub fn first_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).find_map(Value::as_str)
    }

    /// The event as `towerwatch dump` writes it: time, channel, event id, provider, computer,
    /// where it was read, and its fields.
    pub fn dump_json(&self) -> serde_json::Value {
        // The record id the event states, else the one its file gives it.
        let (record, line) = match self.origin.locator {
            Locator::Record(r) => (self.record_id.or(Some(r)), None),
            Locator::Line(l) => (self.record_id, Some(l)),
        };
        serde_json::json!({
            "timestamp": self.timestamp.map(|t| t.to_string()),
            "channel": self.channel.as_deref(),
            "event_id": self.event_id,
            "provider": self.provider.as_deref(),
            "computer": self.computer.as_deref(),
            "record_id": record,
            "source": &*self.origin.source,
            "line": line,
            "fields": self.fields_json(),
        })
    }

    /// This event's [`OrderKey`]: a record that names itself (a Windows event's host, channel
    /// and record id) is ordered by that, whatever file or request it came in; others by
    /// their source and position ([`Origin::order_key`]).
    pub fn order_key(&self) -> OrderKey {
        match (&self.computer, &self.channel, self.record_id_or_locator()) {
            (Some(host), Some(channel), Some(record)) => {
                let named = source_digest(host) ^ source_digest(channel).rotate_left(1);
                (named, record)
            }
            _ => self.origin.order_key(),
        }
    }

    /// The Windows record id: the locator of an EVTX record, or the one a JSON event carries.
    fn record_id_or_locator(&self) -> Option<u64> {
        match self.origin.locator {
            Locator::Record(r) => Some(r),
            Locator::Line(_) => self.record_id,
        }
    }

    /// [`fields_json`](Self::fields_json) written as text, the same bytes serde_json writes
    /// for it (names in the order they first occur), without building the map: detections
    /// are rendered on the hot path.
    pub fn fields_json_text(&self) -> String {
        let fields = &self.fields;
        let mut out = Vec::with_capacity(64 * fields.len() + 2);
        out.push(b'{');
        let mut written = 0;
        for (i, f) in fields.iter().enumerate() {
            // A repeated name was written with its first occurrence (names are few).
            if fields[..i].iter().any(|e| e.name == f.name) {
                continue;
            }
            if written > 0 {
                out.push(b',');
            }
            written += 1;
            write_json_str(&mut out, &f.name);
            out.push(b':');
            let repeats = fields[i + 1..].iter().filter(|e| e.name == f.name).count();
            if repeats == 0 {
                f.value.write_json(&mut out);
                continue;
            }
            out.push(b'[');
            f.value.write_json(&mut out);
            for e in fields[i + 1..].iter().filter(|e| e.name == f.name) {
                out.push(b',');
                e.value.write_json(&mut out);
            }
            out.push(b']');
        }
        out.push(b'}');
        String::from_utf8(out).expect("JSON written from text is text")
    }

    /// The fields as one JSON object; repeated names become arrays.
    pub fn fields_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        for f in &self.fields {
            let v = f.value.to_json();
            match map.get_mut(&*f.name) {
                None => {
                    map.insert(f.name.to_string(), v);
                }
                Some(serde_json::Value::Array(list)) => list.push(v),
                Some(existing) => {
                    let first = existing.take();
                    *existing = serde_json::Value::Array(vec![first, v]);
                }
            }
        }
        map
    }
}

const SECURITY_4688: &[(&str, &str)] = &[
    ("NewProcessName", "Image"),
    ("ParentProcessName", "ParentImage"),
];
const DEFENDER: &[(&str, &str)] = &[("ThreatName", "Signature"), ("Path", "Filename")];

/// The field renames that apply to events of this channel and id: `(log name, Sigma name)`.
///
/// Sigma's generic `process_creation` rules name Sysmon fields; a Security 4688 event carries
/// the same facts as `NewProcessName`/`ParentProcessName`. Defender's `antivirus` category
/// names `Signature`/`Filename` what the log calls `ThreatName`/`Path`. The mapping is that of
/// SigmaHQ's own regression runner (`tests/thor.yml`).
pub fn alias_table(
    channel: Option<&str>,
    event_id: Option<u32>,
) -> &'static [(&'static str, &'static str)] {
    match (channel, event_id) {
        (Some(c), Some(4688)) if c.eq_ignore_ascii_case("Security") => SECURITY_4688,
        (Some(c), Some(_))
            if c.eq_ignore_ascii_case("Microsoft-Windows-Windows Defender/Operational") =>
        {
            DEFENDER
        }
        _ => &[],
    }
}

/// The Sigma names a log-specific field is also known by, in the event's channel and id.
pub fn sigma_aliases(
    channel: Option<&str>,
    event_id: Option<u32>,
    field: &str,
) -> &'static [&'static str] {
    aliases_in(alias_table(channel, event_id), field)
}

/// The Sigma names of `field` in a table from [`alias_table`].
pub fn aliases_in(
    table: &'static [(&'static str, &'static str)],
    field: &str,
) -> &'static [&'static str] {
    for (from, to) in table {
        if *from == field {
            return std::slice::from_ref(to);
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_apply_only_in_their_event() {
        let mut e = Event::new(Origin::record("x.evtx", 7));
        e.set_channel("Security");
        e.set_event_id(4624);
        e.push("NewProcessName", Value::text("a.exe"));
        assert!(!e.has("Image"));
        e.set_event_id(4688);
        assert_eq!(e.first_str("Image"), Some("a.exe"));
        assert_eq!(e.first_str("EventID"), Some("4688"));
    }

    #[test]
    fn repeated_names_become_json_arrays() {
        let mut e = Event::new(Origin::line("x", 1));
        e.push("Data", Value::text("a"));
        e.push("Data", Value::Null);
        e.push("Data", Value::Number("3".into()));
        let j = serde_json::Value::Object(e.fields_json());
        assert_eq!(j, serde_json::json!({"Data": ["a", null, 3]}));
    }
}

/// Where a record is, as detections and stories name it: its file, and its record id and/or
/// line (a JSON line may carry both).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Place {
    pub source: String,
    pub record_id: Option<u64>,
    pub line: Option<u64>,
}

impl Place {
    pub fn of(e: &Event) -> Place {
        let (record_id, line) = match e.origin.locator {
            Locator::Record(r) => (Some(r), None),
            Locator::Line(l) => (e.record_id, Some(l)),
        };
        Place {
            source: e.origin.source.to_string(),
            record_id,
            line,
        }
    }
}
