//! The linker that keeps memory bounded (events spilled to disk, only stories with detections
//! built) against the plain in-memory linker, on the same inputs: the same operations, waves,
//! leads, statistics and detections, on two simulated operators and on real attack EVTX.

mod common;

use std::path::Path;

use common::{files_under, towerwatch};
use towerwatch_sim::{Config, Profile};

/// `hunt` with a fixed key, so pseudonyms compare: (operations.json, detections).
fn hunt(evidence: &Path, extra: &[&str], linker: &[&str]) -> (serde_json::Value, String) {
    let out = tempfile::tempdir().unwrap();
    let key = out.path().join("key");
    std::fs::write(&key, "a fixed key of sixteen bytes or more").unwrap();
    let report = out.path().join("report");
    let detections = out.path().join("d.jsonl");
    let mut args = vec![
        "hunt",
        evidence.to_str().unwrap(),
        "-q",
        "--key-file",
        key.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "-o",
        detections.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(linker);
    towerwatch(&args);
    (
        common::json(&report.join("operations.json")),
        std::fs::read_to_string(&detections).unwrap(),
    )
}

fn same_both_ways(evidence: &Path, extra: &[&str]) -> serde_json::Value {
    let (bounded, detections) = hunt(evidence, extra, &[]);
    let (plain, plain_detections) = hunt(evidence, extra, &["--in-memory-linker"]);
    assert_eq!(
        bounded,
        plain,
        "operations differ on {}",
        evidence.display()
    );
    assert!(
        detections == plain_detections,
        "detections differ on {}",
        evidence.display()
    );
    bounded
}

#[test]
fn simulated_operators_link_the_same_as_in_memory() {
    for (profile, seed) in [("nwm", 3), ("kestrel", 5)] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            profile: Profile::named(profile).unwrap(),
            seed,
            days: 21,
            ..Config::default()
        };
        towerwatch_sim::simulate(&cfg, dir.path()).unwrap();
        let assets = dir.path().join("context/assets.csv");
        let cdr = dir.path().join("cdr");
        let ops = same_both_ways(
            &dir.path().join("evidence"),
            &[
                "--assets",
                assets.to_str().unwrap(),
                "--cdr",
                cdr.to_str().unwrap(),
            ],
        );
        // Far more events than one correlator holds in memory: the bounded path spilled.
        let linked = ops["stats"]["events_linked"].as_u64().unwrap();
        assert!(
            linked > 4 * towerwatch_correlate::NODES_IN_MEMORY as u64,
            "{linked}"
        );
        assert!(!ops["operations"].as_array().unwrap().is_empty());
        assert!(
            ops["operations"].as_array().unwrap().len() >= ops["waves"].as_array().unwrap().len()
        );
    }
}

#[test]
fn attack_evtx_links_the_same_as_in_memory() {
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sigma-regression/regression_data");
    assert!(files_under(&data).len() > 100);
    let ops = same_both_ways(&data, &[]);
    assert!(ops["stats"]["events_linked"].as_u64().unwrap() > 0);
}

/// Peak memory of a hunt of `evidence` (with stories, or without), from its manifest.
fn peak_rss(evidence: &Path, stories: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.jsonl");
    let report = dir.path().join("report");
    let mut args = vec![
        "hunt",
        evidence.to_str().unwrap(),
        "-q",
        "--threads",
        "2",
        "-o",
        out.to_str().unwrap(),
    ];
    if stories {
        args.extend(["--report", report.to_str().unwrap()]);
    } else {
        args.push("--no-operations");
    }
    towerwatch(&args);
    let manifest = common::json(&dir.path().join("d.jsonl.manifest.json"));
    manifest["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS in the manifest")
}

/// Four times the evidence: what building stories adds to memory does not grow with it (the
/// in-memory linker took about half a KiB per event, some 230 MiB more here). The hunt
/// without stories is the baseline: what it grows by (the estate's routine, learnt per day)
/// is not the linker's.
#[test]
fn memory_for_stories_does_not_grow_with_the_evidence() {
    const MIB: u64 = 1 << 20;
    let mut cost = Vec::new();
    for days in [28, 112] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            days,
            ..Config::default()
        };
        towerwatch_sim::simulate(&cfg, dir.path()).unwrap();
        let evidence = dir.path().join("evidence");
        let (with, without) = (peak_rss(&evidence, true), peak_rss(&evidence, false));
        eprintln!(
            "{days} days: {} MiB with stories, {} MiB without",
            with / MIB,
            without / MIB
        );
        cost.push(with.saturating_sub(without));
    }
    assert!(
        cost[1] < cost[0] + 32 * MIB,
        "stories cost {} MiB on 28 days, {} MiB on 112",
        cost[0] / MIB,
        cost[1] / MIB
    );
}
