//! CDR-store access analytics.
pub mod analytics;
pub mod audit;
pub mod pseudo;
pub mod sql;
