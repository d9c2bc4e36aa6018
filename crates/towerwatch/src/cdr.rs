//! `towerwatch cdr`: the CDR warehouse's audit trail → findings and the exposure report.

use crate::term::{complainln, say};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_cdr::analytics::Settings;
use towerwatch_cdr::context::{self, CdrContext};
use towerwatch_cdr::exposure::{self, Exposure};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_cdr::{report, reveal, run};
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
    let options = read_options(args.log_line_prefix.as_deref())?;
    let c = &args.context;
    let context = CdrContext::load(
        c.cdr.as_deref(),
        c.cdr_timezone.as_deref(),
        c.schema.as_deref(),
    )?;
    let inputs = context.schema_inputs();
    let (cdr_files, extract) = (&context.cdr_files, &context.extract);
    let result =
        run::run(&args.logs, &options, settings(args)?, &inputs).map_err(anyhow::Error::msg)?;
    let x = exposure::compute(
        &result.findings,
        result.analytics.schema(),
        cdr_files,
        extract,
    );
    Ok((result, x, clock.elapsed().as_secs_f64()))
}

/// Writes the detections (with a manifest naming the logs read), exposure CSV, JSON and HTML.
pub fn write_outputs(
    out: &Path,
    r: &run::Run,
    x: &Exposure,
    p: &Pseudonymizer,
    cells: Option<&Path>,
    reveal: Option<&serde_json::Value>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let det = out.join("cdr-detections.jsonl");
    let mut w = BufWriter::new(
        File::create(&det).with_context(|| format!("cannot write {}", det.display()))?,
    );
    report::write_detections(&mut w, &r.findings, p, None)?;
    w.flush()?;
    let inputs: Vec<_> = r
        .inputs
        .iter()
        .map(|rep| serde_json::json!({"path": &*rep.source, "format": rep.format.to_string(), "records": rep.events, "rejected": rep.rejected, "detail": rep.detail, "failure": rep.failure}))
        .collect();
    std::fs::write(
        format!("{}.manifest.json", det.display()),
        serde_json::to_vec_pretty(
            &serde_json::json!({"tool": "towerwatch cdr", "version": env!("CARGO_PKG_VERSION"), "inputs": inputs, "detections": r.findings.len(), "schema": r.analytics.schema(), "extract": x.files, "key_fingerprint": p.fingerprint(), "revealed": p.reveals(), "reveal": reveal}),
        )?,
    )?;
    let cells = match cells {
        Some(c) => {
            let (table, rejected) = exposure::read_cells(c).map_err(anyhow::Error::msg)?;
            if let Some(first) = rejected.first() {
                complainln!(
                    "towerwatch: {} rows of the cell table rejected (first: {first})",
                    rejected.len()
                );
            }
            table
        }
        None => Default::default(),
    };
    let whole = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        towerwatch_report::write_whole(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    whole("exposure.csv", report::exposure_csv(x, p).as_bytes())?;
    whole(
        "exposure.json",
        &serde_json::to_vec_pretty(&report::exposure_json(x, p, &cells))?,
    )?;
    whole(
        "exposure.html",
        report::exposure_html(x, p, &cells).as_bytes(),
    )?;
    Ok(det)
}

/// Checks a reveal before any work: the key must be the one that made the pseudonyms of the
/// output it is offered against. Returns that output.
fn check_reveal(args: &CdrArgs, p: &Pseudonymizer) -> Result<Option<PathBuf>> {
    if args.reveal_key.is_none() {
        return Ok(None);
    }
    let against = match (&args.against, &args.out) {
        (Some(a), _) => a.clone(),
        (None, Some(out)) if out.join("exposure.json").is_file() => out.join("exposure.json"),
        _ => anyhow::bail!(
            "--reveal-key needs the pseudonymised output it reveals (--against FILE, or an --out directory holding one): the key is checked against it"
        ),
    };
    reveal::check_key(&against, p)?;
    Ok(Some(against))
}

/// Records the reveal beside the outputs (or beside the output it was checked against).
fn record_reveal(
    args: &CdrArgs,
    against: &Path,
    p: &Pseudonymizer,
    x: &Exposure,
) -> Result<serde_json::Value> {
    let (dir, outputs) = match &args.out {
        Some(o) => (
            o.clone(),
            [
                "cdr-detections.jsonl",
                "exposure.csv",
                "exposure.json",
                "exposure.html",
            ]
            .iter()
            .map(|f| o.join(f).display().to_string())
            .collect(),
        ),
        None => (
            against
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            vec!["terminal".into()],
        ),
    };
    let why = args.reason.as_deref().unwrap_or_default();
    let r = reveal::Reveal::new(why, p, against, outputs, x.subscribers.len());
    Ok(reveal::record(&dir, &r)?)
}

pub fn run(args: CdrArgs) -> Result<ExitCode> {
    let (p, identifiers) = pseudonymizer(&args)?;
    let against = check_reveal(&args, &p)?;
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    // Statements wait in temporary files on large logs.
    towerwatch_spill::check_temp_dir()?;
    let (r, x, seconds) = analyse(&args)?;
    // A reveal is on the record before anything shows a real identifier.
    let reveal = match &against {
        Some(a) => Some(record_reveal(&args, a, &p, &x)?),
        None => None,
    };
    if let Some(out) = &args.out {
        write_outputs(out, &r, &x, &p, args.cells.as_deref(), reveal.as_ref())?;
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
