//! `towerwatch eval` (detections against a simulation's ground truth) and `towerwatch demo`
//! (simulate, hunt, evaluate).

use crate::term::{say, sayln};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_cdr::exposure::{Exposure, Tier};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_cdr::sql::IdKind;
use towerwatch_sim::eval::{self, Report, Truth};

use towerwatch_cdr::context;
use towerwatch_hunt::{DetectionWriter, Hunt, RuleSelection};

use crate::{cdr, simulate, CdrArgs, DemoArgs, EvalArgs};

/// Scores detection files (from `hunt`, `cdr`) against the simulation in `sim_dir`, using
/// their run manifests (when every file has one) to know which inputs were read.
pub fn score(sim_dir: &Path, detections: &[PathBuf], min_level: &str) -> Result<Report> {
    let truth = Truth::load(sim_dir)?;
    let mut read = Some(Vec::new());
    let mut sources: Vec<(String, Box<dyn BufRead>)> = Vec::new();
    for d in detections {
        let manifest = PathBuf::from(format!("{}.manifest.json", d.display()));
        match (&mut read, manifest.exists()) {
            (Some(r), true) => r.extend(eval::inputs_read(&manifest)?),
            _ => read = None,
        }
        let file = File::open(d).with_context(|| format!("cannot read {}", d.display()))?;
        sources.push((d.display().to_string(), Box::new(BufReader::new(file))));
    }
    Ok(eval::evaluate(&truth, sources, read.as_deref(), min_level)?)
}

/// A named subscriber as an output tells it: identifier (or pseudonym), records, first and
/// last record time.
struct NamedRow {
    records: Option<u64>,
    from: Option<String>,
    to: Option<String>,
}

/// The exposure found against the ground truth's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExposureCheck {
    /// Subscribers the campaign read by name.
    pub targets: usize,
    /// Of them, named in the output.
    pub found: usize,
    /// Subscribers the output names in all.
    pub named: usize,
    /// Targets whose records, first and last record times agree to the second.
    pub exact: usize,
}

impl ExposureCheck {
    fn of(want: &BTreeMap<String, &serde_json::Value>, named: &BTreeMap<String, NamedRow>) -> Self {
        let second = |s: Option<&str>| s.map(|s| s.chars().take(19).collect::<String>());
        let found = named.keys().filter(|id| want.contains_key(*id)).count();
        let exact = want
            .iter()
            .filter(|(id, w)| {
                named.get(*id).is_some_and(|e| {
                    e.records == w["records"].as_u64()
                        && second(e.from.as_deref()) == second(w["first"].as_str())
                        && second(e.to.as_deref()) == second(w["last"].as_str())
                })
            })
            .count();
        ExposureCheck {
            targets: want.len(),
            found,
            named: named.len(),
            exact,
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "exposure ({what}) against the ground truth: {} of {} targeted subscribers found (recall {:.1}%), {} named in all (precision {:.1}%); records and time range exact for {} of {}\n",
            self.found,
            self.targets,
            100.0 * self.found as f64 / (self.targets.max(1)) as f64,
            self.named,
            100.0 * self.found as f64 / (self.named.max(1)) as f64,
            self.exact,
            self.targets
        )
    }
}

/// The truth's named subscribers (by MSISDN, or by its pseudonym under `p`).
fn truth_exposure(
    sim_dir: &Path,
    p: Option<&Pseudonymizer>,
) -> Result<(serde_json::Value, Vec<String>)> {
    let path = sim_dir.join("truth/exposure.json");
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let ids = truth["total"]
        .as_array()
        .context("truth/exposure.json has no total")?
        .iter()
        .filter_map(|e| e["msisdn"].as_str())
        .map(|m| match p {
            Some(p) => p.id(IdKind::Msisdn, m),
            None => m.to_string(),
        })
        .collect();
    Ok((truth, ids))
}

fn wanted<'a>(
    truth: &'a serde_json::Value,
    ids: &[String],
) -> BTreeMap<String, &'a serde_json::Value> {
    ids.iter()
        .cloned()
        .zip(truth["total"].as_array().into_iter().flatten())
        .collect()
}

/// The exposure `towerwatch cdr` found, against the ground truth.
pub fn exposure_check(sim_dir: &Path, x: &Exposure) -> Result<ExposureCheck> {
    let (truth, ids) = truth_exposure(sim_dir, None)?;
    let named = x
        .subscribers
        .iter()
        .filter(|((t, _), _)| *t == Tier::Named)
        .map(|((_, id), e)| {
            (
                id.clone(),
                NamedRow {
                    records: e.records,
                    from: e.from.map(|t| t.to_string()),
                    to: e.to.map(|t| t.to_string()),
                },
            )
        })
        .collect();
    Ok(ExposureCheck::of(&wanted(&truth, &ids), &named))
}

/// The exposure in a hunt's report (`exposure.json`, pseudonymised under `p`), against the
/// ground truth.
pub fn report_exposure_check(
    sim_dir: &Path,
    report: &Path,
    p: &Pseudonymizer,
) -> Result<ExposureCheck> {
    let (truth, ids) = truth_exposure(sim_dir, Some(p))?;
    let path = report.join("exposure.json");
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let named = doc["total"]["subscribers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["tier"] == "named")
        .filter_map(|r| {
            Some((
                r["subscriber"].as_str()?.to_string(),
                NamedRow {
                    records: r["records"].as_u64(),
                    from: r["from"].as_str().map(String::from),
                    to: r["to"].as_str().map(String::from),
                },
            ))
        })
        .collect();
    Ok(ExposureCheck::of(&wanted(&truth, &ids), &named))
}

fn write_json(report: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run_eval(args: EvalArgs) -> Result<ExitCode> {
    let report = score(&args.truth, &args.detections, &args.min_level)?;
    say!("{}", report.table());
    if let Some(p) = &args.json {
        write_json(&report, p)?;
    }
    if let Some(ops) = &args.operations {
        let truth = Truth::load(&args.truth)?;
        let stories = eval::evaluate_operations(&args.truth, &truth, ops)?;
        say!(
            "\nOperations against the ground truth\n\n{}",
            stories.table()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_demo(args: DemoArgs) -> Result<ExitCode> {
    // Without --out, a new directory under the system's temporary one, kept: what the demo
    // prints points into it.
    let dir = match args.sim.out_dir() {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("towerwatch-demo-")
            .tempdir()?
            .keep(),
    };
    crate::cdr::check_writable(&dir)?;
    let cfg = args.sim.config()?;
    let (summary, seconds) = simulate::generate(&cfg, &dir)?;
    say!("{}", simulate::describe(&summary, seconds, &dir));

    let detections = dir.join("detections.jsonl");
    // The report's pseudonyms are checked against the truth's numbers under the same key,
    // one of this run only.
    let key = demo_key()?;
    let clock = Instant::now();
    let started = jiff::Timestamp::now();
    let assets = dir.join("context/assets.csv");
    let register = dir.join("context/rd_requests.csv");
    let hunt = Hunt::builder()
        .select(RuleSelection {
            min_level: towerwatch_event::Level::Informational,
            ..RuleSelection::default()
        })
        .assets(crate::hunt::read_assets(Some(&assets))?)
        .database(
            context::with_files(Default::default(), Some(&register), Some(&assets))?,
            context::CdrContext::load(Some(&dir.join("cdr")), None, None)?,
        )
        .pseudonyms(Pseudonymizer::new(&key, false), "pseudonymised with the demo's key")
        .hash_inputs(true)
        .build()?;
    let (inputs, _) = towerwatch_sources::discover(&[dir.join("evidence")]);
    let file = File::create(&detections)
        .with_context(|| format!("cannot write {}", detections.display()))?;
    let mut writer = DetectionWriter::jsonl(Box::new(std::io::BufWriter::new(file)));
    let outcome = hunt.run(&inputs, None, &mut writer)?;
    writer.finish()?;
    crate::hunt::write_report(&dir.join("report"), &outcome, "towerwatch demo")?;
    crate::hunt::write_manifest(&detections, &hunt, &outcome, started, false)?;
    let hunt_seconds = clock.elapsed().as_secs_f64();
    let events = outcome.summary.events();
    sayln!(
        "towerwatch hunt: {} events, {} detections with the embedded rules in {:.2} s ({:.0} events/s); written to {}",
        events,
        outcome.summary.detections,
        hunt_seconds,
        events as f64 / hunt_seconds.max(1e-9),
        detections.display()
    );
    let cdr_args = CdrArgs {
        logs: vec![dir.join("evidence")],
        context: crate::CdrContextArgs {
            cdr: Some(dir.join("cdr")),
            register: Some(dir.join("context/rd_requests.csv")),
            ..Default::default()
        },
        cells: Some(dir.join("cdr/cell_sites.csv")),
        assets: Some(dir.join("context/assets.csv")),
        log_line_prefix: None,
        training_days: 7,
        max_ids: 50,
        long_range_days: 92,
        reveal_key: None,
        reason: None,
        against: None,
        out: Some(dir.join("cdr-out")),
        strict: false,
        quiet: true,
    };
    let (run, x, cdr_seconds) = cdr::analyse(&cdr_args)?;
    let p = Pseudonymizer::new(&key, false);
    let cdr_detections = cdr::write_outputs(
        &dir.join("cdr-out"),
        &run,
        &x,
        &p,
        cdr_args.cells.as_deref(),
        None,
    )?;
    sayln!(
        "towerwatch cdr: {} audit records, {} findings, {} lookups authorised by the register, {} subscribers exposed by name in {:.2} s; written to {}",
        run.audit,
        run.findings.len(),
        run.analytics.authorised,
        x.subscribers.keys().filter(|(t, _)| *t == Tier::Named).count(),
        cdr_seconds,
        dir.join("cdr-out").display()
    );
    let exposure_cdr = exposure_check(&dir, &x)?;
    let exposure_hunt = report_exposure_check(&dir, &dir.join("report"), &p)?;
    say!("{}", exposure_hunt.line("hunt report"));
    say!("{}", exposure_cdr.line("towerwatch cdr"));
    sayln!();
    // The hunt analysed the audit trail too: its detections are all that is scored.
    let _ = cdr_detections;
    let both = [detections.clone()];
    let report = score(&dir, &both, &args.min_level)?;
    say!("{}", report.table());
    write_json(&report, &dir.join("eval.json"))?;
    let by_level = eval::LEVELS
        .iter()
        .map(|l| score(&dir, &both, l))
        .collect::<Result<Vec<_>>>()?;
    say!("\n{}", eval::level_lines(&by_level));
    let medium = &by_level[2];
    say!(
        "\nBenign twins of the campaign's moves (records flagged at medium and above)\n\n{}",
        twin_table(medium)
    );
    let truth = Truth::load(&dir)?;
    let stories = eval::evaluate_operations(&dir, &truth, &dir.join("report/operations.json"))?;
    say!(
        "\nOperations against the ground truth (report in {})\n\n{}",
        dir.join("report/report.html").display(),
        stories.table()
    );
    let summary = DemoSummary {
        exposure_hunt,
        exposure_cdr,
        twins_alerting: medium
            .twins_alerting()
            .into_iter()
            .map(String::from)
            .collect(),
        twins: medium.twins.clone(),
        operations: stories,
    };
    std::fs::write(dir.join("demo.json"), serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", dir.join("demo.json").display()))?;
    sayln!(
        "\nThe simulation, detections, report, eval.json and demo.json are in {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `demo` measured, as `demo.json`: the exposure in the hunt's report and in
/// `towerwatch cdr`, the benign-twin categories alerting at medium and above, and how each
/// wave's events fall into operations.
#[derive(serde::Serialize)]
struct DemoSummary {
    exposure_hunt: ExposureCheck,
    exposure_cdr: ExposureCheck,
    twins_alerting: Vec<String>,
    /// Per category: (records, records flagged at medium and above).
    twins: BTreeMap<String, (u64, u64)>,
    operations: eval::StoryReport,
}

fn twin_table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (category, (records, flagged)) in &r.twins {
        let _ = writeln!(
            s,
            "  {category:<20} {flagged:>5} of {records:>6} records flagged"
        );
    }
    let alerting = r.twins_alerting();
    let _ = writeln!(
        s,
        "{} of {} categories alerting{}",
        alerting.len(),
        r.twins.len(),
        if alerting.is_empty() {
            String::new()
        } else {
            format!(": {}", alerting.join(", "))
        }
    );
    s
}

/// The demo's pseudonymisation key: random, for this run only (hex, as a key file holds it).
fn demo_key() -> Result<Vec<u8>> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("cannot draw a random key: {e}"))?;
    Ok(key
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes())
}
