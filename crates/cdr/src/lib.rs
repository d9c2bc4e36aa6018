//! CDR-store access analytics: what the CDR warehouse's audit trail says was read, by whom,
//! and whose call and location histories that exposed — on any warehouse, whatever its tables
//! and columns are called.
//!
//! [`record`] takes the audited statements `towerwatch-sources` reads (PostgreSQL with
//! pgaudit in any `log_line_prefix`, csvlog or jsonlog; Oracle and SQL Server audit exports);
//! [`sql`] reads what each statement says without knowing the schema; [`schema`] learns which
//! tables hold CDRs and subscribers and which columns are identifiers, times and locations;
//! [`analytics`] turns the stream into findings (targeted lookups, subscriber lookups, bulk
//! exports, first-seen actors, service accounts used interactively, reads from unexpected
//! hosts, audit changes), with a register of authorised lawful-disclosure requests;
//! [`exposure`] re-runs the stolen queries' predicates over a CDR extract; [`report`] writes it
//! all with identifiers pseudonymised by [`pseudo`]; [`numbers`] brings every form of a
//! number to one.
//!
//! ```
//! use towerwatch_cdr::{analytics::Settings, exposure, run};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = dir.path().join("postgresql.log");
//! std::fs::write(&log, "2024-05-06 18:55:00.300 +03 [4] ops@dwh LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,dwh.calls_2024_05,\"select * from dwh.calls_2024_05 where a_number in ('447700900001', '447700900002') and call_start >= '2022-01-01'\",<none>\n").unwrap();
//! let run = run::run(&[log], &Default::default(), Settings::default(), &Default::default()).unwrap();
//! assert_eq!(run.findings[0].rule.id(), "towerwatch-cdr-targeted-lookup");
//! let schema = run.analytics.schema();
//! assert_eq!(schema.table("dwh.calls_2024_06").unwrap().name, "dwh.calls");
//! let exposed = exposure::compute(&run.findings, schema, &[], &Default::default());
//! assert_eq!(exposed.count(exposure::Tier::Named), 2);
//! ```

pub mod analytics;
pub mod context;
pub mod exposure;
pub mod numbers;
pub mod outputs;
pub mod pseudo;
pub mod record;
pub mod report;
pub mod reveal;
pub mod run;
pub mod schema;
pub mod sql;
pub mod summary;
