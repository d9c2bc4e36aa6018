//! The direct JSON-to-event path used for EVTX gives the same events as the value-tree path.

use std::path::{Path, PathBuf};

use evtx::EvtxParser;
use towerwatch_event::Origin;
use towerwatch_sources::json::{
    event_from_evtx_json, event_from_evtx_json_direct, event_from_json,
};

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            evtx_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "evtx") {
            out.push(p);
        }
    }
}

#[test]
fn direct_and_tree_paths_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sigma-regression");
    let mut files = Vec::new();
    evtx_files(&root, &mut files);
    // The shared attack corpus, when present, has far more variety (UserData, binary data).
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/evtx");
    if shared.is_dir() {
        evtx_files(&shared, &mut files);
    }
    let mut compared = 0;
    for f in files {
        let mut parser = EvtxParser::from_path(&f).unwrap();
        for rec in parser.records_json() {
            let Ok(rec) = rec else { continue };
            let origin = Origin::record("x", rec.event_record_id);
            let tree =
                event_from_json(serde_json::from_str(&rec.data).unwrap(), origin.clone()).unwrap();
            let direct = event_from_evtx_json_direct(rec.data.as_bytes(), origin).unwrap();
            assert_eq!(
                direct,
                tree,
                "{} record {}",
                f.display(),
                rec.event_record_id
            );
            compared += 1;
        }
    }
    assert!(compared > 200, "{compared} records compared");
}

#[test]
fn direct_path_rejects_broken_json() {
    for broken in [&b"{\"Event\": {\"System\": "[..], b"[1]"] {
        assert!(event_from_evtx_json(broken, Origin::record("x", 1)).is_err());
        assert!(event_from_evtx_json_direct(broken, Origin::record("x", 1)).is_err());
    }
}

#[test]
fn a_record_the_direct_path_declines_is_read_by_the_tree() {
    // EventData before System: the tree puts System's fields first; so does the fallback.
    let text = br#"{"Event": {"EventData": {"Image": "a.exe"}, "System": {"EventID": 1, "Channel": "c"}}}"#;
    let origin = Origin::record("x", 1);
    assert!(event_from_evtx_json_direct(text, origin.clone()).is_err());
    let tree = event_from_json(serde_json::from_slice(text).unwrap(), origin.clone()).unwrap();
    let read = event_from_evtx_json(text, origin).unwrap();
    assert_eq!(read, tree);
    assert_eq!(read.event_id, Some(1));
}

mod lines {
    //! JSON Lines take the direct path when a line is in evtx_dump's shape: the same event as
    //! the value tree, on any such line (keys unique, as the tree reads them).

    use proptest::prelude::*;
    use serde_json::{json, Map, Value as Json};
    use towerwatch_event::Origin;
    use towerwatch_sources::json::{
        event_from_evtx_json_direct, event_from_json, event_from_json_text,
    };

    fn scalar() -> impl Strategy<Value = Json> {
        prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e9f64..1e9).prop_map(|f| json!(f)),
            "[a-zA-Z0-9 :\\\\\"{}é-]{0,12}".prop_map(Json::String),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z][A-Za-z0-9 ]{0,8}",
            Just("#attributes".to_string()),
            Just("#text".to_string()),
            Just("xmlns".to_string()),
            Just("System".to_string()),
            Just("Event".to_string()),
        ]
    }

    /// Any JSON value, with the names evtx_dump uses among the keys.
    fn value() -> impl Strategy<Value = Json> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((name(), inner), 0..6)
                    .prop_map(|kv| Json::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// `{"Event": {...}, ...}`: Event first, the rest of the line anything.
    fn line() -> impl Strategy<Value = String> {
        (value(), prop::collection::vec((name(), value()), 0..3)).prop_map(|(event, rest)| {
            let mut top = Map::new();
            top.insert("Event".into(), event);
            for (k, v) in rest {
                top.entry(k).or_insert(v);
            }
            serde_json::to_string(&Json::Object(top)).unwrap()
        })
    }

    /// Whether the direct path declines this line (and leaves it to the tree): `Event` or
    /// `System` not an object, or `System` after the data.
    fn declined(text: &str) -> bool {
        let top: Json = serde_json::from_str(text).unwrap();
        let Some(event) = top["Event"].as_object() else {
            return true;
        };
        let mut data_seen = false;
        for (k, v) in event {
            match k.as_str() {
                "#attributes" => {}
                "System" => return data_seen || !v.is_object(),
                _ => data_seen = true,
            }
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn direct_and_tree_give_the_same_event(text in line()) {
            let origin = Origin::line("x.jsonl", 7);
            let tree = event_from_json(serde_json::from_str(&text).unwrap(), origin.clone());
            let direct = event_from_evtx_json_direct(text.as_bytes(), origin.clone());
            if declined(&text) {
                prop_assert!(direct.is_err(), "{}: the direct path read it", text);
            } else {
                // Every line it does not decline, it reads, as the tree does.
                prop_assert_eq!(&direct.unwrap(), tree.as_ref().unwrap(), "{}", text);
            }
            // And a line, whichever path reads it, is the tree's event.
            let line = event_from_json_text(text.as_bytes(), origin);
            prop_assert_eq!(line.ok(), tree.ok(), "{}", text);
        }
    }

    #[test]
    fn a_system_after_the_data_and_a_second_event_go_the_tree_way() {
        let origin = Origin::line("x.jsonl", 1);
        for text in [
            r#"{"Event": {"EventData": {"Image": "a.exe"}, "System": {"EventID": 1, "Channel": "c"}}}"#,
            r#"{"Event": {"System": {"EventID": 1}}, "Event": {"System": {"EventID": 2}}}"#,
            r#"{"Event": 5, "EventID": 3}"#,
        ] {
            let tree =
                event_from_json(serde_json::from_str(text).unwrap(), origin.clone()).unwrap();
            let direct = event_from_json_text(text.as_bytes(), origin.clone()).unwrap();
            assert_eq!(direct, tree, "{text}");
        }
        assert!(event_from_json_text(br#"{"Event": {"System": "#, origin).is_err());
    }
}
