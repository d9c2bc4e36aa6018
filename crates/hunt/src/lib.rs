//! The hunt as a library: evidence in, detections, operations and the exposure out.
//!
//! A [`Hunt`] is built once ([`Hunt::builder`]: rules, filters, assets, the CDR context,
//! threads) and then run over evidence files ([`Hunt::run`], inputs read in parallel) or fed a
//! live stream ([`Hunt::stream`]: events in any order within a bounded lateness, released in
//! event time behind a watermark). Both drive the same [`stages`]: the compiled engine judges
//! each event, and the stages behind it (Sigma correlations, the web-shell join, the
//! estate's routine, the database audit, the story linker, coverage) observe it, merge
//! across workers, and finish into a [`HuntOutcome`]. Same events, same outcome, whichever
//! way they come in.
//!
//! ```
//! use towerwatch_event::{Event, Origin, Value};
//! use towerwatch_hunt::Hunt;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("whoami.yml"), "
//! title: Whoami
//! id: 6f1d6a46-0c7b-4b5d-9d1b-8d9f3b1e0a01
//! level: high
//! logsource: {product: windows, category: process_creation}
//! detection:
//!   selection: {Image|endswith: '\\whoami.exe'}
//!   condition: selection
//! ").unwrap();
//! let hunt = Hunt::builder().rules([dir.path()]).build().unwrap();
//!
//! let mut e = Event::new(Origin::record("Sysmon.evtx", 7));
//! e.set_channel("Microsoft-Windows-Sysmon/Operational");
//! e.set_event_id(1);
//! e.computer = Some("WEB01".into());
//! e.timestamp = "2019-03-05T10:00:00Z".parse().ok();
//! e.push("Image", Value::text("C:\\Windows\\System32\\whoami.exe"));
//!
//! let mut live = hunt.stream(jiff::SignedDuration::from_secs(60));
//! live.push(e);
//! let mut detections = Vec::new();
//! let outcome = live.finish(&mut detections).unwrap();
//! assert_eq!(detections.len(), 1);
//! assert_eq!(detections[0].rule_title, "Whoami");
//! assert_eq!(outcome.summary.detections, 1);
//! ```

mod builder;
mod held;
mod judge;
mod outcome;
pub mod pipeline;
pub mod rules;
mod run;
pub mod stages;
mod stream;
pub mod summary;
pub mod write;

pub use builder::{Hunt, HuntBuilder, RuleSelection};
pub use held::{Held, HeldDetection, Tag};
pub use judge::{Judge, Judged};
pub use outcome::{Database, Fired, HuntOutcome};
pub use stream::HuntStream;
pub use summary::Summary;
pub use towerwatch_event::Detection;
pub use write::{DetectionSink, DetectionWriter};

/// An asset inventory (CSV with host, ip and role columns), as the hunt takes it.
pub fn read_assets(path: &std::path::Path) -> Result<Vec<towerwatch_correlate::Asset>, HuntError> {
    Ok(towerwatch_cdr::run::read_asset_rows(path)
        .map_err(|e| HuntError::Setting(e.to_string()))?
        .into_iter()
        .map(|a| towerwatch_correlate::Asset {
            host: a.host,
            ip: a.ip,
            role: a.role,
        })
        .collect())
}

/// Why a hunt could not start or finish (bad records are counted in the outcome instead).
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    /// The rules could not be loaded or selected.
    #[error("{0}")]
    Rules(String),
    /// A setting is wrong (a level, a file of the context).
    #[error("{0}")]
    Setting(String),
    /// Temporary files (stories, statements, held detections) failed.
    #[error(transparent)]
    Spill(#[from] towerwatch_spill::SpillError),
    /// Detections could not be written.
    #[error("cannot write detections")]
    Write(#[from] std::io::Error),
    #[error("cannot write detections as CSV")]
    Csv(#[from] csv::Error),
    #[error("a detection does not serialise or read back")]
    Json(#[from] serde_json::Error),
}
