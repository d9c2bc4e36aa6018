//! The Windows logs besides Sysmon: Security's processes, logons, explicit credentials,
//! services, tasks, accounts and shares; System's service installs; PowerShell's script
//! blocks.

use towerwatch_event::Event;

use super::process::{is_hub_image, process_created, ProcessInfo};
use super::web::{is_framework_child, is_web_server};
use super::{account_name, digest_folded, ip_of, pid, say, short_host};
use super::{CreatedIn, Draft, Key, Movement};

pub(super) fn link(e: &Event, d: &mut Draft) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    let id = e.event_id.unwrap_or(0);
    match id {
        4688 => {
            if let Some(p) = pid(f("NewProcessId")) {
                d.keys.push(Key::PidCreated(p, CreatedIn::Security));
            }
            let parent = f("ParentProcessName");
            if is_web_server(parent) && !is_framework_child(f("NewProcessName")) {
                d.web_child = true;
            } else if let Some(p) = pid(f("ProcessId")).filter(|_| !is_hub_image(parent)) {
                d.keys.push(Key::PidRef(p));
            }
            d.session(f("SubjectLogonId"));
            d.session(f("TargetLogonId"));
            let image = f("NewProcessName");
            d.file(image);
            let info = ProcessInfo::new([
                image,
                f("CommandLine"),
                parent,
                f("SubjectUserName"),
                f("NewProcessId"),
                f("ProcessId"),
            ]);
            d.movement = process_created(&mut d.keys, &info);
            d.process = Some(Box::new(info));
        }
        4624 | 4625 => {
            if f("LogonType") == "5" {
                d.keys
                    .push(Key::ServiceSession(digest_folded(f("TargetLogonId"))));
            } else {
                d.session(f("TargetLogonId"));
            }
            d.account(f("TargetUserName"));
            let ip = f("IpAddress");
            let t = f("LogonType");
            if let Some(ip) = ip_of(ip) {
                d.remote(ip);
                if matches!(t, "3" | "10") && !ip.starts_with("127.") && ip != "::1" {
                    d.movement = Some(Movement::Arrival {
                        from: Some(ip.into()),
                        how: if t == "10" {
                            "RDP logon"
                        } else {
                            "network logon"
                        },
                    });
                }
            }
            say!(d, "logon type {t} of {} from {ip}", f("TargetUserName"));
        }
        4634 | 4647 => {
            d.session(f("TargetLogonId"));
            say!(d, "logoff of {}", f("TargetUserName"));
        }
        4648 => {
            d.session(f("SubjectLogonId"));
            if let Some(p) = pid(f("ProcessId")) {
                d.keys.push(Key::PidRef(p));
            }
            d.account(f("TargetUserName"));
            let target = f("TargetServerName");
            if !target.is_empty() && target != "localhost" && target != "-" {
                d.movement = Some(Movement::Departure {
                    to: short_host(target),
                });
            }
            say!(
                d,
                "explicit credentials of {} for {target}",
                f("TargetUserName")
            );
        }
        4672 => {
            d.session(f("SubjectLogonId"));
            say!(d, "special privileges for {}", f("SubjectUserName"));
        }
        4697 => {
            d.session(f("SubjectLogonId"));
            d.account(f("SubjectUserName"));
            d.keys.push(Key::File(digest_folded(&service_binary(f(
                "ServiceFileName",
            )))));
            say!(d, "service {} installed", f("ServiceName"));
        }
        4698 | 4702 => {
            d.session(f("SubjectLogonId"));
            d.account(f("SubjectUserName"));
            let content = f("TaskContent");
            if let Some(cmd) = content
                .split("<Command>")
                .nth(1)
                .and_then(|r| r.split("</Command>").next())
            {
                d.file(cmd);
            }
            say!(d, "scheduled task {}", f("TaskName"));
        }
        4720 => {
            if let Some(a) = account_name(f("TargetUserName")) {
                d.keys.push(Key::AccountCreated(a));
            }
            d.session(f("SubjectLogonId"));
            say!(d, "account {} created", f("TargetUserName"));
        }
        4728 | 4732 | 4756 => {
            let member = f("MemberName");
            let cn = member
                .strip_prefix("CN=")
                .and_then(|m| m.split(',').next())
                .unwrap_or(member);
            d.account(cn);
            d.session(f("SubjectLogonId"));
            say!(d, "{cn} added to {}", f("TargetUserName"));
        }
        4768 | 4769 | 4771 | 4776 => {
            d.account(f("TargetUserName"));
            say!(d, "Kerberos/NTLM for {}", f("TargetUserName"));
        }
        5140 | 5145 => {
            d.session(f("SubjectLogonId"));
            let share = f("ShareLocalPath").trim_start_matches("\\??\\");
            let rel = f("RelativeTargetName");
            if !rel.is_empty() {
                d.file(&format!("{}{rel}", share));
            }
            if let Some(ip) = ip_of(f("IpAddress")) {
                d.movement = Some(Movement::Arrival {
                    from: Some(ip.into()),
                    how: "admin share",
                });
            }
            say!(d, "share {} {rel}", f("ShareName"));
        }
        _ => {
            d.session(f("SubjectLogonId"));
            say!(d, "Security {id}");
        }
    }
}

/// System 7045: a service installed, tied to runs of its binary.
pub(super) fn service_installed(e: &Event, d: &mut Draft) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    d.keys
        .push(Key::File(digest_folded(&service_binary(f("ImagePath")))));
    say!(d, "service {} installed", f("ServiceName"));
}

/// A PowerShell event: the script's host process, by the pid the event was logged from.
pub(super) fn script_block(e: &Event, d: &mut Draft) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    if let Some(p) = pid(f("Execution_ProcessID")) {
        d.keys.push(Key::PidRef(p));
    }
    let text: String = f("ScriptBlockText").chars().take(160).collect();
    say!(d, "PowerShell {}", text.replace(['\r', '\n'], " "));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_resolve_to_their_binary() {
        assert_eq!(
            service_binary("%SystemRoot%\\PSEXESVC.exe"),
            "c:\\windows\\psexesvc.exe"
        );
        assert_eq!(
            service_binary("\"C:\\ProgramData\\SoftEther\\vpnclient.exe\" /service"),
            "c:\\programdata\\softether\\vpnclient.exe"
        );
    }
}
