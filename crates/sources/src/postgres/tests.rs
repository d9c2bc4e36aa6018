use super::*;
use crate::{read_bytes, Format, ReadOptions};

fn read(
    text: &str,
    source: &str,
    prefix: Option<&str>,
) -> (Vec<Event>, Vec<String>, crate::InputReport) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let opts = ReadOptions {
        log_line_prefix: prefix.map(|p| LinePrefix::new(p).unwrap()),
        ..ReadOptions::default()
    };
    let report = read_bytes(source, text.as_bytes(), &opts, &mut |r| match r {
        Ok(e) => ok.push(e),
        Err(e) => bad.push(e.to_string()),
    });
    (ok, bad, report)
}

fn field<'a>(e: &'a Event, k: &'a str) -> Option<&'a str> {
    e.first_str(k)
}

#[test]
fn debian_prefix_sessions_fill_client_and_application() {
    let log = "2024-05-01 22:10:01.123 +03 [17] LOG:  checkpoint starting: time\n\
2024-05-01 22:10:02.000 +03 [4242] [unknown]@[unknown] LOG:  connection received: host=10.9.8.7 port=51234\n\
2024-05-01 22:10:02.010 +03 [4242] cdr_ro@cdrdw LOG:  connection authorized: user=cdr_ro database=cdrdw application_name=psql\n\
2024-05-01 22:10:03.000 +03 [4242] cdr_ro@cdrdw LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,dwh.call_events,\"select *\n\
\tfrom dwh.call_events where a_number in ('0712345678')\",<none>\n\
2024-05-01 22:10:04.000 +03 [4242] cdr_ro@cdrdw LOG:  disconnection: session time: 0:00:02.000 user=cdr_ro database=cdrdw host=10.9.8.7 port=51234\n\
2024-05-01 22:11:00.000 +03 [4242] other@cdrdw LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>\n";
    let (ok, bad, report) = read(log, "evidence/db/postgresql-2024-05-01.log", None);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(report.format, Format::PostgresStderr);
    assert_eq!(
        report.detail.as_deref(),
        Some("log_line_prefix '%m [%p] %q%u@%d ' (detected: debian/ubuntu)")
    );
    assert_eq!(ok.len(), 6);
    assert_eq!(field(&ok[0], "process_id"), Some("17"));
    assert_eq!(field(&ok[0], "user_name"), None);
    let audit = &ok[3];
    assert_eq!(audit.origin.locator, towerwatch_event::Locator::Line(4));
    assert_eq!(field(audit, "remote_host"), Some("10.9.8.7"));
    assert_eq!(field(audit, "remote_port"), Some("51234"));
    assert_eq!(field(audit, "application_name"), Some("psql"));
    assert_eq!(
        field(audit, "statement"),
        Some("select *\nfrom dwh.call_events where a_number in ('0712345678')")
    );
    assert_eq!(field(audit, "class"), Some("READ"));
    assert_eq!(audit.timestamp.unwrap().to_string(), "2024-05-01T19:10:03Z");
    let sid = field(audit, "session_id").unwrap().to_string();
    assert_eq!(field(&ok[4], "session_id"), Some(sid.as_str()));
    // After the disconnection the pid is a new session we know nothing of.
    assert_eq!(field(&ok[5], "remote_host"), None);
    assert_eq!(audit.computer, None);
}

#[test]
fn a_given_prefix_rejects_lines_it_does_not_read_and_host_comes_from_the_path() {
    let log = "2019-03-06 18:55:00.300 UTC [49963] user=care_app,db=cdrdw,app=PostgreSQL JDBC Driver,client=10.40.0.20 LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,cdr.voice_cdr,select 1 where x = $1,\"999700000002,2019-01-01 00:00:00+00\",1\n\
garbage line\n\
\tstray continuation\n";
    let (ok, bad, report) = read(
        &format!("2019-03-06 18:54:00.000 UTC [1] user=a,db=b,app=c,client=d LOG:  x\n{log}"),
        "evidence/postgresql/CDRDB01/postgresql-2019-03-06.log",
        Some("%m [%p] user=%u,db=%d,app=%a,client=%h "),
    );
    assert_eq!(ok.len(), 2);
    assert_eq!(
        field(&ok[1], "application_name"),
        Some("PostgreSQL JDBC Driver")
    );
    assert_eq!(
        field(&ok[1], "parameter"),
        Some("999700000002,2019-01-01 00:00:00+00")
    );
    assert_eq!(field(&ok[1], "rows"), Some("1"));
    assert_eq!(ok[1].computer.as_deref(), Some("CDRDB01"));
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].ends_with(
            ":3: line does not match the log_line_prefix '%m [%p] user=%u,db=%d,app=%a,client=%h '"
        ),
        "{}",
        bad[0]
    );
    assert!(bad[1].contains(":4: continuation line without a record"));
    assert_eq!(report.rejected, 2);
}

#[test]
fn csvlog_and_jsonlog() {
    let csv = "2015-08-12 16:13:44.854 UTC,\"vagrant\",\"postgres\",22614,\"10.0.0.5:5566\",55cb70b8.5856,8,\"SELECT\",2015-08-12 16:13:44 UTC,2/25,0,LOG,00000,\"AUDIT: SESSION,2,1,READ,SELECT,,,\"\"SELECT a,\nb\"\",<not logged>\",,,,,,,,\"log_audit_event, pgaudit.c:686\",\"psql\"\n\
2015-08-12 16:13:45.000 UTC,\"vagrant\",\"postgres\",1,\"x\",1,1\n";
    let (ok, bad, report) = read(csv, "pg.csv", None);
    assert_eq!(report.format, Format::PostgresCsv);
    assert_eq!(ok.len(), 1, "{bad:?}");
    assert_eq!(field(&ok[0], "statement"), Some("SELECT a,\nb"));
    assert_eq!(field(&ok[0], "remote_host"), Some("10.0.0.5"));
    assert_eq!(field(&ok[0], "remote_port"), Some("5566"));
    assert_eq!(field(&ok[0], "session_id"), Some("55cb70b8.5856"));
    assert!(
        bad[0].contains(":3: csvlog record with 7 columns"),
        "{bad:?}"
    );
    let json = "{\"timestamp\":\"2022-07-26 10:45:16.563 UTC\",\"user\":\"cdr_ro\",\"dbname\":\"cdrdw\",\"pid\":3361,\"remote_host\":\"10.20.4.17\",\"remote_port\":51514,\"error_severity\":\"LOG\",\"message\":\"AUDIT: SESSION,3,1,READ,SELECT,TABLE,cdr.voice_cdr,select 1,<none>,1843\",\"application_name\":\"psql\"}\n{broken\n";
    let (ok, bad, report) = read(json, "pg.json", None);
    assert_eq!(report.format, Format::PostgresJson);
    assert_eq!(field(&ok[0], "rows"), Some("1843"));
    assert_eq!(field(&ok[0], "remote_port"), Some("51514"));
    assert_eq!(field(&ok[0], "process_id"), Some("3361"));
    assert!(bad[0].contains(":2: not a jsonlog record"));
}

#[test]
fn an_unreadable_prefix_fails_the_input_with_advice() {
    let (ok, bad, report) = read(
        "xx LOG:  one\nyy LOG:  two\nzz LOG:  three\n",
        "pg.log",
        None,
    );
    assert!(ok.is_empty());
    assert_eq!(report.format, Format::PostgresStderr);
    assert!(
        report.failure.unwrap().contains("--log-line-prefix"),
        "{bad:?}"
    );
}

#[test]
fn paths_name_hosts_only_when_they_look_like_one() {
    assert_eq!(
        host_from_path("evidence/postgresql/CDRDB01/x.log").as_deref(),
        Some("CDRDB01")
    );
    assert_eq!(
        host_from_path("evidence/web/KUL-WEB-03/localhost_access_log.txt").as_deref(),
        Some("KUL-WEB-03")
    );
    assert_eq!(host_from_path("evidence/db/postgresql.log"), None);
    assert_eq!(
        host_from_path("/var/log/postgresql/postgresql-15-main.log"),
        None
    );
    assert_eq!(host_from_path("x.log"), None);
}

#[test]
fn a_session_opened_in_yesterdays_file_names_its_client_today() {
    let dir = tempfile::tempdir().unwrap();
    let day1 = "2024-05-01 23:59:00.000 +03 [17] LOG:  checkpoint starting: time\n\
2024-05-01 23:59:58.000 +03 [4242] [unknown]@[unknown] LOG:  connection received: host=10.9.8.7 port=51234\n\
2024-05-01 23:59:58.010 +03 [4242] cdr_ro@cdrdw LOG:  connection authorized: user=cdr_ro database=cdrdw application_name=psql\n\
2024-05-01 23:59:59.000 +03 [5151] [unknown]@[unknown] LOG:  connection received: host=10.9.8.8 port=40000\n\
2024-05-01 23:59:59.500 +03 [5151] bi@cdrdw LOG:  disconnection: session time: 0:00:00.500 user=bi database=cdrdw host=10.9.8.8 port=40000\n";
    let day2 = "2024-05-02 00:00:03.000 +03 [4242] cdr_ro@cdrdw LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,dwh.call_events,\"select * from dwh.call_events where a_number = '0712345678'\",<none>\n\
2024-05-02 00:00:04.000 +03 [5151] bi@cdrdw LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>\n";
    // Another series in the same directory is not this one's history.
    let other = "2024-05-01 23:59:58.000 +03 [4242] [unknown]@[unknown] LOG:  connection received: host=10.0.0.66 port=1\n";
    std::fs::write(dir.path().join("postgresql-2024-05-01.log"), day1).unwrap();
    std::fs::write(dir.path().join("postgresql-2024-05-02.log"), day2).unwrap();
    std::fs::write(dir.path().join("replica-2024-05-01.log"), other).unwrap();
    let opts = ReadOptions::default();
    let mut events = Vec::new();
    let path = dir.path().join("postgresql-2024-05-02.log");
    let report = crate::read_input(&crate::Input::File(path), &opts, &mut |r| {
        events.push(r.unwrap())
    });
    assert_eq!(report.rejected, 0);
    assert_eq!(field(&events[0], "remote_host"), Some("10.9.8.7"));
    assert_eq!(field(&events[0], "remote_port"), Some("51234"));
    assert_eq!(field(&events[0], "application_name"), Some("psql"));
    // A backend that disconnected before the file began carries nothing over.
    assert_eq!(field(&events[1], "remote_host"), None);
}

#[test]
fn a_non_ascii_character_before_a_colon_is_no_panic() {
    // Found by fuzzing: the severity search stepped into the middle of `£`.
    let text = "#Software\u{a3}:  Info\n2024-05-01 22:10:01.123 UTC [1] \u{e9}LOG:  x\n";
    let (ok, bad, report) = read(text, "x.log", None);
    assert_eq!(report.events, ok.len() as u64);
    assert_eq!(report.rejected, bad.len() as u64);
}
