//! What a hunt gives back besides the detections it wrote.

use towerwatch_cdr::analytics::Analytics;
use towerwatch_correlate::Analysis;
use towerwatch_report::ReportExposure;

use crate::stages::Coverage;
use crate::Summary;

/// The outcome of a hunt over files or a stream.
pub struct HuntOutcome {
    /// Operations, waves, the suspected actor and leads (empty when operations are off).
    pub analysis: Analysis,
    /// Counts by level, rule and host; the inputs read; what was rejected and dropped.
    pub summary: Summary,
    /// Per input of [`Summary::inputs`], its SHA-256 when asked for.
    pub sha256: Vec<Option<String>>,
    /// Whose call and location records the database audit shows read, pseudonymised, in all
    /// and per operation and wave.
    pub exposure: Option<ReportExposure>,
    pub database: Database,
    /// Which fields each log source carried, when asked for.
    pub coverage: Option<Coverage>,
    /// Seconds spent after reading: joins, correlations, the database audit, linking.
    pub linking_seconds: f64,
    /// Stream only: events that came later than the allowed lateness (taken all the same).
    pub late: u64,
}

/// The database audit among the evidence.
pub struct Database {
    /// Audited statements collected.
    pub statements: u64,
    /// What the analytics learnt (the schema used, statements that did not parse).
    pub analytics: Option<Analytics>,
}
