//! Zeek logs in their native TSV form (`conn.log`, `dns.log`, …): `#separator`, `#path` and
//! `#fields` directives, tab-separated data lines, `-` for unset and `(empty)` for empty
//! fields. Events keep Zeek's field names (`id.orig_h`, `id.resp_p`, …); their channel is
//! `zeek/<path>` (e.g. `zeek/conn`), their time the `ts` field (seconds since the epoch).

use std::io::BufRead;

use towerwatch_event::{Event, Origin, Timestamp, Value};

use crate::{Position, Tally};

/// The channel prefix of Zeek events; the log's `#path` follows it.
pub const CHANNEL_PREFIX: &str = "zeek/";

pub(crate) fn looks_like(head: &[u8]) -> bool {
    head.starts_with(b"#separator") && head.windows(8).any(|w| w == b"\n#fields")
}

fn timestamp(ts: &str) -> Option<Timestamp> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Timestamp::new(secs, nanos).ok()
}

pub(crate) fn read(reader: &mut (dyn BufRead + Send), tally: &mut Tally<'_, '_>) {
    let mut fields: Option<Vec<String>> = None;
    let mut channel = format!("{CHANNEL_PREFIX}unknown");
    crate::for_each_line(reader, tally, |tally, line_no, bytes| {
        let line = String::from_utf8_lossy(bytes);
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            return true;
        }
        if let Some(directive) = line.strip_prefix('#') {
            let (name, rest) = directive.split_once(['\t', ' ']).unwrap_or((directive, ""));
            match name {
                "fields" => fields = Some(rest.split('\t').map(String::from).collect()),
                "path" => channel = format!("{CHANNEL_PREFIX}{}", rest.trim()),
                _ => {}
            }
            return true;
        }
        let Some(names) = &fields else {
            return tally.reject(
                Position::Line(line_no),
                "data line before any #fields directive".into(),
            );
        };
        let values: Vec<&str> = line.split('\t').collect();
        if values.len() != names.len() {
            let msg = format!(
                "{} values for the {} fields of the #fields directive",
                values.len(),
                names.len()
            );
            return tally.reject(Position::Line(line_no), msg);
        }
        let mut event = Event::new(Origin::line(tally.report.source.clone(), line_no));
        event.set_channel(&channel);
        event.provider = Some("Zeek".into());
        for (name, value) in names.iter().zip(values) {
            let value = match value {
                "-" => Value::Null,
                "(empty)" => Value::text(""),
                v => Value::text(v),
            };
            event.push(name.as_str(), value);
        }
        event.timestamp = event.first_str("ts").and_then(timestamp);
        if event.timestamp.is_none() {
            return tally.reject(Position::Line(line_no), "no valid ts field".into());
        }
        tally.event(event)
    });
}

#[cfg(test)]
mod tests {
    use crate::{read_input, Format, Input, ReadOptions};

    #[test]
    fn conn_log_columns_follow_the_fields_directive() {
        let log = "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.resp_h\tid.resp_p\tservice\n#types\ttime\tstring\taddr\taddr\tport\tstring\n\
1551657622.758163\tCx\t10.20.0.10\t198.51.100.7\t443\t-\n\
1551657623\tCy\t10.20.0.10\n\
1551657624.5\tCz\t10.20.0.11\t10.30.0.10\t5432\t(empty)\n";
        let path = std::env::temp_dir().join(format!("tw-zeek-{}.log", std::process::id()));
        std::fs::write(&path, log).unwrap();
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        let report = read_input(
            &Input::File(path.clone()),
            &ReadOptions::default(),
            &mut |i| match i {
                Ok(e) => events.push(e),
                Err(e) => errors.push(e.to_string()),
            },
        );
        std::fs::remove_file(path).ok();
        assert_eq!(report.format, Format::Zeek);
        assert_eq!(events.len(), 2);
        assert_eq!(report.rejected, 1);
        assert!(
            errors[0].ends_with(":6: 3 values for the 6 fields of the #fields directive"),
            "{errors:?}"
        );
        assert_eq!(events[0].channel.as_deref(), Some("zeek/conn"));
        assert_eq!(events[0].first_str("id.resp_h"), Some("198.51.100.7"));
        assert!(events[0].has("service") && events[0].first_str("service").is_none());
        assert_eq!(
            events[0].timestamp.unwrap().to_string(),
            "2019-03-04T00:00:22.758163Z"
        );
        assert_eq!(events[1].first_str("service"), Some(""));
        assert_eq!(
            events[1].timestamp.unwrap().to_string(),
            "2019-03-04T00:00:24.5Z"
        );
    }
}
