//! Running a hunt over evidence files, and the step both files and streams end with: the
//! stages' products joined into detections, operations and the exposure.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use towerwatch_correlate::Options;
use towerwatch_sigma::Level;
use towerwatch_sources::Input;

use crate::pipeline::{self, Progress};
use crate::stages::{self, database, Stage, Stages};
use crate::{DetectionSink, Hunt, HuntError, HuntOutcome, Summary};

impl Hunt {
    /// Reads `inputs` on the worker threads (results merged in input order), writes the
    /// detections to `sink` in input order, and links the operations. `progress` is told
    /// each input's bytes once it is read.
    pub fn run(
        &self,
        inputs: &[Input],
        progress: Option<Progress<'_>>,
        sink: &mut dyn DetectionSink,
    ) -> Result<HuntOutcome, HuntError> {
        // Stories, statements and detections wait in temporary files on large evidence.
        towerwatch_spill::check_temp_dir()?;
        let mut all = self.stages();
        let mut summary = Summary::default();
        // Inputs are hashed on a thread of their own: it shares the cores while the inputs
        // are read and uses the one that linking, mostly on one thread, leaves idle.
        let reading = pipeline::Options {
            hash: false,
            ..self.pipeline.clone()
        };
        std::thread::scope(|scope| {
            let cancel = self.pipeline.read.cancel.clone();
            let hashes = self.pipeline.hash.then(|| {
                scope.spawn(move || {
                    let stopped = || cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst));
                    inputs
                        .iter()
                        .map_while(|i| (!stopped()).then(|| pipeline::sha256_file(i)))
                        .collect()
                })
            });
            pipeline::run(
                inputs,
                &reading,
                progress,
                |_, _| self.worker(),
                |w, event| w.take(self, event),
                |done| {
                    all.merge(done.local.stages);
                    summary.keep_errors(done.errors);
                    summary.inputs.push(done.report);
                    Ok::<(), HuntError>(())
                },
            )?;
            let mut outcome = self.conclude(all, summary, sink)?;
            if let Some(h) = hashes {
                let mut sha256: Vec<Option<String>> =
                    h.join().expect("hashing a file does not panic");
                // An interrupted run lists only the inputs it read (and may not have hashed
                // them all).
                sha256.resize(outcome.summary.inputs.len(), None);
                outcome.sha256 = sha256;
            }
            Ok(outcome)
        })
    }

    /// Everything read: the joins, correlations and the database audit give their
    /// detections, the linker builds the operations, the held detections get the routine's
    /// verdict and go to `sink` with the others after them.
    pub(crate) fn conclude(
        &self,
        stages: Stages<'_>,
        mut summary: Summary,
        sink: &mut dyn DetectionSink,
    ) -> Result<HuntOutcome, HuntError> {
        summary.caps = stages.caps();
        let coverage = stages.coverage.finish();
        let findings = stages.webshell.finish();
        let routine = stages.routine.finish();
        let collected = stages.correlations.finish();
        let held = stages.detections.finish();
        let correlator = stages.linker.finish().unwrap_or_default();
        let (fired, correlation_dropped) = self.feeds.finish(collected.hits);
        summary.correlation_untimed = collected.untimed;
        if let Some(cap) = summary
            .caps
            .iter_mut()
            .find(|c| c.stage == stages::CORRELATIONS_STAGE)
        {
            cap.dropped = correlation_dropped;
        }
        // The CDR store's audit trail, analysed in time order now that all of it is read.
        let db = database::analyse(stages.database.finish(), self.settings.clone(), &self.cdr)?;
        let clock = Instant::now();
        let catalog = self.catalog();
        let mut extra = Vec::new();
        for f in &fired {
            for p in &f.places {
                extra.push((p.clone(), catalog.first_correlation + f.correlation as u32));
            }
        }
        for f in &db.findings {
            let k = towerwatch_cdr::analytics::Rule::ALL
                .iter()
                .position(|r| *r == f.rule)
                .expect("every rule is listed") as u32;
            extra.push((database::place(f), catalog.first_db_rule + k));
        }
        let mut joined = Vec::new();
        for f in &findings {
            extra.push((f.child.place.clone(), catalog.webshell));
            extra.push((f.request.place.clone(), catalog.webshell));
            joined.push((f.request.place.clone(), f.child.place.clone()));
        }
        let analysis = correlator.finish_with(
            &extra,
            &joined,
            &catalog.rules,
            &self.assets,
            &Options::default(),
            Some(&routine),
        )?;
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
        held.drain(|mut h| {
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
                if h.level > Level::Low {
                    h.level = Level::Low;
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
            sink.held(&h)
        })?;
        for d in stages::webshell_detections(&findings) {
            summary.add_correlated(&d);
            sink.detection(&d)?;
        }
        for f in &fired {
            let d = self.feeds.detection(f);
            summary.add_firing(&d);
            sink.detection(&d)?;
        }
        for f in &db.findings {
            let d = database::detection(f, &self.pseudonyms);
            summary.add_correlated(&d);
            sink.detection(&d)?;
        }
        summary.routine_demoted = routine_demoted;
        let linking_seconds = clock.elapsed().as_secs_f64();
        let exposure = match (&db.analytics, db.findings.is_empty()) {
            (Some(an), false) => {
                let x = database::exposures(&db.findings, &analysis, an.schema(), &self.cdr);
                let p = &self.pseudonyms;
                Some(towerwatch_report::ReportExposure {
                    identifiers: self.shown.clone(),
                    key_fingerprint: p.fingerprint(),
                    total: database::view(&x.total, p),
                    by_operation: x
                        .by_operation
                        .iter()
                        .map(|(k, v)| (k.clone(), database::view(v, p)))
                        .collect(),
                    by_wave: x
                        .by_wave
                        .iter()
                        .map(|(k, v)| (*k, database::view(v, p)))
                        .collect(),
                })
            }
            _ => None,
        };
        Ok(HuntOutcome {
            analysis,
            summary,
            sha256: Vec::new(),
            exposure,
            database: crate::Database {
                statements: db.statements,
                analytics: db.analytics,
            },
            coverage,
            linking_seconds,
            late: 0,
        })
    }
}
