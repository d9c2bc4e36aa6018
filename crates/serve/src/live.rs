//! The live hunt: each new event goes through one long-lived stream as soon as it is
//! stored, so its detection can be read as soon as the event passes the watermark (the
//! newest event time less the lateness), without waiting for the results of everything.
//!
//! These detections come before the routine's verdict (which needs all the evidence):
//! `GET /api/v1/detections` gives the concluded ones. Text logs (stored as lines, read
//! whole) are in the concluded results only.

use jiff::SignedDuration;
use towerwatch_event::Event;
use towerwatch_hunt::{Hunt, HuntStream};

use crate::store::{Store, StoreError};

pub(crate) struct Live {
    stream: HuntStream<'static>,
}

impl Live {
    /// A live hunt over `hunt`, brought up to date with the JSON events `store` holds (its
    /// detections found again, in the store).
    pub fn start(
        hunt: &'static Hunt,
        lateness: SignedDuration,
        store: &mut Store,
    ) -> Result<Live, StoreError> {
        let mut live = Live {
            stream: hunt.stream(lateness).with_live_detections(),
        };
        store.clear_live()?;
        let mut found = Vec::new();
        store.replay_events(|e| {
            live.stream.push(e);
            found.append(&mut live.take());
        })?;
        found.append(&mut live.take());
        store.add_live(&found)?;
        Ok(live)
    }

    /// Takes events just stored (never one the store held already); returns the
    /// detections this found, as JSON lines.
    pub fn push(&mut self, events: Vec<Event>) -> Vec<String> {
        for e in events {
            self.stream.push(e);
        }
        self.take()
    }

    fn take(&mut self) -> Vec<String> {
        self.stream
            .take_detections()
            .iter()
            .map(|d| serde_json::to_string(d).expect("a detection serialises"))
            .collect()
    }

    /// Events waiting behind the watermark.
    pub fn waiting(&self) -> usize {
        self.stream.waiting()
    }

    /// Events that came later than the lateness allows (taken all the same).
    pub fn late(&self) -> u64 {
        self.stream.late()
    }
}
