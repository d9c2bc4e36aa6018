//! A hunt fed a live stream: events pushed in any order within a bounded lateness are
//! released in event time behind a watermark (the newest time seen, less the lateness) to
//! the same stages a file hunt runs, one worker per source, so that the outcome is the one
//! the same events give as files.
//!
//! Two stages' state is kept for the whole stream instead, since a stream's sources are
//! all open at once and each would hold up to a few thousand items in memory: the linker
//! (its outcome does not depend on which linker took which event: nodes are linked in the
//! order of their keys, which differ for every record of every source) and the detections
//! held for the end (kept by source name, then in the order found: the order the sources'
//! held detections are merged in).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::SignedDuration;
use towerwatch_event::{Detection, Event, OrderKey};
use towerwatch_sources::InputReport;

use crate::builder::Worker;
use crate::held::{HeldDetection, HELD_IN_MEMORY};
use crate::stages::{Linker, Stage};
use crate::{DetectionSink, Hunt, HuntError, HuntOutcome, Judged, Summary};

/// A live feed into a [`Hunt`]; [`finish`](Self::finish) ends it.
///
/// Memory: the events of one lateness window wait (ordered) in memory; the stages hold what
/// they hold in a file hunt (bounded, with temporary files).
pub struct HuntStream<'h> {
    hunt: &'h Hunt,
    lateness: i64,
    /// Events waiting for the watermark: by time, then by record (then arrival, so a
    /// redelivered event is not lost here).
    waiting: BTreeMap<(i64, OrderKey, u64), Item>,
    arrivals: u64,
    newest: Option<i64>,
    /// One worker per source, and the source as read so far.
    sources: BTreeMap<Arc<str>, (Worker<'h>, InputReport)>,
    /// Every source's events, for the stories (the sources' workers have no linker).
    linker: Option<Linker>,
    /// Every source's detections held for the end, by (source, order found).
    held: HeldBySource,
    late: u64,
    live: bool,
    detections_only: bool,
}

/// What waits for the watermark: an event, or one judged by a worker elsewhere.
enum Item {
    Event(Event),
    Judged(Box<Judged>),
}

impl Item {
    fn source(&self) -> &str {
        match self {
            Item::Event(e) => &e.origin.source,
            Item::Judged(j) => &j.source,
        }
    }

    fn time(&self) -> Option<jiff::Timestamp> {
        match self {
            Item::Event(e) => e.timestamp,
            Item::Judged(j) => j.time,
        }
    }
}

impl Hunt {
    /// A live feed: events may arrive up to `lateness` after newer ones without changing
    /// the outcome.
    pub fn stream(&self, lateness: SignedDuration) -> HuntStream<'_> {
        HuntStream {
            hunt: self,
            lateness: lateness.as_micros().clamp(0, i64::MAX as i128) as i64,
            waiting: BTreeMap::new(),
            arrivals: 0,
            newest: None,
            sources: BTreeMap::new(),
            linker: self.stages().linker,
            held: HeldBySource::default(),
            late: 0,
            live: false,
            detections_only: false,
        }
    }
}

impl<'h> HuntStream<'h> {
    /// Also keep each detection as its event passes the watermark, for
    /// [`take_detections`](Self::take_detections) (before the routine's verdict, which
    /// needs all the evidence).
    pub fn with_live_detections(mut self) -> Self {
        self.live = true;
        self
    }

    /// A feed that never ends (a live service): only its live detections are wanted, so
    /// nothing is kept for the end (no held detections, no stories); memory and temporary
    /// files stay flat however long it runs. [`finish`](Self::finish) then concludes with
    /// no detections and no operations.
    pub fn detections_only(mut self) -> Self {
        self.live = true;
        self.detections_only = true;
        self.linker = None;
        self
    }

    /// Takes one event. An event without a time, or older than the watermark, goes to the
    /// stages at once (a late one is counted).
    pub fn push(&mut self, event: Event) {
        let order = event.origin.order_key();
        self.push_item(order, Item::Event(event));
    }

    /// Takes one event judged by a worker elsewhere ([`crate::Judge`]), as [`push`](Self::push)
    /// takes an event: the stream then runs only the stages' absorbing halves.
    pub fn push_judged(&mut self, judged: Judged) {
        let order = judged.order_key();
        self.push_item(order, Item::Judged(Box::new(judged)));
    }

    fn push_item(&mut self, order: OrderKey, item: Item) {
        let Some(t) = item.time().map(|t| t.as_microsecond()) else {
            self.release(item);
            return;
        };
        if self.watermark().is_some_and(|w| t < w) {
            self.late += 1;
            self.release(item);
            return;
        }
        self.arrivals += 1;
        self.waiting.insert((t, order, self.arrivals), item);
        if self.newest.is_none_or(|n| t > n) {
            self.newest = Some(t);
            let watermark = t.saturating_sub(self.lateness);
            while let Some(entry) = self.waiting.first_entry() {
                if entry.key().0 >= watermark {
                    break;
                }
                let item = entry.remove();
                self.release(item);
            }
        }
    }

    /// Events older than this (microseconds since the epoch) have all arrived.
    pub fn watermark(&self) -> Option<i64> {
        self.newest.map(|n| n.saturating_sub(self.lateness))
    }

    /// Events that came later than the lateness allows (taken all the same).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Events waiting for the watermark.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Detections of the events released since the last call (with
    /// [`with_live_detections`](Self::with_live_detections); else none).
    pub fn take_detections(&mut self) -> Vec<Detection> {
        let mut out = Vec::new();
        for (w, _) in self.sources.values_mut() {
            out.append(&mut w.stages.detections.take_live());
        }
        out
    }

    fn release(&mut self, item: Item) {
        let hunt = self.hunt;
        let (live, only) = (self.live, self.detections_only);
        let source = item.source();
        if !self.sources.contains_key(source) {
            let source: Arc<str> = source.into();
            self.sources.insert(source.clone(), {
                let mut w = hunt.worker();
                w.stages.linker = None;
                if only {
                    w.stages.correlations.switch_off();
                    w.stages.detections.live_only();
                } else if live {
                    w.stages.detections.keep_live();
                }
                (w, InputReport::new(source))
            });
        }
        let (linker, held) = (&mut self.linker, &mut self.held);
        let (worker, report) = self
            .sources
            .get_mut(item.source())
            .expect("the source was just added");
        report.events += 1;
        if let Some(t) = item.time() {
            report.first = Some(report.first.map_or(t, |f| f.min(t)));
            report.last = Some(report.last.map_or(t, |l| l.max(t)));
        }
        let mut facts = match item {
            Item::Event(event) => hunt.judged(&mut worker.scratch, event, |m| {
                linker.observe(m);
                worker.stages.extract(m)
            }),
            Item::Judged(j) => {
                let mut facts = j.facts;
                linker.absorb(facts.take_linker());
                facts
            }
        };
        held.push(&report.source, facts.take_held());
        worker.stages.absorb(facts);
    }

    /// Releases every waiting event and concludes as a file hunt does: the sources merged
    /// in the order of their names, detections to `sink`.
    pub fn finish(mut self, sink: &mut dyn DetectionSink) -> Result<HuntOutcome, HuntError> {
        while let Some((_, item)) = self.waiting.pop_first() {
            self.release(item);
        }
        towerwatch_spill::check_temp_dir()?;
        let mut all = self.hunt.stages();
        let mut summary = Summary::default();
        for (_, (worker, report)) in self.sources {
            all.merge(worker.stages);
            summary.inputs.push(report);
        }
        all.linker = self.linker;
        let HeldBySource {
            mut sorter, error, ..
        } = self.held;
        if let Some(e) = error {
            return Err(e.into());
        }
        for d in sorter.sorted()? {
            all.detections.absorb(vec![d?.1]);
        }
        // Its temporary files are not kept through the conclusion beside the copy.
        drop(sorter);
        let mut outcome = self.hunt.conclude(all, summary, sink)?;
        outcome.late = self.late;
        Ok(outcome)
    }
}

/// Detections held for the end, by source name and then in the order found: on disk past
/// a few thousand, whatever the number of sources.
struct HeldBySource {
    sorter: towerwatch_spill::Sorter<(Arc<str>, u64), HeldDetection>,
    found: u64,
    error: Option<towerwatch_spill::SpillError>,
}

impl Default for HeldBySource {
    fn default() -> Self {
        HeldBySource {
            sorter: towerwatch_spill::Sorter::new(4 * HELD_IN_MEMORY),
            found: 0,
            error: None,
        }
    }
}

impl HeldBySource {
    fn push(&mut self, source: &Arc<str>, detections: Vec<HeldDetection>) {
        // After a failed temporary file the outcome is that error: nothing more is held
        // (a sorter that cannot spill would keep everything in memory).
        if self.error.is_some() {
            return;
        }
        for d in detections {
            self.found += 1;
            // A failed temporary file is kept as the error it is and said at the end.
            if let Err(e) = self.sorter.push((source.clone(), self.found), d) {
                self.error = Some(e);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::held::Tag;

    fn held(source: &str, i: u64) -> HeldDetection {
        HeldDetection {
            tag: Tag {
                rule: 0,
                actor: Default::default(),
            },
            level: towerwatch_event::Level::High,
            computer: None,
            timestamp: None,
            source: source.into(),
            record_id: Some(i),
            line: None,
            json: format!("{{\"record\":{i}}}"),
        }
    }

    #[test]
    fn held_detections_come_back_by_source_name_then_as_found_and_wait_on_disk_past_the_cap() {
        let mut h = HeldBySource::default();
        // Many sources, their detections interleaved as a stream releases them.
        let names: Vec<Arc<str>> = (0..300).rev().map(|s| format!("s{s:03}").into()).collect();
        let per_source = 20u64;
        for i in 0..per_source {
            for name in &names {
                h.push(name, vec![held(name, i)]);
            }
        }
        assert!(
            h.sorter.spilled() > 0,
            "past the cap, detections wait on disk"
        );
        let back: Vec<(String, u64)> = h
            .sorter
            .sorted()
            .unwrap()
            .map(|r| {
                let d = r.unwrap().1;
                (d.source, d.record_id.unwrap())
            })
            .collect();
        let mut expected: Vec<(String, u64)> = names
            .iter()
            .flat_map(|n| (0..per_source).map(move |i| (n.to_string(), i)))
            .collect();
        expected.sort();
        assert_eq!(back, expected);
    }
}
