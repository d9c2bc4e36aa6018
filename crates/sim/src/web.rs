//! Web server access logs: IIS W3C extended lines (the fields of [`W3C_FIELDS`], plus
//! `X-Forwarded-For` behind a load balancer) and NCSA combined lines as Tomcat's
//! `AccessLogValve` writes them (with a trailing quoted `X-Forwarded-For` behind a balancer).

use crate::clock;
use crate::sink::{Sink, StreamId};
use crate::world::{Role, World};

/// The W3C fields IIS writes with `sc-bytes`, `cs-bytes` enabled.
pub const W3C_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken";

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

/// One W3C line; behind a balancer `c-ip` is the balancer and the client is in the
/// `X-Forwarded-For` field at the end.
pub fn w3c_line(t: i64, server_ip: &str, r: &Request<'_>, balancer: Option<&str>) -> String {
    let (date, time) = clock::w3c(t);
    let substatus = 0;
    let win32 = if r.status >= 500 { 1236 } else { 0 };
    let mut line = format!(
        "{date} {time} {server_ip} {} {} {} {} {} {} {} {} {} {substatus} {win32} {} {} {}",
        r.method,
        field(r.stem),
        field(r.query),
        r.port,
        field(r.user),
        balancer.unwrap_or(r.client),
        field(r.agent),
        field(r.referer),
        r.status,
        r.sc_bytes,
        r.cs_bytes,
        r.time_taken_ms
    );
    if balancer.is_some() {
        line.push(' ');
        line.push_str(r.client);
    }
    line
}

/// One NCSA combined line in the server's local time; behind a balancer the peer is the
/// balancer and the client a trailing quoted `X-Forwarded-For`.
pub fn ncsa_line(t: i64, offset_min: i32, r: &Request<'_>, balancer: Option<&str>) -> String {
    let p = clock::parts(t + i64::from(offset_min) * clock::MINUTE);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let sign = if offset_min < 0 { '-' } else { '+' };
    let off = offset_min.unsigned_abs();
    let target = if r.query.is_empty() {
        r.stem.to_string()
    } else {
        format!("{}?{}", r.stem, r.query)
    };
    let mut line = format!(
        "{} - {} [{:02}/{}/{:04}:{:02}:{:02}:{:02} {sign}{:02}{:02}] \"{} {target} HTTP/1.1\" {} {} \"{}\" \"{}\"",
        balancer.unwrap_or(r.client),
        if r.user.is_empty() { "-" } else { r.user },
        p.d,
        MONTHS[(p.mo - 1) as usize],
        p.y,
        p.h,
        p.mi,
        p.s,
        off / 60,
        off % 60,
        r.method,
        r.status,
        if r.sc_bytes == 0 { "-".to_string() } else { r.sc_bytes.to_string() },
        if r.referer.is_empty() { "-" } else { r.referer },
        r.agent,
    );
    if balancer.is_some() {
        line.push_str(&format!(" \"{}\"", r.client));
    }
    line
}

/// Logs a request on web server `h` in its server's format (JBoss logs none here).
pub fn log(
    sink: &mut Sink,
    world: &World,
    streams: &[Option<StreamId>],
    offset_min: i32,
    h: usize,
    t: i64,
    r: &Request<'_>,
) {
    let Some(stream) = streams[h] else { return };
    let host = &world.hosts[h];
    let balancer = world.profile.balancer;
    let line = match host.role {
        Role::WebTomcat => ncsa_line(t, offset_min, r, balancer),
        _ => w3c_line(t, &host.ip, r, balancer),
    };
    sink.text(stream, t, line);
}
