//! `towerwatch dump`: the normalized events as JSON Lines, or parse-and-count only.

use crate::term::{complain, complainln};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_sources::{discover, read_input, ReadOptions};

use crate::{DumpArgs, DumpFormat};
use towerwatch_hunt::pipeline;
use towerwatch_hunt::summary::{inputs_table, skipped_note, strict_failure, Summary};

pub fn run(args: DumpArgs) -> Result<ExitCode> {
    // Inputs named on the command line (not found in a folder): for --strict.
    let named = |r: &towerwatch_sources::InputReport| {
        args.paths
            .iter()
            .any(|p| p.as_os_str() == std::ffi::OsStr::new(&*r.source))
    };
    let clock = Instant::now();
    let (inputs, problems) = discover(&args.paths);
    if inputs.is_empty() && !problems.is_empty() {
        anyhow::bail!("{}", problems[0]);
    }
    let mut summary = Summary::default();
    summary.errors.extend(problems);
    let mut failure = None;
    match args.format {
        DumpFormat::None => {
            let opts = pipeline::Options {
                threads: args.run.threads,
                strict: args.run.strict,
                hash: false,
                read: args.layout.read_options()?,
            };
            let bar = crate::term::progress_bar(!args.run.quiet, &inputs);
            pipeline::run(
                &inputs,
                &opts,
                Some(&|n| bar.inc(n)),
                |_, _| (),
                |_, _event| {},
                |done| {
                    summary.keep_errors(done.errors);
                    if failure.is_none() && args.run.strict {
                        failure = strict_failure(&done.report, named(&done.report));
                    }
                    summary.inputs.push(done.report);
                    Ok::<(), anyhow::Error>(())
                },
            )?;
            bar.finish_and_clear();
        }
        DumpFormat::Jsonl => {
            // Inputs one after another (the EVTX parser still uses every core inside a
            // file), so the output is in input order with bounded memory.
            let mut out: Box<dyn Write> = match &args.output {
                Some(p) => Box::new(BufWriter::new(
                    File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let opts = ReadOptions {
                strict: args.run.strict,
                evtx_threads: args.run.threads.unwrap_or(0),
                ..args.layout.read_options()?
            };
            for input in &inputs {
                let mut write_err = None;
                let report = read_input(input, &opts, &mut |item| match item {
                    Ok(event) => {
                        if write_err.is_none() {
                            let r = serde_json::to_writer(&mut out, &event.dump_json())
                                .map_err(anyhow::Error::from)
                                .and_then(|_| out.write_all(b"\n").map_err(Into::into));
                            write_err = r.err();
                        }
                    }
                    Err(e) => summary.keep_errors([e]),
                });
                if let Some(e) = write_err {
                    return Err(e.context("cannot write output"));
                }
                if failure.is_none() && args.run.strict {
                    failure = strict_failure(&report, named(&report));
                }
                summary.inputs.push(report);
                if failure.is_some() {
                    break;
                }
            }
            out.flush()?;
        }
    }
    if !args.run.quiet {
        let elapsed = clock.elapsed().as_secs_f64();
        let events = summary.events();
        complainln!(
            "towerwatch dump: {} inputs, {} events ({} rejected), {:.2} s, {:.0} events/s",
            summary.inputs.len(),
            events,
            summary.rejected(),
            elapsed,
            events as f64 / elapsed.max(1e-9)
        );
        complain!("{}", inputs_table(&summary.inputs));
        complain!("{}", skipped_note(&summary.inputs));
        for e in &summary.errors {
            complainln!("  {e}");
        }
    }
    if let Some(f) = failure {
        anyhow::bail!("--strict: {f}");
    }
    Ok(ExitCode::SUCCESS)
}
