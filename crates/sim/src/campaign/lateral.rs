//! Stage 4: moving on with the stolen admin: WMI to the jump host, tools over SMB, PsExec
//! to the domain controller as SYSTEM with a renamed service.

use super::{Ctx, Foothold, WaveState};
use crate::clock::{MINUTE, SECOND};
use crate::sink::Sink;
use crate::windows::{exe, Exe, Who};
use crate::world::Account;

pub(super) fn move_on<'a>(
    c: &mut Ctx<'a>,
    w: &mut WaveState<'_>,
    sink: &mut Sink,
    stolen: &'a Account,
) -> Foothold<'a> {
    let world = c.world;
    let org = world.org();
    let dir = c.kit.dir;
    let (jump_h, dc_h) = (w.jump_h, w.dc_h);
    let web_ip = w.web_ip.clone();
    let habits = &world.profile.habits;
    let (tools, renamed_tools) = (habits.tools, habits.renamed);
    w.t += c.dice.range(30, 90) * MINUTE;
    let t = w.t;
    let jump_ip = c.ip(jump_h);
    let jump_name = c.name(jump_h);
    let entry_name = c.name(w.entry);
    let stolen_who = Who::of(stolen, 0);
    let pth = c.kit.wave != 1;
    let wmic = w.shell_cmd(c, sink, t, 4, "T1047", "remote command through WMI", exe("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe"), &format!("wmic /node:{jump_ip} /user:{}\\{} /password:******** process call create \"cmd /c mkdir {dir}\"", org.netbios, stolen.name));
    c.label(sink, 4, "T1078", "stolen admin credentials used explicitly");
    w.web.explicit_logon(
        sink,
        t + SECOND,
        &wmic,
        &stolen_who,
        &world.hosts[jump_h].fqdn,
        &jump_ip,
    );
    c.touch(jump_h);
    let jump = c.m(jump_h);
    c.label(
        sink,
        4,
        if pth { "T1550.002" } else { "T1078" },
        "network logon on the jump host with the stolen account",
    );
    let logon = jump.logon(
        sink,
        &mut c.dice,
        t + 2 * SECOND,
        &stolen_who,
        3,
        pth,
        (&web_ip, &entry_name),
        true,
    );
    let intruder = Who::of(stolen, logon);
    let wmiprvse = jump.running(
        &mut c.dice,
        "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
        "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
        Who::system(),
    );
    c.label(
        sink,
        4,
        "T1047",
        "WMI provider host runs the intruder's command",
    );
    let mut jcmd = jump.spawn_as(
        sink,
        &mut c.dice,
        t + 3 * SECOND,
        &wmiprvse,
        exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
        format!("cmd /c mkdir {dir}"),
        intruder.clone(),
    );
    jcmd.integrity = "High";
    c.flow(
        sink,
        t + SECOND,
        (&web_ip, 49_702),
        (&jump_ip, 135),
        "dce_rpc",
        1.2,
        4_200,
        3_900,
    );
    // Tools over the admin share.
    w.t += 2 * MINUTE;
    let t = w.t;
    let share_cmd = format!(
        "copy {dir}\\*.* \\\\{jump_ip}\\c$\\{}\\",
        dir.trim_start_matches("C:\\")
    );
    w.shell_cmd(
        c,
        sink,
        t,
        4,
        "T1570",
        "tools copied to the jump host over SMB",
        exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
        &share_cmd,
    );
    c.label(sink, 4, "T1570", "tools written over the admin share");
    jump.share_access(
        sink,
        t + SECOND,
        &intruder,
        &web_ip,
        "C$",
        &format!("{}\\RunHelp.exe", dir.trim_start_matches("C:\\")),
    );
    let side_exe = c.tool(&format!("{dir}\\RunHelp.exe"));
    let side_dll = c.tool(&format!("{dir}\\ssMUIDLL.dll"));
    let htran_path = c.tool(&if c.kit.renamed {
        format!("{dir}\\{}", renamed_tools[1])
    } else {
        format!("{dir}\\{}", tools[1])
    });
    let rar_path = c.tool(&if c.kit.renamed {
        format!("{dir}\\{}", renamed_tools[2])
    } else {
        format!("{dir}\\{}", tools[2])
    });
    for (k, f) in [
        &side_exe,
        &side_dll,
        &format!("{dir}\\RunHelp.dat"),
        &htran_path,
        &rar_path,
    ]
    .into_iter()
    .enumerate()
    {
        jump.file(sink, t + (2 + k as i64) * SECOND, &w.system4, f);
    }
    c.flow(
        sink,
        t + SECOND,
        (&web_ip, 49_744),
        (&jump_ip, 445),
        "smb",
        8.0,
        4_800_000,
        12_000,
    );
    // PsExec from the jump host to the domain controller, as SYSTEM, with a renamed service.
    w.t += c.dice.range(10, 30) * MINUTE;
    let t = w.t;
    let dc_ip = c.ip(dc_h);
    let svc_name = if c.kit.renamed {
        "WinMgmtHelper"
    } else {
        "PSEXESVC"
    };
    let psexec_path = c.tool(&format!("{dir}\\pse.exe"));
    c.label(sink, 4, "T1570", "PsExec to the domain controller");
    jump.file(sink, t - MINUTE, &w.system4, &psexec_path);
    jump.spawn(sink, &mut c.dice, t, &jcmd, Exe { path: &psexec_path, pe: "psexec.c", build: 0 }, format!("{psexec_path} \\\\{dc_ip} -accepteula -s -r {svc_name} cmd.exe /c \"net user {da} P@ssw0rd!{w} /add /domain & net group \\\"Domain Admins\\\" {da} /add /domain\"", da = c.kit.da_account, w = c.kit.wave));
    c.touch(dc_h);
    let dc = c.m(dc_h);
    let dc_logon = dc.logon(
        sink,
        &mut c.dice,
        t + SECOND,
        &stolen_who,
        3,
        pth,
        (&jump_ip, &jump_name),
        true,
    );
    let dc_who = Who::of(stolen, dc_logon);
    dc.share_access(
        sink,
        t + 2 * SECOND,
        &dc_who,
        &jump_ip,
        "ADMIN$",
        &format!("{svc_name}.exe"),
    );
    dc.service(
        sink,
        t + 3 * SECOND,
        &dc_who,
        svc_name,
        &format!("%SystemRoot%\\{svc_name}.exe"),
    );
    let dc_services = w.bg.services(dc_h).clone();
    let svc = dc.spawn(
        sink,
        &mut c.dice,
        t + 4 * SECOND,
        &dc_services,
        Exe {
            path: &format!("C:\\Windows\\{svc_name}.exe"),
            pe: "psexesvc.exe",
            build: 0,
        },
        format!("C:\\Windows\\{svc_name}.exe"),
    );
    dc.pipe(sink, t + 4 * SECOND, &svc, &format!("\\{svc_name}"));
    c.flow(
        sink,
        t,
        (&jump_ip, 50_112),
        (&dc_ip, 445),
        "smb",
        3.0,
        380_000,
        9_000,
    );
    Foothold {
        stolen,
        stolen_who,
        pth,
        jump,
        jump_ip,
        jump_name,
        jcmd,
        intruder,
        dc,
        svc,
        side_exe,
        side_dll,
        htran_path,
        rar_path,
    }
}
