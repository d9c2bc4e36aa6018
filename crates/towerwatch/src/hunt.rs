//! `towerwatch hunt`: sources → compiled engine → detections, summary, manifest.

use crate::term::{complain, complainln};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_correlate::routine::{actor_of, Routine};
use towerwatch_correlate::{Correlator, RuleInfo, WebShellJoin};
use towerwatch_detect::{Engine, Scratch};
use towerwatch_event::Event;
use towerwatch_sigma::correlation::{Feeds, Pending};
use towerwatch_sigma::{Rule, RuleError};
use towerwatch_sources::discover;

use crate::dbstage;
use crate::held::{Held, HeldDetection, Tag, HELD_IN_MEMORY};
use crate::output::{self, Detection, DetectionWriter, Summary};
use crate::pipeline;
use crate::ruleset;
use crate::{HuntArgs, HuntFormat};

/// The version of the EVTX parser, for the manifest.
const EVTX_PARSER: &str = "evtx 0.15";

struct Local {
    scratch: Scratch,
    db: dbstage::Collected,
    join: WebShellJoin,
    correlator: Correlator,
    detections: Held,
    correlation_hits: Vec<Pending>,
    untimed: u64,
    coverage: Option<Seen>,
    routine: Routine,
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
    let mut refused: Vec<RuleError> = loaded.report.refused.clone();
    let total_loaded = loaded.report.rules.len() + loaded.report.correlations.len();
    let selected = ruleset::select(loaded.report.rules, loaded.report.correlations, &args.rules)?;
    refused.extend(selected.refused);
    // Rules the user gave that cannot run are named, not just counted (the embedded set's few
    // refusals are known: `towerwatch rules check` lists them).
    if loaded.origin != "embedded" && !refused.is_empty() {
        for e in &refused {
            complainln!(
                "towerwatch: rule refused: {}: {}",
                e.path,
                towerwatch_report::one_line(&e.reason)
            );
        }
        if args.run.strict {
            anyhow::bail!("--strict: {} rules refused", refused.len());
        }
    }
    let silent = selected.silent;
    let correlations = Feeds::new(
        &selected.rules,
        selected.correlations,
        selected.members,
        selected.correlation_silent,
    );
    let engine = Engine::new(selected.rules);
    let assets = match &args.assets {
        Some(p) => towerwatch_cdr::run::read_asset_rows(p)
            .map_err(anyhow::Error::msg)?
            .into_iter()
            .map(|a| towerwatch_correlate::Asset {
                host: a.host,
                ip: a.ip,
                role: a.role,
            })
            .collect(),
        None => Vec::new(),
    };
    // A database log names no host; the inventory's one CDR database is its host.
    let db_hosts: Vec<&str> = assets
        .iter()
        .filter(|a: &&towerwatch_correlate::Asset| a.role == "cdr_database")
        .map(|a| a.host.as_str())
        .collect();
    let db_host: Option<Box<str>> = (db_hosts.len() == 1).then(|| db_hosts[0].into());
    let cdr_context = crate::cdr::CdrContext::load(&args.context)?;
    let db_settings = crate::cdr::hunt_settings(&args.context, args.assets.as_deref())?;
    let (pseudonyms, identifiers) = crate::cdr::key(args.context.key_file.as_deref(), None)?;
    // Where the results go is checked before the work, not after it.
    if let Some(dir) = &args.report {
        crate::cdr::check_writable(dir)?;
    }
    // Stories, statements and detections wait in temporary files on large evidence.
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

    let format = output_format(args.format, args.output.as_deref());
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

    let mut summary = Summary::default();
    for p in &problems {
        summary.errors.push(p.clone());
    }
    let mut seen = Seen::default();
    let mut join = WebShellJoin::default();
    let mut correlator = Correlator::default();
    if args.reference || args.in_memory_linker {
        correlator = correlator.reference();
    }
    let mut correlation_hits: Vec<Pending> = Vec::new();
    let mut db = dbstage::Collected::default();
    let mut routine = Routine::default();
    let mut all_detections = Held::new(HELD_IN_MEMORY);
    let mut untimed = 0u64;
    let opts = pipeline::Options {
        threads: args.run.threads,
        strict: args.run.strict,
        hash: args.output.is_some(),
        progress: !args.run.quiet,
        read: towerwatch_sources::ReadOptions {
            cancel: Some(crate::interrupt::flag()),
            ..args.layout.read_options()?
        },
    };
    let mut manifest_inputs = Vec::new();
    let mut strict_failure = None;
    let reference = args.reference;
    let with_event = format != HuntFormat::Table;
    let correlate = !args.no_operations;
    pipeline::run(
        &inputs,
        &opts,
        |index, _| Local {
            scratch: engine.scratch(),
            db: dbstage::Collected::for_input(index as u32),
            join: WebShellJoin::default(),
            correlator: Correlator::for_input(index as u32),
            detections: Held::new(HELD_IN_MEMORY),
            correlation_hits: Vec::new(),
            untimed: 0,
            coverage: args.coverage.then(Seen::default),
            routine: Routine::default(),
        },
        |local, mut event| {
            if towerwatch_cdr::record::is_database(&event) {
                if event.computer.is_none() {
                    event.computer = db_host.clone();
                }
                local.db.observe(&event);
            }
            if let Some(c) = &mut local.coverage {
                c.observe(&event);
            }
            local.join.observe(&event);
            let matched: Vec<usize> = if reference {
                engine.reference_matches(&event)
            } else {
                engine.matches(&event, &mut local.scratch).to_vec()
            };
            // Silent rules feed correlations only; they seed no operation on their own.
            let hits: Vec<u32> = matched
                .iter()
                .filter(|&&i| !silent[i])
                .map(|&i| i as u32)
                .collect();
            if correlate {
                local.correlator.observe(&event, &hits);
            }
            let actor = (!hits.is_empty()).then(|| actor_of(&event));
            for idx in matched {
                correlations.observe(idx, &event, &mut local.correlation_hits, &mut local.untimed);
                if !silent[idx] {
                    let actor = actor.clone().expect("a detection has an actor");
                    if let Some(t) = event.timestamp {
                        local.routine.observe(
                            idx as u32,
                            actor.clone(),
                            t.as_microsecond(),
                            &event,
                        );
                    }
                    let d = engine.rules()[idx].detection(&event, with_event);
                    let tag = Tag {
                        rule: idx,
                        actor: actor.key(),
                    };
                    local
                        .detections
                        .push(HeldDetection::new(tag, &d, with_event));
                }
            }
        },
        |done| {
            // Every detection waits for the routine's verdict, given once all is read.
            done.local
                .detections
                .drain(|d| {
                    all_detections.push(d);
                    Ok(())
                })
                .with_context(|| format!("{}", done.report.source))?;
            routine.merge(done.local.routine);
            if let Some(c) = done.local.coverage {
                seen.merge(c);
            }
            correlation_hits.extend(done.local.correlation_hits);
            db.merge(done.local.db);
            untimed += done.local.untimed;
            join.merge(done.local.join);
            correlator.merge(done.local.correlator);
            summary.keep_errors(done.errors);
            if args.run.strict && strict_failure.is_none() {
                let named = args
                    .paths
                    .iter()
                    .any(|p| p.as_os_str() == std::ffi::OsStr::new(&*done.report.source));
                strict_failure = output::strict_failure(&done.report, named);
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
    summary.web_children_dropped = join.children_dropped;
    summary.routine_dropped = routine.dropped;
    let findings = join.finish();
    let (fired, correlation_dropped) = correlations.finish(correlation_hits);
    summary.correlation_untimed = untimed;
    summary.correlation_dropped = correlation_dropped;
    // The CDR store's audit trail, analysed in time order now that all of it is read.
    let db_result = dbstage::analyse(db, db_settings, &cdr_context)
        .context("cannot hold the database statements for the analysis")?;
    let correlation_clock = Instant::now();
    let mut catalog = rule_catalog(engine.rules());
    let join_rule = catalog.len() as u32;
    catalog.push(RuleInfo {
        id: WEBSHELL_RULE_ID.into(),
        title: WEBSHELL_RULE_TITLE.into(),
        level: 4,
        tags: WEBSHELL_TAGS.map(String::from).to_vec(),
    });
    let first_correlation = catalog.len() as u32;
    catalog.extend(
        correlations
            .correlations()
            .iter()
            .map(|c| RuleInfo::new(&c.id, &c.title, c.level, &c.tags)),
    );
    let first_db_rule = catalog.len() as u32;
    catalog.extend(dbstage::catalog());
    let mut extra = Vec::new();
    for f in &fired {
        for p in &f.places {
            extra.push((p.clone(), first_correlation + f.correlation as u32));
        }
    }
    for f in &db_result.findings {
        let k = towerwatch_cdr::analytics::Rule::ALL
            .iter()
            .position(|r| *r == f.rule)
            .expect("every rule is listed") as u32;
        extra.push((dbstage::place(f), first_db_rule + k));
    }
    let mut joined = Vec::new();
    for f in &findings {
        extra.push((f.child.place.clone(), join_rule));
        extra.push((f.request.place.clone(), join_rule));
        joined.push((f.request.place.clone(), f.child.place.clone()));
    }
    let analysis = correlator
        .finish_with(
            &extra,
            &joined,
            &catalog,
            &assets,
            &towerwatch_correlate::Options::default(),
            Some(&routine),
        )
        .context("cannot link the events into stories")?;
    // Detections, in input order: routine ones below medium with the reason, unless their
    // operation stands without them; then the joins, correlations and database findings.
    // A detection by its place (source, record id, line) and rule.
    type At = (String, Option<u64>, Option<u64>, u32);
    let restored: HashSet<At> = analysis
        .restored
        .iter()
        .map(|(e, r)| (e.source.clone(), e.record_id, e.line, *r))
        .collect();
    let context: HashMap<At, &str> = analysis
        .context
        .iter()
        .map(|(e, r, why)| ((e.source.clone(), e.record_id, e.line, *r), why.as_str()))
        .collect();
    let mut routine_demoted = 0u64;
    all_detections.drain(|mut h| {
        let tag = h.tag;
        let time = h
            .timestamp
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let mut why = None;
        if let Some(t) = time {
            let place = match (h.record_id, h.line) {
                (_, Some(l)) => (h.source.clone(), None, Some(l)),
                (r, None) => (h.source.clone(), r, None),
            };
            let key = (place.0, place.1, place.2, tag.rule as u32);
            if !restored.contains(&key) {
                why = routine
                    .verdict_of(tag.rule as u32, tag.actor, t.as_microsecond())
                    .or_else(|| context.get(&key).map(|w| w.to_string()));
            }
        }
        // The estate's routine: below medium, with the reason (the rare detection that is
        // read back and written again).
        if let Some(why) = why {
            if h.level > towerwatch_sigma::Level::Low {
                h.level = towerwatch_sigma::Level::Low;
                routine_demoted += 1;
            }
            if !h.json.is_empty() {
                let mut d = h.detection()?;
                d.level = h.level;
                d.event
                    .insert("routine".into(), serde_json::Value::String(why));
                h.json = serde_json::to_string(&d)?;
            }
        }
        summary.add(tag.rule, h.level, h.computer.as_deref());
        writer.write_held(&h)
    })?;
    for d in webshell_detections(&findings) {
        summary.add_correlated(&d);
        writer.write(&d)?;
    }
    for f in &fired {
        let d = correlations.detection(f);
        summary.add_firing(&d);
        writer.write(&d)?;
    }
    for f in &db_result.findings {
        let d = dbstage::detection(f, &pseudonyms);
        summary.add_correlated(&d);
        writer.write(&d)?;
    }
    writer.finish()?;
    summary.routine_demoted = routine_demoted;
    let correlation_s = correlation_clock.elapsed().as_secs_f64();
    let exposure = match (&db_result.analytics, db_result.findings.is_empty()) {
        (Some(an), false) => {
            let x = dbstage::exposures(&db_result.findings, &analysis, an.schema(), &cdr_context);
            Some(towerwatch_report::ReportExposure {
                identifiers: identifiers.to_string(),
                key_fingerprint: pseudonyms.fingerprint(),
                total: dbstage::view(&x.total, &pseudonyms),
                by_operation: x
                    .by_operation
                    .iter()
                    .map(|(k, v)| (k.clone(), dbstage::view(v, &pseudonyms)))
                    .collect(),
                by_wave: x
                    .by_wave
                    .iter()
                    .map(|(k, v)| (*k, dbstage::view(v, &pseudonyms)))
                    .collect(),
            })
        }
        _ => None,
    };
    if let Some(dir) = &args.report {
        let meta = towerwatch_report::Meta {
            title: format!("towerwatch hunt of {}", describe_paths(&args.paths)),
            events: summary.events(),
            detections: summary.detections,
            inputs: summary.inputs.len(),
            exposure: exposure.clone(),
        };
        towerwatch_report::write_all(dir, &analysis, &meta)?;
    }
    let elapsed = clock.elapsed().as_secs_f64();
    let events = summary.events();

    let interrupted = crate::interrupt::interrupted();
    if let (Some(out), false) = (&args.output, format == HuntFormat::Table) {
        std::fs::rename(partial(out), out)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if let Some(out) = &args.output {
        let manifest = serde_json::json!({
            "complete": !interrupted,
            "interrupted": interrupted.then_some("stopped by a signal: the inputs after the last one listed were not read, and the last may be partial"),
            "tool": "towerwatch",
            "version": env!("CARGO_PKG_VERSION"),
            "parser": EVTX_PARSER,
            "command": std::env::args().collect::<Vec<_>>(),
            "started": started.to_string(),
            "finished": jiff::Timestamp::now().to_string(),
            "peak_rss_bytes": output::peak_rss_bytes(),
            "rules": {
                "origin": loaded.origin,
                "sha256": loaded.digest,
                "loaded": total_loaded,
                "selected": engine.rules().len(),
                "correlations": correlations.len(),
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

    // Quiet keeps the terminal still; a table asked for in a file is still written.
    if !args.run.quiet || (format == HuntFormat::Table && args.output.is_some()) {
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
        // The header, then the operations, then the rule hits behind them.
        let mut text = format!("{header}\n\n");
        text.push_str(&towerwatch_report::terminal_with(
            &analysis,
            exposure.as_ref(),
            correlation_s,
        ));
        if db_result.statements > 0 {
            if let Some(an) = &db_result.analytics {
                text.push_str(&format!(
                    "Database audit: {} statements analysed ({} unparsable); schema used:\n{}\n",
                    an.statements,
                    an.unanalysed_count,
                    an.schema().describe().trim_end()
                ));
            }
        }
        text.push_str(&output::render(&summary, engine.rules(), ""));
        if args.coverage {
            text.push_str(&coverage(engine.rules(), &seen, &refused));
        }
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
    if let Some(f) = strict_failure {
        anyhow::bail!("--strict: {f}");
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

fn describe_paths(paths: &[std::path::PathBuf]) -> String {
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

const WEBSHELL_RULE_ID: &str = "towerwatch-webshell-join";
const WEBSHELL_RULE_TITLE: &str =
    "Web shell: a POST to a rare page followed by a web-server child process";
const WEBSHELL_TAGS: [&str; 4] = [
    "attack.persistence",
    "attack.t1505.003",
    "attack.execution",
    "attack.t1059.003",
];

/// What the correlator needs of each rule, in engine order.
fn rule_catalog(rules: &[Rule]) -> Vec<RuleInfo> {
    rules
        .iter()
        .map(|r| RuleInfo::new(&r.id, &r.title, r.level, &r.tags))
        .collect()
}

/// The web-shell join's findings as detections: one on the process, one on each request.
fn webshell_detections(findings: &[towerwatch_correlate::Finding]) -> Vec<Detection> {
    let mut out = Vec::new();
    let mut requests = HashSet::new();
    let detection = |t: jiff::Timestamp,
                     computer: &str,
                     channel: &str,
                     place: &towerwatch_correlate::Place,
                     f: &towerwatch_correlate::Finding| Detection {
        timestamp: Some(t.to_string()),
        rule_id: WEBSHELL_RULE_ID.into(),
        rule_title: WEBSHELL_RULE_TITLE.into(),
        level: towerwatch_sigma::Level::Critical,
        tags: WEBSHELL_TAGS.map(String::from).to_vec(),
        computer: Some(computer.to_string()),
        channel: Some(channel.to_string()),
        event_id: None,
        source: place.source.clone(),
        record_id: place.record_id,
        line: place.line,
        event: serde_json::json!({
            "request_time": f.request.time.to_string(),
            "server": f.request.server,
            "uri": f.request.uri,
            "client": f.request.client,
            "request_source": f.request.place.source,
            "request_line": f.request.place.line,
            "process_time": f.child.time.to_string(),
            "host": f.child.computer,
            "parent": f.child.parent,
            "image": f.child.image,
            "command_line": f.child.command_line,
            "process_source": f.child.place.source,
            "process_record_id": f.child.place.record_id,
            "process_line": f.child.place.line,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    };
    for f in findings {
        out.push(detection(
            f.child.time,
            &f.child.computer,
            "process",
            &f.child.place,
            f,
        ));
        if requests.insert(f.request.place.clone()) {
            out.push(detection(
                f.request.time,
                &f.request.server,
                "webserver",
                &f.request.place,
                f,
            ));
        }
    }
    out
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

/// The format asked for, else the output file's by its extension, else a table.
fn output_format(asked: Option<HuntFormat>, output: Option<&std::path::Path>) -> HuntFormat {
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
fn partial(p: &std::path::Path) -> std::path::PathBuf {
    let mut name = p.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}
