//! The coverage stage: which fields each log source (channel, event id) carries, to tell
//! which loaded rules can never fire on this evidence.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use towerwatch_sigma::{Rule, RuleError};

use super::{Matched, Stage};

/// Field names seen per (folded channel, event id), Sigma's aliases included.
#[derive(Default)]
pub struct Coverage {
    by_source: HashMap<(String, Option<u32>), HashSet<Box<str>>>,
}

/// Field names of a log source not seen before where the event was judged (usually none).
pub type NewNames = Option<((String, Option<u32>), Vec<Box<str>>)>;

impl Stage for Coverage {
    type Output = Coverage;
    type Fact = NewNames;

    fn extract(&mut self, m: &Matched<'_>) -> NewNames {
        let e = m.event;
        let key = (
            e.channel.as_deref().unwrap_or("").to_lowercase(),
            e.event_id,
        );
        let names = self.by_source.entry(key.clone()).or_default();
        let mut new = Vec::new();
        for f in &e.fields {
            if !names.contains(&f.name) {
                names.insert(f.name.clone());
                new.push(f.name.clone());
            }
            for alias in towerwatch_event::sigma_aliases(e.channel.as_deref(), e.event_id, &f.name)
            {
                if names.insert((*alias).into()) {
                    new.push((*alias).into());
                }
            }
        }
        (!new.is_empty()).then_some((key, new))
    }

    fn absorb(&mut self, fact: NewNames) {
        if let Some((key, names)) = fact {
            self.by_source.entry(key).or_default().extend(names);
        }
    }

    /// Here both halves are one: extracting takes the names in already.
    fn observe(&mut self, m: &Matched<'_>) {
        self.extract(m);
    }

    fn merge(&mut self, other: Coverage) {
        for (k, v) in other.by_source {
            self.by_source.entry(k).or_default().extend(v);
        }
    }

    fn finish(self) -> Coverage {
        self
    }
}

/// Field names a rule tests (keywords excluded).
fn rule_fields(rule: &Rule) -> BTreeSet<&str> {
    rule.searches
        .iter()
        .flat_map(|s| s.alternatives.iter().flatten())
        .filter_map(|t| t.field.as_deref())
        .filter(|f| !matches!(*f, "EventID" | "Channel" | "Provider_Name"))
        .collect()
}

impl Coverage {
    /// The rules that cannot fire on this evidence, by reason, and the refused rules.
    pub fn report(&self, rules: &[Rule], refused: &[RuleError]) -> String {
        let mut cannot: BTreeMap<&'static str, Vec<&Rule>> = BTreeMap::new();
        for rule in rules {
            let admitted: Vec<&HashSet<Box<str>>> = self
                .by_source
                .iter()
                .filter(|((ch, id), _)| rule.routes.iter().any(|r| r.admits(Some(ch), *id)))
                .map(|(_, names)| names)
                .collect();
            if admitted.is_empty() {
                cannot
                    .entry("no events of its log source")
                    .or_default()
                    .push(rule);
                continue;
            }
            let fields = rule_fields(rule);
            if !fields.is_empty()
                && !fields
                    .iter()
                    .any(|f| admitted.iter().any(|names| names.contains(*f)))
            {
                cannot
                    .entry("none of its fields appear in its log source's events")
                    .or_default()
                    .push(rule);
            }
        }
        let mut s = String::new();
        let never: usize = cannot.values().map(Vec::len).sum();
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Coverage: {} of {} rules can fire on this evidence; {never} cannot:",
            rules.len() - never,
            rules.len()
        );
        for (reason, list) in &cannot {
            let _ = writeln!(s, "  {reason}: {} rules", list.len());
        }
        for (reason, list) in &cannot {
            for r in list {
                let _ = writeln!(s, "    {} ({}) — {reason}", r.title, r.path);
            }
        }
        let _ = writeln!(s, "Refused rules: {}", refused.len());
        for e in refused {
            let _ = writeln!(s, "    {}: {:?}: {}", e.at(), e.kind, e.reason);
        }
        s
    }
}
