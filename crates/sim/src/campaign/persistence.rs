//! Stage 5: the actor's own domain admin, created on the domain controller, then the
//! side-loaded PoisonIvy on the jump host, kept by a scheduled task (and a Run key in later
//! waves), with a renamed command shell.

use super::{Ctx, Foothold, Implant, WaveState};
use crate::clock::{MINUTE, SECOND};
use crate::sink::Sink;
use crate::windows::{exe, Exe, Who};

pub(super) fn persist(
    c: &mut Ctx<'_>,
    w: &mut WaveState<'_>,
    sink: &mut Sink,
    hold: &Foothold<'_>,
) -> Implant {
    let org = c.world.org();
    let dir = c.kit.dir;
    let (dc, jump) = (hold.dc, hold.jump);
    let (side_exe, side_dll) = (&hold.side_exe, &hold.side_dll);
    let t = w.t;
    c.label(
        sink,
        5,
        "T1136.002",
        "domain account created by the intruder",
    );
    let da = c.kit.da_account.clone();
    let da_sid = format!("{}-{}", org.sid, 7100 + u32::from(c.kit.wave));
    let dc_cmd = dc.spawn(sink, &mut c.dice, t + 5 * SECOND, &hold.svc, exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"), format!("cmd.exe /c \"net user {da} P@ssw0rd!{w} /add /domain & net group \"Domain Admins\" {da} /add /domain\"", w = c.kit.wave));
    dc.spawn(
        sink,
        &mut c.dice,
        t + 6 * SECOND,
        &dc_cmd,
        exe("C:\\Windows\\System32\\net.exe", "net.exe"),
        format!("net user {da} P@ssw0rd!{w} /add /domain", w = c.kit.wave),
    );
    dc.account_created(sink, t + 7 * SECOND, &Who::system(), &da, &da_sid);
    c.label(
        sink,
        5,
        "T1098",
        "intruder's account added to Domain Admins",
    );
    dc.spawn(
        sink,
        &mut c.dice,
        t + 8 * SECOND,
        &dc_cmd,
        exe("C:\\Windows\\System32\\net.exe", "net.exe"),
        format!("net group \"Domain Admins\" {da} /add /domain"),
    );
    dc.member_added(
        sink,
        t + 9 * SECOND,
        &Who::system(),
        &da,
        &da_sid,
        "Domain Admins",
        true,
    );
    w.t += c.dice.range(20, 60) * MINUTE;
    let t = w.t;
    c.label(
        sink,
        5,
        "T1053.005",
        "scheduled task for the side-loading host",
    );
    let task_name = if c.kit.renamed {
        "Microsoft\\Windows\\DeviceSync\\Sync"
    } else {
        "SamsungHelp"
    };
    jump.spawn(
        sink,
        &mut c.dice,
        t,
        &hold.jcmd,
        exe("C:\\Windows\\System32\\schtasks.exe", "schtasks.exe"),
        format!(
            "schtasks /create /tn \"{task_name}\" /tr \"{side_exe}\" /sc onstart /ru SYSTEM /f"
        ),
    );
    jump.task(sink, t + SECOND, &hold.intruder, task_name, side_exe, "");
    let sched = jump.running(
        &mut c.dice,
        "C:\\Windows\\System32\\svchost.exe",
        "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
        Who::system(),
    );
    c.label(
        sink,
        5,
        "T1574.001",
        "signed vendor binary run from ProgramData side-loads the implant",
    );
    let implant = jump.spawn(
        sink,
        &mut c.dice,
        t + 5 * SECOND,
        &sched,
        Exe {
            path: side_exe,
            pe: "RunHelp.exe",
            build: 0,
        },
        format!("\"{side_exe}\""),
    );
    jump.image_load(sink, t + 6 * SECOND, &implant, side_dll, false);
    if c.kit.renamed {
        c.label(sink, 5, "T1547.001", "Run key for the side-loading host");
        jump.registry(
            sink,
            t + 8 * SECOND,
            &implant,
            "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\DeviceSync",
            side_exe,
        );
    }
    c.label(sink, 5, "T1036.003", "renamed command shell");
    let renamed_cmd = format!("{dir}\\cmdhlp.exe");
    c.tool(&renamed_cmd);
    jump.file(sink, t + 20 * SECOND, &implant, &renamed_cmd);
    let ecmd = jump.spawn(
        sink,
        &mut c.dice,
        t + 30 * SECOND,
        &implant,
        Exe {
            path: &renamed_cmd,
            pe: "Cmd.Exe",
            build: 0,
        },
        format!("{renamed_cmd} /c hostname"),
    );
    Implant {
        implant,
        ecmd,
        da,
        da_sid,
    }
}
