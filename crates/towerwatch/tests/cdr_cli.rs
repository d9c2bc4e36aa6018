//! `towerwatch cdr` end to end on a simulated operator: the exposure equals the ground truth,
//! no output holds a raw subscriber identifier unless `--reveal-key`, bad input is counted.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn towerwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(args)
        .env_remove("TOWERWATCH_PSEUDONYM_KEY")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = towerwatch(args);
    assert!(
        out.status.success(),
        "towerwatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The arguments of a reveal: a pseudonymised run with `key` into the same output first (what
/// a reveal is checked against), then the reveal itself with a reason.
fn revealing(mut args: Vec<String>, key: &Path) -> Vec<String> {
    let mut first = args.clone();
    first.extend(["--key-file".into(), key.display().to_string()]);
    ok(&first.iter().map(String::as_str).collect::<Vec<_>>());
    args.extend([
        "--reveal-key".into(),
        key.display().to_string(),
        "--reason".into(),
        "test: compare with the ground truth".into(),
    ]);
    args
}

fn cdr_args<'a>(sim: &'a str, out: &'a str) -> Vec<String> {
    vec![
        "cdr".into(),
        format!("{sim}/evidence/postgresql"),
        "--cdr".into(),
        format!("{sim}/cdr"),
        "--cells".into(),
        format!("{sim}/cdr/cell_sites.csv"),
        "--register".into(),
        format!("{sim}/context/rd_requests.csv"),
        "--assets".into(),
        format!("{sim}/context/assets.csv"),
        "--out".into(),
        out.into(),
    ]
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every MSISDN, IMSI and IMEI in the simulated CDR extract.
fn identifiers(sim: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for e in std::fs::read_dir(sim.join("cdr")).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_string_lossy().starts_with("cdr_") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines().skip(1) {
            for (i, v) in line.split(',').enumerate() {
                if matches!(i, 2..=6) && v.len() >= 12 {
                    ids.insert(v.to_string());
                }
            }
        }
    }
    ids
}

#[test]
fn exposure_on_the_default_simulation_equals_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let (s, out) = (
        sim.display().to_string(),
        dir.path().join("out").display().to_string(),
    );
    ok(&["simulate", "--seed", "7", "--out", &s]);
    let key = dir.path().join("key");
    std::fs::write(&key, "a key for revealing, 32 bytes ok").unwrap();
    let args = revealing(cdr_args(&s, &out), &key);
    let summary = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(summary.contains("0 rejected"), "{summary}");
    let truth = json(&sim.join("truth/exposure.json"));
    let ours = json(&Path::new(&out).join("exposure.json"));
    let want: Vec<&serde_json::Value> = truth["total"].as_array().unwrap().iter().collect();
    let named: Vec<&serde_json::Value> = ours["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["tier"] == "named")
        .collect();
    assert_eq!(named.len(), want.len(), "named subscribers");
    assert!(want.len() >= 10);
    for w in want {
        let m = w["msisdn"].as_str().unwrap();
        let o = named
            .iter()
            .find(|e| e["subscriber"] == m)
            .unwrap_or_else(|| panic!("{m} not in the exposure"));
        assert_eq!(o["records"], w["records"], "{m}");
        assert_eq!(
            &o["exposed_from"].as_str().unwrap()[..19],
            &w["first"].as_str().unwrap()[..19],
            "{m}"
        );
        assert_eq!(
            &o["exposed_to"].as_str().unwrap()[..19],
            &w["last"].as_str().unwrap()[..19],
            "{m}"
        );
        assert_eq!(
            o["cells"].as_array().unwrap().len(),
            w["cells"].as_array().unwrap().len(),
            "{m}"
        );
        assert!(o["cells"][0]["lon"].is_number());
    }
    // Lawful-disclosure lookups are authorised, not alarms and not exposure.
    assert!(
        summary.contains("authorised requests (not alarms, not in the exposure): "),
        "{summary}"
    );
    let register = std::fs::read_to_string(sim.join("context/rd_requests.csv")).unwrap();
    for case in register.lines().skip(1) {
        let id = case.split(',').nth(1).unwrap();
        assert!(
            !named.iter().any(|e| e["subscriber"] == id),
            "authorised {id} in the exposure"
        );
    }
    // The findings point at the theft statements; every finding is on a labelled line.
    let labels: BTreeSet<(String, u64)> = std::fs::read_to_string(sim.join("truth/labels.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|l| {
            (
                l["file"].as_str().unwrap().to_string(),
                l["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let detections = std::fs::read_to_string(Path::new(&out).join("cdr-detections.jsonl")).unwrap();
    assert!(detections.lines().count() >= 10);
    for d in detections
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    {
        let file = d["source"]
            .as_str()
            .unwrap()
            .strip_prefix(&format!("{s}/"))
            .unwrap()
            .to_string();
        assert!(
            labels.contains(&(file, d["line"].as_u64().unwrap())),
            "false alarm: {d}"
        );
    }
    let html = std::fs::read_to_string(Path::new(&out).join("exposure.html")).unwrap();
    assert!(html.contains("<svg id=\"cell-map\"") && html.contains("class=\"exposed\""));

    // Compressed evidence tells the same: the audit logs gzipped, the CDR extract and the
    // cell sites zstd-compressed (as rotated logs and exports often are).
    compress_all(&sim.join("evidence/postgresql"), "gz");
    compress_all(&sim.join("cdr"), "zst");
    let out2 = dir.path().join("out2").display().to_string();
    let mut args = cdr_args(&s, &out2);
    let cells = args.iter().position(|a| a == "--cells").unwrap() + 1;
    args[cells].push_str(".zst");
    let args = revealing(args, &key);
    let summary2 = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(summary2.contains("0 rejected"), "{summary2}");
    let ours2 = json(&Path::new(&out2).join("exposure.json"));
    // The same subscribers, records, times and cells; only the evidence files are named
    // differently (`.log.gz`).
    let without_evidence = |x: &serde_json::Value| -> Vec<serde_json::Value> {
        let mut subs = x["subscribers"].as_array().unwrap().clone();
        for s in &mut subs {
            s.as_object_mut().unwrap().remove("evidence");
        }
        subs
    };
    let (plain, packed) = (without_evidence(&ours), without_evidence(&ours2));
    assert!(plain.len() >= 10);
    if plain != packed {
        let diff: Vec<_> = plain
            .iter()
            .zip(&packed)
            .filter(|(a, b)| a != b)
            .take(2)
            .collect();
        panic!("compressed evidence gave another exposure: {diff:?}");
    }
    assert!(ours2.to_string().contains(".log.gz:"));
    let detections2 =
        std::fs::read_to_string(Path::new(&out2).join("cdr-detections.jsonl")).unwrap();
    assert_eq!(detections2.lines().count(), detections.lines().count());
}

/// Replaces every file under `dir` by its gzip (`gz`) or zstd (`zst`) compression.
fn compress_all(dir: &Path, kind: &str) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            compress_all(&p, kind);
            continue;
        }
        let plain = std::fs::read(&p).unwrap();
        let packed = if kind == "gz" {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, &plain).unwrap();
            enc.finish().unwrap()
        } else {
            zstd::stream::encode_all(&plain[..], 3).unwrap()
        };
        let mut name = p.file_name().unwrap().to_os_string();
        name.push(format!(".{kind}"));
        std::fs::write(p.with_file_name(name), packed).unwrap();
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn no_output_holds_a_raw_identifier_without_the_reveal_key() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let s = sim.display().to_string();
    ok(&[
        "simulate", "--days", "9", "--waves", "2", "--scale", "0.3", "--out", &s,
    ]);
    let ids = identifiers(&sim);
    assert!(ids.len() > 100);
    let scan = |out: &Path, stdout: &str| -> usize {
        let mut texts = vec![stdout.to_string()];
        for e in std::fs::read_dir(out).unwrap() {
            texts.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
        ids.iter()
            .filter(|id| texts.iter().any(|t| t.contains(id.as_str())))
            .count()
    };
    let hidden = dir.path().join("hidden");
    let stdout = ok(&cdr_args(&s, &hidden.display().to_string())
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(
        scan(&hidden, &stdout),
        0,
        "raw identifiers in pseudonymised outputs"
    );
    // The same with a key from the environment: pseudonyms are stable across runs.
    let keyed = |name: &str| {
        let out = dir.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
            .args(cdr_args(&s, &out.display().to_string()))
            .env(
                "TOWERWATCH_PSEUDONYM_KEY",
                "operator key of sufficient length",
            )
            .output()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(scan(&out, &String::from_utf8_lossy(&o.stdout)), 0);
        std::fs::read_to_string(out.join("exposure.csv")).unwrap()
    };
    assert_eq!(keyed("k1"), keyed("k2"));
    // With the reveal key the identifiers are there (so the scan above can fail).
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123").unwrap();
    let shown = dir.path().join("shown");
    let args = revealing(cdr_args(&s, &shown.display().to_string()), &key);
    let stdout = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(scan(&shown, &stdout) >= 5);
    // A key that is too short is refused.
    std::fs::write(&key, "short").unwrap();
    let out = towerwatch(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn malformed_lines_and_unparsable_sql_are_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("postgresql.log");
    std::fs::write(
        &log,
        "2019-03-06 18:55:00.300 UTC [4] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,cdr.voice_cdr,\"select * from cdr.voice_cdr where served_msisdn in ('999700000001')\",<none>,40\n\
this is not a log line\n\
\tnor this after it? no: a continuation of nothing is only after a record\n\
2019-03-06 18:55:01.300 UTC [4] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  AUDIT: SESSION,two,1,READ\n\
2019-03-06 18:55:02.300 UTC [4] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,cdr.voice_cdr,selct * frm cdr.voice_cdr,<none>,1\n",
    )
    .unwrap();
    let l = log.display().to_string();
    let out = ok(&["cdr", &l]);
    assert!(out.contains("(1 unparsable)"), "{out}");
    assert!(out.contains("3 rejected"), "{out}");
    assert!(
        out.contains(&format!("{l}:3: continuation line without a record")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{l}:2: line does not match the log_line_prefix")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{l}:4: pgaudit record with 4 fields")),
        "{out}"
    );
    assert!(out.contains(&format!("{l}:5: unparsable SQL")), "{out}");
    assert!(out.contains("Targeted CDR lookup"), "{out}");
    // Without a CDR extract the range asked for is reported: here all history up to the query.
    assert!(out.contains(" .. 2019-03-06T18:55:00.3Z"), "{out}");
    let strict = towerwatch(&["cdr", &l, "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr)
        .contains("--strict: 3 rejected lines, 1 unparsable statements"));
    let missing = towerwatch(&["cdr", "/no/such/log"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn oracle_and_sql_server_audit_exports_are_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let ora = dir.path().join("unified_audit.csv");
    std::fs::write(
        &ora,
        "EVENT_TIMESTAMP,DBUSERNAME,USERHOST,CLIENT_PROGRAM_NAME,AUTHENTICATION_TYPE,ACTION_NAME,OBJECT_SCHEMA,OBJECT_NAME,SQL_TEXT,SQL_BINDS,RETURN_CODE\n\
2019-03-06 18:55:00.300000,CDR_RO,jump01,sqlplus.exe,\"(TYPE=(DATABASE));(CLIENT ADDRESS=((ADDRESS=(PROTOCOL=tcp)(HOST=10.20.4.17)(PORT=51514))));\",SELECT,CDR,VOICE_CDR,\"select * from cdr.voice_cdr where served_msisdn = :1\", #1(12):999700000001,0\n",
    )
    .unwrap();
    let ms = dir.path().join("sqlaudit.csv");
    std::fs::write(
        &ms,
        "event_time,action_id,succeeded,server_principal_name,database_name,statement,client_ip,application_name\n\
2019-03-07 02:10:00.0000000,SL,1,NWM\\svc_sync,cdrdw,\"SELECT TOP 5000 * FROM cdr.voice_cdr WHERE served_msisdn IN ('999700000003', '999700000004')\",10.40.0.20,Microsoft SQL Server Management Studio\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let summary = ok(&[
        "cdr",
        &ora.display().to_string(),
        &ms.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert!(
        summary
            .contains("2 logs, 2 log records (2 audit, 0 rejected), 2 statements (0 unparsable)"),
        "{summary}"
    );
    assert!(
        summary.contains("3 subscribers named in stolen queries"),
        "{summary}"
    );
    let manifest = json(&out.join("cdr-detections.jsonl.manifest.json"));
    let formats: Vec<&str> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["oracle-unified-audit-csv", "mssql-audit-csv"]);
}
