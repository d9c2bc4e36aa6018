//! The desks: care agents' working days (CareDesk, Chrome, Outlook, reports on the file
//! server) and administrators' morning logons and RDP to the jump host.

use super::{Background, Desk};
use crate::clock::{HOUR, MINUTE, SECOND};
use crate::sink::Sink;
use crate::windows::{exe, Who};
use crate::world::{AccountKind, Role};

impl Background<'_> {
    /// A care agent's hour at desk `h`: logon at eight, applications, browsing and
    /// reports through the day, logoff at five.
    pub(super) fn care_desk(
        &mut self,
        sink: &mut Sink,
        t0: i64,
        h: usize,
        lh: u32,
        business: bool,
    ) {
        let world = self.world;
        let Some(agent) = world.accounts.iter().find(|a| a.desk == Some(h)) else {
            return;
        };
        let m = self.estate.machine(world, h);
        let host = &world.hosts[h];
        if business && lh == 8 {
            let t = self.at(t0, 40 * MINUTE);
            let (logon, explorer) =
                self.desktop_logon(sink, t, h, agent, 2, ("127.0.0.1", &host.name), false);
            let care_path = format!(
                "C:\\Program Files\\{}\\CareDesk\\CareDesk.exe",
                world.org().short
            );
            let care_cmd = format!("\"{care_path}\" /env=prod");
            for (i, (path, pe, cmd)) in [
                (care_path.as_str(), "CareDesk.exe", care_cmd.as_str()),
                (
                    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                    "chrome.exe",
                    "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\"",
                ),
                (
                    "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
                    "OUTLOOK.EXE",
                    "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\"",
                ),
            ]
            .into_iter()
            .enumerate()
            {
                m.spawn(
                    sink,
                    &mut self.dice,
                    t + (20 + 15 * i as i64) * SECOND,
                    &explorer,
                    exe(path, pe),
                    cmd.into(),
                );
            }
            self.desks[h] = Desk {
                logon,
                explorer: Some(explorer),
            };
        } else if business && lh > 8 {
            let Some(explorer) = self.desks[h].explorer.clone() else {
                return;
            };
            for _ in 0..self.dice.poisson(3.0) {
                let t = self.at(t0, HOUR);
                let cmd = format!(
                    "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer --lang=en-US --renderer-client-id={} --mojo-platform-channel-handle={}",
                    self.dice.range(5, 400),
                    self.dice.range(1000, 9000)
                );
                m.spawn(
                    sink,
                    &mut self.dice,
                    t,
                    &explorer,
                    exe(
                        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                        "chrome.exe",
                    ),
                    cmd,
                );
            }
            if self.dice.chance(0.15) {
                let t = self.at(t0, HOUR);
                let fs = self.world.one(Role::FileServer);
                let fs_name = &world.hosts[fs].name;
                m.spawn(sink, &mut self.dice, t, &explorer, exe("C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE", "Excel.exe"), format!("\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" \"\\\\{fs_name}\\care\\reports\\daily.xlsx\""));
                let who = Who::of(agent, 0);
                self.estate.machine(world, fs).logon(
                    sink,
                    &mut self.dice,
                    t,
                    &who,
                    3,
                    false,
                    (&host.ip, &host.name),
                    false,
                );
            }
            if lh == 17 {
                let t = self.at(t0 + 30 * MINUTE, 30 * MINUTE);
                let who = Who::of(agent, self.desks[h].logon);
                m.logoff(sink, t, &who, self.desks[h].logon, 2);
                self.desks[h].explorer = None;
            }
        }
    }

    /// An administrator's morning at desk `h`: logon, then RDP to the jump host.
    pub(super) fn admin_desk(
        &mut self,
        sink: &mut Sink,
        t0: i64,
        h: usize,
        lh: u32,
        business: bool,
    ) {
        let world = self.world;
        let Some(admin) = world
            .accounts
            .iter()
            .find(|a| a.desk == Some(h) && a.kind == AccountKind::Admin)
        else {
            return;
        };
        if business && lh == 8 {
            let m = self.estate.machine(world, h);
            let host = &world.hosts[h];
            let t = self.at(t0 + 20 * MINUTE, 30 * MINUTE);
            let (logon, explorer) =
                self.desktop_logon(sink, t, h, admin, 2, ("127.0.0.1", &host.name), true);
            let jump = &world.hosts[world.one(Role::JumpHost)].name;
            m.spawn(
                sink,
                &mut self.dice,
                t + 40 * SECOND,
                &explorer,
                exe("C:\\Windows\\System32\\mstsc.exe", "mstsc.exe"),
                format!("\"C:\\Windows\\system32\\mstsc.exe\" /v:{jump}"),
            );
            self.desks[h] = Desk {
                logon,
                explorer: Some(explorer),
            };
        }
    }
}
