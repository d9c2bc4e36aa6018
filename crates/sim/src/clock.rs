//! Time as microseconds since the Unix epoch (UTC), and its renderings in each log format.
//! Hand-rolled civil-date arithmetic: the simulator formats hundreds of millions of stamps.

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day count since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub struct Parts {
    pub y: i64,
    pub mo: u32,
    pub d: u32,
    pub h: u32,
    pub mi: u32,
    pub s: u32,
    pub us: u32,
}

pub fn parts(t: i64) -> Parts {
    let days = t.div_euclid(DAY);
    let rem = t.rem_euclid(DAY);
    let (y, mo, d) = civil(days);
    Parts {
        y,
        mo,
        d,
        h: (rem / HOUR) as u32,
        mi: (rem % HOUR / MINUTE) as u32,
        s: (rem % MINUTE / SECOND) as u32,
        us: (rem % SECOND) as u32,
    }
}

/// `2019-03-04T08:15:02.123456Z` (EVTX `SystemTime`).
pub fn rfc3339_us(t: i64) -> String {
    let p = parts(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        p.y, p.mo, p.d, p.h, p.mi, p.s, p.us
    )
}

/// `2019-03-04T08:15:02Z`.
pub fn rfc3339(t: i64) -> String {
    let p = parts(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        p.y, p.mo, p.d, p.h, p.mi, p.s
    )
}

/// `2019-03-04 08:15:02.123` (Sysmon `UtcTime`).
pub fn sysmon(t: i64) -> String {
    let p = parts(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        p.y,
        p.mo,
        p.d,
        p.h,
        p.mi,
        p.s,
        p.us / 1000
    )
}

/// `2019-03-04 08:15:02.123 UTC` (PostgreSQL `%m` with `log_timezone = 'UTC'`).
pub fn pg(t: i64) -> String {
    format!("{} UTC", sysmon(t))
}

/// PostgreSQL `%m` with `log_timezone` at a fixed offset: `2019-03-04 11:15:02.123 +03`
/// (`%t` without the milliseconds).
pub fn pg_at(t: i64, offset_minutes: i32, millis: bool) -> String {
    let l = sysmon(t + i64::from(offset_minutes) * MINUTE);
    let l = if millis { l } else { l[..19].to_string() };
    if offset_minutes == 0 {
        return format!("{l} UTC");
    }
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.unsigned_abs();
    if off.is_multiple_of(60) {
        format!("{l} {sign}{:02}", off / 60)
    } else {
        format!("{l} {sign}{:02}:{:02}", off / 60, off % 60)
    }
}

/// `2019-03-04 08:15:02` (UTC, no offset).
pub fn naive_utc(t: i64) -> String {
    sysmon(t)[..19].to_string()
}

/// `2019-03-04 08:15:02+00` (PostgreSQL's text output of a `timestamptz` in UTC).
pub fn pg_timestamptz(t: i64) -> String {
    let p = parts(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00",
        p.y, p.mo, p.d, p.h, p.mi, p.s
    )
}

/// `2019-03-04` of a time.
pub fn date(t: i64) -> String {
    let p = parts(t);
    format!("{:04}-{:02}-{:02}", p.y, p.mo, p.d)
}

/// (`2019-03-04`, `08:15:02`) as W3C logs write them.
pub fn w3c(t: i64) -> (String, String) {
    let p = parts(t);
    (
        format!("{:04}-{:02}-{:02}", p.y, p.mo, p.d),
        format!("{:02}:{:02}:{:02}", p.h, p.mi, p.s),
    )
}

/// ISO 8601 local time with its offset, as mediated CDRs carry 32.298 TimeStamps:
/// `2019-03-04T16:15:02+08:00`.
pub fn local_iso(t: i64, offset_minutes: i32) -> String {
    let p = parts(t + i64::from(offset_minutes) * MINUTE);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.unsigned_abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        p.y,
        p.mo,
        p.d,
        p.h,
        p.mi,
        p.s,
        off / 60,
        off % 60
    )
}

/// Parses `YYYY-MM-DD` to the micros of its midnight UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let y = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let d = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY)
}

/// Day of the week, 0 = Monday.
pub fn weekday(t: i64) -> u32 {
    (t.div_euclid(DAY) + 3).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderings_agree_with_jiff() {
        for t in [
            0,
            1_551_687_302_123_456,
            951_782_400_000_000,
            4_102_444_799_999_999,
        ] {
            let ours = rfc3339_us(t);
            let theirs = jiff::Timestamp::from_microsecond(t).unwrap().to_string();
            assert_eq!(
                ours.parse::<jiff::Timestamp>().unwrap().as_microsecond(),
                theirs.parse::<jiff::Timestamp>().unwrap().as_microsecond()
            );
            assert_eq!(
                days_from_civil(parts(t).y, parts(t).mo, parts(t).d),
                t.div_euclid(DAY)
            );
        }
        assert_eq!(parse_date("2019-03-04"), Some(1_551_657_600 * SECOND));
        assert_eq!(weekday(parse_date("2019-03-04").unwrap()), 0);
        assert_eq!(local_iso(0, 480), "1970-01-01T08:00:00+08:00");
        assert_eq!(pg(1_551_687_302_123_456), "2019-03-04 08:15:02.123 UTC");
    }
}
