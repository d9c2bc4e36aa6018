//! `towerwatch hunt`: sources → compiled engine → detections, summary, manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_detect::{Engine, Scratch};
use towerwatch_event::Event;
use towerwatch_sigma::{Rule, RuleError};
use towerwatch_sources::discover;

use crate::output::{self, Detection, DetectionWriter, Summary};
use crate::pipeline;
use crate::ruleset;
use crate::{HuntArgs, HuntFormat};

/// The version of the EVTX parser, for the manifest.
const EVTX_PARSER: &str = "evtx 0.15";

struct Local {
    scratch: Scratch,
    detections: Vec<(usize, Detection)>,
    coverage: Option<Seen>,
}

/// What the evidence holds, for `--coverage`: per (folded channel, event id), field names.
#[derive(Default)]
struct Seen {
    by_source: HashMap<(String, Option<u32>), HashSet<Box<str>>>,
}

impl Seen {
    fn observe(&mut self, e: &Event) {
        let key = (
            e.channel.as_deref().unwrap_or("").to_lowercase(),
            e.event_id,
        );
        let names = self.by_source.entry(key).or_default();
        for f in &e.fields {
            if !names.contains(&f.name) {
                names.insert(f.name.clone());
            }
            for alias in towerwatch_event::sigma_aliases(e.channel.as_deref(), e.event_id, &f.name)
            {
                names.insert((*alias).into());
            }
        }
    }

    fn merge(&mut self, other: Seen) {
        for (k, v) in other.by_source {
            self.by_source.entry(k).or_default().extend(v);
        }
    }
}

pub fn run(args: HuntArgs) -> Result<ExitCode> {
    let started = jiff::Timestamp::now();
    let clock = Instant::now();
    let loaded = ruleset::load(&args.rules.rules, args.rules.placeholders.as_deref())?;
    let refused: Vec<RuleError> = loaded.report.refused.clone();
    let total_loaded = loaded.report.rules.len();
    let selected = ruleset::select(loaded.report.rules, &args.rules)?;
    let engine = Engine::new(selected.rules);
    let (inputs, problems) = discover(&args.paths);
    if inputs.is_empty() && !problems.is_empty() {
        anyhow::bail!("{}", problems[0]);
    }

    let mut writer = match (args.format, &args.output) {
        (HuntFormat::Table, _) => DetectionWriter::None,
        (fmt, out) => {
            let sink: Box<dyn Write> = match out {
                Some(p) => Box::new(BufWriter::new(
                    File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
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

    let mut summary = Summary::default();
    for p in &problems {
        summary.errors.push(p.clone());
    }
    let mut seen = Seen::default();
    let opts = pipeline::Options {
        threads: args.run.threads,
        strict: args.run.strict,
        hash: args.output.is_some(),
        progress: !args.run.quiet,
    };
    let mut manifest_inputs = Vec::new();
    let mut strict_failure = None;
    let reference = args.reference;
    let with_event = args.format != HuntFormat::Table;
    pipeline::run(
        &inputs,
        &opts,
        |_| Local {
            scratch: engine.scratch(),
            detections: Vec::new(),
            coverage: args.coverage.then(Seen::default),
        },
        |local, event| {
            if let Some(c) = &mut local.coverage {
                c.observe(&event);
            }
            let matched: Vec<usize> = if reference {
                engine.reference_matches(&event)
            } else {
                engine.matches(&event, &mut local.scratch).to_vec()
            };
            for idx in matched {
                local.detections.push((
                    idx,
                    Detection::new(&engine.rules()[idx], &event, with_event),
                ));
            }
        },
        |done| {
            for (idx, d) in &done.local.detections {
                summary.add(*idx, d);
                writer.write(d)?;
            }
            if let Some(c) = done.local.coverage {
                seen.merge(c);
            }
            summary.keep_errors(done.errors);
            if args.run.strict && strict_failure.is_none() {
                strict_failure = output::strict_failure(&done.report);
            }
            manifest_inputs.push(serde_json::json!({
                "path": &*done.report.source,
                "sha256": done.sha256,
                "bytes": done.report.bytes,
                "format": done.report.format.to_string(),
                "compressed": done.report.compressed,
                "events": done.report.events,
                "rejected": done.report.rejected,
                "first": done.report.first.map(|t| t.to_string()),
                "last": done.report.last.map(|t| t.to_string()),
                "failure": done.report.failure,
            }));
            summary.inputs.push(done.report);
            Ok(())
        },
    )?;
    writer.finish()?;
    let elapsed = clock.elapsed().as_secs_f64();
    let events = summary.events();

    if let Some(out) = &args.output {
        let manifest = serde_json::json!({
            "tool": "towerwatch",
            "version": env!("CARGO_PKG_VERSION"),
            "parser": EVTX_PARSER,
            "command": std::env::args().collect::<Vec<_>>(),
            "started": started.to_string(),
            "finished": jiff::Timestamp::now().to_string(),
            "rules": {
                "origin": loaded.origin,
                "sha256": loaded.digest,
                "loaded": total_loaded,
                "selected": engine.rules().len(),
                "refused": refused.len(),
                "min_level": args.rules.min_level,
                "status": args.rules.status,
            },
            "inputs": manifest_inputs,
            "events": events,
            "rejected": summary.rejected(),
            "detections": summary.detections,
            "output": out.display().to_string(),
        });
        let path = format!("{}.manifest.json", out.display());
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
            .with_context(|| format!("cannot write {path}"))?;
    }

    if !args.run.quiet {
        let header = format!(
            "towerwatch hunt: {} inputs, {} events ({} rejected), {} rules ({} refused, {} filtered), {:.2} s, {:.0} events/s",
            summary.inputs.len(),
            events,
            summary.rejected(),
            engine.rules().len(),
            refused.len(),
            selected.below_level + selected.other_status,
            elapsed,
            events as f64 / elapsed.max(1e-9)
        );
        let mut text = output::render(&summary, engine.rules(), &header);
        if args.coverage {
            text.push_str(&coverage(engine.rules(), &seen, &refused));
        }
        if args.format == HuntFormat::Table {
            match &args.output {
                Some(p) => std::fs::write(p, &text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
        } else {
            eprint!("{text}");
        }
    }
    if let Some(f) = strict_failure {
        anyhow::bail!("--strict: {f}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Field names a rule tests (keywords excluded).
fn rule_fields(rule: &Rule) -> BTreeSet<&str> {
    rule.searches
        .iter()
        .flat_map(|s| s.alternatives.iter().flatten())
        .filter_map(|t| t.field.as_deref())
        .filter(|f| !matches!(*f, "EventID" | "Channel" | "Provider_Name"))
        .collect()
}

fn coverage(rules: &[Rule], seen: &Seen, refused: &[RuleError]) -> String {
    use std::fmt::Write as _;
    let mut cannot: BTreeMap<&'static str, Vec<&Rule>> = BTreeMap::new();
    for rule in rules {
        let admitted: Vec<&HashSet<Box<str>>> = seen
            .by_source
            .iter()
            .filter(|((ch, id), _)| rule.routes.iter().any(|r| r.admits(Some(ch), *id)))
            .map(|(_, names)| names)
            .collect();
        if admitted.is_empty() {
            cannot
                .entry("no events of its log source")
                .or_default()
                .push(rule);
            continue;
        }
        let fields = rule_fields(rule);
        if !fields.is_empty()
            && !fields
                .iter()
                .any(|f| admitted.iter().any(|names| names.contains(*f)))
        {
            cannot
                .entry("none of its fields appear in its log source's events")
                .or_default()
                .push(rule);
        }
    }
    let mut s = String::new();
    let never: usize = cannot.values().map(Vec::len).sum();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Coverage: {} of {} rules can fire on this evidence; {never} cannot:",
        rules.len() - never,
        rules.len()
    );
    for (reason, list) in &cannot {
        let _ = writeln!(s, "  {reason}: {} rules", list.len());
    }
    for (reason, list) in &cannot {
        for r in list {
            let _ = writeln!(s, "    {} ({}) — {reason}", r.title, r.path);
        }
    }
    let _ = writeln!(s, "Refused rules: {}", refused.len());
    for e in refused {
        let _ = writeln!(s, "    {}: {:?}: {}", e.path, e.kind, e.reason);
    }
    s
}
