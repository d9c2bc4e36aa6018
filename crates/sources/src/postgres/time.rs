//! PostgreSQL's timestamp text: `2019-03-06 18:55:00.300 UTC`, `… +08`, `… +05:30`, `… CEST`
//! (the zone abbreviations of PostgreSQL's `Default` set that logs commonly show), or epoch
//! seconds (`%n`).

use jiff::Timestamp;

/// Zone abbreviations and their offsets in minutes (PostgreSQL's `Default` set).
const ABBREVIATIONS: [(&str, i32); 40] = [
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("UCT", 0),
    ("WET", 0),
    ("WEST", 60),
    ("BST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("MET", 60),
    ("MEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("SAST", 120),
    ("WAT", 60),
    ("CAT", 120),
    ("EAT", 180),
    ("IST", 120),
    ("PKT", 300),
    ("ICT", 420),
    ("WIB", 420),
    ("SGT", 480),
    ("HKT", 480),
    ("AWST", 480),
    ("PHT", 480),
    ("JST", 540),
    ("KST", 540),
    ("AEST", 600),
    ("AEDT", 660),
    ("NZST", 720),
    ("NZDT", 780),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
];

/// Parses a PostgreSQL log timestamp; `None` when it is no time or its zone is not known.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return Timestamp::from_microsecond((secs * 1e6).round() as i64).ok();
    }
    let (civil, zone) = match s.rfind(' ') {
        Some(i)
            if s[i + 1..]
                .chars()
                .any(|c| c.is_ascii_alphabetic() || c == '+' || c == '-') =>
        {
            (&s[..i], &s[i + 1..])
        }
        _ => {
            // An offset glued to the time: `2019-02-02 00:00:00+00`.
            match s.rfind(['+', '-']).filter(|&i| i > 10) {
                Some(i) => (&s[..i], &s[i..]),
                None => (s, "UTC"),
            }
        }
    };
    let dt: jiff::civil::DateTime = civil.trim().replace('T', " ").parse().ok()?;
    let minutes = if zone.starts_with(['+', '-']) {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let body = &zone[1..];
        let (h, m) = match body.split_once(':') {
            Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
            // Four ASCII digits (`+0530`); `get` keeps a wide character from splitting.
            None if body.len() == 4 => (body.get(..2)?.parse().ok()?, body.get(2..)?.parse().ok()?),
            None => (body.parse().ok()?, 0),
        };
        // Real offsets lie within ±18 hours; anything else is no zone (and no overflow).
        if !(0..=18).contains(&h) || !(0..60).contains(&m) {
            return None;
        }
        sign * (h * 60 + m)
    } else {
        let upper = zone.to_ascii_uppercase();
        ABBREVIATIONS.iter().find(|(a, _)| *a == upper)?.1
    };
    jiff::tz::Offset::from_seconds(minutes * 60)
        .ok()?
        .to_timestamp(dt)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_character_in_a_four_byte_offset_is_no_time() {
        // Found by fuzzing: `+` then one 3-byte character and an ASCII byte.
        assert_eq!(parse_time("2019-03-28 08:01:28+\u{fffd}e"), None);
        assert_eq!(parse_time("2019-03-28 08:01:28+e\u{fffd}"), None);
        // Found by fuzzing too: hours that overflow when turned into minutes.
        assert_eq!(parse_time("2019-03-28 08:01:28+99999999"), None);
        // 71,582,789 hours wrap to 44 minutes in 32 bits.
        assert_eq!(parse_time("2019-03-28 08:01:28+71582789:00"), None);
        assert_eq!(parse_time("2019-03-28 08:01:28-2147483647:00"), None);
        assert_eq!(
            parse_time("2019-03-28 08:01:28+05:30").map(|t| t.to_string()),
            Some("2019-03-28T02:31:28Z".into())
        );
    }

    #[test]
    fn zones_offsets_abbreviations_and_epochs() {
        let at = |s: &str| parse_time(s).map(|t| t.to_string());
        assert_eq!(
            at("2019-03-06 18:55:00.300 UTC").as_deref(),
            Some("2019-03-06T18:55:00.3Z")
        );
        assert_eq!(
            at("2019-03-06 02:55:00 +08").as_deref(),
            Some("2019-03-05T18:55:00Z")
        );
        assert_eq!(
            at("2019-03-06 02:55:00 +05:30").as_deref(),
            Some("2019-03-05T21:25:00Z")
        );
        assert_eq!(
            at("2019-03-06 02:55:00 -0500").as_deref(),
            Some("2019-03-06T07:55:00Z")
        );
        assert_eq!(
            at("2019-07-06 12:00:00 CEST").as_deref(),
            Some("2019-07-06T10:00:00Z")
        );
        assert_eq!(
            at("2019-02-02 00:00:00+00").as_deref(),
            Some("2019-02-02T00:00:00Z")
        );
        assert_eq!(
            at("1551898500.5").as_deref(),
            Some("2019-03-06T18:55:00.5Z")
        );
        assert_eq!(
            at("2019-03-06 18:55:00").as_deref(),
            Some("2019-03-06T18:55:00Z")
        );
        assert_eq!(at("2019-03-06 18:55:00 XYZT"), None);
        assert_eq!(at("yesterday"), None);
    }
}
