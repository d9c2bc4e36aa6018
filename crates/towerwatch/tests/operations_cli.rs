//! Operations end to end: a simulated campaign hunted with `--report`, scored against its
//! ground truth; and the HTML report of the real attack corpus opened in headless Chromium.

use std::process::Command;

mod common;
use common::{json, text, towerwatch};

#[test]
fn each_simulated_wave_is_one_operation_attributed_to_gallium() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let report = tmp.path().join("report");
    let detections = tmp.path().join("detections.jsonl");
    towerwatch(&["simulate", "--seed", "11", "--out", sim.to_str().unwrap()]);
    let out = towerwatch(&[
        "hunt",
        sim.join("evidence").to_str().unwrap(),
        "--assets",
        sim.join("context/assets.csv").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--format",
        "jsonl",
        "-o",
        detections.to_str().unwrap(),
    ]);
    // With detections written to a file, the summary is on stderr.
    let summary = text(&out.stderr);
    // The summary leads with operations, before the rule hits.
    let ops_at = summary
        .find("Operations: ")
        .expect("operations in the summary");
    let rules_at = summary
        .find("Detections: ")
        .expect("rule hits in the summary");
    assert!(ops_at < rules_at, "{summary}");

    let eval = towerwatch(&[
        "eval",
        "--truth",
        sim.to_str().unwrap(),
        "--operations",
        report.join("operations.json").to_str().unwrap(),
        detections.to_str().unwrap(),
    ]);
    let table = text(&eval.stdout);
    assert!(
        table.contains("Operations against the ground truth"),
        "{table}"
    );

    // The same figures, from the files themselves.
    let analysis = json(&report.join("operations.json"));
    let ops = analysis["operations"].as_array().unwrap();
    let campaign = json(&sim.join("truth/campaign.json"));
    let waves = campaign["waves"].as_array().unwrap().len();
    let mut per_wave = std::collections::BTreeMap::<u64, u64>::new();
    let mut labelled = std::collections::HashMap::new();
    for line in std::fs::read_to_string(sim.join("truth/labels.jsonl"))
        .unwrap()
        .lines()
    {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        let w = l["wave"].as_u64().unwrap();
        *per_wave.entry(w).or_default() += 1;
        labelled.insert(
            (
                l["file"].as_str().unwrap().to_string(),
                l["line"].as_u64().unwrap(),
            ),
            w,
        );
    }
    assert_eq!(per_wave.len(), waves);
    // The pack's Sigma correlations fire once per wave, on campaign events only.
    let mut fired = std::collections::BTreeMap::<String, std::collections::BTreeSet<u64>>::new();
    for line in std::fs::read_to_string(&detections).unwrap().lines() {
        let d: serde_json::Value = serde_json::from_str(line).unwrap();
        if d["channel"] != "correlation" {
            continue;
        }
        let title = d["rule_title"].as_str().unwrap().to_string();
        let mut waves_behind = std::collections::BTreeSet::new();
        for e in d["event"]["events"].as_array().unwrap() {
            let rel = e["source"]
                .as_str()
                .unwrap()
                .strip_prefix(sim.to_str().unwrap())
                .unwrap()
                .trim_start_matches('/');
            let key = (rel.to_string(), e["line"].as_u64().unwrap());
            let w = labelled.get(&key);
            assert!(w.is_some(), "{title}: {key:?} is not a campaign event");
            waves_behind.extend(w);
        }
        assert_eq!(
            waves_behind.len(),
            1,
            "{title} spans waves {waves_behind:?}"
        );
        assert!(
            fired
                .entry(title.clone())
                .or_default()
                .insert(waves_behind.into_iter().next().unwrap()),
            "{title} fired twice in a wave"
        );
    }
    for title in [
        "NetBIOS Sweep From One Host",
        "New Account Made Privileged Within The Hour",
    ] {
        assert_eq!(
            fired.get(title).map(|w| w.len()),
            Some(waves),
            "{title}: {fired:?}"
        );
    }
    let mut false_ops = 0;
    let mut best = std::collections::BTreeMap::<u64, u64>::new();
    for op in ops {
        let mut held = std::collections::BTreeMap::<u64, u64>::new();
        for e in op["events"].as_array().unwrap() {
            let src = e["source"].as_str().unwrap();
            let rel = src
                .strip_prefix(sim.to_str().unwrap())
                .unwrap()
                .trim_start_matches('/');
            if let Some(w) = e["line"]
                .as_u64()
                .and_then(|l| labelled.get(&(rel.to_string(), l)))
            {
                *held.entry(*w).or_default() += 1;
            }
        }
        if held.is_empty() {
            false_ops += 1;
        }
        for (w, n) in held {
            let b = best.entry(w).or_default();
            *b = (*b).max(n);
        }
    }
    for (w, total) in &per_wave {
        let share = best.get(w).copied().unwrap_or(0) as f64 / *total as f64;
        assert!(
            share >= 0.8,
            "wave {w}: best operation holds {share:.2}\n{table}"
        );
    }
    let days = campaign["config"]["days"].as_f64().unwrap();
    assert!(
        (false_ops as f64) * 7.0 / days < 5.0,
        "{false_ops} false operations in {days} days\n{table}"
    );
    // Attribution: GALLIUM first, with the overlap it used.
    let actor = &analysis["actor"][0];
    assert_eq!(actor["group"], "GALLIUM", "{}", analysis["actor"]);
    assert!(actor["overlap"].as_array().unwrap().len() >= 10);
    assert!(
        summary.contains("suspected actor GALLIUM (G0093"),
        "{summary}"
    );
    // Every wave the truth has is a wave of the analysis.
    assert_eq!(
        analysis["waves"].as_array().unwrap().len(),
        waves,
        "{summary}"
    );

    // The other report files are there and well formed.
    let layer = json(&report.join("navigator.json"));
    assert_eq!(layer["versions"]["layer"], "4.5");
    assert!(layer["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["techniqueID"] == "T1505.003"));
    let bundle = json(&report.join("stix.json"));
    assert_eq!(bundle["type"], "bundle");
    for o in bundle["objects"].as_array().unwrap() {
        assert_eq!(o["spec_version"], "2.1", "{o}");
        for k in ["id", "type", "created", "modified"] {
            assert!(o.get(k).is_some(), "{k} missing in {o}");
        }
        assert!(o["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}--", o["type"].as_str().unwrap())));
    }
    assert!(bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["type"] == "intrusion-set" && o["name"] == "GALLIUM"));
    let csv = std::fs::read_to_string(report.join("timeline.csv")).unwrap();
    assert!(csv.starts_with("message,datetime,timestamp,timestamp_desc,"));
    assert!(csv.lines().count() > 100);
}

/// The report of a simulated operator (evidence the repository makes itself, so a fresh clone
/// runs this), with its operations, graphics and exposure, renders in a real browser.
#[test]
fn the_report_renders_in_headless_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let s = sim.display().to_string();
    towerwatch(&[
        "simulate", "--days", "9", "--waves", "2", "--scale", "0.3", "--out", &s,
    ]);
    let report = tmp.path().join("report");
    let out = towerwatch(&[
        "hunt",
        &format!("{s}/evidence"),
        "--assets",
        &format!("{s}/context/assets.csv"),
        "--register",
        &format!("{s}/context/rd_requests.csv"),
        "--cdr",
        &format!("{s}/cdr"),
        "--report",
        report.to_str().unwrap(),
    ]);
    let summary = text(&out.stdout);
    assert!(summary.contains("Operations: "), "{summary}");
    assert!(summary.contains("(0 rejected)"), "{summary}");
    let html = report.join("report.html");
    // A fresh profile, no network, nothing that phones home.
    let profile = tmp.path().join("profile");
    let browser = |extra: &[String]| {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().cloned());
        args.push(format!("file://{}", html.display()));
        let out = Command::new("chromium").args(&args).output().expect(
            "chromium runs (scripts/test.sh installs Debian's chromium when it is missing)",
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    };
    let dom = text(&browser(&["--dump-dom".into()]).stdout);
    // The browser parsed the document and built the graphics with their parts.
    for (tag, id, part, close) in [
        ("svg", "movement-graph", "class=\"node\"", "</svg>"),
        ("svg", "timeline", "class=\"mark\"", "</svg>"),
        ("div", "attack-matrix", "class=\"hit\"", "class=\"col\""),
    ] {
        let at = dom
            .find(&format!("<{tag} id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id} in the rendered document"));
        let end = dom[at + 1..].find(close).map_or(dom.len(), |e| e + at + 1);
        let end = if close == "</svg>" { end } else { dom.len() };
        assert!(dom[at..end].contains(part), "{id} has no {part}");
    }
    // At 1400 px the page does not scroll sideways (the ATT&CK matrix once made it 2,100 px
    // wide): a page beside the report measures it in the same browser.
    let measure = report.join("measure.html");
    std::fs::write(
        &measure,
        "<!doctype html><body><iframe id=r src=report.html style='width:1400px;height:900px;border:0'></iframe>\
         <script>r.onload=function(){var d=r.contentDocument.documentElement;\
         document.body.dataset.scroll=d.scrollWidth;document.body.dataset.client=d.clientWidth}</script>",
    )
    .unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", measure.display()),
        ])
        .output()
        .unwrap();
    let measured = text(&out.stdout);
    let number = |name: &str| -> u32 {
        let at = measured
            .find(&format!("data-{name}=\""))
            .unwrap_or_else(|| panic!("no {name} measured: {measured}"));
        let rest = &measured[at + name.len() + 7..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    assert!(
        number("scroll") <= number("client"),
        "the report is {} px wide in a {} px window",
        number("scroll"),
        number("client")
    );
    assert!(dom.contains("id=\"operations\""));
    // The exposure the CDR analytics found is in the page, pseudonymised.
    assert!(dom.contains("id=\"exposure\""), "no exposure section");
    assert!(dom.contains("M-"), "no pseudonymised subscriber");
    let shot = common::artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    browser(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1400,2000".into(),
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
