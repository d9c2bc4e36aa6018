//! Database audit trails exported as CSV with their column names as the header: Oracle's
//! `UNIFIED_AUDIT_TRAIL` and SQL Server's `sys.fn_get_audit_file`. Each row is an event (channel
//! [`ORACLE_CHANNEL`] or [`MSSQL_CHANNEL`]) with the same field names as PostgreSQL's records
//! (`user_name`, `database_name`, `application_name`, `remote_host`, `statement`, `command`,
//! `class`, `parameter` …) plus `succeeded`, so the CDR analytics read all three alike.

use std::io::BufRead;

use towerwatch_event::{Event, Origin, Value};

use crate::postgres::parse_time;
use crate::{Position, Tally};

pub const ORACLE_CHANNEL: &str = "oracle-unified-audit";
pub const MSSQL_CHANNEL: &str = "mssql-audit";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Export {
    Oracle,
    Mssql,
}

/// Recognises an export by its header line.
pub(crate) fn sniff(head: &[u8]) -> Option<Export> {
    let text = String::from_utf8_lossy(head);
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())?
        .to_ascii_uppercase();
    if first.contains("DBUSERNAME") && first.contains("SQL_TEXT") {
        Some(Export::Oracle)
    } else if first.contains("SERVER_PRINCIPAL_NAME")
        && first.contains("STATEMENT")
        && first.contains("EVENT_TIME")
    {
        Some(Export::Mssql)
    } else {
        None
    }
}

/// Oracle's `SQL_BINDS`: ` #1(13):8613800000001 #2(10):2018-01-01` (length-prefixed values),
/// as pgaudit's PARAMETER field would hold them (quoted CSV).
pub fn oracle_binds(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('#') {
        rest = &rest[i + 1..];
        let open = rest.find('(')?;
        let close = rest.find("):")?;
        let len: usize = rest[open + 1..close].parse().ok()?;
        let value = rest.get(close + 2..close + 2 + len)?;
        out.push(value.to_string());
        rest = &rest[close + 2 + len..];
    }
    (!out.is_empty()).then_some(out)
}

fn csv_join(values: &[String]) -> String {
    values
        .iter()
        .map(|v| {
            if v.contains([',', '"', '\n']) {
                format!("\"{}\"", v.replace('"', "\"\""))
            } else {
                v.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn read(reader: &mut (dyn BufRead + Send), kind: Export, tally: &mut Tally<'_, '_>) {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = match csv.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_uppercase()).collect(),
        Err(e) => return tally.fail(format!("no header: {e}")),
    };
    let col = |n: &str| headers.iter().position(|h| h == n);
    let need: &[&str] = match kind {
        Export::Oracle => &["EVENT_TIMESTAMP", "DBUSERNAME", "ACTION_NAME", "SQL_TEXT"],
        Export::Mssql => &[
            "EVENT_TIME",
            "ACTION_ID",
            "SERVER_PRINCIPAL_NAME",
            "STATEMENT",
        ],
    };
    if let Some(missing) = need.iter().find(|n| col(n).is_none()) {
        return tally.fail(format!("the header has no {missing} column"));
    }
    let computer = crate::postgres::host_from_path(&tally.report.source);
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Err(e) => {
                let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                if !tally.reject(Position::Line(line), format!("not a CSV record: {e}")) || io {
                    return;
                }
                continue;
            }
            Ok(true) => {}
        }
        let get = |n: &str| col(n).and_then(|i| record.get(i)).unwrap_or("").trim();
        let mut e = Event::new(Origin::line(tally.report.source.clone(), line));
        e.computer = computer.clone();
        let (time, fields): (&str, Vec<(&'static str, String)>) = match kind {
            Export::Oracle => {
                e.set_channel(ORACLE_CHANNEL);
                e.provider = Some("Oracle".into());
                // The client's address is only in AUTHENTICATION_TYPE; USERHOST is what the
                // client claims.
                let auth = get("AUTHENTICATION_TYPE");
                let ip = auth
                    .split("HOST=")
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .unwrap_or("");
                let port = auth
                    .split("PORT=")
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .unwrap_or("");
                let action = get("ACTION_NAME").to_string();
                let ok = matches!(get("RETURN_CODE"), "" | "0");
                (
                    get("EVENT_TIMESTAMP"),
                    vec![
                        ("user_name", get("DBUSERNAME").to_string()),
                        ("database_name", get("OBJECT_SCHEMA").to_string()),
                        ("application_name", get("CLIENT_PROGRAM_NAME").to_string()),
                        (
                            "remote_host",
                            if ip.is_empty() { get("USERHOST") } else { ip }.to_string(),
                        ),
                        ("remote_port", port.to_string()),
                        ("session_id", get("SESSIONID").to_string()),
                        ("os_user", get("OS_USERNAME").to_string()),
                        ("command", action.clone()),
                        ("class", class_of(&action).to_string()),
                        ("object_name", {
                            let (s, o) = (get("OBJECT_SCHEMA"), get("OBJECT_NAME"));
                            if s.is_empty() {
                                o.to_string()
                            } else {
                                format!("{s}.{o}")
                            }
                        }),
                        ("statement", get("SQL_TEXT").to_string()),
                        (
                            "parameter",
                            oracle_binds(get("SQL_BINDS"))
                                .map(|b| csv_join(&b))
                                .unwrap_or_default(),
                        ),
                        ("succeeded", if ok { "true" } else { "false" }.to_string()),
                        ("return_code", get("RETURN_CODE").to_string()),
                    ],
                )
            }
            Export::Mssql => {
                e.set_channel(MSSQL_CHANNEL);
                e.provider = Some("SQL Server".into());
                let action = match get("ACTION_ID") {
                    "SL" => "SELECT",
                    "IN" => "INSERT",
                    "UP" => "UPDATE",
                    "DL" => "DELETE",
                    "EX" => "EXECUTE",
                    "LGIS" => "LOGIN",
                    "LGIF" => "LOGIN FAILED",
                    other => other,
                }
                .to_string();
                let ok = matches!(
                    get("SUCCEEDED").to_ascii_lowercase().as_str(),
                    "" | "1" | "true"
                );
                (
                    get("EVENT_TIME"),
                    vec![
                        ("user_name", get("SERVER_PRINCIPAL_NAME").to_string()),
                        ("database_name", get("DATABASE_NAME").to_string()),
                        ("application_name", get("APPLICATION_NAME").to_string()),
                        (
                            "remote_host",
                            if get("CLIENT_IP").is_empty() {
                                get("HOST_NAME")
                            } else {
                                get("CLIENT_IP")
                            }
                            .to_string(),
                        ),
                        ("session_id", get("SESSION_ID").to_string()),
                        ("command", action.clone()),
                        ("class", class_of(&action).to_string()),
                        ("object_name", {
                            let (s, o) = (get("SCHEMA_NAME"), get("OBJECT_NAME"));
                            if s.is_empty() {
                                o.to_string()
                            } else {
                                format!("{s}.{o}")
                            }
                        }),
                        ("statement", get("STATEMENT").to_string()),
                        ("succeeded", if ok { "true" } else { "false" }.to_string()),
                    ],
                )
            }
        };
        let Some(t) = parse_time(time) else {
            if !tally.reject(Position::Line(line), format!("{time:?} is not a time")) {
                return;
            }
            continue;
        };
        e.timestamp = Some(t);
        for (k, v) in fields {
            if !v.is_empty() {
                e.push(k, Value::text(v));
            }
        }
        if !tally.event(e) {
            return;
        }
    }
}

/// pgaudit's class for an action: reads, writes, the rest.
fn class_of(action: &str) -> &'static str {
    match action {
        "SELECT" | "EXPORT" | "EXECUTE" => "READ",
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" => "WRITE",
        a if a.starts_with("CREATE") || a.starts_with("ALTER") || a.starts_with("DROP") => "DDL",
        _ => "MISC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_bytes, Format, ReadOptions};

    fn read(text: &str) -> (Vec<Event>, Vec<String>, crate::InputReport) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let report = read_bytes(
            "audit.csv",
            text.as_bytes(),
            &ReadOptions::default(),
            &mut |r| match r {
                Ok(e) => ok.push(e),
                Err(e) => bad.push(e.to_string()),
            },
        );
        (ok, bad, report)
    }

    #[test]
    fn oracle_and_sql_server_exports() {
        let ora = "EVENT_TIMESTAMP,DBUSERNAME,USERHOST,CLIENT_PROGRAM_NAME,AUTHENTICATION_TYPE,ACTION_NAME,OBJECT_SCHEMA,OBJECT_NAME,SQL_TEXT,SQL_BINDS,RETURN_CODE\n\
2019-03-06 18:55:00.300000,CDR_RO,jump01,sqlplus.exe,\"(TYPE=(DATABASE));(CLIENT ADDRESS=((ADDRESS=(PROTOCOL=tcp)(HOST=10.20.4.17)(PORT=51514))));\",SELECT,CDR,VOICE_CDR,\"select * from cdr.voice_cdr where served_msisdn = :1\", #1(12):999700000001,0\n\
2019-03-06 18:56:00,CDR_RO,jump01,sqlplus.exe,,SELECT,CDR,VOICE_CDR,select 1,,942\n\
yesterday,CDR_RO,jump01,sqlplus.exe,,SELECT,CDR,VOICE_CDR,select 1,,0\n";
        let (ok, bad, report) = read(ora);
        assert_eq!(report.format, Format::OracleAudit);
        assert_eq!(ok.len(), 2, "{bad:?}");
        assert_eq!(ok[0].first_str("remote_host"), Some("10.20.4.17"));
        assert_eq!(ok[0].first_str("remote_port"), Some("51514"));
        assert_eq!(ok[0].first_str("parameter"), Some("999700000001"));
        assert_eq!(ok[0].first_str("object_name"), Some("CDR.VOICE_CDR"));
        assert_eq!(ok[1].first_str("succeeded"), Some("false"));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].contains(":4: \"yesterday\" is not a time"));
        let ms = "event_time,sequence_number,action_id,succeeded,session_id,server_principal_name,database_name,schema_name,object_name,statement,client_ip,application_name\n\
2019-03-06 18:55:00.3000000,1,SL,1,57,NWM\\svc_sync,cdrdw,cdr,voice_cdr,\"SELECT * FROM cdr.voice_cdr WHERE served_msisdn IN ('999700000001', '999700000002')\",10.40.0.20,Microsoft SQL Server Management Studio\n";
        let (ok, bad, report) = read(ms);
        assert_eq!(report.format, Format::MssqlAudit);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].first_str("user_name"), Some("NWM\\svc_sync"));
        assert_eq!(ok[0].first_str("command"), Some("SELECT"));
        assert_eq!(ok[0].first_str("class"), Some("READ"));
        assert_eq!(
            oracle_binds(" #1(3):abc #2(10):2018-01-01"),
            Some(vec!["abc".into(), "2018-01-01".into()])
        );
    }
}
