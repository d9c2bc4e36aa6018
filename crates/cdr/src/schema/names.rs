//! What names say: a column's role by its name (the names 3GPP and warehouses use), a
//! partition's parent, and the family of records a table or record type names.

use std::sync::OnceLock;

use regex::Regex;

use super::{Family, Role};
use crate::sql::IdKind;

/// A column name's words: `ServedMSISDN` → `served msisdn`, `call_start_ts` → `call start ts`.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let boundary = match prev {
            Some(p) if p.is_ascii_alphanumeric() => {
                (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                    || (p.is_ascii_uppercase()
                        && c.is_ascii_uppercase()
                        && next.is_some_and(|n| n.is_ascii_lowercase()))
                    || (p.is_ascii_digit() != c.is_ascii_digit())
            }
            _ => false,
        };
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The role a column's name gives it, if any.
pub fn column_role(name: &str) -> Option<Role> {
    let w = words(name);
    let joined: String = w.concat();
    let has = |x: &str| w.iter().any(|t| t == x);
    // Counts, hashes, prefixes and flags of identifiers are not identifiers.
    let derived = [
        "count", "cnt", "total", "hash", "hashed", "type", "flag", "len", "prefix", "country",
        "mcc", "mnc", "tac", "range", "pattern", "masked", "num", "nb",
    ]
    .iter()
    .any(|x| w.last().is_some_and(|l| l == x))
        && !matches!(
            joined.as_str(),
            "anum" | "bnum" | "callingnum" | "callednum"
        );
    let names_id = ["msisdn", "imsi", "imei"]
        .iter()
        .any(|k| joined.contains(k));
    if derived && names_id {
        return None;
    }
    if !derived {
        if joined.contains("msisdn") || joined == "gpsi" {
            return Some(Role::Id(IdKind::Msisdn));
        }
        if joined.contains("imsi") || joined == "supi" {
            return Some(Role::Id(IdKind::Imsi));
        }
        if joined.contains("imei") || joined == "pei" {
            return Some(Role::Id(IdKind::Imei));
        }
    }
    const MSISDN_NAMES: [&str; 32] = [
        "anumber",
        "bnumber",
        "cnumber",
        "anum",
        "bnum",
        "aparty",
        "bparty",
        "partya",
        "partyb",
        "caller",
        "callee",
        "callerid",
        "calleeid",
        "callernumber",
        "calleenumber",
        "calling",
        "called",
        "callingnumber",
        "callednumber",
        "callingparty",
        "calledparty",
        "callingpartynumber",
        "calledpartynumber",
        "callingnum",
        "callednum",
        "cli",
        "recipientid",
        "senderid",
        "othernumber",
        "otherparty",
        "dialednumber",
        "connectednumber",
    ];
    if MSISDN_NAMES.contains(&joined.as_str())
        || (has("number")
            && w.iter().any(|t| {
                matches!(
                    t.as_str(),
                    "calling"
                        | "called"
                        | "caller"
                        | "callee"
                        | "served"
                        | "subscriber"
                        | "phone"
                        | "mobile"
                        | "translated"
                        | "connected"
                        | "redirecting"
                        | "dialed"
                        | "dialled"
                        | "other"
                        | "originating"
                        | "terminating"
                        | "sender"
                        | "recipient"
                        | "directory"
                )
            }))
    {
        return Some(Role::Id(IdKind::Msisdn));
    }
    if matches!(
        joined.as_str(),
        "duration" | "durations" | "callduration" | "durationsec"
    ) || (has("duration") && !has("type"))
    {
        return Some(Role::Duration);
    }
    if matches!(
        joined.as_str(),
        "recordtype"
            | "rectype"
            | "calltype"
            | "cdrtype"
            | "eventtype"
            | "usagetype"
            | "servicetype"
            | "recordkind"
    ) {
        return Some(Role::RecordType);
    }
    // A record's own identity (a 32.298 record sequence number numbers partial records
    // and is no identity).
    if matches!(
        joined.as_str(),
        "recordid"
            | "cdrid"
            | "id"
            | "eventid"
            | "eventuid"
            | "uid"
            | "callid"
            | "uuid"
            | "cdruuid"
            | "usageid"
            | "recid"
            | "rowid"
            | "xdrid"
    ) {
        return Some(Role::RecordId);
    }
    const LOCATION: [&str; 21] = [
        "cell", "cellid", "ci", "eci", "ecgi", "cgi", "ncgi", "nci", "lac", "tac", "lactac",
        "location", "loc", "site", "siteid", "antenna", "bts", "sector", "uli", "enodeb", "gnodeb",
    ];
    if LOCATION.contains(&joined.as_str())
        || w.iter().any(|t| {
            matches!(
                t.as_str(),
                "cell"
                    | "lac"
                    | "tac"
                    | "ecgi"
                    | "cgi"
                    | "ncgi"
                    | "antenna"
                    | "bts"
                    | "site"
                    | "location"
                    | "uli"
                    | "sector"
                    | "enb"
                    | "gnb"
                    | "geohash"
            )
        })
        || joined.contains("locationarea")
        || joined.contains("cellid")
    {
        return Some(Role::Location);
    }
    let timeish = w.iter().any(|t| {
        matches!(
            t.as_str(),
            "time" | "date" | "ts" | "timestamp" | "datetime" | "timestmp" | "dt" | "tstamp"
        )
    }) || joined.ends_with("time")
        || joined.ends_with("timestamp")
        || joined.ends_with("date")
        || matches!(joined.as_str(), "calldate" | "timestmp" | "ts");
    if timeish {
        let ending = w.iter().any(|t| {
            matches!(
                t.as_str(),
                "end"
                    | "release"
                    | "closure"
                    | "stop"
                    | "created"
                    | "updated"
                    | "modified"
                    | "load"
                    | "loaded"
                    | "insert"
                    | "inserted"
                    | "activation"
                    | "expiry"
            )
        }) || joined.contains("release")
            || joined.contains("closure");
        let rank = if ending {
            1
        } else if w.iter().any(|t| {
            matches!(
                t.as_str(),
                "start" | "seizure" | "opening" | "event" | "call" | "begin" | "session" | "usage"
            )
        }) || joined.contains("start")
            || joined.contains("seizure")
            || joined.contains("opening")
        {
            4
        } else if has("answer") || joined.contains("answer") {
            3
        } else {
            2
        };
        return Some(Role::Time(rank));
    }
    None
}

/// The parent of a partition by its name (`call_events_2024_05` → `call_events`,
/// `voice_y2024m05` → `voice`, `cdr_20240514` → `cdr`, `ImportedCDRs_2017` →
/// `importedcdrs`); `None` when the name has no date suffix.
pub fn partition_parent(relation: &str) -> Option<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"^(?P<base>.*?[a-z])_?(?:(?:19|20)\d\d(?:_?(?:0[1-9]|1[0-2]))?(?:_?(?:0[1-9]|[12]\d|3[01]))?|y(?:19|20)\d\dm\d\d?(?:d\d\d?)?|p(?:19|20)\d{4,6}|q[1-4]_?(?:19|20)\d\d|(?:19|20)\d\dq[1-4])$",
        )
        .expect("valid regex")
    });
    let (schema, name) = match relation.rsplit_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, relation),
    };
    let base = re.captures(name)?.name("base")?.as_str();
    Some(match schema {
        Some(s) => format!("{s}.{base}"),
        None => base.to_string(),
    })
}

/// The relation a relation's records fold into: its parent if a partition, else itself.
pub(super) fn parent_key(relation: &str) -> String {
    partition_parent(relation).unwrap_or_else(|| relation.to_string())
}

/// The family a table name or record type names (`voice_cdr`, `moSMSRecord`, `pGWRecord`, `7`).
pub fn family_of(name: &str) -> Option<Family> {
    let l = name.to_ascii_lowercase();
    let l = l.rsplit('.').next().unwrap_or(&l);
    if l.contains("sms") || l.contains("msg") || l.contains("message") || l.contains("text") {
        Some(Family::Sms)
    } else if l.contains("voice")
        || l.contains("call")
        || l.contains("moc")
        || l.contains("mtc")
        || l.contains("msc")
    {
        Some(Family::Voice)
    } else if [
        "data", "gprs", "pgw", "sgw", "pdp", "session", "ipdr", "ps_", "xdr", "internet",
    ]
    .iter()
    .any(|k| l.contains(k))
    {
        Some(Family::Data)
    } else {
        match l {
            "0" | "1" | "2" | "3" | "4" | "5" => Some(Family::Voice),
            "6" | "7" | "21" | "22" => Some(Family::Sms),
            "18" | "19" | "84" | "85" => Some(Family::Data),
            _ => None,
        }
    }
}
