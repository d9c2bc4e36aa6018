//! Schema discovery on statements of many warehouses, the extract and the schema file.

use super::*;
use crate::sql::facts;

#[test]
fn column_names_of_many_warehouses() {
    for (name, role) in [
        ("served_msisdn", Role::Id(IdKind::Msisdn)),
        ("ServedMSISDN", Role::Id(IdKind::Msisdn)),
        ("a_number", Role::Id(IdKind::Msisdn)),
        ("B_NUMBER", Role::Id(IdKind::Msisdn)),
        ("calledNumber", Role::Id(IdKind::Msisdn)),
        ("caller_id", Role::Id(IdKind::Msisdn)),
        ("other_msisdn", Role::Id(IdKind::Msisdn)),
        ("served_imsi", Role::Id(IdKind::Imsi)),
        ("caller_imei", Role::Id(IdKind::Imei)),
        ("call_start_ts", Role::Time(4)),
        ("recordOpeningTime", Role::Time(4)),
        ("seizure_time", Role::Time(4)),
        ("calldate", Role::Time(2)),
        ("end_time", Role::Time(1)),
        ("call_end_ts", Role::Time(1)),
        ("ReleaseTime", Role::Time(1)),
        ("cell_id", Role::Location),
        ("LocationAreaCode", Role::Location),
        ("caller_antenna", Role::Location),
        ("lac_tac", Role::Location),
        ("duration_s", Role::Duration),
        ("record_type", Role::RecordType),
        ("record_id", Role::RecordId),
    ] {
        assert_eq!(column_role(name), Some(role), "{name}");
    }
    for name in [
        "msisdn_count",
        "imei_tac",
        "contact_name",
        "customer_segment",
        "status",
    ] {
        assert_eq!(column_role(name), None, "{name}");
    }
}

#[test]
fn partitions_fold_into_their_parent() {
    for (p, parent) in [
        ("dwh.call_events_2024_05", "dwh.call_events"),
        ("voice_y2024m05", "voice"),
        ("cdr_20240514", "cdr"),
        (
            "dbo.dmp_repository_importedcdrs_2017",
            "dbo.dmp_repository_importedcdrs",
        ),
        ("usage_p202405", "usage"),
    ] {
        assert_eq!(partition_parent(p).as_deref(), Some(parent), "{p}");
    }
    assert_eq!(partition_parent("voice_cdr"), None);
    assert_eq!(partition_parent("t2"), None);
}

fn learn(statements: &[&str]) -> Schema {
    let mut d = Discovery::default();
    for s in statements {
        d.observe(&facts(s).unwrap());
    }
    d.finish(&[], None)
}

#[test]
fn a_warehouse_nobody_told_us_about() {
    let s = learn(&[
        "COPY dwh.call_events_2024_05 (event_uid, a_number, b_number, imsi, imei, call_start_ts, dur, cell_gid) FROM STDIN",
        "SELECT count(*) FROM dwh.call_events_2024_04 WHERE call_start_ts >= '2024-04-01'",
        "SELECT msisdn, imsi, segment FROM crm.subscriber WHERE msisdn = $1",
        "SELECT * FROM crm.subscriber WHERE msisdn IN ('447700900123', '447700900124')",
        "SELECT * FROM dwh.call_events WHERE a_number IN ('07700900123') OR b_number IN ('07700900123')",
        "SELECT * FROM dwh.call_events WHERE a_number IN ('447700900124') AND call_start_ts >= '2022-05-01'",
    ]);
    let calls = s
        .table("dwh.call_events_2024_05")
        .expect("the partition resolves");
    assert_eq!(calls.name, "dwh.call_events");
    assert_eq!(calls.kind, TableKind::Cdr);
    assert_eq!(calls.id_kind("a_number"), Some(IdKind::Msisdn));
    assert_eq!(calls.id_kind("imsi"), Some(IdKind::Imsi));
    assert_eq!(calls.time, Some(("call_start_ts".into(), How::Name)));
    assert_eq!(calls.location, ["cell_gid"]);
    let subs = s.table("crm.subscriber").unwrap();
    assert_eq!(subs.kind, TableKind::Subscriber);
    assert_eq!(s.numbering.country_code.as_deref(), Some("44"));
    assert!(
        s.describe().contains(
            "CDR table dwh.call_events (also dwh.call_events_2024_04, dwh.call_events_2024_05)"
        ),
        "{}",
        s.describe()
    );
}

#[test]
fn unknown_column_names_are_learnt_from_values_and_use() {
    let s = learn(&[
        "SELECT * FROM t1 WHERE c7 IN ('447700900123', '447700900124') AND c3 >= '2022-01-01'",
        "SELECT * FROM t2 WHERE note = '447700900125'",
    ]);
    let t = s.table("t1").unwrap();
    assert_eq!(t.kind, TableKind::Cdr);
    assert_eq!(t.ids, [("c7".to_string(), IdKind::Msisdn, How::Values)]);
    assert_eq!(t.time, Some(("c3".into(), How::Values)));
    // t2 holds an identifier-shaped literal on an unknown column: a subscriber table at most.
    assert_eq!(s.table("t2").map(|t| t.kind), Some(TableKind::Subscriber));
}

#[test]
fn a_schema_file_overrides() {
    let g = SchemaFile::parse("cdr_tables:\n  - name: x.calls\n    identifiers: {msisdn: [caller]}\n    time: t\ncountry_code: '44'\n").unwrap();
    let mut d = Discovery::default();
    d.observe(&facts("SELECT * FROM x.calls_2024_01 WHERE caller = '07700900123'").unwrap());
    let s = d.finish(&[], Some(&g));
    let t = s.table("x.calls_2024_01").unwrap();
    assert_eq!(t.ids[0].2, How::Given);
    assert_eq!(s.numbering.country_code.as_deref(), Some("44"));
    assert!(
        SchemaFile::parse("cdr_tables:\n  - name: a\n    identifiers: {phone: [x]}\n").is_err()
    );
    assert!(SchemaFile::parse("tables: []\n").is_err());
}

#[test]
fn the_extract_header_names_the_table_it_holds() {
    let mut d = Discovery::default();
    d.observe(
        &facts("COPY ops.usage_y2024m05 (rec, msisdn_a, msisdn_b, t0, cell) FROM STDIN").unwrap(),
    );
    let s = d.finish(
        &[ExtractHeader::named(
            "cdr/usage.csv",
            vec![
                "rec".into(),
                "msisdn_a".into(),
                "msisdn_b".into(),
                "t0".into(),
                "cell".into(),
                "start_time".into(),
            ],
        )],
        None,
    );
    let t = s.table("ops.usage_y2024m06").unwrap();
    assert_eq!(t.kind, TableKind::Cdr);
    assert_eq!(t.time, Some(("start_time".into(), How::Extract)));
}

#[test]
fn extract_values_tell_record_types_and_other_parties() {
    let columns: Vec<String> = ["seq", "kind", "msisdn_a", "orig", "term", "dur"]
        .iter()
        .map(|c| c.to_string())
        .collect();
    let rows: Vec<Vec<String>> = (0..40u64)
        .map(|i| {
            vec![
                (100_000_000 + i).to_string(),
                ["moCallRecord", "mtSMSRecord", "pGWRecord"][i as usize % 3].to_string(),
                format!("99970{:07}", i % 7),
                format!("99970{:07}", 100 + i % 11),
                // A foreign number now and then: still a party's.
                if i % 5 == 0 {
                    format!("4479{:08}", i)
                } else {
                    format!("99971{:07}", i % 13)
                },
                (30 + i).to_string(),
            ]
        })
        .collect();
    let roles = roles_by_values(&columns, &rows);
    assert_eq!(
        roles,
        [
            ("kind".to_string(), Role::RecordType),
            ("orig".to_string(), Role::Id(IdKind::Msisdn)),
            ("term".to_string(), Role::Id(IdKind::Msisdn)),
        ]
    );
    // Without a column named as an MSISDN, numbers are not vouched for.
    let mut blind = columns.clone();
    blind[2] = "x".into();
    assert_eq!(
        roles_by_values(&blind, &rows),
        [("kind".to_string(), Role::RecordType)]
    );
}
