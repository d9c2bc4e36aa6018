//! Sysmon beyond process creation: network connections (3), image loads (7), process
//! access (10), files (11), registry values (13), pipes (17), DNS queries (22).

use super::process::hashes;
use super::{Machine, Proc};
use crate::clock;
use crate::sink::Sink;

impl Machine<'_> {
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
