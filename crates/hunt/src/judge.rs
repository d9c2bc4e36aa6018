//! The hunt split across machines: a [`Judge`] (a worker) runs the engine over events and
//! gives what each event gives the stages behind it, as a [`Judged`] (serialisable, small
//! next to the event); a [`crate::HuntStream`] elsewhere (the story builder) absorbs them
//! with [`push_judged`](crate::HuntStream::push_judged) and concludes as a file hunt does.
//! The stages' two halves are the ones a file hunt runs in one place, so the outcome is
//! the same.

use jiff::Timestamp;
use towerwatch_event::{Event, Locator};

use crate::builder::Worker;
use crate::stages::Facts;
use crate::Hunt;

/// One event, judged: where it was read, when it happened, and what it gives the stages.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Judged {
    pub source: String,
    pub locator: Locator,
    pub time: Option<Timestamp>,
    pub facts: Facts,
}

impl Judged {
    /// Why `hunt` cannot absorb this (it names a rule or correlation `hunt` does not have:
    /// judged with other rules, or damaged on its way), if so.
    pub fn check(&self, hunt: &Hunt) -> Result<(), String> {
        self.facts
            .check(hunt.rules().len(), hunt.correlation_feeds())
    }

    /// Its place among records of the same time (as its event's origin's).
    pub fn order_key(&self) -> towerwatch_event::OrderKey {
        towerwatch_event::order_key(&self.source, self.locator)
    }
}

/// The engine and the extracting halves of the stages, for one worker.
pub struct Judge<'h> {
    hunt: &'h Hunt,
    worker: Worker<'h>,
}

impl Hunt {
    /// A worker's judge: events in, [`Judged`] out.
    pub fn judge(&self) -> Judge<'_> {
        Judge {
            hunt: self,
            worker: self.worker(),
        }
    }
}

impl Judge<'_> {
    pub fn judge(&mut self, event: Event) -> Judged {
        let (source, locator, time) = (
            event.origin.source.to_string(),
            event.origin.locator,
            event.timestamp,
        );
        let Worker { scratch, stages } = &mut self.worker;
        let facts = self.hunt.judged(scratch, event, |m| stages.extract(m));
        // Correlation hits go on to the story builder: they are not held here.
        self.hunt
            .correlation_feeds()
            .release(facts.correlation_hits() as u64);
        Judged {
            source,
            locator,
            time,
            facts,
        }
    }
}
