//! The same events give the same outcome as files (read in parallel, merged in input order)
//! and as one shuffled live stream (each event delayed by up to the lateness): identical
//! detections, operations, waves and leads, on the default simulation (with its database
//! audit and inventory) and on the real attack EVTX of `../shared/data/evtx`; and judged by
//! two workers, sent as bytes and absorbed by a story builder (the scaled-out hunt).

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use towerwatch_cdr::context::{with_files, CdrContext};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_event::{Detection, Event, Level};
use towerwatch_hunt::{Hunt, HuntOutcome, RuleSelection};
use towerwatch_sources::{discover, read_input, ReadOptions};

const LATENESS: SignedDuration = SignedDuration::from_secs(600);

fn hunt(assets: Option<&Path>, register: Option<&Path>, cdr: Option<&Path>) -> Hunt {
    let inventory = match assets {
        Some(p) => towerwatch_hunt::read_assets(p).unwrap(),
        None => Vec::new(),
    };
    Hunt::builder()
        .select(RuleSelection {
            min_level: Level::Informational,
            ..RuleSelection::default()
        })
        .assets(inventory)
        .database(
            with_files(Default::default(), register, assets).unwrap(),
            CdrContext::load(cdr, None, None).unwrap(),
        )
        .pseudonyms(
            Pseudonymizer::new(b"a fixed key of sixteen bytes", false),
            "test",
        )
        .build()
        .unwrap()
}

/// Detections as sorted JSON lines (files write them in input order, a stream in time order).
fn lines(detections: &[Detection]) -> Vec<String> {
    let mut v: Vec<String> = detections
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
    v.sort();
    v
}

fn stories(o: &HuntOutcome) -> serde_json::Value {
    serde_json::to_value(&o.analysis).unwrap()
}

/// A small deterministic generator (xorshift), for the shuffle.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every event of the evidence, in an order where each arrives up to `LATENESS` after
/// events newer than it (its time plus a random delay below the lateness), sources
/// interleaved; events without a time anywhere.
fn shuffled(evidence: &Path, seed: u64) -> Vec<Event> {
    let (inputs, _) = discover(&[evidence.to_path_buf()]);
    let mut rng = Rng(seed);
    let mut keyed = Vec::new();
    for input in &inputs {
        read_input(input, &ReadOptions::default(), &mut |item| {
            if let Ok(e) = item {
                let delay = (rng.next() % LATENESS.as_micros() as u64) as i64;
                let at = match e.timestamp {
                    Some(t) => t.as_microsecond() + delay,
                    None => rng.next() as i64,
                };
                keyed.push((at, rng.next(), e));
            }
        });
    }
    keyed.sort_by_key(|(at, tie, _)| (*at, *tie));
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

fn files_and_stream_agree(hunt: &Hunt, evidence: &Path) -> (HuntOutcome, usize) {
    let (inputs, _) = discover(&[evidence.to_path_buf()]);
    let mut from_files = Vec::new();
    let files = hunt.run(&inputs, None, &mut from_files).unwrap();

    let events = shuffled(evidence, 0x5eed_1234_abcd_ef01);
    let mut live = hunt.stream(LATENESS).with_live_detections();
    let mut early = 0;
    for e in events {
        live.push(e);
        early += live.take_detections().len();
    }
    assert_eq!(live.late(), 0, "the shuffle stays within the lateness");
    let mut from_stream = Vec::new();
    let stream = live.finish(&mut from_stream).unwrap();

    assert!(
        !from_files.is_empty(),
        "{}: no detections",
        evidence.display()
    );
    assert_eq!(
        files.summary.events(),
        stream.summary.events(),
        "{}: events",
        evidence.display()
    );
    let (a, b) = (lines(&from_files), lines(&from_stream));
    assert_eq!(a.len(), b.len(), "{}: detections", evidence.display());
    assert!(a == b, "{}: detections differ", evidence.display());
    assert!(
        stories(&files) == stories(&stream),
        "{}: operations differ",
        evidence.display()
    );

    // Scaled out: events judged by two workers (hosts split between them), each judged event
    // sent as bytes, absorbed by a story builder in the order they reach it.
    let mut judges = [hunt.judge(), hunt.judge()];
    let mut builder = hunt.stream(LATENESS);
    for e in shuffled(evidence, 0x0dd_ba11) {
        let host = e.computer.as_deref().unwrap_or(&e.origin.source);
        let worker = (towerwatch_event::source_digest(host) % 2) as usize;
        let bytes = postcard::to_stdvec(&judges[worker].judge(e)).unwrap();
        let judged: towerwatch_hunt::Judged = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(judged.check(hunt), Ok(()));
        builder.push_judged(judged);
    }
    assert_eq!(builder.late(), 0);
    let mut from_builder = Vec::new();
    let built = builder.finish(&mut from_builder).unwrap();
    assert_eq!(files.summary.events(), built.summary.events());
    assert!(
        a == lines(&from_builder),
        "{}: judged detections differ",
        evidence.display()
    );
    assert!(
        stories(&files) == stories(&built),
        "{}: judged operations differ",
        evidence.display()
    );
    // What a story builder keeps reads back as the same analysis (`serve --fleet` shows it).
    let kept: towerwatch_correlate::Analysis = serde_json::from_value(stories(&files)).unwrap();
    assert!(
        serde_json::to_value(&kept).unwrap() == stories(&files),
        "{}: the analysis does not read back as itself",
        evidence.display()
    );
    (files, early)
}

#[test]
fn the_default_simulation_hunts_the_same_as_files_and_as_a_shuffled_stream() {
    let dir = tempfile::tempdir().unwrap();
    towerwatch_sim::simulate(&towerwatch_sim::Config::default(), dir.path()).unwrap();
    let p = |s: &str| -> PathBuf { dir.path().join(s) };
    let hunt = hunt(
        Some(&p("context/assets.csv")),
        Some(&p("context/rd_requests.csv")),
        Some(&p("cdr")),
    );
    let (outcome, early) = files_and_stream_agree(&hunt, &p("evidence"));
    // Every wave is an operation, the database audit took part, detections came out live.
    let waves = towerwatch_sim::Config::default().waves as usize;
    assert!(outcome.analysis.operations.len() >= waves);
    assert!(outcome.database.statements > 0);
    assert!(outcome.exposure.is_some());
    assert!(early > 0);
}

#[test]
fn attack_evtx_hunts_the_same_as_files_and_as_a_shuffled_stream() {
    let evtx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/evtx");
    let hunt = hunt(None, None, None);
    let (outcome, _) = files_and_stream_agree(&hunt, &evtx);
    assert!(!outcome.analysis.leads.is_empty() || !outcome.analysis.operations.is_empty());
}

/// The same records from several sources (one log collected more than once, as a forwarded
/// copy is): every event has twins of the same time and record, and the stories must not
/// depend on the order the files or the stream give the twins in.
#[test]
fn copies_of_one_log_from_several_sources_hunt_the_same_as_files_and_as_a_stream() {
    let logs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/evtx/DeepBlueCLI");
    let dir = tempfile::tempdir().unwrap();
    for copy in ["a", "b", "c", "d", "e"] {
        std::os::unix::fs::symlink(&logs, dir.path().join(copy)).unwrap();
    }
    let hunt = hunt(None, None, None);
    let (outcome, _) = files_and_stream_agree(&hunt, dir.path());
    assert!(!outcome.analysis.leads.is_empty() || !outcome.analysis.operations.is_empty());
}

#[test]
fn an_event_later_than_the_lateness_is_counted_and_still_taken() {
    let hunt = hunt(None, None, None);
    let mut live = hunt.stream(SignedDuration::from_secs(60));
    let event = |line: u64, t: &str| {
        let mut e = Event::new(towerwatch_event::Origin::line("a.jsonl", line));
        e.timestamp = t.parse().ok();
        e
    };
    live.push(event(1, "2024-01-01T10:00:00Z"));
    live.push(event(2, "2024-01-01T10:05:00Z"));
    assert_eq!(live.waiting(), 1, "the older one passed the watermark");
    live.push(event(3, "2024-01-01T10:04:30Z"));
    assert_eq!(live.late(), 0, "within the lateness");
    live.push(event(4, "2024-01-01T09:00:00Z"));
    assert_eq!(live.late(), 1);
    let outcome = live.finish(&mut Vec::new()).unwrap();
    assert_eq!(outcome.summary.events(), 4);
    assert_eq!(outcome.late, 1);
}

/// A feed that never ends keeps nothing for its end: the same live detections as a stream
/// that does, and no held rule detections or stories when it is finished all the same.
#[test]
fn a_detections_only_stream_finds_the_same_live_detections_and_keeps_nothing() {
    let evtx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/evtx");
    let hunt = hunt(None, None, None);
    let events = shuffled(&evtx, 7);
    let mut full = hunt.stream(LATENESS).with_live_detections();
    let mut only = hunt.stream(LATENESS).detections_only();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for e in events {
        full.push(e.clone());
        only.push(e);
        a.extend(full.take_detections());
        b.extend(only.take_detections());
    }
    let mut held_full = Vec::new();
    full.finish(&mut held_full).unwrap();
    let mut held_only = Vec::new();
    let finished_only = only.finish(&mut held_only).unwrap();
    assert!(!a.is_empty());
    assert_eq!(lines(&a), lines(&b), "live detections differ");
    assert!(!held_full.is_empty());
    // What it still gives at the end are the Sigma correlations' and joins' detections,
    // none of the rules' own (those went out live and were not held).
    let live: std::collections::BTreeSet<String> = lines(&b).into_iter().collect();
    assert!(held_only.len() < held_full.len());
    assert!(
        lines(&held_only).iter().all(|l| !live.contains(l)),
        "a detections-only stream held a rule's detection"
    );
    assert!(
        finished_only.analysis.operations.is_empty() && finished_only.analysis.leads.is_empty()
    );
}

#[test]
fn judged_facts_naming_rules_the_builder_does_not_have_are_refused() {
    let evtx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/evtx");
    let hunt = hunt(None, None, None);
    let rules = hunt.rules().len();
    let mut judge = hunt.judge();
    // An event with a detection, as a worker judged it.
    let judged = shuffled(&evtx, 7)
        .into_iter()
        .map(|e| judge.judge(e))
        .map(|j| serde_json::to_value(&j).unwrap())
        .find(|j| {
            j["facts"]["detections"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        })
        .expect("the attack EVTX has detections");
    let back = |v: &serde_json::Value| -> towerwatch_hunt::Judged {
        serde_json::from_value(v.clone()).unwrap()
    };
    assert_eq!(back(&judged).check(&hunt), Ok(()));
    // Damaged on its way: a detection's rule, or a link fact's, past the end of the rules.
    let mut bad = judged.clone();
    bad["facts"]["detections"][0]["tag"]["rule"] = (rules + 3).into();
    let why = back(&bad).check(&hunt).unwrap_err();
    assert!(why.contains(&format!("rule {}", rules + 3)), "{why}");
    let mut bad = judged.clone();
    bad["facts"]["linker"]["node"]["hits"][0] = (rules as u64 + 9).into();
    let why = back(&bad).check(&hunt).unwrap_err();
    assert!(why.contains("a link fact"), "{why}");
    // Judged with more rules than this builder has: the high-level ones only here.
    let fewer = Hunt::builder()
        .select(RuleSelection {
            min_level: Level::Critical,
            ..RuleSelection::default()
        })
        .build()
        .unwrap();
    let beyond = shuffled(&evtx, 7)
        .into_iter()
        .map(|e| judge.judge(e))
        .find(|j| j.check(&fewer).is_err());
    assert!(
        beyond.is_some(),
        "no fact named a rule past the critical ones"
    );
}
