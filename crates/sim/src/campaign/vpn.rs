//! Stage 10: a SoftEther VPN client on the file server, and the actor's own domain admin
//! logging in over it days later.

use super::{Ctx, Foothold, Implant, WaveState};
use crate::clock::{DAY, HOUR, MINUTE, SECOND};
use crate::sink::Sink;
use crate::windows::{Exe, Who};

/// Installs the VPN and plays the later logon; returns when that logon happens.
pub(super) fn install(
    c: &mut Ctx<'_>,
    w: &mut WaveState<'_>,
    sink: &mut Sink,
    hold: &Foothold<'_>,
    implant: &Implant,
) -> i64 {
    let org = c.world.org();
    let fs_h = w.fs_h;
    let (da, da_sid) = (&implant.da, &implant.da_sid);
    let system4 = &w.system4;
    w.t += c.dice.range(2, 6) * HOUR;
    let t = w.t;
    c.touch(fs_h);
    let fs = c.m(fs_h);
    let fs_ip = c.ip(fs_h);
    let vpn = "C:\\ProgramData\\SoftEther\\vpnclient.exe".to_string();
    c.tool(&vpn);
    c.label(
        sink,
        10,
        "T1133",
        "SoftEther VPN client installed as a service",
    );
    fs.file(sink, t, system4, &vpn);
    fs.file(
        sink,
        t + SECOND,
        system4,
        "C:\\ProgramData\\SoftEther\\vpn_client.config",
    );
    let da_who = Who::user(org.netbios, da, da_sid, 0);
    fs.service(
        sink,
        t + 10 * SECOND,
        &da_who,
        "SEVPNCLIENT",
        &format!("\"{vpn}\" /service"),
    );
    let fs_services = w.bg.services(fs_h).clone();
    let vpnp = fs.spawn(
        sink,
        &mut c.dice,
        t + 12 * SECOND,
        &fs_services,
        Exe {
            path: &vpn,
            pe: "vpnclient.exe",
            build: 0,
        },
        format!("\"{vpn}\" /service"),
    );
    let vpn_host = format!("vpn{}.softether.net", 100_000 + c.dice.below(900_000));
    fs.dns(sink, t + 13 * SECOND, &vpnp, &vpn_host, "198.51.100.99");
    fs.connect(
        sink,
        t + 14 * SECOND,
        &vpnp,
        "tcp",
        true,
        (&fs_ip, 50_555),
        ("198.51.100.99", 5555),
    );
    c.flow(
        sink,
        t + 14 * SECOND,
        (&fs_ip, 50_555),
        ("198.51.100.99", 5555),
        "ssl",
        7200.0,
        9_000_000,
        14_000_000,
    );
    let back = t + c.dice.range(2, 4) * DAY + c.dice.range(0, 6) * HOUR;
    c.label(
        sink,
        10,
        "T1078",
        "the intruder's domain admin logs on over the VPN",
    );
    let dc = c.m(w.dc_h);
    dc.kerberos_tgt(sink, back - SECOND, &da_who, "192.168.30.12");
    let l = hold.jump.logon(
        sink,
        &mut c.dice,
        back,
        &da_who,
        10,
        false,
        ("192.168.30.12", "DESKTOP-7H2K4Q"),
        true,
    );
    hold.jump.logoff(
        sink,
        back + c.dice.range(10, 50) * MINUTE,
        &Who::user(org.netbios, da, da_sid, l),
        l,
        10,
    );
    back
}
