//! The ground truth points at real records of the right shape, covers every stage of every
//! wave, and its exposure agrees with the CDRs written.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{labels, run, small, tree};
use towerwatch_sim::{PROFILES, STAGES};

#[test]
fn every_wave_plays_every_stage_in_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    run(&small(11), dir.path());
    let labels = labels(dir.path());
    let mut seen: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut kinds = BTreeSet::new();
    for l in &labels {
        seen.entry(l["wave"].as_u64().unwrap())
            .or_default()
            .insert(l["stage"].as_u64().unwrap());
        kinds.insert(
            l["file"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1)
                .unwrap()
                .to_string(),
        );
        let t = l["technique"].as_str().unwrap();
        assert!(
            t.starts_with('T') && t[1..5].bytes().all(|b| b.is_ascii_digit()),
            "technique {t}"
        );
        assert_ne!(t, "T1574.002", "revoked technique id");
    }
    let all: BTreeSet<u64> = STAGES.iter().map(|(n, _)| u64::from(*n)).collect();
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    for (wave, stages) in &seen {
        assert_eq!(stages, &all, "wave {wave} misses stages");
    }
    for kind in ["windows", "iis", "postgresql", "flows"] {
        assert!(kinds.contains(kind), "no labelled {kind} records");
    }
}

#[test]
fn labels_point_at_records_of_the_right_shape() {
    let dir = tempfile::tempdir().unwrap();
    run(&small(12), dir.path());
    let files = tree(dir.path());
    let lines: BTreeMap<&str, Vec<&str>> = files
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                std::str::from_utf8(v).unwrap().split('\n').collect(),
            )
        })
        .collect();
    let mut checked = 0;
    for l in labels(dir.path()) {
        let file = l["file"].as_str().unwrap();
        let n = l["line"].as_u64().unwrap() as usize;
        let line = lines[file][n - 1];
        match file.split('/').nth(1).unwrap() {
            "windows" => {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(
                    v["Event"]["System"]["EventRecordID"], l["record_id"],
                    "{file}:{n}"
                );
                assert_eq!(
                    v["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"], l["time"],
                    "{file}:{n}"
                );
            }
            "iis" => assert!(
                !line.starts_with('#') && line.split(' ').count() == 17,
                "{file}:{n}: {line}"
            ),
            "postgresql" => assert!(line.contains(" LOG:  "), "{file}:{n}: {line}"),
            "flows" => assert_eq!(line.split('\t').count(), 21, "{file}:{n}"),
            other => panic!("label in {other}"),
        }
        checked += 1;
    }
    assert!(checked > 300, "{checked} labels");
    // Every file's records: IIS data lines have as many values as #Fields names; CDR rows as
    // many as the header; Windows lines are JSON; PostgreSQL lines carry the prefix.
    for (name, ls) in &lines {
        let ls: Vec<&&str> = ls.iter().filter(|l| !l.is_empty()).collect();
        if name.starts_with("evidence/iis/") {
            let fields = ls
                .iter()
                .find(|l| l.starts_with("#Fields:"))
                .unwrap()
                .split(' ')
                .count()
                - 1;
            assert!(
                ls.iter()
                    .filter(|l| !l.starts_with('#'))
                    .all(|l| l.split(' ').count() == fields),
                "{name}"
            );
        } else if name.starts_with("cdr/cdr_") {
            assert_eq!(*ls[0], PROFILES[0].db.schema.header());
            assert!(ls.iter().all(|l| l.split(',').count() == 22), "{name}");
        } else if name.starts_with("evidence/windows/") {
            assert!(
                ls.iter()
                    .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
                "{name}"
            );
        } else if name.starts_with("evidence/postgresql/") {
            assert!(
                ls.iter()
                    .all(|l| l.starts_with('\t') || l.contains(" UTC [") && l.contains("] user=")),
                "{name}"
            );
        }
    }
}

/// Re-derives what each stolen query returned from the CDR files alone and compares it with
/// `truth/exposure.json`.
#[test]
fn exposure_truth_matches_the_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    run(&small(13), dir.path());
    let exposure: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth/exposure.json")).unwrap())
            .unwrap();
    let parse = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let mut rows = Vec::new();
    for (name, bytes) in tree(dir.path()) {
        if name.starts_with("cdr/cdr_") {
            for line in std::str::from_utf8(&bytes).unwrap().lines().skip(1) {
                let c: Vec<&str> = line.split(',').collect();
                let table = match c[1] {
                    "moCallRecord" | "mtCallRecord" => "cdr.voice_cdr",
                    "moSMSRecord" | "mtSMSRecord" => "cdr.sms_cdr",
                    _ => "cdr.data_cdr",
                };
                rows.push((table, c[3].to_string(), parse(c[7])));
            }
        }
    }
    let queries = exposure["queries"].as_array().unwrap();
    assert!(queries.len() >= 4);
    for q in queries {
        let ids: BTreeSet<&str> = q["msisdns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let table = q["tables"][0].as_str().unwrap();
        let (from, executed) = (
            parse(q["from"].as_str().unwrap()),
            parse(q["executed"].as_str().unwrap()),
        );
        let n = rows
            .iter()
            .filter(|(t, m, s)| {
                *t == table && ids.contains(m.as_str()) && *s >= from && *s < executed
            })
            .count();
        assert!(n > 0);
        assert_eq!(q["rows"].as_u64().unwrap(), n as u64, "query {q}");
    }
    // Every target the campaign queried is exposed, and nobody else.
    let campaign: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth/campaign.json")).unwrap())
            .unwrap();
    let queried: BTreeSet<&str> = queries
        .iter()
        .flat_map(|q| q["msisdns"].as_array().unwrap())
        .map(|m| m.as_str().unwrap())
        .collect();
    let exposed: BTreeSet<&str> = exposure["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["msisdn"].as_str().unwrap())
        .collect();
    let targets: BTreeSet<&str> = campaign["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(queried, exposed);
    assert_eq!(exposed, targets);
}
