//! A detection's severity, and the detection itself: one rule matching one event, as hunt,
//! cdr, eval, report and the server all write and read it (the JSONL contract of
//! `towerwatch hunt --format jsonl`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Event, Locator};

/// Rule severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// 0 (informational) to 4 (critical).
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            other => return Err(format!("unknown level '{other}'")),
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        })
    }
}

/// One rule matching one event: the JSONL contract. `event` holds the matched event's fields
/// by name (repeated names as arrays); a correlation's or a finding's detection holds what
/// it is about there too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// RFC 3339 UTC, or null when the event has no time.
    pub timestamp: Option<String>,
    pub rule_id: String,
    pub rule_title: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub computer: Option<String>,
    pub channel: Option<String>,
    pub event_id: Option<u32>,
    /// The evidence file (or `-`).
    pub source: String,
    /// EVTX EventRecordID (or the record id a JSON event carries).
    pub record_id: Option<u64>,
    /// Line (JSON Lines, text logs) or document number (JSON documents) in the source.
    pub line: Option<u64>,
    #[serde(default)]
    pub event: serde_json::Map<String, serde_json::Value>,
}

/// The rule a detection names.
pub struct RuleRef<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub level: Level,
    pub tags: &'a [String],
}

impl Detection {
    /// This detection's JSON line (no newline) with `event_json` (an object, as
    /// [`Event::fields_json_text`] writes it) as its `event`: the same text as serialising
    /// it with that map, for a detection made without its event.
    pub fn json_line_with_event(&self, event_json: &str) -> String {
        debug_assert!(self.event.is_empty());
        let mut line = serde_json::to_string(self).expect("a detection serialises");
        // The empty map is written last: `…,"event":{}}`.
        debug_assert!(line.ends_with("{}}"));
        line.truncate(line.len() - 3);
        line.reserve(event_json.len() + 1);
        line.push_str(event_json);
        line.push('}');
        line
    }

    /// `rule` matched `event`; `with_event`: copy the event's fields (needed only when
    /// detections are written).
    pub fn new(rule: RuleRef<'_>, event: &Event, with_event: bool) -> Detection {
        let line = match event.origin.locator {
            Locator::Line(l) => Some(l),
            Locator::Record(_) => None,
        };
        Detection {
            timestamp: event.timestamp.map(|t| t.to_string()),
            rule_id: rule.id.to_string(),
            rule_title: rule.title.to_string(),
            level: rule.level,
            tags: rule.tags.to_vec(),
            computer: event.computer.as_deref().map(String::from),
            channel: event.channel.as_deref().map(String::from),
            event_id: event.event_id,
            source: event.origin.source.to_string(),
            record_id: event.record_id,
            line,
            event: if with_event {
                event.fields_json()
            } else {
                serde_json::Map::new()
            },
        }
    }

    /// Where the detection points: its line, else its record id.
    pub fn position(&self) -> Option<u64> {
        self.line.or(self.record_id)
    }
}
