//! towerwatch's demo as a library: simulate an operator with a Soft Cell campaign inside,
//! hunt its evidence with the embedded rules, analyse its CDR store's audit trail on its
//! own (as `towerwatch cdr` does), and score both against the simulation's ground truth.
//!
//! Everything is written into one directory (the simulation, `detections.jsonl` with its
//! manifest, `report/`, `cdr-out/`, `eval.json`, `demo.json`); what an analyst would read
//! is told, piece by piece, to a closure.
//!
//! ```no_run
//! let dir = std::path::Path::new("/tmp/towerwatch-demo");
//! let config = towerwatch_sim::Config { days: 7, ..Default::default() };
//! let summary = towerwatch_demo::run(&config, dir, "low", &mut |text| print!("{text}"))?;
//! assert!(summary.twins_alerting.is_empty(), "benign admin work raised alerts");
//! # Ok::<(), towerwatch_demo::DemoError>(())
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use towerwatch_cdr::context::{self, CdrContext, ContextError};
use towerwatch_cdr::exposure::{self, Tier};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_hunt::{DetectionWriter, Hunt, HuntError, RuleSelection};
use towerwatch_sim::eval::{self, EvalError, Truth};
use towerwatch_sim::scoring::{
    exposure_check, report_exposure_check, score, twin_table, DemoSummary,
};
use towerwatch_sim::Config;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot simulate into {}: {source}", dir.display())]
    Simulate {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Hunt(#[from] HuntError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("the CDR store's audit trail: {0}")]
    Audit(String),
    #[error("the cell-site table: {0}")]
    Cells(#[from] towerwatch_cdr::run::ContextFileError),
    #[error(transparent)]
    Report(#[from] towerwatch_report::ReportError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot draw a random key: {0}")]
    Key(getrandom::Error),
}

/// Runs the demo into `dir` (created if missing), scoring detections at or above
/// `min_level`; `say` is told what to show, in order. Returns what `demo.json` holds.
pub fn run(
    config: &Config,
    dir: &Path,
    min_level: &str,
    say: &mut dyn FnMut(&str),
) -> Result<DemoSummary, DemoError> {
    let clock = Instant::now();
    let simulated =
        towerwatch_sim::simulate(config, dir).map_err(|source| DemoError::Simulate {
            dir: dir.to_path_buf(),
            source,
        })?;
    say(&simulated.describe(clock.elapsed().as_secs_f64(), dir));

    // The report's pseudonyms are checked against the truth's numbers under the same key,
    // one of this run only.
    let key = random_key()?;
    let outcome = hunt(dir, &key, say)?;
    let (x, p) = audit_alone(dir, &key, say)?;

    // First what an analyst of this operator would see: the operations, what was stolen,
    // where the report is; then how that compares with the simulation's ground truth.
    let report = dir.join("report/report.html");
    say(&format!(
        "\n{}",
        towerwatch_report::terminal_with(
            &outcome.analysis,
            outcome.exposure.as_ref(),
            outcome.linking_seconds
        )
    ));
    say(&format!(
        "Report: {} (the story of each operation, its hosts and movement, timeline, ATT&CK, exposure; open it in a browser)\n",
        report.display()
    ));
    say("\n── How this compares with the ground truth (the simulation's labels) ──\n\n");
    let exposure_cdr = exposure_check(dir, &x)?;
    let exposure_hunt = report_exposure_check(dir, &dir.join("report"), &p)?;
    say(&exposure_hunt.line("hunt report"));
    say(&exposure_cdr.line("towerwatch cdr"));
    say("\n");
    // The hunt analysed the audit trail too: its detections are all that is scored.
    let detections = [dir.join("detections.jsonl")];
    let scored = score(dir, &detections, min_level)?;
    say(&scored.table());
    write_json(&dir.join("eval.json"), &scored)?;
    let by_level = eval::LEVELS
        .iter()
        .map(|l| score(dir, &detections, l))
        .collect::<Result<Vec<_>, _>>()?;
    say(&format!("\n{}", eval::level_lines(&by_level)));
    let medium = &by_level[2];
    say(&format!(
        "\nBenign twins of the campaign's moves (records flagged at medium and above)\n\n{}",
        twin_table(medium)
    ));
    let truth = Truth::load(dir)?;
    let stories = eval::evaluate_operations(dir, &truth, &dir.join("report/operations.json"))?;
    say(&format!(
        "\nOperations against the ground truth (report in {})\n\n{}",
        report.display(),
        stories.table()
    ));
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
    write_json(&dir.join("demo.json"), &summary)?;
    say(&format!(
        "\nThe simulation, detections, report, eval.json and demo.json are in {}\n",
        dir.display()
    ));
    Ok(summary)
}

/// Hunts the simulation's evidence with every embedded rule (informational ones too, so the
/// scoring can count them by level): detections, their manifest and the report.
fn hunt(
    dir: &Path,
    key: &[u8],
    say: &mut dyn FnMut(&str),
) -> Result<towerwatch_hunt::HuntOutcome, DemoError> {
    let clock = Instant::now();
    let started = jiff::Timestamp::now();
    let assets = dir.join("context/assets.csv");
    let register = dir.join("context/rd_requests.csv");
    let hunt = Hunt::builder()
        .select(RuleSelection {
            min_level: towerwatch_event::Level::Informational,
            ..RuleSelection::default()
        })
        .assets(towerwatch_hunt::read_assets(&assets)?)
        .database(
            context::with_files(Default::default(), Some(&register), Some(&assets))?,
            CdrContext::load(Some(&dir.join("cdr")), None, None)?,
        )
        .pseudonyms(
            Pseudonymizer::new(key, false),
            "pseudonymised with the demo's key",
        )
        .hash_inputs(true)
        .build()?;
    let (inputs, _) = towerwatch_sources::discover(&[dir.join("evidence")]);
    let detections = dir.join("detections.jsonl");
    let file = File::create(&detections).map_err(|source| DemoError::Write {
        path: detections.clone(),
        source,
    })?;
    let mut writer = DetectionWriter::jsonl(Box::new(BufWriter::new(file)));
    let outcome = hunt.run(&inputs, None, &mut writer)?;
    writer.finish()?;
    outcome.write_report(&dir.join("report"), "towerwatch demo")?;
    outcome.write_manifest(&hunt, &detections, started, false)?;
    let seconds = clock.elapsed().as_secs_f64();
    let events = outcome.summary.events();
    say(&format!(
        "towerwatch hunt: {} events, {} detections with the embedded rules in {:.2} s ({:.0} events/s); written to {}\n",
        events,
        outcome.summary.detections,
        seconds,
        events as f64 / seconds.max(1e-9),
        detections.display()
    ));
    Ok(outcome)
}

/// The CDR store's audit trail on its own, as `towerwatch cdr` analyses it (into
/// `cdr-out/`): the exposure it finds, raw, and the pseudonymiser of the outputs.
fn audit_alone(
    dir: &Path,
    key: &[u8],
    say: &mut dyn FnMut(&str),
) -> Result<(exposure::Exposure, Pseudonymizer), DemoError> {
    let clock = Instant::now();
    let settings = context::with_files(
        Default::default(),
        Some(&dir.join("context/rd_requests.csv")),
        Some(&dir.join("context/assets.csv")),
    )?;
    let (run, x) = CdrContext::load(Some(&dir.join("cdr")), None, None)?
        .analyse(&[dir.join("evidence")], &Default::default(), settings)
        .map_err(DemoError::Audit)?;
    let seconds = clock.elapsed().as_secs_f64();
    let p = Pseudonymizer::new(key, false);
    let (cells, rejected) = exposure::read_cells(&dir.join("cdr/cell_sites.csv"))?;
    if let Some(first) = rejected.first() {
        say(&format!(
            "towerwatch: {} rows of the cell table rejected (first: {first})\n",
            rejected.len()
        ));
    }
    let out = dir.join("cdr-out");
    towerwatch_cdr::outputs::write(&out, &run, &x, &p, &cells, None)?;
    say(&format!(
        "towerwatch cdr: {} audit records, {} findings, {} lookups authorised by the register, {} subscribers exposed by name in {:.2} s; written to {}\n",
        run.audit,
        run.findings.len(),
        run.analytics.authorised,
        x.subscribers.keys().filter(|(t, _)| *t == Tier::Named).count(),
        seconds,
        out.display()
    ));
    Ok((x, p))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), DemoError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::from)?;
    std::fs::write(path, bytes).map_err(|source| DemoError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The demo's pseudonymisation key: random, for this run only (hex, as a key file holds it).
fn random_key() -> Result<Vec<u8>, DemoError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(DemoError::Key)?;
    Ok(key
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes())
}
