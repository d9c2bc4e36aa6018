//! Windows events as evtx_dump writes them (`{"Event":{"System":…,"EventData":…}}`), and the
//! helpers that emit the events a Windows estate produces: Sysmon and Security process
//! creation with consistent process GUIDs, ids and logon ids, logons, network connections,
//! files, image loads, services, tasks, accounts, PowerShell script blocks.

use sha2::{Digest, Sha256};

use crate::clock;
use crate::dice::Dice;
use crate::sink::{Body, Sink, StreamId};
use crate::world::{Account, Host};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sysmon,
    Security,
    System,
    PowerShell,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Sysmon => "Microsoft-Windows-Sysmon/Operational",
            Channel::Security => "Security",
            Channel::System => "System",
            Channel::PowerShell => "Microsoft-Windows-PowerShell/Operational",
        }
    }

    fn provider(self) -> (&'static str, &'static str) {
        match self {
            Channel::Sysmon => (
                "Microsoft-Windows-Sysmon",
                "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
            ),
            Channel::Security => (
                "Microsoft-Windows-Security-Auditing",
                "{54849625-5478-4994-a5ba-3e3b0328c30d}",
            ),
            Channel::System => (
                "Service Control Manager",
                "{555908d1-a6d7-4695-8e1e-26931d2012f4}",
            ),
            Channel::PowerShell => (
                "Microsoft-Windows-PowerShell",
                "{a0c1853b-5c40-4b15-8766-3cf1c58f985a}",
            ),
        }
    }

    fn keywords(self) -> &'static str {
        match self {
            Channel::Sysmon => "0x8000000000000000",
            Channel::Security => "0x8020000000000000",
            Channel::System => "0x8080000000000000",
            Channel::PowerShell => "0x0",
        }
    }
}

/// One Windows event before it gets its time, record id and computer at write time.
#[derive(Debug, Clone)]
pub struct WinEvent {
    pub channel: Channel,
    pub event_id: u16,
    pub data: Vec<(&'static str, String)>,
    /// The `Security UserID` attribute (Sysmon and PowerShell set it).
    pub user_sid: Option<String>,
    pub exec_pid: u32,
}

impl WinEvent {
    pub fn render(&self, out: &mut String, time: i64, record_id: u64, computer: &str) {
        let (provider, guid) = self.channel.provider();
        out.push_str(r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":""##);
        out.push_str(provider);
        out.push_str(r##"","Guid":""##);
        out.push_str(guid);
        if self.channel == Channel::System {
            out.push_str(r##"","EventSourceName":"Service Control Manager"##);
        }
        out.push_str(r##""}},"EventID":"##);
        push_num(out, u64::from(self.event_id));
        let (version, level, task) = match self.channel {
            Channel::Sysmon => (5, 4, u64::from(self.event_id)),
            Channel::Security => (2, 0, security_task(self.event_id)),
            Channel::System => (0, 4, 0),
            Channel::PowerShell => (1, 5, 2),
        };
        out.push_str(r##","Version":"##);
        push_num(out, version);
        out.push_str(r##","Level":"##);
        push_num(out, level);
        out.push_str(r##","Task":"##);
        push_num(out, task);
        out.push_str(r##","Opcode":0,"Keywords":""##);
        out.push_str(self.channel.keywords());
        out.push_str(r##"","TimeCreated":{"#attributes":{"SystemTime":""##);
        out.push_str(&clock::rfc3339_us(time));
        out.push_str(r##""}},"EventRecordID":"##);
        push_num(out, record_id);
        out.push_str(r##","Correlation":null,"Execution":{"#attributes":{"ProcessID":"##);
        push_num(out, u64::from(self.exec_pid));
        out.push_str(r##","ThreadID":"##);
        push_num(out, u64::from(self.exec_pid.wrapping_mul(7) % 9000 + 100));
        out.push_str(r##"}},"Channel":""##);
        out.push_str(self.channel.name());
        out.push_str(r##"","Computer":""##);
        escape(out, computer);
        out.push_str(r##"","Security":"##);
        match &self.user_sid {
            Some(sid) => {
                out.push_str(r##"{"#attributes":{"UserID":""##);
                escape(out, sid);
                out.push_str(r##""}}"##);
            }
            None => out.push_str("null"),
        }
        out.push_str(r##"},"EventData":{"##);
        for (i, (k, v)) in self.data.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k);
            out.push_str("\":\"");
            escape(out, v);
            out.push('"');
        }
        out.push_str("}}}");
    }
}

fn security_task(id: u16) -> u64 {
    match id {
        4624 | 4634 | 4648 | 4672 => 12544,
        4688 => 13312,
        4698 => 12804,
        4720 | 4728 | 4732 => 13824,
        4768 | 4769 => 14339,
        4776 => 14336,
        5145 => 12811,
        4697 => 12289,
        _ => 0,
    }
}

fn push_num(out: &mut String, n: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// JSON string escaping.
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Who a process or logon runs as.
#[derive(Debug, Clone)]
pub struct Who {
    pub domain: String,
    pub name: String,
    pub sid: String,
    pub logon_id: u64,
}

impl Who {
    pub fn system() -> Who {
        Who {
            domain: "NT AUTHORITY".into(),
            name: "SYSTEM".into(),
            sid: "S-1-5-18".into(),
            logon_id: 0x3e7,
        }
    }

    /// A domain user.
    pub fn user(domain: &str, name: &str, sid: &str, logon_id: u64) -> Who {
        Who {
            domain: domain.into(),
            name: name.into(),
            sid: sid.into(),
            logon_id,
        }
    }

    /// An account of the estate in a logon session.
    pub fn of(a: &Account, logon_id: u64) -> Who {
        Who::user(a.domain, &a.name, &a.sid, logon_id)
    }

    /// `NT AUTHORITY\LOCAL SERVICE` (services such as Tomcat's run as it).
    pub fn local_service() -> Who {
        Who {
            domain: "NT AUTHORITY".into(),
            name: "LOCAL SERVICE".into(),
            sid: "S-1-5-19".into(),
            logon_id: 0x3e5,
        }
    }

    pub fn app_pool(pool: &str) -> Who {
        Who {
            domain: "IIS APPPOOL".into(),
            name: pool.into(),
            sid: "S-1-5-82-3006700770-424185619-1745488364-794895919-4004696415".into(),
            logon_id: 0x1f3a2c,
        }
    }

    pub fn qualified(&self) -> String {
        format!("{}\\{}", self.domain, self.name)
    }

    fn is_system(&self) -> bool {
        self.sid == "S-1-5-18"
    }
}

/// A running process.
#[derive(Debug, Clone)]
pub struct Proc {
    pub guid: String,
    pub pid: u32,
    pub image: String,
    pub cmd: String,
    pub who: Who,
    pub integrity: &'static str,
}

/// The executable a process runs: its path and the PE's own name (`OriginalFileName`),
/// which renaming does not change; `build` tells rebuilds of the same tool apart (hashes).
#[derive(Debug, Clone, Copy)]
pub struct Exe<'a> {
    pub path: &'a str,
    pub pe: &'static str,
    pub build: u32,
}

pub fn exe<'a>(path: &'a str, pe: &'static str) -> Exe<'a> {
    Exe { path, pe, build: 0 }
}

/// Version-resource fields by original file name: (description, product, company).
fn pe_meta(pe: &str) -> (&'static str, &'static str, &'static str) {
    match pe {
        "Cmd.Exe" => (
            "Windows Command Processor",
            "Microsoft® Windows® Operating System",
            "Microsoft Corporation",
        ),
        "PowerShell.EXE" => (
            "Windows PowerShell",
            "Microsoft® Windows® Operating System",
            "Microsoft Corporation",
        ),
        "WinRAR.exe" | "Rar.exe" => ("Command line RAR", "WinRAR", "Alexander Roshal"),
        "psexec.c" => (
            "Execute processes remotely",
            "Sysinternals PsExec",
            "Sysinternals - www.sysinternals.com",
        ),
        "psexesvc.exe" => ("PsExec Service", "Sysinternals PsExec", "Sysinternals"),
        "psql.exe" => (
            "psql - PostgreSQL interactive terminal",
            "PostgreSQL",
            "PostgreSQL Global Development Group",
        ),
        "pg_dump.exe" => (
            "pg_dump - backup utility",
            "PostgreSQL",
            "PostgreSQL Global Development Group",
        ),
        "RunHelp.exe" => (
            "Samsung Installer",
            "Samsung Installer",
            "Samsung Electronics CO., LTD.",
        ),
        "vpnclient.exe" => (
            "SoftEther VPN Client",
            "SoftEther VPN",
            "SoftEther VPN Project",
        ),
        "chrome.exe" => ("Google Chrome", "Google Chrome", "Google LLC"),
        "java.exe" => (
            "OpenJDK Platform binary",
            "OpenJDK Platform 11",
            "Eclipse Adoptium",
        ),
        "7z.exe" => ("7-Zip Console", "7-Zip", "Igor Pavlov"),
        "" => ("", "", ""),
        _ if pe.contains('.') && pe.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => (
            "Windows component",
            "Microsoft® Windows® Operating System",
            "Microsoft Corporation",
        ),
        _ => ("", "", ""),
    }
}

/// `MD5=…,SHA256=…,IMPHASH=…` of a build of a PE, as Sysmon writes hashes.
pub fn hashes(pe: &str, build: u32) -> String {
    let sha = Sha256::digest(format!("{pe}#{build}"));
    let imp = Sha256::digest(format!("imp:{pe}"));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    format!(
        "MD5={},SHA256={},IMPHASH={}",
        &hex(&sha[..16]),
        hex(&sha),
        &hex(&imp[..16])
    )
}

/// Where events of one host go.
#[derive(Clone, Copy)]
pub struct Machine<'a> {
    pub host: &'a Host,
    pub stream: StreamId,
}

impl Machine<'_> {
    fn emit(&self, sink: &mut Sink, t: i64, e: WinEvent) {
        sink.push(self.stream, t, Body::Win(Box::new(e)));
    }

    fn sysmon(&self, sink: &mut Sink, t: i64, id: u16, data: Vec<(&'static str, String)>) {
        if self.host.sysmon {
            self.emit(
                sink,
                t,
                WinEvent {
                    channel: Channel::Sysmon,
                    event_id: id,
                    data,
                    user_sid: Some("S-1-5-18".into()),
                    exec_pid: 2_236,
                },
            );
        }
    }

    fn security(&self, sink: &mut Sink, t: i64, id: u16, data: Vec<(&'static str, String)>) {
        self.emit(
            sink,
            t,
            WinEvent {
                channel: Channel::Security,
                event_id: id,
                data,
                user_sid: None,
                exec_pid: 684,
            },
        );
    }

    /// The machine account (`WEB01$`) that Security events name for SYSTEM.
    fn subject(&self, who: &Who) -> (String, String, String, String) {
        if who.is_system() {
            (
                "S-1-5-18".into(),
                format!("{}$", self.host.name),
                self.host.org.netbios.into(),
                "0x3e7".into(),
            )
        } else {
            (
                who.sid.clone(),
                who.name.clone(),
                who.domain.clone(),
                format!("{:#x}", who.logon_id),
            )
        }
    }

    /// A process that was already running when the log starts (services, w3wp, explorer).
    pub fn running(&self, dice: &mut Dice, image: &str, cmd: &str, who: Who) -> Proc {
        Proc {
            guid: dice.guid(),
            pid: 4 * (100 + dice.below(4000) as u32),
            image: image.into(),
            cmd: cmd.into(),
            who,
            integrity: "System",
        }
    }

    /// Creates a process: Security 4688 always, Sysmon 1 where Sysmon runs.
    pub fn spawn(
        &self,
        sink: &mut Sink,
        dice: &mut Dice,
        t: i64,
        parent: &Proc,
        exe: Exe<'_>,
        cmd: String,
    ) -> Proc {
        self.spawn_as(sink, dice, t, parent, exe, cmd, parent.who.clone())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn spawn_as(
        &self,
        sink: &mut Sink,
        dice: &mut Dice,
        t: i64,
        parent: &Proc,
        exe: Exe<'_>,
        cmd: String,
        who: Who,
    ) -> Proc {
        let child = Proc {
            guid: dice.guid(),
            pid: 4 * (200 + dice.below(4000) as u32),
            image: exe.path.into(),
            cmd,
            integrity: if who.is_system() {
                "System"
            } else {
                parent.integrity
            },
            who,
        };
        let (sid, name, domain, logon) = self.subject(&child.who);
        let label = match child.integrity {
            "System" => "S-1-16-16384",
            "High" => "S-1-16-12288",
            _ => "S-1-16-8192",
        };
        self.security(
            sink,
            t,
            4688,
            vec![
                ("SubjectUserSid", sid),
                ("SubjectUserName", name),
                ("SubjectDomainName", domain),
                ("SubjectLogonId", logon),
                ("NewProcessId", format!("{:#x}", child.pid)),
                ("NewProcessName", child.image.clone()),
                ("TokenElevationType", "%%1936".into()),
                ("ProcessId", format!("{:#x}", parent.pid)),
                ("CommandLine", child.cmd.clone()),
                ("TargetUserSid", "S-1-0-0".into()),
                ("TargetUserName", "-".into()),
                ("TargetDomainName", "-".into()),
                ("TargetLogonId", "0x0".into()),
                ("ParentProcessName", parent.image.clone()),
                ("MandatoryLabel", label.into()),
            ],
        );
        let (description, product, company) = pe_meta(exe.pe);
        let cwd = match child.image.rfind('\\') {
            Some(i) => child.image[..=i].to_string(),
            None => "C:\\Windows\\system32\\".into(),
        };
        self.sysmon(
            sink,
            t,
            1,
            vec![
                ("RuleName", "-".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", child.guid.clone()),
                ("ProcessId", child.pid.to_string()),
                ("Image", child.image.clone()),
                ("FileVersion", "10.0.17763.1".into()),
                ("Description", description.into()),
                ("Product", product.into()),
                ("Company", company.into()),
                ("OriginalFileName", exe.pe.into()),
                ("CommandLine", child.cmd.clone()),
                ("CurrentDirectory", cwd),
                ("User", child.who.qualified()),
                ("LogonGuid", logon_guid(child.who.logon_id)),
                ("LogonId", format!("{:#x}", child.who.logon_id)),
                ("TerminalSessionId", "0".into()),
                ("IntegrityLevel", child.integrity.into()),
                ("Hashes", hashes(exe.pe, exe.build)),
                ("ParentProcessGuid", parent.guid.clone()),
                ("ParentProcessId", parent.pid.to_string()),
                ("ParentImage", parent.image.clone()),
                ("ParentCommandLine", parent.cmd.clone()),
                ("ParentUser", parent.who.qualified()),
            ],
        );
        child
    }

    /// Sysmon 3.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &self,
        sink: &mut Sink,
        t: i64,
        p: &Proc,
        proto: &str,
        initiated: bool,
        (src, sport): (&str, u16),
        (dst, dport): (&str, u16),
    ) {
        self.sysmon(
            sink,
            t,
            3,
            vec![
                ("RuleName", "-".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", p.guid.clone()),
                ("ProcessId", p.pid.to_string()),
                ("Image", p.image.clone()),
                ("User", p.who.qualified()),
                ("Protocol", proto.into()),
                ("Initiated", initiated.to_string()),
                ("SourceIsIpv6", "false".into()),
                ("SourceIp", src.into()),
                ("SourceHostname", "-".into()),
                ("SourcePort", sport.to_string()),
                ("SourcePortName", "-".into()),
                ("DestinationIsIpv6", "false".into()),
                ("DestinationIp", dst.into()),
                ("DestinationHostname", "-".into()),
                ("DestinationPort", dport.to_string()),
                ("DestinationPortName", port_name(dport).into()),
            ],
        );
    }

    /// Sysmon 11.
    pub fn file(&self, sink: &mut Sink, t: i64, p: &Proc, path: &str) {
        self.sysmon(
            sink,
            t,
            11,
            vec![
                ("RuleName", "-".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", p.guid.clone()),
                ("ProcessId", p.pid.to_string()),
                ("Image", p.image.clone()),
                ("TargetFilename", path.into()),
                ("CreationUtcTime", clock::sysmon(t)),
                ("User", p.who.qualified()),
            ],
        );
    }

    /// Sysmon 7.
    pub fn image_load(&self, sink: &mut Sink, t: i64, p: &Proc, dll: &str, signed: bool) {
        let pe = dll.rsplit('\\').next().unwrap_or(dll).to_string();
        self.sysmon(
            sink,
            t,
            7,
            vec![
                ("RuleName", "-".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", p.guid.clone()),
                ("ProcessId", p.pid.to_string()),
                ("Image", p.image.clone()),
                ("ImageLoaded", dll.into()),
                ("FileVersion", "-".into()),
                ("Description", "-".into()),
                ("Product", "-".into()),
                ("Company", "-".into()),
                ("OriginalFileName", pe.clone()),
                ("Hashes", hashes(&pe, 1)),
                ("Signed", signed.to_string()),
                (
                    "Signature",
                    if signed { "Microsoft Windows" } else { "-" }.into(),
                ),
                (
                    "SignatureStatus",
                    if signed { "Valid" } else { "Unavailable" }.into(),
                ),
                ("User", p.who.qualified()),
            ],
        );
    }

    /// Sysmon 10.
    pub fn access(&self, sink: &mut Sink, t: i64, src: &Proc, target: &Proc, granted: &str) {
        self.sysmon(
            sink,
            t,
            10,
            vec![
                ("RuleName", "-".into()),
                ("UtcTime", clock::sysmon(t)),
                ("SourceProcessGUID", src.guid.clone()),
                ("SourceProcessId", src.pid.to_string()),
                ("SourceThreadId", (src.pid + 12).to_string()),
                ("SourceImage", src.image.clone()),
                ("TargetProcessGUID", target.guid.clone()),
                ("TargetProcessId", target.pid.to_string()),
                ("TargetImage", target.image.clone()),
                ("GrantedAccess", granted.into()),
                (
                    "CallTrace",
                    "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|UNKNOWN(00007FF6A1B2C3D4)".into(),
                ),
                ("SourceUser", src.who.qualified()),
                ("TargetUser", target.who.qualified()),
            ],
        );
    }

    /// Sysmon 22.
    pub fn dns(&self, sink: &mut Sink, t: i64, p: &Proc, query: &str, answer: &str) {
        self.sysmon(
            sink,
            t,
            22,
            vec![
                ("RuleName", "-".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", p.guid.clone()),
                ("ProcessId", p.pid.to_string()),
                ("QueryName", query.into()),
                ("QueryStatus", "0".into()),
                ("QueryResults", format!("::ffff:{answer};")),
                ("Image", p.image.clone()),
                ("User", p.who.qualified()),
            ],
        );
    }

    /// Sysmon 13.
    pub fn registry(&self, sink: &mut Sink, t: i64, p: &Proc, key: &str, details: &str) {
        self.sysmon(
            sink,
            t,
            13,
            vec![
                ("RuleName", "-".into()),
                ("EventType", "SetValue".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", p.guid.clone()),
                ("ProcessId", p.pid.to_string()),
                ("Image", p.image.clone()),
                ("TargetObject", key.into()),
                ("Details", details.into()),
                ("User", p.who.qualified()),
            ],
        );
    }

    /// Sysmon 17.
    pub fn pipe(&self, sink: &mut Sink, t: i64, p: &Proc, name: &str) {
        self.sysmon(
            sink,
            t,
            17,
            vec![
                ("RuleName", "-".into()),
                ("EventType", "CreatePipe".into()),
                ("UtcTime", clock::sysmon(t)),
                ("ProcessGuid", p.guid.clone()),
                ("ProcessId", p.pid.to_string()),
                ("PipeName", name.into()),
                ("Image", p.image.clone()),
                ("User", p.who.qualified()),
            ],
        );
    }

    /// Security 4624 (and 4672 when the account is privileged). Returns the new logon id.
    #[allow(clippy::too_many_arguments)]
    pub fn logon(
        &self,
        sink: &mut Sink,
        dice: &mut Dice,
        t: i64,
        who: &Who,
        logon_type: u8,
        ntlm: bool,
        from: (&str, &str),
        privileged: bool,
    ) -> u64 {
        let logon_id = 0x10_0000 + dice.below(0xff_ffff);
        let (package, process) = match (ntlm, logon_type) {
            (_, 5) => ("Negotiate", "Advapi  "),
            (true, _) => ("NTLM", "NtLmSsp "),
            (false, 2 | 10 | 11) => ("Negotiate", "User32 "),
            (false, _) => ("Kerberos", "Kerberos"),
        };
        self.security(
            sink,
            t,
            4624,
            vec![
                ("SubjectUserSid", "S-1-0-0".into()),
                ("SubjectUserName", "-".into()),
                ("SubjectDomainName", "-".into()),
                ("SubjectLogonId", "0x0".into()),
                ("TargetUserSid", who.sid.clone()),
                ("TargetUserName", who.name.clone()),
                ("TargetDomainName", who.domain.clone()),
                ("TargetLogonId", format!("{logon_id:#x}")),
                ("LogonType", logon_type.to_string()),
                ("LogonProcessName", process.into()),
                ("AuthenticationPackageName", package.into()),
                ("WorkstationName", from.1.into()),
                ("LogonGuid", logon_guid(logon_id)),
                ("TransmittedServices", "-".into()),
                ("LmPackageName", if ntlm { "NTLM V2" } else { "-" }.into()),
                ("KeyLength", "0".into()),
                ("ProcessId", "0x0".into()),
                ("ProcessName", "-".into()),
                ("IpAddress", from.0.into()),
                (
                    "IpPort",
                    if from.0 == "-" {
                        "-".into()
                    } else {
                        dice.range(49_152, 65_535).to_string()
                    },
                ),
                ("ImpersonationLevel", "%%1833".into()),
                ("RestrictedAdminMode", "-".into()),
                ("TargetOutboundUserName", "-".into()),
                ("TargetOutboundDomainName", "-".into()),
                ("VirtualAccount", "%%1843".into()),
                ("TargetLinkedLogonId", "0x0".into()),
                (
                    "ElevatedToken",
                    if privileged { "%%1842" } else { "%%1843" }.into(),
                ),
            ],
        );
        if privileged {
            self.security(
                sink,
                t,
                4672,
                vec![
                    ("SubjectUserSid", who.sid.clone()),
                    ("SubjectUserName", who.name.clone()),
                    ("SubjectDomainName", who.domain.clone()),
                    ("SubjectLogonId", format!("{logon_id:#x}")),
                    (
                        "PrivilegeList",
                        "SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege\r\n\t\t\tSeRestorePrivilege\r\n\t\t\tSeTakeOwnershipPrivilege\r\n\t\t\tSeDebugPrivilege\r\n\t\t\tSeSystemEnvironmentPrivilege\r\n\t\t\tSeLoadDriverPrivilege\r\n\t\t\tSeImpersonatePrivilege".into(),
                    ),
                ],
            );
        }
        logon_id
    }

    /// Security 4634.
    pub fn logoff(&self, sink: &mut Sink, t: i64, who: &Who, logon_id: u64, logon_type: u8) {
        self.security(
            sink,
            t,
            4634,
            vec![
                ("TargetUserSid", who.sid.clone()),
                ("TargetUserName", who.name.clone()),
                ("TargetDomainName", who.domain.clone()),
                ("TargetLogonId", format!("{logon_id:#x}")),
                ("LogonType", logon_type.to_string()),
            ],
        );
    }

    /// Security 4648: a process used explicit credentials for another server.
    pub fn explicit_logon(
        &self,
        sink: &mut Sink,
        t: i64,
        p: &Proc,
        target: &Who,
        server: &str,
        ip: &str,
    ) {
        let (sid, name, domain, logon) = self.subject(&p.who);
        self.security(
            sink,
            t,
            4648,
            vec![
                ("SubjectUserSid", sid),
                ("SubjectUserName", name),
                ("SubjectDomainName", domain),
                ("SubjectLogonId", logon),
                ("LogonGuid", "{00000000-0000-0000-0000-000000000000}".into()),
                ("TargetUserName", target.name.clone()),
                ("TargetDomainName", target.domain.clone()),
                (
                    "TargetLogonGuid",
                    "{00000000-0000-0000-0000-000000000000}".into(),
                ),
                ("TargetServerName", server.into()),
                ("TargetInfo", server.into()),
                ("ProcessId", format!("{:#x}", p.pid)),
                ("ProcessName", p.image.clone()),
                ("IpAddress", ip.into()),
                ("IpPort", "0".into()),
            ],
        );
    }

    /// System 7045 and Security 4697: a service was installed.
    pub fn service(&self, sink: &mut Sink, t: i64, installer: &Who, name: &str, image: &str) {
        self.emit(
            sink,
            t,
            WinEvent {
                channel: Channel::System,
                event_id: 7045,
                data: vec![
                    ("ServiceName", name.into()),
                    ("ImagePath", image.into()),
                    ("ServiceType", "user mode service".into()),
                    ("StartType", "demand start".into()),
                    ("AccountName", "LocalSystem".into()),
                ],
                user_sid: Some(installer.sid.clone()),
                exec_pid: 780,
            },
        );
        let (sid, uname, domain, logon) = self.subject(installer);
        self.security(
            sink,
            t,
            4697,
            vec![
                ("SubjectUserSid", sid),
                ("SubjectUserName", uname),
                ("SubjectDomainName", domain),
                ("SubjectLogonId", logon),
                ("ServiceName", name.into()),
                ("ServiceFileName", image.into()),
                ("ServiceType", "0x10".into()),
                ("ServiceStartType", "3".into()),
                ("ServiceAccount", "LocalSystem".into()),
            ],
        );
    }

    /// Security 4698: a scheduled task was created.
    pub fn task(&self, sink: &mut Sink, t: i64, by: &Who, name: &str, command: &str, args: &str) {
        let (sid, uname, domain, logon) = self.subject(by);
        let content = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task version=\"1.2\" xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\">\r\n  <Triggers>\r\n    <BootTrigger>\r\n      <Enabled>true</Enabled>\r\n    </BootTrigger>\r\n  </Triggers>\r\n  <Principals>\r\n    <Principal id=\"Author\">\r\n      <UserId>S-1-5-18</UserId>\r\n      <RunLevel>HighestAvailable</RunLevel>\r\n    </Principal>\r\n  </Principals>\r\n  <Actions Context=\"Author\">\r\n    <Exec>\r\n      <Command>{command}</Command>\r\n      <Arguments>{args}</Arguments>\r\n    </Exec>\r\n  </Actions>\r\n</Task>"
        );
        self.security(
            sink,
            t,
            4698,
            vec![
                ("SubjectUserSid", sid),
                ("SubjectUserName", uname),
                ("SubjectDomainName", domain),
                ("SubjectLogonId", logon),
                ("TaskName", format!("\\{name}")),
                ("TaskContent", content),
            ],
        );
    }

    /// Security 4720: a user account was created.
    pub fn account_created(&self, sink: &mut Sink, t: i64, by: &Who, name: &str, sid: &str) {
        let (ssid, uname, domain, logon) = self.subject(by);
        self.security(
            sink,
            t,
            4720,
            vec![
                ("TargetUserName", name.into()),
                ("TargetDomainName", self.host.org.netbios.into()),
                ("TargetSid", sid.into()),
                ("SubjectUserSid", ssid),
                ("SubjectUserName", uname),
                ("SubjectDomainName", domain),
                ("SubjectLogonId", logon),
                ("PrivilegeList", "-".into()),
                ("SamAccountName", name.into()),
                ("DisplayName", "%%1793".into()),
                ("UserPrincipalName", format!("{name}@{}", self.host.org.dns)),
                (
                    "UserAccountControl",
                    "\r\n\t\t%%2080\r\n\t\t%%2082\r\n\t\t%%2084".into(),
                ),
            ],
        );
    }

    /// Security 4728 (global group) or 4732 (local group): a member was added.
    #[allow(clippy::too_many_arguments)]
    pub fn member_added(
        &self,
        sink: &mut Sink,
        t: i64,
        by: &Who,
        member: &str,
        member_sid: &str,
        group: &str,
        global: bool,
    ) {
        let (ssid, uname, domain, logon) = self.subject(by);
        self.security(
            sink,
            t,
            if global { 4728 } else { 4732 },
            vec![
                (
                    "MemberName",
                    format!(
                        "CN={member},CN=Users,{}",
                        self.host
                            .org
                            .dns
                            .split('.')
                            .map(|p| format!("DC={p}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                ),
                ("MemberSid", member_sid.into()),
                ("TargetUserName", group.into()),
                (
                    "TargetDomainName",
                    if global {
                        self.host.org.netbios
                    } else {
                        "Builtin"
                    }
                    .into(),
                ),
                ("TargetSid", format!("{}-512", self.host.org.sid)),
                ("SubjectUserSid", ssid),
                ("SubjectUserName", uname),
                ("SubjectDomainName", domain),
                ("SubjectLogonId", logon),
                ("PrivilegeList", "-".into()),
            ],
        );
    }

    /// Security 4768 (TGT), on a domain controller.
    pub fn kerberos_tgt(&self, sink: &mut Sink, t: i64, who: &Who, ip: &str) {
        self.security(
            sink,
            t,
            4768,
            vec![
                ("TargetUserName", who.name.clone()),
                ("TargetDomainName", self.host.org.dns.to_ascii_uppercase()),
                ("TargetSid", who.sid.clone()),
                ("ServiceName", "krbtgt".into()),
                ("ServiceSid", format!("{}-502", self.host.org.sid)),
                ("TicketOptions", "0x40810010".into()),
                ("Status", "0x0".into()),
                ("TicketEncryptionType", "0x12".into()),
                ("PreAuthType", "2".into()),
                ("IpAddress", format!("::ffff:{ip}")),
                ("IpPort", "49812".into()),
            ],
        );
    }

    /// Security 4769 (service ticket), on a domain controller.
    pub fn kerberos_service(&self, sink: &mut Sink, t: i64, who: &Who, service: &str, ip: &str) {
        self.security(
            sink,
            t,
            4769,
            vec![
                (
                    "TargetUserName",
                    format!("{}@{}", who.name, self.host.org.dns.to_ascii_uppercase()),
                ),
                ("TargetDomainName", self.host.org.dns.to_ascii_uppercase()),
                ("ServiceName", service.into()),
                ("ServiceSid", format!("{}-1601", self.host.org.sid)),
                ("TicketOptions", "0x40810000".into()),
                ("TicketEncryptionType", "0x12".into()),
                ("IpAddress", format!("::ffff:{ip}")),
                ("IpPort", "50123".into()),
                ("Status", "0x0".into()),
                ("LogonGuid", logon_guid(who.logon_id)),
                ("TransmittedServices", "-".into()),
            ],
        );
    }

    /// Security 4776 (NTLM validation), on a domain controller.
    pub fn ntlm_validation(&self, sink: &mut Sink, t: i64, user: &str, workstation: &str) {
        self.security(
            sink,
            t,
            4776,
            vec![
                (
                    "PackageName",
                    "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0".into(),
                ),
                ("TargetUserName", user.into()),
                ("Workstation", workstation.into()),
                ("Status", "0x0".into()),
            ],
        );
    }

    /// Security 5145: a network share object was checked for access.
    pub fn share_access(
        &self,
        sink: &mut Sink,
        t: i64,
        who: &Who,
        ip: &str,
        share: &str,
        target: &str,
    ) {
        self.security(
            sink,
            t,
            5145,
            vec![
                ("SubjectUserSid", who.sid.clone()),
                ("SubjectUserName", who.name.clone()),
                ("SubjectDomainName", who.domain.clone()),
                ("SubjectLogonId", format!("{:#x}", who.logon_id)),
                ("ObjectType", "File".into()),
                ("IpAddress", ip.into()),
                ("IpPort", "49723".into()),
                ("ShareName", format!("\\\\*\\{share}")),
                (
                    "ShareLocalPath",
                    if share == "ADMIN$" {
                        "\\??\\C:\\Windows"
                    } else {
                        "\\??\\C:\\"
                    }
                    .into(),
                ),
                ("RelativeTargetName", target.into()),
                ("AccessMask", "0x2".into()),
                ("AccessList", "%%4417\r\n\t\t\t\t".into()),
                ("AccessReason", "-".into()),
            ],
        );
    }

    /// PowerShell 4104: a script block was logged.
    /// A 4104 script block, logged from the PowerShell process that ran it.
    pub fn script_block(&self, sink: &mut Sink, dice: &mut Dice, t: i64, ps: &Proc, text: &str) {
        self.emit(
            sink,
            t,
            WinEvent {
                channel: Channel::PowerShell,
                event_id: 4104,
                data: vec![
                    ("MessageNumber", "1".into()),
                    ("MessageTotal", "1".into()),
                    ("ScriptBlockText", text.into()),
                    ("ScriptBlockId", dice.guid()),
                    ("Path", "".into()),
                ],
                user_sid: Some(ps.who.sid.clone()),
                exec_pid: ps.pid,
            },
        );
    }
}

fn logon_guid(logon_id: u64) -> String {
    format!(
        "{{b5c1a3f2-{:04x}-{:04x}-0000-{:012x}}}",
        (logon_id >> 16) & 0xffff,
        logon_id & 0xffff,
        logon_id
    )
}

fn port_name(port: u16) -> &'static str {
    match port {
        53 => "domain",
        80 => "http",
        88 => "kerberos",
        135 => "epmap",
        137 => "netbios-ns",
        389 => "ldap",
        443 => "https",
        445 => "microsoft-ds",
        3389 => "ms-wbt-server",
        5432 => "postgresql",
        _ => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_events_are_json_in_the_evtx_dump_shape() {
        let e = WinEvent {
            channel: Channel::Sysmon,
            event_id: 1,
            data: vec![
                ("Image", "C:\\Windows\\cmd.exe".into()),
                ("CommandLine", "a \"b\"\n".into()),
            ],
            user_sid: Some("S-1-5-18".into()),
            exec_pid: 4,
        };
        let mut s = String::new();
        e.render(&mut s, 1_551_687_302_123_456, 9, "WEB01.nwm.example");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["Event"]["System"]["EventRecordID"], 9);
        assert_eq!(
            v["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"],
            "2019-03-04T08:15:02.123456Z"
        );
        assert_eq!(v["Event"]["EventData"]["CommandLine"], "a \"b\"\n");
        assert_eq!(v["Event"]["EventData"]["Image"], "C:\\Windows\\cmd.exe");
    }
}
