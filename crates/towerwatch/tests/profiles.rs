//! The whole pipeline on every simulated operator, with no configuration beyond the asset
//! inventory and the register: the exposure exact, the lawful request quiet, each wave one
//! truthful operation holding its CDR theft, benign twins below medium. And a warehouse whose
//! tables and columns are renamed, logging with Debian's `log_line_prefix`, exposes exactly
//! what the original does.

use std::path::Path;

mod common;
use common::{files_under, towerwatch};

use towerwatch_sim::profile::PrefixStyle;
use towerwatch_sim::{Config, Profile};

/// `demo --profile NAME` (28 days, three waves), and what it measured (`demo.json`).
fn demo(profile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    towerwatch(&["demo", "--profile", profile, "--out", &d]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("demo.json")).unwrap()).unwrap();
    let ctx = format!("{profile}: {}", serde_json::to_string_pretty(&m).unwrap());
    // Exposure: every target and only the targets, records and time ranges exact, in the
    // hunt's report as in `towerwatch cdr` (the lawful requests are not in it).
    for which in ["exposure_hunt", "exposure_cdr"] {
        let x = &m[which];
        let targets = x["targets"].as_u64().unwrap();
        assert!(targets > 0, "{ctx}");
        for k in ["found", "named", "exact"] {
            assert_eq!(x[k].as_u64().unwrap(), targets, "{which}.{k}: {ctx}");
        }
    }
    // The lawful request is not alarmed; at most one benign-twin category alerts.
    let lawful = &m["twins"]["lawful-disclosure"];
    assert!(lawful[0].as_u64().unwrap() > 0, "{ctx}");
    assert_eq!(lawful[1].as_u64().unwrap(), 0, "{ctx}");
    assert!(m["twins_alerting"].as_array().unwrap().len() <= 1, "{ctx}");
    // Each wave: one operation holding at least 80% of its labelled records and of its CDR
    // theft in the database log, starting within the hour of the wave's first record at its
    // entry, with at most 5% benign events.
    let waves = m["operations"]["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 3, "{ctx}");
    for w in waves {
        let n = w["wave"].as_u64().unwrap();
        assert!(w["best_share"].as_f64().unwrap() >= 0.8, "wave {n}: {ctx}");
        assert!(w["db_events"].as_u64().unwrap() > 0, "wave {n}: {ctx}");
        assert!(w["db_share"].as_f64().unwrap() >= 0.8, "wave {n}: {ctx}");
        assert_eq!(w["root_is_entry"], true, "wave {n}: {ctx}");
        assert!(
            w["start_minutes"].as_i64().unwrap().abs() <= 60,
            "wave {n}: {ctx}"
        );
        assert!(
            w["benign_share"].as_f64().unwrap() <= 0.05,
            "wave {n}: {ctx}"
        );
    }
    let bests: std::collections::BTreeSet<&str> =
        waves.iter().filter_map(|w| w["best"].as_str()).collect();
    assert_eq!(bests.len(), 3, "one operation per wave: {ctx}");
}

#[test]
fn nwm_whole_pipeline() {
    demo("nwm");
}

#[test]
fn kestrel_whole_pipeline() {
    demo("kestrel");
}

#[test]
fn andes_whole_pipeline() {
    demo("andes");
}

/// The exposure rows of `towerwatch cdr` on a simulation, under a fixed key: subscriber,
/// tier, records, cells, exposed and read ranges; and its summary.
fn exposure(sim: &Path, key: &Path) -> (Vec<String>, String) {
    let out = sim.join("cdr-out");
    let run = towerwatch(&[
        "cdr",
        &sim.join("evidence").display().to_string(),
        "--cdr",
        &sim.join("cdr").display().to_string(),
        "--register",
        &sim.join("context/rd_requests.csv").display().to_string(),
        "--key-file",
        &key.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let text = std::fs::read_to_string(out.join("exposure.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (0..9).map(|i| &r[i]).collect::<Vec<_>>().join(",")
        })
        .collect();
    (rows, String::from_utf8_lossy(&run.stdout).into_owned())
}

#[test]
fn renamed_tables_and_columns_with_debians_prefix_expose_the_same() {
    let base = Profile::named("nwm").unwrap();
    let mut renamed: Profile = *base;
    renamed.db.prefix = PrefixStyle::Debian;
    renamed.db.schema.voice = "dwh.gsm_calls";
    renamed.db.schema.sms = "dwh.short_messages";
    renamed.db.schema.data = "dwh.pdp_sessions";
    renamed.db.schema.columns = [
        "cdr_seq",
        "rec_kind",
        "imsi_a",
        "msisdn_a",
        "imei_a",
        "orig_number",
        "term_number",
        "seizure_ts",
        "answer_ts",
        "release_ts",
        "holding_time",
        "mcc",
        "mnc",
        "location_area",
        "ci",
        "rat",
        "msc_id",
        "release_cause",
        "part_no",
        "bytes_up",
        "bytes_down",
        "access_point",
    ];
    assert_ne!(base.db.prefix, renamed.db.prefix);
    let renamed: &'static Profile = Box::leak(Box::new(renamed));
    let run = |profile: &'static Profile| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            profile,
            days: 14,
            waves: 2,
            scale: 0.5,
            ..Config::default()
        };
        towerwatch_sim::simulate(&cfg, dir.path()).unwrap();
        dir
    };
    let (a, b) = (run(base), run(renamed));
    // The renaming reached the evidence.
    let log = |d: &Path| {
        let mut all = String::new();
        for f in files_under(&d.join("evidence")) {
            if f.extension().is_some_and(|e| e == "log") {
                all.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
            }
        }
        all
    };
    let (la, lb) = (log(a.path()), log(b.path()));
    assert!(la.contains("cdr.voice_cdr") && !lb.contains("cdr.voice_cdr"));
    assert!(lb.contains("dwh.gsm_calls") && lb.contains("msisdn_a"));
    assert!(la.contains("] user=") && !lb.contains("] user="));
    let key = a.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
    let ((xa, sa), (xb, sb)) = (exposure(a.path(), &key), exposure(b.path(), &key));
    assert!(xa.len() >= 4, "{sa}");
    // Debian's prefix: detected, and no line of its logs rejected.
    assert!(
        sb.contains("log_line_prefix '%m [%p] %q%u@%d ' (detected: debian/ubuntu)"),
        "{sb}"
    );
    assert!(sb.contains(" 0 rejected)"), "{sb}");
    assert!(
        xa == xb,
        "original:\n{sa}\n{}\n\nrenamed:\n{sb}\n{}",
        xa.iter().take(14).cloned().collect::<Vec<_>>().join("\n"),
        xb.iter().take(14).cloned().collect::<Vec<_>>().join("\n")
    );
}
