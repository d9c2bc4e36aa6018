//! `towerwatch eval` (detections against a simulation's ground truth) and `towerwatch demo`
//! (simulate, hunt, evaluate: `towerwatch_demo`).

use crate::term::say;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use towerwatch_sim::eval::{self, Report, Truth};
use towerwatch_sim::scoring::score;

use crate::{DemoArgs, EvalArgs};

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
    let config = args.sim.config()?;
    towerwatch_demo::run(&config, &dir, &args.min_level, &mut |text| {
        crate::term::out(text)
    })?;
    Ok(ExitCode::SUCCESS)
}
