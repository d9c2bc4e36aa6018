//! A simulated mobile operator with a Soft Cell campaign inside, written in the formats
//! towerwatch reads, with the ground truth beside it; and [`eval`], which scores a hunt's
//! detections against that truth.
//!
//! The operator (`world`) has domain controllers, an IIS portal and a JBoss API facing the
//! Internet, a PostgreSQL CDR warehouse, mediation, billing, customer-care, lawful-disclosure
//! and BI servers, a jump host, file and backup servers, admin and care workstations, people
//! and service accounts, subscribers with valid (and never real) identifiers, cell sites,
//! and CDRs with daily rhythms. `background` makes it work, including the benign twins of
//! the intruder's moves; `campaign` plays Soft Cell's stages 1–10 in waves.
//!
//! Everything is drawn from seeded streams and written in time order, one hour at a time, so
//! the same configuration gives the same bytes and memory does not grow with the run.
//!
//! ```no_run
//! let cfg = towerwatch_sim::Config { days: 14, ..Default::default() };
//! let summary = towerwatch_sim::simulate(&cfg, std::path::Path::new("/tmp/operator")).unwrap();
//! println!("{} events, {} labelled malicious", summary.events(), summary.malicious);
//! ```
//!
//! Layout of the output directory:
//!
//! | path | what |
//! |---|---|
//! | `evidence/windows/HOST.jsonl` | Sysmon, Security, System and PowerShell events (evtx_dump JSON shape) |
//! | `evidence/iis/WEB01/u_exYYMMDD.log` | IIS W3C access logs |
//! | `evidence/postgresql/CDRDB01/postgresql-YYYY-MM-DD.log` | PostgreSQL stderr logs with pgaudit |
//! | `evidence/flows/conn.YYYY-MM-DD.log` | Zeek `conn.log` flow records |
//! | `cdr/cdr_YYYYMMDD.csv`, `cdr/cell_sites.csv` | the CDR warehouse's content and the cell table |
//! | `context/assets.csv`, `context/rd_requests.csv` | the asset inventory and the register of lawful-disclosure requests |
//! | `truth/` | `labels.jsonl` (every malicious record: file, line, wave, stage, technique), `campaign.json`, `exposure.json`, `files.json` |

mod background;
mod campaign;
mod cdr;
pub mod clock;
pub mod db;
mod dice;
pub mod eval;
mod flows;
pub mod ids;
pub mod profile;
mod queries;
pub mod scoring;
mod sink;
mod web;
mod windows;
mod world;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde_json::json;

pub use campaign::STAGES;
pub use profile::{Profile, PROFILES};
pub use sink::FileStats;

use background::Background;
use campaign::Campaign;
use cdr::CdrGen;
use clock::{DAY, HOUR};
use sink::{Kind, Layout, Sink, StreamId};
use windows::Machine;
use world::{Role, World};

/// What to simulate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    /// The operator: names, schema, telemetry, web stack, habits (see [`profile`]).
    #[serde(serialize_with = "profile_name")]
    pub profile: &'static Profile,
    pub seed: u64,
    /// Size of the operator and its traffic: workstations, subscribers and request rates grow
    /// linearly with it (1.0: 20 care desks, 500 subscribers).
    pub scale: f64,
    /// Simulated days after `start`.
    pub days: u32,
    pub waves: u8,
    /// How many subscribers the campaign is after.
    pub targets: usize,
    /// 0–1: from 0.8 on, even the first wave renames its tools.
    pub stealth: f64,
    /// Start of the simulation, micros since the epoch (UTC midnight).
    pub start: i64,
    /// Days of CDRs in the warehouse before `start` (what long-range queries read).
    pub history_days: u32,
    /// The operator's local time offset from UTC, in minutes (business hours follow it).
    pub utc_offset_min: i32,
}

fn profile_name<S: serde::Serializer>(p: &&'static Profile, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: &PROFILES[0],
            seed: 7,
            scale: 1.0,
            days: 28,
            waves: 3,
            targets: 12,
            stealth: 0.5,
            start: clock::parse_date("2019-03-04").expect("valid date"),
            history_days: 30,
            utc_offset_min: 480,
        }
    }
}

impl Config {
    fn check(&self) -> io::Result<()> {
        let bad = |m: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, m.to_string()));
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return bad("--scale must be a positive number");
        }
        if self.waves == 0 {
            return bad("--waves must be at least 1");
        }
        if self.days < 7 {
            return bad("--days must be at least 7 (a wave takes up to a week)");
        }
        if self.targets == 0 {
            return bad("--targets must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.stealth) {
            return bad("--stealth must be between 0 and 1");
        }
        Ok(())
    }
}

/// The streams each host's records go to, and how the estate writes them.
pub struct Estate {
    pub win: Vec<StreamId>,
    /// Access logs of the web servers that keep them (IIS, Tomcat).
    pub web: Vec<Option<StreamId>>,
    pub db: StreamId,
    pub cdr: Vec<StreamId>,
    pub flows: StreamId,
    pub utc_offset_min: i32,
    pub log: db::LogStyle,
}

impl Estate {
    fn machine<'a>(&self, world: &'a World, h: usize) -> Machine<'a> {
        Machine {
            host: &world.hosts[h],
            stream: self.win[h],
        }
    }
}

/// What a simulation wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Records written per kind (`windows`, `web`, `db`, `flows`, `cdr`).
    pub written: BTreeMap<&'static str, u64>,
    pub malicious: u64,
    pub files: usize,
    pub hosts: usize,
    pub subscribers: usize,
}

impl Summary {
    /// Log events (everything but CDR rows).
    pub fn events(&self) -> u64 {
        self.written
            .iter()
            .filter(|(k, _)| **k != "cdr")
            .map(|(_, v)| v)
            .sum()
    }

    /// What was simulated into `out` in `seconds`, in a few lines for a terminal.
    pub fn describe(&self, seconds: f64, out: &Path) -> String {
        let kinds: Vec<String> = self
            .written
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let events = self.events();
        format!(
            "towerwatch simulate: {} hosts, {} subscribers, {} files in {}\n  records: {}\n  {} events ({} labelled malicious) + {} CDRs in {:.2} s: {:.0} events/s, {:.0} records/s\n",
            self.hosts,
            self.subscribers,
            self.files,
            out.display(),
            kinds.join(", "),
            events,
            self.malicious,
            self.written.get("cdr").copied().unwrap_or(0),
            seconds,
            events as f64 / seconds.max(1e-9),
            self.written.values().sum::<u64>() as f64 / seconds.max(1e-9),
        )
    }
}

/// Simulates the operator into `out` (created if missing).
pub fn simulate(cfg: &Config, out: &Path) -> io::Result<Summary> {
    cfg.check()?;
    let world = World::build(cfg);
    let mut sink = Sink::create(out)?;
    let win = world
        .hosts
        .iter()
        .map(|h| {
            sink.stream(
                Kind::Windows,
                Layout::Single(format!("evidence/windows/{}.jsonl", h.name)),
                &h.fqdn,
            )
        })
        .collect();
    let profile = cfg.profile;
    let web = world
        .hosts
        .iter()
        .map(|h| {
            let name = h.name.clone();
            match h.role {
                Role::WebIis => {
                    let s = sink.stream(
                        Kind::Web,
                        Layout::Daily(Box::new(move |d| {
                            format!("evidence/iis/{name}/u_ex{}.log", d[2..].replace('-', ""))
                        })),
                        &h.fqdn,
                    );
                    if profile.balancer.is_some() {
                        let (d, t) = clock::w3c(cfg.start);
                        sink.set_header(s, format!(
                            "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: {d} {t}\n#Fields: {} X-Forwarded-For",
                            web::W3C_FIELDS
                        ));
                    }
                    Some(s)
                }
                Role::WebTomcat => Some(sink.stream(
                    Kind::Access,
                    Layout::Daily(Box::new(move |d| {
                        format!("evidence/web/{name}/localhost_access_log.{d}.txt")
                    })),
                    &h.fqdn,
                )),
                _ => None,
            }
        })
        .collect();
    let db_host = world.hosts[world.one(Role::CdrDatabase)].name.clone();
    let db_path = profile.db.log_path.replace("{host}", &db_host);
    let db = sink.stream(
        Kind::Db,
        Layout::Daily(Box::new(move |d| db_path.replace("{date}", d))),
        &db_host,
    );
    let schema = profile.db.schema;
    let cdr_streams: Vec<StreamId> = match schema.extract {
        profile::ExtractLayout::Daily => {
            let s = sink.stream(
                Kind::Cdr,
                Layout::Daily(Box::new(|d| format!("cdr/cdr_{}.csv", d.replace('-', "")))),
                "",
            );
            vec![s]
        }
        profile::ExtractLayout::PerTable => schema
            .tables()
            .into_iter()
            .map(|t| {
                let short = t.rsplit('.').next().unwrap_or(t).to_string();
                sink.stream(
                    Kind::Cdr,
                    Layout::Daily(Box::new(move |d| {
                        format!("cdr/{short}_{}.csv", d.replace('-', ""))
                    })),
                    "",
                )
            })
            .collect(),
    };
    for &s in &cdr_streams {
        sink.set_header(s, schema.header());
    }
    let flows = sink.stream(
        Kind::Flows,
        Layout::Daily(Box::new(|d| format!("evidence/flows/conn.{d}.log"))),
        "",
    );
    let estate = Estate {
        win,
        web,
        db,
        cdr: cdr_streams.clone(),
        flows,
        utc_offset_min: cfg.utc_offset_min,
        log: db::LogStyle::of(&profile.db, cfg.utc_offset_min),
    };

    let mut bg = Background::new(&world, &estate, cfg.seed, cfg.scale, cfg.utc_offset_min);
    let mut campaign = Campaign::plan(cfg, &world, &estate, &bg, &mut sink);
    let mut cdr = CdrGen::new(
        cfg.seed,
        cfg.utc_offset_min,
        1.0,
        campaign.queries.clone(),
        schema,
        cdr_streams,
    );
    let end = cfg.start + i64::from(cfg.days) * DAY;
    let mut t = cfg.start - i64::from(cfg.history_days) * DAY;
    while t < end {
        cdr.hour(&world, &mut sink, t);
        if t >= cfg.start {
            bg.hour(&mut sink, t);
        }
        campaign.db_until(&mut sink, estate.db, t + HOUR, |q| cdr.rows_of(q));
        // Generators may date a record a few seconds before their hour: flush only what is
        // older than this hour's start.
        sink.flush_until(t)?;
        t += HOUR;
    }
    campaign.db_until(&mut sink, estate.db, i64::MAX, |q| cdr.rows_of(q));

    std::fs::create_dir_all(out.join("context"))?;
    std::fs::create_dir_all(out.join("cdr"))?;
    std::fs::write(
        out.join("cdr/cell_sites.csv"),
        cdr::cell_sites_csv(&world, cfg.start - 400 * DAY),
    )?;
    let mut assets = String::from("host,ip,role\n");
    for h in &world.hosts {
        let _ = writeln!(assets, "{},{},{}", h.name, h.ip, h.role.name());
    }
    std::fs::write(out.join("context/assets.csv"), assets)?;
    let mut rd = String::from("case_id,identifiers,from,to,approved_by,account\n");
    for r in &bg.disclosures {
        let _ = writeln!(
            rd,
            "{},{},{},{},court-order ({}),{}",
            r.case_id,
            r.msisdn,
            clock::rfc3339(r.from),
            clock::rfc3339(r.to),
            r.officer,
            r.account
        );
    }
    std::fs::write(out.join("context/rd_requests.csv"), rd)?;
    write_truth(cfg, &world, &campaign, &cdr, out)?;

    let (files, written) = sink.finish()?;
    let malicious = files.values().map(|f| f.malicious).sum();
    Ok(Summary {
        written,
        malicious,
        files: files.len(),
        hosts: world.hosts.len(),
        subscribers: world.subscribers.len(),
    })
}

fn write_truth(
    cfg: &Config,
    world: &World,
    campaign: &Campaign,
    cdr: &CdrGen,
    out: &Path,
) -> io::Result<()> {
    let stages: Vec<_> = STAGES
        .iter()
        .map(|(n, name)| json!({"stage": n, "name": name}))
        .collect();
    let doc = json!({
        "config": cfg,
        "profile": {"name": cfg.profile.name, "about": cfg.profile.about},
        "stages": stages,
        "targets": campaign.targets,
        "waves": campaign.waves,
    });
    std::fs::write(
        out.join("truth/campaign.json"),
        serde_json::to_vec_pretty(&doc)?,
    )?;
    let cell = |i: &usize| {
        let c = &world.cells[*i];
        json!({"radio": c.radio, "area": c.area, "cell": c.cell, "lon": c.lon, "lat": c.lat})
    };
    let entry = |m: &str, e: &cdr::Exposed| {
        json!({
            "msisdn": m,
            "records": e.records,
            "first": e.first.map(clock::rfc3339),
            "last": e.last.map(clock::rfc3339),
            "cells": e.cells.iter().map(cell).collect::<Vec<_>>(),
        })
    };
    let waves: Vec<_> = campaign
        .waves
        .iter()
        .map(|w| {
            let subs: Vec<_> = cdr
                .by_wave
                .iter()
                .filter(|((wave, _), _)| *wave == w.wave)
                .map(|((_, m), e)| entry(m, e))
                .collect();
            json!({"wave": w.wave, "subscribers": subs})
        })
        .collect();
    let queries: Vec<_> = cdr
        .queries()
        .iter()
        .enumerate()
        .map(|(i, q)| {
            json!({
                "wave": q.wave,
                "tables": q.tables,
                "msisdns": q.msisdns,
                "from": clock::rfc3339(q.from),
                "executed": clock::rfc3339(q.executed),
                "rows": cdr.rows_of(i),
            })
        })
        .collect();
    let total: Vec<_> = cdr.total.iter().map(|(m, e)| entry(m, e)).collect();
    let doc = json!({"total": total, "waves": waves, "queries": queries});
    std::fs::write(
        out.join("truth/exposure.json"),
        serde_json::to_vec_pretty(&doc)?,
    )?;
    Ok(())
}
