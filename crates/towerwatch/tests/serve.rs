//! `towerwatch serve`, end to end: a real server on a random local port, a simulated
//! operator's Windows events shipped over HTTP in batches (plain and gzip, one batch sent
//! twice), the same detections and operations as `hunt` on the same files; and after a
//! SIGKILL, a restarted server still holds every acknowledged event, once.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::server::{init, Server as Running};
use common::{files_under, towerwatch};

/// A server and the admin token every request here carries.
struct Server {
    running: Running,
    token: String,
}

impl Server {
    fn start(data: &Path, key: &Path, token: &str) -> Server {
        let running = Running::start(
            data,
            &[
                "--key-file",
                key.to_str().unwrap(),
                "--min-level",
                "informational",
            ],
        );
        Server {
            running,
            token: token.to_string(),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        self.running
            .request(method, path, Some(&self.token), headers, body)
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", path, &[], b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    fn detections(&self) -> Vec<String> {
        let (status, body) = self.request("GET", "/api/v1/detections", &[], b"");
        assert_eq!(status, 200);
        sorted_lines(&String::from_utf8(body).unwrap())
    }
}

/// A simulated operator's Windows events, and what `hunt` makes of them (with a fixed key).
struct Hunted {
    _tmp: tempfile::TempDir,
    windows: PathBuf,
    key: PathBuf,
    data: PathBuf,
    detections: String,
    operations: serde_json::Value,
}

fn hunted() -> Hunted {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let s = sim.display().to_string();
    towerwatch(&[
        "simulate", "--days", "9", "--waves", "2", "--scale", "0.3", "--out", &s, "-q",
    ]);
    let windows = sim.join("evidence/windows");
    let key = tmp.path().join("key");
    std::fs::write(&key, "a fixed key of sixteen bytes or more").unwrap();
    let report = tmp.path().join("report");
    let out = tmp.path().join("d.jsonl");
    towerwatch(&[
        "hunt",
        windows.to_str().unwrap(),
        "--min-level",
        "informational",
        "--key-file",
        key.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    let detections = std::fs::read_to_string(&out).unwrap();
    let operations = common::json(&report.join("operations.json"));
    assert!(!detections.is_empty());
    assert!(!operations["operations"].as_array().unwrap().is_empty());
    Hunted {
        data: tmp.path().join("data"),
        _tmp: tmp,
        windows,
        key,
        detections,
        operations,
    }
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    v.sort();
    v
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Ships `file` in two batches (the second gzip-compressed); returns the events accepted.
fn ship(server: &Server, file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    let source = file.display().to_string();
    let first = format!("{}\n", lines[..half].join("\n"));
    let second = format!("{}\n", lines[half..].join("\n"));
    let mut accepted = 0;
    for (first_line, body, encoding) in [
        (1, first.into_bytes(), None),
        (half + 1, gzip(second.as_bytes()), Some("gzip")),
    ] {
        let path = format!("/api/v1/events?source={source}&first_line={first_line}");
        let mut headers = vec![("Content-Type", "application/x-ndjson")];
        if let Some(e) = encoding {
            headers.push(("Content-Encoding", e));
        }
        let (status, reply) = server.request("POST", &path, &headers, &body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        let r: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(r["rejected"].as_array().unwrap().len(), 0, "{r}");
        accepted += r["accepted"].as_u64().unwrap();
    }
    accepted
}

#[test]
fn shipped_events_give_the_hunts_detections_and_operations_and_survive_a_kill() {
    let h = hunted();
    let (windows, key, data) = (&h.windows, &h.key, &h.data);
    let want = sorted_lines(&h.detections);
    let want_ops = h.operations.clone();
    let files = files_under(windows);
    let lines: u64 = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count() as u64)
        .sum();
    let token = init(data);
    let live_before;
    {
        let server = Server::start(data, key, &token);
        assert_eq!(server.request("GET", "/healthz", &[], b"").0, 200);
        let accepted: u64 = files.iter().map(|f| ship(&server, f)).sum();
        assert_eq!(accepted, lines);
        // The same batch again: nothing new.
        let (_, reply) = server.request(
            "POST",
            &format!("/api/v1/events?source={}", files[0].display()),
            &[],
            std::fs::read(&files[0]).unwrap().as_slice(),
        );
        let r: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(r["accepted"], 0, "{r}");
        assert!(r["duplicates"].as_u64().unwrap() > 0);
        // What came in is counted for Prometheus.
        let (_, metrics) = server.request("GET", "/metrics", &[], b"");
        let metrics = String::from_utf8(metrics).unwrap();
        let counter = |name: &str| common::server::metric(&metrics, name);
        assert_eq!(counter("towerwatch_events_accepted_total"), lines);
        assert_eq!(counter("towerwatch_events_stored"), lines);
        assert!(counter("towerwatch_events_duplicate_total") > 0);
        let got = server.detections();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "detections differ from the hunt's");
        assert_eq!(server.json("/api/v1/operations"), want_ops);
        live_before = live(&server);
    } // SIGKILL
    let server = Server::start(data, key, &token);
    assert_eq!(server.detections(), want, "after a kill and restart");
    // The live hunt found its detections as the events came in (all but those of the last
    // lateness window, whose events still wait behind the watermark): each is one of the
    // concluded ones; a restarted server finds them again from the store.
    let concluded: std::collections::BTreeSet<String> = want.iter().map(|l| identity(l)).collect();
    assert!(
        live_before.len() * 10 > concluded.len() * 9,
        "{} live of {}",
        live_before.len(),
        concluded.len()
    );
    assert!(
        live_before.is_subset(&concluded),
        "a live detection the hunt does not make"
    );
    assert_eq!(
        live(&server),
        live_before,
        "live detections after a restart"
    );
    // A line that is no event is named, the rest of its batch taken.
    let (status, reply) = server.request(
        "POST",
        "/api/v1/events?source=bad.jsonl&first_line=7",
        &[],
        b"{\"EventID\": 1, \"Channel\": \"x\"}\nnot json\n",
    );
    assert_eq!(status, 200);
    let r: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["rejected"][0]["line"].as_u64()),
        (Some(1), Some(8))
    );
}

/// What makes a detection one: its rule and its record.
fn identity(line: &str) -> String {
    let d: serde_json::Value = serde_json::from_str(line).unwrap();
    format!(
        "{} {} {} {}",
        d["rule_id"], d["source"], d["line"], d["record_id"]
    )
}

/// The live hunt's detections, read in two pages (`from`, then `X-Next`), by identity.
fn live(server: &Server) -> std::collections::BTreeSet<String> {
    // The live hunt runs beside ingest: wait until it has taken every acknowledged event.
    let started = std::time::Instant::now();
    loop {
        let (status, head, _) = server.running.exchange(
            "GET",
            "/api/v1/detections/live?from=999999999",
            Some(&server.token),
            &[],
            b"",
        );
        assert_eq!(status, 200);
        if head.contains("x-pending: 0") {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "the live hunt is stuck: {head}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, first) = server.request("GET", "/api/v1/detections/live", &[], b"");
    assert_eq!(status, 200);
    let first = String::from_utf8(first).unwrap();
    let n = first.lines().count();
    let (_, rest) = server.request(
        "GET",
        &format!("/api/v1/detections/live?from={}", n / 2),
        &[],
        b"",
    );
    let rest = String::from_utf8(rest).unwrap();
    assert_eq!(
        rest.lines().count(),
        n - n / 2,
        "the second page starts at from"
    );
    let all: std::collections::BTreeSet<String> = first.lines().map(identity).collect();
    assert_eq!(all.len(), n, "a live detection twice");
    all
}

/// A detection without where it was read (a bulk document has no file and line). Stories
/// order records of one time by the host, channel and record id a Windows event carries, and
/// tie a process's Sysmon and Security creations by the log that recorded each, so neither
/// the operations nor the routine's verdicts depend on how events were grouped into files or
/// requests.
fn without_place(line: &str) -> String {
    let mut d: serde_json::Value = serde_json::from_str(line).unwrap();
    for k in ["source", "line", "record_id"] {
        d.as_object_mut().unwrap().remove(k);
    }
    if let Some(events) = d["event"].get_mut("events") {
        *events = serde_json::Value::Null;
    }
    d.to_string()
}

/// What an operation is, whatever the events' places: id, wave, severity, score, hosts,
/// tactics, root cause, counts.
fn story(ops: &serde_json::Value) -> Vec<String> {
    ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {} {} {} {} {} {} {} {} {}",
                o["id"],
                o["wave"],
                o["severity"],
                o["score"],
                o["hosts"],
                o["tactics"],
                o["root_cause"]["kind"],
                o["root_cause"]["host"],
                o["detections"],
                o["events"].as_array().map_or(0, Vec::len)
            )
        })
        .collect()
}

#[test]
fn winlogbeat_style_bulk_requests_give_the_hunts_results() {
    let h = hunted();
    let (windows, key, data) = (&h.windows, &h.key, &h.data);
    let mut want: Vec<String> = h.detections.lines().map(without_place).collect();
    want.sort();
    let want_ops = story(&h.operations);

    let token = init(data);
    let server = Server::start(data, key, &token);
    // The handshake a Beat makes before it sends: who is there, which version, which product.
    let (status, info) = server.request("GET", "/", &[], b"");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert!(info["version"]["number"].as_str().unwrap().starts_with('8'));
    let mut sent = 0u64;
    let mut first_batch = Vec::new();
    for file in files_under(windows) {
        let text = std::fs::read_to_string(&file).unwrap();
        for chunk in text.lines().collect::<Vec<_>>().chunks(400) {
            let mut body = String::new();
            for doc in chunk {
                body.push_str("{\"create\":{\"_index\":\"winlogbeat-8.11.0\"}}\n");
                body.push_str(doc);
                body.push('\n');
            }
            let (status, reply) = server.request(
                "POST",
                "/_bulk",
                &[
                    ("Content-Type", "application/x-ndjson"),
                    ("Content-Encoding", "gzip"),
                ],
                &gzip(body.as_bytes()),
            );
            assert_eq!(status, 200);
            let r: serde_json::Value = serde_json::from_slice(&reply).unwrap();
            assert_eq!(r["errors"], false, "{r}");
            assert_eq!(r["items"].as_array().unwrap().len(), chunk.len());
            sent += chunk.len() as u64;
            if first_batch.is_empty() {
                first_batch = body.into_bytes();
            }
        }
    }
    assert!(sent > 0);
    // A shipper's retry of a batch: every item already held, nothing new.
    let (_, reply) = server.request("POST", "/winlogbeat-8.11.0/_bulk", &[], &first_batch);
    let r: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert!(
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["create"]["status"] == 200),
        "{r}"
    );
    // A document that is no event is refused alone, as Elasticsearch refuses a bad document.
    let (_, reply) = server.request(
        "POST",
        "/_bulk",
        &[],
        b"{\"index\":{}}\n[1, 2]\n{\"delete\":{\"_id\":\"x\"}}\n",
    );
    let r: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(r["errors"], true);
    assert_eq!(r["items"][0]["index"]["status"], 400);
    assert_eq!(r["items"][1]["delete"]["status"], 400);

    let (_, body) = server.request("GET", "/api/v1/detections", &[], b"");
    let mut got: Vec<String> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(without_place)
        .collect();
    got.sort();
    assert_eq!(got.len(), want.len());
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
        panic!("detections differ from the hunt's:\n{g}\n{w}");
    }
    assert_eq!(story(&server.json("/api/v1/operations")), want_ops);
}

#[test]
fn a_server_killed_while_ship_sends_loses_nothing_acknowledged_and_counts_nothing_twice() {
    let h = hunted();
    let (windows, key, data) = (&h.windows, &h.key, &h.data);
    let want = sorted_lines(&h.detections);
    let admin = init(data);
    // A port that stays the same across the restart.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let extra = [
        "--key-file",
        key.to_str().unwrap(),
        "--min-level",
        "informational",
    ];
    let first = Running::start_on(data, &listen, &extra);
    let (_, reply) = first.request(
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        &[],
        br#"{"name": "shipper", "role": "ingest"}"#,
    );
    let ingest: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    let ingest = ingest["token"].as_str().unwrap().to_string();
    let state = data.parent().unwrap().join("offsets.json");
    let ship = |extra: &[&str]| {
        let mut args = vec![
            "ship".to_string(),
            windows.display().to_string(),
            "--to".into(),
            format!("http://{listen}"),
            "--token".into(),
            ingest.clone(),
            "--state".into(),
            state.display().to_string(),
            "--batch".into(),
            "100".into(),
            "--retry-for".into(),
            "120".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        std::process::Command::new(env!("CARGO_BIN_EXE_towerwatch"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let shipper = ship(&[]);
    // Kill the server once some batches are acknowledged, and start it again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !state.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was acknowledged"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(first); // SIGKILL
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = Running::start_on(data, &listen, &extra);
    let out = shipper.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let (_, body) = second.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    let got = sorted_lines(&String::from_utf8(body).unwrap());
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "detections differ from the hunt's after the kill"
    );
    // Run again: everything is acknowledged already, nothing is sent.
    let again = ship(&[]).wait_with_output().unwrap();
    assert!(
        common::text(&again.stdout).contains(" 0 lines acknowledged"),
        "{}",
        common::text(&again.stdout)
    );
}

/// A detection without where it was read (a file's record, a request's line).
fn placeless(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            let mut d: serde_json::Value = serde_json::from_str(l).unwrap();
            let d = d.as_object_mut().unwrap();
            d.remove("source");
            d.remove("line");
            if let Some(events) = d
                .get_mut("event")
                .and_then(|e| e.get_mut("events"))
                .and_then(|e| e.as_array_mut())
            {
                for e in events {
                    e.as_object_mut().unwrap().remove("line");
                }
            }
            serde_json::to_string(d).unwrap()
        })
        .collect();
    v.sort();
    v
}

/// `ship` with an ingest token to `server`, keeping offsets in `state`.
fn ship_command(server: &Running, token: &str, state: &Path, paths: &[&Path]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_towerwatch"));
    c.arg("ship")
        .args(paths)
        .args(["--to", &format!("http://{}", server.addr), "--token", token])
        .arg("--state")
        .arg(state)
        .args(["--batch", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn ingest_token(server: &Running, admin: &str) -> String {
    server.issue_token(admin, "shipper", "ingest")
}

#[test]
fn shipped_evtx_files_give_the_hunts_detections() {
    // The Sigma regression set's EVTX files: 202 attacks' logs, of many hosts.
    let tmp = tempfile::tempdir().unwrap();
    let evtx = tmp.path().join("evtx");
    std::fs::create_dir(&evtx).unwrap();
    let regression = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sigma-regression");
    for f in files_under(&regression) {
        if f.extension().is_some_and(|e| e == "evtx") {
            let name = f.parent().unwrap().file_name().unwrap();
            std::fs::copy(&f, evtx.join(name).with_extension("evtx")).unwrap();
        }
    }
    let out = tmp.path().join("h.jsonl");
    towerwatch(&[
        "hunt",
        evtx.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    let want = std::fs::read_to_string(&out).unwrap();
    let data = tmp.path().join("data");
    let admin = init(&data);
    let server = Running::start(&data, &[]);
    let token = ingest_token(&server, &admin);
    let state = tmp.path().join("offsets.json");
    let shipped = ship_command(&server, &token, &state, &[&evtx])
        .output()
        .unwrap();
    assert!(
        shipped.status.success(),
        "{}",
        common::text(&shipped.stderr)
    );
    // Every record went.
    let events: u64 = common::text(&shipped.stdout)
        .split(" files, ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let stored: u64 = server_json(&server, &admin, "/api/v1/sources")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, events);
    assert!(common::text(&shipped.stdout).contains("; 0 files skipped"));
    let (status, got) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    assert_eq!(status, 200);
    let (got, want) = (
        placeless(&String::from_utf8(got).unwrap()),
        placeless(&want),
    );
    assert!(want.len() > 150);
    assert_eq!(got.len(), want.len());
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
        panic!("detections differ from the hunt's:\n{g}\n{w}");
    }
}

fn server_json(server: &Running, token: &str, path: &str) -> serde_json::Value {
    let (status, body) = server.request("GET", path, Some(token), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Events stored per source.
fn stored(server: &Running, token: &str) -> std::collections::BTreeMap<String, u64> {
    server_json(server, token, "/api/v1/sources")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits (up to a minute) until the server holds `want`.
fn wait_for(server: &Running, token: &str, want: &std::collections::BTreeMap<String, u64>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = stored(server, token);
        if &got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stored {got:?}, waited for {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn terminate(child: std::process::Child) -> std::process::Output {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

/// Detections without the name of the file they were read from (lines and records kept).
fn sourceless(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            let mut d: serde_json::Value = serde_json::from_str(l).unwrap();
            d.as_object_mut().unwrap().remove("source");
            serde_json::to_string(&d).unwrap()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn ship_follow_sends_growing_logs_once_across_restarts_and_rotations() {
    let h = hunted();
    let files = files_under(&h.windows);
    let text = |i: usize| std::fs::read_to_string(&files[i]).unwrap();
    let (a, b, c) = (text(0), text(1), text(2));
    // A blank line in a: the lines after it keep their numbers.
    let mut a: Vec<&str> = a.lines().collect();
    a.insert(3, "");
    let b: Vec<&str> = b.lines().collect();
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let (log_a, log_b) = (live.join("a.jsonl"), live.join("b.jsonl"));
    let name = |p: &Path| p.display().to_string();
    // Half of a, and the start of a line still being written.
    let half = a.len() / 2;
    let (head, tail) = a[half].split_at(a[half].len() / 2);
    append(&log_a, &format!("{}\n{head}", a[..half].join("\n")));
    let data = tmp.path().join("data");
    let admin = init(&data);
    let server = Running::start(&data, &[]);
    let token = ingest_token(&server, &admin);
    let state = tmp.path().join("offsets.json");
    let follow = || {
        ship_command(&server, &token, &state, &[&live])
            .args(["--follow", "--poll-ms", "50"])
            .spawn()
            .unwrap()
    };
    let shipper = follow();
    let events = |lines: &[&str]| lines.iter().filter(|l| !l.is_empty()).count() as u64;
    let mut want = std::collections::BTreeMap::from([(name(&log_a), events(&a[..half]))]);
    wait_for(&server, &admin, &want);
    // The line is finished, more come, and a new file appears.
    append(&log_a, &format!("{tail}\n{}\n", a[half + 1..].join("\n")));
    append(&log_b, &format!("{}\n", b[..10].join("\n")));
    want.insert(name(&log_a), events(&a));
    want.insert(name(&log_b), 10);
    wait_for(&server, &admin, &want);
    // Stopped (SIGTERM) and started again while the log grew: it resumes where it was.
    let out = terminate(shipper);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    append(&log_b, &format!("{}\n", b[10..].join("\n")));
    let shipper = follow();
    want.insert(name(&log_b), b.len() as u64);
    wait_for(&server, &admin, &want);
    // b is rotated (renamed aside, still written to for a moment, a new b begun): the old
    // file's last lines go on under its name, the new one is b#2, the renamed one is not
    // shipped again.
    let (more, fresh) = (&a[4..9], &a[9..16]);
    let rotated = live.join("b.jsonl.1");
    std::fs::rename(&log_b, &rotated).unwrap();
    append(&rotated, &format!("{}\n", more.join("\n")));
    append(&log_b, &format!("{}\n", fresh.join("\n")));
    want.insert(name(&log_b), (b.len() + more.len()) as u64);
    want.insert(format!("{}#2", name(&log_b)), fresh.len() as u64);
    wait_for(&server, &admin, &want);
    // a is replaced by another file written elsewhere: shipped again under a new name.
    let next = tmp.path().join("a.next");
    std::fs::write(&next, &c).unwrap();
    std::fs::rename(&next, &log_a).unwrap();
    want.insert(format!("{}#2", name(&log_a)), c.lines().count() as u64);
    wait_for(&server, &admin, &want);
    let out = terminate(shipper);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert!(
        common::text(&out.stderr).contains("was replaced or truncated: shipped again as"),
        "{}",
        common::text(&out.stderr)
    );
    // What the server made of it is what `hunt` makes of the files as they were shipped,
    // line numbers included.
    let whole = tmp.path().join("whole");
    std::fs::create_dir(&whole).unwrap();
    let write = |file: &str, lines: &[&str]| {
        std::fs::write(whole.join(file), format!("{}\n", lines.join("\n"))).unwrap()
    };
    write("a.jsonl", &a);
    write("b.jsonl", &[&b[..], more].concat());
    write("b2.jsonl", fresh);
    std::fs::write(whole.join("c.jsonl"), &c).unwrap();
    let out = tmp.path().join("h.jsonl");
    towerwatch(&[
        "hunt",
        whole.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    let (_, got) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    let got = sourceless(&String::from_utf8(got).unwrap());
    let want = sourceless(&std::fs::read_to_string(&out).unwrap());
    assert!(!want.is_empty());
    let differ = got.iter().zip(&want).find(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && differ.is_none(),
        "{} detections, the hunt's {}; first difference: {:.600?}",
        got.len(),
        want.len(),
        differ
    );
}

/// `n` JSON lines of logons, one host each.
fn logons(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"EventID\":4624,\"Channel\":\"Security\",\"Computer\":\"WS{i}\",\"TimeCreated\":\"2024-05-01T10:00:0{i}Z\"}}\n"))
        .collect()
}

/// A temp dir, a server with its data in it, its admin token and an ingest token.
fn a_server_and_its_shipper() -> (tempfile::TempDir, Running, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = init(&data);
    let server = Running::start(&data, &[]);
    let token = ingest_token(&server, &admin);
    (tmp, server, admin, token)
}

#[test]
fn ship_follow_looks_again_at_a_file_it_could_not_read() {
    // A followed file that is not (yet) a log it reads, or is gone for a moment between the
    // listing and the open (a rotation), is looked at again, not left for the run.
    let (tmp, server, admin, token) = a_server_and_its_shipper();
    let live = tmp.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let log = live.join("a.jsonl");
    std::fs::write(&log, b"\x00\x01\x02 not a log yet\n").unwrap();
    let shipper = ship_command(&server, &token, &tmp.path().join("offsets.json"), &[&live])
        .args(["--follow", "--poll-ms", "50"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let aside = tmp.path().join("a.next");
    std::fs::write(&aside, logons(3)).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    let want = std::collections::BTreeMap::from([(log.display().to_string(), 3)]);
    wait_for(&server, &admin, &want);
    let out = terminate(shipper);
    assert!(
        common::text(&out.stderr).contains("tried again at the next look"),
        "{}",
        common::text(&out.stderr)
    );
}

#[test]
fn ship_takes_a_hard_link_for_another_file_not_for_the_file_moved() {
    let (tmp, server, admin, token) = a_server_and_its_shipper();
    let state = tmp.path().join("offsets.json");
    let (a, link) = (tmp.path().join("a.jsonl"), tmp.path().join("link.jsonl"));
    std::fs::write(&a, logons(5)).unwrap();
    let ship = |paths: &[&Path]| {
        let out = ship_command(&server, &token, &state, paths)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::text(&out.stderr));
    };
    ship(&[&a]);
    std::fs::hard_link(&a, &link).unwrap();
    // Twice: a link taken for the file moved would reset a, shipped again the next time.
    ship(&[&a, &link]);
    ship(&[&a, &link]);
    let name = |p: &Path| p.display().to_string();
    let want = std::collections::BTreeMap::from([(name(&a), 5), (name(&link), 5)]);
    wait_for(&server, &admin, &want);
}

#[test]
fn what_came_in_longer_ago_than_the_retention_is_deleted_and_the_audit_log_kept() {
    let h = hunted();
    let files = files_under(&h.windows);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = init(&data);
    let server = Running::start(&data, &["--retain", "8s"]);
    let ingest = ingest_token(&server, &admin);
    let send = |path: &str, body: &[u8]| {
        let (status, reply) = server.request("POST", path, Some(&ingest), &[], body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    };
    let old = format!("/api/v1/events?source={}", files[0].display());
    send(&old, &std::fs::read(&files[0]).unwrap());
    send(
        "/api/v1/lines?source=u_ex190305.log",
        b"#Fields: date time cs-uri-stem\n2019-03-05 14:11:00 /x.aspx\n",
    );
    assert_eq!(stored(&server, &admin).len(), 2);
    // Gone once older than the retention, text log included.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !stored(&server, &admin).is_empty() {
        assert!(std::time::Instant::now() < deadline, "nothing expired");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // What comes in now is what the results are made of: every other host's events.
    let rest = tmp.path().join("rest");
    std::fs::create_dir(&rest).unwrap();
    for f in &files[1..] {
        let name = f.file_name().unwrap();
        std::fs::copy(f, rest.join(name)).unwrap();
        let source = rest.join(name).display().to_string();
        send(
            &format!("/api/v1/events?source={source}"),
            &std::fs::read(f).unwrap(),
        );
    }
    let out = tmp.path().join("h.jsonl");
    towerwatch(&[
        "hunt",
        rest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    let (_, got) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    let want = sorted_lines(&std::fs::read_to_string(&out).unwrap());
    assert!(!want.is_empty());
    let got = sorted_lines(&String::from_utf8(got).unwrap());
    let differ = got.iter().zip(&want).find(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && differ.is_none(),
        "{} detections, the hunt's {}; first difference: {:.400?}",
        got.len(),
        want.len(),
        differ
    );
    let metrics = server.request("GET", "/metrics", Some(&admin), &[], b"").1;
    let metrics = String::from_utf8(metrics).unwrap();
    let expired = common::server::metric(&metrics, "towerwatch_expired_total");
    let old_lines = std::fs::read_to_string(&files[0]).unwrap().lines().count() as u64;
    assert!(expired >= old_lines + 2, "{expired} expired");
    // The audit log still says the ingest token was issued.
    let audit = server_json(&server, &admin, "/api/v1/audit");
    assert!(audit.to_string().contains("shipper"), "{audit}");
}

const QUSER_RULE: &str = r"title: Session Enumeration With Quser
id: 7f0c3e56-1111-4a8e-9c1e-2b7d0c9e5a11
status: experimental
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\quser.exe'
    condition: selection
level: medium
";

#[test]
fn a_retro_hunt_runs_new_rules_over_the_stored_events_as_hunt_would() {
    let h = hunted();
    let files = files_under(&h.windows);
    let tmp = tempfile::tempdir().unwrap();
    let rule = tmp.path().join("quser.yml");
    std::fs::write(&rule, QUSER_RULE).unwrap();
    let out = tmp.path().join("h.jsonl");
    towerwatch(&[
        "hunt",
        h.windows.to_str().unwrap(),
        "--rules",
        rule.to_str().unwrap(),
        "--key-file",
        h.key.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    let want = sorted_lines(&std::fs::read_to_string(&out).unwrap());
    assert!(want.len() > 2, "the simulation's admins use quser");
    let token = init(&h.data);
    let server = Server::start(&h.data, &h.key, &token);
    for f in &files {
        ship(&server, f);
    }
    let analyst = token_for_role(&server, "analyst");
    let viewer = token_for_role(&server, "viewer");
    let post = |token: &str, query: &str, rules: &str| {
        server.running.request(
            "POST",
            &format!("/api/v1/retro{query}"),
            Some(token),
            &[],
            rules.as_bytes(),
        )
    };
    assert_eq!(post(&viewer, "", QUSER_RULE).0, 403);
    let (status, reply) = post(&analyst, "", QUSER_RULE);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["rules"], 1);
    let lines = |v: &serde_json::Value| -> Vec<String> {
        let mut l: Vec<String> = v["detections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| serde_json::to_string(d).unwrap())
            .collect();
        l.sort();
        l
    };
    assert_eq!(lines(&reply), want);
    // Within a window of event time: the hunt's detections in it.
    let times: Vec<jiff::Timestamp> = want
        .iter()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            d["timestamp"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    let (from, to) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    let (_, windowed) = post(&analyst, &format!("?from={from}&to={to}"), QUSER_RULE);
    let windowed: serde_json::Value = serde_json::from_slice(&windowed).unwrap();
    let inside = times.iter().filter(|t| *t >= from && *t < to).count();
    assert_eq!(windowed["detections"].as_array().unwrap().len(), inside);
    assert!(inside < want.len());
    // A rule that cannot be used is named with where and why.
    let (status, reply) = post(&analyst, "", "title: broken\ndetection: [\n");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&reply).contains("retro.yml"));
    // On the record: who ran which rules.
    let audit = server.json("/api/v1/audit").to_string();
    assert!(audit.contains("Session Enumeration With Quser"), "{audit}");
    // The same from the command line, beside the running server.
    let cli = tmp.path().join("cli.jsonl");
    let ran = towerwatch(&[
        "retro",
        rule.to_str().unwrap(),
        "--data",
        h.data.to_str().unwrap(),
        "--key-file",
        h.key.to_str().unwrap(),
        "-o",
        cli.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{}", common::text(&ran.stderr));
    assert_eq!(sorted_lines(&std::fs::read_to_string(&cli).unwrap()), want);
}

fn token_for_role(server: &Server, role: &str) -> String {
    let name = format!("{role} one");
    server.running.issue_token(&server.token, &name, role)
}

#[test]
fn kept_in_postgresql_the_results_are_the_same_and_survive_a_kill() {
    let h = hunted();
    let pg = towerwatch_testkit::LocalPostgres::start("");
    let url = pg.url("postgres");
    let data = h.data.to_str().unwrap();
    let out = towerwatch(&["serve", "--data", data, "--database", &url, "init"]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let token = common::text(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tw_"))
        .unwrap()
        .to_string();
    let start = || Server {
        running: Running::start(
            &h.data,
            &[
                "--database",
                &url,
                "--key-file",
                h.key.to_str().unwrap(),
                "--min-level",
                "informational",
            ],
        ),
        token: token.clone(),
    };
    let files = files_under(&h.windows);
    let lines: u64 = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count() as u64)
        .sum();
    let want = sorted_lines(&h.detections);
    {
        let server = start();
        let accepted: u64 = files.iter().map(|f| ship(&server, f)).sum();
        assert_eq!(accepted, lines);
        assert_eq!(server.detections(), want);
        assert_eq!(server.json("/api/v1/operations"), h.operations);
    } // SIGKILL
    let server = start();
    assert_eq!(server.detections(), want, "after a kill and restart");
    // Everything is in PostgreSQL, nothing in the data directory.
    assert_eq!(
        pg.psql("SELECT count(*) FROM events"),
        Ok(lines.to_string())
    );
    assert!(!h.data.join("events.sqlite").exists());
    // The audit log refuses change there too.
    for change in [
        "DELETE FROM audit",
        "UPDATE audit SET who = 'x'",
        "TRUNCATE audit",
    ] {
        let refused = pg.psql(change).unwrap_err();
        assert!(refused.contains("append-only"), "{change}: {refused}");
    }
    let audit = server.json("/api/v1/audit").to_string();
    assert!(audit.contains("first admin"), "{audit}");
}

#[test]
fn a_last_line_without_its_newline_is_sent_and_never_split_by_a_later_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = init(&data);
    let server = Running::start(&data, &[]);
    let token = ingest_token(&server, &admin);
    let state = tmp.path().join("offsets.json");
    let log = tmp.path().join("x.jsonl");
    let event =
        |i: u32| format!(r#"{{"EventID": 4624, "Channel": "Security", "Computer": "H{i}"}}"#);
    let third = event(3);
    let (head, tail) = third.split_at(20);
    append(&log, &format!("{}\n{}\n{head}", event(1), event(2)));
    let run = || {
        ship_command(&server, &token, &state, &[&log])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", common::text(&first.stderr));
    // The half line went and was no event; the two whole ones are stored.
    assert!(
        common::text(&first.stderr).contains(":3: not JSON"),
        "{}",
        common::text(&first.stderr)
    );
    let source = log.display().to_string();
    wait_for(
        &server,
        &admin,
        &std::collections::BTreeMap::from([(source.clone(), 2)]),
    );
    // Finished later, with one more: line 3 whole, line 4 (not a line 3 and a 4 and a 5).
    append(&log, &format!("{tail}\n{}\n", event(4)));
    let second = run();
    assert!(second.status.success(), "{}", common::text(&second.stderr));
    wait_for(
        &server,
        &admin,
        &std::collections::BTreeMap::from([(source, 4)]),
    );
}
