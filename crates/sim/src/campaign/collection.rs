//! Stage 7: the CDR queries, run at night from a host that is no application server, one
//! psql session per night; their statements wait in the campaign until their hour comes
//! (`Campaign::db_until`), when the generated CDRs give them their rows.

use super::{Campaign, Collector, Ctx, DbAction, DbStep, Foothold, Implant, WaveState};
use crate::cdr::{MatchOn, TheftQuery};
use crate::clock::{self, DAY, HOUR, MINUTE, SECOND};
use crate::db::{Peer, Session, Statement};
use crate::profile::TheftStyle;
use crate::queries::Sql;
use crate::sink::{Label, Sink};
use crate::windows::{exe, Exe, Who};

impl Campaign {
    /// Reaches the collection host (through WMI, unless it is the jump host) and runs the
    /// night's queries for `targets` there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn collect<'a>(
        &mut self,
        c: &mut Ctx<'a>,
        w: &mut WaveState<'_>,
        sink: &mut Sink,
        hold: &Foothold<'_>,
        implant: &Implant,
        targets: &[String],
    ) -> Collector<'a> {
        let world = c.world;
        let dir = c.kit.dir;
        let (jump, jump_ip, jump_name) = (hold.jump, &hold.jump_ip, &hold.jump_name);
        let db_ip = w.db_ip.clone();
        let host = c.kit.collect_host;
        c.touch(host);
        let cm = c.m(host);
        let chost_ip = c.ip(host);
        let mut ccmd = hold.jcmd.clone();
        if host != w.jump_h {
            w.t += 20 * MINUTE;
            let t = w.t;
            c.label(sink, 4, "T1047", "WMI to the collection host");
            jump.spawn(
                sink,
                &mut c.dice,
                t,
                &implant.ecmd,
                exe("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe"),
                format!("wmic /node:{chost_ip} process call create \"cmd /c mkdir {dir}\""),
            );
            let l = cm.logon(
                sink,
                &mut c.dice,
                t + SECOND,
                &hold.stolen_who,
                3,
                hold.pth,
                (jump_ip, jump_name),
                true,
            );
            let who = Who::of(hold.stolen, l);
            let prv = cm.running(
                &mut c.dice,
                "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                Who::system(),
            );
            ccmd = cm.spawn_as(
                sink,
                &mut c.dice,
                t + 2 * SECOND,
                &prv,
                exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
                format!("cmd /c mkdir {dir}"),
                who,
            );
            c.label(sink, 4, "T1570", "tools copied to the collection host");
            for f in [
                &hold.rar_path,
                &format!("{dir}\\psql.exe"),
                &format!("{dir}\\libpq.dll"),
            ] {
                cm.file(sink, t + 5 * SECOND, &w.system4, f);
            }
        }
        let psql_path = if host == w.jump_h {
            "C:\\Program Files\\PostgreSQL\\15\\bin\\psql.exe".to_string()
        } else {
            format!("{dir}\\psql.exe")
        };
        c.tool(&psql_path);
        let db_user = c.kit.db_user.clone();
        c.truth.db_account = db_user.clone();
        let database = world.profile.db.database;
        let chunks: Vec<&[String]> = targets.chunks(targets.len().div_ceil(2).max(1)).collect();
        let night0 =
            next_local(w.t + 2 * HOUR, 2, c.estate.utc_offset_min) + c.dice.range(0, 40) * MINUTE;
        for (n, chunk) in chunks.iter().enumerate() {
            let tt = night0 + n as i64 * DAY + c.dice.range(0, 30) * MINUTE;
            let out = format!("{dir}\\r{}.csv", n + 1);
            c.label(
                sink,
                7,
                "T1005",
                "database client run on a host that is no DB or application server",
            );
            let psql = cm.spawn(sink, &mut c.dice, tt, &ccmd, Exe { path: &psql_path, pe: "psql.exe", build: 0 }, format!("\"{psql_path}\" -h {db_ip} -U {db_user} -d {database} -f {dir}\\q{}.sql -o {out}", n + 1));
            let port = 52_000 + c.dice.below(9_000) as u16;
            cm.connect(
                sink,
                tt + 200_000,
                &psql,
                "tcp",
                true,
                (&chost_ip, port),
                (&db_ip, 5432),
            );
            cm.file(sink, tt + 40 * SECOND, &psql, &out);
            c.flow(
                sink,
                tt,
                (&chost_ip, port),
                (&db_ip, 5432),
                "postgresql",
                55.0,
                6_000,
                2_400_000,
            );
            self.db_session(c, tt + 300_000, &db_user, &chost_ip, port, chunk, n == 0);
        }
        w.t = night0 + (chunks.len() as i64 - 1) * DAY + 2 * HOUR;
        Collector {
            cm,
            ccmd,
            ip: chost_ip,
        }
    }

    /// One night's psql session: a look at who the targets are (where the estate has a
    /// subscriber table and the intruder that habit), the targeted reads over two years of
    /// history, then an export.
    #[allow(clippy::too_many_arguments)]
    fn db_session(
        &mut self,
        c: &mut Ctx<'_>,
        t: i64,
        user: &str,
        host: &str,
        port: u16,
        msisdns: &[String],
        copy: bool,
    ) {
        let world = c.world;
        let habits = world.profile.habits;
        let schema = world.profile.db.schema;
        let sql = Sql(&schema);
        let session = self.sessions.len();
        self.sessions.push(Session::new(
            20_000 + c.dice.below(30_000) as u32,
            Peer {
                user,
                db: world.profile.db.database,
                app: "psql",
                host,
                port,
            },
            t,
            c.estate.log,
        ));
        let from = t - 730 * DAY;
        let from_s = clock::date(from);
        let until_s = clock::date(t + DAY);
        // As the intruder writes them: international digits, or the national `0…` form.
        let written: Vec<String> = msisdns
            .iter()
            .map(|m| {
                if c.kit.national {
                    format!("0{}", &m[crate::ids::COUNTRY_CODE.len()..])
                } else {
                    m.clone()
                }
            })
            .collect();
        let mut tt = t + 5 * SECOND;
        let label = Label {
            wave: c.kit.wave,
            stage: 7,
            technique: "T1005",
            what: "targeted CDR query for a few subscribers over two years",
        };
        self.db_steps.push(DbStep {
            time: t,
            session,
            action: DbAction::Connect,
            label: label.clone(),
        });
        if habits.subscriber_recon {
            if let Some((text, table)) = sql.recon(&written) {
                self.db_steps.push(DbStep {
                    time: tt,
                    session,
                    action: DbAction::Plain(Statement::select(
                        table,
                        text,
                        None,
                        msisdns.len() as u64,
                    )),
                    label: Label {
                        technique: "T1213",
                        what: "targets looked up in the subscriber table",
                        ..label.clone()
                    },
                });
                tt += c.dice.range(20, 90) * SECOND;
            }
        }
        let match_on = match habits.theft {
            TheftStyle::Parties => MatchOn::Parties,
            _ => MatchOn::Served,
        };
        let mut tables = vec![schema.voice];
        if schema.sms != schema.voice {
            tables.push(schema.sms);
        }
        for table in &tables {
            let text = sql.theft(habits.theft, table, &written, &from_s, &until_s, false);
            self.push_query(
                c.kit.wave,
                tt,
                session,
                Statement::select(table, text, None, 0),
                msisdns,
                table,
                from,
                match_on,
                label.clone(),
            );
            tt += c.dice.range(20, 200) * SECOND;
        }
        if copy {
            let text = sql.theft(
                habits.theft,
                schema.voice,
                &written,
                &from_s,
                &until_s,
                true,
            );
            self.push_query(
                c.kit.wave,
                tt,
                session,
                Statement::select(schema.voice, text, None, 0),
                msisdns,
                schema.voice,
                from,
                match_on,
                Label {
                    what: "targeted CDR export",
                    ..label.clone()
                },
            );
            tt += 30 * SECOND;
        }
        self.db_steps.push(DbStep {
            time: tt,
            session,
            action: DbAction::Disconnect,
            label,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn push_query(
        &mut self,
        wave: u8,
        t: i64,
        session: usize,
        statement: Statement,
        msisdns: &[String],
        table: &'static str,
        from: i64,
        match_on: MatchOn,
        label: Label,
    ) {
        self.queries.push(TheftQuery {
            wave,
            msisdns: msisdns.to_vec(),
            tables: vec![table],
            from,
            executed: t,
            match_on,
        });
        let query = self.queries.len() - 1;
        self.db_steps.push(DbStep {
            time: t,
            session,
            action: DbAction::Run(statement, query),
            label,
        });
    }
}

/// The next moment at or after `t` when it is `hour` o'clock local time.
fn next_local(t: i64, hour: i64, offset_min: i32) -> i64 {
    let off = i64::from(offset_min) * MINUTE;
    let local = t + off;
    let mut target = local - local.rem_euclid(DAY) + hour * HOUR;
    if target < local {
        target += DAY;
    }
    target - off
}
