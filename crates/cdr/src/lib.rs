//! CDR-store access analytics.
pub mod audit;
pub mod sql;
