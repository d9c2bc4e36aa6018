//! The streaming correlation evaluator against a plain reference: for every hit, recompute
//! from scratch which hits are in the window, with no deques, counters or chains kept.

use proptest::prelude::*;
use towerwatch_sigma::correlation::{self, Evaluator, Fired, Hit, Kind};
use towerwatch_sigma::{Correlation, LoadReport};

const BASE: &str = "
title: A
name: a
logsource: { product: windows, service: security }
detection: { sel: { EventID: 1 }, condition: sel }
---
title: B
name: b
logsource: { product: windows, service: security }
detection: { sel: { EventID: 2 }, condition: sel }
---
title: C
name: c
logsource: { product: windows, service: security }
detection: { sel: { EventID: 3 }, condition: sel }
";

/// (time s, member, group, value)
type Raw = (i64, usize, u8, u8);

type Summary = (String, i64, i64, u64);

fn set(kind: &str, rules: &str, condition: &str) -> LoadReport {
    let mut s = LoadReport::default();
    s.add_text(
        &format!("{BASE}---\ntitle: X\ncorrelation: {{ type: {kind}, rules: [{rules}], group-by: [G], timespan: 30s{condition} }}\n"),
        "t.yml",
    );
    assert!(s.refused.is_empty(), "{:?}", s.refused);
    s
}

fn streaming(s: &LoadReport, hits: &[Raw]) -> Vec<Summary> {
    let (members, _) = correlation::resolve(&s.rules, &s.correlations);
    let mut e = Evaluator::new(&s.correlations, &members);
    for (n, &(t, m, g, v)) in hits.iter().enumerate() {
        let group = vec![g.to_string().into()];
        e.push(
            0,
            Hit::new(t * 1000, m, group, Some(v.to_string().into()), n),
        );
    }
    let mut out: Vec<_> = e.finish().0.into_iter().map(summary).collect();
    out.sort();
    out
}

fn summary(f: Fired<usize>) -> Summary {
    (
        f.group[0].to_string(),
        f.first_ms / 1000,
        f.last_ms / 1000,
        f.count,
    )
}

/// What the condition counts over a set of hits.
fn count(c: &Correlation, hits: &[&Raw]) -> u64 {
    let mut keys: Vec<u8> = match c.kind {
        Kind::EventCount => return hits.len() as u64,
        Kind::ValueCount => hits.iter().map(|h| h.3).collect(),
        _ => hits.iter().map(|h| h.1 as u8).collect(),
    };
    keys.sort();
    keys.dedup();
    keys.len() as u64
}

/// The reference, per group over its time-ordered hits.
fn reference(s: &LoadReport, hits: &[Raw]) -> Vec<Summary> {
    let c = &s.correlations[0];
    let n = c.rules.len();
    let span = c.timespan_ms / 1000;
    let mut out = Vec::new();
    let mut groups: Vec<u8> = hits.iter().map(|h| h.2).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let mut mine: Vec<&Raw> = hits.iter().filter(|h| h.2 == g).collect();
        mine.sort_by_key(|h| h.0); // stable: ties keep input order, as the evaluator's sort
        let mut from = 0; // hits before `from` belong to an earlier window
        let mut k = 0;
        while k < mine.len() {
            let t = mine[k].0;
            if !c.sliding() {
                // Anchored: a window from its first hit, judged when it closes.
                let start = mine[from].0;
                let end = mine[from..]
                    .iter()
                    .position(|h| h.0 - start > span)
                    .map_or(mine.len(), |p| from + p);
                let m = count(c, &mine[from..end]);
                if c.holds(m, n) {
                    out.push((g.to_string(), start, mine[end - 1].0, m));
                }
                from = end;
                k = end;
                continue;
            }
            if c.kind == Kind::TemporalOrdered {
                if let Some(first) = ordered_start(&mine[from..=k], n, span) {
                    out.push((g.to_string(), first, t, n as u64));
                    from = k + 1;
                }
                k += 1;
                continue;
            }
            let window: Vec<&Raw> = mine[from..=k]
                .iter()
                .copied()
                .filter(|h| t - h.0 <= span)
                .collect();
            if !c.holds(count(c, &window), n) {
                k += 1;
                continue;
            }
            // The firing takes the group's hits until its timespan ends.
            let first = window[0].0;
            let mut end = k + 1;
            while end < mine.len() && mine[end].0 - first <= span {
                end += 1;
            }
            let taken: Vec<&Raw> = mine[from..end]
                .iter()
                .copied()
                .filter(|h| h.0 >= first)
                .collect();
            out.push((g.to_string(), first, mine[end - 1].0, count(c, &taken)));
            from = end;
            k = end;
        }
    }
    out.sort();
    out
}

/// The latest start of a chain of members 0..n, in order, ending at the last hit.
fn ordered_start(hits: &[&Raw], n: usize, span: i64) -> Option<i64> {
    let last = hits.last()?;
    if last.1 != n - 1 {
        return None;
    }
    // Every choice of earlier hits for members n-2, …, 0, in order.
    fn search(hits: &[&Raw], before: usize, member: usize, end: i64, span: i64) -> Option<i64> {
        (0..before)
            .filter(|&i| hits[i].1 == member && end - hits[i].0 <= span)
            .filter_map(|i| {
                if member == 0 {
                    Some(hits[i].0)
                } else {
                    search(hits, i, member - 1, end, span)
                }
            })
            .max()
    }
    if n == 1 {
        return Some(last.0);
    }
    search(hits, hits.len() - 1, n - 2, last.0, span)
}

fn raw_hits(members: usize) -> impl Strategy<Value = Vec<Raw>> {
    prop::collection::vec((0i64..200, 0..members, 0u8..3, 0u8..5), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn event_count_sliding(hits in raw_hits(1), k in 1u64..5) {
        let s = set("event_count", "a", &format!(", condition: {{ gte: {k} }}"));
        prop_assert_eq!(streaming(&s, &hits), reference(&s, &hits));
    }

    #[test]
    fn event_count_anchored(hits in raw_hits(1), lo in 1u64..3, hi in 2u64..6) {
        let s = set("event_count", "a", &format!(", condition: {{ gte: {lo}, lte: {hi} }}"));
        prop_assert_eq!(streaming(&s, &hits), reference(&s, &hits));
    }

    #[test]
    fn value_count_sliding(hits in raw_hits(1), k in 1u64..5) {
        let s = set("value_count", "a", &format!(", condition: {{ field: V, gt: {k} }}"));
        prop_assert_eq!(streaming(&s, &hits), reference(&s, &hits));
    }

    #[test]
    fn temporal_every_rule(hits in raw_hits(3)) {
        let s = set("temporal", "a, b, c", "");
        prop_assert_eq!(streaming(&s, &hits), reference(&s, &hits));
    }

    #[test]
    fn temporal_ordered(hits in raw_hits(3)) {
        let s = set("temporal_ordered", "a, b, c", "");
        prop_assert_eq!(streaming(&s, &hits), reference(&s, &hits));
    }
}
