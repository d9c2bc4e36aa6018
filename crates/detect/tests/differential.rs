//! The compiled engine against the plain reference evaluator: identical verdicts on the
//! same rules and events.

mod common;

use std::path::Path;

use proptest::prelude::*;
use towerwatch_detect::Engine;
use towerwatch_event::{Event, Origin, Value};
use towerwatch_sigma::parse_rules;

/// Runs both evaluators over every event of every EVTX/JSON file under `dir`.
fn compare_on(engine: &Engine, dir: &Path) -> (usize, usize) {
    let mut scratch = engine.scratch();
    let (mut events, mut detections) = (0, 0);
    let mut files = vec![dir.to_path_buf()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
            continue;
        }
        if !matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("evtx" | "json")
        ) {
            continue;
        }
        let (evs, _) = common::read_events(&p);
        for e in &evs {
            let fast = engine.matches(e, &mut scratch).to_vec();
            let slow = engine.reference_matches(e);
            assert_eq!(fast, slow, "verdicts differ on {}", e.origin);
            detections += fast.len();
        }
        events += evs.len();
    }
    (events, detections)
}

fn sigmahq_engine() -> Engine {
    Engine::new(common::load_rules(&[
        common::repo().join("rules/sigmahq/windows")
    ]))
}

#[test]
fn identical_on_regression_samples_with_automata_only() {
    let rules = common::load_rules(&[common::repo().join("rules/sigmahq/windows")]);
    let engine = Engine::with_small_set(rules, 0);
    let (events, detections) = compare_on(&engine, &common::repo().join("tests/sigma-regression"));
    assert!(events > 400 && detections > 150);
}

#[test]
fn identical_on_vendored_regression_samples() {
    let engine = sigmahq_engine();
    let (events, detections) = compare_on(&engine, &common::repo().join("tests/sigma-regression"));
    println!("regression samples: {events} events, {detections} detections, identical");
    assert!(events > 400 && detections > 150);
}

#[test]
fn identical_on_shared_attack_corpus() {
    let Some(shared) = common::shared() else {
        println!("SKIPPED: ../shared/data not present (the vendored-sample test still ran)");
        return;
    };
    let engine = sigmahq_engine();
    let (events, detections) = compare_on(&engine, &shared.join("evtx"));
    println!("shared EVTX corpus: {events} events, {detections} detections, identical");
    assert!(events > 10_000 && detections > 1_000);
}

// ---- property tests: generated rules and events ----

const FIELDS: &[&str] = &["Image", "CommandLine", "User", "TargetFilename"];
const PIECES: &[&str] = &[
    "cmd", ".exe", "\\", "-enc", "/c", "Power", "SHELL", "a", "é", "*", "?", "x y", "İ",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..5).prop_map(|v| v.concat())
}

fn modifier() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "",
            "|contains",
            "|startswith",
            "|endswith",
            "|contains|all",
            "|cased",
            "|contains|cased",
            "|windash",
            "|contains|windash",
            "|re",
            "|re|i",
            "|exists",
            "|base64offset|contains",
            "|fieldref",
            "|endswith|fieldref",
        ][..],
    )
}

fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn value_for(modifier: &str, raw: &str) -> String {
    match modifier {
        "|re" | "|re|i" => yaml_str(&regex::escape(raw)),
        "|exists" => {
            if raw.len().is_multiple_of(2) {
                "true".into()
            } else {
                "false".into()
            }
        }
        m if m.contains("fieldref") => yaml_str(FIELDS[raw.len() % FIELDS.len()]),
        m if m.contains("base64") => yaml_str(&raw.replace(['*', '?'], "")),
        _ => yaml_str(raw),
    }
}

prop_compose! {
    fn selection()(items in prop::collection::vec((prop::sample::select(FIELDS), modifier(), prop::collection::vec(text(), 1..3)), 1..3)) -> String {
        let mut s = String::new();
        for (f, m, vals) in items {
            let vals: Vec<String> = vals.iter().map(|v| value_for(m, v)).collect();
            let list = if m == "|exists" || m.contains("fieldref") { vals[0].clone() } else { format!("[{}]", vals.join(", ")) };
            s.push_str(&format!("    {f}{m}: {list}\n"));
        }
        s
    }
}

prop_compose! {
    fn rule()(a in selection(), b in selection(), keyword in text(), cond in 0usize..6) -> String {
        let condition = ["a", "a and not b", "a or b", "1 of them", "all of them", "a and not kw"][cond];
        format!("title: generated\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n  a:\n{a}  b:\n{b}  kw:\n    - {}\n  condition: {condition}\n", yaml_str(&keyword))
    }
}

prop_compose! {
    fn event()(fields in prop::collection::vec((prop::sample::select(FIELDS), prop::option::weighted(0.9, text())), 0..6), security in any::<bool>()) -> Event {
        let mut e = Event::new(Origin::line("generated", 1));
        if security {
            e.set_channel("Security");
            e.set_event_id(4688);
        } else {
            e.set_channel("Microsoft-Windows-Sysmon/Operational");
            e.set_event_id(1);
        }
        for (f, v) in fields {
            // In a 4688 event the image arrives as NewProcessName.
            let name = if security && f == "Image" { "NewProcessName" } else { f };
            e.push(name, v.map_or(Value::Null, Value::text));
        }
        e
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn engine_equals_reference(rules in prop::collection::vec(rule(), 1..6), events in prop::collection::vec(event(), 1..20)) {
        let parsed: Vec<_> = rules.iter().flat_map(|r| parse_rules(r, "gen.yml")).filter_map(Result::ok).collect();
        // Both ways of searching a field: automata only, and pattern by pattern.
        for small_set in [0, usize::MAX] {
            let engine = Engine::with_small_set(parsed.clone(), small_set);
            let mut scratch = engine.scratch();
            for e in &events {
                prop_assert_eq!(engine.matches(e, &mut scratch).to_vec(), engine.reference_matches(e));
            }
        }
    }
}

/// Case-insensitive regexes are triggered by literals found in the folded value; characters
/// that such a regex equates with ASCII letters (long s, Kelvin sign) must not slip past.
#[test]
fn case_insensitive_regex_triggers_see_unicode_equivalents() {
    let yaml = "title: t\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    CommandLine|re|i: 'werfault[a-z]*secure\\.exe'\n  condition: sel\n";
    let rule = parse_rules(yaml, "t.yml").remove(0).unwrap();
    for small_set in [0, usize::MAX] {
        let engine = Engine::with_small_set(vec![rule.clone()], small_set);
        let mut scratch = engine.scratch();
        for (text, expected) in [
            ("x WERFAULTSECURE.EXE 1", true),
            ("x werfault\u{17F}ecure.exe 1", true),
            ("x werfault-secure.exe", false),
        ] {
            let mut e = Event::new(Origin::line("t", 1));
            e.set_channel("Microsoft-Windows-Sysmon/Operational");
            e.set_event_id(1);
            e.push("CommandLine", Value::text(text));
            assert_eq!(engine.reference_matches(&e).len() == 1, expected, "{text}");
            assert_eq!(
                engine.matches(&e, &mut scratch).to_vec(),
                engine.reference_matches(&e),
                "{text}"
            );
        }
    }
}
