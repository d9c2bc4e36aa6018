//! The detection stage: each reporting rule's match becomes a detection, rendered once as
//! its JSON line and held (on disk past [`HELD_IN_MEMORY`]) until the routine's verdict.

use towerwatch_sigma::Rule;

use super::{Matched, Stage};
use crate::held::{Held, HeldDetection, Tag, HELD_IN_MEMORY};

pub struct Detections<'h> {
    rules: &'h [Rule],
    /// Render each detection with its event (not needed for a summary table).
    render: bool,
    held: Held,
    /// A copy of each detection for a live feed, until taken.
    live: Option<Vec<towerwatch_event::Detection>>,
    /// Whether detections are also held for the routine's verdict at the end (not by a
    /// feed that never ends).
    hold: bool,
}

impl<'h> Detections<'h> {
    pub fn new(rules: &'h [Rule], render: bool) -> Self {
        Detections {
            rules,
            render,
            held: Held::new(HELD_IN_MEMORY),
            live: None,
            hold: true,
        }
    }

    /// Keep a copy of each detection until [`take_live`](Self::take_live).
    pub fn keep_live(&mut self) {
        self.live = Some(Vec::new());
    }

    /// Only a live feed: nothing is held for an end that never comes.
    pub fn live_only(&mut self) {
        self.keep_live();
        self.hold = false;
    }

    pub fn take_live(&mut self) -> Vec<towerwatch_event::Detection> {
        self.live.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

impl Stage for Detections<'_> {
    type Output = Held;
    /// The detections to hold, each with its JSON line.
    type Fact = Vec<HeldDetection>;

    /// (A live copy is kept here, where the event is.)
    fn extract(&mut self, m: &Matched<'_>) -> Vec<HeldDetection> {
        let mut out = Vec::new();
        let Some(actor) = m.actor else {
            return out;
        };
        // The event's fields are written once, whatever the number of rules it matched.
        let mut event_json = None;
        for &rule in m.hits {
            let d = self.rules[rule as usize].detection(m.event, false);
            let tag = Tag {
                rule: rule as usize,
                actor: actor.key(),
            };
            let json = if self.render {
                let fields = event_json.get_or_insert_with(|| m.event.fields_json_text());
                d.json_line_with_event(fields)
            } else {
                String::new()
            };
            if let Some(live) = &mut self.live {
                let mut full = d.clone();
                if self.render {
                    full.event = m.event.fields_json();
                }
                live.push(full);
            }
            if self.hold {
                out.push(HeldDetection::with_line(tag, &d, json));
            }
        }
        out
    }

    fn absorb(&mut self, fact: Vec<HeldDetection>) {
        for h in fact {
            self.held.push(h);
        }
    }

    fn merge(&mut self, other: Self) {
        self.held.append(other.held);
    }

    fn finish(self) -> Held {
        self.held
    }
}
