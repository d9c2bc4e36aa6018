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
    /// Requests refused for going over the caller's rate (also in `refused_requests`).
    pub rate_limited: AtomicU64,
    /// Stored rows deleted by retention.
    pub expired: AtomicU64,
    /// Lines refused at ingest, per source.
    rejects: Mutex<HashMap<String, u64>>,
    /// Ingest requests by how long they took to be durable:
    /// counts per bucket of [`BUCKETS`], then the sum in microseconds.
    ingest_seconds: [AtomicU64; BUCKETS.len() + 1],
    ingest_micros: AtomicU64,
}

/// Upper bounds (seconds) of the ingest latency histogram's buckets; the last is +Inf.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

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

    /// One ingest request, `took` from its body read to its reply.
    pub fn observe_ingest(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.add(&self.ingest_seconds[bucket], 1);
        self.add(&self.ingest_micros, took.as_micros() as u64);
    }

    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn text(&self, stored: u64, live: &crate::live::LiveCounters) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut histogram = String::from(
            "# HELP towerwatch_ingest_seconds Time from an ingest request's body to its reply (the batch durable).\n\
             # TYPE towerwatch_ingest_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()])
            .enumerate()
        {
            cumulative += get(&self.ingest_seconds[i]);
            histogram.push_str(&format!(
                "towerwatch_ingest_seconds_bucket{{le=\"{bound}\"}} {cumulative}\n"
            ));
        }
        histogram.push_str(&format!(
            "towerwatch_ingest_seconds_sum {}\ntowerwatch_ingest_seconds_count {cumulative}\n",
            get(&self.ingest_micros) as f64 / 1e6
        ));
        histogram + &format!(
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
             # HELP towerwatch_requests_rate_limited_total Requests refused for going over their address's rate.\n\
             # TYPE towerwatch_requests_rate_limited_total counter\n\
             towerwatch_requests_rate_limited_total {}\n\
             # HELP towerwatch_expired_total Stored events, text log lines and live detections deleted by retention.\n\
             # TYPE towerwatch_expired_total counter\n\
             towerwatch_expired_total {}\n\
             # HELP towerwatch_events_stored Events in the store.\n\
             # TYPE towerwatch_events_stored gauge\n\
             towerwatch_events_stored {stored}\n\
             # HELP towerwatch_live_detections_total Detections the live hunt found.\n\
             # TYPE towerwatch_live_detections_total counter\n\
             towerwatch_live_detections_total {}\n\
             # HELP towerwatch_live_waiting Events waiting behind the live hunt's watermark.\n\
             # TYPE towerwatch_live_waiting gauge\n\
             towerwatch_live_waiting {}\n\
             # HELP towerwatch_events_late_total Events later than the lateness allows (taken all the same).\n\
             # TYPE towerwatch_events_late_total counter\n\
             towerwatch_events_late_total {}\n\
             # HELP towerwatch_live_pending Events acknowledged and not yet through the live hunt.\n\
             # TYPE towerwatch_live_pending gauge\n\
             towerwatch_live_pending {}\n",
            get(&self.accepted),
            get(&self.duplicates),
            get(&self.rejected),
            get(&self.refused_requests),
            get(&self.rate_limited),
            get(&self.expired),
            get(&live.found),
            get(&live.waiting),
            get(&live.late),
            get(&live.pending),
        )
    }
}
