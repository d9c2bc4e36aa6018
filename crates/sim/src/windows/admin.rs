//! Changes an administrator (or an intruder) makes: services installed (System 7045,
//! Security 4697), scheduled tasks (4698), accounts created (4720) and group members added
//! (4728, 4732).

use super::render::{Channel, WinEvent};
use super::{Machine, Who};
use crate::sink::Sink;

impl Machine<'_> {
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
}
