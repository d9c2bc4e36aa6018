//! `towerwatch eval` (detections against a simulation's ground truth) and `towerwatch demo`
//! (simulate, hunt, evaluate).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_sim::eval::{self, Report, Truth};

use crate::{simulate, DemoArgs, EvalArgs, HuntArgs, HuntFormat, RuleArgs, RunArgs};

/// Scores `detections` against the simulation in `sim_dir`, using the hunt's run manifest
/// beside the detections (if any) to know which inputs it read.
pub fn score(sim_dir: &Path, detections: &Path, min_level: &str) -> Result<Report> {
    let truth = Truth::load(sim_dir)?;
    let manifest = PathBuf::from(format!("{}.manifest.json", detections.display()));
    let read = if manifest.exists() {
        Some(eval::inputs_read(&manifest)?)
    } else {
        None
    };
    let file =
        File::open(detections).with_context(|| format!("cannot read {}", detections.display()))?;
    Ok(eval::evaluate(
        &truth,
        BufReader::new(file),
        &detections.display().to_string(),
        read.as_deref(),
        min_level,
    )?)
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
        run: RunArgs {
            strict: false,
            quiet: true,
            threads: None,
        },
        reference: false,
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
    println!();
    let report = score(&dir, &detections, &args.min_level)?;
    print!("{}", report.table());
    write_json(&report, &dir.join("eval.json"))?;
    let by_level = eval::LEVELS
        .iter()
        .map(|l| score(&dir, &detections, l))
        .collect::<Result<Vec<_>>>()?;
    print!("\n{}", eval::level_lines(&by_level));
    if args.sim.out_dir().is_some() {
        println!(
            "\nThe simulation, detections and eval.json are in {}",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
