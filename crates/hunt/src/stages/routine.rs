//! The routine stage: learns the estate's routine (same host, account and program at that
//! hour on many days) from the detections, to set routine ones below medium once all is read.

use towerwatch_correlate::routine::{Routine, KEYS};

use super::{Cap, Matched, Stage};

#[derive(Default)]
pub struct RoutineStage(Routine);

impl Stage for RoutineStage {
    type Output = Routine;

    fn observe(&mut self, m: &Matched<'_>) {
        let (Some(actor), Some(t)) = (m.actor, m.event.timestamp) else {
            return;
        };
        for &rule in m.hits {
            self.0
                .observe(rule, actor.clone(), t.as_microsecond(), m.event);
        }
    }

    fn merge(&mut self, other: Self) {
        self.0.merge(other.0);
    }

    fn caps(&self) -> Vec<Cap> {
        vec![Cap {
            stage: "Routine",
            holds: "keys (sightings past it are not learnt; their detections keep their level)",
            limit: KEYS as u64,
            dropped: self.0.dropped,
        }]
    }

    fn finish(self) -> Routine {
        self.0
    }
}
