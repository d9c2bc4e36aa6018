//! `towerwatch hunt`: arguments → the hunt library → detections, report, manifest, summary.

use crate::term::{complain, complainln};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_hunt::summary::strict_failure;
use towerwatch_hunt::{DetectionWriter, Hunt, RuleSelection};
use towerwatch_sources::discover;

use crate::{HuntArgs, HuntFormat};

/// The asset inventory (CSV host, ip, role), if given.
pub fn read_assets(path: Option<&Path>) -> Result<Vec<towerwatch_correlate::Asset>> {
    Ok(match path {
        Some(p) => towerwatch_hunt::read_assets(p)?,
        None => Vec::new(),
    })
}

/// A hunt's rules, inventory and CDR context from the arguments `hunt` and `serve` share.
/// The hunt a long-running service runs: every detection rendered with its event.
pub fn configure_setup(s: &crate::HuntSetupArgs) -> Result<towerwatch_hunt::Hunt> {
    Ok(configure(&s.rules, s.assets.as_deref(), &s.context)?
        .render_events(true)
        .build()?)
}

pub fn configure(
    rules: &crate::RuleArgs,
    assets: Option<&Path>,
    c: &crate::CdrContextArgs,
) -> Result<towerwatch_hunt::HuntBuilder> {
    let settings =
        towerwatch_cdr::context::with_files(Default::default(), c.register.as_deref(), assets)?;
    let cdr = towerwatch_cdr::context::CdrContext::load(
        c.cdr.as_deref(),
        c.cdr_timezone.as_deref(),
        c.schema.as_deref(),
    )?;
    let (pseudonyms, shown) = towerwatch_cdr::context::key(c.key_file.as_deref(), None)?;
    Ok(Hunt::builder()
        .rules(&rules.rules)
        .placeholders(rules.placeholders.clone())
        .select(RuleSelection {
            min_level: rules.min_level.parse().map_err(anyhow::Error::msg)?,
            statuses: rules.status.clone(),
        })
        .assets(read_assets(assets)?)
        .database(settings, cdr)
        .pseudonyms(pseudonyms, shown))
}

/// The hunt the arguments describe.
pub fn build(args: &HuntArgs, render_events: bool) -> Result<Hunt> {
    Ok(
        configure(&args.rules, args.assets.as_deref(), &args.context)?
            .threads(args.run.threads)
            .strict(args.run.strict)
            .hash_inputs(args.output.is_some())
            .read_options(towerwatch_sources::ReadOptions {
                cancel: Some(crate::interrupt::flag()),
                ..args.layout.read_options()?
            })
            .reference(args.reference)
            .in_memory_linker(args.in_memory_linker)
            .operations(!args.no_operations)
            .coverage(args.coverage)
            .render_events(render_events)
            .build()?,
    )
}

pub fn run(args: HuntArgs) -> Result<ExitCode> {
    let started = jiff::Timestamp::now();
    let clock = Instant::now();
    let format = output_format(args.format, args.output.as_deref());
    let hunt = build(&args, format != HuntFormat::Table)?;
    // Rules the user gave that cannot run are named, not just counted (the embedded set's few
    // refusals are known: `towerwatch rules check` lists them).
    if hunt.rules_origin() != "embedded" && !hunt.refused().is_empty() {
        for e in hunt.refused() {
            complainln!(
                "towerwatch: rule refused: {}: {}",
                e.at(),
                towerwatch_report::one_line(&e.reason)
            );
        }
        if args.run.strict {
            anyhow::bail!("--strict: {} rules refused", hunt.refused().len());
        }
    }
    // Where the results go is checked before the work, not after it.
    if let Some(dir) = &args.report {
        crate::cdr::check_writable(dir)?;
    }
    towerwatch_spill::check_temp_dir()?;
    let (inputs, problems) = discover(&args.paths);
    if inputs.is_empty() && !problems.is_empty() {
        anyhow::bail!("{}", problems[0]);
    }
    if inputs.is_empty() {
        let what = format!("no input files under {}", describe_paths(&args.paths));
        if args.run.strict {
            anyhow::bail!("--strict: {what}");
        }
        complainln!("towerwatch: {what}");
    }
    let mut writer = match (format, &args.output) {
        (HuntFormat::Table, _) => DetectionWriter::None,
        (fmt, out) => {
            // A file is written under a `.partial` name and renamed when whole: a run that
            // dies leaves nothing that looks complete.
            let sink: Box<dyn Write> = match out {
                Some(p) => Box::new(BufWriter::new(
                    File::create(partial(p))
                        .with_context(|| format!("cannot write {}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            if fmt == HuntFormat::Csv {
                DetectionWriter::csv(sink)?
            } else {
                DetectionWriter::jsonl(sink)
            }
        }
    };
    let bar = crate::term::progress_bar(!args.run.quiet, &inputs);
    let mut outcome = hunt.run(&inputs, Some(&|n| bar.inc(n)), &mut writer)?;
    bar.finish_and_clear();
    writer.finish()?;
    outcome.summary.errors.splice(0..0, problems);
    let title = format!("towerwatch hunt of {}", describe_paths(&args.paths));
    if let Some(dir) = &args.report {
        outcome.write_report(dir, &title)?;
    }
    let interrupted = crate::interrupt::interrupted();
    if let (Some(out), false) = (&args.output, format == HuntFormat::Table) {
        std::fs::rename(partial(out), out)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if let Some(out) = &args.output {
        outcome.write_manifest(&hunt, out, started, interrupted)?;
    }
    let elapsed = clock.elapsed().as_secs_f64();
    let summary = &outcome.summary;
    let events = summary.events();
    // Quiet keeps the terminal still; a table asked for in a file is still written.
    if !args.run.quiet || (format == HuntFormat::Table && args.output.is_some()) {
        let header = format!(
            "towerwatch hunt: {} inputs, {} events ({} rejected), {} rules ({} refused, {} filtered), {:.2} s, {:.0} events/s",
            summary.inputs.len(),
            events,
            summary.rejected(),
            hunt.rules().len(),
            hunt.refused().len(),
            hunt.rules_filtered(),
            elapsed,
            events as f64 / elapsed.max(1e-9)
        );
        let text = outcome.terminal(&header, &hunt);
        if format == HuntFormat::Table {
            match &args.output {
                Some(p) => std::fs::write(p, towerwatch_report::terminal_safe(&text).as_bytes())
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => crate::term::out(&text),
            }
        } else {
            complain!("{text}");
        }
    }
    if interrupted {
        complainln!("towerwatch: interrupted: the output holds what was read until then (its manifest says so)");
        return Ok(ExitCode::from(crate::interrupt::EXIT_CODE));
    }
    if args.run.strict {
        let named = |source: &str| {
            args.paths
                .iter()
                .any(|p| p.as_os_str() == std::ffi::OsStr::new(source))
        };
        if let Some(f) = summary
            .inputs
            .iter()
            .find_map(|r| strict_failure(r, named(&r.source)))
        {
            anyhow::bail!("--strict: {f}");
        }
    }
    if events == 0 && !inputs.is_empty() {
        let what = format!("no events were read from {}", describe_paths(&args.paths));
        if args.run.strict {
            anyhow::bail!("--strict: {what}");
        }
        complainln!("towerwatch: {what}");
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > 3 {
        format!("{} and {} more", shown.join(", "), paths.len() - 3)
    } else {
        shown.join(", ")
    }
}

/// The format asked for, else the output file's by its extension, else a table.
fn output_format(asked: Option<HuntFormat>, output: Option<&Path>) -> HuntFormat {
    let by_extension = output
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    asked.unwrap_or(match by_extension.as_deref() {
        Some("jsonl" | "json" | "ndjson") => HuntFormat::Jsonl,
        Some("csv") => HuntFormat::Csv,
        _ => HuntFormat::Table,
    })
}

/// Where an output file is written until it is whole.
fn partial(p: &Path) -> PathBuf {
    let mut name = p.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}
