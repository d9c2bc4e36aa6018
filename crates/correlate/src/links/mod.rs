//! What one event contributes to the graph of an intrusion: the *keys* it shares with other
//! events (its process, its logon session, the files it writes or runs, the accounts and
//! outside addresses it names) and its *movement* role (it leaves one host for another, or
//! arrives on one). Extraction is per event and per worker, by one linker per channel family
//! (one file each); resolution is in [`crate::graph`].

mod database;
mod network;
mod process;
mod security;
mod sysmon;
mod web;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use towerwatch_event::{Event, Locator};

pub use database::{is_db_channel, is_db_port};
pub use process::{is_hub_image, ProcessInfo};
pub(crate) use web::is_framework_child;
pub use web::is_web_server;

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// The log that recorded a process creation: one creation may be in both (Sysmon 1 and
/// Security 4688), whichever files or requests they came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CreatedIn {
    Sysmon,
    Security,
}

/// How one event ties to others. Values only compared for equality are kept as 64-bit
/// digests of their text (no allocation per event); names that reports show stay text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    /// The acting process, by Sysmon `ProcessGuid`.
    Process(u64),
    /// A process created here, by (pid) and the log that recorded it: resolved against other
    /// creations and references on the same host by time, since pids are reused.
    PidCreated(u32, CreatedIn),
    /// The process with this pid at the event's time (Security events name pids, not guids).
    PidRef(u32),
    /// A logon session on the event's host.
    Session(u64),
    /// A service logon (type 5): the session every process of that service shares.
    ServiceSession(u64),
    /// A file on the event's host (written, run, loaded, installed as a service), lowercased.
    File(u64),
    /// An account name, lowercased; only accounts created in the evidence link (see graph).
    Account(Box<str>),
    /// A user named as created by a command line (`net user NAME … /add`).
    AccountCreated(Box<str>),
    /// An address outside the private ranges.
    Remote(Box<str>),
    /// One TCP/UDP connection: (source ip, source port, destination ip, destination port).
    Connection(u64),
    /// A client's end of a connection: (source ip, source port). A database log knows the
    /// client's address and port but not its own address.
    Endpoint(u64),
    /// A database session (server, session id): every record of one backend's session.
    DbSession(u64),
    /// A database client's address when the log does not give the port: its session's start
    /// and the client's outbound connection to a database port within a minute.
    DbClient(u64),
}

/// A stable 64-bit digest of key text (the same in every run and on every worker).
pub fn digest(parts: &[&str]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// The same, case-folded.
fn digest_folded(s: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    for b in s.bytes() {
        h.write_u8(b.to_ascii_lowercase());
    }
    h.finish()
}

/// Movement between hosts, matched by time in [`crate::graph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Movement {
    /// The event leaves its host for `to` (an address or a host name).
    Departure { to: Box<str> },
    /// The event arrives on its host from `from`; `how` says by what means.
    Arrival {
        from: Option<Box<str>>,
        #[serde(with = "how")]
        how: How,
    },
    /// A network flow: both a departure from `from` and an arrival on `to`.
    Flow { from: Box<str>, to: Box<str> },
}

/// The ways of arriving on a host ([`Movement::Arrival`]'s `how`, and a flow's).
pub const HOWS: &[&str] = &[
    "network logon",
    "RDP logon",
    "admin share",
    "file written over SMB",
    "connection",
];

/// How an arrival came (one of [`HOWS`]); an alias, so serde does not borrow it.
pub type How = &'static str;

/// `how` written as its place in [`HOWS`] (spilled nodes read back as the same static words).
pub mod how {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(how: &&'static str, s: S) -> Result<S::Ok, S::Error> {
        let i = super::HOWS
            .iter()
            .position(|h| h == how)
            .unwrap_or(usize::MAX);
        s.serialize_u64(i as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        let i = u64::deserialize(d)? as usize;
        Ok(super::HOWS.get(i).copied().unwrap_or("arrival"))
    }
}

/// One event, as the graph keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// Microseconds since the epoch.
    pub time: i64,
    /// The host, as a short upper-case name (or an address for logs that only know one).
    pub host: Arc<str>,
    pub source: Arc<str>,
    pub locator: Locator,
    /// Indices of the rules that matched (into the caller's catalog).
    pub hits: Vec<u32>,
    pub keys: Vec<Key>,
    pub movement: Option<Movement>,
    /// Addresses this host is seen using (its own outbound source addresses).
    pub host_ip: Option<Box<str>>,
    /// Process creation: image, command line and parent image, for trees and stories.
    pub process: Option<Box<ProcessInfo>>,
    /// The process's parent is a web server (IIS, Tomcat, …): the root cause of a web shell.
    pub web_child: bool,
    /// A request in a web server's access log.
    pub web_request: bool,
    /// A short description of the event for timelines.
    pub what: Box<str>,
    /// Who did it ([`crate::routine::actor_of`]): on its host, and on any host; for events
    /// with detections.
    pub actor: crate::routine::ActorKey,
}

impl Node {
    /// The timeline's words for this event.
    pub fn describe(&self) -> String {
        match (&self.process, self.what.is_empty()) {
            (Some(p), true) => format!("process {}", cmd_or_image(p.command_line(), p.image())),
            _ => self.what.to_string(),
        }
    }
}

fn cmd_or_image<'a>(cmd: &'a str, image: &'a str) -> &'a str {
    if cmd.is_empty() {
        image
    } else {
        cmd
    }
}

/// The short, upper-case name of a host (`JUMP01.nwm.example` → `JUMP01`); addresses stay.
pub fn short_host(name: &str) -> Box<str> {
    let name = name.trim().trim_start_matches("\\\\");
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.into();
    }
    name.split('.')
        .next()
        .unwrap_or(name)
        .to_ascii_uppercase()
        .into()
}

/// Addresses inside the organisation (RFC 1918, loopback, link-local, CGNAT, ULA).
pub fn is_private(ip: &str) -> bool {
    match ip.trim_start_matches("::ffff:").parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
        Err(_) => true,
    }
}

fn ip_of(s: &str) -> Option<&str> {
    let s = s.trim().trim_start_matches("::ffff:");
    (s.parse::<std::net::IpAddr>().is_ok()).then_some(s)
}

fn file_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// Sessions every service shares.
fn is_hub_session(id: &str) -> bool {
    matches!(
        id.to_ascii_lowercase().as_str(),
        "0x0" | "0x3e7" | "0x3e4" | "0x3e5" | "0" | "-" | ""
    )
}

/// Files that link runs of the same tool: not the operating system's or installed programs'.
fn is_own_file(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    let p = p.trim_matches('"');
    !(p.is_empty()
        || p.contains("\\windows\\system32\\")
        || p.contains("\\windows\\syswow64\\")
        || p.contains("\\windows\\winsxs\\")
        || p.contains("\\windows\\microsoft.net\\")
        || p.contains("\\program files")
        || p.contains("\\windows defender\\")
        || p.starts_with("\\device\\"))
}

fn pid(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn account_name(s: &str) -> Option<Box<str>> {
    let name = s.rsplit('\\').next().unwrap_or(s);
    let name = name.split('@').next().unwrap_or(name).trim();
    (!name.is_empty() && name != "-" && !name.ends_with('$'))
        .then(|| name.to_ascii_lowercase().into())
}

/// Host names as events spell them, to the short names nodes share (one allocation per host,
/// not per event).
#[derive(Default)]
pub struct Hosts {
    names: std::collections::HashMap<Box<str>, Arc<str>>,
}

impl Hosts {
    pub fn get(&mut self, raw: &str) -> Arc<str> {
        if let Some(h) = self.names.get(raw) {
            return h.clone();
        }
        let h: Arc<str> = Arc::from(&*short_host(raw));
        self.names.insert(raw.into(), h.clone());
        h
    }
}

/// Sets the draft's description, formatted only when the event may appear in a timeline.
macro_rules! say {
    ($d:expr, $($t:tt)*) => {
        if $d.keep_text {
            $d.what = format!($($t)*);
        }
    };
}
use say;

/// What the channel's linker has found so far in one event; becomes its [`Node`].
struct Draft {
    /// Whether to describe the event (see [`node_of`]).
    keep_text: bool,
    keys: Vec<Key>,
    movement: Option<Movement>,
    host: Arc<str>,
    host_ip: Option<Box<str>>,
    process: Option<Box<ProcessInfo>>,
    web_child: bool,
    web_request: bool,
    what: String,
}

impl Draft {
    /// A logon session, unless every service shares it.
    fn session(&mut self, id: &str) {
        if !is_hub_session(id) {
            self.keys.push(Key::Session(digest_folded(id)));
        }
    }

    fn account(&mut self, name: &str) {
        if let Some(a) = account_name(name) {
            self.keys.push(Key::Account(a));
        }
    }

    /// A file, unless the system's or an installed program's.
    fn file(&mut self, path: &str) {
        if is_own_file(path) {
            self.keys
                .push(Key::File(digest_folded(path.trim_matches('"'))));
        }
    }

    /// An address, if outside the private ranges.
    fn remote(&mut self, ip: &str) {
        if let Some(ip) = ip_of(ip).filter(|ip| !is_private(ip)) {
            self.keys.push(Key::Remote(ip.into()));
        }
    }
}

/// The events worth keeping for the graph, with their keys. `None` when the event ties to
/// nothing and matched no rule.
pub fn node_of(e: &Event, hits: &[u32], hosts: &mut Hosts) -> Option<Node> {
    let time = e.timestamp.map(|t| t.as_microsecond())?;
    let channel = e.channel.as_deref().unwrap_or("");
    // Descriptions are for timelines: built only for events that can appear in one (those
    // with detections, those that may be a host-to-host step, and web requests).
    let may_move = match (channel, e.event_id) {
        (c, Some(3 | 11)) if c.eq_ignore_ascii_case(SYSMON) => true,
        ("Security", Some(4624 | 4625 | 4648 | 5140 | 5145)) => true,
        // A request may turn out to be a web shell's entry, told in its story.
        ("webserver", _) => true,
        (c, _) => c.starts_with("zeek/"),
    };
    let keep_text = !hits.is_empty() || may_move;
    let mut d = Draft {
        keep_text,
        keys: Vec::new(),
        movement: None,
        host: hosts.get(e.computer.as_deref().unwrap_or("")),
        host_ip: None,
        process: None,
        web_child: false,
        web_request: false,
        what: String::new(),
    };
    if channel.eq_ignore_ascii_case(SYSMON) {
        sysmon::link(e, &mut d);
    } else if channel.eq_ignore_ascii_case("Security") {
        security::link(e, &mut d);
    } else if channel.eq_ignore_ascii_case("System") && e.event_id == Some(7045) {
        security::service_installed(e, &mut d);
    } else if channel == "webserver" {
        web::link(e, &mut d, hosts);
    } else if let Some(path) = channel.strip_prefix("zeek/") {
        network::link(e, path, &mut d, hosts);
    } else if is_db_channel(channel) {
        database::link(e, &mut d);
    } else if channel.contains("PowerShell") {
        security::script_block(e, &mut d);
    } else {
        d.session(e.first_str("SubjectLogonId").unwrap_or(""));
    }
    let Draft {
        mut keys,
        movement,
        host,
        host_ip,
        process,
        web_child,
        web_request,
        mut what,
        ..
    } = d;
    if keys.is_empty() && hits.is_empty() && movement.is_none() {
        return None;
    }
    // Every detection says what happened, whatever the log.
    if keep_text && what.is_empty() && process.is_none() {
        what = match (e.event_id, e.provider.as_deref()) {
            (Some(id), Some(p)) => format!("{p} event {id} on {channel}"),
            (Some(id), None) => format!("event {id} on {channel}"),
            (None, _) => format!("{channel} record"),
        };
    }
    keys.sort();
    keys.dedup();
    Some(Node {
        time,
        host,
        source: e.origin.source.clone(),
        locator: e.origin.locator,
        hits: hits.to_vec(),
        keys,
        movement,
        host_ip,
        process,
        web_child,
        web_request,
        what: what.into(),
        actor: if hits.is_empty() {
            Default::default()
        } else {
            crate::routine::actor_of(e).key()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_to_their_scope() {
        assert!(
            is_private("10.1.2.3") && is_private("::ffff:192.168.1.1") && is_private("100.64.0.1")
        );
        assert!(!is_private("203.0.113.9") && !is_private("198.51.100.7"));
        assert_eq!(&*short_host("JUMP01.nwm.example"), "JUMP01");
        assert_eq!(&*short_host("10.0.0.5"), "10.0.0.5");
    }
}
