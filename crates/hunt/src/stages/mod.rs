//! The stages behind the engine: each observes every event with the engine's verdict on it,
//! merges with the state other workers built, and finishes into its product.
//!
//! The engine is the transform they share (it decides what matched; every stage reads that).
//! Each stage is one file and one field of [`Stages`]; it declares the limits on what it
//! holds in memory ([`Cap`]) and counts what a limit dropped, and the summary prints those.
//! Stages that must see everything (the linker, the database audit, the held detections)
//! hold it in temporary files instead of a cap.

mod correlations;
mod coverage;
pub(crate) mod database;
mod detections;
mod linker;
mod routine;
mod webshell;

pub use correlations::{CorrelationHits, STAGE as CORRELATIONS_STAGE};
pub use coverage::Coverage;
pub use database::Database;
pub use detections::Detections;
pub use linker::Linker;
pub use routine::RoutineStage;
pub use webshell::{webshell_detections, webshell_rule, WebShell};

use towerwatch_correlate::routine::Actor;
use towerwatch_event::Event;
use towerwatch_sigma::correlation::Feeds;

/// One event as the stages see it: the event, and what the engine said of it.
pub struct Matched<'a> {
    pub event: &'a Event,
    /// Every rule that matched (engine order), silent ones (which only feed correlations)
    /// included.
    pub matched: &'a [usize],
    /// The rules that matched and report (not silent).
    pub hits: &'a [u32],
    /// Who did it, when something reported.
    pub actor: Option<&'a Actor>,
}

/// A stage of the hunt, in two halves: [`extract`](Stage::extract) finds what one event
/// gives the stage (the map: anywhere, in any order), [`absorb`](Stage::absorb) folds it in
/// (the reduce). A file hunt does both in one place; a scaled-out one extracts on the
/// workers and absorbs in the story builder, so the two give the same outcome.
pub trait Stage: Send + Sized {
    /// What it gives once every event is observed.
    type Output;
    /// What one event gives it: small, and serialisable to travel between machines.
    type Fact: serde::Serialize + serde::de::DeserializeOwned + Send;
    /// What one event gives the stage (state kept here is only to make facts small, as the
    /// linker's interned host names).
    fn extract(&mut self, m: &Matched<'_>) -> Self::Fact;
    /// Takes one event's fact.
    fn absorb(&mut self, fact: Self::Fact);
    /// Takes one event.
    fn observe(&mut self, m: &Matched<'_>) {
        let fact = self.extract(m);
        self.absorb(fact);
    }
    /// Takes the state another worker built from other inputs (or sources of a stream).
    fn merge(&mut self, other: Self);
    /// Its limits on what it holds in memory, and what each dropped so far.
    fn caps(&self) -> Vec<Cap> {
        Vec::new()
    }
    fn finish(self) -> Self::Output;
}

/// A stage that is switched off observes nothing and gives nothing.
impl<S: Stage> Stage for Option<S> {
    type Output = Option<S::Output>;
    type Fact = Option<S::Fact>;

    fn extract(&mut self, m: &Matched<'_>) -> Self::Fact {
        self.as_mut().map(|s| s.extract(m))
    }

    fn absorb(&mut self, fact: Self::Fact) {
        if let (Some(s), Some(f)) = (self, fact) {
            s.absorb(f);
        }
    }

    fn observe(&mut self, m: &Matched<'_>) {
        if let Some(s) = self {
            s.observe(m);
        }
    }

    fn merge(&mut self, other: Self) {
        match (self.as_mut(), other) {
            (Some(s), Some(o)) => s.merge(o),
            (None, Some(o)) => *self = Some(o),
            _ => {}
        }
    }

    fn caps(&self) -> Vec<Cap> {
        self.as_ref().map(Stage::caps).unwrap_or_default()
    }

    fn finish(self) -> Self::Output {
        self.map(Stage::finish)
    }
}

/// A declared limit on what a stage holds in memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cap {
    pub stage: &'static str,
    /// What is held, and what is lost past the limit.
    pub holds: &'static str,
    pub limit: u64,
    pub dropped: u64,
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} past its cap of {} {}",
            self.stage, self.dropped, self.limit, self.holds
        )
    }
}

/// Every stage of one worker (one input, or one source of a stream).
pub(crate) struct Stages<'h> {
    pub coverage: Option<Coverage>,
    pub webshell: WebShell,
    pub linker: Option<Linker>,
    pub routine: RoutineStage,
    pub database: Database,
    pub correlations: CorrelationHits<'h>,
    pub detections: Detections<'h>,
}

/// What one event gives every stage: the map half of a hunt, made where the event was
/// judged, folded into the stages wherever they are ([`Stages::absorb`]).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    coverage: <Option<Coverage> as Stage>::Fact,
    webshell: <WebShell as Stage>::Fact,
    linker: <Option<Linker> as Stage>::Fact,
    routine: <RoutineStage as Stage>::Fact,
    database: <Database as Stage>::Fact,
    correlations: <CorrelationHits<'static> as Stage>::Fact,
    detections: <Detections<'static> as Stage>::Fact,
}

impl Facts {
    /// Sigma-correlation hits among them.
    pub(crate) fn correlation_hits(&self) -> usize {
        self.correlations.0.len()
    }

    /// The linker's fact, taken out (for a linker apart from the other stages).
    pub(crate) fn take_linker(&mut self) -> <Option<Linker> as Stage>::Fact {
        self.linker.take()
    }

    /// The detections to hold, taken out (for holding apart from the other stages).
    pub(crate) fn take_held(&mut self) -> Vec<crate::held::HeldDetection> {
        std::mem::take(&mut self.detections)
    }

    /// Why these facts cannot be absorbed with `rules` engine rules and these feeds (they
    /// came over the wire: a rule or correlation they name must exist here), if so.
    pub(crate) fn check(&self, rules: usize, feeds: &Feeds) -> Result<(), String> {
        let engine = |r: usize, what: &str| {
            if r < rules {
                Ok(())
            } else {
                Err(format!("{what} names rule {r}, of {rules}"))
            }
        };
        for d in &self.detections {
            engine(d.tag.rule, "a detection")?;
        }
        if let Some(Some(link)) = &self.linker {
            for &r in link.hits() {
                engine(r as usize, "a link fact")?;
            }
        }
        if let Some((_, _, hits)) = &self.routine {
            for &r in hits {
                engine(r as usize, "a routine sighting")?;
            }
        }
        if let Some(p) = self.correlations.0.iter().find(|p| !feeds.takes(p)) {
            return Err(format!(
                "a Sigma-correlation hit names correlation {} member {}, not one of the {} here",
                p.0,
                p.1.member,
                feeds.len()
            ));
        }
        Ok(())
    }
}

impl Stages<'_> {
    pub fn observe(&mut self, m: &Matched<'_>) {
        self.coverage.observe(m);
        self.webshell.observe(m);
        self.linker.observe(m);
        self.routine.observe(m);
        self.database.observe(m);
        self.correlations.observe(m);
        self.detections.observe(m);
    }

    /// What `m` gives every stage, without taking it in.
    pub fn extract(&mut self, m: &Matched<'_>) -> Facts {
        Facts {
            coverage: self.coverage.extract(m),
            webshell: self.webshell.extract(m),
            linker: self.linker.extract(m),
            routine: self.routine.extract(m),
            database: self.database.extract(m),
            correlations: self.correlations.extract(m),
            detections: self.detections.extract(m),
        }
    }

    /// Takes one event's facts, made here or elsewhere.
    pub fn absorb(&mut self, f: Facts) {
        self.coverage.absorb(f.coverage);
        self.webshell.absorb(f.webshell);
        self.linker.absorb(f.linker);
        self.routine.absorb(f.routine);
        self.database.absorb(f.database);
        self.correlations.absorb(f.correlations);
        self.detections.absorb(f.detections);
    }

    pub fn merge(&mut self, other: Self) {
        self.coverage.merge(other.coverage);
        self.webshell.merge(other.webshell);
        self.linker.merge(other.linker);
        self.routine.merge(other.routine);
        self.database.merge(other.database);
        self.correlations.merge(other.correlations);
        self.detections.merge(other.detections);
    }

    pub fn caps(&self) -> Vec<Cap> {
        [
            self.coverage.caps(),
            self.webshell.caps(),
            self.linker.caps(),
            self.routine.caps(),
            self.database.caps(),
            self.correlations.caps(),
            self.detections.caps(),
        ]
        .concat()
    }
}
