//! `towerwatch eval` (detections against a simulation's ground truth) and `towerwatch demo`
//! (simulate, hunt, evaluate).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_cdr::exposure::{Exposure, Tier};
use towerwatch_sim::eval::{self, Report, Truth};

use crate::{cdr, simulate, CdrArgs, DemoArgs, EvalArgs, HuntArgs, HuntFormat, RuleArgs, RunArgs};

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

/// The exposure found against the ground truth's: which named subscribers, and whether each
/// one's records, first and last record times agree.
pub fn exposure_check(sim_dir: &Path, x: &Exposure) -> Result<String> {
    let path = sim_dir.join("truth/exposure.json");
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    let want: BTreeMap<String, &serde_json::Value> = truth["total"]
        .as_array()
        .context("truth/exposure.json has no total")?
        .iter()
        .filter_map(|e| Some((e["msisdn"].as_str()?.to_string(), e)))
        .collect();
    let named: BTreeMap<&String, _> = x
        .subscribers
        .iter()
        .filter(|((t, _), _)| *t == Tier::Named)
        .map(|((_, id), e)| (id, e))
        .collect();
    let hits = named
        .keys()
        .filter(|id| want.contains_key(id.as_str()))
        .count();
    let exact = want
        .iter()
        .filter(|(id, w)| {
            named.get(id).is_some_and(|e| {
                e.records == w["records"].as_u64()
                    && e.from.map(|t| t.to_string()).as_deref().map(|s| &s[..19])
                        == w["first"].as_str().map(|s| &s[..19])
                    && e.to.map(|t| t.to_string()).as_deref().map(|s| &s[..19])
                        == w["last"].as_str().map(|s| &s[..19])
            })
        })
        .count();
    Ok(format!(
        "exposure against the ground truth: {} of {} targeted subscribers found (recall {:.1}%), {} named in all (precision {:.1}%); records and time range exact for {} of {}\n",
        hits,
        want.len(),
        100.0 * hits as f64 / (want.len().max(1)) as f64,
        named.len(),
        100.0 * hits as f64 / (named.len().max(1)) as f64,
        exact,
        want.len()
    ))
}

fn write_json(report: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run_eval(args: EvalArgs) -> Result<ExitCode> {
    let report = score(&args.truth, &args.detections, &args.min_level)?;
    print!("{}", report.table());
    if let Some(p) = &args.json {
        write_json(&report, p)?;
    }
    if let Some(ops) = &args.operations {
        let truth = Truth::load(&args.truth)?;
        let stories = eval::evaluate_operations(&args.truth, &truth, ops)?;
        print!(
            "\nOperations against the ground truth\n\n{}",
            stories.table()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_demo(args: DemoArgs) -> Result<ExitCode> {
    let temp;
    let dir = match args.sim.out_dir() {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("towerwatch-demo-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let cfg = args.sim.config()?;
    let (summary, seconds) = simulate::generate(&cfg, &dir)?;
    print!("{}", simulate::describe(&summary, seconds, &dir));

    let detections = dir.join("detections.jsonl");
    let clock = Instant::now();
    crate::hunt::run(HuntArgs {
        paths: vec![dir.join("evidence")],
        rules: RuleArgs {
            rules: Vec::new(),
            min_level: "informational".into(),
            status: vec!["stable".into(), "test".into(), "experimental".into()],
            placeholders: None,
        },
        format: HuntFormat::Jsonl,
        output: Some(detections.clone()),
        coverage: false,
        report: Some(dir.join("report")),
        assets: Some(dir.join("context/assets.csv")),
        context: crate::CdrContextArgs {
            cdr: Some(dir.join("cdr")),
            register: Some(dir.join("context/rd_requests.csv")),
            ..Default::default()
        },
        layout: Default::default(),
        run: RunArgs {
            strict: false,
            quiet: true,
            threads: None,
        },
        reference: false,
        no_operations: false,
    })?;
    let hunt_seconds = clock.elapsed().as_secs_f64();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(format!(
        "{}.manifest.json",
        detections.display()
    ))?)?;
    let events = manifest["events"].as_u64().unwrap_or(0);
    println!(
        "towerwatch hunt: {} events, {} detections with the embedded rules in {:.2} s ({:.0} events/s); written to {}",
        events,
        manifest["detections"].as_u64().unwrap_or(0),
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
        out: Some(dir.join("cdr-out")),
        strict: false,
        quiet: true,
    };
    let (run, x, cdr_seconds) = cdr::analyse(&cdr_args)?;
    let p = towerwatch_cdr::pseudo::Pseudonymizer::new(&demo_key(), false);
    let cdr_detections = cdr::write_outputs(
        &dir.join("cdr-out"),
        &run,
        &x,
        &p,
        cdr_args.cells.as_deref(),
    )?;
    println!(
        "towerwatch cdr: {} audit records, {} findings, {} lookups authorised by the register, {} subscribers exposed by name in {:.2} s; written to {}",
        run.audit,
        run.findings.len(),
        run.analytics.authorised,
        x.subscribers.keys().filter(|(t, _)| *t == Tier::Named).count(),
        cdr_seconds,
        dir.join("cdr-out").display()
    );
    print!("{}", exposure_check(&dir, &x)?);
    println!();
    // The hunt analysed the audit trail too: its detections are all that is scored.
    let _ = cdr_detections;
    let both = [detections.clone()];
    let report = score(&dir, &both, &args.min_level)?;
    print!("{}", report.table());
    write_json(&report, &dir.join("eval.json"))?;
    let by_level = eval::LEVELS
        .iter()
        .map(|l| score(&dir, &both, l))
        .collect::<Result<Vec<_>>>()?;
    print!("\n{}", eval::level_lines(&by_level));
    let medium = &by_level[2];
    print!(
        "\nBenign twins of the campaign's moves (records flagged at medium and above)\n\n{}",
        twin_table(medium)
    );
    let truth = Truth::load(&dir)?;
    let stories = eval::evaluate_operations(&dir, &truth, &dir.join("report/operations.json"))?;
    print!(
        "\nOperations against the ground truth (report in {})\n\n{}",
        dir.join("report/report.html").display(),
        stories.table()
    );
    if args.sim.out_dir().is_some() {
        println!(
            "\nThe simulation, detections and eval.json are in {}",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
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

/// The demo's pseudonymisation key: random, for this run only.
fn demo_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut key);
    }
    key
}
