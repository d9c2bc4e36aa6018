//! Traffic of the CDR store: checkpoints, mediation loads, customer care's pooled lookups,
//! the bill run, BI dashboards, and lawful-disclosure requests (with their register).

use super::{db_ip, Background, DisclosureRequest};
use crate::clock::{self, DAY, HOUR, MINUTE, SECOND};
use crate::db::Statement;
use crate::queries::Sql;
use crate::sink::Sink;
use crate::world::{AccountKind, Role};

impl Background<'_> {
    /// The hour's work of the CDR store (`lh`, `wd`: local hour and weekday).
    pub(super) fn db_traffic(
        &mut self,
        sink: &mut Sink,
        t0: i64,
        lh: u32,
        wd: u32,
        business: bool,
    ) {
        let world = self.world;
        let db = self.estate.db;
        let schema = world.profile.db.schema;
        let sql = Sql(&schema);
        let db_ip = db_ip(world).to_string();
        // The server's own processes write too: a checkpoint every hour.
        self.estate
            .log
            .background(sink, db, t0 + 2 * MINUTE, 61, "checkpoint starting: time");
        self.estate.log.background(
            sink,
            db,
            t0 + 2 * MINUTE + 40 * SECOND,
            61,
            &format!(
                "checkpoint complete: wrote {} buffers ({:.1}%); 0 WAL file(s) added, 0 removed, 1 recycled; write={:.3} s, sync=0.004 s, total={:.3} s",
                200 + self.dice.below(3000),
                self.dice.unit() * 5.0,
                30.0 + self.dice.unit() * 9.0,
                40.0 + self.dice.unit() * 9.0
            ),
        );
        // Mediation loads every hour from each mediation server, into the hour's partitions.
        let meds: Vec<String> = world
            .hosts_with(Role::Mediation)
            .into_iter()
            .map(|i| world.hosts[i].ip.clone())
            .collect();
        for (i, med) in meds.iter().enumerate() {
            let t = t0 + (5 + 30 * i as i64) * MINUTE + self.dice.range(0, MINUTE);
            let port = self.dice.range(49_152, 65_000) as u16;
            let mut s = self.session("mediation_loader", "mediation-loader", med, port, t);
            s.connect(sink, db);
            let mut tt = t + SECOND;
            for table in schema.tables() {
                s.run(
                    sink,
                    db,
                    tt,
                    &Statement {
                        class: "WRITE",
                        command: "COPY",
                        object: None,
                        text: sql.load(&schema.partition(table, t)),
                        params: None,
                        rows: 0,
                    },
                );
                tt += self.dice.range(2, 20) * SECOND;
            }
            s.disconnect(sink, db, tt);
            self.flow(
                sink,
                t,
                (med, port),
                (&db_ip, 5432),
                "tcp",
                "postgresql",
                (tt - t) as f64 / 1e6,
                2_500_000,
                4_000,
            );
        }
        // Customer care: one pooled connection per care server for the working day.
        let care: Vec<String> = world
            .hosts_with(Role::CareApp)
            .into_iter()
            .map(|i| world.hosts[i].ip.clone())
            .collect();
        if business {
            for (i, ip) in care.iter().enumerate() {
                if self.pool_sessions[i].is_none() {
                    let port = self.dice.range(49_152, 65_000) as u16;
                    let start = t0 + self.dice.range(0, 5 * MINUTE);
                    let s = self.session("care_app", "PostgreSQL JDBC Driver", ip, port, start);
                    s.connect(sink, db);
                    self.pool_sessions[i] = Some(s);
                }
                let agents = world.accounts_of(AccountKind::CareAgent).len() as f64;
                let lookups = self.dice.poisson(agents * 1.5 / care.len() as f64);
                for _ in 0..lookups {
                    let t = self.at(t0 + 5 * MINUTE, 55 * MINUTE);
                    let sub = self.dice.pick(&world.subscribers);
                    // Who calls first: the caller's line, then their records.
                    if let Some((text, table)) = sql.care_subscriber() {
                        if self.dice.chance(0.5) {
                            let stmt =
                                Statement::select(table, text, Some(vec![sub.msisdn.clone()]), 1);
                            if let Some(s) = self.pool_sessions[i].as_mut() {
                                s.run(sink, db, t - 2 * SECOND, &stmt);
                            }
                        }
                    }
                    let days = *self.dice.pick(&[7, 30, 30, 31, 60, 90]);
                    let end = t - t.rem_euclid(DAY);
                    let table =
                        *self
                            .dice
                            .pick(&[schema.voice, schema.voice, schema.sms, schema.data]);
                    let stmt = Statement::select(
                        table,
                        sql.care_lookup(table),
                        Some(vec![
                            sub.msisdn.clone(),
                            clock::pg_timestamptz(end - days * DAY),
                            clock::pg_timestamptz(end + DAY),
                        ]),
                        5 + self.dice.below(150),
                    );
                    if let Some(s) = self.pool_sessions[i].as_mut() {
                        s.run(sink, db, t, &stmt);
                    }
                }
            }
        } else if lh == 18 {
            for slot in &mut self.pool_sessions {
                if let Some(s) = slot.take() {
                    s.disconnect(sink, db, t0 + 2 * MINUTE);
                }
            }
        }
        // The nightly bill run.
        if lh == 3 {
            let t = t0 + 10 * MINUTE;
            let billing = world.hosts[world.one(Role::Billing)].ip.clone();
            let mut s = self.session("billing_batch", "bill-run", &billing, 50_211, t);
            s.connect(sink, db);
            let day = t - t.rem_euclid(DAY);
            s.run(
                sink,
                db,
                t + 2 * SECOND,
                &Statement::select(
                    schema.voice,
                    sql.bill_run(),
                    Some(vec![
                        clock::pg_timestamptz(day - DAY),
                        clock::pg_timestamptz(day),
                    ]),
                    world.subscribers.len() as u64 * 2,
                ),
            );
            s.disconnect(sink, db, t + 9 * MINUTE);
        }
        // BI refreshes cell-load dashboards each weekday morning.
        if wd < 5 && lh == 10 {
            let t = t0 + self.dice.range(0, 10 * MINUTE);
            let bi = world.hosts[world.one(Role::Analytics)].ip.clone();
            let mut s = self.session("bi_reader", "Metabase", &bi, 51_002, t);
            s.connect(sink, db);
            s.run(
                sink,
                db,
                t + SECOND,
                &Statement::select(
                    schema.data,
                    sql.bi_refresh(),
                    Some(vec![clock::pg_timestamptz(t - t.rem_euclid(DAY) - 7 * DAY)]),
                    world.cells.len() as u64 * 7,
                ),
            );
            s.disconnect(sink, db, t + 40 * SECOND);
        }
        // Lawful disclosure: a registered request for one subscriber over many months.
        if business && self.dice.chance(0.03) {
            sink.set_twin(Some("lawful-disclosure"));
            let t = self.at(t0, HOUR);
            let sub = self.dice.pick(&world.subscribers).msisdn.clone();
            let months = self.dice.range(3, 13);
            let from = t - t.rem_euclid(DAY) - months * 30 * DAY;
            let to = t - t.rem_euclid(DAY);
            let case_id = format!(
                "RD-{}-{:04}",
                clock::parts(t).y,
                100 + self.disclosures.len()
            );
            let port = 52_000 + self.dice.below(999) as u16;
            let rds = world.hosts[world.one(Role::LawfulDisclosure)].ip.clone();
            let mut s = self.session("rds_handover", "RDHandover", &rds, port, t);
            s.connect(sink, db);
            let mut tables = vec![schema.voice];
            if schema.sms != schema.voice {
                tables.push(schema.sms);
            }
            for (k, table) in tables.into_iter().enumerate() {
                s.run(
                    sink,
                    db,
                    t + (2 + k as i64) * SECOND,
                    &Statement::select(
                        table,
                        sql.disclosure(table, &case_id),
                        Some(vec![
                            sub.clone(),
                            clock::pg_timestamptz(from),
                            clock::pg_timestamptz(to),
                        ]),
                        20 + self.dice.below(400),
                    ),
                );
            }
            s.disconnect(sink, db, t + 10 * SECOND);
            sink.set_twin(None);
            let officer = world.accounts_of(AccountKind::DisclosureOfficer)[0]
                .name
                .clone();
            self.disclosures.push(DisclosureRequest {
                case_id,
                msisdn: sub,
                from,
                to,
                officer,
                account: "rds_handover".into(),
            });
        }
    }
}
