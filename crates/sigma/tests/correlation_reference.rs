//! The streaming correlation evaluator against a plain reference: for every hit, recompute
//! from scratch which hits are in the window, with no deques, counters or chains kept; for
//! the metric types, recompute each window's sum, mean or value shares from its hits.

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
                if c.holds(m as f64, n) {
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
            if !c.holds(count(c, &window) as f64, n) {
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

/// A metric's value of a raw hit: the numbers 0, 3, …, 12, and a word (`x`) that a sum or
/// mean cannot measure.
fn metric_value(v: u8) -> String {
    if v == 4 {
        "x".into()
    } else {
        (v as u32 * 3).to_string()
    }
}

/// (group, first, last, measured hits, measure rounded to 1e-6)
type MetricSummary = (String, i64, i64, u64, i64);

fn metric_streaming(s: &LoadReport, hits: &[Raw]) -> Vec<MetricSummary> {
    let (members, _) = correlation::resolve(&s.rules, &s.correlations);
    let mut e = Evaluator::new(&s.correlations, &members);
    for (n, &(t, m, g, v)) in hits.iter().enumerate() {
        let group = vec![g.to_string().into()];
        e.push(
            0,
            Hit::new(t * 1000, m, group, Some(metric_value(v).into()), n),
        );
    }
    let mut out: Vec<_> = e
        .finish()
        .0
        .into_iter()
        .map(|f| {
            let v = f.value.expect("a metric's firing has its measure");
            (
                f.group[0].to_string(),
                f.first_ms / 1000,
                f.last_ms / 1000,
                f.count,
                micro(v),
            )
        })
        .collect();
    out.sort();
    out
}

fn micro(v: f64) -> i64 {
    (v * 1e6).round() as i64
}

/// Windows open at a group's first hit not yet in one and take what follows within the
/// timespan (of the hits with a value to measure); each is judged on its own.
fn metric_reference(s: &LoadReport, hits: &[Raw]) -> Vec<MetricSummary> {
    let c = &s.correlations[0];
    let span = c.timespan_ms / 1000;
    let holds = |x: f64| c.condition.iter().all(|t| t.holds(x));
    let numeric = matches!(c.kind, Kind::ValueSum | Kind::ValueAvg);
    let mut out = Vec::new();
    for g in 0u8..3 {
        let mut mine: Vec<(i64, String)> = hits
            .iter()
            .filter(|h| h.2 == g)
            .map(|h| (h.0, metric_value(h.3)))
            .filter(|(_, v)| !numeric || v.parse::<f64>().is_ok())
            .collect();
        mine.sort_by_key(|h| h.0);
        let mut from = 0;
        while from < mine.len() {
            let start = mine[from].0;
            let end = mine[from..]
                .iter()
                .position(|h| h.0 - start > span)
                .map_or(mine.len(), |p| from + p);
            let window = &mine[from..end];
            let numbers: Vec<f64> = window.iter().filter_map(|h| h.1.parse().ok()).collect();
            let sum: f64 = numbers.iter().sum();
            let measure = match c.kind {
                Kind::ValueSum => Some(sum).filter(|x| holds(*x)),
                Kind::ValueAvg => Some(sum / numbers.len() as f64).filter(|x| holds(*x)),
                _ => {
                    // The share of each distinct value; the rarest that meets the condition.
                    let mut shares: Vec<usize> = Vec::new();
                    let mut seen: Vec<&str> = Vec::new();
                    for h in window {
                        if !seen.contains(&h.1.as_str()) {
                            seen.push(&h.1);
                            shares.push(window.iter().filter(|o| o.1 == h.1).count());
                        }
                    }
                    shares.sort();
                    shares
                        .into_iter()
                        .map(|n| 100.0 * n as f64 / window.len() as f64)
                        .find(|x| holds(*x))
                }
            };
            if let Some(x) = measure {
                out.push((
                    g.to_string(),
                    start,
                    window[window.len() - 1].0,
                    window.len() as u64,
                    micro(x),
                ));
            }
            from = end;
        }
    }
    out.sort();
    out
}

fn threshold() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["gt", "gte", "lt", "lte", "eq", "neq"]),
        0u32..40,
    )
        .prop_map(|(op, n)| format!("{op}: {n}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn value_sum(hits in raw_hits(1), t in threshold()) {
        let s = set("value_sum", "a", &format!(", condition: {{ field: V, {t} }}"));
        prop_assert_eq!(metric_streaming(&s, &hits), metric_reference(&s, &hits));
    }

    #[test]
    fn value_avg(hits in raw_hits(1), t in threshold()) {
        let s = set("value_avg", "a", &format!(", condition: {{ field: V, {t} }}"));
        prop_assert_eq!(metric_streaming(&s, &hits), metric_reference(&s, &hits));
    }

    #[test]
    fn value_percentile(hits in raw_hits(1), t in threshold()) {
        let s = set("value_percentile", "a", &format!(", condition: {{ field: V, {t} }}"));
        prop_assert_eq!(metric_streaming(&s, &hits), metric_reference(&s, &hits));
    }
}
