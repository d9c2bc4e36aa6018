use super::*;
use crate::record::Audit;
use crate::schema::Discovery;

fn ev(
    t: &str,
    user: &str,
    app: &str,
    client: &str,
    stmt_id: u64,
    sql: &str,
    params: Option<Vec<&str>>,
) -> DbEvent {
    DbEvent {
        time: Some(t.parse().unwrap()),
        user: user.into(),
        db: "cdrdw".into(),
        app: app.into(),
        client: client.into(),
        client_port: String::new(),
        pid: Some(7),
        session: "s1".into(),
        server: "db".into(),
        source: "pg.log".into(),
        line: stmt_id,
        zone_offset_min: 0,
        audit: Audit {
            statement_id: stmt_id,
            substatement_id: 1,
            class: "READ".into(),
            command: "SELECT".into(),
            object_name: "cdr.voice_cdr".into(),
            statement: sql.into(),
            params: params.map(|p| p.into_iter().map(String::from).collect()),
            rows: Some(3),
        },
    }
}

/// Analytics with the schema learnt from the events themselves, as a run does.
fn analytics(settings: Settings, events: &[&DbEvent]) -> Analytics {
    let mut reader = Reader::default();
    let mut d = Discovery::default();
    for e in events {
        if let Ok(f) = reader.facts(&e.audit.statement) {
            d.observe(&f);
        }
    }
    Analytics::new(settings, d.finish(&[], None), reader)
}

const CARE: &str = "SELECT a FROM cdr.voice_cdr WHERE served_msisdn = $1 AND start_time >= $2::timestamptz AND start_time < $3::timestamptz";

#[test]
fn targeted_lookups_fire_care_lookups_and_authorised_requests_do_not() {
    let mut settings = Settings::default();
    settings.register.push(Authorised {
        case_id: "RD-1".into(),
        ids: ["999700000009".to_string()].into(),
        from: "2018-06-01T00:00:00Z".parse().unwrap(),
        to: "2019-03-01T00:00:00Z".parse().unwrap(),
        account: Some("rds_handover".into()),
    });
    let care = ev(
        "2019-03-04T02:00:00Z",
        "care_app",
        "PostgreSQL JDBC Driver",
        "10.30.0.40",
        1,
        CARE,
        Some(vec![
            "999700000001",
            "2019-02-01 00:00:00+00",
            "2019-03-04 00:00:00+00",
        ]),
    );
    let rd = ev(
        "2019-03-04T03:00:00Z",
        "rds_handover",
        "RDHandover",
        "10.30.0.50",
        2,
        CARE,
        Some(vec![
            "999700000009",
            "2018-06-01 00:00:00+00",
            "2019-03-01 00:00:00+00",
        ]),
    );
    let other = ev(
        "2019-03-04T03:00:01Z",
        "rds_handover",
        "RDHandover",
        "10.30.0.50",
        3,
        CARE,
        Some(vec![
            "999700000008",
            "2018-06-01 00:00:00+00",
            "2019-03-01 00:00:00+00",
        ]),
    );
    let theft = ev("2019-03-04T18:50:00Z", "care_app", "psql", "10.40.0.20", 4, "select cell_id from cdr.voice_cdr where served_msisdn in ('999700000001', '999700000002') and start_time >= '2017-03-04'", None);
    let mut an = analytics(settings, &[&care, &rd, &other, &theft]);
    assert!(an.observe(&care).is_empty());
    assert!(an.observe(&rd).is_empty());
    assert_eq!(an.authorised, 1);
    // The same request by another account, or for another subscriber, is not authorised.
    assert_eq!(
        an.observe(&other)
            .iter()
            .map(|f| f.rule)
            .collect::<Vec<_>>(),
        vec![Rule::TargetedLookup]
    );
    let found = an.observe(&theft);
    assert_eq!(
        found.iter().map(|f| f.rule).collect::<Vec<_>>(),
        vec![Rule::TargetedLookup, Rule::ServiceAccountInteractive]
    );
    let read = found[0].read.as_ref().unwrap();
    assert_eq!(read.ids.len(), 2);
    assert_eq!(read.from.unwrap().to_string(), "2017-03-04T00:00:00Z");
    assert!(found[0]
        .reasons
        .iter()
        .any(|r| r.contains("projects cell location")));
}

#[test]
fn any_warehouse_schema_and_number_form() {
    let load = ev("2024-05-01T00:00:00Z", "mediation", "loader", "10.3.0.20", 1, "COPY dwh.call_events_2024_05 (a_number, b_number, imsi, call_start_ts, cell_gid) FROM STDIN", None);
    let intl = ev(
        "2024-05-01T01:00:00Z",
        "care",
        "care-portal",
        "10.3.0.40",
        2,
        "SELECT * FROM dwh.call_events WHERE a_number = $1 AND call_start_ts >= $2",
        Some(vec!["447700900123", "2024-04-01"]),
    );
    let recon = ev("2024-05-02T22:00:00Z", "dba_x", "psql", "10.4.0.10", 3, "SELECT msisdn, imsi, imei FROM crm.subscriber WHERE msisdn IN ('07700900123', '07700900124')", None);
    let theft = ev("2024-05-02T22:05:00Z", "dba_x", "psql", "10.4.0.10", 4, "SELECT * FROM dwh.call_events_2024_05 WHERE a_number IN ('07700900123') OR b_number IN ('07700900123')", None);
    let via = ev("2024-05-02T22:06:00Z", "dba_x", "psql", "10.4.0.10", 5, "SELECT e.* FROM dwh.call_events e JOIN crm.subscriber s ON s.msisdn = e.a_number WHERE s.msisdn = '+447700900124' AND e.call_start_ts > '2022-01-01'", None);
    let mut an = analytics(Settings::default(), &[&load, &intl, &recon, &theft, &via]);
    assert_eq!(an.schema().numbering.country_code.as_deref(), Some("44"));
    assert!(an.observe(&load).is_empty());
    assert!(an.observe(&intl).is_empty());
    let r = an.observe(&recon);
    assert_eq!(
        r.iter().map(|f| f.rule).collect::<Vec<_>>(),
        vec![Rule::SubscriberLookup]
    );
    assert_eq!(r[0].read.as_ref().unwrap().ids[0].value, "447700900123");
    let t = an.observe(&theft);
    assert_eq!(t[0].rule, Rule::TargetedLookup);
    let read = t[0].read.as_ref().unwrap();
    assert_eq!(read.tables, ["dwh.call_events"]);
    assert_eq!(
        read.ids
            .iter()
            .map(|i| (i.column.as_str(), i.value.as_str()))
            .collect::<Vec<_>>(),
        [("a_number", "447700900123"), ("b_number", "447700900123")]
    );
    assert!(read.from.is_none());
    let v = an.observe(&via);
    let read = v[0].read.as_ref().unwrap();
    assert_eq!(v[0].rule, Rule::TargetedLookup);
    assert_eq!(
        (
            read.ids[0].table.as_str(),
            read.ids[0].column.as_str(),
            read.ids[0].value.as_str()
        ),
        ("dwh.call_events", "a_number", "447700900124")
    );
    assert!(
        v[0].reasons.iter().any(|r| r.contains("crm.subscriber")),
        "{:?}",
        v[0].reasons
    );
}

#[test]
fn baselines_learn_then_flag_new_exports_and_actors() {
    let dump = "COPY cdr.voice_cdr (record_id, served_msisdn, start_time) TO stdout;";
    let a = ev(
        "2019-03-04T01:00:00Z",
        "backup",
        "pg_dump",
        "10.40.0.30",
        1,
        dump,
        None,
    );
    let b = ev(
        "2019-03-06T01:00:00Z",
        "backup",
        "pg_dump",
        "10.40.0.30",
        2,
        dump,
        None,
    );
    let c = ev(
        "2019-03-06T02:00:00Z",
        "bi_reader",
        "psql",
        "10.40.0.30",
        3,
        dump,
        None,
    );
    let mut alter = ev(
        "2019-03-06T03:00:00Z",
        "x",
        "psql",
        "10.1.1.1",
        4,
        "ALTER SYSTEM SET pgaudit.log = 'none'",
        None,
    );
    alter.audit.class = "MISC".into();
    let mut ddl = ev(
        "2019-03-06T03:00:01Z",
        "x",
        "psql",
        "10.1.1.1",
        5,
        "CREATE TABLE t (LIKE cdr.voice_cdr INCLUDING ALL)",
        None,
    );
    ddl.audit.class = "DDL".into();
    let bad = ev(
        "2019-03-06T03:00:02Z",
        "x",
        "psql",
        "10.1.1.1",
        6,
        "selec oops",
        None,
    );
    let mut an = analytics(
        Settings {
            training_days: 1,
            ..Default::default()
        },
        &[&a, &b, &c],
    );
    assert!(an.observe(&a).is_empty());
    assert!(an.observe(&b).is_empty());
    let rules: BTreeSet<Rule> = an.observe(&c).iter().map(|f| f.rule).collect();
    assert!(
        rules.contains(&Rule::BulkExport) && rules.contains(&Rule::FirstSeenActor),
        "{rules:?}"
    );
    assert!(an
        .observe(&alter)
        .iter()
        .any(|f| f.rule == Rule::AuditChange));
    assert!(an.observe(&ddl).is_empty());
    assert_eq!(an.unanalysed_count, 0);
    assert!(an.observe(&bad).is_empty());
    assert_eq!(an.unanalysed_count, 1);
}

#[test]
fn each_statement_is_analysed_once_even_when_pids_are_reused() {
    let theft = "select * from cdr.voice_cdr where served_msisdn in ('999700000001') and start_time >= '2017-01-01'";
    let first = ev(
        "2019-03-04T18:50:00Z",
        "u",
        "psql",
        "10.1.1.1",
        1,
        theft,
        None,
    );
    let mut second_relation = first.clone();
    second_relation.audit.object_name = "cdr.other".into();
    let mut reused = ev(
        "2019-03-05T18:50:00Z",
        "u",
        "psql",
        "10.1.1.1",
        1,
        theft,
        None,
    );
    reused.session = "s2".into();
    let mut an = analytics(Settings::default(), &[&first]);
    assert_eq!(an.observe(&first).len(), 1);
    assert!(an.observe(&second_relation).is_empty());
    assert_eq!(an.observe(&reused).len(), 1);
    assert_eq!(an.statements, 2);
}

#[test]
fn bounds_and_interactive_clients() {
    assert_eq!(
        parse_bound("2019-02-02 00:00:00+00").unwrap().to_string(),
        "2019-02-02T00:00:00Z"
    );
    assert_eq!(
        parse_bound("2017-03-06").unwrap().to_string(),
        "2017-03-06T00:00:00Z"
    );
    assert!(parse_bound("447700900123").is_none());
    assert_eq!(
        parse_bound_in("2023-01-01", -300).unwrap().to_string(),
        "2023-01-01T05:00:00Z"
    );
    assert_eq!(
        parse_bound_in("2023-01-01 10:00:00+02", -300)
            .unwrap()
            .to_string(),
        "2023-01-01T08:00:00Z"
    );
    assert_eq!(
        parse_bound_in("2024-10-28 23:59:59", 180)
            .unwrap()
            .to_string(),
        "2024-10-28T20:59:59Z"
    );
    assert!(
        interactive("psql")
            && interactive("C:\\tools\\psql.exe")
            && interactive("Microsoft SQL Server Management Studio - Query")
    );
    assert!(!interactive("PostgreSQL JDBC Driver") && !interactive("care-portal"));
}

#[test]
fn loads_are_no_reads_nightly_partitions_keep_one_shape_and_the_register_vouches_for_a_new_account()
{
    let load = |day: u32, id: u64| {
        let mut e = ev(
            &format!("2019-03-{day:02}T00:05:00Z"),
            "mediation_loader",
            "mediation-loader",
            "10.20.0.21",
            id,
            &format!("COPY ops.usage_event201903{day:02} (\"ServedMSISDN\", \"RecordOpeningTime\", \"CellIdentifier\") FROM STDIN WITH (FORMAT csv, HEADER true)"),
            None,
        );
        e.audit.class = "WRITE".into();
        e.audit.command = "COPY".into();
        e
    };
    let export = |day: u32, id: u64| {
        ev(
            &format!("2019-03-{day:02}T02:00:00Z"),
            "bi_export",
            "psql",
            "10.40.0.30",
            id,
            &format!(
                "COPY ops.usage_event201903{day:02} TO '/exports/usage_201903{day:02}.csv' CSV"
            ),
            None,
        )
    };
    let lawful = ev(
        "2019-03-09T10:00:00Z",
        "rds_handover",
        "RDHandover",
        "10.30.0.50",
        90,
        "SELECT \"CellIdentifier\" FROM ops.usage_event WHERE \"ServedMSISDN\" = '999700000009' AND \"RecordOpeningTime\" >= '2018-06-01'",
        None,
    );
    let mut settings = Settings {
        training_days: 2,
        ..Default::default()
    };
    settings.register.push(Authorised {
        case_id: "RD-1".into(),
        ids: ["999700000009".to_string()].into(),
        from: "2018-06-01T00:00:00Z".parse().unwrap(),
        to: "2019-03-10T00:00:00Z".parse().unwrap(),
        account: Some("rds_handover".into()),
    });
    let events: Vec<DbEvent> = (1..=8)
        .flat_map(|d| [load(d, u64::from(d) * 2), export(d, u64::from(d) * 2 + 1)])
        .collect();
    let mut refs: Vec<&DbEvent> = events.iter().collect();
    refs.push(&lawful);
    let mut an = analytics(settings, &refs);
    for e in &events {
        let found = an.observe(e);
        assert!(found.is_empty(), "{}: {found:?}", e.audit.statement);
    }
    assert!(an.observe(&lawful).is_empty());
    assert_eq!(an.authorised, 1);
    // Another partition's export by another account is new.
    let mut stranger = export(8, 99);
    stranger.user = "x".into();
    let rules: BTreeSet<Rule> = an.observe(&stranger).iter().map(|f| f.rule).collect();
    assert!(rules.contains(&Rule::BulkExport), "{rules:?}");
}
