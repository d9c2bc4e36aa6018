//! A detection in a story of the estate's routine (and no operation) is that routine's
//! context; one in no such story is not.

use towerwatch_correlate::routine::{actor_of, Routine};
use towerwatch_correlate::{Correlator, Options, RuleInfo};
use towerwatch_event::{Event, Origin, Value};

const DAY: i64 = 86_400;
const START: i64 = 1_551_657_600; // 2019-03-04T00:00:00Z

fn sysmon(file: &str, line: u64, host: &str, id: u32, t: i64, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::new(Origin::line(file, line));
    e.set_channel("Microsoft-Windows-Sysmon/Operational");
    e.set_event_id(id);
    e.computer = Some(host.into());
    e.timestamp = Some(jiff::Timestamp::from_second(t).unwrap());
    for (k, v) in fields {
        e.push(*k, Value::text(*v));
    }
    e
}

#[test]
fn a_detection_linked_to_an_admins_daily_tool_is_its_context() {
    let rules = vec![
        RuleInfo {
            id: "r0".into(),
            title: "Admin tool".into(),
            level: 2,
            tags: vec![],
        },
        RuleInfo {
            id: "r1".into(),
            title: "Tool written to a server".into(),
            level: 2,
            tags: vec![],
        },
    ];
    let mut c = Correlator::default();
    let mut routine = Routine::default();
    let mut line = 0;
    for day in 0..12 {
        line += 1;
        let tool = format!("C:\\Tools\\audit_{day}.exe");
        let run = sysmon(
            "JUMP01.jsonl",
            line,
            "JUMP01",
            1,
            START + day * DAY + 10 * 3600,
            &[
                ("Image", &tool),
                ("ParentImage", "C:\\Windows\\System32\\cmd.exe"),
                ("User", "CORP\\adm.x"),
                ("ProcessGuid", &format!("{{g-{day}}}")),
            ],
        );
        routine.observe(0, actor_of(&run), run.timestamp.unwrap().as_microsecond());
        c.observe(&run, &[0]);
        if day == 11 {
            // A rule fires once on the day's tool file: linked to the routine run by it.
            let write = sysmon(
                "JUMP01-files.jsonl",
                1,
                "JUMP01",
                11,
                START + day * DAY + 10 * 3600 + 5,
                &[
                    ("Image", "C:\\Windows\\System32\\svchost.exe"),
                    ("TargetFilename", &tool),
                ],
            );
            c.observe(&write, &[1]);
            // The same rule on another file, linked to nothing.
            let alone = sysmon(
                "JUMP01-other.jsonl",
                1,
                "JUMP01",
                11,
                START + day * DAY + 10 * 3600 + 5,
                &[
                    ("Image", "C:\\Windows\\System32\\svchost.exe"),
                    ("TargetFilename", "C:\\Temp\\other.exe"),
                ],
            );
            c.observe(&alone, &[1]);
        }
    }
    let a = c
        .finish_with(&[], &[], &rules, &[], &Options::default(), Some(&routine))
        .unwrap();
    assert!(a.operations.is_empty());
    let sources: Vec<&str> = a
        .context
        .iter()
        .map(|(e, _, _)| e.source.as_str())
        .collect();
    assert_eq!(sources, ["JUMP01-files.jsonl"], "{:?}", a.context);
    let (_, rule, why) = &a.context[0];
    assert_eq!(*rule, 1);
    assert!(
        why.starts_with(
            "in a story of the estate's routine: seen daily around 10:00 on JUMP01 by adm.x"
        ),
        "{why}"
    );
}
