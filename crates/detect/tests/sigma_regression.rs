//! SigmaHQ's regression suite: each case names a rule, a sample (EVTX and the same events
//! as JSON) and the expected number of matches. The compiled engine, with every rule loaded,
//! must give that count on the EVTX and on the JSON, and agree with the reference evaluator.

mod common;

use std::collections::HashMap;

use serde_yaml::Value;
use towerwatch_detect::Engine;

struct Case {
    rule_id: String,
    title: String,
    sample: std::path::PathBuf,
    /// `None`: the case only says the rule must fire.
    expected: Option<usize>,
}

fn cases() -> Vec<Case> {
    let root = common::repo().join("tests/sigma-regression");
    let mut out = Vec::new();
    for entry in walk(&root) {
        if entry.file_name().and_then(|n| n.to_str()) != Some("info.yml") {
            continue;
        }
        let info: Value = serde_yaml::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
        let meta = &info["rule_metadata"][0];
        for t in info["regression_tests_info"].as_sequence().unwrap() {
            if t["type"].as_str() != Some("evtx") {
                continue;
            }
            out.push(Case {
                rule_id: meta["id"].as_str().unwrap().to_string(),
                title: meta["title"].as_str().unwrap_or("").to_string(),
                sample: root.join(t["path"].as_str().unwrap()),
                expected: t["match_count"].as_u64().map(|n| n as usize),
            });
        }
    }
    out.sort_by(|a, b| a.sample.cmp(&b.sample));
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn sigmahq_regression_suite() {
    let repo = common::repo();
    let rules = common::load_rules(&[
        repo.join("rules/sigmahq/windows"),
        repo.join("tests/sigma-regression/extra-rules"),
    ]);
    let by_id: HashMap<String, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    let engine = Engine::new(rules);
    let mut scratch = engine.scratch();
    let cases = cases();
    assert!(
        cases.len() >= 200,
        "vendored regression cases missing: {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let Some(&idx) = by_id.get(&case.rule_id) else {
            failures.push(format!(
                "{} ({}): rule not loaded",
                case.title, case.rule_id
            ));
            continue;
        };
        let mut counts = Vec::new();
        for sample in [case.sample.clone(), case.sample.with_extension("json")] {
            let (events, rejected) = common::read_events(&sample);
            assert_eq!(rejected, 0, "{} has unreadable records", sample.display());
            let compiled = events
                .iter()
                .filter(|e| engine.matches(e, &mut scratch).contains(&idx))
                .count();
            let reference = events
                .iter()
                .filter(|e| engine.rules()[idx].matches(e))
                .count();
            assert_eq!(
                compiled,
                reference,
                "engine and reference disagree on {}",
                sample.display()
            );
            counts.push(compiled);
        }
        let ok = match case.expected {
            Some(n) => counts.iter().all(|&c| c == n),
            None => counts.iter().all(|&c| c >= 1),
        };
        if !ok {
            failures.push(format!(
                "{} ({}): expected {}, got evtx {} / json {} in {}",
                case.title,
                case.rule_id,
                case.expected.map_or("≥1".into(), |n| n.to_string()),
                counts[0],
                counts[1],
                case.sample.display()
            ));
        }
    }
    let passed = cases.len() - failures.len();
    println!(
        "SigmaHQ regression: {passed}/{} cases pass ({:.1}%)",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(
        passed * 100 >= cases.len() * 98,
        "below 98%: {} failures",
        failures.len()
    );
}
