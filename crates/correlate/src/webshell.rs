//! The **web-shell join** — a POST to a page of a
//! web server that only one or two clients ever use, followed within seconds by a child
//! process of the web server (`w3wp.exe`, `java.exe`, …) on the host that serves that address.
//! Neither half is an alert on its own (a rare page; a worker process starting a shell);
//! together they are an operator typing into a web shell. The framework's own children
//! (`csc.exe` compiling a new page) are never a half: a deployment's first request makes
//! them too.
//!
//! Hosts are tied to the addresses in web logs by the evidence itself: the source addresses of
//! their own outbound connections (Sysmon 3).
//!
//! ```
//! use towerwatch_correlate::WebShellJoin;
//! use towerwatch_event::{Event, Origin, Value};
//!
//! let at = |s: &str| s.parse().ok();
//! let mut join = WebShellJoin::default();
//! let mut req = Event::new(Origin::line("u_ex190305.log", 9));
//! req.set_channel("webserver");
//! req.computer = Some("10.20.0.10".into());
//! req.timestamp = at("2019-03-05T14:16:30Z");
//! for (k, v) in [("cs-method", "POST"), ("cs-uri-stem", "/aspnet_client/x.aspx"), ("sc-status", "200"), ("c-ip", "203.0.113.37")] {
//!     req.push(k, Value::text(v));
//! }
//! join.observe(&req);
//! let mut net = Event::new(Origin::line("WEB01.jsonl", 3));
//! net.set_channel("Microsoft-Windows-Sysmon/Operational");
//! net.set_event_id(3);
//! net.computer = Some("WEB01".into());
//! net.push("Initiated", Value::text("true"));
//! net.push("SourceIp", Value::text("10.20.0.10"));
//! join.observe(&net);
//! let mut proc = Event::new(Origin::line("WEB01.jsonl", 4));
//! proc.set_channel("Microsoft-Windows-Sysmon/Operational");
//! proc.set_event_id(1);
//! proc.computer = Some("WEB01".into());
//! proc.timestamp = at("2019-03-05T14:16:31Z");
//! proc.push("ParentImage", Value::text("C:\\Windows\\System32\\inetsrv\\w3wp.exe"));
//! proc.push("Image", Value::text("C:\\Windows\\System32\\cmd.exe"));
//! join.observe(&proc);
//! let found = join.finish();
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].request.uri, "/aspnet_client/x.aspx");
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use towerwatch_event::Place;
use towerwatch_event::{Event, Timestamp};

use crate::links::{is_framework_child, is_web_server};

/// Pages with at most this many distinct clients are rare.
const RARE_CLIENTS: usize = 2;
/// Timestamps kept per rare page (the oldest go first).
const TIMES_PER_PAGE: usize = 4096;
/// Web-server child processes kept (a working web server starts few).
pub const CHILDREN: usize = 100_000;
/// Addresses remembered per host.
const IPS_PER_HOST: usize = 16;
/// A request logged up to this long before the process (IIS logs at completion, so also after).
const BEFORE_S: i64 = 15;
const AFTER_S: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub time: Timestamp,
    pub server: String,
    pub uri: String,
    pub client: String,
    pub place: Place,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Child {
    pub time: Timestamp,
    pub computer: String,
    pub parent: String,
    pub image: String,
    pub command_line: String,
    pub place: Place,
}

/// A web-shell request and the process it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub request: Request,
    pub child: Child,
}

#[derive(Debug, Default)]
struct Page {
    clients: BTreeSet<String>,
    /// Requests while the page is rare; dropped once it is not.
    requests: Vec<Request>,
}

/// The join's state. Feed every event to [`observe`](Self::observe) (any order, any thread's
/// share: [`merge`](Self::merge) combines them), then [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct WebShellJoin {
    pages: HashMap<(String, String), Page>,
    children: Vec<Child>,
    host_ips: HashMap<String, BTreeSet<String>>,
    /// Web-server child processes not kept because the cap was reached.
    pub children_dropped: u64,
}

/// What one event tells the join, whatever came before it: a dynamic page POSTed to with
/// success, a web-server child process, or an address a host connects from. The join's
/// state is built from these alone, so a worker elsewhere can find them and send them on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Sighting {
    Request(Request),
    Child(Child),
    HostIp { host: String, ip: String },
}

impl Sighting {
    pub fn of(e: &Event) -> Option<Sighting> {
        let channel = e.channel.as_deref().unwrap_or("");
        if channel == "webserver" {
            Self::request(e)
        } else if channel.eq_ignore_ascii_case("Microsoft-Windows-Sysmon/Operational") {
            match e.event_id {
                Some(1) => Self::child(e, "ParentImage", "Image"),
                Some(3) if e.first_str("Initiated") == Some("true") => {
                    let (c, ip) = (e.computer.as_deref()?, e.first_str("SourceIp")?);
                    Some(Sighting::HostIp {
                        host: c.to_ascii_lowercase(),
                        ip: ip.to_string(),
                    })
                }
                _ => None,
            }
        } else if channel == "Security" && e.event_id == Some(4688) {
            Self::child(e, "ParentProcessName", "NewProcessName")
        } else {
            None
        }
    }

    fn request(e: &Event) -> Option<Sighting> {
        let (method, uri, time) = (
            e.first_str("cs-method")?,
            e.first_str("cs-uri-stem")?,
            e.timestamp?,
        );
        if !method.eq_ignore_ascii_case("POST")
            || !is_dynamic(uri)
            || !e.first_str("sc-status").is_some_and(|s| s.starts_with('2'))
        {
            return None;
        }
        // The server by its address (W3C `s-ip`), else by the host the log belongs to (an
        // access log behind a load balancer names no server address).
        let server = match e.first_str("s-ip").filter(|s| !s.is_empty() && *s != "-") {
            Some(ip) => ip.to_string(),
            None => short_name(e.computer.as_deref().unwrap_or("")),
        };
        Some(Sighting::Request(Request {
            time,
            server,
            uri: uri.to_string(),
            client: e.first_str("c-ip").unwrap_or("").to_string(),
            place: Place::of(e),
        }))
    }

    fn child(e: &Event, parent_field: &str, image_field: &str) -> Option<Sighting> {
        let parent = e.first_str(parent_field).filter(|p| is_web_server(p))?;
        // The framework's own work (ASP.NET compiling a page with csc.exe) follows any new
        // page's first request, a deployment's as well as a shell's: no operator typed it.
        if is_framework_child(e.first_str(image_field).unwrap_or("")) {
            return None;
        }
        let (time, computer) = (e.timestamp?, e.computer.as_deref()?);
        Some(Sighting::Child(Child {
            time,
            computer: computer.to_string(),
            parent: parent.to_string(),
            image: e.first_str(image_field).unwrap_or("").to_string(),
            command_line: e.first_str("CommandLine").unwrap_or("").to_string(),
            place: Place::of(e),
        }))
    }
}

fn is_dynamic(uri: &str) -> bool {
    let u = uri.to_ascii_lowercase();
    [
        ".aspx", ".ashx", ".asmx", ".asp", ".jsp", ".jspx", ".php", ".cfm",
    ]
    .iter()
    .any(|x| u.ends_with(x))
}

/// A host name without its domain, lower case: `WEB01.corp.example` is `web01`; an address
/// stays whole.
fn short_name(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    host.split('.').next().unwrap_or(host).to_ascii_lowercase()
}

impl WebShellJoin {
    pub fn observe(&mut self, e: &Event) {
        if let Some(s) = Sighting::of(e) {
            self.absorb(s);
        }
    }

    /// Takes what one event showed ([`Sighting::of`], made here or by a worker elsewhere).
    pub fn absorb(&mut self, sighting: Sighting) {
        match sighting {
            Sighting::Request(r) => self.request(r),
            Sighting::Child(c) => {
                if self.children.len() >= CHILDREN {
                    self.children_dropped += 1;
                } else {
                    self.children.push(c);
                }
            }
            Sighting::HostIp { host, ip } => {
                let ips = self.host_ips.entry(host).or_default();
                if ips.len() < IPS_PER_HOST {
                    ips.insert(ip);
                }
            }
        }
    }

    fn request(&mut self, r: Request) {
        let page = self
            .pages
            .entry((r.server.clone(), r.uri.to_ascii_lowercase()))
            .or_default();
        if page.clients.len() <= RARE_CLIENTS {
            page.clients.insert(r.client.clone());
        }
        if page.clients.len() > RARE_CLIENTS {
            page.requests = Vec::new();
            return;
        }
        if page.requests.len() == TIMES_PER_PAGE {
            page.requests.remove(0);
        }
        page.requests.push(r);
    }

    /// Combines the state another worker built.
    pub fn merge(&mut self, other: WebShellJoin) {
        for (k, p) in other.pages {
            let mine = self.pages.entry(k).or_default();
            mine.clients.extend(p.clients);
            if mine.clients.len() > RARE_CLIENTS {
                mine.requests = Vec::new();
            } else {
                mine.requests.extend(p.requests);
            }
        }
        let room = CHILDREN.saturating_sub(self.children.len());
        self.children_dropped +=
            other.children_dropped + other.children.len().saturating_sub(room) as u64;
        self.children.extend(other.children.into_iter().take(room));
        for (h, ips) in other.host_ips {
            let mine = self.host_ips.entry(h).or_default();
            for ip in ips {
                if mine.len() < IPS_PER_HOST {
                    mine.insert(ip);
                }
            }
        }
    }

    /// Every web-server child process paired with the nearest rare-page POST to one of its
    /// host's addresses, or to its name where the log names no address, within the window,
    /// in time order.
    pub fn finish(mut self) -> Vec<Finding> {
        let mut by_server: BTreeMap<&str, Vec<&Request>> = BTreeMap::new();
        for ((server, _), page) in &self.pages {
            if page.clients.len() <= RARE_CLIENTS {
                by_server
                    .entry(server.as_str())
                    .or_default()
                    .extend(page.requests.iter());
            }
        }
        for list in by_server.values_mut() {
            list.sort_by_key(|r| r.time);
        }
        self.children.sort();
        let mut out = Vec::new();
        for child in &self.children {
            let host = child.computer.to_ascii_lowercase();
            let short = host.split('.').next().unwrap_or(&host).to_string();
            let ips = self.host_ips.get(&host).or_else(|| {
                self.host_ips
                    .iter()
                    .find(|(h, _)| h.split('.').next() == Some(short.as_str()))
                    .map(|(_, v)| v)
            });
            let t = child.time.as_second();
            let best = ips
                .into_iter()
                .flatten()
                .map(String::as_str)
                .chain([short.as_str()])
                .filter_map(|server| by_server.get(server))
                .flat_map(|list| {
                    let lo = list.partition_point(|r| r.time.as_second() < t - BEFORE_S);
                    list[lo..]
                        .iter()
                        .take_while(move |r| r.time.as_second() <= t + AFTER_S)
                })
                .min_by_key(|r| (r.time.as_second() - t).abs());
            if let Some(r) = best {
                out.push(Finding {
                    request: (*r).clone(),
                    child: child.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use towerwatch_event::{Origin, Value};

    fn request(line: u64, t: &str, uri: &str, client: &str) -> Event {
        let mut e = Event::new(Origin::line("iis.log", line));
        e.set_channel("webserver");
        e.timestamp = t.parse().ok();
        for (k, v) in [
            ("cs-method", "POST"),
            ("cs-uri-stem", uri),
            ("sc-status", "200"),
            ("c-ip", client),
            ("s-ip", "10.0.0.5"),
        ] {
            e.push(k, Value::text(v));
        }
        e
    }

    fn host_ip() -> Event {
        let mut e = Event::new(Origin::line("web.jsonl", 1));
        e.set_channel("Microsoft-Windows-Sysmon/Operational");
        e.set_event_id(3);
        e.computer = Some("WEB.corp".into());
        e.push("Initiated", Value::text("true"));
        e.push("SourceIp", Value::text("10.0.0.5"));
        e
    }

    fn child(line: u64, t: &str, parent: &str) -> Event {
        let mut e = Event::new(Origin::line("web.jsonl", line));
        e.set_channel("Security");
        e.set_event_id(4688);
        e.computer = Some("WEB.corp".into());
        e.timestamp = t.parse().ok();
        e.push("ParentProcessName", Value::text(parent));
        e.push(
            "NewProcessName",
            Value::text("C:\\Windows\\System32\\cmd.exe"),
        );
        e
    }

    const W3WP: &str = "C:\\Windows\\System32\\inetsrv\\w3wp.exe";

    #[test]
    fn rare_pages_join_their_processes_within_the_window() {
        let mut j = WebShellJoin::default();
        j.observe(&host_ip());
        j.observe(&request(
            10,
            "2019-03-05T10:00:00Z",
            "/up/shell.aspx",
            "203.0.113.9",
        ));
        // A page many clients use is no web shell, however it lines up.
        for (i, c) in ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
            .iter()
            .enumerate()
        {
            j.observe(&request(
                20 + i as u64,
                "2019-03-05T11:00:00Z",
                "/login.aspx",
                c,
            ));
        }
        j.observe(&child(2, "2019-03-05T10:00:02Z", W3WP)); // joins the shell request
        j.observe(&child(3, "2019-03-05T11:00:01Z", W3WP)); // only the common page is near
        j.observe(&child(4, "2019-03-05T10:30:00Z", W3WP)); // nothing near
        j.observe(&child(
            5,
            "2019-03-05T10:00:03Z",
            "C:\\Windows\\explorer.exe",
        )); // no web server
        let f = j.finish();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].request.place.line, f[0].child.place.line),
            (Some(10), Some(2))
        );
    }

    #[test]
    fn workers_merge_their_state() {
        // One worker saw the shell request, another the host's address and the process.
        let halves = || {
            let (mut a, mut b) = (WebShellJoin::default(), WebShellJoin::default());
            a.observe(&request(
                10,
                "2019-03-05T10:00:00Z",
                "/x.aspx",
                "203.0.113.9",
            ));
            b.observe(&host_ip());
            b.observe(&child(2, "2019-03-05T10:00:01Z", W3WP));
            (a, b)
        };
        let (a, b) = halves();
        let mut joined = WebShellJoin::default();
        joined.merge(a);
        joined.merge(b);
        assert_eq!(joined.finish().len(), 1);
        // Two more clients on a third worker make the page common.
        let mut c = WebShellJoin::default();
        c.observe(&request(
            11,
            "2019-03-05T09:00:00Z",
            "/x.aspx",
            "198.18.0.1",
        ));
        c.observe(&request(
            12,
            "2019-03-05T09:00:01Z",
            "/x.aspx",
            "198.18.0.2",
        ));
        let (mut a, b) = halves();
        a.merge(b);
        a.merge(c);
        assert!(a.finish().is_empty());
    }
}
