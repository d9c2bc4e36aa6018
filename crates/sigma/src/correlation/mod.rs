//! Sigma correlation rules (specification 2.x): the model (here), its parsing ([`parse`]),
//! resolving references ([`resolve`]), a streaming evaluator with bounded state
//! ([`Evaluator`]), and the feed from the engine's matches to it ([`Feeds`]).
//!
//! A correlation names Sigma rules (or other correlations) by `id` or `name` and fires when
//! their matches, grouped by `group-by` values, meet its condition within `timespan`:
//! `event_count` counts matches, `value_count` distinct values of a field, `temporal` distinct
//! rules, and `temporal_ordered` requires the rules in their listed order. The metric types
//! measure a field: `value_sum` its sum and `value_avg` its mean over the matches whose value
//! is a number, and `value_percentile` how common each value is — the share (in percent) of
//! the window's matches that carry it, the condition holding when some value's share meets
//! it (`lte: 1`: a value seen in at most 1% of them, the specification's rare process).
//!
//! ```
//! use towerwatch_sigma::{correlation::{self, Evaluator, Hit}, LoadReport};
//!
//! let mut set = LoadReport::default();
//! set.add_text(r#"
//! title: Failed logon
//! name: failed
//! logsource: { product: windows, service: security }
//! detection: { sel: { EventID: 4625 }, condition: sel }
//! ---
//! title: Brute force
//! correlation:
//!   type: event_count
//!   rules: [failed]
//!   group-by: [TargetUserName]
//!   timespan: 5m
//!   condition: { gte: 3 }
//! "#, "brute.yml");
//! let (members, refused) = correlation::resolve(&set.rules, &set.correlations);
//! assert!(refused.is_empty());
//! let mut eval = Evaluator::new(&set.correlations, &members);
//! for minute in 0..3 {
//!     eval.push(0, Hit::new(minute * 60_000, 0, vec!["alice".into()], None, minute));
//! }
//! let (fired, dropped) = eval.finish();
//! assert_eq!(dropped, 0);
//! assert_eq!(fired.len(), 1);
//! assert_eq!(fired[0].count, 3);
//! assert_eq!(fired[0].places, vec![0, 1, 2]);
//! ```

mod evaluate;
mod feed;
mod parse;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Level;

pub use evaluate::{Evaluator, Fired, Hit};
pub use feed::{Feeds, Pending, MAX_HELD_HITS};
pub(crate) use parse::parse;
pub use parse::{parse_timespan, TimespanError};
pub use resolve::{reference_names, resolve, Member};

/// Groups one correlation tracks at once; hits of further groups are dropped and counted.
pub const GROUPS_PER_CORRELATION: usize = 100_000;
/// Matches one group's window holds; past it the oldest leave the window early.
pub const HITS_PER_WINDOW: usize = 10_000;
/// Places a firing keeps (the latest ones).
pub const PLACES_KEPT: usize = 32;

/// The seven correlation types of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::EventCount => "event_count",
            Kind::ValueCount => "value_count",
            Kind::Temporal => "temporal",
            Kind::TemporalOrdered => "temporal_ordered",
            Kind::ValueSum => "value_sum",
            Kind::ValueAvg => "value_avg",
            Kind::ValuePercentile => "value_percentile",
        }
    }

    /// The types that measure a field's values rather than count matches.
    pub fn is_metric(self) -> bool {
        matches!(
            self,
            Kind::ValueSum | Kind::ValueAvg | Kind::ValuePercentile
        )
    }

    /// The types whose condition is on the values of `field`.
    pub fn needs_field(self) -> bool {
        self == Kind::ValueCount || self.is_metric()
    }
}

/// One criterion of a condition; a condition holds when all of them do. Counts compare
/// exactly (they are far below 2^53); sums, means and shares compare as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Eq(f64),
    Neq(f64),
}

impl Threshold {
    pub fn holds(self, n: f64) -> bool {
        match self {
            Threshold::Gt(v) => n > v,
            Threshold::Gte(v) => n >= v,
            Threshold::Lt(v) => n < v,
            Threshold::Lte(v) => n <= v,
            Threshold::Eq(v) => n == v,
            Threshold::Neq(v) => n != v,
        }
    }

    /// Whether more matches can only keep it true once it holds.
    fn lower_bound(self) -> bool {
        matches!(self, Threshold::Gt(_) | Threshold::Gte(_))
    }
}

/// A parsed Sigma correlation rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Correlation {
    pub id: String,
    pub name: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub level: Level,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub kind: Kind,
    /// The referenced rules and correlations, by id or name, as written.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub timespan_ms: i64,
    /// Empty for `temporal`/`temporal_ordered` without a condition: every rule must match.
    pub condition: Vec<Threshold>,
    /// The field whose distinct values `value_count` counts, or that a metric measures.
    pub field: Option<String>,
    /// alias → (rule name or id → the field it stands for in that rule's events).
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether the referenced rules also report on their own.
    pub generate: bool,
    pub path: String,
    /// The line its document starts on in `path`.
    pub line: u64,
}

impl Correlation {
    /// Whether the count meets the condition (`members`: how many rules it refers to).
    pub fn holds(&self, measure: f64, members: usize) -> bool {
        if self.condition.is_empty() {
            return measure >= members as f64;
        }
        self.condition.iter().all(|t| t.holds(measure))
    }

    /// Sliding windows fire as soon as the condition holds; that is right only when more
    /// matches cannot make it false again (a count with lower bounds). Other conditions, and
    /// every metric (a sum of signed numbers, a mean, a share can fall again), are judged
    /// when a window closes.
    pub fn sliding(&self) -> bool {
        self.kind == Kind::TemporalOrdered
            || (!self.kind.is_metric() && self.condition.iter().all(|t| t.lower_bound()))
    }

    /// The field a `group-by` entry (or `field`) names in the events of a referenced rule,
    /// through `aliases`; `names` are the ways that rule is known (reference, name, id).
    pub fn field_in<'a>(&'a self, field: &'a str, names: &[&str]) -> &'a str {
        match self.aliases.get(field) {
            Some(map) => names
                .iter()
                .find_map(|n| map.get(*n))
                .map(String::as_str)
                .unwrap_or(field),
            None => field,
        }
    }
}
