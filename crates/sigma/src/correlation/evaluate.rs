//! The streaming evaluator: matches in, firings out, with bounded state.

use std::collections::{HashMap, VecDeque};

use super::resolve::member_names;
use super::{Correlation, Kind, Member, GROUPS_PER_CORRELATION, HITS_PER_WINDOW, PLACES_KEPT};

/// One match of a referenced rule, as a correlation sees it (serialisable, so a worker
/// elsewhere can find it and send it on).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Hit<P> {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The position of the rule in the correlation's `rules`.
    pub member: usize,
    /// The event's values of the correlation's `group-by` fields, in order.
    pub group: Vec<Box<str>>,
    /// The value of `field`, for `value_count` and the metrics.
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
    /// What the condition counted: matches, distinct values, or distinct rules; for a
    /// metric, the matches measured.
    pub count: u64,
    /// A metric's measure: the sum, the mean, or the share (percent) of the value found.
    pub value: Option<f64>,
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

/// What a window counts distinct values of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// The sum of the numbers measured (`value_sum`, `value_avg`).
    sum: f64,
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
            sum: 0.0,
            places: VecDeque::new(),
            last: start,
            firing: None,
        }
    }

    fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::EventCount | Kind::ValueSum | Kind::ValueAvg | Kind::ValuePercentile => {
                self.total
            }
            _ => self.counts.len() as u64,
        }
    }

    /// The measure when `c`'s condition holds on this window.
    fn judge(&self, c: &Correlation, members: usize) -> Option<Measure> {
        let count = self.count(c.kind);
        let measured = |value: f64| {
            c.holds(value, members).then_some(Measure {
                count,
                value: Some(value),
            })
        };
        match c.kind {
            Kind::ValueSum => measured(self.sum),
            Kind::ValueAvg if self.total > 0 => measured(self.sum / self.total as f64),
            Kind::ValueAvg => None,
            Kind::ValuePercentile => {
                // The rarest value whose share meets the condition (ties by value).
                let mut shares: Vec<(u32, &Key)> =
                    self.counts.iter().map(|(k, n)| (*n, k)).collect();
                shares.sort_unstable();
                shares
                    .into_iter()
                    .map(|(n, _)| 100.0 * n as f64 / self.total.max(1) as f64)
                    .find_map(measured)
            }
            _ => c
                .holds(count as f64, members)
                .then_some(Measure { count, value: None }),
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

    fn fired(&self, correlation: usize, group: &[Box<str>], m: Measure) -> Fired<P> {
        Fired {
            correlation,
            group: group.to_vec(),
            first_ms: self.times.front().map_or(self.start, |t| t.0),
            last_ms: self.last,
            count: m.count,
            value: m.value,
            places: self.places.iter().map(|(_, p)| p.clone()).collect(),
        }
    }
}

/// What a window that meets its condition gives its firing.
#[derive(Debug, Clone, Copy)]
struct Measure {
    count: u64,
    value: Option<f64>,
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
                    value: None,
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
        // A match without the field's value (or, for a sum or mean, without a number in
        // it) has nothing to count or measure.
        let mut number = 0.0;
        let key = match c.kind {
            Kind::EventCount => None,
            Kind::ValueCount | Kind::ValuePercentile => match item.value {
                Some(v) => Some(Key::Value(v)),
                None => continue,
            },
            Kind::ValueSum | Kind::ValueAvg => {
                match item.value.as_deref().and_then(parse_number) {
                    Some(n) => number = n,
                    None => continue,
                }
                None
            }
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
                    if let (false, Some(m)) = (sliding, w.judge(c, members)) {
                        closed.push(w.fired(index, &g, m));
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
            if let Some(m) = w.judge(c, members) {
                closed.push(w.fired(index, &item.group, m));
            }
            *w = Window::new(t);
        }
        w.last = t;
        w.total += 1;
        w.sum += number;
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
            let m = Measure {
                count: w.count(c.kind),
                value: None,
            };
            match w.firing {
                Some(k) => out[k] = w.fired(index, &item.group, m),
                None if c.holds(m.count as f64, members) => {
                    w.firing = Some(out.len());
                    out.push(w.fired(index, &item.group, m));
                }
                None => {}
            }
        }
    }
    if !sliding {
        let mut rest: Vec<Fired<P>> = groups
            .into_iter()
            .filter_map(|(g, w)| w.judge(c, members).map(|m| w.fired(index, &g, m)))
            .collect();
        closed.append(&mut rest);
        closed.sort_by(|a, b| (a.first_ms, &a.group).cmp(&(b.first_ms, &b.group)));
        out = closed;
    }
    (out, dropped)
}

/// A field's value as a number (`1500`, `-2`, `0.25`, `1e6`); `None` for text and for
/// what is not a finite number.
pub fn parse_number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}
