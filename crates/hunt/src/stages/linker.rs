//! The story stage: every event goes to the linker (`towerwatch_correlate::Correlator`),
//! which holds them on disk past a few thousand and links them into stories once the
//! detections found after the fact (joins, correlations, the database audit) are known.

use towerwatch_correlate::{Correlator, LinkFact};

use super::{Matched, Stage};

pub struct Linker(pub Correlator);

impl Stage for Linker {
    /// The events, ready to link.
    type Output = Correlator;
    type Fact = Option<LinkFact>;

    fn extract(&mut self, m: &Matched<'_>) -> Option<LinkFact> {
        self.0.link_fact(m.event, m.hits)
    }

    fn absorb(&mut self, fact: Option<LinkFact>) {
        if let Some(f) = fact {
            self.0.absorb(f);
        }
    }

    fn merge(&mut self, other: Linker) {
        self.0.merge(other.0);
    }

    fn finish(self) -> Correlator {
        self.0
    }
}
