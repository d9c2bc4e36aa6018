//! The plain reference evaluator: every rule, every event, straight from the rule model.
//!
//! It is deliberately simple — no prefilter, no automaton — so that the compiled engine in
//! `towerwatch-detect` can be checked against it on the same rules and events.

use towerwatch_event::{Event, Value};

use crate::condition::Cond;
use crate::pattern::{fold, Anchor};
use crate::rule::{Compare, FieldTest, Matcher, Rule, Search};

impl Rule {
    /// Whether the rule's log source admits the event.
    pub fn admits(&self, event: &Event) -> bool {
        let channel = event.channel.as_deref();
        self.routes
            .iter()
            .any(|r| r.admits(channel, event.event_id))
    }

    /// The reference verdict: log source, then the condition over the searches.
    pub fn matches(&self, event: &Event) -> bool {
        self.admits(event) && eval_cond(&self.condition, &self.searches, event)
    }
}

fn eval_cond(c: &Cond, searches: &[Search], event: &Event) -> bool {
    match c {
        Cond::Search(i) => searches[*i].matches(event),
        Cond::And(items) => items.iter().all(|c| eval_cond(c, searches, event)),
        Cond::Or(items) => items.iter().any(|c| eval_cond(c, searches, event)),
        Cond::Not(inner) => !eval_cond(inner, searches, event),
        Cond::AtLeast(n, items) => {
            items
                .iter()
                .filter(|c| eval_cond(c, searches, event))
                .count()
                >= *n
        }
    }
}

impl Search {
    pub fn matches(&self, event: &Event) -> bool {
        self.alternatives
            .iter()
            .any(|tests| tests.iter().all(|t| t.matches(event)))
    }
}

impl FieldTest {
    pub fn matches(&self, event: &Event) -> bool {
        let value_ok = |alts: &Vec<Matcher>| {
            alts.iter()
                .any(|m| m.matches_field(event, self.field.as_deref()))
        };
        if self.all {
            self.values.iter().all(value_ok)
        } else {
            self.values.iter().any(value_ok)
        }
    }
}

impl Matcher {
    /// Tests the matcher against a field of the event (`None`: any field, for keywords).
    pub fn matches_field(&self, event: &Event, field: Option<&str>) -> bool {
        match field {
            Some(name) => match self {
                Matcher::Exists(want) => event.has(name) == *want,
                Matcher::Null => event.values(name).all(Value::is_null),
                Matcher::Not(inner) => !inner.matches_field(event, field),
                Matcher::FieldRef {
                    field: other,
                    anchor,
                    cased,
                } => {
                    let refs: Vec<&str> = event.values(other).filter_map(Value::as_str).collect();
                    event
                        .values(name)
                        .filter_map(Value::as_str)
                        .any(|v| refs.iter().any(|r| fieldref_match(v, r, *anchor, *cased)))
                }
                _ => event
                    .values(name)
                    .filter_map(Value::as_str)
                    .any(|v| self.matches_text(v)),
            },
            None => match self {
                Matcher::Not(inner) => !inner.matches_field(event, None),
                _ => event
                    .fields
                    .iter()
                    .filter_map(|f| f.value.as_str())
                    .any(|v| self.matches_text(v)),
            },
        }
    }

    /// Tests one value's text (raw, not folded).
    pub fn matches_text(&self, text: &str) -> bool {
        match self {
            Matcher::Str { pattern, cased } => {
                if *cased {
                    pattern.matches(text)
                } else {
                    pattern.matches(&fold(text))
                }
            }
            Matcher::Regex(re) => re.is_match(text),
            Matcher::Cidr(net) => text
                .trim()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)),
            Matcher::Compare(op, n) => parse_number(text).is_some_and(|v| match op {
                Compare::Lt => v < *n,
                Compare::Lte => v <= *n,
                Compare::Gt => v > *n,
                Compare::Gte => v >= *n,
            }),
            Matcher::Not(inner) => !inner.matches_text(text),
            // Presence tests and field references need the whole event.
            Matcher::Exists(_) | Matcher::Null | Matcher::FieldRef { .. } => false,
        }
    }
}

fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    t.parse().ok()
}

fn fieldref_match(value: &str, reference: &str, anchor: Anchor, cased: bool) -> bool {
    let (v, r) = if cased {
        (value.into(), reference.into())
    } else {
        (fold(value), fold(reference))
    };
    match anchor {
        Anchor::Whole => v == r,
        Anchor::Start => v.starts_with(&*r),
        Anchor::End => v.ends_with(&*r),
        Anchor::Anywhere => v.contains(&*r),
    }
}
