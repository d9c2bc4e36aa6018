//! Sigma correlation rules through `towerwatch hunt`, end to end: rule files with detection
//! and correlation documents, Security events as evtx_dump JSON Lines, and the detections
//! the hunt writes.

use std::fmt::Write as _;
use std::process::Command;

fn security(time: &str, record: u64, computer: &str, id: u32, data: &[(&str, &str)]) -> String {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": id,
            "TimeCreated": {"#attributes": {"SystemTime": time}},
            "EventRecordID": record,
            "Channel": "Security",
            "Computer": computer,
        },
        "EventData": data,
    }})
    .to_string()
}

const RULES: &str = r#"
title: Failed logon
id: 11111111-1111-4111-8111-111111111111
name: failed_logon
level: low
logsource: { product: windows, service: security }
detection: { sel: { EventID: 4625 }, condition: sel }
---
title: Successful logon
name: good_logon
level: informational
logsource: { product: windows, service: security }
detection: { sel: { EventID: 4624 }, condition: sel }
---
title: Password spray
name: spray
level: medium
correlation:
  type: value_count
  rules: [failed_logon]
  group-by: [IpAddress]
  timespan: 5m
  condition: { field: TargetUserName, gte: 3 }
---
title: Spray then a logon from the same address
id: 22222222-2222-4222-8222-222222222222
level: high
tags: [attack.credential-access, attack.t1110.003]
correlation:
  type: temporal_ordered
  rules: [spray, good_logon]
  group-by: [source]
  timespan: 10m
  aliases:
    source:
      spray: IpAddress
      good_logon: IpAddress
"#;

fn hunt(dir: &std::path::Path, rules: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let rules_path = dir.join("rules.yml");
    std::fs::write(&rules_path, rules).unwrap();
    let mut args = vec![
        "hunt".to_string(),
        dir.join("events.jsonl").display().to_string(),
        "--rules".into(),
        rules_path.display().to_string(),
        "--format".into(),
        "jsonl".into(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn titles(d: &[serde_json::Value]) -> Vec<String> {
    let mut t: Vec<String> = d
        .iter()
        .map(|d| d["rule_title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[test]
fn chained_correlations_fire_on_a_spray_and_silence_the_rules_they_use() {
    let tmp = tempfile::tempdir().unwrap();
    let mut events = String::new();
    let mut record = 0;
    let mut push = |t: &str, id: u32, data: &[(&str, &str)]| {
        record += 1;
        let _ = writeln!(events, "{}", security(t, record, "DC01", id, data));
    };
    // The spray: four users from one address in two minutes, then a logon from it.
    for (i, user) in ["ann", "bob", "cyd", "dan"].iter().enumerate() {
        let t = format!("2024-05-01T10:0{i}:00Z");
        push(
            &t,
            4625,
            &[("TargetUserName", user), ("IpAddress", "203.0.113.9")],
        );
    }
    push(
        "2024-05-01T10:06:00Z",
        4624,
        &[("TargetUserName", "dan"), ("IpAddress", "203.0.113.9")],
    );
    // A user mistyping three times from another address: one user, no spray.
    for m in 0..3 {
        let t = format!("2024-05-01T11:0{m}:00Z");
        push(
            &t,
            4625,
            &[("TargetUserName", "eve"), ("IpAddress", "10.0.0.5")],
        );
    }
    push(
        "2024-05-01T11:04:00Z",
        4624,
        &[("TargetUserName", "eve"), ("IpAddress", "10.0.0.5")],
    );
    // The same spray pattern too late for the logon (an hour later).
    for (i, user) in ["ann", "bob", "cyd"].iter().enumerate() {
        let t = format!("2024-05-01T12:0{i}:00Z");
        push(
            &t,
            4625,
            &[("TargetUserName", user), ("IpAddress", "198.51.100.7")],
        );
    }
    push(
        "2024-05-01T13:30:00Z",
        4624,
        &[("TargetUserName", "ann"), ("IpAddress", "198.51.100.7")],
    );
    std::fs::write(tmp.path().join("events.jsonl"), events).unwrap();

    // Default level (low): the referenced rules are silent (no generate), the spray is an
    // inner correlation of a reporting one and so silent too; only the chain reports.
    let got = hunt(tmp.path(), RULES, &[]);
    assert_eq!(
        titles(&got),
        vec!["Spray then a logon from the same address"],
        "{got:#?}"
    );
    let d = &got[0];
    assert_eq!(d["level"], "high");
    assert_eq!(d["channel"], "correlation");
    assert_eq!(d["rule_id"], "22222222-2222-4222-8222-222222222222");
    assert_eq!(d["event"]["correlation"], "temporal_ordered");
    assert_eq!(d["event"]["group"]["source"], "203.0.113.9");
    // A chained correlation places the inner firing at its latest event.
    assert_eq!(d["event"]["first"], "2024-05-01T10:03:00Z");
    assert_eq!(d["event"]["last"], "2024-05-01T10:06:00Z");
    // The events behind it: the four failures of the spray and the logon, in the input.
    let lines: Vec<u64> = d["event"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 5]);
    assert_eq!(d["line"], 5);

    // The informational rule runs for the chain, so the level filter removed nothing.
    let table = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args([
            "hunt",
            tmp.path().join("events.jsonl").to_str().unwrap(),
            "--rules",
            tmp.path().join("rules.yml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("2 rules (0 refused, 0 filtered)"), "{table}");
    assert!(
        table.contains("Spray then a logon from the same address"),
        "{table}"
    );

    // generate: true on the chain makes the rules it names report on their own as well
    // (the informational one only from --min-level informational).
    let generating = RULES.replace(
        "  type: temporal_ordered\n",
        "  type: temporal_ordered\n  generate: true\n",
    );
    let got = hunt(tmp.path(), &generating, &[]);
    let t = titles(&got);
    assert_eq!(
        t.iter().filter(|t| *t == "Password spray").count(),
        2,
        "{t:?}"
    );
    assert!(t.contains(&"Spray then a logon from the same address".to_string()));
    assert!(
        !t.contains(&"Failed logon".to_string()),
        "the spray does not generate"
    );
}

#[test]
fn correlations_that_cannot_resolve_are_refused_by_rules_check() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.yml");
    std::fs::write(
        &path,
        "title: Dangling\ncorrelation: { type: event_count, rules: [nowhere], group-by: [User], timespan: 1m, condition: { gte: 2 } }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(["rules", "check", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("correlation refers to 'nowhere'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("correlations: 1 (0 loaded, 1 refused)"),
        "{stdout}"
    );
}

#[test]
fn metric_correlations_measure_a_field_through_the_hunt() {
    // Logons of one account from many workstations within an hour: the sum and mean of a
    // numeric field, and the share of its rarest workstation.
    let dir = tempfile::tempdir().unwrap();
    let mut events = String::new();
    for i in 0..20u64 {
        let ws = if i == 19 { "ROGUE-PC" } else { "WS01" };
        let bytes = (1000 * (i + 1)).to_string();
        let _ = writeln!(
            events,
            "{}",
            security(
                &format!("2024-03-01T10:{:02}:00Z", i),
                100 + i,
                "DC01",
                4624,
                &[
                    ("TargetUserName", "svc_backup"),
                    ("WorkstationName", ws),
                    ("BytesSent", &bytes)
                ],
            )
        );
    }
    std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
    let rules = r#"
title: Logon
name: logon
level: low
logsource: { product: windows, service: security }
detection: { sel: { EventID: 4624 }, condition: sel }
---
title: Much sent
level: high
correlation: { type: value_sum, rules: [logon], group-by: [TargetUserName], timespan: 1h, condition: { field: BytesSent, gt: 200000 } }
---
title: Much sent on average
level: high
correlation: { type: value_avg, rules: [logon], group-by: [TargetUserName], timespan: 1h, condition: { field: BytesSent, gte: 10500 } }
---
title: Rare workstation
level: high
correlation: { type: value_percentile, rules: [logon], group-by: [TargetUserName], timespan: 1h, condition: { field: WorkstationName, lte: 5 } }
"#;
    let d = hunt(dir.path(), rules, &[]);
    let fired: Vec<&serde_json::Value> =
        d.iter().filter(|d| d["channel"] == "correlation").collect();
    let by_title = |t: &str| {
        fired
            .iter()
            .find(|d| d["rule_title"] == t)
            .unwrap_or_else(|| panic!("{t} did not fire: {d:?}"))
    };
    // 1000 + 2000 + … + 20000 = 210000; the mean is 10500; ROGUE-PC is 1 of 20 (5%).
    assert_eq!(by_title("Much sent")["event"]["value"], 210000.0);
    assert_eq!(by_title("Much sent on average")["event"]["value"], 10500.0);
    let rare = by_title("Rare workstation");
    assert_eq!(rare["event"]["value"], 5.0);
    assert_eq!(rare["event"]["correlation"], "value_percentile");
    assert_eq!(fired.len(), 3);
}
