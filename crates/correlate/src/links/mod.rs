//! What one event contributes to the graph of an intrusion: the *keys* it shares with other
//! events (its process, its logon session, the files it writes or runs, the accounts and
//! outside addresses it names) and its *movement* role (it leaves one host for another, or
//! arrives on one). Extraction is per event and per worker; resolution is in
//! [`crate::graph`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use towerwatch_event::{Event, Locator};

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// How one event ties to others. Values only compared for equality are kept as 64-bit
/// digests of their text (no allocation per event); names that reports show stay text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    /// The acting process, by Sysmon `ProcessGuid`.
    Process(u64),
    /// A process created here, by (pid): resolved against other creations and references on
    /// the same host by time, since pids are reused.
    PidCreated(u32),
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

/// Ports databases listen on (PostgreSQL, Oracle, SQL Server, MySQL, Db2, Teradata, Hive).
pub fn is_db_port(p: &str) -> bool {
    matches!(
        p,
        "5432" | "1521" | "1433" | "3306" | "50000" | "1025" | "10000"
    )
}

/// Channels of database logs.
pub fn is_db_channel(c: &str) -> bool {
    matches!(c, "postgresql" | "oracle-unified-audit" | "mssql-audit")
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

/// A process creation's words, in one allocation: image, command line, parent image, user,
/// and the ids (guid for Sysmon, pid for Security) of the process and its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    text: Box<str>,
    ends: [u32; 6],
}

impl ProcessInfo {
    pub fn new(parts: [&str; 6]) -> Self {
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 6];
        for (i, p) in parts.iter().enumerate() {
            text.push_str(p);
            ends[i] = text.len() as u32;
        }
        ProcessInfo {
            text: text.into(),
            ends,
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn image(&self) -> &str {
        self.part(0)
    }
    pub fn command_line(&self) -> &str {
        self.part(1)
    }
    pub fn parent_image(&self) -> &str {
        self.part(2)
    }
    pub fn user(&self) -> &str {
        self.part(3)
    }
    pub fn id(&self) -> &str {
        self.part(4)
    }
    pub fn parent_id(&self) -> &str {
        self.part(5)
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

/// Processes that start or serve everything: their children are not one story.
pub fn is_hub_image(image: &str) -> bool {
    let name = file_name(image).to_ascii_lowercase();
    matches!(
        name.as_str(),
        "system"
            | "smss.exe"
            | "csrss.exe"
            | "wininit.exe"
            | "winlogon.exe"
            | "services.exe"
            | "lsass.exe"
            | "svchost.exe"
            | "wmiprvse.exe"
            | "explorer.exe"
            | "taskeng.exe"
            | "taskhostw.exe"
            | "userinit.exe"
            | "sihost.exe"
            | "runtimebroker.exe"
            | "dllhost.exe"
    ) || is_web_server(&name)
}

/// Web and application servers whose children are the first sign of a web shell.
pub fn is_web_server(image: &str) -> bool {
    let name = file_name(image).to_ascii_lowercase();
    matches!(
        name.as_str(),
        "w3wp.exe"
            | "java.exe"
            | "javaw.exe"
            | "beasvc.exe"
            | "httpd.exe"
            | "php-cgi.exe"
            | "umworkerprocess.exe"
    ) || name.starts_with("tomcat")
}

/// What web servers start in their normal work (ASP.NET compiling a page), not a shell.
pub(crate) fn is_framework_child(image: &str) -> bool {
    matches!(
        file_name(image).to_ascii_lowercase().as_str(),
        "csc.exe"
            | "vbc.exe"
            | "cvtres.exe"
            | "aspnet_compiler.exe"
            | "conhost.exe"
            | "werfault.exe"
    )
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

/// The executable of a service's image path: `"%SystemRoot%\x.exe" /service` → `c:\windows\x.exe`.
fn service_binary(path: &str) -> String {
    let p = path.trim();
    let exe = if let Some(rest) = p.strip_prefix('"') {
        rest.split('"').next().unwrap_or(rest)
    } else {
        match p.to_ascii_lowercase().find(".exe") {
            Some(i) => &p[..i + 4],
            None => p.split(' ').next().unwrap_or(p),
        }
    };
    let lower = exe.to_ascii_lowercase();
    lower
        .replace("%systemroot%", "c:\\windows")
        .replace("%windir%", "c:\\windows")
        .trim_start_matches("\\??\\")
        .to_string()
}

fn pid(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Remote targets a command line names: `\\host\share`, `\\10.0.0.1`, `/node:host`, `-h host`.
fn command_targets(cmd: &str) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    let lower = cmd.to_ascii_lowercase();
    let mut push = |t: &str| {
        let t = t.trim_matches(['"', '\'', ',', ';', ' ']);
        if !t.is_empty() && !t.contains('*') && t != "." && t != "localhost" {
            let h = short_host(t);
            if !out.contains(&h) {
                out.push(h);
            }
        }
    };
    let mut rest = cmd;
    while let Some(i) = rest.find("\\\\") {
        let after = &rest[i + 2..];
        let end = after.find(['\\', ' ', '"', '\'']).unwrap_or(after.len());
        push(&after[..end]);
        rest = &after[end..];
    }
    for flag in ["/node:", "-h ", "--host="] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(flag) {
            let start = from + i + flag.len();
            let after = &cmd[start..];
            let end = after.find([' ', '"', '\'']).unwrap_or(after.len());
            push(&after[..end]);
            from = start;
        }
    }
    out
}

/// `net user NAME … /add`, `net group "G" NAME /add /domain`, `net localgroup G NAME /add`.
fn accounts_added(cmd: &str) -> Vec<Box<str>> {
    let lower = cmd.to_ascii_lowercase();
    if !lower.contains("/add") {
        return Vec::new();
    }
    let words: Vec<&str> = lower
        .split([' ', '&', '|', '\t'])
        .map(|w| w.trim_matches('"'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let is_net =
            matches!(*w, "net" | "net.exe" | "net1" | "net1.exe") || w.ends_with("\\net.exe");
        if !is_net || i + 2 >= words.len() {
            continue;
        }
        // The command runs to the next `net`; its operands are the words that are no flags.
        let rest: Vec<&str> = words[i + 2..]
            .iter()
            .take_while(|x| !matches!(**x, "net" | "net.exe"))
            .copied()
            .collect();
        if !rest.contains(&"/add") {
            continue;
        }
        let operands: Vec<&str> = rest
            .iter()
            .copied()
            .filter(|x| !x.starts_with('/'))
            .collect();
        let name = match words[i + 1] {
            "user" => operands.first(),
            // The group's name may have spaces; the account is the last operand.
            "group" | "localgroup" if operands.len() >= 2 => operands.last(),
            _ => None,
        };
        if let Some(n) = name {
            out.push((*n).into());
        }
    }
    out
}

fn account_name(s: &str) -> Option<Box<str>> {
    let name = s.rsplit('\\').next().unwrap_or(s);
    let name = name.split('@').next().unwrap_or(name).trim();
    (!name.is_empty() && name != "-" && !name.ends_with('$'))
        .then(|| name.to_ascii_lowercase().into())
}

/// The events worth keeping for the graph, with their keys. `None` when the event ties to
/// nothing and matched no rule.
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

pub fn node_of(e: &Event, hits: &[u32], hosts: &mut Hosts) -> Option<Node> {
    let time = e.timestamp.map(|t| t.as_microsecond())?;
    let channel = e.channel.as_deref().unwrap_or("");
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    let mut keys = Vec::new();
    let mut movement = None;
    let mut host_ip = None;
    let mut process = None;
    let mut web_child = false;
    let mut web_request = false;
    let mut what = String::new();
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
    macro_rules! say {
        ($($t:tt)*) => {
            if keep_text {
                what = format!($($t)*);
            }
        };
    }
    let mut host: Arc<str> = hosts.get(e.computer.as_deref().unwrap_or(""));
    let session = |keys: &mut Vec<Key>, id: &str| {
        if !is_hub_session(id) {
            keys.push(Key::Session(digest_folded(id)));
        }
    };
    let account = |keys: &mut Vec<Key>, name: &str| {
        if let Some(a) = account_name(name) {
            keys.push(Key::Account(a));
        }
    };
    let file = |keys: &mut Vec<Key>, path: &str| {
        if is_own_file(path) {
            keys.push(Key::File(digest_folded(path.trim_matches('"'))));
        }
    };
    let remote = |keys: &mut Vec<Key>, ip: &str| {
        if let Some(ip) = ip_of(ip).filter(|ip| !is_private(ip)) {
            keys.push(Key::Remote(ip.into()));
        }
    };
    if channel.eq_ignore_ascii_case(SYSMON) {
        let guid = f("ProcessGuid");
        let image = f("Image");
        let actor_is_hub = is_hub_image(image) || guid.ends_with("-000000000004}");
        if !guid.is_empty() && !actor_is_hub {
            keys.push(Key::Process(digest_folded(guid)));
        }
        match e.event_id {
            Some(1) => {
                let parent = f("ParentImage");
                if is_web_server(parent) && !is_framework_child(image) {
                    web_child = true;
                } else if !is_hub_image(parent) && !f("ParentProcessGuid").is_empty() {
                    keys.push(Key::Process(digest_folded(f("ParentProcessGuid"))));
                }
                // The process itself is a key even when its image is a hub (its own events).
                if actor_is_hub && !guid.is_empty() {
                    keys.push(Key::Process(digest_folded(guid)));
                }
                session(&mut keys, f("LogonId"));
                file(&mut keys, image);
                if let Some(p) = pid(f("ProcessId")) {
                    keys.push(Key::PidCreated(p));
                }
                account(&mut keys, f("User"));
                let info = ProcessInfo::new([
                    image,
                    f("CommandLine"),
                    parent,
                    f("User"),
                    guid,
                    f("ParentProcessGuid"),
                ]);
                movement = process_created(&mut keys, &info);
                process = Some(Box::new(info));
            }
            Some(3) => {
                let (src, dst) = (f("SourceIp"), f("DestinationIp"));
                let initiated = f("Initiated") == "true";
                remote(&mut keys, src);
                remote(&mut keys, dst);
                if !src.is_empty() && !dst.is_empty() {
                    keys.push(Key::Connection(digest(&[
                        src,
                        f("SourcePort"),
                        dst,
                        f("DestinationPort"),
                    ])));
                }
                if initiated && is_db_port(f("DestinationPort")) {
                    keys.push(Key::Endpoint(digest(&[src, f("SourcePort")])));
                    keys.push(Key::DbClient(digest(&[src])));
                }
                if initiated {
                    if let Some(ip) = ip_of(src).filter(|ip| is_private(ip)) {
                        host_ip = Some(ip.into());
                    }
                    if let Some(ip) = ip_of(dst).filter(|ip| is_private(ip)) {
                        movement = Some(Movement::Departure { to: ip.into() });
                    }
                }
                say!(
                    "{} connects to {dst}:{}",
                    file_name(image),
                    f("DestinationPort")
                );
            }
            Some(7) => {
                file(&mut keys, f("ImageLoaded"));
                say!("{} loads {}", file_name(image), f("ImageLoaded"));
            }
            Some(8) | Some(10) => {
                let g = f("SourceProcessGUID");
                if !g.is_empty() && !is_hub_image(f("SourceImage")) {
                    keys.push(Key::Process(digest_folded(g)));
                }
                say!(
                    "{} opens {} ({})",
                    file_name(f("SourceImage")),
                    file_name(f("TargetImage")),
                    f("GrantedAccess")
                );
            }
            Some(11) => {
                let target = f("TargetFilename");
                file(&mut keys, target);
                if guid.ends_with("-000000000004}") || f("ProcessId") == "4" {
                    // Written by the kernel on behalf of an SMB client.
                    movement = Some(Movement::Arrival {
                        from: None,
                        how: "file written over SMB",
                    });
                }
                say!("{} writes {target}", file_name(image));
            }
            Some(12..=14) => {
                say!("{} sets {}", file_name(image), f("TargetObject"));
                file(&mut keys, f("Details"));
            }
            Some(17) | Some(18) => say!("pipe {}", f("PipeName")),
            Some(22) => {
                for ip in f("QueryResults").split(';') {
                    remote(&mut keys, ip);
                }
                say!("{} resolves {}", file_name(image), f("QueryName"));
            }
            _ => say!("Sysmon {}", e.event_id.unwrap_or(0)),
        }
    } else if channel.eq_ignore_ascii_case("Security") {
        let id = e.event_id.unwrap_or(0);
        match id {
            4688 => {
                if let Some(p) = pid(f("NewProcessId")) {
                    keys.push(Key::PidCreated(p));
                }
                let parent = f("ParentProcessName");
                if is_web_server(parent) && !is_framework_child(f("NewProcessName")) {
                    web_child = true;
                } else if let Some(p) = pid(f("ProcessId")).filter(|_| !is_hub_image(parent)) {
                    keys.push(Key::PidRef(p));
                }
                session(&mut keys, f("SubjectLogonId"));
                session(&mut keys, f("TargetLogonId"));
                let image = f("NewProcessName");
                file(&mut keys, image);
                let info = ProcessInfo::new([
                    image,
                    f("CommandLine"),
                    parent,
                    f("SubjectUserName"),
                    f("NewProcessId"),
                    f("ProcessId"),
                ]);
                movement = process_created(&mut keys, &info);
                process = Some(Box::new(info));
            }
            4624 | 4625 => {
                if f("LogonType") == "5" {
                    keys.push(Key::ServiceSession(digest_folded(f("TargetLogonId"))));
                } else {
                    session(&mut keys, f("TargetLogonId"));
                }
                account(&mut keys, f("TargetUserName"));
                let ip = f("IpAddress");
                let t = f("LogonType");
                if let Some(ip) = ip_of(ip) {
                    remote(&mut keys, ip);
                    if matches!(t, "3" | "10") && !ip.starts_with("127.") && ip != "::1" {
                        movement = Some(Movement::Arrival {
                            from: Some(ip.into()),
                            how: if t == "10" {
                                "RDP logon"
                            } else {
                                "network logon"
                            },
                        });
                    }
                }
                say!("logon type {t} of {} from {ip}", f("TargetUserName"));
            }
            4634 | 4647 => {
                session(&mut keys, f("TargetLogonId"));
                say!("logoff of {}", f("TargetUserName"));
            }
            4648 => {
                session(&mut keys, f("SubjectLogonId"));
                if let Some(p) = pid(f("ProcessId")) {
                    keys.push(Key::PidRef(p));
                }
                account(&mut keys, f("TargetUserName"));
                let target = f("TargetServerName");
                if !target.is_empty() && target != "localhost" && target != "-" {
                    movement = Some(Movement::Departure {
                        to: short_host(target),
                    });
                }
                say!(
                    "explicit credentials of {} for {target}",
                    f("TargetUserName")
                );
            }
            4672 => {
                session(&mut keys, f("SubjectLogonId"));
                say!("special privileges for {}", f("SubjectUserName"));
            }
            4697 => {
                session(&mut keys, f("SubjectLogonId"));
                account(&mut keys, f("SubjectUserName"));
                keys.push(Key::File(digest_folded(&service_binary(f(
                    "ServiceFileName",
                )))));
                say!("service {} installed", f("ServiceName"));
            }
            4698 | 4702 => {
                session(&mut keys, f("SubjectLogonId"));
                account(&mut keys, f("SubjectUserName"));
                let content = f("TaskContent");
                if let Some(cmd) = content
                    .split("<Command>")
                    .nth(1)
                    .and_then(|r| r.split("</Command>").next())
                {
                    file(&mut keys, cmd);
                }
                say!("scheduled task {}", f("TaskName"));
            }
            4720 => {
                if let Some(a) = account_name(f("TargetUserName")) {
                    keys.push(Key::AccountCreated(a));
                }
                session(&mut keys, f("SubjectLogonId"));
                say!("account {} created", f("TargetUserName"));
            }
            4728 | 4732 | 4756 => {
                let member = f("MemberName");
                let cn = member
                    .strip_prefix("CN=")
                    .and_then(|m| m.split(',').next())
                    .unwrap_or(member);
                account(&mut keys, cn);
                session(&mut keys, f("SubjectLogonId"));
                say!("{cn} added to {}", f("TargetUserName"));
            }
            4768 | 4769 | 4771 | 4776 => {
                account(&mut keys, f("TargetUserName"));
                say!("Kerberos/NTLM for {}", f("TargetUserName"));
            }
            5140 | 5145 => {
                session(&mut keys, f("SubjectLogonId"));
                let share = f("ShareLocalPath").trim_start_matches("\\??\\");
                let rel = f("RelativeTargetName");
                if !rel.is_empty() {
                    file(&mut keys, &format!("{}{rel}", share));
                }
                if let Some(ip) = ip_of(f("IpAddress")) {
                    movement = Some(Movement::Arrival {
                        from: Some(ip.into()),
                        how: "admin share",
                    });
                }
                say!("share {} {rel}", f("ShareName"));
            }
            _ => {
                session(&mut keys, f("SubjectLogonId"));
                say!("Security {id}");
            }
        }
    } else if channel.eq_ignore_ascii_case("System") && e.event_id == Some(7045) {
        keys.push(Key::File(digest_folded(&service_binary(f("ImagePath")))));
        say!("service {} installed", f("ServiceName"));
    } else if channel == "webserver" {
        web_request = true;
        let client = f("c-ip");
        remote(&mut keys, client);
        host = hosts.get(e.first_str("s-ip").or(e.computer.as_deref()).unwrap_or(""));
        say!(
            "{} {} {} from {client}",
            f("cs-method"),
            f("cs-uri-stem"),
            f("sc-status")
        );
    } else if let Some(path) = channel.strip_prefix("zeek/") {
        let (src, dst) = (f("id.orig_h"), f("id.resp_h"));
        remote(&mut keys, src);
        remote(&mut keys, dst);
        keys.push(Key::Connection(digest(&[
            src,
            f("id.orig_p"),
            dst,
            f("id.resp_p"),
        ])));
        if is_db_port(f("id.resp_p")) {
            keys.push(Key::Endpoint(digest(&[src, f("id.orig_p")])));
        }
        // A flow belongs to our end of it: the client's, or the server's when the client is
        // outside.
        host = hosts.get(if is_private(src) || !is_private(dst) {
            src
        } else {
            dst
        });
        if is_private(src) && is_private(dst) && path == "conn" {
            movement = Some(Movement::Flow {
                from: src.into(),
                to: dst.into(),
            });
        }
        say!("{path} {src} → {dst}:{} {}", f("id.resp_p"), f("service"));
    } else if is_db_channel(channel) {
        // One backend's session holds all its records; its client's address (and port, when
        // the log has it) ties it to the process that connected.
        let server = e
            .computer
            .as_deref()
            .map(str::to_string)
            .unwrap_or_else(|| {
                std::path::Path::new(&*e.origin.source)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            });
        let sid = f("session_id");
        if !sid.is_empty() {
            keys.push(Key::DbSession(digest(&[&server, sid])));
        }
        let client = f("remote_host");
        let message = f("message");
        if let Some(ip) = ip_of(client) {
            let port = f("remote_port");
            if !port.is_empty() {
                keys.push(Key::Endpoint(digest(&[ip, port])));
            } else if message.starts_with("connection ") || sid.is_empty() {
                keys.push(Key::DbClient(digest(&[ip])));
            }
            remote(&mut keys, ip);
        }
        let statement = f("statement");
        if !statement.is_empty() {
            let text: String = statement.chars().take(140).collect();
            say!(
                "{}@{} from {client} ({}): {}",
                f("user_name"),
                f("database_name"),
                f("application_name"),
                text.replace(['\r', '\n', '\t'], " ")
            );
        } else {
            let text: String = message.chars().take(120).collect();
            say!("{}: {text}", f("user_name"));
        }
    } else if channel.contains("PowerShell") {
        // The script's host process, by the pid the event was logged from.
        if let Some(p) = pid(f("Execution_ProcessID")) {
            keys.push(Key::PidRef(p));
        }
        let text: String = f("ScriptBlockText").chars().take(160).collect();
        say!("PowerShell {}", text.replace(['\r', '\n'], " "));
    } else {
        session(&mut keys, f("SubjectLogonId"));
    }
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

/// What a command line says, for either view of a process creation (Sysmon 1, 4688): the
/// accounts it adds and the host it reaches for.
fn process_created(keys: &mut Vec<Key>, p: &ProcessInfo) -> Option<Movement> {
    for a in accounts_added(p.command_line()) {
        keys.push(Key::AccountCreated(a));
    }
    command_targets(p.command_line())
        .into_iter()
        .next()
        .map(|to| Movement::Departure { to })
}

fn cmd_or_image<'a>(cmd: &'a str, image: &'a str) -> &'a str {
    if cmd.is_empty() {
        image
    } else {
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_name_their_targets_and_accounts() {
        assert_eq!(
            command_targets("psexec.exe \\\\10.10.0.10 -s cmd"),
            vec![Box::<str>::from("10.10.0.10")]
        );
        assert_eq!(
            command_targets("wmic /node:10.40.0.10 /user:X process call create"),
            vec![Box::<str>::from("10.40.0.10")]
        );
        assert_eq!(
            command_targets("cmd /c copy a.rar \\\\FS01.corp\\c$\\x"),
            vec![Box::<str>::from("FS01")]
        );
        assert!(command_targets("cmd /c dir c:\\\\").is_empty());
        assert_eq!(
            accounts_added("cmd.exe /c \"net user svc_sync P@ss /add /domain & net group \"Domain Admins\" svc_sync /add /domain\""),
            vec![Box::<str>::from("svc_sync"), "svc_sync".into()]
        );
        assert!(accounts_added("net user bob").is_empty());
    }

    #[test]
    fn services_resolve_to_their_binary_and_addresses_to_their_scope() {
        assert_eq!(
            service_binary("%SystemRoot%\\PSEXESVC.exe"),
            "c:\\windows\\psexesvc.exe"
        );
        assert_eq!(
            service_binary("\"C:\\ProgramData\\SoftEther\\vpnclient.exe\" /service"),
            "c:\\programdata\\softether\\vpnclient.exe"
        );
        assert!(
            is_private("10.1.2.3") && is_private("::ffff:192.168.1.1") && is_private("100.64.0.1")
        );
        assert!(!is_private("203.0.113.9") && !is_private("198.51.100.7"));
        assert_eq!(&*short_host("JUMP01.nwm.example"), "JUMP01");
        assert_eq!(&*short_host("10.0.0.5"), "10.0.0.5");
    }
}
