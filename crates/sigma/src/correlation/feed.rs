//! Matches of the engine's rules into correlations: which rule feeds which correlation, the
//! `group-by` (and `field`) values read from each matched event through `aliases`, and the
//! firings as detections.

use std::sync::atomic::{AtomicU64, Ordering};

use towerwatch_event::{Detection, Event, Place};

use super::{reference_names, Correlation, Evaluator, Fired, Hit, Member};
use crate::Rule;

/// What one referenced rule's match must carry into one correlation.
struct Feed {
    correlation: usize,
    member: usize,
    /// The event fields behind `group-by`, after aliases.
    group: Vec<String>,
    /// The event field behind `value_count`'s `field`.
    value: Option<String>,
}

/// A match on its way to the evaluator: the correlation, and the hit.
pub type Pending = (usize, Hit<Place>);

/// Hits are held until reading ends, then swept in time order: at most this many (about
/// 150 bytes each), so that memory stays bounded however much evidence matches.
pub const MAX_HELD_HITS: u64 = 2_000_000;

/// The selected correlations, ready to take the matches of the rules they refer to (any
/// thread: [`observe`](Self::observe) takes `&self`).
///
/// ```
/// use towerwatch_event::{Event, Origin, Value};
/// use towerwatch_sigma::{correlation::{self, Feeds}, LoadReport};
///
/// let mut set = LoadReport::default();
/// set.add_text("title: clear\nname: clear\nlogsource: {product: windows, service: security}\n\
///     detection: {sel: {EventID: 1102}, condition: sel}\n---\ntitle: many clears\n\
///     correlation: {type: event_count, rules: [clear], group-by: [Computer], timespan: 1h,\n\
///     condition: {gte: 2}}\n", "t.yml");
/// let (members, _) = correlation::resolve(&set.rules, &set.correlations);
/// let feeds = Feeds::new(&set.rules, set.correlations.clone(), members, vec![false]);
/// let (mut hits, mut untimed) = (Vec::new(), 0);
/// for i in 0..2 {
///     let mut e = Event::new(Origin::record("Security.evtx", i));
///     e.computer = Some("DC01".into());
///     e.timestamp = Some(jiff::Timestamp::from_second(1_700_000_000 + i as i64).unwrap());
///     feeds.observe(0, &e, &mut hits, &mut untimed);
/// }
/// let (fired, dropped) = feeds.finish(hits);
/// assert_eq!((fired.len(), dropped), (1, 0));
/// assert_eq!(feeds.detection(&fired[0]).computer.as_deref(), Some("DC01"));
/// ```
pub struct Feeds {
    correlations: Vec<Correlation>,
    members: Vec<Option<Vec<Member>>>,
    silent: Vec<bool>,
    /// Per engine rule, the correlations it feeds.
    feeds: Vec<Vec<Feed>>,
    /// At most this many hits are held ([`MAX_HELD_HITS`]; tests lower it).
    max_held: u64,
    /// Hits offered so far by every worker.
    held: AtomicU64,
    /// Hits refused past `max_held`, counted as dropped.
    refused: AtomicU64,
}

impl Feeds {
    /// `rules` in engine order; `members` from [`resolve`](super::resolve); `silent`: the
    /// correlations that only feed others (`generate: false` chains) and report nothing.
    pub fn new(
        rules: &[Rule],
        correlations: Vec<Correlation>,
        members: Vec<Option<Vec<Member>>>,
        silent: Vec<bool>,
    ) -> Self {
        let mut feeds: Vec<Vec<Feed>> = (0..rules.len()).map(|_| Vec::new()).collect();
        for (ci, c) in correlations.iter().enumerate() {
            let Some(list) = &members[ci] else { continue };
            let names = reference_names(c, list, rules, &correlations);
            for (pos, m) in list.iter().enumerate() {
                if let Member::Rule(r) = *m {
                    feeds[r].push(Feed {
                        correlation: ci,
                        member: pos,
                        group: c
                            .group_by
                            .iter()
                            .map(|g| c.field_in(g, &names[pos]).to_string())
                            .collect(),
                        value: c
                            .field
                            .as_deref()
                            .map(|f| c.field_in(f, &names[pos]).to_string()),
                    });
                }
            }
        }
        Feeds {
            correlations,
            members,
            silent,
            feeds,
            max_held: MAX_HELD_HITS,
            held: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.correlations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }

    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// The hits one match of engine rule `rule` gives. Events without a time cannot be
    /// placed in a window; they are counted in `untimed`. An event without a `group-by`
    /// field is in no group, as in Sigma's backends.
    pub fn observe(&self, rule: usize, event: &Event, out: &mut Vec<Pending>, untimed: &mut u64) {
        let feeds = &self.feeds[rule];
        if feeds.is_empty() {
            return;
        }
        let Some(t) = event.timestamp else {
            *untimed += 1;
            return;
        };
        for f in feeds {
            let Some(group) = f
                .group
                .iter()
                .map(|g| field_text(event, g))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            // Counts only the hits held (a refused one takes no room).
            let admitted = self
                .held
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                    (h < self.max_held).then_some(h + 1)
                })
                .is_ok();
            if !admitted {
                self.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let value = f.value.as_deref().and_then(|v| field_text(event, v));
            out.push((
                f.correlation,
                Hit::new(t.as_millisecond(), f.member, group, value, Place::of(event)),
            ));
        }
    }

    /// Whether a hit made elsewhere (a worker's, read off the wire) is one these feeds
    /// could have made: its correlation, its member and its group's width exist here.
    pub fn takes(&self, (correlation, hit): &Pending) -> bool {
        let (Some(c), Some(Some(members))) = (
            self.correlations.get(*correlation),
            self.members.get(*correlation),
        ) else {
            return false;
        };
        hit.member < members.len() && hit.group.len() == c.group_by.len()
    }

    /// Hits counted against the cap that are not held here (a worker sends them on to
    /// the story builder, which counts them again as it takes them).
    pub fn release(&self, n: u64) {
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(n))
            });
    }

    /// Evaluates the collected hits: firings of the correlations that report, and how many
    /// hits were dropped (at the group cap, or past the cap on held hits).
    pub fn finish(&self, mut hits: Vec<Pending>) -> (Vec<Fired<Place>>, u64) {
        // These hits are held no longer: the next run (a service makes its results again,
        // a story builder concludes again) has the whole cap, and its own refusals.
        self.release(hits.len() as u64);
        let refused = self.refused.swap(0, Ordering::Relaxed);
        // Hits of one time in the order of their records, not of their arrival: the same
        // firings whichever worker or stream delivered them.
        hits.sort_by(|(c, a), (d, b)| {
            (a.time_ms, &a.place, c, a.member).cmp(&(b.time_ms, &b.place, d, b.member))
        });
        let mut eval = Evaluator::new(&self.correlations, &self.members);
        for (c, h) in hits {
            eval.push(c, h);
        }
        let (fired, dropped) = eval.finish();
        let dropped = dropped + refused;
        let reported = fired
            .into_iter()
            .filter(|f| !self.silent[f.correlation])
            .collect();
        (reported, dropped)
    }

    /// A firing as a detection, placed at its latest event.
    pub fn detection(&self, f: &Fired<Place>) -> Detection {
        let c = &self.correlations[f.correlation];
        let group: serde_json::Map<String, serde_json::Value> = c
            .group_by
            .iter()
            .zip(&f.group)
            .map(|(k, v)| (k.clone(), serde_json::Value::from(&**v)))
            .collect();
        let computer = c
            .group_by
            .iter()
            .zip(&f.group)
            .find(|(k, _)| is_host_field(k))
            .map(|(_, v)| v.to_string());
        let time = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        let last = f.places.last();
        let events: Vec<serde_json::Value> = f
            .places
            .iter()
            .map(|p| serde_json::json!({"source": p.source, "record_id": p.record_id, "line": p.line}))
            .collect();
        let mut event = serde_json::json!({
            "correlation": c.kind.name(),
            "group": group,
            "count": f.count,
            "first": time(f.first_ms),
            "last": time(f.last_ms),
            "timespan_s": c.timespan_ms / 1000,
            "events": events,
        });
        if let (Some(v), Some(field)) = (f.value, &c.field) {
            event["field"] = field.as_str().into();
            event["value"] = v.into();
        }
        Detection {
            timestamp: Some(time(f.last_ms)),
            rule_id: c.id.clone(),
            rule_title: c.title.clone(),
            level: c.level,
            tags: c.tags.clone(),
            computer,
            channel: Some("correlation".into()),
            event_id: None,
            source: last.map(|p| p.source.clone()).unwrap_or_default(),
            record_id: last.and_then(|p| p.record_id),
            line: last.and_then(|p| p.line),
            event: event.as_object().cloned().unwrap_or_default(),
        }
    }
}

fn is_host_field(name: &str) -> bool {
    ["Computer", "ComputerName", "Hostname", "host"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// An event's text for a field; the host fields fall back to the event's computer.
fn field_text(event: &Event, field: &str) -> Option<Box<str>> {
    if let Some(v) = event.first_str(field) {
        return Some(v.into());
    }
    if is_host_field(field) {
        return event.computer.clone();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_documents, Document};
    use towerwatch_event::{Origin, Value};

    #[test]
    fn hits_past_the_held_cap_are_dropped_and_counted() {
        let text =
            "title: clear\nid: r1\nname: clear\nlogsource: {product: windows, service: security}\n\
                    detection: {sel: {EventID: 1102}, condition: sel}\nlevel: high\n---\n\
                    title: many clears\nid: c1\ncorrelation: {type: event_count, rules: [clear], \
                    group-by: [Computer], timespan: 1h, condition: {gte: 2}}\nlevel: high\n";
        let (mut rules, mut corrs) = (Vec::new(), Vec::new());
        for d in parse_documents(text, "t.yml", &Default::default()) {
            match d.unwrap() {
                Document::Rule(r) => rules.push(*r),
                Document::Correlation(c) => corrs.push(*c),
            }
        }
        let (members, refused) = super::super::resolve(&rules, &corrs);
        assert!(refused.is_empty(), "{refused:?}");
        let mut c = Feeds::new(&rules, corrs, members, vec![false]);
        c.max_held = 3;
        let (mut hits, mut untimed) = (Vec::new(), 0);
        for i in 0..5 {
            let mut e = Event::new(Origin::record("Security.evtx", i));
            e.set_channel("Security");
            e.set_event_id(1102);
            e.computer = Some("DC01".into());
            e.push("Computer", Value::text("DC01"));
            e.timestamp = Some(jiff::Timestamp::from_second(1_700_000_000 + i as i64).unwrap());
            c.observe(0, &e, &mut hits, &mut untimed);
        }
        assert_eq!((hits.len(), untimed), (3, 0));
        let (fired, dropped) = c.finish(hits);
        assert_eq!(dropped, 2);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].count, 3);

        // A second run over the same feeds has the whole cap again, and its own count.
        let mut hits = Vec::new();
        for i in 0..4 {
            let mut e = Event::new(Origin::record("Security.evtx", 10 + i));
            e.set_channel("Security");
            e.set_event_id(1102);
            e.computer = Some("DC01".into());
            e.push("Computer", Value::text("DC01"));
            e.timestamp = Some(jiff::Timestamp::from_second(1_700_000_100 + i as i64).unwrap());
            c.observe(0, &e, &mut hits, &mut untimed);
        }
        assert_eq!(hits.len(), 3);
        let (fired, dropped) = c.finish(hits);
        assert_eq!((fired.len(), dropped), (1, 1));

        // Hits sent on elsewhere are released: they do not fill this process's cap.
        let mut sent = Vec::new();
        for round in 0..3 {
            let mut e = Event::new(Origin::record("Security.evtx", 20 + round));
            e.set_channel("Security");
            e.set_event_id(1102);
            e.push("Computer", Value::text("DC01"));
            e.timestamp = Some(jiff::Timestamp::from_second(1_700_000_200).unwrap());
            let before = sent.len();
            c.observe(0, &e, &mut sent, &mut untimed);
            c.release((sent.len() - before) as u64);
        }
        assert_eq!(sent.len(), 3);
        let (_, dropped) = c.finish(Vec::new());
        assert_eq!(dropped, 0);
    }
}
