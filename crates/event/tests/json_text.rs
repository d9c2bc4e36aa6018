//! The detection line written without building the event's map is the line serde_json
//! writes with it: the fast path against the plain one, on generated events.

use proptest::prelude::*;
use towerwatch_event::{Detection, Event, Level, Origin, RuleRef, Value};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        // Numbers as logs write them, canonical or not, and text that only looks numeric.
        prop::sample::select(vec![
            "0",
            "-1",
            "1.50",
            "007",
            "1e3",
            "18446744073709551616",
            "0x10",
            "NaN"
        ])
        .prop_map(|s| Value::Number(s.into())),
        "[a-zA-Z0-9 \\\\\"\\n\\t\u{1}\u{7f}é€😀<>&']{0,24}".prop_map(|s| Value::Text(s.into())),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    // Few names, so that names repeat (a list in the source).
    prop::collection::vec(
        (
            prop::sample::select(vec!["Image", "CommandLine", "Data", "é", "a\"b"]),
            value(),
        ),
        0..12,
    )
    .prop_map(|fields| {
        let mut e = Event::new(Origin::record("Security.evtx", 7));
        e.timestamp = "2024-03-01T10:00:00Z".parse().ok();
        for (name, v) in fields {
            e.push(name, v);
        }
        e
    })
}

proptest! {
    #[test]
    fn fields_as_text_are_serde_jsons_map(e in event()) {
        prop_assert_eq!(e.fields_json_text(), serde_json::to_string(&e.fields_json()).unwrap());
    }

    #[test]
    fn a_detection_line_is_its_serialisation(e in event()) {
        let tags = vec!["attack.t1059".to_string()];
        let rule = || RuleRef { id: "r-1", title: "T \"quoted\"", level: Level::High, tags: &tags };
        let plain = serde_json::to_string(&Detection::new(rule(), &e, true)).unwrap();
        let fast = Detection::new(rule(), &e, false).json_line_with_event(&e.fields_json_text());
        prop_assert_eq!(fast, plain);
    }
}
