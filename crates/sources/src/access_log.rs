//! Web server access logs in the NCSA forms Apache httpd, nginx, Tomcat (its
//! `AccessLogValve`), JBoss/WildFly and most load balancers write: *common*
//! (`%h %l %u %t "%r" %>s %b`), *combined* (plus `"%{Referer}i" "%{User-Agent}i"`), and either
//! with more fields after them (a quoted `X-Forwarded-For`, a time taken). Another layout can
//! be given as an Apache `LogFormat` or an nginx `log_format` string ([`AccessFormat::new`]).
//!
//! Events have the channel `webserver` and the field names of Sigma's `webserver` category
//! (`c-ip`, `cs-username`, `cs-method`, `cs-uri-stem`, `cs-uri-query`, `cs-version`,
//! `sc-status`, `sc-bytes`, `cs-referer`, `cs-user-agent`, `time-taken`), as IIS logs do. When a
//! load balancer sits in front, `c-ip` is the first address of `X-Forwarded-For` and the
//! balancer's is kept as `s-proxy`. The server is named by the log's folder
//! (`…/KUL-WEB-03/localhost_access_log.2024-05-01.txt`) when that looks like a host.

use std::io::BufRead;

use towerwatch_event::{Event, Origin, Timestamp, Value};

use crate::w3c::CHANNEL;
use crate::{Position, Tally};

/// One part of a configured layout.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A field by its Sigma/W3C name; `request` is the whole request line, `time` the
    /// bracketed timestamp, `xff` the forwarded-for header, `skip` ignored.
    Field(&'static str),
}

/// An access-log layout given by the user.
#[derive(Debug, Clone)]
pub struct AccessFormat {
    text: String,
    parts: Vec<Part>,
}

impl AccessFormat {
    /// Compiles an Apache `LogFormat` (`%h %l %u %t "%r" %>s %b "%{X-Forwarded-For}i"`) or an
    /// nginx `log_format` (`$remote_addr - $remote_user [$time_local] "$request" …`).
    pub fn new(format: &str) -> Result<AccessFormat, crate::LayoutError> {
        let mut parts: Vec<Part> = Vec::new();
        let push_lit = |parts: &mut Vec<Part>, s: &str| match parts.last_mut() {
            Some(Part::Literal(l)) => l.push_str(s),
            _ => parts.push(Part::Literal(s.to_string())),
        };
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            if c == '%' {
                let mut body = &rest[1..];
                // Modifiers: `%>s`, `%<s`, status conditions `%400,501{…}i` are not used here.
                body = body.trim_start_matches(['>', '<']);
                let (name, used) = if let Some(inner) = body.strip_prefix('{') {
                    let close = inner.find('}').ok_or(crate::LayoutError::Unclosed)?;
                    let header = &inner[..close];
                    let kind = inner[close + 1..]
                        .chars()
                        .next()
                        .ok_or(crate::LayoutError::LoneEscape("%{…}"))?;
                    let field = match (header.to_ascii_lowercase().as_str(), kind) {
                        ("x-forwarded-for", 'i') => "xff",
                        ("referer", 'i') => "cs-referer",
                        ("user-agent", 'i') => "cs-user-agent",
                        ("host", 'i') => "cs-host",
                        ("cookie", 'i') => "cs-cookie",
                        (_, 't') => "time",
                        _ => "skip",
                    };
                    (field, 1 + close + 2)
                } else {
                    let letter = body
                        .chars()
                        .next()
                        .ok_or(crate::LayoutError::LoneEscape("%"))?;
                    let field = match letter {
                        'h' | 'a' => "c-ip",
                        'l' => "skip",
                        'u' => "cs-username",
                        't' => "time",
                        'r' => "request",
                        's' => "sc-status",
                        'b' | 'B' | 'O' => "sc-bytes",
                        'I' => "cs-bytes",
                        'D' => "time-taken-us",
                        'T' => "time-taken-s",
                        'v' | 'V' => "s-computername",
                        'A' => "s-ip",
                        'p' => "s-port",
                        'U' => "cs-uri-stem",
                        'q' => "cs-uri-query",
                        'm' => "cs-method",
                        'H' => "cs-version",
                        '%' => {
                            push_lit(&mut parts, "%");
                            rest = &body[1..];
                            continue;
                        }
                        other => {
                            return Err(crate::LayoutError::UnknownEscape(format!("%{other}")))
                        }
                    };
                    (field, 1)
                };
                parts.push(Part::Field(name));
                rest = &body[used..];
            } else if c == '$' {
                let name_len = rest[1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                let var = &rest[1..1 + name_len];
                let field = match var {
                    "remote_addr" | "binary_remote_addr" => "c-ip",
                    "remote_user" => "cs-username",
                    "time_local" => "time",
                    "time_iso8601" => "time",
                    "request" => "request",
                    "status" => "sc-status",
                    "body_bytes_sent" | "bytes_sent" => "sc-bytes",
                    "request_length" => "cs-bytes",
                    "http_referer" => "cs-referer",
                    "http_user_agent" => "cs-user-agent",
                    "http_x_forwarded_for" => "xff",
                    "http_host" | "host" | "server_name" => "cs-host",
                    "request_time" => "time-taken-s",
                    "request_method" => "cs-method",
                    "uri" | "document_uri" => "cs-uri-stem",
                    "args" | "query_string" => "cs-uri-query",
                    "server_addr" => "s-ip",
                    "server_port" => "s-port",
                    "" => return Err(crate::LayoutError::LoneEscape("$")),
                    _ => "skip",
                };
                parts.push(Part::Field(field));
                rest = &rest[1 + name_len..];
            } else {
                push_lit(&mut parts, &c.to_string());
                rest = &rest[c.len_utf8()..];
            }
        }
        if !parts.iter().any(|p| matches!(p, Part::Field("time"))) {
            return Err(crate::LayoutError::NoTime);
        }
        Ok(AccessFormat {
            text: format.to_string(),
            parts,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The values of a line, by field; `None` when it does not fit.
    fn parse<'a>(&self, line: &'a str) -> Option<Vec<(&'static str, &'a str)>> {
        let mut out = Vec::new();
        let mut pos = 0;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(l) => {
                    if !line[pos..].starts_with(l.as_str()) {
                        return None;
                    }
                    pos += l.len();
                }
                Part::Field(name) => {
                    let rest = &line[pos..];
                    let len = match self.parts.get(i + 1) {
                        None => rest.len(),
                        Some(Part::Literal(next)) => {
                            // A bracketed time runs to its `]`; quoted text to its closing quote.
                            if *name == "time" && rest.starts_with('[') {
                                rest.find(']')? + 1
                            } else {
                                rest.find(next.as_str())?
                            }
                        }
                        Some(Part::Field(_)) => rest.find(' ').unwrap_or(rest.len()),
                    };
                    out.push((*name, &rest[..len]));
                    pos += len;
                }
            }
        }
        (pos == line.len()).then_some(out)
    }
}

/// Whether a head of text looks like an NCSA access log: its first lines are
/// `host ident user [dd/Mon/yyyy:hh:mm:ss zone] "…" status bytes`.
pub(crate) fn looks_like(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    let lines = if lines.len() > 1 && !text.ends_with('\n') {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    !lines.is_empty() && lines.iter().filter(|l| ncsa(l).is_some()).count() * 2 > lines.len()
}

/// The parts of an NCSA line: (host, user, time, request, status, bytes, rest).
fn ncsa(line: &str) -> Option<[&str; 7]> {
    let (host, rest) = line.split_once(' ')?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('[')?;
    let (time, rest) = rest.split_once("] ")?;
    let rest = rest.strip_prefix('"')?;
    let (request, rest) = split_quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if !(status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()) || status == "-") {
        return None;
    }
    let (bytes, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if !(bytes == "-" || bytes.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    // `dd/Mon/yyyy:hh:mm:ss zone`.
    if time.len() < 20 || time.as_bytes()[2] != b'/' {
        return None;
    }
    Some([host, user, time, request, status, bytes, rest])
}

/// A quoted string's content (after its opening quote) and what follows its closing quote;
/// `\"` escapes a quote.
fn split_quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// `01/May/2024:22:10:01 +0300` (or ISO 8601 from nginx's `$time_iso8601`).
fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let (civil, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let dt = jiff::civil::DateTime::strptime("%d/%b/%Y:%H:%M:%S", civil).ok()?;
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let digits = digits.replace(':', "");
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let minutes = digits[..2].parse::<i32>().ok()? * 60 + digits[2..].parse::<i32>().ok()?;
    jiff::tz::Offset::from_seconds(sign * minutes * 60)
        .ok()?
        .to_timestamp(dt)
        .ok()
}

pub(crate) fn looks_like_addresses(s: &str) -> bool {
    !s.is_empty()
        && s.split(',')
            .all(|a| a.trim().parse::<std::net::IpAddr>().is_ok() || a.trim() == "unknown")
}

/// Builds the event of one line from its values.
fn event_of(
    tally: &Tally<'_, '_>,
    line_no: u64,
    values: &[(&'static str, &str)],
    computer: &Option<Box<str>>,
) -> Result<Event, String> {
    let mut e = Event::new(Origin::line(tally.report.source.clone(), line_no));
    e.set_channel(CHANNEL);
    e.provider = Some("access-log".into());
    e.computer = computer.clone();
    let mut peer = None;
    let mut xff = None;
    for (name, raw) in values {
        let unescaped;
        let v = if raw.contains('\\') {
            unescaped = raw.trim().replace("\\\"", "\"").replace("\\\\", "\\");
            unescaped.as_str()
        } else {
            raw.trim()
        };
        match *name {
            "skip" => {}
            "time" => {
                e.timestamp = Some(parse_time(v).ok_or_else(|| format!("{v:?} is not a time"))?)
            }
            "request" => {
                let mut words = v.split(' ');
                let method = words.next().unwrap_or("");
                let target = words.next().unwrap_or("");
                let version = words.next().unwrap_or("");
                let (stem, query) = target.split_once('?').unwrap_or((target, ""));
                for (k, x) in [
                    ("cs-method", method),
                    ("cs-uri-stem", stem),
                    ("cs-uri-query", query),
                    ("cs-version", version),
                ] {
                    if !x.is_empty() && x != "-" {
                        e.push(k, Value::text(x));
                    }
                }
            }
            "c-ip" => peer = Some(v.to_string()),
            "xff" => xff = Some(v.to_string()),
            "time-taken-us" | "time-taken-s" => {
                let ms = if *name == "time-taken-us" {
                    v.parse::<f64>().ok().map(|us| us / 1000.0)
                } else {
                    v.parse::<f64>().ok().map(|s| s * 1000.0)
                };
                if let Some(ms) = ms {
                    e.push(
                        "time-taken",
                        Value::Number(format!("{}", ms.round() as u64).into()),
                    );
                }
            }
            field => {
                if !v.is_empty() && v != "-" {
                    e.push(field, Value::text(v));
                }
            }
        }
    }
    // Behind a balancer the client is the first forwarded address.
    let client = match xff.filter(|x| looks_like_addresses(x)) {
        Some(x) => {
            if let Some(p) = &peer {
                e.push("s-proxy", Value::text(p.as_str()));
            }
            let first = x.split(',').next().unwrap_or("").trim().to_string();
            e.push("x-forwarded-for", Value::text(x));
            Some(first)
        }
        None => peer,
    };
    if let Some(c) = client.filter(|c| !c.is_empty() && c != "-") {
        e.push("c-ip", Value::text(c));
    }
    if e.timestamp.is_none() {
        return Err("no time".into());
    }
    Ok(e)
}

pub(crate) fn read(
    reader: &mut (dyn BufRead + Send),
    format: Option<&AccessFormat>,
    tally: &mut Tally<'_, '_>,
) {
    let computer = crate::postgres::host_from_path(&tally.report.source);
    if let Some(f) = format {
        tally.report.detail = Some(format!("access log format '{}' (given)", f.text()));
    }
    crate::for_each_line(reader, tally, |tally, line_no, bytes| {
        let line = String::from_utf8_lossy(bytes);
        if line.trim().is_empty() {
            return true;
        }
        let values: Vec<(&'static str, &str)> = match format {
            Some(f) => match f.parse(&line) {
                Some(v) => v,
                None => {
                    return tally.reject(
                        Position::Line(line_no),
                        format!("line does not fit the access log format '{}'", f.text()),
                    )
                }
            },
            None => match ncsa(&line) {
                Some([host, user, time, request, status, bytes, rest]) => {
                    let mut v = vec![
                        ("c-ip", host),
                        ("cs-username", user),
                        ("time", time),
                        ("request", request),
                        ("sc-status", status),
                        ("sc-bytes", bytes),
                    ];
                    // Combined: referer and user agent; then what else the server adds (a
                    // forwarded-for list, a time taken).
                    let mut rest = rest.trim_start();
                    let mut quoted = 0;
                    while !rest.is_empty() {
                        if let Some(q) = rest.strip_prefix('"') {
                            let Some((value, after)) = split_quoted(q) else {
                                break;
                            };
                            let name = match quoted {
                                0 => "cs-referer",
                                1 => "cs-user-agent",
                                _ if looks_like_addresses(value) => "xff",
                                _ => "skip",
                            };
                            v.push((name, value));
                            quoted += 1;
                            rest = after.trim_start();
                        } else {
                            let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
                            if looks_like_addresses(word) && quoted >= 2 {
                                v.push(("xff", word));
                            }
                            rest = after.trim_start();
                        }
                    }
                    v
                }
                None => {
                    return tally.reject(
                        Position::Line(line_no),
                        "not an access log line (common or combined format)".into(),
                    )
                }
            },
        };
        match event_of(tally, line_no, &values, &computer) {
            Ok(e) => tally.event(e),
            Err(m) => tally.reject(Position::Line(line_no), m),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_bytes, Format, ReadOptions};

    fn read(text: &str, format: Option<&str>) -> (Vec<Event>, Vec<String>, crate::InputReport) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let opts = ReadOptions {
            access_log_format: format.map(|f| AccessFormat::new(f).unwrap()),
            ..ReadOptions::default()
        };
        let report = read_bytes(
            "evidence/web/KUL-WEB-03/localhost_access_log.2024-05-01.txt",
            text.as_bytes(),
            &opts,
            &mut |r| match r {
                Ok(e) => ok.push(e),
                Err(e) => bad.push(e.to_string()),
            },
        );
        (ok, bad, report)
    }

    #[test]
    fn common_combined_and_forwarded() {
        let log = "203.0.113.5 - - [01/May/2024:22:10:01 +0300] \"POST /portal/upload/shell.jsp?x=1 HTTP/1.1\" 200 512\n\
10.0.0.2 - bob [01/May/2024:22:10:02 +0300] \"GET /index.html HTTP/1.1\" 304 - \"https://x/\" \"Mozilla/5.0 (Windows NT 10.0) \\\"q\\\"\"\n\
10.0.0.9 - - [01/May/2024:22:10:03 +0300] \"GET /a.rar HTTP/1.1\" 200 52428800 \"-\" \"curl/8\" \"198.51.100.7, 10.0.0.9\" 812\n\
not a line\n";
        let (ok, bad, report) = read(log, None);
        assert_eq!(report.format, Format::AccessLog);
        assert_eq!(ok.len(), 3);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].contains(":4: not an access log line"));
        let shell = &ok[0];
        assert_eq!(shell.channel.as_deref(), Some("webserver"));
        assert_eq!(shell.first_str("cs-method"), Some("POST"));
        assert_eq!(
            shell.first_str("cs-uri-stem"),
            Some("/portal/upload/shell.jsp")
        );
        assert_eq!(shell.first_str("cs-uri-query"), Some("x=1"));
        assert_eq!(shell.first_str("c-ip"), Some("203.0.113.5"));
        assert_eq!(shell.timestamp.unwrap().to_string(), "2024-05-01T19:10:01Z");
        assert_eq!(shell.computer.as_deref(), Some("KUL-WEB-03"));
        assert_eq!(ok[1].first_str("cs-username"), Some("bob"));
        assert_eq!(
            ok[1].first_str("cs-user-agent"),
            Some("Mozilla/5.0 (Windows NT 10.0) \"q\"")
        );
        assert_eq!(ok[1].first_str("sc-bytes"), None);
        assert_eq!(ok[2].first_str("c-ip"), Some("198.51.100.7"));
        assert_eq!(ok[2].first_str("s-proxy"), Some("10.0.0.9"));
        assert_eq!(ok[2].first_str("sc-bytes"), Some("52428800"));
    }

    #[test]
    fn configured_apache_and_nginx_formats() {
        let line = "10.0.0.9 [01/May/2024:22:10:03 -0500] POST /x.jsp 200 17ms \"203.0.113.5\"\n";
        let (ok, bad, _) = read(line, Some("%a %t %m %U %>s %{ms}T \"%{X-Forwarded-For}i\""));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].first_str("c-ip"), Some("203.0.113.5"));
        assert_eq!(ok[0].first_str("cs-uri-stem"), Some("/x.jsp"));
        assert_eq!(ok[0].timestamp.unwrap().to_string(), "2024-05-02T03:10:03Z");
        let nginx = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\"";
        let line = "10.0.0.9 - - [01/May/2024:22:10:03 +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"ua\" \"-\"\n";
        let (ok, bad, _) = read(line, Some(nginx));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].first_str("c-ip"), Some("10.0.0.9"));
        assert_eq!(ok[0].first_str("cs-user-agent"), Some("ua"));
        assert!(AccessFormat::new("%h %Z").is_err());
        assert!(AccessFormat::new("%h %u").is_err());
        let (ok, bad, _) = read("garbage\n", Some(nginx));
        assert!(ok.is_empty() && bad[0].contains("does not fit"));
    }
}
