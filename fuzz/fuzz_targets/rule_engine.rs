//! A rule file and evidence, split at the first NUL byte: the rule parser never panics, and
//! on every event read the compiled engine (both field-search paths) agrees with the plain
//! reference evaluator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use towerwatch_detect::Engine;
use towerwatch_sigma::parse_rules;
use towerwatch_sources::{read_bytes, ReadOptions};

fuzz_target!(|data: &[u8]| {
    let (rules, evidence) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(rules) else {
        return;
    };
    let rules: Vec<_> = parse_rules(text, "fuzz.yml")
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    if rules.is_empty() {
        return;
    }
    let mut events = Vec::new();
    read_bytes(
        "fuzz-input",
        evidence,
        &ReadOptions::default(),
        &mut |item| events.extend(item.ok()),
    );
    for engine in [Engine::new(rules.clone()), Engine::with_small_set(rules, 0)] {
        let mut scratch = engine.scratch();
        for event in &events {
            let want = engine.reference_matches(event);
            assert_eq!(
                engine.matches(event, &mut scratch),
                want.as_slice(),
                "{event:?}"
            );
        }
    }
});
