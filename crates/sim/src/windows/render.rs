//! Windows events as evtx_dump writes them: `{"Event":{"System":…,"EventData":…}}`, one JSON
//! line per event.

use crate::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sysmon,
    Security,
    System,
    PowerShell,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Sysmon => "Microsoft-Windows-Sysmon/Operational",
            Channel::Security => "Security",
            Channel::System => "System",
            Channel::PowerShell => "Microsoft-Windows-PowerShell/Operational",
        }
    }

    fn provider(self) -> (&'static str, &'static str) {
        match self {
            Channel::Sysmon => (
                "Microsoft-Windows-Sysmon",
                "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
            ),
            Channel::Security => (
                "Microsoft-Windows-Security-Auditing",
                "{54849625-5478-4994-a5ba-3e3b0328c30d}",
            ),
            Channel::System => (
                "Service Control Manager",
                "{555908d1-a6d7-4695-8e1e-26931d2012f4}",
            ),
            Channel::PowerShell => (
                "Microsoft-Windows-PowerShell",
                "{a0c1853b-5c40-4b15-8766-3cf1c58f985a}",
            ),
        }
    }

    fn keywords(self) -> &'static str {
        match self {
            Channel::Sysmon => "0x8000000000000000",
            Channel::Security => "0x8020000000000000",
            Channel::System => "0x8080000000000000",
            Channel::PowerShell => "0x0",
        }
    }
}

/// One Windows event before it gets its time, record id and computer at write time.
#[derive(Debug, Clone)]
pub struct WinEvent {
    pub channel: Channel,
    pub event_id: u16,
    pub data: Vec<(&'static str, String)>,
    /// The `Security UserID` attribute (Sysmon and PowerShell set it).
    pub user_sid: Option<String>,
    pub exec_pid: u32,
}

impl WinEvent {
    pub fn render(&self, out: &mut String, time: i64, record_id: u64, computer: &str) {
        let (provider, guid) = self.channel.provider();
        out.push_str(r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":""##);
        out.push_str(provider);
        out.push_str(r##"","Guid":""##);
        out.push_str(guid);
        if self.channel == Channel::System {
            out.push_str(r##"","EventSourceName":"Service Control Manager"##);
        }
        out.push_str(r##""}},"EventID":"##);
        push_num(out, u64::from(self.event_id));
        let (version, level, task) = match self.channel {
            Channel::Sysmon => (5, 4, u64::from(self.event_id)),
            Channel::Security => (2, 0, security_task(self.event_id)),
            Channel::System => (0, 4, 0),
            Channel::PowerShell => (1, 5, 2),
        };
        out.push_str(r##","Version":"##);
        push_num(out, version);
        out.push_str(r##","Level":"##);
        push_num(out, level);
        out.push_str(r##","Task":"##);
        push_num(out, task);
        out.push_str(r##","Opcode":0,"Keywords":""##);
        out.push_str(self.channel.keywords());
        out.push_str(r##"","TimeCreated":{"#attributes":{"SystemTime":""##);
        out.push_str(&clock::rfc3339_us(time));
        out.push_str(r##""}},"EventRecordID":"##);
        push_num(out, record_id);
        out.push_str(r##","Correlation":null,"Execution":{"#attributes":{"ProcessID":"##);
        push_num(out, u64::from(self.exec_pid));
        out.push_str(r##","ThreadID":"##);
        push_num(out, u64::from(self.exec_pid.wrapping_mul(7) % 9000 + 100));
        out.push_str(r##"}},"Channel":""##);
        out.push_str(self.channel.name());
        out.push_str(r##"","Computer":""##);
        escape(out, computer);
        out.push_str(r##"","Security":"##);
        match &self.user_sid {
            Some(sid) => {
                out.push_str(r##"{"#attributes":{"UserID":""##);
                escape(out, sid);
                out.push_str(r##""}}"##);
            }
            None => out.push_str("null"),
        }
        out.push_str(r##"},"EventData":{"##);
        for (i, (k, v)) in self.data.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k);
            out.push_str("\":\"");
            escape(out, v);
            out.push('"');
        }
        out.push_str("}}}");
    }
}

fn security_task(id: u16) -> u64 {
    match id {
        4624 | 4634 | 4648 | 4672 => 12544,
        4688 => 13312,
        4698 => 12804,
        4720 | 4728 | 4732 => 13824,
        4768 | 4769 => 14339,
        4776 => 14336,
        5145 => 12811,
        4697 => 12289,
        _ => 0,
    }
}

fn push_num(out: &mut String, n: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

/// JSON string escaping.
pub fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_events_are_json_in_the_evtx_dump_shape() {
        let e = WinEvent {
            channel: Channel::Sysmon,
            event_id: 1,
            data: vec![
                ("Image", "C:\\Windows\\cmd.exe".into()),
                ("CommandLine", "a \"b\"\n".into()),
            ],
            user_sid: Some("S-1-5-18".into()),
            exec_pid: 4,
        };
        let mut s = String::new();
        e.render(&mut s, 1_551_687_302_123_456, 9, "WEB01.nwm.example");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["Event"]["System"]["EventRecordID"], 9);
        assert_eq!(
            v["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"],
            "2019-03-04T08:15:02.123456Z"
        );
        assert_eq!(v["Event"]["EventData"]["CommandLine"], "a \"b\"\n");
        assert_eq!(v["Event"]["EventData"]["Image"], "C:\\Windows\\cmd.exe");
    }
}
