//! Database logs' linker (PostgreSQL, Oracle and SQL Server audit): a backend's session, and
//! the client's address and port that tie it to the process that connected.

use towerwatch_event::Event;

use super::{digest, ip_of, say, Draft, Key};

/// Ports databases listen on (PostgreSQL, Oracle, SQL Server, MySQL, Db2, Teradata, Hive).
pub fn is_db_port(p: &str) -> bool {
    matches!(
        p,
        "5432" | "1521" | "1433" | "3306" | "50000" | "1025" | "10000"
    )
}

/// Channels of database logs.
pub fn is_db_channel(c: &str) -> bool {
    matches!(c, "postgresql" | "oracle-unified-audit" | "mssql-audit")
}

pub(super) fn link(e: &Event, d: &mut Draft) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    // One backend's session holds all its records; its client's address (and port, when
    // the log has it) ties it to the process that connected.
    let server = e
        .computer
        .as_deref()
        .map(str::to_string)
        .unwrap_or_else(|| {
            std::path::Path::new(&*e.origin.source)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        });
    let sid = f("session_id");
    if !sid.is_empty() {
        d.keys.push(Key::DbSession(digest(&[&server, sid])));
    }
    let client = f("remote_host");
    let message = f("message");
    if let Some(ip) = ip_of(client) {
        let port = f("remote_port");
        if !port.is_empty() {
            d.keys.push(Key::Endpoint(digest(&[ip, port])));
        } else if message.starts_with("connection ") || sid.is_empty() {
            d.keys.push(Key::DbClient(digest(&[ip])));
        }
        d.remote(ip);
    }
    let statement = f("statement");
    if !statement.is_empty() {
        let text: String = statement.chars().take(140).collect();
        say!(
            d,
            "{}@{} from {client} ({}): {}",
            f("user_name"),
            f("database_name"),
            f("application_name"),
            text.replace(['\r', '\n', '\t'], " ")
        );
    } else {
        let text: String = message.chars().take(120).collect();
        say!(d, "{}: {text}", f("user_name"));
    }
}
