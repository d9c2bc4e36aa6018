//! Mediated CDRs (voice, SMS, data) with daily rhythms, the cell-site table, and the ground
//! truth of what each stolen query returned: the theft queries are known before the CDRs are
//! made, so every generated row is checked against them as it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::clock::{self, HOUR, SECOND};
use crate::dice::Dice;
use crate::ids::{MCC, MNC};
use crate::profile::{CdrSchema, ExtractLayout, TimeStyle};
use crate::sink::{Sink, StreamId};
use crate::world::World;

/// Relative call volume by local hour of day.
const DIURNAL: [f64; 24] = [
    0.20, 0.10, 0.05, 0.05, 0.05, 0.10, 0.30, 0.70, 1.00, 1.20, 1.30, 1.30, 1.20, 1.20, 1.20, 1.20,
    1.30, 1.40, 1.50, 1.50, 1.30, 1.00, 0.70, 0.40,
];

pub fn diurnal(local_hour: u32) -> f64 {
    DIURNAL[local_hour as usize % 24] / (DIURNAL.iter().sum::<f64>() / 24.0)
}

/// Which of a row's numbers a query compares with its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOn {
    /// The subscriber the record belongs to.
    Served,
    /// The calling or the called number.
    Parties,
}

/// A query of the campaign that read CDRs: which subscribers, which tables, from when, and
/// when it ran (rows after that did not exist yet).
#[derive(Debug, Clone)]
pub struct TheftQuery {
    pub wave: u8,
    pub msisdns: Vec<String>,
    pub tables: Vec<&'static str>,
    pub from: i64,
    pub executed: i64,
    pub match_on: MatchOn,
}

/// What one query exposed of one subscriber.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Exposed {
    pub records: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub cells: BTreeSet<usize>,
}

pub struct CdrGen {
    dice: Dice,
    record_id: u64,
    offset_min: i32,
    schema: CdrSchema,
    /// The extract's streams: one, or one per table (in [`CdrSchema::tables`] order).
    streams: Vec<StreamId>,
    queries: Vec<TheftQuery>,
    /// Per query, per MSISDN.
    pub exposed: Vec<BTreeMap<String, Exposed>>,
    /// Distinct records per (wave, MSISDN), and over all waves per MSISDN.
    pub by_wave: BTreeMap<(u8, String), Exposed>,
    pub total: BTreeMap<String, Exposed>,
    targets: BTreeSet<String>,
    rate: f64,
}

impl CdrGen {
    pub fn new(
        seed: u64,
        offset_min: i32,
        rate: f64,
        queries: Vec<TheftQuery>,
        schema: CdrSchema,
        streams: Vec<StreamId>,
    ) -> CdrGen {
        let targets = queries
            .iter()
            .flat_map(|q| q.msisdns.iter().cloned())
            .collect();
        CdrGen {
            dice: Dice::new(seed, "cdr"),
            record_id: 0,
            offset_min,
            schema,
            streams,
            exposed: vec![BTreeMap::new(); queries.len()],
            by_wave: BTreeMap::new(),
            total: BTreeMap::new(),
            queries,
            targets,
            rate,
        }
    }

    pub fn queries(&self) -> &[TheftQuery] {
        &self.queries
    }

    /// Rows query `q` returned.
    pub fn rows_of(&self, q: usize) -> u64 {
        self.exposed[q].values().map(|e| e.records).sum()
    }

    /// The CDRs of one hour starting at `t0`.
    pub fn hour(&mut self, world: &World, sink: &mut Sink, t0: i64) {
        let local_hour = clock::parts(t0 + i64::from(self.offset_min) * clock::MINUTE).h;
        let w = diurnal(local_hour) / 24.0 * self.rate;
        for caller in 0..world.subscribers.len() {
            let sub = &world.subscribers[caller];
            for _ in 0..self.dice.poisson(sub.calls_per_day * w) {
                self.voice(world, sink, t0, caller);
            }
            for _ in 0..self.dice.poisson(1.5 * w) {
                self.sms(world, sink, t0, caller);
            }
            for _ in 0..self.dice.poisson(2.5 * w) {
                self.data(world, sink, t0, caller);
            }
        }
    }

    fn counterparty(&mut self, world: &World, caller: usize) -> (String, Option<usize>) {
        let sub = &world.subscribers[caller];
        if !sub.contacts.is_empty() && self.dice.chance(0.8) {
            let c = *self.dice.pick(&sub.contacts);
            (world.subscribers[c].msisdn.clone(), Some(c))
        } else {
            (format!("9998{:08}", self.dice.below(100_000_000)), None)
        }
    }

    fn serving_cell(&mut self, world: &World, sub: usize) -> usize {
        let cells = &world.subscribers[sub].cells;
        if self.dice.chance(0.6) {
            cells[0]
        } else {
            *self.dice.pick(cells)
        }
    }

    fn voice(&mut self, world: &World, sink: &mut Sink, t0: i64, caller: usize) {
        let start = t0 + self.dice.range(0, HOUR);
        let duration = 5 + (self.dice.unit().powi(3) * 900.0) as i64;
        let records = ("moCallRecord", "mtCallRecord");
        self.two_party(world, sink, caller, start, duration, records, SECOND);
    }

    fn sms(&mut self, world: &World, sink: &mut Sink, t0: i64, caller: usize) {
        let start = t0 + self.dice.range(0, HOUR);
        let records = ("moSMSRecord", "mtSMSRecord");
        self.two_party(world, sink, caller, start, 0, records, 3 * SECOND);
    }

    /// A call or SMS: the originating record of the caller and, when the other party is one
    /// of ours, the terminating record of the callee `mt_delay` later.
    #[allow(clippy::too_many_arguments)]
    fn two_party(
        &mut self,
        world: &World,
        sink: &mut Sink,
        caller: usize,
        start: i64,
        duration: i64,
        (mo, mt): (&'static str, &'static str),
        mt_delay: i64,
    ) {
        let (other, callee) = self.counterparty(world, caller);
        let me = world.subscribers[caller].msisdn.clone();
        let cell = self.serving_cell(world, caller);
        self.row(
            world,
            sink,
            mo,
            caller,
            &me,
            &other,
            start,
            duration,
            cell,
            (0, 0),
        );
        if let Some(c) = callee {
            let cell = self.serving_cell(world, c);
            let t = start + mt_delay;
            self.row(world, sink, mt, c, &me, &other, t, duration, cell, (0, 0));
        }
    }

    fn data(&mut self, world: &World, sink: &mut Sink, t0: i64, sub: usize) {
        let start = t0 + self.dice.range(0, HOUR);
        let duration = 30 + self.dice.below(3000) as i64;
        let cell = self.serving_cell(world, sub);
        let ul = 2_000 + self.dice.below(2_000_000);
        let dl = ul * (3 + self.dice.below(20));
        let me = world.subscribers[sub].msisdn.clone();
        self.row(
            world,
            sink,
            "pGWRecord",
            sub,
            &me,
            "",
            start,
            duration,
            cell,
            (ul, dl),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        world: &World,
        sink: &mut Sink,
        record_type: &'static str,
        served: usize,
        calling: &str,
        called: &str,
        start: i64,
        duration_s: i64,
        cell: usize,
        (ul, dl): (u64, u64),
    ) {
        self.record_id += 1;
        let sub = &world.subscribers[served];
        let c = &world.cells[cell];
        let end = start + duration_s * SECOND;
        let is_data = record_type == "pGWRecord";
        let table = self.schema.table_of(record_type);
        let time = |t: i64| match self.schema.times {
            TimeStyle::LocalOffset => clock::local_iso(t, self.offset_min),
            TimeStyle::UtcNaive => clock::naive_utc(t),
        };
        let mut line = String::with_capacity(256);
        let _ = write!(
            line,
            "{},{},{},{},{},{},{},{},{},{},{duration_s},{MCC},{MNC},{},{},{},{},{},0,{},{},{}",
            self.record_id,
            self.schema.record_type(record_type),
            sub.imsi,
            sub.msisdn,
            sub.imei,
            if is_data { "" } else { calling },
            called,
            time(start),
            if is_data || record_type.contains("SMS") {
                String::new()
            } else {
                time(start + 4 * SECOND)
            },
            time(end),
            c.area,
            c.cell,
            c.radio,
            if is_data { "PGW01" } else { "MSC01" },
            if is_data {
                "normalRelease"
            } else {
                "normalCallClearing"
            },
            ul,
            dl,
            if is_data {
                "internet.operator.example"
            } else {
                ""
            },
        );
        let out = match self.schema.extract {
            ExtractLayout::Daily => self.streams[0],
            ExtractLayout::PerTable => {
                let i = self
                    .schema
                    .tables()
                    .iter()
                    .position(|t| *t == table)
                    .unwrap_or(0);
                self.streams[i]
            }
        };
        sink.text(out, start, line);
        // Which targets this row names, in the places each query compares.
        let served_msisdn = sub.msisdn.clone();
        let names = |m: &str, on: MatchOn| match on {
            MatchOn::Served => served_msisdn == m,
            MatchOn::Parties => (!is_data && calling == m) || called == m,
        };
        let candidates: Vec<String> = [served_msisdn.as_str(), calling, called]
            .into_iter()
            .filter(|m| !m.is_empty() && self.targets.contains(*m))
            .map(String::from)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for m in candidates {
            let mut waves = BTreeSet::new();
            for (q, query) in self.queries.iter().enumerate() {
                if start >= query.from
                    && start < query.executed
                    && query.tables.contains(&table)
                    && query.msisdns.contains(&m)
                    && names(&m, query.match_on)
                {
                    self.exposed[q]
                        .entry(m.clone())
                        .or_default()
                        .add(start, cell);
                    waves.insert(query.wave);
                }
            }
            for w in &waves {
                self.by_wave
                    .entry((*w, m.clone()))
                    .or_default()
                    .add(start, cell);
            }
            if !waves.is_empty() {
                self.total.entry(m.clone()).or_default().add(start, cell);
            }
        }
    }
}

impl Exposed {
    fn add(&mut self, t: i64, cell: usize) {
        self.records += 1;
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        self.cells.insert(cell);
    }
}

/// The cell-site table in the OpenCelliD/MLS CSV format.
pub fn cell_sites_csv(world: &World, created: i64) -> String {
    let mut s = String::from(
        "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n",
    );
    let epoch = created / SECOND;
    for (i, c) in world.cells.iter().enumerate() {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{:.6},{:.6},{},{},0,{epoch},{epoch},{}",
            c.radio,
            MCC.trim_start_matches('0'),
            MNC.trim_start_matches('0'),
            c.area,
            c.cell,
            if c.radio == "LTE" {
                (i % 504).to_string()
            } else {
                String::new()
            },
            c.lon,
            c.lat,
            c.range,
            50 + i * 7 % 400,
            -70 - (i % 30) as i64
        );
    }
    s
}
