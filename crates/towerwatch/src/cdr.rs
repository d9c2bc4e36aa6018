//! `towerwatch cdr`: the CDR warehouse's audit trail → findings and the exposure report.

use crate::term::{complainln, say};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_cdr::analytics::Settings;
use towerwatch_cdr::context::{self, CdrContext};
use towerwatch_cdr::exposure::{self, Exposure};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_cdr::{outputs, reveal, run};
use towerwatch_sources::{LinePrefix, ReadOptions};

use crate::CdrArgs;

/// The key and whether to reveal: `--reveal-key FILE`, else `--key-file FILE`, else the
/// environment, else a random key for this run (pseudonyms then link only within it).
fn pseudonymizer(args: &CdrArgs) -> Result<(Pseudonymizer, &'static str)> {
    Ok(context::key(
        args.context.key_file.as_deref(),
        args.reveal_key.as_deref(),
    )?)
}

/// The settings the arguments describe.
pub fn settings(args: &CdrArgs) -> Result<Settings> {
    let s = Settings {
        training_days: args.training_days,
        max_ids: args.max_ids,
        long_range_days: args.long_range_days,
        ..Default::default()
    };
    Ok(context::with_files(
        s,
        args.context.register.as_deref(),
        args.assets.as_deref(),
    )?)
}

/// The reading options the arguments give (a forced `log_line_prefix`).
pub fn read_options(prefix: Option<&str>) -> Result<ReadOptions> {
    Ok(ReadOptions {
        log_line_prefix: prefix
            .map(LinePrefix::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--log-line-prefix: {e}"))?,
        ..ReadOptions::default()
    })
}

/// Runs the analytics and computes the exposure (raw identifiers, in memory).
pub fn analyse(args: &CdrArgs) -> Result<(run::Run, Exposure, f64)> {
    let clock = Instant::now();
    let c = &args.context;
    let context = CdrContext::load(
        c.cdr.as_deref(),
        c.cdr_timezone.as_deref(),
        c.schema.as_deref(),
    )?;
    let options = read_options(args.log_line_prefix.as_deref())?;
    let (run, x) = context
        .analyse(&args.logs, &options, settings(args)?)
        .map_err(anyhow::Error::msg)?;
    Ok((run, x, clock.elapsed().as_secs_f64()))
}

/// The cell-site table for the map of the leaked trail (empty without one); rows that are
/// no cell are counted and the first named.
pub fn cells(path: Option<&Path>) -> Result<exposure::CellTable> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    let (table, rejected) = exposure::read_cells(path).map_err(anyhow::Error::msg)?;
    if let Some(first) = rejected.first() {
        complainln!(
            "towerwatch: {} rows of the cell table rejected (first: {first})",
            rejected.len()
        );
    }
    Ok(table)
}

pub fn run(args: CdrArgs) -> Result<ExitCode> {
    let (p, identifiers) = pseudonymizer(&args)?;
    // A reveal is checked before any work: the key must be the one that made the
    // pseudonyms of the output it is offered against.
    let against = match args.reveal_key {
        Some(_) => Some(reveal::checked_against(
            args.against.as_deref(),
            args.out.as_deref(),
            &p,
        )?),
        None => None,
    };
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    // Statements wait in temporary files on large logs.
    towerwatch_spill::check_temp_dir()?;
    let (r, x, seconds) = analyse(&args)?;
    // A reveal is on the record before anything shows a real identifier.
    let reveal = match &against {
        Some(a) => Some(reveal::record_for(
            args.out.as_deref(),
            a,
            args.reason.as_deref().unwrap_or_default(),
            &p,
            x.subscribers.len(),
        )?),
        None => None,
    };
    if let Some(out) = &args.out {
        outputs::write(
            out,
            &r,
            &x,
            &p,
            &cells(args.cells.as_deref())?,
            reveal.as_ref(),
        )?;
    }
    if !args.quiet {
        say!(
            "{}",
            towerwatch_cdr::summary::summary(&r, &x, seconds, identifiers, &p)
        );
    }
    if args.strict && (r.rejected_count() > 0 || r.analytics.unanalysed_count > 0) {
        anyhow::bail!(
            "--strict: {} rejected lines, {} unparsable statements",
            r.rejected_count(),
            r.analytics.unanalysed_count
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Fails before the work when `dir` cannot take the outputs (created if missing, probed with a
/// file), so a long run does not end in "cannot write".
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let probe = dir.join(format!(".towerwatch-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("cannot write into {}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
