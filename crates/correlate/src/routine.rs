//! What the estate does routinely, learnt from its own evidence: a rule that fires on the same
//! host for the same program started by the same parent on many days at the same time of day
//! is the estate's routine (the nightly backup archiving with a password, the administrators'
//! PsExec and `whoami` on the jump host, the weekly deployment); so is one that fires for the
//! same program and parent on many hosts on many days (the PsExec service administrators
//! leave on the servers they reach); so is a program that is its own behaviour (PsExec, not
//! `cmd.exe`) whatever rule flags it, and the work of a person's account on a host it works on
//! daily (an administrator's `whoami` on the jump host, seen twice a month, is part of their
//! day there). "The same time of day" is within two hours of where it is usually seen, within
//! the stretch of the day its sightings fall in, or — on its own host — within the hours that
//! host works. Such a detection drops below the alerting levels with the reason ("seen daily
//! around 01:00 on BKP01 by svc_backup for 28 days") unless it belongs to an operation that
//! stands without it; a detection in a story of the routine that is no operation is its
//! context (see `operations`).
//!
//! The intruder's twin of a routine move differs in what the key holds (another host,
//! program or parent) or in when it happens (another hour), and its waves come back on a few
//! days, not on most days of weeks; where it does use the estate's own tool at the estate's
//! hour, the story it is part of keeps it alerting.
//!
//! ```
//! use towerwatch_correlate::routine::{Routine, actor_of};
//! use towerwatch_event::{Event, Origin, Value};
//!
//! let backup = |day: i64, hour: i64| {
//!     let mut e = Event::new(Origin::line("BKP01.jsonl", 1));
//!     e.computer = Some("BKP01.corp".into());
//!     e.timestamp = Some(jiff::Timestamp::from_second(1_551_657_600 + day * 86_400 + hour * 3_600).unwrap());
//!     e.push("User", Value::text("CORP\\svc_backup"));
//!     e.push("Image", Value::text("C:\\Program Files\\WinRAR\\Rar.exe"));
//!     e.push("ParentImage", Value::text("C:\\Windows\\System32\\cmd.exe"));
//!     e
//! };
//! let mut r = Routine::default();
//! for day in 0..14 {
//!     let e = backup(day, 1);
//!     r.observe(7, actor_of(&e), e.timestamp.unwrap().as_microsecond());
//! }
//! let night = backup(14, 1);
//! let why = r.verdict(7, &actor_of(&night), night.timestamp.unwrap().as_microsecond());
//! assert!(why.unwrap().starts_with("seen daily around 01:00 on BKP01 by svc_backup"));
//! // The same program at another hour of the day is not the routine.
//! let odd = backup(14, 13);
//! assert!(r.verdict(7, &actor_of(&odd), odd.timestamp.unwrap().as_microsecond()).is_none());
//! ```

use std::collections::{BTreeSet, HashMap};

use towerwatch_event::Event;

use crate::links::digest;

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// Keys kept (each a few hundred bytes); further ones are counted, not kept.
pub const KEYS: usize = 200_000;
/// Days remembered per key.
const DAYS_KEPT: usize = 400;
/// Hours of days remembered per key.
const SLOTS_KEPT: usize = 4 * DAYS_KEPT;
/// Distinct days a key needs to be routine, and the weeks they must span.
const MIN_DAYS: usize = 4;
const MIN_SPAN_DAYS: i64 = 6;
/// The share of a key's days with a sighting within two hours of a new one's time of day
/// (days, not sightings: an intruder's busy afternoon on a host with a nightly job is one
/// afternoon, not a habit).
const HOUR_SHARE: f64 = 0.25;
/// The share of a host's active days on which it raised detections within an hour of a new
/// one's time of day, for the host's working hours to vouch for a key seen at other hours
/// (an administrator's `whoami` at 14:00 on a jump host worked 13:00 to 22:00 every day).
const HOST_HOUR_SHARE: f64 = 0.3;
/// Rule number of the key that holds a program's sightings whatever rule flagged them.
const ANY_RULE: u32 = u32::MAX;

/// Who did it, as the digests the routine keys on: host, program and parent; program and
/// parent on any host; and the person (host and a person's account) — 0 when there is none.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ActorKey {
    pub digest: u64,
    pub estate: u64,
    pub person: u64,
}

/// Who did it: host, program and parent as one digest, program and parent (any host) as
/// another, the person at work on the host as a third, with the words kept for the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    pub digest: u64,
    pub estate: u64,
    /// Host and account, for a person's account (not SYSTEM, a service or a machine): an
    /// administrator at work on the jump host. 0 otherwise.
    pub person: u64,
    pub host: Box<str>,
    pub account: Box<str>,
    pub program: Box<str>,
    /// A program that is its own behaviour (PsExec, whoami, schtasks), not a shell or script
    /// host whose meaning is in its command line, nor a child of a web server: its
    /// sightings count whatever rule flagged them, and in its host's working hours.
    pub plain: bool,
}

impl Actor {
    pub fn key(&self) -> ActorKey {
        ActorKey {
            digest: self.digest,
            estate: self.estate,
            person: if self.plain { self.person } else { 0 },
        }
    }
}

/// A person's account: not the machine's (`HOST$`), nor a built-in service identity.
fn is_person(account: &str) -> bool {
    !account.is_empty()
        && !account.ends_with('$')
        && !matches!(
            account,
            "system"
                | "local service"
                | "network service"
                | "localsystem"
                | "-"
                | "anonymous logon"
        )
        && !account.starts_with("dwm-")
        && !account.starts_with("umfd-")
}

/// Programs that run whatever their command line says: the program alone says nothing.
fn is_generic(program: &str) -> bool {
    matches!(
        program,
        "cmd.exe"
            | "powershell.exe"
            | "pwsh.exe"
            | "powershell_ise.exe"
            | "wscript.exe"
            | "cscript.exe"
            | "mshta.exe"
            | "rundll32.exe"
            | "regsvr32.exe"
            | "msiexec.exe"
            | "wmic.exe"
            | "python.exe"
            | "perl.exe"
            | "java.exe"
            | "javaw.exe"
            | "sh"
            | "bash"
    )
}

/// Digits folded and case folded: `files_20190304.rar` and `files_20190305.rar` are one.
fn shape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_digit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_digit = false;
        }
    }
    out
}

fn file_name(p: &str) -> &str {
    p.rsplit(['\\', '/']).next().unwrap_or(p)
}

/// The actor of an event.
pub fn actor_of(e: &Event) -> Actor {
    let f = |names: &[&'static str]| {
        names
            .iter()
            .find_map(|n| e.first_str(n).filter(|v| !v.is_empty() && *v != "-"))
            .unwrap_or("")
    };
    let host = crate::links::short_host(e.computer.as_deref().unwrap_or(""));
    let account = f(&[
        "User",
        "SubjectUserName",
        "TargetUserName",
        "AccountName",
        "user_name",
    ]);
    let account = account
        .rsplit('\\')
        .next()
        .unwrap_or(account)
        .to_ascii_lowercase();
    let program = f(&[
        "Image",
        "NewProcessName",
        "SourceImage",
        "ImagePath",
        "ServiceFileName",
        "TaskName",
        "cs-uri-stem",
        "application_name",
    ]);
    let parent = f(&["ParentImage", "ParentProcessName"]);
    let person = if is_person(&account) {
        digest(&["person", &host, &account])
    } else {
        0
    };
    let plain = !parent.is_empty()
        && !crate::links::is_web_server(parent)
        && !is_generic(&file_name(program).to_ascii_lowercase());
    let (program, parent) = (shape(program), shape(parent));
    Actor {
        digest: digest(&[&host, &program, &parent]),
        estate: digest(&["estate", &program, &parent]),
        person,
        host,
        account: account.into(),
        program: file_name(&program).into(),
        plain,
    }
}

/// Whose habit a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    /// A program (and parent) on one host.
    Host,
    /// A person's account at work on one host, whatever the program.
    Person,
    /// A program (and parent) on any host.
    Estate,
}

/// A rule's sightings for one actor.
#[derive(Debug, Clone)]
struct Seen {
    days: BTreeSet<i32>,
    /// Hosts (digests), for the estate-wide key; a few are enough.
    hosts: BTreeSet<u64>,
    /// (day × 24 + hour) of each sighting, once per hour of a day.
    slots: BTreeSet<i32>,
    count: u32,
    host: Box<str>,
    account: Box<str>,
    program: Box<str>,
    plain: bool,
}

/// The share of a key's sightings its working window holds: the shortest stretch of the day
/// (wrapping midnight) in which it was seen on most of its days and hours.
const WINDOW_SHARE: f64 = 0.8;

/// Whether `hour` falls in the key's working window, widened by an hour each side: an
/// administrator's PsExec seen from 09:00 to 18:00 is routine at 08:30, not at 03:00.
fn in_window(days_by_hour: &[u32; 24], hour: i64) -> bool {
    let total: u32 = days_by_hour.iter().sum();
    if total == 0 {
        return false;
    }
    let need = (WINDOW_SHARE * f64::from(total)).ceil() as u32;
    // The shortest window [start, start + len) holding `need`; the first such start.
    for len in 1..=24i64 {
        for start in 0..24i64 {
            let held: u32 = (0..len)
                .map(|k| days_by_hour[((start + k) % 24) as usize])
                .sum();
            if held >= need {
                let from = start - 1;
                let span = len + 2;
                return (hour - from).rem_euclid(24) < span;
            }
        }
    }
    true
}

/// The days on which a host raised detections, by hour of the day.
#[derive(Debug, Clone, Default)]
struct HostHours {
    days: BTreeSet<i32>,
    by_hour: [BTreeSet<i32>; 24],
}

impl HostHours {
    fn add(&mut self, day: i32, hour: usize) {
        if self.days.len() < DAYS_KEPT {
            self.days.insert(day);
        }
        if self.by_hour[hour].len() < DAYS_KEPT {
            self.by_hour[hour].insert(day);
        }
    }

    /// Whether the host works at `hour`: active within an hour of it on many of its days.
    fn works_at(&self, hour: i64) -> bool {
        let near: BTreeSet<i32> = (-1..=1)
            .flat_map(|d| {
                self.by_hour[(hour + d).rem_euclid(24) as usize]
                    .iter()
                    .copied()
            })
            .collect();
        near.len() >= MIN_DAYS && near.len() as f64 >= HOST_HOUR_SHARE * self.days.len() as f64
    }
}

/// The sightings of every (rule, actor), merged across workers.
#[derive(Debug, Default)]
pub struct Routine {
    seen: HashMap<u64, Seen>,
    hosts: HashMap<u64, HostHours>,
    /// Sightings not kept because [`KEYS`] was reached.
    pub dropped: u64,
    /// Verdicts given, by key, hour of day and scope (all a verdict depends on): a
    /// conclusion asks for one per detection, and a key's sightings are many.
    verdicts: std::sync::Mutex<HashMap<(u64, i64, Scope), Option<String>>>,
}

fn key(rule: u32, actor: u64) -> u64 {
    actor ^ (u64::from(rule).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

impl Routine {
    /// Records that `rule` fired on an event of `actor` at `time` (µs).
    pub fn observe(&mut self, rule: u32, actor: Actor, time: i64) {
        self.verdicts_change();
        let host = digest(&[&actor.host]);
        self.sighting(key(rule, actor.digest), &actor, host, time);
        self.sighting(key(rule, actor.estate), &actor, host, time);
        if actor.plain {
            self.sighting(key(ANY_RULE, actor.digest), &actor, host, time);
            if actor.person != 0 {
                self.sighting(key(ANY_RULE, actor.person), &actor, host, time);
            }
        }
        if self.hosts.contains_key(&host) || self.hosts.len() < KEYS {
            let day = time.div_euclid(DAY) as i32;
            let hour = (time.rem_euclid(DAY) / HOUR) as usize;
            self.hosts.entry(host).or_default().add(day, hour);
        }
    }

    fn sighting(&mut self, k: u64, actor: &Actor, host: u64, time: i64) {
        if !self.seen.contains_key(&k) && self.seen.len() >= KEYS {
            self.dropped += 1;
            return;
        }
        let s = self.seen.entry(k).or_insert_with(|| Seen {
            days: BTreeSet::new(),
            hosts: BTreeSet::new(),
            slots: BTreeSet::new(),
            count: 0,
            host: actor.host.clone(),
            account: actor.account.clone(),
            program: actor.program.clone(),
            plain: actor.plain,
        });
        if s.hosts.len() < 8 {
            s.hosts.insert(host);
        }
        let day = time.div_euclid(DAY);
        if s.days.len() < DAYS_KEPT {
            s.days.insert(day as i32);
        }
        if s.slots.len() < SLOTS_KEPT {
            s.slots.insert((time.div_euclid(HOUR)) as i32);
        }
        s.count += 1;
    }

    pub fn merge(&mut self, other: Routine) {
        self.verdicts_change();
        self.dropped += other.dropped;
        for (h, o) in other.hosts {
            if !self.hosts.contains_key(&h) && self.hosts.len() >= KEYS {
                continue;
            }
            let mine = self.hosts.entry(h).or_default();
            for d in o.days {
                if mine.days.len() < DAYS_KEPT {
                    mine.days.insert(d);
                }
            }
            for (hour, days) in o.by_hour.into_iter().enumerate() {
                for d in days {
                    if mine.by_hour[hour].len() < DAYS_KEPT {
                        mine.by_hour[hour].insert(d);
                    }
                }
            }
        }
        for (k, o) in other.seen {
            let room = self.seen.len() < KEYS;
            match self.seen.get_mut(&k) {
                Some(s) => {
                    for d in o.days {
                        if s.days.len() < DAYS_KEPT {
                            s.days.insert(d);
                        }
                    }
                    for h in o.hosts {
                        if s.hosts.len() < 8 {
                            s.hosts.insert(h);
                        }
                    }
                    for slot in o.slots {
                        if s.slots.len() < SLOTS_KEPT {
                            s.slots.insert(slot);
                        }
                    }
                    s.count += o.count;
                }
                None if room => {
                    self.seen.insert(k, o);
                }
                None => self.dropped += u64::from(o.count),
            }
        }
    }

    /// Why a sighting of `rule` for `actor` at `time` is routine, if it is: on its host (for
    /// this rule, or for the program whatever rule flagged it), or across the estate (the
    /// same program and parent on three hosts or more).
    pub fn verdict(&self, rule: u32, actor: &Actor, time: i64) -> Option<String> {
        self.verdict_of(rule, actor.key(), time)
    }

    /// As [`verdict`](Self::verdict), by the digests alone.
    pub fn verdict_of(&self, rule: u32, actor: ActorKey, time: i64) -> Option<String> {
        self.judge(key(rule, actor.digest), time, Scope::Host)
            .or_else(|| self.judge(key(ANY_RULE, actor.digest), time, Scope::Host))
            .or_else(|| {
                (actor.person != 0)
                    .then(|| self.judge(key(ANY_RULE, actor.person), time, Scope::Person))
                    .flatten()
            })
            .or_else(|| self.judge(key(rule, actor.estate), time, Scope::Estate))
    }

    /// Sightings changed: verdicts given before may not hold.
    fn verdicts_change(&mut self) {
        let verdicts = self.verdicts.get_mut().unwrap_or_else(|p| p.into_inner());
        if !verdicts.is_empty() {
            *verdicts = HashMap::new();
        }
    }

    fn judge(&self, k: u64, time: i64, scope: Scope) -> Option<String> {
        let hour = time.rem_euclid(DAY) / HOUR;
        // Only keys held are remembered (a key not held is no routine at once): the memo
        // stays within the cap on keys, 24 hours each.
        if !self.seen.contains_key(&k) {
            return None;
        }
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        verdicts
            .entry((k, hour, scope))
            .or_insert_with(|| self.judge_at(k, hour, scope))
            .clone()
    }

    /// [`judge`](Self::judge) at `hour` of the day, worked out.
    fn judge_at(&self, k: u64, hour: i64, scope: Scope) -> Option<String> {
        let estate = scope == Scope::Estate;
        let s = self.seen.get(&k)?;
        if estate && s.hosts.len() < 3 {
            return None;
        }
        let days = s.days.len();
        let (first, last) = (*s.days.first()?, *s.days.last()?);
        let span = i64::from(last - first);
        if days < MIN_DAYS || span < MIN_SPAN_DAYS {
            return None;
        }
        // Days on which it was seen within two hours of this time of day.
        let mut near_days = BTreeSet::new();
        let mut days_by_hour = [0u32; 24];
        for &slot in &s.slots {
            let (day, h) = (slot.div_euclid(24), i64::from(slot.rem_euclid(24)));
            days_by_hour[h as usize] += 1;
            let apart = (h - hour).rem_euclid(24);
            if apart.min(24 - apart) <= 2 {
                near_days.insert(day);
            }
        }
        let usual_hour =
            near_days.len() as f64 >= HOUR_SHARE * days as f64 || in_window(&days_by_hour, hour);
        // On its own host, a key seen at other hours is still routine within the hours the
        // host works every day.
        let host_works = !estate
            && s.plain
            && s.hosts
                .first()
                .and_then(|h| self.hosts.get(h))
                .is_some_and(|h| h.works_at(hour));
        if !usual_hour && !host_works {
            return None;
        }
        let modal = (0..24)
            .max_by_key(|&h| (days_by_hour[h], std::cmp::Reverse(h)))
            .unwrap_or(0);
        // 1970-01-01 was a Thursday: day 0 is weekday 3 (Monday 0).
        let weekday_of = |d: i32| (d + 3).rem_euclid(7) as usize;
        let weekday =
            Some(weekday_of(first)).filter(|&w| s.days.iter().all(|&d| weekday_of(d) == w));
        let how = if days as i64 * 10 >= (span + 1) * 6 {
            format!("seen daily around {modal:02}:00")
        } else if let Some(w) = weekday {
            const NAMES: [&str; 7] = [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ];
            format!("seen weekly on {}s around {modal:02}:00", NAMES[w])
        } else {
            format!("seen on {days} days, mostly around {modal:02}:00,")
        };
        let place = if estate {
            format!(
                "on {}{} hosts",
                s.hosts.len(),
                if s.hosts.len() >= 8 { "+" } else { "" }
            )
        } else {
            format!(
                "on {} by {}",
                s.host,
                if s.account.is_empty() {
                    "-"
                } else {
                    &s.account
                }
            )
        };
        let what = match scope {
            Scope::Person => "their work there".to_string(),
            _ => s.program.to_string(),
        };
        Some(format!(
            "{how} {place} for {} days ({what}): the estate's routine",
            span + 1,
        ))
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use towerwatch_event::{Origin, Value};

    fn ev(host: &str, user: &str, image: &str, day: i64, hour: i64) -> (Event, i64) {
        let mut e = Event::new(Origin::line("x", 1));
        e.computer = Some(host.into());
        e.push("User", Value::text(user));
        e.push("Image", Value::text(image));
        let t = 1_551_657_600_000_000 + day * DAY + hour * HOUR;
        (e, t)
    }

    #[test]
    fn weekly_and_habitual_routines_and_the_intruders_twin() {
        let mut r = Routine::default();
        // A weekly deployment on the same weekday.
        for w in 0..4 {
            let (e, t) = ev("WEB01", "svc_deploy", "C:\\msdeploy.exe", w * 7, 22);
            r.observe(1, actor_of(&e), t);
        }
        let (e, t) = ev("WEB01", "svc_deploy", "C:\\msdeploy.exe", 28, 22);
        assert!(r
            .verdict(1, &actor_of(&e), t)
            .unwrap()
            .starts_with("seen weekly on Mondays"));
        // The same program at another hour, or on another host: not routine.
        let (e, t) = ev("WEB01", "svc_deploy", "C:\\msdeploy.exe", 28, 3);
        assert!(r.verdict(1, &actor_of(&e), t).is_none());
        let (e, t) = ev("WEB02", "svc_deploy", "C:\\msdeploy.exe", 28, 22);
        assert!(r.verdict(1, &actor_of(&e), t).is_none());
        // One program on many hosts on many days is the estate's.
        let mut r = Routine::default();
        for day in 0..12 {
            let (e, t) = ev(
                &format!("SRV{:02}", day % 5),
                "SYSTEM",
                "C:\\Windows\\PSEXESVC.exe",
                day,
                10,
            );
            r.observe(4, actor_of(&e), t);
        }
        let (e, t) = ev("DC01", "SYSTEM", "C:\\Windows\\PSEXESVC.exe", 13, 11);
        assert!(r
            .verdict(4, &actor_of(&e), t)
            .unwrap()
            .contains("on 5 hosts"));
        // Three waves a week apart are no routine however alike.
        let mut r = Routine::default();
        for w in 0..3 {
            let (e, t) = ev("JUMP01", "adm.x", "C:\\ProgramData\\x\\pse.exe", w * 8, 2);
            r.observe(2, actor_of(&e), t);
        }
        let (e, t) = ev("JUMP01", "adm.x", "C:\\ProgramData\\x\\pse.exe", 24, 2);
        assert!(r.verdict(2, &actor_of(&e), t).is_none());
    }

    #[test]
    fn a_remembered_verdict_is_the_one_worked_out_and_new_sightings_change_it() {
        let mut r = Routine::default();
        let deploy = |day: i64, hour: i64| ev("WEB01", "svc_deploy", "C:\\msdeploy.exe", day, hour);
        for day in 0..3 {
            let (e, t) = deploy(day, 22);
            r.observe(1, actor_of(&e), t);
        }
        // Three days are too few: no routine, and asking again (remembered) says the same.
        let (e, t) = deploy(9, 22);
        let actor = actor_of(&e);
        assert!(r.verdict(1, &actor, t).is_none());
        assert!(r.verdict(1, &actor, t).is_none());
        // A fourth day makes it one: the verdict remembered before is not given again.
        let (e4, t4) = deploy(6, 22);
        r.observe(1, actor_of(&e4), t4);
        let routine = r.verdict(1, &actor, t).expect("routine after four days");
        // Any time of the same hour, any day: the same words as worked out afresh.
        for (day, minute) in [(9, 0), (10, 59), (40, 30)] {
            let at = t - 9 * DAY + day * DAY + minute * 60_000_000;
            assert_eq!(r.verdict(1, &actor, at).as_deref(), Some(routine.as_str()));
            let fresh = r.judge_at(key(1, actor.key().digest), 22, Scope::Host);
            assert_eq!(fresh.as_deref(), Some(routine.as_str()));
        }
        // Another hour is judged on its own.
        assert!(r.verdict(1, &actor, t - 12 * HOUR).is_none());
        // A merge changes the sightings too.
        let mut other = Routine::default();
        for day in 20..30 {
            let (e, t) = deploy(day, 3);
            other.observe(1, actor_of(&e), t);
        }
        assert!(r.verdict(1, &actor, t - 19 * HOUR).is_none());
        r.merge(other);
        assert!(r.verdict(1, &actor, t - 19 * HOUR).is_some());
    }

    fn child(host: &str, image: &str, parent: &str, day: i64, hour: i64) -> (Event, i64) {
        let (mut e, t) = ev(host, "adm.x", image, day, hour);
        e.push("ParentImage", Value::text(parent));
        (e, t)
    }

    #[test]
    fn a_jump_hosts_working_hours_and_its_programs_whatever_the_rule() {
        const CMD: &str = "C:\\Windows\\System32\\cmd.exe";
        let mut r = Routine::default();
        // Administrators work on the jump host from 13:00 to 21:00 every day; PsExec runs
        // around 17:00 (rule 1), whoami now and then at 20:00 (rule 2).
        for day in 0..20 {
            for hour in [13, 15, 17, 19, 21] {
                let (e, t) = child("JUMP01", "C:\\Tools\\netstat.exe", CMD, day, hour);
                r.observe(9, actor_of(&e), t);
            }
            let (e, t) = child("JUMP01", "C:\\Tools\\PsExec64.exe", CMD, day, 17);
            r.observe(1, actor_of(&e), t);
            if day % 3 == 0 {
                let (e, t) = child("JUMP01", "C:\\Windows\\System32\\whoami.exe", CMD, day, 20);
                r.observe(2, actor_of(&e), t);
            }
        }
        // whoami at 14:00 is within the host's working hours: routine.
        let (e, t) = child("JUMP01", "C:\\Windows\\System32\\whoami.exe", CMD, 21, 14);
        assert!(r.verdict(2, &actor_of(&e), t).is_some());
        // At 03:00 the host does not work: not routine.
        let (e, t) = child("JUMP01", "C:\\Windows\\System32\\whoami.exe", CMD, 21, 3);
        assert!(r.verdict(2, &actor_of(&e), t).is_none());
        // PsExec flagged by a rule that never fired on it before is still the same program.
        let (e, t) = child("JUMP01", "C:\\Tools\\PsExec64.exe", CMD, 21, 17);
        assert!(r.verdict(5, &actor_of(&e), t).is_some());
        // A shell is not its own behaviour: cmd.exe routine under one rule says nothing of
        // another rule's cmd.exe; nor does a web server's child ride on the host's hours.
        let mut r = Routine::default();
        for day in 0..20 {
            let (e, t) = child("WEB01", CMD, "C:\\wildfly\\bin\\java.exe", day, 2);
            r.observe(1, actor_of(&e), t);
            let (e, t) = child(
                "WEB01",
                "C:\\Windows\\System32\\whoami.exe",
                "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                day,
                9,
            );
            r.observe(3, actor_of(&e), t);
        }
        let (e, t) = child("WEB01", CMD, "C:\\wildfly\\bin\\java.exe", 21, 2);
        assert!(r.verdict(1, &actor_of(&e), t).is_some());
        assert!(r.verdict(2, &actor_of(&e), t).is_none());
        let (e, t) = child(
            "WEB01",
            "C:\\Windows\\System32\\whoami.exe",
            "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
            21,
            2,
        );
        assert!(r.verdict(3, &actor_of(&e), t).is_none());
    }

    #[test]
    fn a_persons_work_on_a_host_and_a_keys_working_window() {
        const CMD: &str = "C:\\Windows\\System32\\cmd.exe";
        let mut r = Routine::default();
        // adm.x works on JUMP01 every afternoon with one tool or another; whoami only twice.
        let tools = ["ipconfig.exe", "quser.exe", "netstat.exe", "nltest.exe"];
        for day in 0..20 {
            let image = format!("C:\\Windows\\System32\\{}", tools[day as usize % 4]);
            let (mut e, t) = ev("JUMP01", "CORP\\adm.x", &image, day, 14 + day % 4);
            e.push("ParentImage", Value::text(CMD));
            r.observe(9, actor_of(&e), t);
        }
        for day in [3, 11] {
            let (mut e, t) = ev(
                "JUMP01",
                "CORP\\adm.x",
                "C:\\Windows\\System32\\whoami.exe",
                day,
                15,
            );
            e.push("ParentImage", Value::text(CMD));
            r.observe(2, actor_of(&e), t);
        }
        let (mut e, t) = ev(
            "JUMP01",
            "CORP\\adm.x",
            "C:\\Windows\\System32\\whoami.exe",
            21,
            16,
        );
        e.push("ParentImage", Value::text(CMD));
        let why = r.verdict(2, &actor_of(&e), t).expect("the admin's work");
        assert!(
            why.contains("on JUMP01 by adm.x") && why.contains("their work there"),
            "{why}"
        );
        // Another account, or SYSTEM, is not that person.
        let (mut e, t) = ev(
            "JUMP01",
            "CORP\\adm.y",
            "C:\\Windows\\System32\\whoami.exe",
            21,
            16,
        );
        e.push("ParentImage", Value::text(CMD));
        assert!(r.verdict(2, &actor_of(&e), t).is_none());
        assert_eq!(
            actor_of(&ev("JUMP01", "NT AUTHORITY\\SYSTEM", "x.exe", 0, 0).0).person,
            0
        );

        // The PsExec service across the estate, seen between 01:00 and 05:00 on twelve days.
        let mut r = Routine::default();
        for day in 0..12 {
            let (mut e, t) = ev(
                &format!("SRV{}", day % 5),
                "SYSTEM",
                "C:\\Windows\\PSEXESVC.exe",
                day,
                1 + day % 5,
            );
            e.push(
                "ParentImage",
                Value::text("C:\\Windows\\System32\\services.exe"),
            );
            r.observe(4, actor_of(&e), t);
        }
        let at = |hour| {
            let (mut e, t) = ev("SRV9", "SYSTEM", "C:\\Windows\\PSEXESVC.exe", 13, hour);
            e.push(
                "ParentImage",
                Value::text("C:\\Windows\\System32\\services.exe"),
            );
            r.verdict(4, &actor_of(&e), t)
        };
        assert!(at(6).is_some(), "an hour past the window");
        assert!(at(15).is_none(), "far outside it");
    }

    #[test]
    fn workers_merge() {
        let (mut a, mut b) = (Routine::default(), Routine::default());
        for day in 0..10 {
            let (e, t) = ev("H", "u", "p.exe", day, 9);
            if day % 2 == 0 {
                a.observe(3, actor_of(&e), t)
            } else {
                b.observe(3, actor_of(&e), t)
            }
        }
        a.merge(b);
        let (e, t) = ev("H", "u", "p.exe", 10, 10);
        assert!(a.verdict(3, &actor_of(&e), t).is_some());
        assert_eq!(a.len(), 2);
    }
}
