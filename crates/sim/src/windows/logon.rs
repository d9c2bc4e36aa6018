//! Logons and authentication: Security 4624/4672, 4634 and 4648 on any host, Kerberos and
//! NTLM (4768, 4769, 4776) on domain controllers, and share access (5145).

use super::{logon_guid, Machine, Proc, Who};
use crate::dice::Dice;
use crate::sink::Sink;

impl Machine<'_> {
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
}
