//! Processes: those already running, process creation (Security 4688, Sysmon 1) with the
//! PE's version fields and hashes, and the PowerShell script blocks a process logs.

use sha2::{Digest, Sha256};

use super::render::{Channel, WinEvent};
use super::{logon_guid, Exe, Machine, Proc, Who};
use crate::clock;
use crate::dice::Dice;
use crate::sink::Sink;

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

impl Machine<'_> {
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

    /// PowerShell 4104: a script block, logged from the PowerShell process that ran it.
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
