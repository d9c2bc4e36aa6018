//! JSON objects of Windows events, in the shapes tools write them, turned into [`Event`]s.
//!
//! * evtx_dump / the `evtx` crate: `{"Event": {"System": {…}, "EventData": {…}}}` with XML
//!   attributes under `#attributes` and element text under `#text`;
//! * Winlogbeat / ECS: `{"@timestamp": …, "winlog": {"event_id": …, "channel": …,
//!   "event_data": {…}}}`;
//! * flat objects: `{"EventID": 1, "Channel": "…", "Image": "…"}`.

use serde_json::{Map, Value as Json};
use towerwatch_event::{Event, Origin, Timestamp, Value};

/// Builds an event from one JSON object, whatever its shape.
pub fn event_from_json(json: Json, origin: Origin) -> Result<Event, String> {
    let Json::Object(mut map) = json else {
        return Err(format!("expected a JSON object, found {}", kind(&json)));
    };
    let mut event = Event::new(origin);
    if is_dump_shape(&map) {
        dump_shape(map, &mut event);
        return Ok(event);
    }
    if let Some(Json::Object(inner)) = map.remove("Event") {
        evtx_shape(inner, &mut event);
    } else if let Some(Json::Object(winlog)) = map.remove("winlog") {
        winlogbeat_shape(winlog, map, &mut event);
    } else {
        for (k, v) in map {
            flatten(&k, v, &mut event);
        }
    }
    derive_keys(&mut event);
    Ok(event)
}

/// The keys of `towerwatch dump`'s events (`Event::dump_json`).
const DUMP_KEYS: [&str; 9] = [
    "timestamp",
    "channel",
    "event_id",
    "provider",
    "computer",
    "record_id",
    "source",
    "line",
    "fields",
];

fn is_dump_shape(map: &Map<String, Json>) -> bool {
    matches!(map.get("fields"), Some(Json::Object(_)))
        && map.keys().all(|k| DUMP_KEYS.contains(&k.as_str()))
}

/// `towerwatch dump`'s shape: the fields as they were, the keys as dump found them (so an
/// event dumped and read again is the same event; where it was read is the new origin).
fn dump_shape(mut map: Map<String, Json>, event: &mut Event) {
    if let Some(Json::Object(fields)) = map.remove("fields") {
        for (k, v) in fields {
            flatten(&k, v, event);
        }
    }
    let text = |k: &str| map.get(k).and_then(Json::as_str).map(Into::into);
    event.timestamp = map
        .get("timestamp")
        .and_then(Json::as_str)
        .and_then(parse_timestamp);
    event.event_id = map
        .get("event_id")
        .and_then(Json::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    event.channel = text("channel");
    event.provider = text("provider");
    event.computer = text("computer");
    event.record_id = map.get("record_id").and_then(Json::as_u64);
}

fn kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn evtx_shape(mut inner: Map<String, Json>, event: &mut Event) {
    // Not `remove`, which moves the last key into System's place: the data keep their order.
    if let Some(Json::Object(system)) = inner.shift_remove("System") {
        for (k, v) in system {
            system_value(&k, v, event);
        }
    }
    for (k, v) in inner {
        if k == "#attributes" {
            continue;
        }
        // EventData and UserData children keep their own names.
        flatten(&k, v, event);
    }
}

/// System elements: text under the element name, attributes as `Element_Attribute`
/// (`Provider_Name`, `Security_UserID`, `Execution_ProcessID`, `TimeCreated_SystemTime`).
fn system_value(name: &str, v: Json, event: &mut Event) {
    match v {
        Json::Object(obj) => {
            for (k, v) in obj {
                if k == "#attributes" {
                    if let Json::Object(attrs) = v {
                        for (a, av) in attrs {
                            push_scalar(&format!("{name}_{a}"), av, event);
                        }
                    }
                } else if k == "#text" {
                    push_scalar(name, v, event);
                } else {
                    system_value(&k, v, event);
                }
            }
        }
        other => push_scalar(name, other, event),
    }
}

fn winlogbeat_shape(mut winlog: Map<String, Json>, top: Map<String, Json>, event: &mut Event) {
    for (key, field) in [
        ("event_id", "EventID"),
        ("channel", "Channel"),
        ("computer_name", "Computer"),
        ("provider_name", "Provider_Name"),
        ("record_id", "EventRecordID"),
    ] {
        if let Some(v) = winlog.remove(key) {
            push_scalar(field, v, event);
        }
    }
    for key in ["event_data", "user_data"] {
        if let Some(v) = winlog.remove(key) {
            flatten(key, v, event);
        }
    }
    if let Some(Json::String(ts)) = top.get("@timestamp") {
        event.push("@timestamp", Value::text(ts.as_str()));
    }
}

/// Flattens nested objects to their leaf names; arrays repeat the name; `#text` takes the
/// parent's name; XML namespace attributes are dropped.
fn flatten(name: &str, v: Json, event: &mut Event) {
    match v {
        Json::Object(obj) => {
            for (k, v) in obj {
                if k == "#attributes" {
                    if let Json::Object(attrs) = v {
                        for (a, av) in attrs {
                            if !a.starts_with("xmlns") {
                                flatten(&a, av, event);
                            }
                        }
                    }
                } else if k == "#text" {
                    flatten(name, v, event);
                } else {
                    flatten(&k, v, event);
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                flatten(name, item, event);
            }
        }
        other => push_scalar(name, other, event),
    }
}

fn push_scalar(name: &str, v: Json, event: &mut Event) {
    let value = match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => Value::Number(n.to_string().into()),
        Json::String(s) => Value::Text(s.into_boxed_str()),
        nested @ (Json::Array(_) | Json::Object(_)) => return flatten(name, nested, event),
    };
    // Defender and a few other providers name data with spaces ("Threat Name"); Sigma
    // rules use the names without them.
    let name: Box<str> = if name.contains(' ') {
        name.replace(' ', "").into()
    } else {
        name.into()
    };
    event.fields.push(towerwatch_event::Field { name, value });
}

/// Fills the typed routing keys from the fields every shape has produced.
fn derive_keys(event: &mut Event) {
    let mut ts = None;
    for f in &event.fields {
        let Some(text) = f.value.as_str() else {
            continue;
        };
        match &*f.name {
            "EventID" if event.event_id.is_none() => event.event_id = text.trim().parse().ok(),
            "Channel" if event.channel.is_none() => event.channel = Some(text.into()),
            "Computer" if event.computer.is_none() => event.computer = Some(text.into()),
            "Provider_Name" if event.provider.is_none() => event.provider = Some(text.into()),
            "EventRecordID" if event.record_id.is_none() => {
                event.record_id = text.trim().parse().ok()
            }
            "TimeCreated_SystemTime" | "@timestamp" | "TimeCreated" | "timestamp"
                if ts.is_none() =>
            {
                ts = parse_timestamp(text);
            }
            _ => {}
        }
    }
    if ts.is_none() {
        ts = event.first_str("UtcTime").and_then(parse_timestamp);
    }
    event.timestamp = ts;
}

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC (Sysmon's `UtcTime`).
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(j: Json) -> Event {
        event_from_json(j, Origin::line("t", 1)).unwrap()
    }

    #[test]
    fn evtx_dump_shape() {
        let e = ev(json!({"Event": {"#attributes": {"xmlns": "x"}, "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "{5770}"}},
            "EventID": {"#attributes": {"Qualifiers": 0}, "#text": 1},
            "TimeCreated": {"#attributes": {"SystemTime": "2025-11-27T07:40:10.165324Z"}},
            "EventRecordID": 571146, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": "ws1", "Security": {"#attributes": {"UserID": "S-1-5-18"}}},
            "EventData": {"Image": "C:\\a.exe", "ProcessId": 4460, "Empty": null}}}));
        assert_eq!(e.event_id, Some(1));
        assert_eq!(
            e.channel.as_deref(),
            Some("Microsoft-Windows-Sysmon/Operational")
        );
        assert_eq!(e.provider.as_deref(), Some("Microsoft-Windows-Sysmon"));
        assert_eq!(e.record_id, Some(571146));
        assert_eq!(e.first_str("Security_UserID"), Some("S-1-5-18"));
        assert_eq!(e.first_str("ProcessId"), Some("4460"));
        assert!(e.has("Empty") && e.first_str("Empty").is_none());
        assert_eq!(
            e.timestamp.unwrap().to_string(),
            "2025-11-27T07:40:10.165324Z"
        );
    }

    #[test]
    fn a_dumped_event_reads_back_as_the_same_event() {
        // Keys the fields do not give (a W3C line's time) come from dump's own keys; the
        // names `dump` adds around the fields do not become fields.
        let mut e = ev(
            json!({"Event": {"System": {"EventID": 4688, "Channel": "Security",
            "Computer": "dc1", "EventRecordID": 7},
            "EventData": {"Data": ["a", "b"], "NewProcessName": "C:\\x.exe"}}}),
        );
        e.timestamp = Some("2026-01-02T03:04:05Z".parse().unwrap());
        let back = ev(e.dump_json());
        assert_eq!(back, e);
        assert!(!back.has("source") && !back.has("record_id"));
    }

    #[test]
    fn unnamed_data_and_user_data() {
        let e = ev(
            json!({"Event": {"System": {"EventID": 400, "Channel": "Windows PowerShell"},
            "EventData": {"Data": {"#text": ["Available", "NewEngineState=Available"]}},
            "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "http://x"}, "SubjectUserName": "bob"}}}}),
        );
        let data: Vec<_> = e.values("Data").filter_map(|v| v.as_str()).collect();
        assert_eq!(data, ["Available", "NewEngineState=Available"]);
        assert_eq!(e.first_str("SubjectUserName"), Some("bob"));
        assert!(!e.has("xmlns"));
    }

    #[test]
    fn winlogbeat_and_flat_shapes() {
        let e = ev(
            json!({"@timestamp": "2024-01-02T03:04:05Z", "winlog": {"event_id": "4688",
            "channel": "Security", "computer_name": "dc1", "event_data": {"NewProcessName": "x.exe"}}}),
        );
        assert_eq!(e.event_id, Some(4688));
        assert_eq!(e.first_str("Image"), Some("x.exe"));
        assert_eq!(e.computer.as_deref(), Some("dc1"));
        assert!(e.timestamp.is_some());
        let f = ev(
            json!({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "UtcTime": "2024-01-02 03:04:05.123", "CommandLine": "whoami"}),
        );
        assert_eq!(f.event_id, Some(1));
        assert_eq!(f.timestamp.unwrap().to_string(), "2024-01-02T03:04:05.123Z");
        assert!(event_from_json(json!([1]), Origin::line("t", 1)).is_err());
    }
}

/// Builds an event from evtx_dump-shaped JSON text (EVTX records arrive so from the
/// parser): by [`event_from_evtx_json_direct`], without building the value tree, which was
/// most of the cost; a record that path declines goes through the tree, as
/// [`event_from_json`] builds it.
pub fn event_from_evtx_json(bytes: &[u8], origin: Origin) -> Result<Event, String> {
    event_from_evtx_json_direct(bytes, origin.clone()).or_else(|_| {
        let json: Json = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        event_from_json(json, origin)
    })
}

/// The direct path alone: flattens evtx_dump-shaped JSON text into an event as it is read,
/// with the same result as [`event_from_json`] on the parsed value. It declines (an error)
/// what it would read differently: an `Event` that is not an object, a `System` that is not
/// one or that comes after the data, a second `Event`. Known differences where it reads:
/// a key repeated inside `Event` keeps every value (the tree keeps the last; the event's id,
/// channel and time come from the first either way), and what it skips (other top-level
/// keys, `xmlns` attributes, `#attributes` that are no object) is not checked for valid
/// UTF-8 or number range, where the tree rejects the whole text.
pub fn event_from_evtx_json_direct(bytes: &[u8], origin: Origin) -> Result<Event, String> {
    use serde::de::DeserializeSeed;
    let mut event = Event::new(origin);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    direct::Top(&mut event)
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    derive_keys(&mut event);
    Ok(event)
}

/// Builds an event from one line of JSON text, as parsing it and calling
/// [`event_from_json`] does: a line in evtx_dump's shape (its first key `"Event"`, the shape
/// of EVTX exports and of the simulator) by the direct path (with the differences
/// [`event_from_evtx_json_direct`] lists), any other line, or one the direct path declines,
/// by the value tree.
pub fn event_from_json_text(bytes: &[u8], origin: Origin) -> Result<Event, JsonTextError> {
    if starts_with_event_key(bytes) {
        if let Ok(event) = event_from_evtx_json_direct(bytes, origin.clone()) {
            return Ok(event);
        }
    }
    let json: Json = serde_json::from_slice(bytes).map_err(JsonTextError::Syntax)?;
    event_from_json(json, origin).map_err(JsonTextError::Shape)
}

/// Why a line of JSON text gave no event.
#[derive(Debug, thiserror::Error)]
pub enum JsonTextError {
    #[error("invalid JSON: {0}")]
    Syntax(serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// Whether the text is an object whose first key is `"Event"`.
fn starts_with_event_key(bytes: &[u8]) -> bool {
    let rest = bytes.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b"{") else {
        return false;
    };
    rest.trim_ascii_start().starts_with(b"\"Event\"")
}

mod direct {
    //! Serde seeds that flatten JSON into an event as it is read (see `flatten`,
    //! `system_value` and `evtx_shape` for the same rules on a value tree).

    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use towerwatch_event::{Event, Field, Value};

    struct Key<'de>(Cow<'de, str>);

    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_string())))
                }
                fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v)))
                }
            }
            d.deserialize_str(V)
        }
    }

    fn push(event: &mut Event, name: &str, value: Value) {
        let name: Box<str> = if name.contains(' ') {
            name.replace(' ', "").into()
        } else {
            name.into()
        };
        event.fields.push(Field { name, value });
    }

    /// How nested names are formed.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// EventData/UserData: leaf names.
        Data,
        /// A data element's attributes: by their own name, xmlns dropped.
        DataAttrs,
        /// System: attributes as `Element_Attribute`.
        System,
        /// A System element's attributes: `prefix_attr`.
        SystemAttrs,
    }

    struct Node<'a> {
        event: &'a mut Event,
        name: &'a str,
        mode: Mode,
    }

    impl<'de> DeserializeSeed<'de> for Node<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl Node<'_> {
        fn scalar(self, v: Value) {
            // `#attributes` that is not an object names nothing (as in `flatten`).
            if matches!(self.mode, Mode::Data | Mode::System) {
                push(self.event, self.name, v);
            }
        }
    }

    impl<'de> Visitor<'de> for Node<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            self.scalar(Value::Null);
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            self.scalar(Value::Null);
            Ok(())
        }
        fn visit_bool<E>(self, v: bool) -> Result<(), E> {
            self.scalar(Value::Bool(v));
            Ok(())
        }
        fn visit_u64<E>(self, v: u64) -> Result<(), E> {
            self.scalar(Value::Number(v.to_string().into()));
            Ok(())
        }
        fn visit_i64<E>(self, v: i64) -> Result<(), E> {
            self.scalar(Value::Number(v.to_string().into()));
            Ok(())
        }
        fn visit_f64<E>(self, v: f64) -> Result<(), E> {
            let n =
                serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
            self.scalar(Value::Number(n.into()));
            Ok(())
        }
        fn visit_str<E>(self, v: &str) -> Result<(), E> {
            self.scalar(Value::Text(v.into()));
            Ok(())
        }
        fn visit_string<E>(self, v: String) -> Result<(), E> {
            self.scalar(Value::Text(v.into_boxed_str()));
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let (event, name) = (self.event, self.name);
            if matches!(self.mode, Mode::DataAttrs | Mode::SystemAttrs) {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(());
            }
            // An array's items repeat its name, flattened as data (in System too).
            while seq
                .next_element_seed(Node {
                    event: &mut *event,
                    name,
                    mode: Mode::Data,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let (event, name, mode) = (self.event, self.name, self.mode);
            while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                match (mode, &*k) {
                    (Mode::Data, "#attributes") => {
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name,
                            mode: Mode::DataAttrs,
                        })?;
                    }
                    (Mode::DataAttrs, key) if key.starts_with("xmlns") => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    (Mode::DataAttrs, key) => {
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name: key,
                            mode: Mode::Data,
                        })?;
                    }
                    (Mode::System, "#attributes") => {
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name,
                            mode: Mode::SystemAttrs,
                        })?;
                    }
                    (Mode::SystemAttrs, attr) => {
                        let full = format!("{name}_{attr}");
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name: &full,
                            mode: Mode::Data,
                        })?;
                    }
                    // Element text takes the element's name; nested, it is flattened as
                    // data (as `system_value` does).
                    (_, "#text") => {
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name,
                            mode: Mode::Data,
                        })?;
                    }
                    (_, key) => {
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name: key,
                            mode,
                        })?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The fixed outer levels of an evtx_dump record.
    #[derive(Clone, Copy)]
    enum Level {
        /// `{"Event": …}`: only the Event element counts, as in `event_from_json`.
        Top,
        /// The Event element: System, EventData, UserData, ….
        Event,
        /// The System element: each child by its name, in System mode.
        System,
    }

    /// `{"Event": {"System": …, "EventData": …}}`
    pub(super) struct Top<'a>(pub &'a mut Event);

    impl<'de> DeserializeSeed<'de> for Top<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(Outer(self.0, Level::Top))
        }
    }

    struct Outer<'a>(&'a mut Event, Level);

    impl<'de> DeserializeSeed<'de> for Outer<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Outer<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an EVTX record as JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Outer(event, level) = self;
            let mut seen_event = false;
            let mut data_seen = false;
            while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                match (level, &*k) {
                    // Twice: the value tree keeps the last one; so does the caller's fallback.
                    (Level::Top, "Event") if seen_event => {
                        return Err(serde::de::Error::duplicate_field("Event"))
                    }
                    (Level::Top, "Event") => {
                        seen_event = true;
                        map.next_value_seed(Outer(&mut *event, Level::Event))?
                    }
                    (Level::Top, _) | (Level::Event, "#attributes") => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    // The value tree takes System's fields first wherever it stands; a
                    // System after the data is left to it.
                    (Level::Event, "System") if data_seen => {
                        return Err(serde::de::Error::custom("System after the data"))
                    }
                    (Level::Event, "System") => {
                        map.next_value_seed(Outer(&mut *event, Level::System))?
                    }
                    (Level::Event, name) => {
                        data_seen = true;
                        map.next_value_seed(Node {
                            event: &mut *event,
                            name,
                            mode: Mode::Data,
                        })?
                    }
                    (Level::System, name) => map.next_value_seed(Node {
                        event: &mut *event,
                        name,
                        mode: Mode::System,
                    })?,
                }
            }
            Ok(())
        }
    }
}
