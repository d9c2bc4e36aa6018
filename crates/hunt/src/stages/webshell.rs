//! The web-shell join stage: a POST to a rare page of a web server, then a web-server child
//! process on that host within seconds (`towerwatch_correlate::WebShellJoin`); its findings
//! become detections of a rule of their own.

use std::collections::HashSet;

use towerwatch_correlate::{Finding, Place, RuleInfo, Sighting, WebShellJoin};
use towerwatch_event::{Detection, Level};

use super::{Cap, Matched, Stage};

#[derive(Default)]
pub struct WebShell(WebShellJoin);

impl Stage for WebShell {
    type Output = Vec<Finding>;
    type Fact = Option<Sighting>;

    fn extract(&mut self, m: &Matched<'_>) -> Option<Sighting> {
        Sighting::of(m.event)
    }

    fn absorb(&mut self, fact: Option<Sighting>) {
        if let Some(s) = fact {
            self.0.absorb(s);
        }
    }

    fn merge(&mut self, other: Self) {
        self.0.merge(other.0);
    }

    fn caps(&self) -> Vec<Cap> {
        vec![Cap {
            stage: "Web-shell join",
            holds: "web-server child processes (past it they are not joined with requests)",
            limit: towerwatch_correlate::WEB_CHILDREN as u64,
            dropped: self.0.children_dropped,
        }]
    }

    fn finish(self) -> Vec<Finding> {
        self.0.finish()
    }
}

const WEBSHELL_RULE_ID: &str = "towerwatch-webshell-join";
const WEBSHELL_RULE_TITLE: &str =
    "Web shell: a POST to a rare page followed by a web-server child process";
const WEBSHELL_TAGS: [&str; 4] = [
    "attack.persistence",
    "attack.t1505.003",
    "attack.execution",
    "attack.t1059.003",
];

/// The join's entry in the rule catalog the linker scores with.
pub fn webshell_rule() -> RuleInfo {
    RuleInfo::new(
        WEBSHELL_RULE_ID,
        WEBSHELL_RULE_TITLE,
        Level::Critical,
        &WEBSHELL_TAGS.map(String::from),
    )
}

/// The join's findings as detections: one on the process, one on each request.
pub fn webshell_detections(findings: &[Finding]) -> Vec<Detection> {
    let mut out = Vec::new();
    let mut requests = HashSet::new();
    let detection =
        |t: jiff::Timestamp, computer: &str, channel: &str, place: &Place, f: &Finding| Detection {
            timestamp: Some(t.to_string()),
            rule_id: WEBSHELL_RULE_ID.into(),
            rule_title: WEBSHELL_RULE_TITLE.into(),
            level: Level::Critical,
            tags: WEBSHELL_TAGS.map(String::from).to_vec(),
            computer: Some(computer.to_string()),
            channel: Some(channel.to_string()),
            event_id: None,
            source: place.source.clone(),
            record_id: place.record_id,
            line: place.line,
            event: serde_json::json!({
                "request_time": f.request.time.to_string(),
                "server": f.request.server,
                "uri": f.request.uri,
                "client": f.request.client,
                "request_source": f.request.place.source,
                "request_line": f.request.place.line,
                "process_time": f.child.time.to_string(),
                "host": f.child.computer,
                "parent": f.child.parent,
                "image": f.child.image,
                "command_line": f.child.command_line,
                "process_source": f.child.place.source,
                "process_record_id": f.child.place.record_id,
                "process_line": f.child.place.line,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        };
    for f in findings {
        out.push(detection(
            f.child.time,
            &f.child.computer,
            "process",
            &f.child.place,
            f,
        ));
        if requests.insert(f.request.place.clone()) {
            out.push(detection(
                f.request.time,
                &f.request.server,
                "webserver",
                &f.request.place,
                f,
            ));
        }
    }
    out
}
