//! Retro-hunts: rules written after the fact, run over the events already stored (in event
//! time, within an optional window), so a new indicator is checked against past weeks
//! without shipping anything again. The detections are the hunt library's, as `hunt` gives
//! them with the same rules on the same files; the store's own results are not touched.

use std::path::Path;

use jiff::Timestamp;
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_hunt::{Detection, DetectionSink, HeldDetection, Hunt, HuntError, RuleSelection};
use towerwatch_sources::ReadOptions;

use crate::store::Store;

/// Why a retro-hunt did not run.
#[derive(Debug, thiserror::Error)]
pub enum RetroError {
    /// No rule could be used (each refusal says why).
    #[error("no rule to run: {}", .0.join("; "))]
    NoRules(Vec<String>),
    #[error("retro-hunt: {0}")]
    Hunt(#[from] HuntError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("retro-hunt: {0}")]
    Io(#[from] std::io::Error),
}

/// Event time bounds: from (inclusive), to (exclusive); events without a time are in only
/// when there are no bounds.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
pub struct Window {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Window {
    fn holds(&self, t: Option<Timestamp>) -> bool {
        match t {
            None => self.from.is_none() && self.to.is_none(),
            Some(t) => self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e),
        }
    }
}

/// What a retro-hunt found.
#[derive(Debug, serde::Serialize)]
pub struct Retro {
    /// Rules (and Sigma correlations) run.
    pub rules: usize,
    /// Rules that could not be used, each with where and why.
    pub refused: Vec<String>,
    /// Events the rules saw (those in the window).
    pub events: u64,
    /// Detections, each as `hunt -o x.jsonl` writes it.
    pub detections: Vec<serde_json::Value>,
}

/// The hunt for Sigma rules given as text (one or more YAML documents): every rule taken
/// whatever its level or status (the analyst chose them), events kept in detections, the
/// pseudonyms and reading of `like`.
pub fn hunt_for(rules_yaml: &str, like: Like<'_>) -> Result<Hunt, RetroError> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("retro.yml"), rules_yaml)?;
    hunt_for_files(&[dir.path()], like)
}

/// As [`hunt_for`], for rule files and directories of them.
pub fn hunt_for_files<P: AsRef<Path>>(rules: &[P], like: Like<'_>) -> Result<Hunt, RetroError> {
    let (pseudonyms, shown) = like.pseudonyms;
    let hunt = Hunt::builder()
        .rules(rules.iter().map(|p| p.as_ref()))
        .select(RuleSelection {
            min_level: towerwatch_event::Level::Informational,
            statuses: [
                "stable",
                "test",
                "experimental",
                "deprecated",
                "unsupported",
            ]
            .map(String::from)
            .to_vec(),
        })
        .pseudonyms(pseudonyms.clone(), shown)
        .read_options(like.read.clone())
        .operations(false)
        .render_events(true)
        .build()?;
    let refused: Vec<String> = hunt.refused().iter().map(ToString::to_string).collect();
    if hunt.rules().len() + hunt.correlations() == 0 {
        return Err(RetroError::NoRules(if refused.is_empty() {
            vec!["no rule given".into()]
        } else {
            refused
        }));
    }
    Ok(hunt)
}

/// What a retro-hunt takes from the service's hunt.
#[derive(Clone, Copy)]
pub struct Like<'a> {
    pub pseudonyms: (&'a Pseudonymizer, &'a str),
    pub read: &'a ReadOptions,
}

impl<'a> Like<'a> {
    pub fn hunt(hunt: &'a Hunt) -> Like<'a> {
        Like {
            pseudonyms: hunt.pseudonyms(),
            read: hunt.read_options(),
        }
    }
}

/// Runs `hunt` over the events in `store` within `window`.
pub fn retro(store: &mut Store, hunt: &Hunt, window: &Window) -> Result<Retro, RetroError> {
    let mut stream = hunt.stream(jiff::SignedDuration::ZERO);
    let mut events = 0;
    store.replay(hunt.read_options(), |e| {
        if window.holds(e.timestamp) {
            events += 1;
            stream.push(e);
        }
    })?;
    let mut found = Found(Vec::new());
    stream.finish(&mut found)?;
    Ok(Retro {
        rules: hunt.rules().len() + hunt.correlations(),
        refused: hunt.refused().iter().map(ToString::to_string).collect(),
        events,
        detections: found.0,
    })
}

/// `towerwatch retro`: the rules in `rules` (files, directories) over the store in
/// `database` (the server may be running).
pub fn retro_in<P: AsRef<Path>>(
    database: &crate::db::Database,
    rules: &[P],
    like: Like<'_>,
    window: &Window,
) -> Result<Retro, RetroError> {
    let hunt = hunt_for_files(rules, like)?;
    let mut store = Store::open_in(database)?;
    retro(&mut store, &hunt, window)
}

struct Found(Vec<serde_json::Value>);

impl DetectionSink for Found {
    fn detection(&mut self, d: &Detection) -> Result<(), HuntError> {
        self.0.push(serde_json::to_value(d)?);
        Ok(())
    }

    fn held(&mut self, h: &HeldDetection) -> Result<(), HuntError> {
        self.0.push(serde_json::from_str(&h.json)?);
        Ok(())
    }
}
