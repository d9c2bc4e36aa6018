//! `towerwatch simulate`: a simulated operator with a Soft Cell campaign, into a directory.

use crate::term::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_sim::{clock, simulate, Config, Summary};

use crate::{SimArgs, SimOptions};

impl SimOptions {
    pub fn out_dir(&self) -> Option<&PathBuf> {
        self.out.as_ref()
    }

    pub fn config(&self) -> Result<Config> {
        let start = clock::parse_date(&self.start)
            .with_context(|| format!("--start {}: expected YYYY-MM-DD", self.start))?;
        let profile = towerwatch_sim::Profile::named(&self.profile).with_context(|| {
            format!(
                "--profile {}: none such (profiles: {})",
                self.profile,
                towerwatch_sim::PROFILES.map(|p| p.name).join(", ")
            )
        })?;
        Ok(Config {
            profile,
            seed: self.seed,
            scale: self.scale,
            days: self.days,
            waves: self.waves,
            targets: self.targets,
            stealth: self.stealth,
            start,
            history_days: self.history_days,
            utc_offset_min: self.utc_offset_minutes.unwrap_or(profile.utc_offset_min),
        })
    }
}

/// Simulates into `out`, returning the summary and the seconds it took.
pub fn generate(cfg: &Config, out: &Path) -> Result<(Summary, f64)> {
    let clock = Instant::now();
    let summary =
        simulate(cfg, out).with_context(|| format!("cannot simulate into {}", out.display()))?;
    Ok((summary, clock.elapsed().as_secs_f64()))
}

/// One line per kind of record, and the generation speed.
pub fn describe(summary: &Summary, seconds: f64, out: &Path) -> String {
    let kinds: Vec<String> = summary
        .written
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let events = summary.events();
    format!(
        "towerwatch simulate: {} hosts, {} subscribers, {} files in {}\n  records: {}\n  {} events ({} labelled malicious) + {} CDRs in {:.2} s: {:.0} events/s, {:.0} records/s\n",
        summary.hosts,
        summary.subscribers,
        summary.files,
        out.display(),
        kinds.join(", "),
        events,
        summary.malicious,
        summary.written.get("cdr").copied().unwrap_or(0),
        seconds,
        events as f64 / seconds.max(1e-9),
        summary.written.values().sum::<u64>() as f64 / seconds.max(1e-9),
    )
}

pub fn run(args: SimArgs) -> Result<ExitCode> {
    let out = args
        .options
        .out
        .clone()
        .context("simulate needs --out DIR")?;
    let cfg = args.options.config()?;
    let (summary, seconds) = generate(&cfg, &out)?;
    if !args.quiet {
        say!("{}", describe(&summary, seconds, &out));
    }
    Ok(ExitCode::SUCCESS)
}
