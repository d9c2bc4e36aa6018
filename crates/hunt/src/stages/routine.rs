//! The routine stage: learns the estate's routine (same host, account and program at that
//! hour on many days) from the detections, to set routine ones below medium once all is read.

use towerwatch_correlate::routine::{Actor, Routine, KEYS};

use super::{Cap, Matched, Stage};

#[derive(Default)]
pub struct RoutineStage(Routine);

impl Stage for RoutineStage {
    type Output = Routine;
    /// Who did it, when (µs), and the rules that reported it.
    type Fact = Option<(Actor, i64, Vec<u32>)>;

    fn extract(&mut self, m: &Matched<'_>) -> Self::Fact {
        let (Some(actor), Some(t)) = (m.actor, m.event.timestamp) else {
            return None;
        };
        (!m.hits.is_empty()).then(|| (actor.clone(), t.as_microsecond(), m.hits.to_vec()))
    }

    fn absorb(&mut self, fact: Self::Fact) {
        if let Some((actor, t, hits)) = fact {
            for rule in hits {
                self.0.observe(rule, actor.clone(), t);
            }
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
