//! The CLI contract, end to end, on the vendored SigmaHQ samples and generated bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn samples(sub: &str) -> PathBuf {
    repo()
        .join("tests/sigma-regression/regression_data/rules/windows")
        .join(sub)
}

fn towerwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON Lines a successful run printed.
fn jsonl(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn first_evtx(dir: &Path) -> PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "evtx") {
                return p;
            }
        }
    }
    panic!("no evtx under {}", dir.display());
}

#[test]
fn jsonl_detections_carry_the_contract_fields() {
    let out = towerwatch(&[
        "hunt",
        samples("builtin").to_str().unwrap(),
        "--format",
        "jsonl",
        "--quiet",
    ]);
    let lines = jsonl(&out);
    assert!(lines.len() >= 5, "expected detections, got {}", lines.len());
    for d in &lines {
        for key in [
            "timestamp",
            "rule_id",
            "rule_title",
            "level",
            "tags",
            "computer",
            "channel",
            "event_id",
            "source",
            "record_id",
            "event",
        ] {
            assert!(
                d.get(key).is_some_and(|v| !v.is_null()),
                "missing {key} in {d}"
            );
        }
        let ts = d["timestamp"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.parse::<jiff::Timestamp>().is_ok(),
            "not RFC 3339 UTC: {ts}"
        );
        assert!(Path::new(d["source"].as_str().unwrap()).exists());
        assert_eq!(d["event"]["EventRecordID"], d["record_id"]);
    }
}

#[test]
fn csv_and_table_outputs() {
    let dir = samples("process_creation");
    let out = towerwatch(&["hunt", dir.to_str().unwrap(), "--format", "csv", "-q"]);
    assert!(out.status.success());
    let csv = text(&out.stdout);
    let mut rows = csv.lines();
    assert!(rows.next().unwrap().starts_with(
        "timestamp,level,rule_title,rule_id,computer,channel,event_id,source,record_id"
    ));
    let n = rows.count();
    assert!(n >= 100, "{n} CSV rows");

    let out = towerwatch(&["hunt", dir.to_str().unwrap()]);
    let table = text(&out.stdout);
    assert!(
        table.contains("Detections:")
            && table.contains("highest level")
            && table.contains("time span (UTC)"),
        "{table}"
    );
    // Every input file is listed with its format and counts.
    assert!(table.lines().filter(|l| l.contains(" evtx ")).count() >= 100);
}

#[test]
fn output_file_gets_a_manifest_with_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("det.jsonl");
    let evtx = first_evtx(&samples("process_creation"));
    let out = towerwatch(&[
        "hunt",
        evtx.to_str().unwrap(),
        "--format",
        "jsonl",
        "-q",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("det.jsonl.manifest.json")).unwrap())
            .unwrap();
    let input = &manifest["inputs"][0];
    let bytes = std::fs::read(&evtx).unwrap();
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(input["sha256"], want.as_str());
    assert_eq!(input["bytes"], bytes.len() as u64);
    assert_eq!(input["format"], "evtx");
    assert_eq!(manifest["rules"]["origin"], "embedded");
    assert_eq!(manifest["rules"]["sha256"].as_str().unwrap().len(), 64);
    let detections = std::fs::read_to_string(&out_file).unwrap().lines().count() as u64;
    assert_eq!(manifest["detections"], detections);
}

#[test]
fn bad_input_is_reported_counted_and_the_rest_processed() {
    let tmp = tempfile::tempdir().unwrap();
    let good = first_evtx(&samples("process_creation"));
    let bytes = std::fs::read(&good).unwrap();
    // Truncated EVTX: the header and part of the first chunk.
    std::fs::write(tmp.path().join("a-truncated.evtx"), &bytes[..4096 + 700]).unwrap();
    // Corrupt EVTX: garbage over the first chunk's records.
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[4096 + 512..4096 + 2048] {
        *b = 0xA5;
    }
    std::fs::write(tmp.path().join("b-corrupt.evtx"), &corrupt).unwrap();
    std::fs::write(tmp.path().join("c-notes.txt"), "not a log\n").unwrap();
    std::fs::write(
        tmp.path().join("d-events.jsonl"),
        "{\"EventID\": 1, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Image\": \"C:\\\\x\\\\whoami.exe\"}\n{broken json\n[1,2]\n\n{\"EventID\": 4688, \"Channel\": \"Security\", \"NewProcessName\": \"C:\\\\Windows\\\\System32\\\\whoami.exe\", \"CommandLine\": \"whoami /all\"}\n",
    )
    .unwrap();
    std::fs::copy(&good, tmp.path().join("e-good.evtx")).unwrap();

    let out = towerwatch(&["hunt", tmp.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "lenient run must complete: {}",
        text(&out.stderr)
    );
    let summary = text(&out.stdout);
    assert!(
        summary.contains("d-events.jsonl:2: invalid JSON"),
        "{summary}"
    );
    assert!(
        summary.contains("d-events.jsonl:3: expected a JSON object"),
        "{summary}"
    );
    assert!(
        summary.contains("c-notes.txt: not a log format"),
        "{summary}"
    );
    assert!(
        summary.contains("a-truncated.evtx offset 4096: truncated EVTX"),
        "{summary}"
    );
    // The good file and the good JSON lines were processed.
    let row = |name: &str| {
        summary
            .lines()
            .find(|l| l.contains(name) && (l.contains(" evtx ") || l.contains(" jsonl ")))
            .unwrap_or_else(|| panic!("no row for {name}: {summary}"))
            .to_string()
    };
    let cols = |l: String| {
        l.split_whitespace()
            .skip(2)
            .take(2)
            .map(|c| c.parse::<u64>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(cols(row("e-good.evtx")), vec![1, 0]);
    assert_eq!(cols(row("d-events.jsonl")), vec![2, 2]);
    assert!(
        cols(row("b-corrupt.evtx"))[1] >= 1,
        "corrupt chunk not counted: {summary}"
    );

    let strict = towerwatch(&[
        "hunt",
        tmp.path().join("d-events.jsonl").to_str().unwrap(),
        "--strict",
        "-q",
    ]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        text(&strict.stderr).contains("d-events.jsonl"),
        "{}",
        text(&strict.stderr)
    );
}

#[test]
fn gzip_zstd_stdin_and_json_documents_are_read_by_content() {
    let evtx = first_evtx(&samples("process_creation"));
    let json = evtx.with_extension("json");
    let tmp = tempfile::tempdir().unwrap();
    // A gzipped EVTX with a misleading name.
    let gz = tmp.path().join("evidence.bin");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&evtx).unwrap()).unwrap();
    enc.finish().unwrap();
    let zst = tmp.path().join("evidence.dat");
    let packed = zstd::stream::encode_all(&std::fs::read(&evtx).unwrap()[..], 3).unwrap();
    std::fs::write(&zst, packed).unwrap();

    let hunt = |path: &str| {
        let o = towerwatch(&["hunt", path, "--format", "jsonl", "-q"]);
        jsonl(&o)
            .into_iter()
            .map(|d| d["rule_id"].clone())
            .collect::<Vec<_>>()
    };
    let plain = hunt(evtx.to_str().unwrap());
    assert!(!plain.is_empty());
    assert_eq!(hunt(gz.to_str().unwrap()), plain);
    assert_eq!(hunt(zst.to_str().unwrap()), plain);
    assert_eq!(hunt(json.to_str().unwrap()), plain);

    let mut child = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(["hunt", "-", "--format", "jsonl", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&evtx).unwrap())
        .unwrap();
    let from_stdin = jsonl(&child.wait_with_output().unwrap());
    assert_eq!(from_stdin.len(), plain.len());
    assert_eq!(from_stdin[0]["source"], "-");
}

#[test]
fn rules_check_lists_refusals_with_reasons() {
    let out = towerwatch(&["rules", "check"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(
        s.contains("unsupported: no log source mapping for category 'file_access'"),
        "{s}"
    );
    let pct: f64 = s
        .split("loaded, ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pct >= 99.0, "{pct}% of embedded rules loaded");

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.yml"), "title: x\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 1}\n  condition: sel and missing\n").unwrap();
    std::fs::write(tmp.path().join("broken.yml"), "title: [unclosed\n").unwrap();
    std::fs::write(tmp.path().join("good.yml"), "title: ok\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 1102}\n  condition: sel\n").unwrap();
    let out = towerwatch(&["rules", "check", tmp.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "invalid rules must fail the check"
    );
    let s = text(&out.stdout);
    assert!(
        s.contains("bad.yml:5:22: invalid: condition 'sel and missing'"),
        "{s}"
    );
    assert!(s.contains("broken.yml:2:1: invalid: YAML"), "{s}");
    assert!(s.contains("3 (1 loaded"), "{s}");
}

#[test]
fn rules_flags_replace_and_filter_the_embedded_set() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("any-sysmon.yml"), "title: Any Sysmon process\nid: 11111111-1111-1111-1111-111111111111\nlevel: low\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel: {Image|contains: '\\'}\n  condition: sel\n").unwrap();
    let dir = samples("process_creation");
    let all = towerwatch(&[
        "hunt",
        dir.to_str().unwrap(),
        "--rules",
        tmp.path().to_str().unwrap(),
        "--format",
        "jsonl",
        "-q",
    ]);
    let ids: std::collections::BTreeSet<String> = jsonl(&all)
        .iter()
        .map(|d| d["rule_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        ["11111111-1111-1111-1111-111111111111"]
    );
    let high = towerwatch(&[
        "hunt",
        dir.to_str().unwrap(),
        "--rules",
        tmp.path().to_str().unwrap(),
        "--min-level",
        "high",
        "--format",
        "jsonl",
        "-q",
    ]);
    assert!(high.status.success() && high.stdout.is_empty());
}

#[test]
fn coverage_names_rules_that_cannot_fire() {
    let evtx = first_evtx(&samples("process_creation"));
    let out = towerwatch(&["hunt", evtx.to_str().unwrap(), "--coverage"]);
    let s = text(&out.stdout);
    assert!(s.contains("Coverage: "), "{s}");
    assert!(s.contains("no events of its log source:"), "{s}");
    assert!(s.contains("Refused rules: 8"), "{s}");
}

#[test]
fn dump_prints_normalized_events() {
    let evtx = first_evtx(&samples("process_creation"));
    let out = towerwatch(&["dump", evtx.to_str().unwrap(), "-q"]);
    assert!(out.status.success());
    let ev: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(ev["channel"], "Microsoft-Windows-Sysmon/Operational");
    assert_eq!(ev["event_id"], 1);
    assert!(ev["fields"]["Image"].is_string() && ev["record_id"].is_u64());
}

#[test]
fn damaged_evtx_files_never_stop_the_run() {
    // Thirty copies of a real EVTX file with bytes overwritten at pseudo-random places (a
    // fixed-seed generator, so a failure is repeatable): every one is read or reported, the
    // run completes, nothing panics out of it.
    let good = std::fs::read(first_evtx(&samples("process_creation"))).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut state: u64 = 0x5eed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for i in 0..30 {
        let mut bytes = good.clone();
        for _ in 0..(1 + i * 3) {
            let at = next() % bytes.len();
            bytes[at] = next() as u8;
        }
        std::fs::write(tmp.path().join(format!("m{i:02}.evtx")), bytes).unwrap();
    }
    let out = towerwatch(&["hunt", tmp.path().to_str().unwrap(), "--format", "jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(
        summary.starts_with("towerwatch hunt: 30 inputs"),
        "{summary}"
    );
    // The damage is seen and counted, with a position.
    assert!(summary.contains("Rejected records"), "{summary}");
    // Every input has its row (read, or failed with a reason).
    for i in 0..30 {
        assert!(
            summary.contains(&format!("m{i:02}.evtx")),
            "m{i:02}.evtx missing from: {summary}"
        );
    }
}

#[test]
fn arbitrary_lines_are_events_or_rejections() {
    // Every non-empty line of a JSON Lines file is either an event or a counted rejection.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mixed.jsonl");
    let mut lines = Vec::new();
    let mut state: u64 = 7;
    for i in 0..500 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        let line = match state >> 61 {
            0 => format!("{{\"EventID\": {i}, \"Channel\": \"Security\"}}"),
            1 => format!("{{\"Event\": {{\"System\": {{\"EventID\": {i}}}}}}}"),
            2 => "{\"unterminated\": ".to_string(),
            3 => "[1, 2, 3]".to_string(),
            4 => "\u{feff}not json at all \u{fffd}".to_string(),
            5 => "null".to_string(),
            6 => format!("{{\"winlog\": {{\"event_id\": \"{i}\", \"event_data\": {{\"a\": [1, {{\"b\": null}}]}}}}}}"),
            _ => "{\"deep\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}".to_string(),
        };
        lines.push(line);
    }
    // The first line must look like JSON Lines for the format to be recognised.
    lines.insert(0, "{\"EventID\": 1}".to_string());
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = towerwatch(&["dump", path.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = text(&out.stdout).lines().count();
    let summary = towerwatch(&["dump", path.to_str().unwrap(), "--format", "none"]);
    let s = text(&summary.stderr);
    let rejected: usize = s
        .split(" events (")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(events + rejected, lines.len(), "{s}");
    assert!(rejected > 0 && events > 0);
}

#[test]
fn placeholders_feed_expand() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("shells.yml"),
        "title: Admin shell\nid: 22222222-2222-2222-2222-222222222222\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    Image|expand|endswith: '%shells%'\n  condition: sel\n",
    )
    .unwrap();
    let placeholders = tmp.path().join("placeholders.yml");
    std::fs::write(&placeholders, "shells: ['\\cmd.exe', '\\pwsh.exe']\n").unwrap();
    let events = tmp.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"EventID\": 1, \"Channel\": \"Microsoft-Windows-Sysmon/Operational\", \"Image\": \"C:\\\\Windows\\\\System32\\\\CMD.EXE\"}\n",
    )
    .unwrap();
    let (r, e, p) = (
        rules.to_str().unwrap(),
        events.to_str().unwrap(),
        placeholders.to_str().unwrap(),
    );

    let without = towerwatch(&["hunt", e, "--rules", r, "--format", "jsonl"]);
    assert!(without.status.success());
    assert!(without.stdout.is_empty());
    assert!(
        text(&without.stderr).contains("0 rules (1 refused"),
        "{}",
        text(&without.stderr)
    );

    let with = towerwatch(&[
        "hunt",
        e,
        "--rules",
        r,
        "--placeholders",
        p,
        "--format",
        "jsonl",
        "-q",
    ]);
    assert!(with.status.success(), "{}", text(&with.stderr));
    assert_eq!(text(&with.stdout).lines().count(), 1);

    let check = towerwatch(&["rules", "check", r]);
    assert!(
        text(&check.stdout).contains("placeholder %shells% has no values"),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn strict_skips_non_logs_in_every_command() {
    // A README beside the evidence is not a bad record: --strict goes on in hunt and in both
    // dump modes, and still stops at a broken line.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        first_evtx(&samples("process_creation")),
        tmp.path().join("a.evtx"),
    )
    .unwrap();
    std::fs::write(tmp.path().join("README.md"), "notes\n").unwrap();
    let dir = tmp.path().to_str().unwrap();
    for args in [
        vec!["hunt", dir],
        vec!["dump", dir],
        vec!["dump", dir, "--format", "none"],
    ] {
        let mut args = args.clone();
        args.extend(["--strict", "-q"]);
        let out = towerwatch(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    std::fs::write(tmp.path().join("b.jsonl"), "{\"EventID\": 1}\n{broken\n").unwrap();
    let out = towerwatch(&["dump", dir, "--format", "none", "--strict", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("b.jsonl"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inputs_with_more_detections_than_memory_holds_are_written_whole_and_in_order() {
    // More matches per input than the hunt keeps in memory while an input waits for its turn
    // (4,096: the rest wait in a temporary file), in two inputs read in parallel.
    let tmp = tempfile::tempdir().unwrap();
    let per_file = 3 * 4096 + 5;
    for name in ["a.jsonl", "b.jsonl"] {
        let mut text = String::new();
        for i in 0..per_file {
            text.push_str(&format!(
                "{{\"EventID\":1102,\"Channel\":\"Security\",\"Provider_Name\":\"Microsoft-Windows-Eventlog\",\"Computer\":\"DC01\",\"EventRecordID\":{},\"TimeCreated\":\"2026-01-01T00:00:00Z\",\"SubjectUserName\":\"user-{name}-{i}\"}}\n",
                i + 1
            ));
        }
        std::fs::write(tmp.path().join(name), text).unwrap();
    }
    let o = towerwatch(&[
        "hunt",
        tmp.path().to_str().unwrap(),
        "--format",
        "jsonl",
        "-q",
        "--no-operations",
    ]);
    let got = jsonl(&o);
    assert_eq!(got.len(), 2 * per_file);
    for (k, d) in got.iter().enumerate() {
        let (name, i) = if k < per_file {
            ("a.jsonl", k)
        } else {
            ("b.jsonl", k - per_file)
        };
        assert!(d["source"].as_str().unwrap().ends_with(name), "{d}");
        assert_eq!(d["line"], i as u64 + 1, "{d}");
        assert_eq!(d["event"]["SubjectUserName"], format!("user-{name}-{i}"));
    }
}
