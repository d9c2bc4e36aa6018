//! Evidence is written by the attacker, and users make mistakes: what reaches a terminal or a
//! spreadsheet cannot be shaped by the evidence, reveals prove their key and leave a record,
//! and nothing is dropped silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{text, towerwatch};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(args)
        .env_remove("TOWERWATCH_PSEUDONYM_KEY")
        .output()
        .unwrap()
}

fn simulate(dir: &Path) -> String {
    let d = dir.display().to_string();
    towerwatch(&[
        "simulate", "--days", "9", "--waves", "2", "--scale", "0.3", "--out", &d,
    ]);
    d
}

/// Reads a CSV back with a CSV parser: every row has the header's columns, and no cell is a
/// formula a spreadsheet would run.
fn check_csv(path: &Path, hostile: &str) -> usize {
    let mut r = csv::Reader::from_path(path).unwrap();
    let columns = r.headers().unwrap().len();
    let mut rows = 0;
    let mut saw_hostile = false;
    for rec in r.records() {
        let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(rec.len(), columns, "{}: {rec:?}", path.display());
        for cell in rec.iter() {
            let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            assert!(
                !risky || cell.trim().parse::<f64>().is_ok(),
                "{}: formula cell {cell:?}",
                path.display()
            );
            saw_hostile |= cell.contains(hostile);
        }
        rows += 1;
    }
    assert!(
        saw_hostile,
        "{}: the hostile value is not in it",
        path.display()
    );
    rows
}

const HOSTILE_HOST: &str =
    "=HYPERLINK(\\\"http://e.vil/\\\",\\\"x\\\")\\u001b[2J\\u001b]0;owned\\u0007";

/// A simulation whose web server calls itself a formula and whose shell commands clear the
/// screen and ring the bell.
fn hostile_simulation(dir: &Path) -> String {
    let d = simulate(dir);
    for f in ["WEB01.jsonl", "WEB02.jsonl"] {
        let p = PathBuf::from(&d).join("evidence/windows").join(f);
        let s = std::fs::read_to_string(&p).unwrap();
        let host = f.trim_end_matches(".jsonl");
        let s = s
            .replace(
                &format!("\"Computer\":\"{host}.nwm.example\""),
                &format!("\"Computer\":\"{HOSTILE_HOST}\""),
            )
            .replace(
                "&whoami&",
                "&whoami<img src=x onerror=alert(1)>\\u001b[2J\\u001b]0;owned\\u0007&",
            );
        std::fs::write(&p, s).unwrap();
    }
    d
}

#[test]
fn evidence_cannot_shape_the_terminal_or_a_spreadsheet() {
    let tmp = tempfile::tempdir().unwrap();
    let d = hostile_simulation(tmp.path());
    let report = tmp.path().join("report");
    let det = tmp.path().join("det.csv");
    let out = towerwatch(&[
        "hunt",
        &format!("{d}/evidence"),
        "--format",
        "csv",
        "-o",
        det.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--assets",
        &format!("{d}/context/assets.csv"),
    ]);
    // The summary went to stderr: no raw escape or bell from the evidence, shown instead.
    let summary = text(&out.stderr);
    assert!(
        !summary.contains('\u{1b}') && !summary.contains('\u{7}'),
        "{summary}"
    );
    assert!(summary.contains("\\u{1b}[2J"), "{summary}");
    // Every CSV we write, read back: same columns on every row, no formula cell.
    // (Host names are shortened and upper-cased in stories: the formula's start survives.)
    let hostile = "=HYPERLINK(";
    assert!(check_csv(&det, hostile) > 0);
    assert!(check_csv(&report.join("timeline.csv"), hostile) > 0);
    // The report page shows the command, escaped: no element the evidence made.
    let page = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(
        page.contains("whoami&lt;img src=x onerror=alert(1)&gt;"),
        "the command is not shown"
    );
    assert!(!page.contains("<img"));
}

/// A PostgreSQL log (Debian's prefix) whose client names itself with formulas.
fn hostile_db_log(dir: &Path) -> PathBuf {
    let log = dir.join("postgresql-2019-03-06.log");
    let mut s = String::new();
    s.push_str("2019-03-06 02:00:00.000 UTC [4242] [unknown]@[unknown] LOG:  connection received: host=10.9.9.9 port=50000\n");
    s.push_str("2019-03-06 02:00:00.010 UTC [4242] =2+5@cdrdw LOG:  connection authorized: user==2+5 database=cdrdw application_name=@SUM(1+1)*cmd|x\n");
    for (i, n) in ["999700000001", "999700000002", "999700000003"]
        .iter()
        .enumerate()
    {
        s.push_str(&format!(
            "2019-03-06 02:00:0{}.000 UTC [4242] =2+5@cdrdw LOG:  AUDIT: SESSION,{},1,READ,SELECT,TABLE,cdr.voice_cdr,\"select cell_id, start_time from cdr.voice_cdr where served_msisdn = '{n}' and start_time >= '2017-01-01'\",<none>\n",
            i + 1,
            i + 1
        ));
    }
    std::fs::write(&log, s).unwrap();
    log
}

#[test]
fn the_exposure_csv_holds_hostile_client_names_as_text_in_their_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let log = hostile_db_log(tmp.path());
    let out = tmp.path().join("out");
    towerwatch(&[
        "cdr",
        "-q",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(check_csv(&out.join("exposure.csv"), "@SUM(1+1)*cmd|x"), 3);
}

#[test]
fn a_reveal_needs_the_key_that_made_the_pseudonyms_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let log = hostile_db_log(tmp.path());
    let (key, other) = (tmp.path().join("key"), tmp.path().join("other"));
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
    std::fs::write(&other, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let out = tmp.path().join("out");
    let (l, o) = (log.to_str().unwrap(), out.to_str().unwrap());
    towerwatch(&[
        "cdr",
        "-q",
        l,
        "--key-file",
        key.to_str().unwrap(),
        "--out",
        o,
    ]);
    let pseudonymised = std::fs::read_to_string(out.join("exposure.csv")).unwrap();
    assert!(!pseudonymised.contains("999700000001"));
    // No reason: refused by the command line.
    let r = run(&["cdr", l, "--reveal-key", key.to_str().unwrap(), "--out", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    // Any other file of 16 bytes or more: refused, naming the output it was checked against.
    let r = run(&[
        "cdr",
        l,
        "--reveal-key",
        other.to_str().unwrap(),
        "--reason",
        "case 42",
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.contains("--reveal-key refused") && err.contains("exposure.json"),
        "{err}"
    );
    assert!(!out.join("reveals.jsonl").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("exposure.csv")).unwrap(),
        pseudonymised,
        "a refused reveal writes nothing"
    );
    // The right key: revealed, and on the record.
    let r = run(&[
        "cdr",
        l,
        "--reveal-key",
        key.to_str().unwrap(),
        "--reason",
        "case 42",
        "--out",
        o,
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stdout).contains("999700000001"));
    let log = std::fs::read_to_string(out.join("reveals.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(rec["reason"], "case 42");
    assert_eq!(rec["identifiers_revealed"], 3);
    assert!(rec["user"].as_str().is_some_and(|u| !u.is_empty()));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("cdr-detections.jsonl.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["reveal"]["reason"], "case 42");
}

#[test]
fn pseudonymised_rows_are_not_in_the_order_of_the_real_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let log = hostile_db_log(tmp.path());
    let key = tmp.path().join("key");
    let out = tmp.path().join("out");
    for k in [
        "a-key-of-sixteen-bytes-or-more-1",
        "a-key-of-sixteen-bytes-or-more-2",
    ] {
        std::fs::write(&key, k).unwrap();
        towerwatch(&[
            "cdr",
            "-q",
            log.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        // Equal exposure (no extract): the rows are in pseudonym order, whatever the numbers.
        let mut r = csv::Reader::from_path(out.join("exposure.csv")).unwrap();
        let shown: Vec<String> = r.records().map(|x| x.unwrap()[0].to_string()).collect();
        let mut sorted = shown.clone();
        sorted.sort();
        assert_eq!(shown, sorted);
    }
}

#[test]
fn nothing_is_dropped_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/sigma-regression/regression_data/rules/windows/process_creation");
    let samples = samples.to_str().unwrap();
    std::fs::write(
        t.join("broken.yml"),
        "title: x\nlogsource: {product: windows}\ndetection:\n  sel: {Image|bogus: a}\n  condition: sel\n",
    )
    .unwrap();
    let broken = t.join("broken.yml").display().to_string();
    // A refused rule is named with its reason; --strict fails on it.
    let r = run(&["hunt", samples, "--rules", &broken]);
    assert!(r.status.success());
    assert!(
        text(&r.stderr).contains("rule refused: ")
            && text(&r.stderr).contains("unknown modifier 'bogus'"),
        "{}",
        text(&r.stderr)
    );
    let r = run(&["hunt", samples, "--rules", &broken, "--strict"]);
    assert_eq!(r.status.code(), Some(1));
    // An unknown status is refused.
    let r = run(&["hunt", samples, "--status", "bogus"]);
    assert_eq!(r.status.code(), Some(2));
    // No input, or no event: said, and --strict fails.
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let r = run(&["hunt", e]);
    assert!(r.status.success() && text(&r.stderr).contains("no input files under"));
    assert_eq!(run(&["hunt", e, "--strict"]).status.code(), Some(1));
    let junk = t.join("random.bin");
    std::fs::write(
        &junk,
        (0..3000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let j = junk.to_str().unwrap();
    let r = run(&["hunt", j]);
    assert!(r.status.success() && text(&r.stderr).contains("no events were read"));
    let r = run(&["hunt", j, "--strict"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("random.bin"),
        "{}",
        text(&r.stderr)
    );
    // An unwritable report directory fails before any evidence is read.
    std::fs::write(t.join("a-file"), "").unwrap();
    let r = run(&[
        "hunt",
        t.join("no-such-evidence").to_str().unwrap(),
        "--report",
        t.join("a-file/report").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("a-file/report"),
        "{}",
        text(&r.stderr)
    );
    // cdr: a binary file among the logs is named and skipped, the rest read.
    let logs = t.join("logs");
    std::fs::create_dir(&logs).unwrap();
    hostile_db_log(&logs);
    std::fs::write(logs.join("blob.log"), [0xff, 0xfe, 0x00, 0x9c, 0x10, 0x80]).unwrap();
    let r = run(&["cdr", logs.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let s = text(&r.stdout);
    assert!(
        s.contains("blob.log") && s.contains("3 subscribers named"),
        "{s}"
    );
}

#[test]
fn demo_keeps_what_it_points_to() {
    let r = run(&["demo", "--days", "7", "--scale", "0.2", "--waves", "1"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    let dir = out
        .lines()
        .rev()
        .find_map(|l| l.split(" are in ").nth(1))
        .expect("the demo says where its results are");
    let dir = Path::new(dir.trim());
    assert!(
        dir.join("report/report.html").is_file(),
        "{}",
        dir.display()
    );
    assert!(dir.join("demo.json").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn one_subscriber_read_by_imsi_and_by_imei_is_one_person() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (msisdn, imsi, imei) = ("999700000042", "001010000000042", "490154203237518");
    let mut log = String::new();
    log.push_str("2019-03-06 02:00:00.000 UTC [7] user=x,db=cdrdw,app=psql,client=10.9.9.9 LOG:  connection received: host=10.9.9.9 port=5\n");
    for (i, (col, v)) in [("served_imsi", imsi), ("served_imei", imei)]
        .iter()
        .enumerate()
    {
        log.push_str(&format!(
            "2019-03-06 02:00:0{}.000 UTC [7] user=x,db=cdrdw,app=psql,client=10.9.9.9 LOG:  AUDIT: SESSION,{},1,READ,SELECT,TABLE,cdr.voice_cdr,\"select cell_id, start_time from cdr.voice_cdr where {col} = '{v}' and start_time >= '2017-01-01'\",<none>\n",
            i + 1,
            i + 1
        ));
    }
    std::fs::write(t.join("postgresql-2019-03-06.log"), log).unwrap();
    let cdr = t.join("cdr");
    std::fs::create_dir(&cdr).unwrap();
    let mut extract = String::from(
        "record_id,record_type,served_imsi,served_msisdn,served_imei,calling_number,called_number,start_time,lac_tac,cell_id\n",
    );
    for d in 1..=5 {
        extract.push_str(&format!(
            "{d},moCallRecord,{imsi},{msisdn},{imei},{msisdn},99970000009{d},2019-02-0{d}T10:00:00Z,100,{d}\n"
        ));
    }
    std::fs::write(cdr.join("voice_cdr.csv"), extract).unwrap();
    let out = t.join("out");
    towerwatch(&[
        "cdr",
        "-q",
        t.join("postgresql-2019-03-06.log").to_str().unwrap(),
        "--cdr",
        cdr.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let x: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("exposure.json")).unwrap()).unwrap();
    let named: Vec<&serde_json::Value> = x["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["tier"] == "named")
        .collect();
    assert_eq!(named.len(), 1, "{x}");
    assert_eq!(named[0]["identifier_type"], "msisdn");
    assert_eq!(named[0]["records"], 5);
    let by: Vec<&str> = named[0]["reached_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        by.len() == 2
            && by.iter().any(|v| v.starts_with("I-"))
            && by.iter().any(|v| v.starts_with("E-")),
        "{by:?}"
    );
}

#[test]
fn an_interrupted_hunt_leaves_whole_lines_and_says_it_is_incomplete() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("det.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args([
            "hunt",
            "-",
            "--format",
            "jsonl",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = |i: u32| {
        format!(
            "{{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Computer\":\"WEB01\",\"TimeCreated\":\"2019-03-05T14:{:02}:{:02}Z\",\"Image\":\"C:\\\\Windows\\\\System32\\\\whoami.exe\",\"CommandLine\":\"whoami /all\",\"ParentImage\":\"C:\\\\Windows\\\\System32\\\\inetsrv\\\\w3wp.exe\",\"User\":\"IIS APPPOOL\\\\portal\"}}\n",
            i / 60 % 60,
            i % 60
        )
    };
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..2000 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    // Until the run is reading (its output exists under its partial name), then the signal.
    let partial = tmp.path().join("det.jsonl.partial");
    for _ in 0..200 {
        if partial.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    for i in 2000..2010 {
        let _ = stdin.write_all(line(i).as_bytes());
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'));
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("a whole JSON line");
    }
    assert!(text.lines().count() > 0);
    assert!(!partial.exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("det.jsonl.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["complete"], false);
    assert!(manifest["interrupted"].is_string());
}

/// Temporary files (where stories, statements and detections wait) that cannot be written
/// fail the run before the work, naming where they were to go.
#[test]
fn an_unwritable_temporary_directory_is_named_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("e.jsonl");
    std::fs::write(&evidence, "{\"EventID\": 1}\n").unwrap();
    let missing = dir.path().join("no-such-dir");
    for command in [
        vec!["hunt", evidence.to_str().unwrap()],
        vec!["cdr", evidence.to_str().unwrap()],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_towerwatch"))
            .args(&command)
            .env("TMPDIR", &missing)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("temporary file") && err.contains("no-such-dir"),
            "{command:?}: {err}"
        );
    }
}
