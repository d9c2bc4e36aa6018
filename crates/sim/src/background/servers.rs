//! Every server's hourly noise: scheduled maintenance processes, monitoring logons,
//! Kerberos traffic to the domain controllers, database connections, NTLM validations.

use super::{db_ip, Background};
use crate::clock::{HOUR, SECOND};
use crate::sink::Sink;
use crate::windows::{exe, Who};
use crate::world::Role;

impl Background<'_> {
    /// One hour of server `h`'s own activity.
    pub(super) fn server_noise(&mut self, sink: &mut Sink, t0: i64, h: usize) {
        let world = self.world;
        let m = self.estate.machine(world, h);
        let host = &world.hosts[h];
        for _ in 0..self.dice.poisson(1.5) {
            let t = self.at(t0, HOUR);
            let svchost = m.running(
                &mut self.dice,
                "C:\\Windows\\System32\\svchost.exe",
                "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
                Who::system(),
            );
            let (path, pe, cmd) = *self.dice.pick(&[
                ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe", "taskhostw.exe Install $(Arg0)"),
                ("C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2001.10-0\\MpCmdRun.exe", "MpCmdRun.exe", "\"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2001.10-0\\MpCmdRun.exe\" -SignatureUpdate -ScheduleJob"),
                ("C:\\Windows\\System32\\wermgr.exe", "WerMgr", "C:\\Windows\\system32\\wermgr.exe -upload"),
                ("C:\\Windows\\System32\\sc.exe", "sc.exe", "C:\\Windows\\system32\\sc.exe start w32time task_started"),
                ("C:\\Windows\\System32\\gpupdate.exe", "GPUpdate.exe", "gpupdate.exe /target:computer"),
            ]);
            m.spawn(sink, &mut self.dice, t, &svchost, exe(path, pe), cmd.into());
        }
        // Monitoring polls every server over the network.
        let t = self.at(t0, HOUR);
        let mon = world.account("svc_monitor");
        let who = Who::of(mon, 0);
        let monitor_ip = self.monitor_ip.clone();
        let logon = m.logon(
            sink,
            &mut self.dice,
            t,
            &who,
            3,
            false,
            (&monitor_ip, "MON01"),
            false,
        );
        m.logoff(sink, t + 4 * SECOND, &who, logon, 3);
        let dcs = world.hosts_with(Role::DomainController);
        let dc_ip = world.hosts[dcs[h % dcs.len()]].ip.as_str();
        let lsass = m.running(
            &mut self.dice,
            "C:\\Windows\\System32\\lsass.exe",
            "C:\\Windows\\system32\\lsass.exe",
            Who::system(),
        );
        m.connect(
            sink,
            t + 30 * SECOND,
            &lsass,
            "tcp",
            true,
            (&host.ip, 50_000 + (h as u16) * 7),
            (dc_ip, 88),
        );
        // Application servers keep their database connections busy.
        if matches!(
            host.role,
            Role::Mediation
                | Role::Billing
                | Role::CareApp
                | Role::LawfulDisclosure
                | Role::Analytics
        ) {
            let app = m.running(
                &mut self.dice,
                &format!("C:\\Program Files\\{}\\app\\appsvc.exe", world.org().short),
                "appsvc.exe",
                Who::system(),
            );
            let port = self.dice.range(49_152, 65_000) as u16;
            m.connect(
                sink,
                self.at(t0, HOUR),
                &app,
                "tcp",
                true,
                (&host.ip, port),
                (db_ip(world), 5432),
            );
        }
        if host.role == Role::DomainController {
            for _ in 0..self.dice.poisson(2.0 * self.scale) {
                let t = self.at(t0, HOUR);
                let a = self.dice.pick(&world.accounts);
                m.ntlm_validation(
                    sink,
                    t,
                    &a.name,
                    &world.hosts[self.dice.index(world.hosts.len())].name,
                );
            }
        }
    }
}
