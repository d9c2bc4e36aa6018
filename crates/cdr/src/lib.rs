//! CDR-store access analytics: what the CDR warehouse's audit trail says was read, by whom,
//! and whose call and location histories that exposed.
//!
//! [`audit`] reads PostgreSQL logs with pgaudit lines (stderr with any `log_line_prefix`,
//! csvlog, jsonlog); [`sql`] understands each statement (tables, subscriber identifiers in
//! literals and bind parameters, time bounds, exports); [`analytics`] turns the stream into
//! findings (targeted lookups, bulk exports, first-seen actors, service accounts used
//! interactively, reads from unexpected hosts, audit changes), with a register of authorised
//! lawful-disclosure requests; [`exposure`] re-runs the stolen queries' predicates over a CDR
//! extract; [`report`] writes it all with identifiers pseudonymised by [`pseudo`].
//!
//! ```
//! use towerwatch_cdr::{analytics::Settings, audit::Prefix, exposure, run};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = dir.path().join("postgresql.log");
//! std::fs::write(&log, "2019-03-06 18:55:00.300 UTC [4] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,cdr.voice_cdr,\"select * from cdr.voice_cdr where served_msisdn in ('999700000001', '999700000002')\",<none>,40\n").unwrap();
//! let prefix = Prefix::new(towerwatch_cdr::audit::DEFAULT_PREFIX).unwrap();
//! let run = run::run(&[log], &prefix, Settings::default()).unwrap();
//! assert_eq!(run.findings[0].rule.id(), "towerwatch-cdr-targeted-lookup");
//! let exposed = exposure::compute(&run.findings, &[]);
//! assert_eq!(exposed.subscribers.len(), 2);
//! ```

pub mod analytics;
pub mod audit;
pub mod exposure;
pub mod pseudo;
pub mod report;
pub mod run;
pub mod sql;
