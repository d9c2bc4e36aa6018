//! W3C extended log files, as IIS writes them: `#` directives, and data lines whose columns
//! the latest `#Fields:` directive names (any order; a file may restart its header).
//!
//! Events keep the W3C field names (`cs-uri-stem`, `sc-status`, `c-ip`, …), which are also
//! the names Sigma's `webserver` category uses; their channel is [`CHANNEL`].

use std::io::BufRead;

use towerwatch_event::{Event, Origin, Value};

use crate::json::parse_timestamp;
use crate::{Position, Tally};

/// The channel of web server access-log events.
pub const CHANNEL: &str = "webserver";

/// Whether a head of text looks like a W3C extended log.
pub(crate) fn looks_like(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    ["#Software:", "#Version:", "#Fields:", "#Date:"]
        .iter()
        .any(|d| text.starts_with(d.as_bytes()))
        && text.windows(8).any(|w| w == b"#Fields:")
}

/// The field IIS names after a logged request header (`X-Forwarded-For`, or
/// `cs(X-Forwarded-For)` in advanced logging).
fn is_forwarded_for(name: &str) -> bool {
    let n = name
        .strip_prefix("cs(")
        .and_then(|n| n.strip_suffix(')'))
        .unwrap_or(name);
    n.eq_ignore_ascii_case("X-Forwarded-For")
}

pub(crate) fn read(reader: &mut (dyn BufRead + Send), tally: &mut Tally<'_, '_>) {
    let mut fields: Option<Vec<String>> = None;
    crate::for_each_line(reader, tally, |tally, line_no, bytes| {
        let line = String::from_utf8_lossy(bytes);
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            return true;
        }
        if let Some(directive) = line.strip_prefix('#') {
            if let Some(names) = directive.strip_prefix("Fields:") {
                fields = Some(names.split_whitespace().map(String::from).collect());
            }
            return true;
        }
        let Some(names) = &fields else {
            return tally.reject(
                Position::Line(line_no),
                "data line before any #Fields: directive".into(),
            );
        };
        let values: Vec<&str> = line.split(' ').collect();
        if values.len() != names.len() {
            let msg = format!(
                "{} values for the {} fields of the #Fields: directive",
                values.len(),
                names.len()
            );
            return tally.reject(Position::Line(line_no), msg);
        }
        let mut event = Event::new(Origin::line(tally.report.source.clone(), line_no));
        event.set_channel(CHANNEL);
        event.provider = Some("W3C".into());
        let (mut peer, mut forwarded) = (None, None);
        for (name, value) in names.iter().zip(values) {
            if name == "c-ip" {
                peer = Some(value);
                continue;
            }
            if is_forwarded_for(name) && value != "-" {
                // IIS writes a header's spaces as `+`.
                forwarded = Some(value.replace('+', " "));
                continue;
            }
            event.push(
                name.as_str(),
                if value == "-" {
                    Value::Null
                } else {
                    Value::text(value)
                },
            );
        }
        // Behind a load balancer (an IIS custom field `X-Forwarded-For`) the client is the
        // first forwarded address and the balancer is `s-proxy`.
        match forwarded.filter(|x| crate::access_log::looks_like_addresses(x)) {
            Some(x) => {
                let first = x.split(',').next().unwrap_or("").trim().to_string();
                if let Some(p) = peer.filter(|p| *p != "-") {
                    event.push("s-proxy", Value::text(p));
                }
                event.push("x-forwarded-for", Value::text(x.as_str()));
                event.push("c-ip", Value::text(first));
            }
            None => {
                if let Some(p) = peer {
                    event.push(
                        "c-ip",
                        if p == "-" {
                            Value::Null
                        } else {
                            Value::text(p)
                        },
                    );
                }
            }
        }
        // W3C logs are written in UTC.
        if let (Some(date), Some(time)) = (event.first_str("date"), event.first_str("time")) {
            event.timestamp = parse_timestamp(&format!("{date} {time}"));
        }
        event.computer = event
            .first_str("s-computername")
            .or_else(|| event.first_str("s-ip"))
            .map(Into::into);
        tally.event(event)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_input, Input, ReadOptions};

    fn read_text(text: &str) -> (Vec<Event>, Vec<String>, crate::InputReport) {
        let dir =
            std::env::temp_dir().join(format!("tw-w3c-{}-{}", std::process::id(), text.len()));
        std::fs::write(&dir, text).unwrap();
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        let report = read_input(
            &Input::File(dir.clone()),
            &ReadOptions::default(),
            &mut |item| match item {
                Ok(e) => events.push(e),
                Err(e) => errors.push(e.to_string()),
            },
        );
        std::fs::remove_file(dir).ok();
        (events, errors, report)
    }

    #[test]
    fn fields_directive_drives_columns_and_may_change() {
        let log = "#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n#Date: 2024-03-01 10:00:00\r\n\
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port c-ip sc-status\r\n\
2024-03-01 10:00:01 10.0.0.5 GET /owa/auth/x.aspx cmd=whoami 443 203.0.113.9 200\r\n\
#Fields: time date cs-uri-stem sc-status s-computername\r\n\
10:05:00 2024-03-01 /upload.aspx 500 WEB01\r\n";
        let (events, errors, report) = read_text(log);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(report.format, crate::Format::W3c);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].first_str("cs-uri-query"), Some("cmd=whoami"));
        assert_eq!(events[0].computer.as_deref(), Some("10.0.0.5"));
        assert_eq!(
            events[0].timestamp.unwrap().to_string(),
            "2024-03-01T10:00:01Z"
        );
        assert_eq!(events[1].first_str("cs-uri-stem"), Some("/upload.aspx"));
        assert_eq!(events[1].computer.as_deref(), Some("WEB01"));
        assert_eq!(events[1].channel.as_deref(), Some(CHANNEL));
        assert_eq!(events[1].origin.locator, towerwatch_event::Locator::Line(7));
    }

    #[test]
    fn bad_lines_are_rejected_with_their_number() {
        let log = "#Version: 1.0\n#Fields: date time cs-uri-stem\n2024-03-01 10:00:01 /a extra\n2024-03-01 10:00:02 -\n";
        let (events, errors, report) = read_text(log);
        assert_eq!(events.len(), 1);
        assert!(events[0].has("cs-uri-stem") && events[0].first_str("cs-uri-stem").is_none());
        assert_eq!(report.rejected, 1);
        assert!(
            errors[0].ends_with(":3: 4 values for the 3 fields of the #Fields: directive"),
            "{errors:?}"
        );
    }

    #[test]
    fn behind_a_load_balancer_the_client_is_the_forwarded_address() {
        let log = "#Version: 1.0\n#Fields: date time s-ip cs-method cs-uri-stem c-ip sc-status X-Forwarded-For\n\
2019-03-05 00:03:15 192.168.10.21 POST /x.aspx 192.168.10.5 200 198.18.67.228,+192.168.10.4\n\
2019-03-05 00:03:16 192.168.10.21 GET /health 192.168.10.5 200 -\n";
        let (events, errors, _) = read_text(log);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events[0].first_str("c-ip"), Some("198.18.67.228"));
        assert_eq!(events[0].first_str("s-proxy"), Some("192.168.10.5"));
        assert_eq!(
            events[0].first_str("x-forwarded-for"),
            Some("198.18.67.228, 192.168.10.4")
        );
        // No forwarded header: the peer is the client.
        assert_eq!(events[1].first_str("c-ip"), Some("192.168.10.5"));
        assert!(!events[1].has("s-proxy"));
    }
}
