//! Retention: what came in longer ago than `--retain` is deleted, a chunk at a time so
//! ingest is never held up for long. Age is by ingest time (a case's evidence shipped today
//! is kept however old its events are); a text log is kept or dropped whole, by when it
//! last grew. The audit log is never expired.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::AppState;

/// Rows deleted per transaction.
const CHUNK: u64 = 20_000;

/// Seconds between ingest marks for `retain`: a thousandth of it, between 1 s and a minute
/// (90 days: a mark a minute, 129,600 rows at most).
pub(crate) fn resolution(retain: Duration) -> i64 {
    (retain.as_secs() / 1000).clamp(1, 60) as i64
}

/// Expires now, then every tenth of `retain` (at least every second, at most hourly), on a
/// thread of its own.
pub(crate) fn start(state: Arc<AppState>, retain: Duration) {
    let every = (retain / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            let cutoff = jiff::Timestamp::now().as_second() - retain.as_secs() as i64;
            loop {
                let gone = {
                    let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
                    store.expire(cutoff, CHUNK)
                };
                match gone {
                    Ok(0) => break,
                    Ok(n) => {
                        state.metrics.expired.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("towerwatch serve: retention: {e}");
                        break;
                    }
                }
            }
            std::thread::sleep(every);
        })
        .expect("a thread starts");
}

/// `90d`, `12h`, `30m`, `45s`, `2w`: a retention period.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: a number and a unit (s, m, h, d, w), e.g. 90d"))?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?}: a number and a unit (s, m, h, d, w), e.g. 90d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d, w")),
    };
    if n == 0 {
        return Err("a retention period is longer than nothing".into());
    }
    Ok(Duration::from_secs(n * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_written() {
        assert_eq!(parse_period("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_period("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_period("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_period("90").is_err());
        assert!(parse_period("d").is_err());
        assert!(parse_period("3y").is_err());
        assert!(parse_period("0d").is_err());
        assert_eq!(resolution(Duration::from_secs(90 * 86_400)), 60);
        assert_eq!(resolution(Duration::from_secs(5)), 1);
    }
}
