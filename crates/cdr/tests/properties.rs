//! Bad input never panics and nothing is lost silently: arbitrary text through the audit-log
//! readers and the SQL analysis; pgaudit's CSV quoting round-trips through the splitter.

use proptest::prelude::*;
use towerwatch_cdr::analytics::Settings;
use towerwatch_cdr::record::DbEvent;
use towerwatch_sources::postgres::{split_csv, LinePrefix};
use towerwatch_sources::ReadOptions;

const PREFIX: &str = "%m [%p] user=%u,db=%d,app=%a,client=%h ";

/// Lines that look like the real thing more often than random bytes would.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2019-03-06 18:55:00.300 UTC [4] user=u,db=d,app=psql,client=10.0.0.1 LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,cdr.voice_cdr,\"select * from cdr.voice_cdr where served_msisdn in ('999700000001')\",<none>,3".to_string()),
        Just("2019-03-06 18:55:00.300 UTC [4] user=u,db=d,app=psql,client=10.0.0.1 LOG:  connection authorized: user=u".to_string()),
        "2019-03-06 18:55:00\\.300 UTC \\[[0-9]{1,5}\\] user=[a-z]{0,5},db=[a-z]{0,3},app=[a-z ,]{0,6},client=[0-9.]{0,9} (LOG|ERROR):  AUDIT: [A-Z,0-9\"'<>a-z ();]{0,80}",
        "\t[ -~]{0,40}",
        "\\{\"timestamp\":\"[ -~]{0,20}\",\"message\":\"AUDIT: [ -~]{0,40}\"\\}",
        "[ -~]{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn readers_never_panic_and_count_every_record(lines in proptest::collection::vec(line(), 0..40)) {
        let text = lines.join("\n");
        let (mut ok, mut bad, mut events) = (0u64, 0u64, Vec::new());
        // With the prefix given and found from the lines alike.
        for prefix in [Some(LinePrefix::new(PREFIX).unwrap()), None] {
            let options = ReadOptions { log_line_prefix: prefix, ..ReadOptions::default() };
            let report = towerwatch_sources::read_bytes("p.log", text.as_bytes(), &options, &mut |item| match item {
                Ok(e) => {
                    ok += 1;
                    events.extend(DbEvent::from_event(&e));
                }
                Err(r) => {
                    bad += 1;
                    if let towerwatch_sources::Position::Line(l) = r.position {
                        assert!(l >= 1 && l <= lines.len() as u64 + 1, "{r}");
                    }
                }
            });
            prop_assert_eq!(report.events, ok);
            prop_assert_eq!(report.rejected, bad);
            ok = 0;
            bad = 0;
        }
        let mut statements: towerwatch_cdr::run::Statements = events.into_iter().collect();
        let _ = towerwatch_cdr::run::analyse(&mut statements, Settings::default(), &Default::default());
    }

    #[test]
    fn sql_analysis_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("select"), Just("*"), Just("from"), Just("cdr.voice_cdr"), Just("where"), Just("served_msisdn"),
        Just("in"), Just("("), Just(")"), Just("'999700000001'"), Just(","), Just("="), Just("$1"), Just(":2"),
        Just("and"), Just("start_time"), Just(">="), Just("between"), Just("copy"), Just("to"), Just("stdout"),
        Just("::timestamptz"), Just("(("), Just("))"), Just("--"), Just(";"), Just("'"),
    ], 0..60)) {
        let sql = parts.join(" ");
        let mut reader = towerwatch_cdr::sql::Reader::default();
        let mut discovery = towerwatch_cdr::schema::Discovery::default();
        if let Ok(f) = reader.facts(&sql) {
            prop_assert!(f.relations.iter().all(|t| !t.is_empty() && sql.to_ascii_lowercase().contains(t.rsplit('.').next().unwrap_or(t))));
            discovery.observe(&f);
        }
        let _ = discovery.finish(&[], None).describe();
        let _ = towerwatch_cdr::sql::changes_auditing(&sql);
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("select {}1{}", "(".repeat(5000), ")".repeat(5000));
        prop_assert!(reader.facts(&deep).is_err());
    }

    #[test]
    fn pgaudit_quoting_round_trips(fields in proptest::collection::vec("[ -~\n]{0,12}", 1..10)) {
        let quoted: Vec<String> = fields.iter().map(|f| towerwatch_cdr_quote(f)).collect();
        prop_assert_eq!(split_csv(&quoted.join(",")), fields);
    }
}

/// pgaudit's rule: quote (doubling `"`) when the value holds `,` `"` CR or LF.
fn towerwatch_cdr_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
