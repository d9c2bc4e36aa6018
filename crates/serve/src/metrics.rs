//! Counters for `/metrics`, in Prometheus' text format.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters for `/metrics` (Prometheus' text format), since the process started.
#[derive(Default)]
pub(crate) struct Metrics {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub refused_requests: AtomicU64,
    /// Lines refused at ingest, per source.
    rejects: Mutex<HashMap<String, u64>>,
}

impl Metrics {
    /// Counts `n` lines of `source` refused at ingest.
    pub fn reject(&self, source: &str, n: u64) {
        self.add(&self.rejected, n);
        *self
            .rejects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(source.to_string())
            .or_default() += n;
    }

    pub fn rejects_by_source(&self) -> HashMap<String, u64> {
        self.rejects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn text(&self, stored: u64) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP towerwatch_events_accepted_total Events stored (durable) since start.\n\
             # TYPE towerwatch_events_accepted_total counter\n\
             towerwatch_events_accepted_total {}\n\
             # HELP towerwatch_events_duplicate_total Events sent again (already held).\n\
             # TYPE towerwatch_events_duplicate_total counter\n\
             towerwatch_events_duplicate_total {}\n\
             # HELP towerwatch_events_rejected_total Lines or documents that were no event.\n\
             # TYPE towerwatch_events_rejected_total counter\n\
             towerwatch_events_rejected_total {}\n\
             # HELP towerwatch_requests_refused_total Requests refused (authorization, bad bodies, store errors).\n\
             # TYPE towerwatch_requests_refused_total counter\n\
             towerwatch_requests_refused_total {}\n\
             # HELP towerwatch_events_stored Events in the store.\n\
             # TYPE towerwatch_events_stored gauge\n\
             towerwatch_events_stored {stored}\n",
            get(&self.accepted),
            get(&self.duplicates),
            get(&self.rejected),
            get(&self.refused_requests),
        )
    }
}
