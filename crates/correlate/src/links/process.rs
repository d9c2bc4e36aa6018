//! Process creations as either log sees them (Sysmon 1, Security 4688): the words kept for
//! trees and stories, the hub processes whose children are not one story, and what a command
//! line says (the accounts it adds, the host it reaches for).

use serde::{Deserialize, Serialize};

use super::{file_name, is_web_server, short_host, Key, Movement};

/// A process creation's words, in one allocation: image, command line, parent image, user,
/// and the ids (guid for Sysmon, pid for Security) of the process and its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    text: Box<str>,
    ends: [u32; 6],
}

impl ProcessInfo {
    pub fn new(parts: [&str; 6]) -> Self {
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; 6];
        for (i, p) in parts.iter().enumerate() {
            text.push_str(p);
            ends[i] = text.len() as u32;
        }
        ProcessInfo {
            text: text.into(),
            ends,
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn image(&self) -> &str {
        self.part(0)
    }
    pub fn command_line(&self) -> &str {
        self.part(1)
    }
    pub fn parent_image(&self) -> &str {
        self.part(2)
    }
    pub fn user(&self) -> &str {
        self.part(3)
    }
    pub fn id(&self) -> &str {
        self.part(4)
    }
    pub fn parent_id(&self) -> &str {
        self.part(5)
    }
}

/// Processes that start or serve everything: their children are not one story.
pub fn is_hub_image(image: &str) -> bool {
    let name = file_name(image).to_ascii_lowercase();
    matches!(
        name.as_str(),
        "system"
            | "smss.exe"
            | "csrss.exe"
            | "wininit.exe"
            | "winlogon.exe"
            | "services.exe"
            | "lsass.exe"
            | "svchost.exe"
            | "wmiprvse.exe"
            | "explorer.exe"
            | "taskeng.exe"
            | "taskhostw.exe"
            | "userinit.exe"
            | "sihost.exe"
            | "runtimebroker.exe"
            | "dllhost.exe"
    ) || is_web_server(&name)
}

/// What a command line says, for either view of a process creation (Sysmon 1, 4688): the
/// accounts it adds and the host it reaches for.
pub(super) fn process_created(keys: &mut Vec<Key>, p: &ProcessInfo) -> Option<Movement> {
    for a in accounts_added(p.command_line()) {
        keys.push(Key::AccountCreated(a));
    }
    command_targets(p.command_line())
        .into_iter()
        .next()
        .map(|to| Movement::Departure { to })
}

/// Remote targets a command line names: `\\host\share`, `\\10.0.0.1`, `/node:host`, `-h host`.
fn command_targets(cmd: &str) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    let lower = cmd.to_ascii_lowercase();
    let mut push = |t: &str| {
        let t = t.trim_matches(['"', '\'', ',', ';', ' ']);
        if !t.is_empty() && !t.contains('*') && t != "." && t != "localhost" {
            let h = short_host(t);
            if !out.contains(&h) {
                out.push(h);
            }
        }
    };
    let mut rest = cmd;
    while let Some(i) = rest.find("\\\\") {
        let after = &rest[i + 2..];
        let end = after.find(['\\', ' ', '"', '\'']).unwrap_or(after.len());
        push(&after[..end]);
        rest = &after[end..];
    }
    for flag in ["/node:", "-h ", "--host="] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(flag) {
            let start = from + i + flag.len();
            let after = &cmd[start..];
            let end = after.find([' ', '"', '\'']).unwrap_or(after.len());
            push(&after[..end]);
            from = start;
        }
    }
    out
}

/// `net user NAME … /add`, `net group "G" NAME /add /domain`, `net localgroup G NAME /add`.
fn accounts_added(cmd: &str) -> Vec<Box<str>> {
    let lower = cmd.to_ascii_lowercase();
    if !lower.contains("/add") {
        return Vec::new();
    }
    let words: Vec<&str> = lower
        .split([' ', '&', '|', '\t'])
        .map(|w| w.trim_matches('"'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let is_net =
            matches!(*w, "net" | "net.exe" | "net1" | "net1.exe") || w.ends_with("\\net.exe");
        if !is_net || i + 2 >= words.len() {
            continue;
        }
        // The command runs to the next `net`; its operands are the words that are no flags.
        let rest: Vec<&str> = words[i + 2..]
            .iter()
            .take_while(|x| !matches!(**x, "net" | "net.exe"))
            .copied()
            .collect();
        if !rest.contains(&"/add") {
            continue;
        }
        let operands: Vec<&str> = rest
            .iter()
            .copied()
            .filter(|x| !x.starts_with('/'))
            .collect();
        let name = match words[i + 1] {
            "user" => operands.first(),
            // The group's name may have spaces; the account is the last operand.
            "group" | "localgroup" if operands.len() >= 2 => operands.last(),
            _ => None,
        };
        if let Some(n) = name {
            out.push((*n).into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_name_their_targets_and_accounts() {
        assert_eq!(
            command_targets("psexec.exe \\\\10.10.0.10 -s cmd"),
            vec![Box::<str>::from("10.10.0.10")]
        );
        assert_eq!(
            command_targets("wmic /node:10.40.0.10 /user:X process call create"),
            vec![Box::<str>::from("10.40.0.10")]
        );
        assert_eq!(
            command_targets("cmd /c copy a.rar \\\\FS01.corp\\c$\\x"),
            vec![Box::<str>::from("FS01")]
        );
        assert!(command_targets("cmd /c dir c:\\\\").is_empty());
        assert_eq!(
            accounts_added("cmd.exe /c \"net user svc_sync P@ss /add /domain & net group \"Domain Admins\" svc_sync /add /domain\""),
            vec![Box::<str>::from("svc_sync"), "svc_sync".into()]
        );
        assert!(accounts_added("net user bob").is_empty());
    }
}
