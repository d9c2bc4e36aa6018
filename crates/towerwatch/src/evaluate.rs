//! `towerwatch eval` (detections against a simulation's ground truth) and `towerwatch demo`
//! (simulate, hunt, evaluate).

use crate::term::{say, sayln};
use std::fs::File;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_cdr::context;
use towerwatch_cdr::exposure::Tier;
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_hunt::{DetectionWriter, Hunt, RuleSelection};
use towerwatch_sim::eval::{self, Report, Truth};
use towerwatch_sim::scoring::{
    exposure_check, report_exposure_check, score, twin_table, DemoSummary,
};

use crate::{cdr, simulate, DemoArgs, EvalArgs};

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
        .assets(towerwatch_hunt::read_assets(&assets)?)
        .database(
            context::with_files(Default::default(), Some(&register), Some(&assets))?,
            context::CdrContext::load(Some(&dir.join("cdr")), None, None)?,
        )
        .pseudonyms(
            Pseudonymizer::new(&key, false),
            "pseudonymised with the demo's key",
        )
        .hash_inputs(true)
        .build()?;
    let (inputs, _) = towerwatch_sources::discover(&[dir.join("evidence")]);
    let file = File::create(&detections)
        .with_context(|| format!("cannot write {}", detections.display()))?;
    let mut writer = DetectionWriter::jsonl(Box::new(std::io::BufWriter::new(file)));
    let outcome = hunt.run(&inputs, None, &mut writer)?;
    writer.finish()?;
    outcome.write_report(&dir.join("report"), "towerwatch demo")?;
    outcome.write_manifest(&hunt, &detections, started, false)?;
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
    // The CDR store's audit trail on its own, as `towerwatch cdr` analyses it.
    let clock = Instant::now();
    let settings = context::with_files(Default::default(), Some(&register), Some(&assets))?;
    let (run, x) = context::CdrContext::load(Some(&dir.join("cdr")), None, None)?
        .analyse(&[dir.join("evidence")], &Default::default(), settings)
        .map_err(anyhow::Error::msg)?;
    let cdr_seconds = clock.elapsed().as_secs_f64();
    let p = Pseudonymizer::new(&key, false);
    let cdr_detections = towerwatch_cdr::outputs::write(
        &dir.join("cdr-out"),
        &run,
        &x,
        &p,
        &cdr::cells(Some(&dir.join("cdr/cell_sites.csv")))?,
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
    // First what an analyst of this operator would see: the operations, what was stolen,
    // where the report is; then how that compares with the simulation's ground truth.
    say!(
        "\n{}",
        towerwatch_report::terminal_with(
            &outcome.analysis,
            outcome.exposure.as_ref(),
            outcome.linking_seconds
        )
    );
    sayln!(
        "Report: {} (the story of each operation, its hosts and movement, timeline, ATT&CK, exposure; open it in a browser)",
        dir.join("report/report.html").display()
    );
    sayln!("\n── How this compares with the ground truth (the simulation's labels) ──\n");
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
        .collect::<Result<Vec<_>, _>>()?;
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
