//! The Elasticsearch `_bulk` API, as far as shippers use it: Winlogbeat, Filebeat, Elastic
//! Agent, Fluent Bit or Vector point their Elasticsearch output here and need no plug-in.
//!
//! A bulk body is NDJSON: an action line (`{"create": {"_index": …}}` or `index`), then the
//! document. Each document is an event in any shape `hunt` reads. Its identity is the host,
//! channel and record id it carries (`winlog.record_id`, `EventRecordID`), else the action's
//! `_id`, else its content, so a shipper that retries a batch changes nothing. The reply has
//! one item per action, in order, as Elasticsearch answers: 201 created, 200 when it was
//! already held, 400 for a document that is no event (a shipper drops those and says so).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use towerwatch_event::{Event, Origin};

/// One document of a bulk request, ready for the store, or why it is not.
pub enum Item {
    Event {
        index: String,
        source: String,
        line: u64,
        text: String,
        event: Box<Event>,
    },
    Refused {
        action: String,
        index: String,
        status: u16,
        reason: String,
    },
}

/// One item's answer, as Elasticsearch gives it: action, index, status, and why when it was
/// refused.
pub type Answer = (String, String, u16, Option<String>);

impl Item {
    /// The answer to this item: for an event, the status (and why) `judge` gives it from its
    /// source, line and event; a refused document's own.
    pub fn answer(
        self,
        judge: impl FnOnce(&str, u64, Box<Event>) -> (u16, Option<String>),
    ) -> Answer {
        match self {
            Item::Event {
                index,
                source,
                line,
                event,
                ..
            } => {
                let (status, why) = judge(&source, line, event);
                ("create".to_string(), index, status, why)
            }
            Item::Refused {
                action,
                index,
                status,
                reason,
            } => (action, index, status, Some(reason)),
        }
    }
}

/// Reads a bulk body; `default_index` from the path (`/{index}/_bulk`).
pub fn parse(body: &str, default_index: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    while let Some(action_line) = lines.next() {
        let action: Value = match serde_json::from_str(action_line) {
            Ok(v) => v,
            Err(e) => {
                items.push(refused(
                    "index",
                    default_index,
                    400,
                    format!("action line: {e}"),
                ));
                continue;
            }
        };
        let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            items.push(refused("index", default_index, 400, "empty action".into()));
            continue;
        };
        let index = meta["_index"].as_str().unwrap_or(default_index).to_string();
        if !matches!(kind.as_str(), "index" | "create") {
            // `update` and `delete` carry no event (and a delete has no document line).
            if kind == "update" {
                lines.next();
            }
            items.push(refused(
                kind,
                &index,
                400,
                format!("{kind} is not taken: events are written once"),
            ));
            continue;
        }
        let Some(text) = lines.next() else {
            items.push(refused(
                kind,
                &index,
                400,
                "no document after the action".into(),
            ));
            continue;
        };
        let id = meta["_id"].as_str();
        match document(text, &index, id) {
            Ok((source, line, event)) => items.push(Item::Event {
                index,
                source,
                line,
                text: text.to_string(),
                event: Box::new(event),
            }),
            Err(reason) => items.push(refused(kind, &index, 400, reason)),
        }
    }
    items
}

fn refused(action: &str, index: &str, status: u16, reason: String) -> Item {
    Item::Refused {
        action: action.to_string(),
        index: index.to_string(),
        status,
        reason,
    }
}

/// A document's identity (source, line) and its event.
fn document(text: &str, index: &str, id: Option<&str>) -> Result<(String, u64, Event), String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    // Parsed once to learn its identity; the store keeps the text and parses it as `hunt`
    // would read it from a file of that source.
    let probe = towerwatch_sources::json::event_from_json(json, Origin::line("bulk", 0))?;
    let (source, line) = match (probe.record_id, &probe.computer, &probe.channel) {
        (Some(r), Some(host), Some(channel)) => (format!("{index}/{host}/{channel}"), r),
        _ => {
            let key = id.unwrap_or(text);
            let digest = Sha256::digest(key.as_bytes());
            // Positive in SQLite's signed integers.
            let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1;
            (format!("{index}/by-id"), n)
        }
    };
    let mut event = probe;
    event.origin = Origin::line(source.as_str(), line);
    Ok((source, line, event))
}

/// The reply Elasticsearch gives: one item per action, `errors` when any failed.
pub fn reply(items: &[Answer], took_ms: u128) -> Value {
    let errors = items.iter().any(|(_, _, s, _)| *s >= 300);
    let items: Vec<Value> = items
        .iter()
        .map(|(action, index, status, error)| {
            let mut body = json!({ "_index": index, "status": status });
            match error {
                Some(reason) => {
                    body["error"] = json!({ "type": "mapper_parsing_exception", "reason": reason })
                }
                None => body["result"] = json!(if *status == 201 { "created" } else { "noop" }),
            }
            json!({ action.clone(): body })
        })
        .collect();
    json!({ "took": took_ms, "errors": errors, "items": items })
}

/// `GET /`: what a shipper reads to learn it talks to Elasticsearch, and which version.
pub fn info() -> Value {
    json!({
        "name": "towerwatch",
        "cluster_name": "towerwatch",
        "cluster_uuid": "towerwatch",
        "version": {
            "number": "8.11.0",
            "build_flavor": "default",
            "build_type": "towerwatch",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}
