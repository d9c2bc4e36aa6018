//! The evaluator against hand-worked cases, and parsing's refusals.

use super::*;
use crate::rule::RefusalKind;
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
fn run(set: &LoadReport, hits: &[(usize, i64, usize, &str, Option<&str>)]) -> Vec<Fired<usize>> {
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
             ---\ntitle: sum\ncorrelation: { type: value_sum, rules: [rule_a], timespan: 1m, condition: { gt: 1 } }\n\
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
    assert!(reasons[1].1.contains("value_sum needs the 'field'"));
    assert_eq!(reasons[1].0, RefusalKind::Invalid);
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

/// A metric correlation over `rule_a`'s matches, grouped by `G`, measuring `F`.
fn metric(kind: &str, condition: &str) -> LoadReport {
    let set = load(&format!(
        "title: metric\ncorrelation: {{ type: {kind}, rules: [rule_a], group-by: [G], timespan: 10m, condition: {{ field: F, {condition} }} }}\n"
    ));
    assert_eq!(set.correlations.len(), 1, "{:?}", set.refused);
    set
}

#[test]
fn value_sum_adds_the_numbers_in_a_window_and_skips_text() {
    let set = metric("value_sum", "gt: 1000000");
    // Exfiltration: 600 kB + 500 kB to one host within ten minutes, then 900 kB alone.
    let hits = [
        (0, 0, 0, "h1", Some("600000")),
        (0, 60, 0, "h1", Some("n/a")),
        (0, 120, 0, "h1", Some("500000")),
        (0, 60, 0, "h2", Some("900000")),
        (0, 3600, 0, "h1", Some("900000")),
    ];
    let fired = run(&set, &hits);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(&*fired[0].group[0], "h1");
    assert_eq!(fired[0].value, Some(1_100_000.0));
    assert_eq!(fired[0].count, 2, "the text value is not measured");
    assert_eq!(fired[0].places, vec![0, 2]);
}

#[test]
fn value_avg_is_judged_when_the_window_closes() {
    // A mean can fall again: an early mean above 500 does not fire if later matches in the
    // window bring it down.
    let set = metric("value_avg", "gt: 500");
    let hits = [
        (0, 0, 0, "a", Some("900")),
        (0, 30, 0, "a", Some("100")),
        (0, 0, 0, "b", Some("700")),
        (0, 60, 0, "b", Some("400.5")),
    ];
    let fired = run(&set, &hits);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(&*fired[0].group[0], "b");
    assert_eq!(fired[0].value, Some(550.25));
}

#[test]
fn value_percentile_finds_a_value_rare_in_its_group() {
    // The specification's example: a process name below 1% of a computer's processes.
    let set = metric("value_percentile", "lte: 1");
    let mut hits: Vec<(usize, i64, usize, &str, Option<&str>)> = (0..150)
        .map(|i| (0, i, 0, "pc1", Some("svchost.exe")))
        .collect();
    hits.push((0, 200, 0, "pc1", Some("mimikatz.exe")));
    hits.extend((0..50).map(|i| (0, i, 0, "pc2", Some("svchost.exe"))));
    hits.push((0, 100, 0, "pc2", Some("rare.exe")));
    let fired = run(&set, &hits);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(&*fired[0].group[0], "pc1");
    let share = fired[0].value.unwrap();
    assert!((share - 100.0 / 151.0).abs() < 1e-9, "{share}");
}
