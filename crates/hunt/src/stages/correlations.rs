//! The Sigma-correlation stage: each match of a rule a correlation refers to becomes a hit
//! of that correlation; the hits are evaluated together once all are in
//! (`towerwatch_sigma::correlation::Feeds`).

use towerwatch_sigma::correlation::{Feeds, Pending, MAX_HELD_HITS};

use super::{Cap, Matched, Stage};

/// The name the stage's cap goes by (its evaluation's drops are added to it at the end).
pub const STAGE: &str = "Sigma correlations";

pub struct CorrelationHits<'h> {
    feeds: &'h Feeds,
    /// Off in a feed that never ends: its hits would never be evaluated, only fill the cap.
    off: bool,
    hits: Vec<Pending>,
    /// Matches without a time, which no window can hold.
    untimed: u64,
}

impl<'h> CorrelationHits<'h> {
    pub fn new(feeds: &'h Feeds) -> Self {
        CorrelationHits {
            feeds,
            off: false,
            hits: Vec::new(),
            untimed: 0,
        }
    }
}

impl CorrelationHits<'_> {
    /// Collects nothing (a feed that never ends).
    pub fn switch_off(&mut self) {
        self.off = true;
    }
}

/// The hits, and the matches that had no time.
pub struct Collected {
    pub hits: Vec<Pending>,
    pub untimed: u64,
}

impl Stage for CorrelationHits<'_> {
    type Output = Collected;
    /// The hits, and how many matches had no time.
    type Fact = (Vec<Pending>, u64);

    fn extract(&mut self, m: &Matched<'_>) -> Self::Fact {
        let (mut hits, mut untimed) = (Vec::new(), 0);
        if self.off {
            return (hits, untimed);
        }
        for &rule in m.matched {
            self.feeds.observe(rule, m.event, &mut hits, &mut untimed);
        }
        (hits, untimed)
    }

    fn absorb(&mut self, (mut hits, untimed): Self::Fact) {
        self.hits.append(&mut hits);
        self.untimed += untimed;
    }

    fn merge(&mut self, other: Self) {
        self.hits.extend(other.hits);
        self.untimed += other.untimed;
    }

    fn caps(&self) -> Vec<Cap> {
        // The feeds count their refusals across workers; the evaluation adds its own at
        // the end (see `Feeds::finish`).
        vec![Cap {
            stage: STAGE,
            holds: "matches held, open groups and their hits",
            limit: MAX_HELD_HITS,
            dropped: 0,
        }]
    }

    fn finish(self) -> Collected {
        Collected {
            hits: self.hits,
            untimed: self.untimed,
        }
    }
}
