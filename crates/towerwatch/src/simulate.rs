//! `towerwatch simulate`: a simulated operator with a Soft Cell campaign, into a directory.

use crate::term::say;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_sim::{clock, simulate, Config};

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
pub fn run(args: SimArgs) -> Result<ExitCode> {
    let out = args
        .options
        .out
        .clone()
        .context("simulate needs --out DIR")?;
    let cfg = args.options.config()?;
    let clock = Instant::now();
    let summary =
        simulate(&cfg, &out).with_context(|| format!("cannot simulate into {}", out.display()))?;
    if !args.quiet {
        say!("{}", summary.describe(clock.elapsed().as_secs_f64(), &out));
    }
    Ok(ExitCode::SUCCESS)
}
