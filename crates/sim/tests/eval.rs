//! The evaluation scores what it is given: all labelled events flagged is full recall and
//! precision; nothing flagged is none; benign events flagged are false alarms.

mod common;

use common::{labels, run, small};
use std::io::BufRead;

use towerwatch_sim::eval::{evaluate, Report, Truth};

fn score(truth: &Truth, text: &str, read: Option<&[String]>, level: &str) -> Report {
    try_score(truth, text, read, level).unwrap()
}

fn try_score(
    truth: &Truth,
    text: &str,
    read: Option<&[String]>,
    level: &str,
) -> Result<Report, towerwatch_sim::eval::EvalError> {
    let src: Box<dyn BufRead + '_> = Box::new(text.as_bytes());
    evaluate(truth, vec![("d.jsonl".to_string(), src)], read, level)
}

fn detection(source: &str, line: u64, level: &str) -> String {
    let detection = towerwatch_event::Detection {
        timestamp: None,
        rule_id: "r".into(),
        rule_title: "r".into(),
        level: level.parse().unwrap(),
        tags: Vec::new(),
        computer: None,
        channel: None,
        event_id: None,
        source: source.into(),
        record_id: None,
        line: Some(line),
        event: serde_json::Map::new(),
    };
    serde_json::to_string(&detection).unwrap()
}

#[test]
fn scores_follow_the_detections() {
    let dir = tempfile::tempdir().unwrap();
    run(&small(21), dir.path());
    let truth = Truth::load(dir.path()).unwrap();
    let root = dir.path().display().to_string();
    let all: Vec<String> = labels(dir.path())
        .iter()
        .map(|l| {
            detection(
                &format!("{root}/{}", l["file"].as_str().unwrap()),
                l["line"].as_u64().unwrap(),
                "high",
            )
        })
        .collect();

    let perfect = score(&truth, &all.join("\n"), None, "informational");
    assert_eq!(perfect.stage_instances, 20);
    assert_eq!(perfect.stage_instances_detected, 20);
    assert_eq!(perfect.malicious_flagged, perfect.malicious_events);
    assert_eq!(perfect.precision(), 1.0);
    assert_eq!(perfect.benign_flagged, 0);

    // Above the detections' level nothing counts.
    let cut = score(&truth, &all.join("\n"), None, "critical");
    assert_eq!(cut.malicious_flagged, 0);
    assert_eq!(cut.stage_recall(), 0.0);

    // One benign Windows event (the first line of DC01's log is background) is a false alarm;
    // a detection from another directory is not scored.
    let mut some = all[..1].to_vec();
    some.push(detection(
        &format!("{root}/evidence/windows/DC01.jsonl"),
        1,
        "low",
    ));
    some.push(detection("/elsewhere/x.evtx", 3, "high"));
    let r = score(&truth, &some.join("\n"), None, "informational");
    assert_eq!(r.malicious_flagged, 1);
    assert_eq!(r.benign_flagged, 1);
    assert_eq!(r.flagged_events, 2);
    assert_eq!(r.detections_elsewhere, 1);
    assert!(r.false_alarms_per_million() > 0.0);
    assert!(r.table().contains("false alarms: 1 of"));

    // Only inputs the hunt read count as benign denominators.
    let only_dc = vec![format!("{root}/evidence/windows/DC01.jsonl")];
    let narrow = score(&truth, &some.join("\n"), Some(&only_dc), "informational");
    assert!(narrow.benign_events < r.benign_events);
    assert!(narrow.stages.iter().any(|s| !s.unread.is_empty()));

    let bad = try_score(&truth, "not json", None, "informational").unwrap_err();
    assert!(bad.to_string().starts_with("d.jsonl:1"), "{bad}");
}
