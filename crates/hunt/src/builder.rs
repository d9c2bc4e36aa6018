//! Building a hunt: the rule set loaded and selected, the engine compiled, the settings of
//! the stages gathered once; a built [`Hunt`] runs any number of times.

use std::path::{Path, PathBuf};

use towerwatch_cdr::analytics::Settings;
use towerwatch_cdr::context::CdrContext;
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_correlate::routine::actor_of;
use towerwatch_correlate::{Asset, Correlator, RuleInfo};
use towerwatch_detect::{Engine, Scratch};
use towerwatch_event::{Event, Level};
use towerwatch_sigma::correlation::Feeds;
use towerwatch_sigma::{Rule, RuleError};
use towerwatch_sources::ReadOptions;

use crate::pipeline;
use crate::rules::{self, Loaded};
use crate::stages::{
    self, CorrelationHits, Database, Detections, Linker, Matched, RoutineStage, Stages, WebShell,
};
use crate::HuntError;

/// Which loaded rules run: at or above a level, with one of the statuses (`all` for any).
#[derive(Debug, Clone)]
pub struct RuleSelection {
    pub min_level: Level,
    pub statuses: Vec<String>,
}

impl Default for RuleSelection {
    fn default() -> Self {
        RuleSelection {
            min_level: Level::Low,
            statuses: ["stable", "test", "experimental"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// How a hunt is set up; [`build`](Self::build) loads and compiles.
#[derive(Default)]
pub struct HuntBuilder {
    rules: Vec<PathBuf>,
    placeholders: Option<PathBuf>,
    selection: RuleSelection,
    assets: Vec<Asset>,
    settings: Settings,
    cdr: CdrContext,
    pseudonyms: Option<(Pseudonymizer, String)>,
    pipeline: pipeline::Options,
    reference: bool,
    in_memory_linker: bool,
    no_operations: bool,
    coverage: bool,
    render: bool,
}

impl HuntBuilder {
    /// Rule files or directories (Sigma detection and correlation rules) instead of the
    /// embedded set.
    pub fn rules<P: AsRef<Path>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.rules = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        self
    }

    /// Values of placeholders for rules using `|expand` (a YAML map).
    pub fn placeholders(mut self, file: Option<PathBuf>) -> Self {
        self.placeholders = file;
        self
    }

    pub fn select(mut self, selection: RuleSelection) -> Self {
        self.selection = selection;
        self
    }

    /// The asset inventory: roles raise an operation's severity; the one CDR database names
    /// the host of database logs.
    pub fn assets(mut self, assets: Vec<Asset>) -> Self {
        self.assets = assets;
        self
    }

    /// The database analytics' settings (register, inventory roles, thresholds).
    pub fn database(mut self, settings: Settings, cdr: CdrContext) -> Self {
        self.settings = settings;
        self.cdr = cdr;
        self
    }

    /// How subscriber identifiers are shown in detections and the exposure, and its words.
    pub fn pseudonyms(mut self, p: Pseudonymizer, shown: &str) -> Self {
        self.pseudonyms = Some((p, shown.to_string()));
        self
    }

    pub fn threads(mut self, threads: Option<usize>) -> Self {
        self.pipeline.threads = threads;
        self
    }

    /// Stop each input at its first bad record.
    pub fn strict(mut self, strict: bool) -> Self {
        self.pipeline.strict = strict;
        self
    }

    /// Compute each input file's SHA-256 (for a run manifest).
    pub fn hash_inputs(mut self, hash: bool) -> Self {
        self.pipeline.hash = hash;
        self
    }

    /// How configurable text layouts are read, and the flag that stops reading.
    pub fn read_options(mut self, read: ReadOptions) -> Self {
        self.pipeline.read = read;
        self
    }

    /// Evaluate with the plain reference evaluator and link with the in-memory linker (slow;
    /// for checks).
    pub fn reference(mut self, on: bool) -> Self {
        self.reference = on;
        self
    }

    /// Link with the plain in-memory linker (for checking the bounded one).
    pub fn in_memory_linker(mut self, on: bool) -> Self {
        self.in_memory_linker = on;
        self
    }

    /// Build operations (on by default).
    pub fn operations(mut self, on: bool) -> Self {
        self.no_operations = !on;
        self
    }

    /// Learn which fields each log source carries, to tell rules that cannot fire.
    pub fn coverage(mut self, on: bool) -> Self {
        self.coverage = on;
        self
    }

    /// Keep each detection's event in it (JSONL, CSV); a summary table does without.
    pub fn render_events(mut self, on: bool) -> Self {
        self.render = on;
        self
    }

    /// Loads and selects the rules, compiles the engine.
    pub fn build(self) -> Result<Hunt, HuntError> {
        let loaded = rules::load(&self.rules, self.placeholders.as_deref())?;
        let loaded_total = loaded.report.rules.len() + loaded.report.correlations.len();
        let mut refused: Vec<RuleError> = loaded.report.refused.clone();
        let Loaded {
            report,
            origin,
            digest,
        } = loaded;
        let selected = rules::select(report.rules, report.correlations, &self.selection);
        refused.extend(selected.refused);
        let feeds = Feeds::new(
            &selected.rules,
            selected.correlations,
            selected.members,
            selected.correlation_silent,
        );
        let engine = Engine::new(selected.rules);
        // A database log names no host; the inventory's one CDR database is its host.
        let db_hosts: Vec<&str> = self
            .assets
            .iter()
            .filter(|a| a.role == "cdr_database")
            .map(|a| a.host.as_str())
            .collect();
        let db_host = (db_hosts.len() == 1).then(|| db_hosts[0].into());
        let pseudonyms = match self.pseudonyms {
            Some(p) => p,
            None => {
                let (p, shown) = towerwatch_cdr::context::key(None, None)
                    .map_err(|e| HuntError::Setting(e.to_string()))?;
                (p, shown.to_string())
            }
        };
        Ok(Hunt {
            filtered: selected.below_level + selected.other_status,
            silent: selected.silent,
            engine,
            feeds,
            refused,
            origin,
            digest,
            loaded: loaded_total,
            selection: self.selection,
            assets: self.assets,
            db_host,
            settings: self.settings,
            cdr: self.cdr,
            pseudonyms: pseudonyms.0,
            shown: pseudonyms.1,
            pipeline: self.pipeline,
            reference: self.reference,
            in_memory_linker: self.in_memory_linker || self.reference,
            operations: !self.no_operations,
            coverage: self.coverage,
            render: self.render,
        })
    }
}

/// A hunt ready to run: compiled rules and every stage's settings.
pub struct Hunt {
    pub(crate) engine: Engine,
    /// Per engine rule: it feeds correlations only and reports nothing on its own.
    pub(crate) silent: Vec<bool>,
    pub(crate) feeds: Feeds,
    refused: Vec<RuleError>,
    origin: String,
    digest: String,
    loaded: usize,
    filtered: usize,
    selection: RuleSelection,
    pub(crate) assets: Vec<Asset>,
    db_host: Option<Box<str>>,
    pub(crate) settings: Settings,
    pub(crate) cdr: CdrContext,
    pub(crate) pseudonyms: Pseudonymizer,
    pub(crate) shown: String,
    pub(crate) pipeline: pipeline::Options,
    reference: bool,
    in_memory_linker: bool,
    operations: bool,
    coverage: bool,
    render: bool,
}

impl Hunt {
    pub fn builder() -> HuntBuilder {
        HuntBuilder {
            render: true,
            ..HuntBuilder::default()
        }
    }

    /// The rules that run, in engine order.
    pub fn rules(&self) -> &[Rule] {
        self.engine.rules()
    }

    /// Rules and correlations that cannot run, with why.
    pub fn refused(&self) -> &[RuleError] {
        &self.refused
    }

    /// How inputs are read (the PostgreSQL prefix, access-log layout, strictness).
    pub fn read_options(&self) -> &ReadOptions {
        &self.pipeline.read
    }

    /// The pseudonymiser of the database audit's outputs, and how it shows identifiers.
    pub fn pseudonyms(&self) -> (&Pseudonymizer, &str) {
        (&self.pseudonyms, &self.shown)
    }

    /// `embedded` or the rule paths given.
    pub fn rules_origin(&self) -> &str {
        &self.origin
    }

    /// SHA-256 naming the rule set.
    pub fn rules_digest(&self) -> &str {
        &self.digest
    }

    /// Rules and correlations loaded, before filters.
    pub fn rules_loaded(&self) -> usize {
        self.loaded
    }

    /// Rules and correlations the level and status filters removed.
    pub fn rules_filtered(&self) -> usize {
        self.filtered
    }

    pub fn selection(&self) -> &RuleSelection {
        &self.selection
    }

    /// The Sigma correlations that run.
    pub fn correlations(&self) -> usize {
        self.feeds.len()
    }

    pub(crate) fn correlation_feeds(&self) -> &towerwatch_sigma::correlation::Feeds {
        &self.feeds
    }

    /// Every stage of one worker, empty.
    pub(crate) fn stages(&self) -> Stages<'_> {
        let mut correlator = Correlator::default();
        if self.in_memory_linker {
            correlator = correlator.reference();
        }
        Stages {
            coverage: self.coverage.then(Default::default),
            webshell: WebShell::default(),
            linker: self.operations.then_some(Linker(correlator)),
            routine: RoutineStage::default(),
            database: Database::default(),
            correlations: CorrelationHits::new(&self.feeds),
            detections: Detections::new(self.engine.rules(), self.render),
        }
    }

    /// One event through the engine and into the stages.
    pub(crate) fn take(&self, stages: &mut Stages<'_>, scratch: &mut Scratch, event: Event) {
        self.judged(scratch, event, |m| stages.observe(m));
    }

    /// One event through the engine; `then` is given the event with the engine's verdict.
    pub(crate) fn judged<R>(
        &self,
        scratch: &mut Scratch,
        mut event: Event,
        then: impl FnOnce(&Matched<'_>) -> R,
    ) -> R {
        if event.computer.is_none() && towerwatch_cdr::record::is_database(&event) {
            event.computer = self.db_host.clone();
        }
        let matched: Vec<usize> = if self.reference {
            self.engine.reference_matches(&event)
        } else {
            self.engine.matches(&event, scratch).to_vec()
        };
        // Silent rules feed correlations only; they seed no operation on their own.
        let hits: Vec<u32> = matched
            .iter()
            .filter(|&&i| !self.silent[i])
            .map(|&i| i as u32)
            .collect();
        let actor = (!hits.is_empty()).then(|| actor_of(&event));
        then(&Matched {
            event: &event,
            matched: &matched,
            hits: &hits,
            actor: actor.as_ref(),
        })
    }

    /// What the linker scores each detection's rule by: the engine's rules, the web-shell
    /// join, the Sigma correlations, the database audit's rules, in this order.
    pub(crate) fn catalog(&self) -> Catalog {
        let mut rules: Vec<RuleInfo> = self
            .engine
            .rules()
            .iter()
            .map(|r| RuleInfo::new(&r.id, &r.title, r.level, &r.tags))
            .collect();
        let webshell = rules.len() as u32;
        rules.push(stages::webshell_rule());
        let first_correlation = rules.len() as u32;
        rules.extend(
            self.feeds
                .correlations()
                .iter()
                .map(|c| RuleInfo::new(&c.id, &c.title, c.level, &c.tags)),
        );
        let first_db_rule = rules.len() as u32;
        rules.extend(stages::database::catalog());
        Catalog {
            rules,
            webshell,
            first_correlation,
            first_db_rule,
        }
    }

    /// A worker for the stream and the files alike.
    pub(crate) fn worker(&self) -> Worker<'_> {
        Worker {
            scratch: self.engine.scratch(),
            stages: self.stages(),
        }
    }
}

/// The rule catalog and where each kind of detection starts in it.
pub(crate) struct Catalog {
    pub rules: Vec<RuleInfo>,
    pub webshell: u32,
    pub first_correlation: u32,
    pub first_db_rule: u32,
}

/// One worker's engine scratch and stages.
pub(crate) struct Worker<'h> {
    pub scratch: Scratch,
    pub stages: Stages<'h>,
}

impl Worker<'_> {
    pub fn take(&mut self, hunt: &Hunt, event: Event) {
        hunt.take(&mut self.stages, &mut self.scratch, event);
    }
}
