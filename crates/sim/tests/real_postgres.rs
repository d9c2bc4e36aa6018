//! Replays a simulated day of CDR-warehouse traffic into a real PostgreSQL with pgaudit and
//! compares what the real server logged with what the simulator wrote, line by line: the
//! prefix, the connection lines, and every AUDIT field except the counters and row counts
//! (the real tables hold only that day's CDRs, loaded by replaying the simulated mediation
//! loads themselves).
//!
//! Needs PostgreSQL and pgaudit (`scripts/test.sh` installs Debian's `postgresql` and
//! `postgresql-15-pgaudit`). Runs the server as the `postgres` user when the test runs as root.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use postgres::types::Type;
use postgres::{Client, NoTls};
use towerwatch_testkit::LocalPostgres;

/// The real server (`towerwatch_testkit`), with pgaudit loaded as the simulator's
/// profile says, and clients as the simulated ones connect.
struct Server {
    pg: LocalPostgres,
    log: PathBuf,
}

impl Server {
    fn start() -> Server {
        let pg = LocalPostgres::start(towerwatch_sim::db::SERVER_SETTINGS);
        Server {
            log: pg.log.clone(),
            pg,
        }
    }

    fn connect(&self, user: &str, db: &str, app: &str) -> Result<Client, postgres::Error> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.pg.port)
            .user(user)
            .dbname(db)
            .application_name(app)
            .connect(NoTls)
    }

    fn stop(&mut self) {
        self.pg.stop();
    }
}

/// One server log record (continuation lines joined).
#[derive(Debug, Clone)]
struct Record {
    pid: String,
    user: String,
    db: String,
    app: String,
    message: String,
}

/// Parses `%m [%p] user=%u,db=%d,app=%a,client=%h LEVEL:  message`; panics on any other
/// shape, and on levels other than LOG when `only_log`.
fn parse_log(text: &str, only_log: bool) -> Vec<Record> {
    let mut skipping = false;
    let mut out: Vec<Record> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if skipping {
                continue;
            }
            let last = out.last_mut().expect("continuation after a record");
            last.message.push('\n');
            last.message.push_str(rest);
            continue;
        }
        let (stamp, rest) = line
            .split_once(" UTC [")
            .unwrap_or_else(|| panic!("no time/pid: {line}"));
        assert_eq!(stamp.len(), 23, "timestamp {stamp}");
        let (pid, rest) = rest
            .split_once("] user=")
            .unwrap_or_else(|| panic!("no pid: {line}"));
        let (user, rest) = rest.split_once(",db=").unwrap();
        let (db, rest) = rest.split_once(",app=").unwrap();
        let (app, rest) = rest.split_once(",client=").unwrap();
        let (_client, rest) = rest.split_once(' ').unwrap();
        let Some(message) = rest.strip_prefix("LOG:  ") else {
            assert!(!only_log, "not a LOG record: {line}");
            assert!(rest.split_once(":  ").is_some(), "no severity: {line}");
            skipping = true;
            continue;
        };
        skipping = false;
        out.push(Record {
            pid: pid.into(),
            user: user.into(),
            db: db.into(),
            app: app.into(),
            message: message.into(),
        });
    }
    out
}

/// Splits one CSV record (pgaudit's quoting).
fn csv(s: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// What must agree between the simulated and the real line.
fn shape(r: &Record) -> String {
    let m = &r.message;
    let masked = if let Some(a) = m.strip_prefix("AUDIT: ") {
        let f = csv(a);
        assert!(
            (9..=10).contains(&f.len()),
            "AUDIT with {} fields: {m}",
            f.len()
        );
        format!(
            "AUDIT {} sub={} {} {} {} {} [{}] [{}]",
            f[0], f[2], f[3], f[4], f[5], f[6], f[7], f[8]
        )
    } else if m.starts_with("connection received: host=") {
        "connection received: host=H port=P".into()
    } else if let Some(rest) = m.strip_prefix("disconnection: session time: ") {
        let (_time, who) = rest.split_once(' ').unwrap();
        let who = who.split(" host=").next().unwrap();
        format!("disconnection: {who}")
    } else {
        m.clone()
    };
    format!("user={} db={} app={} {masked}", r.user, r.db, r.app)
}

/// Records grouped into sessions (connection received .. disconnection), in the order the
/// sessions connected.
fn sessions(records: &[Record]) -> Vec<Vec<Record>> {
    let mut all: Vec<Vec<Record>> = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    for r in records {
        if r.message.starts_with("connection received") {
            open.push((r.pid.clone(), all.len()));
            all.push(vec![r.clone()]);
            continue;
        }
        let Some(i) = open.iter().rposition(|(p, _)| *p == r.pid) else {
            continue;
        };
        all[open[i].1].push(r.clone());
        if r.message.starts_with("disconnection") {
            open.remove(i);
        }
    }
    all
}

#[test]
fn simulated_pgaudit_log_has_the_shape_a_real_server_writes() {
    let dir = tempfile::tempdir().unwrap();
    common::run(&common::small(31), dir.path());
    // The day the first wave queried the CDRs.
    let labels = common::labels(dir.path());
    let file = labels
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .find(|f| f.starts_with("evidence/postgresql/"))
        .expect("the campaign queried the warehouse")
        .to_string();
    // And the first day a lawful-disclosure request was answered, for the register.
    let pg_dir = dir.path().join("evidence/postgresql/CDRDB01");
    let mut day_files: Vec<String> = std::fs::read_dir(&pg_dir)
        .unwrap()
        .map(|e| {
            format!(
                "evidence/postgresql/CDRDB01/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    day_files.sort();
    let rd_file = day_files
        .iter()
        .find(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .contains("user=rds_handover")
        })
        .expect("some day answers a disclosure request")
        .clone();
    let mut days = vec![file.clone()];
    if rd_file != file {
        days.push(rd_file);
    }
    let ours_text: String = days
        .iter()
        .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap())
        .collect();
    let ours = parse_log(&ours_text, true);
    let ours_sessions = sessions(&ours);
    assert!(ours_sessions.len() > 20, "{} sessions", ours_sessions.len());
    let theft = ours
        .iter()
        .filter(|r| r.message.contains("served_msisdn in ("))
        .count();
    assert!(theft >= 2, "the day holds the campaign's queries");

    // The days' CDRs, per table, for the mediation loads.
    let mut header = String::new();
    let mut all_rows: Vec<String> = Vec::new();
    for f in &days {
        let day = f
            .rsplit("postgresql-")
            .next()
            .unwrap()
            .trim_end_matches(".log")
            .replace('-', "");
        let cdr = std::fs::read_to_string(dir.path().join(format!("cdr/cdr_{day}.csv"))).unwrap();
        let mut lines = cdr.lines();
        header = lines.next().unwrap().to_string();
        all_rows.extend(lines.map(String::from));
    }
    let rows: Vec<&str> = all_rows.iter().map(String::as_str).collect();
    // Each of the day's loads into a table carries its own share of that table's rows.
    let loads = |table: &str| {
        ours.iter()
            .filter(|r| {
                r.message.contains(&format!("COPY {table} (")) && r.message.contains("FROM STDIN")
            })
            .count()
    };
    let mut batches: std::collections::BTreeMap<&str, std::collections::VecDeque<String>> =
        Default::default();
    for table in ["cdr.voice_cdr", "cdr.sms_cdr", "cdr.data_cdr"] {
        let mine: Vec<&str> = rows
            .iter()
            .copied()
            .filter(|r| {
                towerwatch_sim::PROFILES[0]
                    .db
                    .schema
                    .table_of(r.split(',').nth(1).unwrap())
                    == table
            })
            .collect();
        let per = mine.len().div_ceil(loads(table).max(1)).max(1);
        batches.insert(
            table,
            mine.chunks(per)
                .map(|c| format!("{header}\n{}\n", c.join("\n")))
                .collect(),
        );
    }

    let mut server = Server::start();
    let mut admin = server.connect("postgres", "postgres", "setup").unwrap();
    admin.batch_execute("CREATE DATABASE cdrdw").unwrap();
    drop(admin);
    let mut admin = server.connect("postgres", "cdrdw", "setup").unwrap();
    admin.batch_execute("CREATE EXTENSION pgaudit").unwrap();
    admin.batch_execute(towerwatch_sim::db::SCHEMA_SQL).unwrap();
    let users: BTreeSet<&str> = ours_sessions.iter().map(|s| s[1].user.as_str()).collect();
    for u in &users {
        admin
            .batch_execute(&format!("CREATE ROLE {u} LOGIN; GRANT USAGE ON SCHEMA cdr TO {u}; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA cdr TO {u};"))
            .unwrap();
    }
    drop(admin);

    let mut replayed = 0;
    for s in &ours_sessions {
        let auth = &s[1];
        assert!(
            auth.message.starts_with("connection authorized"),
            "{:?}",
            auth
        );
        let app = auth.message.rsplit("application_name=").next().unwrap();
        let mut client = server
            .connect(&auth.user, &auth.db, app)
            .unwrap_or_else(|e| panic!("{}: {e}", auth.user));
        for r in s.iter().filter(|r| r.message.starts_with("AUDIT: ")) {
            let f = csv(r.message.strip_prefix("AUDIT: ").unwrap());
            if f[2] != "1" {
                continue;
            }
            let (text, params) = (&f[7], &f[8]);
            let lower = text.to_ascii_lowercase();
            if params != "<none>" {
                let values = csv(params);
                let stmt = client
                    .prepare_typed(text, &vec![Type::TEXT; values.len()])
                    .unwrap();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                client
                    .query(&stmt, &refs)
                    .unwrap_or_else(|e| panic!("{text}: {e:?}"));
            } else if lower.starts_with("copy ") && lower.contains(" from stdin") {
                let table = text.split_whitespace().nth(1).unwrap();
                let mut w = client.copy_in(text.as_str()).unwrap();
                let batch = batches
                    .get_mut(table)
                    .and_then(|b| b.pop_front())
                    .unwrap_or_else(|| format!("{header}\n"));
                w.write_all(batch.as_bytes()).unwrap();
                w.finish().unwrap_or_else(|e| panic!("{text}: {e:?}"));
            } else if lower.starts_with("copy ") {
                let mut out = Vec::new();
                client
                    .copy_out(text.as_str())
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            } else {
                client
                    .simple_query(text)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
            }
            replayed += 1;
        }
        drop(client);
        // Let the server log the disconnection before the next session connects.
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(replayed > 50, "{replayed} statements replayed");
    server.stop();

    let real_text = std::fs::read_to_string(&server.log).unwrap();
    let real: Vec<Record> = parse_log(&real_text, false);
    let real_sessions: Vec<Vec<Record>> = sessions(&real)
        .into_iter()
        .filter(|s| {
            s.get(1)
                .is_some_and(|a| !a.message.contains("user=postgres "))
        })
        .collect();
    assert_eq!(
        real_sessions.len(),
        ours_sessions.len(),
        "sessions in the real log"
    );
    let mut compared = 0;
    for (o, r) in ours_sessions.iter().zip(&real_sessions) {
        let (os, rs): (Vec<String>, Vec<String>) =
            (o.iter().map(shape).collect(), r.iter().map(shape).collect());
        if let Some(i) = (0..os.len().max(rs.len())).find(|&i| os.get(i) != rs.get(i)) {
            panic!(
                "session of {} ({}), line {i}:\n  simulated: {:?}\n  real:      {:?}",
                o[1].user,
                o[1].app,
                os.get(i),
                rs.get(i)
            );
        }
        compared += os.len();
    }
    // Every statement's line(s), and three connection lines per session.
    assert!(
        compared >= replayed + 3 * ours_sessions.len(),
        "{compared} lines compared"
    );
    // The campaign's queries are among them, multi-line statements included.
    let theft_real: Vec<&Record> = real
        .iter()
        .filter(|r| r.message.contains("served_msisdn in ("))
        .collect();
    assert_eq!(theft_real.len(), theft);
    assert!(theft_real.iter().any(|r| r.message.contains('\n')));

    // towerwatch's CDR analytics on the log the real server wrote: the findings are exactly the
    // replayed theft statements; the benign replay (care, billing, BI, backups, mediation, the
    // DBA, lawful disclosure under the register) raises nothing.
    let settings = towerwatch_cdr::analytics::Settings {
        register: towerwatch_cdr::run::read_register(&dir.path().join("context/rd_requests.csv"))
            .unwrap(),
        ..Default::default()
    };
    // The prefix is found from the log itself.
    let run = towerwatch_cdr::run::run(
        std::slice::from_ref(&server.log),
        &Default::default(),
        settings,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(run.rejected_count(), 0, "{:?}", run.rejected);
    assert_eq!(
        run.analytics.unanalysed_count, 0,
        "{:?}",
        run.analytics.unanalysed
    );
    let audit = |r: &Record| csv(r.message.strip_prefix("AUDIT: ").unwrap());
    let malicious: BTreeSet<String> = ours
        .iter()
        .filter(|r| r.message.contains("served_msisdn in (") && audit(r)[2] == "1")
        .map(|r| audit(r)[7].clone())
        .collect();
    assert!(malicious.len() >= 2);
    for f in &run.findings {
        assert!(
            malicious.contains(&f.event.audit.statement),
            "false alarm on the benign replay: {:?} {}",
            f.rule,
            f.event.audit.statement
        );
    }
    let targeted: BTreeSet<String> = run
        .findings
        .iter()
        .filter(|f| f.rule == towerwatch_cdr::analytics::Rule::TargetedLookup)
        .map(|f| f.event.audit.statement.clone())
        .collect();
    assert_eq!(
        targeted, malicious,
        "every replayed theft statement is found"
    );
    // Disclosure lookups over more than the long-range threshold look exactly like the theft;
    // the register must authorise every one of them (shorter ones are no targeted lookups).
    let long_range = |r: &&Record| {
        let p = csv(&audit(r)[8]);
        let bound = |i: usize| towerwatch_cdr::analytics::parse_bound(&p[i]).unwrap();
        bound(2).duration_since(bound(1)).as_hours() > 24 * 92
    };
    let disclosures = ours
        .iter()
        .filter(|r| r.user == "rds_handover" && r.message.starts_with("AUDIT: "))
        .filter(long_range)
        .count() as u64;
    assert!(
        disclosures >= 1,
        "the replay holds long-range disclosure lookups"
    );
    println!(
        "replayed day: {} theft statements found, {} findings, {disclosures} disclosure lookups authorised",
        targeted.len(),
        run.findings.len()
    );
    assert_eq!(
        run.analytics.authorised, disclosures,
        "lawful-disclosure lookups authorised by the register"
    );
}
