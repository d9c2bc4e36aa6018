//! Sigma correlation rules (specification 2.x): the model, its parsing, resolving references,
//! and a streaming evaluator with bounded state.
//!
//! A correlation names Sigma rules (or other correlations) by `id` or `name` and fires when
//! their matches, grouped by `group-by` values, meet its condition within `timespan`:
//! `event_count` counts matches, `value_count` distinct values of a field, `temporal` distinct
//! rules, and `temporal_ordered` requires the rules in their listed order.
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

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_yaml::Value as Yaml;

use crate::rule::{RefusalKind, RuleError};
use crate::{Level, Rule};

/// Groups one correlation tracks at once; hits of further groups are dropped and counted.
pub const GROUPS_PER_CORRELATION: usize = 100_000;
/// Matches one group's window holds; past it the oldest leave the window early.
pub const HITS_PER_WINDOW: usize = 10_000;
/// Places a firing keeps (the latest ones).
pub const PLACES_KEPT: usize = 32;

/// The four correlation types towerwatch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::EventCount => "event_count",
            Kind::ValueCount => "value_count",
            Kind::Temporal => "temporal",
            Kind::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// One criterion of a condition; a condition holds when all of them do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Threshold {
    Gt(u64),
    Gte(u64),
    Lt(u64),
    Lte(u64),
    Eq(u64),
    Neq(u64),
}

impl Threshold {
    fn holds(self, n: u64) -> bool {
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
    /// The field whose distinct values `value_count` counts.
    pub field: Option<String>,
    /// alias → (rule name or id → the field it stands for in that rule's events).
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether the referenced rules also report on their own.
    pub generate: bool,
    pub path: String,
}

impl Correlation {
    /// Whether the count meets the condition (`members`: how many rules it refers to).
    pub fn holds(&self, count: u64, members: usize) -> bool {
        if self.condition.is_empty() {
            return count >= members as u64;
        }
        self.condition.iter().all(|t| t.holds(count))
    }

    /// Sliding windows fire as soon as the condition holds; that is right only when more
    /// matches cannot make it false again. Other conditions are judged when a window closes.
    pub fn sliding(&self) -> bool {
        self.kind == Kind::TemporalOrdered || self.condition.iter().all(|t| t.lower_bound())
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

type Refusal = (RefusalKind, String);

fn invalid(msg: impl Into<String>) -> Refusal {
    (RefusalKind::Invalid, msg.into())
}

fn text(y: &Yaml, key: &str) -> Option<String> {
    match y.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(y: Option<&Yaml>) -> Result<Vec<String>, String> {
    match y {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::String(s)) => Ok(vec![s.clone()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => Ok(s.clone()),
                _ => Err("list item is not a string".to_string()),
            })
            .collect(),
        Some(_) => Err("not a string or a list of strings".into()),
    }
}

/// `30s`, `5m`, `2h`, `1d` (and `1w`, `1M`, `1y`, which some rule sets use) in milliseconds.
pub fn parse_timespan(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("timespan '{s}' has no unit (s, m, h, d)"))?;
    let (number, unit) = s.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("timespan '{s}' does not start with a number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(format!("timespan '{s}': unknown unit '{unit}'")),
    };
    if n == 0 {
        return Err(format!("timespan '{s}' is empty"));
    }
    n.checked_mul(seconds * 1000)
        .ok_or_else(|| format!("timespan '{s}' is too long"))
}

/// Parses a YAML document that has a `correlation` section.
pub(crate) fn parse(y: &Yaml, path: &str) -> Result<Correlation, Refusal> {
    let section = y
        .get("correlation")
        .ok_or_else(|| invalid("no 'correlation'"))?;
    if !section.is_mapping() {
        return Err(invalid("'correlation' is not a mapping"));
    }
    let title = text(y, "title").ok_or_else(|| invalid("missing 'title'"))?;
    let kind = match text(section, "type").as_deref() {
        Some("event_count") => Kind::EventCount,
        Some("value_count") => Kind::ValueCount,
        Some("temporal") => Kind::Temporal,
        Some("temporal_ordered") => Kind::TemporalOrdered,
        Some(t @ ("value_sum" | "value_avg" | "value_percentile")) => {
            return Err((
                RefusalKind::Unsupported,
                format!("correlation type '{t}' is not supported"),
            ))
        }
        Some(t) => return Err(invalid(format!("unknown correlation type '{t}'"))),
        None => return Err(invalid("correlation has no 'type'")),
    };
    let rules = strings(section.get("rules")).map_err(|m| invalid(format!("'rules': {m}")))?;
    if rules.is_empty() {
        return Err(invalid("correlation refers to no rules"));
    }
    let group_by =
        strings(section.get("group-by")).map_err(|m| invalid(format!("'group-by': {m}")))?;
    let timespan = text(section, "timespan")
        .or_else(|| text(section, "timeframe"))
        .ok_or_else(|| invalid("correlation has no 'timespan'"))?;
    let timespan_ms = parse_timespan(&timespan).map_err(invalid)?;
    let mut condition = Vec::new();
    let mut field = text(section, "field");
    match section.get("condition") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or("");
                if key == "field" {
                    field = v.as_str().map(String::from);
                    continue;
                }
                let n = v
                    .as_u64()
                    .ok_or_else(|| invalid(format!("condition '{key}' is not a count")))?;
                condition.push(match key {
                    "gt" => Threshold::Gt(n),
                    "gte" => Threshold::Gte(n),
                    "lt" => Threshold::Lt(n),
                    "lte" => Threshold::Lte(n),
                    "eq" => Threshold::Eq(n),
                    "neq" => Threshold::Neq(n),
                    _ => return Err(invalid(format!("unknown condition operator '{key}'"))),
                });
            }
        }
        Some(_) => return Err(invalid("correlation 'condition' is not a mapping")),
    }
    match kind {
        Kind::EventCount | Kind::ValueCount if condition.is_empty() => {
            return Err(invalid(format!("{} needs a condition", kind.name())))
        }
        Kind::ValueCount if field.is_none() => {
            return Err(invalid("value_count needs the 'field' to count"))
        }
        _ => {}
    }
    let mut aliases = BTreeMap::new();
    if let Some(a) = section.get("aliases") {
        let Yaml::Mapping(a) = a else {
            return Err(invalid("'aliases' is not a mapping"));
        };
        for (alias, map) in a {
            let alias = alias
                .as_str()
                .ok_or_else(|| invalid("alias name is not a string"))?;
            let Yaml::Mapping(map) = map else {
                return Err(invalid(format!("alias '{alias}' is not a mapping")));
            };
            let mut fields = BTreeMap::new();
            for (rule, f) in map {
                match (rule.as_str(), f.as_str()) {
                    (Some(r), Some(f)) => fields.insert(r.to_string(), f.to_string()),
                    _ => return Err(invalid(format!("alias '{alias}': not rule: field"))),
                };
            }
            aliases.insert(alias.to_string(), fields);
        }
    }
    let generate = match section.get("generate").or_else(|| y.get("generate")) {
        None => false,
        Some(Yaml::Bool(b)) => *b,
        Some(_) => return Err(invalid("'generate' is not true or false")),
    };
    let level = match text(y, "level") {
        Some(l) => l.parse().map_err(invalid)?,
        None => Level::Medium,
    };
    Ok(Correlation {
        id: text(y, "id").unwrap_or_default(),
        name: text(y, "name"),
        title,
        status: text(y, "status"),
        level,
        description: text(y, "description"),
        tags: strings(y.get("tags")).unwrap_or_default(),
        kind,
        rules,
        group_by,
        timespan_ms,
        condition,
        field,
        aliases,
        generate,
        path: path.to_string(),
    })
}

/// What a correlation refers to: a rule or another correlation, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    Rule(usize),
    Correlation(usize),
}

/// Resolves every correlation's references, by id first and then by name. A correlation with
/// an unknown reference, in a cycle, or built on a refused one gets `None` and a refusal.
pub fn resolve(
    rules: &[Rule],
    correlations: &[Correlation],
) -> (Vec<Option<Vec<Member>>>, Vec<RuleError>) {
    let mut by_key: HashMap<&str, Member> = HashMap::new();
    // Names first, so an id wins when a name and an id collide.
    for (i, r) in rules.iter().enumerate() {
        if let Some(n) = &r.name {
            by_key.entry(n).or_insert(Member::Rule(i));
        }
    }
    for (i, c) in correlations.iter().enumerate() {
        if let Some(n) = &c.name {
            by_key.entry(n).or_insert(Member::Correlation(i));
        }
    }
    for (i, r) in rules.iter().enumerate() {
        if !r.id.is_empty() {
            by_key.insert(&r.id, Member::Rule(i));
        }
    }
    for (i, c) in correlations.iter().enumerate() {
        if !c.id.is_empty() {
            by_key.insert(&c.id, Member::Correlation(i));
        }
    }
    let mut members: Vec<Option<Vec<Member>>> = Vec::with_capacity(correlations.len());
    let mut reasons: Vec<Option<String>> = vec![None; correlations.len()];
    for (i, c) in correlations.iter().enumerate() {
        let mut list = Vec::new();
        for r in &c.rules {
            match by_key.get(r.as_str()) {
                Some(&m) if m == Member::Correlation(i) => {
                    reasons[i] = Some("refers to itself".into());
                }
                Some(&m) => list.push(m),
                None => reasons[i] = Some(format!("refers to '{r}', which is not loaded")),
            }
        }
        members.push(reasons[i].is_none().then_some(list));
    }
    // Refuse cycles and anything built on a refused correlation, until nothing changes.
    loop {
        let mut changed = false;
        for i in 0..correlations.len() {
            let Some(list) = &members[i] else { continue };
            let bad = list.iter().find_map(|m| match m {
                Member::Correlation(j) if members[*j].is_none() => Some(*j),
                _ => None,
            });
            if let Some(j) = bad {
                reasons[i] = Some(format!(
                    "refers to correlation '{}', which was refused",
                    correlations[j].title
                ));
                members[i] = None;
                changed = true;
            } else if reaches(&members, i, i, &mut vec![false; correlations.len()]) {
                reasons[i] = Some("is part of a reference cycle".into());
                members[i] = None;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let refused = reasons
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.map(|reason| RuleError {
                path: correlations[i].path.clone(),
                title: Some(correlations[i].title.clone()),
                kind: RefusalKind::Invalid,
                reason: format!("correlation {reason}"),
            })
        })
        .collect();
    (members, refused)
}

/// Whether correlation `from` reaches `target` through its references.
fn reaches(members: &[Option<Vec<Member>>], from: usize, target: usize, seen: &mut [bool]) -> bool {
    let Some(list) = &members[from] else {
        return false;
    };
    for m in list {
        if let Member::Correlation(j) = *m {
            if j == target {
                return true;
            }
            if !seen[j] {
                seen[j] = true;
                if reaches(members, j, target, seen) {
                    return true;
                }
            }
        }
    }
    false
}

/// One match of a referenced rule, as a correlation sees it.
#[derive(Debug, Clone)]
pub struct Hit<P> {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The position of the rule in the correlation's `rules`.
    pub member: usize,
    /// The event's values of the correlation's `group-by` fields, in order.
    pub group: Vec<Box<str>>,
    /// The value of `field`, for `value_count`.
    pub value: Option<Box<str>>,
    /// Where the event is, carried into the firing.
    pub place: P,
}

impl<P> Hit<P> {
    pub fn new(
        time_ms: i64,
        member: usize,
        group: Vec<Box<str>>,
        value: Option<Box<str>>,
        place: P,
    ) -> Self {
        Hit {
            time_ms,
            member,
            group,
            value,
            place,
        }
    }
}

/// A correlation that fired, for one group, over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired<P> {
    /// Index of the correlation.
    pub correlation: usize,
    pub group: Vec<Box<str>>,
    pub first_ms: i64,
    pub last_ms: i64,
    /// What the condition counted: matches, distinct values, or distinct rules.
    pub count: u64,
    /// The places of the latest matches behind it (at most [`PLACES_KEPT`]).
    pub places: Vec<P>,
}

/// Evaluates correlations over their rules' matches. Hits may arrive in any order (inputs
/// are read in parallel); `finish` orders each correlation's hits by time and sweeps them,
/// keeping per group only the open window. Correlations are evaluated referenced-first, so
/// a chained correlation sees the firings of those it names as its hits.
pub struct Evaluator<'a, P> {
    correlations: &'a [Correlation],
    members: &'a [Option<Vec<Member>>],
    hits: Vec<Vec<Item<P>>>,
    /// Hits dropped because a correlation had too many groups open at once.
    dropped: u64,
}

impl<'a, P: Clone> Evaluator<'a, P> {
    pub fn new(correlations: &'a [Correlation], members: &'a [Option<Vec<Member>>]) -> Self {
        Evaluator {
            correlations,
            members,
            hits: vec![Vec::new(); correlations.len()],
            dropped: 0,
        }
    }

    /// Adds a match of correlation `correlation`'s member rule.
    pub fn push(&mut self, correlation: usize, hit: Hit<P>) {
        self.hits[correlation].push(Item {
            time_ms: hit.time_ms,
            member: hit.member,
            group: hit.group,
            value: hit.value,
            places: vec![hit.place],
        });
    }

    /// Every firing, in order of correlation evaluation and then time, and how many hits
    /// were dropped because their correlation had [`GROUPS_PER_CORRELATION`] groups open.
    pub fn finish(mut self) -> (Vec<Fired<P>>, u64) {
        let mut fired = Vec::new();
        let mut done = vec![false; self.correlations.len()];
        for i in 0..self.correlations.len() {
            self.evaluate(i, &mut done, &mut fired);
        }
        (fired, self.dropped)
    }

    fn evaluate(&mut self, i: usize, done: &mut [bool], fired: &mut Vec<Fired<P>>) {
        if done[i] {
            return;
        }
        done[i] = true;
        let Some(members) = self.members[i].clone() else {
            return;
        };
        let c = &self.correlations[i];
        for (pos, m) in members.iter().enumerate() {
            if let Member::Correlation(j) = *m {
                self.evaluate(j, done, fired);
                // The inner firings become this correlation's hits, grouped by the inner
                // group values of the same (or aliased) field names.
                let inner = &self.correlations[j];
                let names = member_names(c, pos, inner.name.as_deref(), &inner.id);
                let columns: Vec<Option<usize>> = c
                    .group_by
                    .iter()
                    .map(|g| {
                        let f = c.field_in(g, &names);
                        inner.group_by.iter().position(|ig| ig == f)
                    })
                    .collect();
                let new: Vec<Item<P>> = fired
                    .iter()
                    .filter(|f| f.correlation == j)
                    .filter_map(|f| {
                        let group = columns
                            .iter()
                            .map(|c| c.map(|k| f.group[k].clone()))
                            .collect::<Option<Vec<_>>>()?;
                        Some(Item {
                            time_ms: f.last_ms,
                            member: pos,
                            group,
                            value: None,
                            places: f.places.clone(),
                        })
                    })
                    .collect();
                self.hits[i].extend(new);
            }
        }
        let mut hits = std::mem::take(&mut self.hits[i]);
        hits.sort_by_key(|h| h.time_ms);
        let (out, dropped) = sweep(c, i, members.len(), hits);
        self.dropped += dropped;
        fired.extend(out);
    }
}

/// A hit inside the evaluator: a rule's match, or an inner correlation's firing.
#[derive(Debug, Clone)]
struct Item<P> {
    time_ms: i64,
    member: usize,
    group: Vec<Box<str>>,
    value: Option<Box<str>>,
    places: Vec<P>,
}

/// The ways a correlation's `pos`-th reference is known, for `aliases`.
fn member_names<'a>(
    c: &'a Correlation,
    pos: usize,
    name: Option<&'a str>,
    id: &'a str,
) -> Vec<&'a str> {
    let mut names = vec![c.rules[pos].as_str()];
    names.extend(name);
    if !id.is_empty() {
        names.push(id);
    }
    names
}

/// The ways every reference of a correlation is known, for `aliases`: the reference as
/// written, the referenced rule's `name` and its `id`.
pub fn reference_names<'a>(
    c: &'a Correlation,
    members: &[Member],
    rules: &'a [Rule],
    correlations: &'a [Correlation],
) -> Vec<Vec<&'a str>> {
    members
        .iter()
        .enumerate()
        .map(|(pos, m)| match *m {
            Member::Rule(r) => member_names(c, pos, rules[r].name.as_deref(), &rules[r].id),
            Member::Correlation(k) => {
                member_names(c, pos, correlations[k].name.as_deref(), &correlations[k].id)
            }
        })
        .collect()
}

/// What a window counts distinct values of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Value(Box<str>),
    Member(usize),
}

/// One group's open window.
struct Window<P> {
    start: i64,
    /// Matches in the window (sliding windows evict from the front).
    times: VecDeque<(i64, Option<Key>)>,
    counts: HashMap<Key, u32>,
    total: u64,
    places: VecDeque<(i64, P)>,
    last: i64,
    /// The firing this window already gave (sliding windows), by index in the output.
    firing: Option<usize>,
}

impl<P: Clone> Window<P> {
    fn new(start: i64) -> Self {
        Window {
            start,
            times: VecDeque::new(),
            counts: HashMap::new(),
            total: 0,
            places: VecDeque::new(),
            last: start,
            firing: None,
        }
    }

    fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::EventCount => self.total,
            _ => self.counts.len() as u64,
        }
    }

    fn evict_front(&mut self) {
        if let Some((_, key)) = self.times.pop_front() {
            self.total -= 1;
            if let Some(k) = key {
                if let Some(n) = self.counts.get_mut(&k) {
                    *n -= 1;
                    if *n == 0 {
                        self.counts.remove(&k);
                    }
                }
            }
        }
    }

    fn add_places(&mut self, t: i64, places: Vec<P>) {
        for p in places {
            if self.places.len() == PLACES_KEPT {
                self.places.pop_front();
            }
            self.places.push_back((t, p));
        }
    }

    fn fired(&self, correlation: usize, group: &[Box<str>], count: u64) -> Fired<P> {
        Fired {
            correlation,
            group: group.to_vec(),
            first_ms: self.times.front().map_or(self.start, |t| t.0),
            last_ms: self.last,
            count,
            places: self.places.iter().map(|(_, p)| p.clone()).collect(),
        }
    }
}

/// One group's partial chains for `temporal_ordered`: per position, the latest start of a
/// chain that has reached it (a later start leaves more of the timespan), and its places.
type Chains<P> = Vec<Option<(i64, Vec<P>)>>;

/// Sweeps one correlation's time-ordered items, returning its firings and the items dropped.
fn sweep<P: Clone>(
    c: &Correlation,
    index: usize,
    members: usize,
    items: Vec<Item<P>>,
) -> (Vec<Fired<P>>, u64) {
    let mut out = Vec::new();
    let mut dropped = 0;
    let span = c.timespan_ms;
    if c.kind == Kind::TemporalOrdered {
        let mut groups: HashMap<Vec<Box<str>>, Chains<P>> = HashMap::new();
        for item in items {
            let t = item.time_ms;
            if !groups.contains_key(&item.group) && groups.len() >= GROUPS_PER_CORRELATION {
                groups.retain(|_, chains| chains.iter().flatten().any(|(s, _)| t - s <= span));
                if groups.len() >= GROUPS_PER_CORRELATION {
                    dropped += 1;
                    continue;
                }
            }
            let chains = groups
                .entry(item.group.clone())
                .or_insert_with(|| vec![None; members]);
            for slot in chains.iter_mut() {
                if slot.as_ref().is_some_and(|(s, _)| t - s > span) {
                    *slot = None;
                }
            }
            let j = item.member;
            let extended = if j == 0 {
                Some((t, item.places))
            } else {
                chains[j - 1].as_ref().map(|(s, p)| {
                    let mut places = p.clone();
                    places.extend(item.places);
                    (*s, places)
                })
            };
            let Some((start, mut places)) = extended else {
                continue;
            };
            if j + 1 == members {
                if places.len() > PLACES_KEPT {
                    places.drain(..places.len() - PLACES_KEPT);
                }
                out.push(Fired {
                    correlation: index,
                    group: item.group,
                    first_ms: start,
                    last_ms: t,
                    count: members as u64,
                    places,
                });
                chains.iter_mut().for_each(|s| *s = None);
            } else if chains[j].as_ref().is_none_or(|(s, _)| *s <= start) {
                chains[j] = Some((start, places));
            }
        }
        return (out, dropped);
    }

    let sliding = c.sliding();
    let mut groups: HashMap<Vec<Box<str>>, Window<P>> = HashMap::new();
    let mut closed = Vec::new();
    for item in items {
        let t = item.time_ms;
        let key = match c.kind {
            Kind::EventCount => None,
            Kind::ValueCount => match item.value {
                Some(v) => Some(Key::Value(v)),
                None => continue, // no value to count
            },
            _ => Some(Key::Member(item.member)),
        };
        if !groups.contains_key(&item.group) && groups.len() >= GROUPS_PER_CORRELATION {
            // Make room by closing the windows that have ended.
            let ended: Vec<Vec<Box<str>>> = groups
                .iter()
                .filter(|(_, w)| t - if sliding { w.last } else { w.start } > span)
                .map(|(g, _)| g.clone())
                .collect();
            for g in ended {
                if let Some(w) = groups.remove(&g) {
                    if !sliding && c.holds(w.count(c.kind), members) {
                        closed.push(w.fired(index, &g, w.count(c.kind)));
                    }
                }
            }
            if groups.len() >= GROUPS_PER_CORRELATION {
                dropped += 1;
                continue;
            }
        }
        let w = groups
            .entry(item.group.clone())
            .or_insert_with(|| Window::new(t));
        if let Some(k) = w.firing {
            // A fired window takes the group's further matches until its timespan ends,
            // so a sweep of eight hosts is one firing of eight, not two of four.
            if t - out[k].first_ms > span {
                *w = Window::new(t);
            }
        }
        if sliding {
            if w.firing.is_none() {
                while w.times.front().is_some_and(|(s, _)| t - s > span) {
                    w.evict_front();
                }
                while w.places.front().is_some_and(|(s, _)| t - s > span) {
                    w.places.pop_front();
                }
                if w.times.len() >= HITS_PER_WINDOW {
                    w.evict_front();
                }
            }
        } else if t - w.start > span {
            if c.holds(w.count(c.kind), members) {
                closed.push(w.fired(index, &item.group, w.count(c.kind)));
            }
            *w = Window::new(t);
        }
        w.last = t;
        w.total += 1;
        if let Some(k) = &key {
            if w.counts.len() < HITS_PER_WINDOW || w.counts.contains_key(k) {
                *w.counts.entry(k.clone()).or_insert(0) += 1;
            }
        }
        if w.times.len() < HITS_PER_WINDOW {
            w.times.push_back((t, key));
        }
        w.add_places(t, item.places);
        if sliding {
            let n = w.count(c.kind);
            match w.firing {
                Some(k) => out[k] = w.fired(index, &item.group, n),
                None if c.holds(n, members) => {
                    w.firing = Some(out.len());
                    out.push(w.fired(index, &item.group, n));
                }
                None => {}
            }
        }
    }
    if !sliding {
        let mut rest: Vec<Fired<P>> = groups
            .into_iter()
            .filter_map(|(g, w)| {
                let n = w.count(c.kind);
                c.holds(n, members).then(|| w.fired(index, &g, n))
            })
            .collect();
        closed.append(&mut rest);
        closed.sort_by(|a, b| (a.first_ms, &a.group).cmp(&(b.first_ms, &b.group)));
        out = closed;
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadReport;

    const BASE: &str = r#"
title: A
id: 00000000-0000-0000-0000-00000000000a
name: rule_a
logsource: { product: windows, service: security }
detection: { sel: { EventID: 1 }, condition: sel }
---
title: B
name: rule_b
logsource: { product: windows, service: security }
detection: { sel: { EventID: 2 }, condition: sel }
"#;

    fn load(correlations: &str) -> LoadReport {
        let mut set = LoadReport::default();
        set.add_text(&format!("{BASE}---\n{correlations}"), "t.yml");
        set
    }

    /// Runs the set's correlations over `(correlation, time s, member, group, value)` hits;
    /// places are the hit numbers.
    fn run(
        set: &LoadReport,
        hits: &[(usize, i64, usize, &str, Option<&str>)],
    ) -> Vec<Fired<usize>> {
        let (members, refused) = resolve(&set.rules, &set.correlations);
        assert!(refused.is_empty(), "{refused:?}");
        let mut eval = Evaluator::new(&set.correlations, &members);
        for (n, (c, t, m, g, v)) in hits.iter().enumerate() {
            let group = if g.is_empty() {
                vec![]
            } else {
                vec![(*g).into()]
            };
            eval.push(*c, Hit::new(t * 1000, *m, group, v.map(Into::into), n));
        }
        let (fired, dropped) = eval.finish();
        assert_eq!(dropped, 0);
        fired
    }

    #[test]
    fn timespans_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_timespan("90m"), Ok(90 * 60_000));
        assert_eq!(parse_timespan("1d"), Ok(86_400_000));
        assert!(parse_timespan("5").is_err());
        assert!(parse_timespan("5x").is_err());
        assert!(parse_timespan("0s").is_err());
    }

    #[test]
    fn malformed_correlations_are_refused_with_reasons() {
        let set = load(
            "title: no cond\ncorrelation: { type: event_count, rules: [rule_a], group-by: [X], timespan: 1m }\n\
             ---\ntitle: sum\ncorrelation: { type: value_sum, rules: [rule_a], timespan: 1m, condition: { gt: 1, field: F } }\n\
             ---\ntitle: no field\ncorrelation: { type: value_count, rules: [rule_a], timespan: 1m, condition: { gt: 1 } }\n",
        );
        assert!(set.correlations.is_empty());
        let reasons: Vec<_> = set
            .refused
            .iter()
            .map(|e| (e.kind.clone(), e.reason.clone()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].1.contains("needs a condition"));
        assert_eq!(reasons[1].0, RefusalKind::Unsupported);
        assert!(reasons[2].1.contains("field"));
    }

    #[test]
    fn unknown_references_and_cycles_are_refused() {
        let set = load(
            "title: missing\ncorrelation: { type: temporal, rules: [rule_a, nowhere], group-by: [X], timespan: 1m }\n\
             ---\ntitle: P\nname: p\ncorrelation: { type: temporal, rules: [q], group-by: [X], timespan: 1m }\n\
             ---\ntitle: Q\nname: q\ncorrelation: { type: temporal, rules: [p], group-by: [X], timespan: 1m }\n\
             ---\ntitle: R\ncorrelation: { type: temporal, rules: [missing_one, rule_b], timespan: 1m }\n",
        );
        let (members, refused) = resolve(&set.rules, &set.correlations);
        assert!(members.iter().all(Option::is_none), "{members:?}");
        assert_eq!(refused.len(), 4);
        assert!(refused[0].reason.contains("'nowhere'"));
        assert!(refused[1].reason.contains("cycle"));
    }

    #[test]
    fn event_count_slides_per_group_and_a_firing_takes_the_rest_of_its_timespan() {
        let set = load("title: C\ncorrelation: { type: event_count, rules: [rule_a], group-by: [User], timespan: 60s, condition: { gte: 3 } }\n");
        let fired = run(
            &set,
            &[
                (0, 0, 0, "alice", None),
                (0, 50, 0, "alice", None),
                (0, 55, 0, "bob", None),
                (0, 70, 0, "alice", None), // 0 left the window: 2 in it
                (0, 80, 0, "alice", None), // 50, 70, 80: fires
                (0, 90, 0, "alice", None), // within 60 s of 50: the same firing, now 4
                (0, 91, 0, "bob", None),
                (0, 200, 0, "alice", None), // a new window
                (0, 210, 0, "alice", None),
                (0, 220, 0, "alice", None), // fires again
            ],
        );
        let got: Vec<_> = fired
            .iter()
            .map(|f| {
                (
                    f.group[0].to_string(),
                    f.first_ms,
                    f.last_ms,
                    f.count,
                    f.places.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("alice".into(), 50_000, 90_000, 4, vec![1, 3, 4, 5]),
                ("alice".into(), 200_000, 220_000, 3, vec![7, 8, 9]),
            ]
        );
    }

    #[test]
    fn hits_in_any_order_give_the_same_firings() {
        let set = load("title: C\ncorrelation: { type: event_count, rules: [rule_a], group-by: [User], timespan: 10s, condition: { gt: 1 } }\n");
        let forward = run(&set, &[(0, 1, 0, "u", None), (0, 5, 0, "u", None)]);
        let backward = run(&set, &[(0, 5, 0, "u", None), (0, 1, 0, "u", None)]);
        assert_eq!(forward.len(), 1);
        assert_eq!(
            (forward[0].first_ms, forward[0].last_ms),
            (backward[0].first_ms, backward[0].last_ms)
        );
    }

    #[test]
    fn upper_bounds_are_judged_when_the_window_closes() {
        let set = load("title: C\ncorrelation: { type: event_count, rules: [rule_a], group-by: [User], timespan: 60s, condition: { gte: 2, lte: 3 } }\n");
        let fired = run(
            &set,
            &[
                // alice: 4 in the first window: too many; then 2 in the next: fires
                (0, 0, 0, "alice", None),
                (0, 10, 0, "alice", None),
                (0, 20, 0, "alice", None),
                (0, 30, 0, "alice", None),
                (0, 100, 0, "alice", None),
                (0, 110, 0, "alice", None),
                // bob: 3, closed by the end of the evidence: fires
                (0, 0, 0, "bob", None),
                (0, 1, 0, "bob", None),
                (0, 2, 0, "bob", None),
            ],
        );
        let got: Vec<_> = fired
            .iter()
            .map(|f| (f.group[0].to_string(), f.first_ms, f.count))
            .collect();
        assert_eq!(
            got,
            vec![("bob".into(), 0, 3), ("alice".into(), 100_000, 2)]
        );
    }

    #[test]
    fn value_count_counts_distinct_values_and_skips_hits_without_one() {
        let set = load("title: Scan\ncorrelation: { type: value_count, rules: [rule_a], group-by: [Computer], timespan: 1m, condition: { field: DestinationIp, gte: 3 } }\n");
        let fired = run(
            &set,
            &[
                (0, 0, 0, "h1", Some("10.0.0.1")),
                (0, 1, 0, "h1", Some("10.0.0.1")),
                (0, 2, 0, "h1", Some("10.0.0.2")),
                (0, 3, 0, "h1", None),
                (0, 4, 0, "h2", Some("10.0.0.3")),
                (0, 5, 0, "h1", Some("10.0.0.3")),
            ],
        );
        assert_eq!(fired.len(), 1);
        assert_eq!((&*fired[0].group[0], fired[0].count), ("h1", 3));
        assert_eq!(fired[0].places, vec![0, 1, 2, 5]);
    }

    #[test]
    fn temporal_needs_every_rule_in_the_timespan_in_any_order() {
        let set = load("title: T\ncorrelation: { type: temporal, rules: [rule_a, rule_b], group-by: [User], timespan: 10s }\n");
        let fired = run(
            &set,
            &[
                (0, 0, 1, "u", None),
                (0, 5, 0, "u", None), // b then a within 10 s: fires
                (0, 100, 0, "v", None),
                (0, 120, 1, "v", None), // too far apart
                (0, 200, 0, "w", None),
                (0, 201, 0, "w", None), // only one rule
            ],
        );
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!((&*fired[0].group[0], fired[0].count), ("u", 2));
    }

    #[test]
    fn temporal_ordered_needs_the_listed_order() {
        let set = load("title: O\ncorrelation: { type: temporal_ordered, rules: [rule_a, rule_b], group-by: [User], timespan: 10s }\n");
        let fired = run(
            &set,
            &[
                (0, 0, 1, "u", None),
                (0, 5, 0, "u", None), // b before a: no
                (0, 20, 0, "v", None),
                (0, 25, 0, "v", None),
                (0, 33, 1, "v", None), // the later a (25) is within 10 s: fires
                (0, 40, 0, "w", None),
                (0, 51, 1, "w", None), // 11 s: too late
            ],
        );
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(&*fired[0].group[0], "v");
        assert_eq!((fired[0].first_ms, fired[0].last_ms), (25_000, 33_000));
        assert_eq!(fired[0].places, vec![3, 4]);
    }

    #[test]
    fn aliases_name_each_rules_field() {
        let set = load(
            "title: T\ncorrelation:\n  type: temporal\n  rules: [rule_a, rule_b]\n  group-by: [sid]\n  timespan: 1m\n  aliases:\n    sid: { rule_a: TargetSid, rule_b: MemberSid }\n",
        );
        let c = &set.correlations[0];
        let (members, _) = resolve(&set.rules, &set.correlations);
        let names = reference_names(
            c,
            members[0].as_ref().unwrap(),
            &set.rules,
            &set.correlations,
        );
        assert_eq!(c.field_in("sid", &names[0]), "TargetSid");
        assert_eq!(c.field_in("sid", &names[1]), "MemberSid");
        assert_eq!(c.field_in("other", &names[1]), "other");
        // By id, too.
        assert!(names[0].contains(&"00000000-0000-0000-0000-00000000000a"));
    }

    #[test]
    fn chained_correlations_feed_their_firings_to_the_referring_one() {
        let set = load(
            "title: Many A\nname: many_a\ncorrelation: { type: event_count, rules: [rule_a], group-by: [User], timespan: 1m, condition: { gte: 2 } }\n\
             ---\ntitle: Many A then B\nlevel: high\ncorrelation: { type: temporal_ordered, rules: [many_a, rule_b], group-by: [User], timespan: 5m }\n",
        );
        let fired = run(
            &set,
            &[
                (0, 0, 0, "u", None),
                (0, 10, 0, "u", None),
                (1, 60, 1, "u", None),
                (1, 61, 1, "x", None),
            ],
        );
        assert_eq!(fired.len(), 2, "{fired:?}");
        assert_eq!(fired[0].correlation, 0);
        assert_eq!(fired[1].correlation, 1);
        assert_eq!((fired[1].first_ms, fired[1].last_ms), (10_000, 60_000));
        assert_eq!(fired[1].places, vec![0, 1, 2]);
    }

    #[test]
    fn groups_past_the_cap_are_dropped_and_counted() {
        let set = load("title: C\ncorrelation: { type: event_count, rules: [rule_a], group-by: [User], timespan: 1d, condition: { gte: 2 } }\n");
        let (members, _) = resolve(&set.rules, &set.correlations);
        let mut eval = Evaluator::new(&set.correlations, &members);
        for g in 0..GROUPS_PER_CORRELATION + 5 {
            eval.push(
                0,
                Hit::new(g as i64, 0, vec![g.to_string().into()], None, ()),
            );
        }
        let (fired, dropped) = eval.finish();
        assert_eq!(dropped, 5);
        assert!(fired.is_empty());
    }
}
