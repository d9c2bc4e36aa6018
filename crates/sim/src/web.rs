//! IIS W3C extended log lines (the fields of [`crate::sink::W3C_FIELDS`]).

use crate::clock;

pub struct Request<'a> {
    pub method: &'a str,
    pub stem: &'a str,
    pub query: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub client: &'a str,
    pub agent: &'a str,
    pub referer: &'a str,
    pub status: u16,
    pub sc_bytes: u64,
    pub cs_bytes: u64,
    pub time_taken_ms: u64,
}

/// W3C writes `-` for empty values and `+` for spaces in the user agent.
fn field(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.replace(' ', "+")
    }
}

pub fn line(t: i64, server_ip: &str, r: &Request<'_>) -> String {
    let (date, time) = clock::w3c(t);
    let substatus = 0;
    let win32 = if r.status >= 500 { 1236 } else { 0 };
    format!(
        "{date} {time} {server_ip} {} {} {} {} {} {} {} {} {} {substatus} {win32} {} {} {}",
        r.method,
        field(r.stem),
        field(r.query),
        r.port,
        field(r.user),
        r.client,
        field(r.agent),
        field(r.referer),
        r.status,
        r.sc_bytes,
        r.cs_bytes,
        r.time_taken_ms
    )
}
