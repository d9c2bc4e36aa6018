//! The hunt past one machine, end to end, on a real `nats-server -js` and a real PostgreSQL
//! (each on a random port in a temp dir): the default simulation shipped to JetStream,
//! judged by two workers, concluded by one story builder, gives the detections and the
//! operations (each wave one operation) of `hunt` on the same files — with one worker
//! killed by SIGKILL while events flow, the story builder killed and started again, and
//! NATS, then PostgreSQL, down for a moment; and `serve --fleet` shows the same results.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::Server;
use common::towerwatch;
use towerwatch_testkit::{LocalNats, LocalPostgres};

const BIN: &str = env!("CARGO_BIN_EXE_towerwatch");

/// A fleet process, what it says kept in a file.
fn start(args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(BIN)
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

fn sorted(lines: &str) -> Vec<String> {
    let mut v: Vec<String> = lines.lines().map(String::from).collect();
    v.sort();
    v
}

/// `serve --fleet` over `database` (its data in `data`), with the hunt's `context`, and its
/// first admin token.
fn serve_fleet(data: &Path, database: &str, context: &[String]) -> (Server, String) {
    serve_fleet_with(data, database, context, &[])
}

/// As [`serve_fleet`], with `extra` arguments.
fn serve_fleet_with(
    data: &Path,
    database: &str,
    context: &[String],
    extra: &[&str],
) -> (Server, String) {
    let data_arg = data.display().to_string();
    let init = towerwatch(&["serve", "--data", &data_arg, "--database", database, "init"]);
    let admin = common::text(&init.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tw_"))
        .expect("a token is printed")
        .to_string();
    let mut args = vec!["--database", database, "--fleet"];
    args.extend(context.iter().map(String::as_str));
    args.extend(extra);
    (Server::start(data, &args), admin)
}

/// `f` run to its end on a runtime of its own.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Events JetStream delivered on partitions `ps` and nobody acknowledged yet.
fn unacknowledged(url: &str, ps: &[u32]) -> usize {
    block_on(async {
        let js = towerwatch_fleet::connect(&url.into()).await.unwrap();
        let mut n = 0;
        for &p in ps {
            let ack_wait = Duration::from_secs(3);
            let mut c = towerwatch_fleet::worker::partition_consumer(&js, p, ack_wait)
                .await
                .unwrap();
            n += c.info().await.unwrap().num_ack_pending;
        }
        n
    })
}

/// Waits until `ok` holds, or fails with `what` and the logs.
fn wait_for(what: &str, limit: Duration, logs: &[&Path], mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        if Instant::now() > until {
            let logs: Vec<String> = logs
                .iter()
                .map(|p| {
                    format!(
                        "{}:\n{}",
                        p.display(),
                        std::fs::read_to_string(p).unwrap_or_default()
                    )
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_workers_and_a_story_builder_give_the_hunts_results_through_kills_and_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s);
    let arg = |s: &str| p(s).display().to_string();
    towerwatch(&["simulate", "--out", &arg("sim"), "-q"]);
    std::fs::write(p("key"), "a fixed key of sixteen bytes or more").unwrap();
    let context: Vec<String> = [
        "--min-level",
        "informational",
        "--key-file",
        &arg("key"),
        "--assets",
        &arg("sim/context/assets.csv"),
        "--register",
        &arg("sim/context/rd_requests.csv"),
        "--cdr",
        &arg("sim/cdr"),
    ]
    .map(String::from)
    .to_vec();

    // What `hunt` makes of the same files.
    let mut hunt = vec!["hunt".to_string(), arg("sim/evidence")];
    hunt.extend(context.iter().cloned());
    hunt.extend(["--report", &arg("report"), "-o", &arg("want.jsonl"), "-q"].map(String::from));
    towerwatch(&hunt.iter().map(String::as_str).collect::<Vec<_>>());
    let want = sorted(&std::fs::read_to_string(p("want.jsonl")).unwrap());
    let want_ops = common::json(&p("report/operations.json"));
    let waves = common::json(&p("sim/truth/campaign.json"))["waves"]
        .as_array()
        .unwrap()
        .len();
    let ops = want_ops["operations"].as_array().unwrap();
    assert_eq!(ops.len(), waves, "hunt: each wave one operation");
    let events = common::text(&towerwatch(&["dump", &arg("sim/evidence")]).stdout)
        .lines()
        .count() as u64;

    let mut nats = LocalNats::start();
    let nats_url = nats.url();
    let mut pg = LocalPostgres::start("");
    let fleet = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut a = vec![cmd.to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(["--nats", &nats_url, "--ack-wait", "3"].map(String::from));
        a.extend(context.iter().cloned());
        a
    };
    let builder_args = fleet(
        "story-builder",
        &["--database", &pg.url("postgres"), "--settle-ms", "500"],
    );
    let (b1, b2, w0, w1) = (
        p("builder1.log"),
        p("builder2.log"),
        p("w0.log"),
        p("w1.log"),
    );
    let mut builder = start(&builder_args, &b1);
    let mut worker0 = start(&fleet("worker", &["--index", "0", "--workers", "2"]), &w0);
    let worker1 = start(&fleet("worker", &["--index", "1", "--workers", "2"]), &w1);
    let logs = [b1.as_path(), b2.as_path(), w0.as_path(), w1.as_path()];

    let ship_log = p("ship.log");
    let mut ship = Command::new(BIN)
        .args([
            "ship",
            "--nats",
            &nats_url,
            "--state",
            &arg("ship.json"),
            &arg("sim/evidence"),
        ])
        .stdout(std::fs::File::create(&ship_log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let kept = |pg: &LocalPostgres| -> u64 {
        pg.psql("SELECT count(*) FROM fleet_facts")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    // Mid-stream: worker 0 is killed (SIGKILL) with events in hand, the story builder is
    // killed and started again, and NATS, then PostgreSQL, are down for a moment.
    wait_for("the first facts", Duration::from_secs(120), &logs, || {
        kept(&pg) > events / 5
    });
    // Worker 0 is stopped first and killed only once JetStream has delivered it events it
    // has not acknowledged: those must go to worker 1.
    let stopped = Command::new("kill")
        .args(["-STOP", &worker0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    wait_for(
        "events in worker 0's hands",
        Duration::from_secs(60),
        &logs,
        || unacknowledged(&nats_url, &[0, 2, 4, 6]) > 0,
    );
    worker0.kill().unwrap();
    worker0.wait().unwrap();
    builder.kill().unwrap();
    builder.wait().unwrap();
    let builder = start(&builder_args, &b2);
    nats.stop();
    std::thread::sleep(Duration::from_secs(2));
    nats.start_again();
    let before = kept(&pg);
    wait_for("more facts", Duration::from_secs(120), &logs, || {
        kept(&pg) > before
    });
    pg.stop();
    std::thread::sleep(Duration::from_secs(2));
    pg.start_again();
    assert!(ship.wait().unwrap().success(), "ship failed");
    let shipped = std::fs::read_to_string(&ship_log).unwrap();
    assert!(
        shipped.contains(&format!("{events} events stored")),
        "{shipped}"
    );

    let concluded = |pg: &LocalPostgres| -> bool {
        pg.psql("SELECT facts FROM fleet_results")
            .is_ok_and(|s| s == events.to_string())
    };
    wait_for(
        "every event concluded",
        Duration::from_secs(300),
        &logs,
        || kept(&pg) == events && concluded(&pg),
    );
    // Every event once: as many facts as events, the hunt's detections (none twice) and its
    // operations, exactly.
    let got = sorted(&pg.psql("SELECT line FROM fleet_detections").unwrap());
    assert_eq!(got.len(), want.len(), "detections");
    assert!(got == want, "the detections differ from hunt's");
    let got_ops: serde_json::Value =
        serde_json::from_str(&pg.psql("SELECT operations FROM fleet_results").unwrap()).unwrap();
    assert!(got_ops == want_ops, "the operations differ from hunt's");
    // The builder met PostgreSQL's absence, and went on.
    let b2_log = std::fs::read_to_string(&b2).unwrap();
    assert!(
        b2_log.contains("cannot keep facts")
            || b2_log.contains("cannot conclude now")
            || b2_log.contains("PostgreSQL connection"),
        "{b2_log}"
    );
    // Worker 0's partitions were taken over by worker 1.
    let w1_log = std::fs::read_to_string(&w1).unwrap();
    assert!(w1_log.contains("adopting partition"), "{w1_log}");

    for mut c in [builder, worker1] {
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        assert!(c.wait().unwrap().success());
    }
    // Worker 1 judged again what worker 0 had in hand when it was killed.
    let w1_log = std::fs::read_to_string(&w1).unwrap();
    let again: u64 = w1_log
        .split("events judged (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{w1_log}"));
    assert!(again > 0, "{w1_log}");

    // `serve --fleet` shows what the builder kept: the hunt's detections, operations and
    // exposure over its API; events sent to it are refused (they go to JetStream).
    let (server, admin) = serve_fleet(&p("serve"), &pg.url("postgres"), &context);
    let get = |path: &str| {
        let (status, body) = server.request("GET", path, Some(&admin), &[], b"");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        body
    };
    let shown = sorted(&String::from_utf8(get("/api/v1/detections")).unwrap());
    assert!(
        shown == want,
        "serve --fleet: the detections differ from hunt's"
    );
    let shown: serde_json::Value = serde_json::from_slice(&get("/api/v1/operations")).unwrap();
    assert!(
        shown == want_ops,
        "serve --fleet: the operations differ from hunt's"
    );
    let shown: serde_json::Value = serde_json::from_slice(&get("/api/v1/exposure")).unwrap();
    assert!(!shown.is_null(), "the simulation's audit shows an exposure");
    assert!(
        shown == common::json(&p("report/exposure.json")),
        "serve --fleet: the exposure differs from hunt's"
    );
    // Events and retro-hunts go elsewhere: refused once the caller may send them.
    for path in [
        "/api/v1/events?source=a.jsonl",
        "/api/v1/lines?source=a.log",
        "/_bulk",
        "/api/v1/retro",
    ] {
        let (status, _) = server.request("POST", path, None, &[], b"{}\n");
        assert_eq!(status, 401, "{path} without a token");
        let (status, _) = server.request("POST", path, Some(&admin), &[], b"{}\n");
        assert_eq!(status, 409, "{path} sent to serve --fleet");
    }
    // An analyst reveals an exposed subscriber: the number is found in the facts the
    // workers judged, it is the one behind the pseudonym, and the reveal is on the record.
    let analyst = server.issue_token(&admin, "ana", "analyst");
    let subscriber = shown["total"]["subscribers"][0]["subscriber"]
        .as_str()
        .unwrap()
        .to_string();
    let ask = serde_json::json!({"subscriber": subscriber, "reason": "case 2024-117"});
    let (status, body) = server.request(
        "POST",
        "/api/v1/reveal",
        Some(&analyst),
        &[],
        ask.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let revealed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let number = revealed["identifier"].as_str().unwrap();
    let key = std::fs::read(p("key")).unwrap();
    let pseudonyms = towerwatch_cdr::pseudo::Pseudonymizer::new(&key, false);
    assert_eq!(pseudonyms.redact(number), subscriber, "revealed {number}");
    let audit = String::from_utf8(get("/api/v1/audit")).unwrap();
    assert!(audit.contains("case 2024-117"), "{audit}");
    drop(server);

    // Before any conclusion (a database no builder wrote to): empty results, no error.
    pg.psql("CREATE DATABASE unconcluded").unwrap();
    let (server, admin) = serve_fleet(&p("serve2"), &pg.url("unconcluded"), &context);
    let (status, body) = server.request("GET", "/api/v1/operations", Some(&admin), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let ops: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ops["operations"].as_array().map(Vec::len), Some(0));
    let (status, body) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    assert_eq!((status, body.len()), (200, 0));
}

/// Events in JetStream's events stream (its messages hold up to a hundred each).
fn stored_events(url: &str) -> u64 {
    block_on(async {
        let js = towerwatch_fleet::connect(&url.into()).await.unwrap();
        // None yet: nothing shipped yet.
        let Ok(mut stream) = js.get_stream(towerwatch_fleet::EVENTS).await else {
            return 0;
        };
        let (first, last) = {
            let state = &stream.info().await.unwrap().state;
            (state.first_sequence, state.last_sequence)
        };
        let mut events = 0;
        for seq in first..=last {
            let m = stream.get_raw_message(seq).await.unwrap();
            for frame in towerwatch_fleet::wire::frames(&m.payload) {
                towerwatch_fleet::wire::decode_event_frame(frame.unwrap()).unwrap();
                events += 1;
            }
        }
        events
    })
}

#[test]
fn ship_nats_resumes_a_grown_file_and_ships_a_replaced_one_again_as_another() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = LocalNats::start();
    let url = nats.url();
    let log = tmp.path().join("a.jsonl");
    let state = tmp.path().join("state.json");
    let lines = |from: usize, n: usize| -> String {
        (from..from + n)
            .map(|i| {
                format!(
                    "{{\"EventID\":4624,\"Channel\":\"Security\",\"Computer\":\"WS{i:02}\",\"TimeCreated\":\"2024-05-01T10:00:{i:02}Z\"}}\n"
                )
            })
            .collect()
    };
    let ship = || {
        let out = Command::new(BIN)
            .args(["ship", "--nats", &url, "--state", state.to_str().unwrap()])
            .arg(&log)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        (common::text(&out.stdout), common::text(&out.stderr))
    };
    std::fs::write(&log, lines(0, 5)).unwrap();
    assert!(ship().0.contains(" 5 events stored by"));
    // Grown: only what is new.
    let mut grown = lines(0, 5);
    grown.push_str(&lines(5, 2));
    std::fs::write(&log, &grown).unwrap();
    let (out, err) = ship();
    assert!(out.contains(" 2 events stored"), "{out}{err}");
    // Replaced by another file (written aside, renamed over it): all of it again, as the
    // next generation, with identities of its own (the same record numbers as the old
    // file's first three would otherwise be taken for them and dropped).
    let aside = tmp.path().join("a.next");
    std::fs::write(&aside, lines(20, 3)).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    let (out, err) = ship();
    assert!(out.contains(" 3 events stored"), "{out}{err}");
    assert!(
        err.contains("was replaced or truncated: shipped again as") && err.contains("a.jsonl#2"),
        "{err}"
    );
    assert_eq!(stored_events(&url), 10);
    // Nothing new: nothing sent.
    assert!(ship().0.contains(" 0 events stored"));
    assert_eq!(stored_events(&url), 10);
    // A file shipped, then the same file by another name with a state of its own (a link
    // to it): JetStream holds every event already, and the shipper says so.
    let other = tmp.path().join("b.jsonl");
    std::fs::write(&other, lines(30, 4)).unwrap();
    let link = tmp.path().join("link.jsonl");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    let ship_alone = |path: &std::path::Path, state: &str| {
        let out = Command::new(BIN)
            .args(["ship", "--nats", &url, "--state"])
            .arg(tmp.path().join(state))
            .arg(path)
            .output()
            .unwrap();
        common::text(&out.stdout)
    };
    // Rotated: the file renamed, a new one at its name. The renamed one is the file
    // shipped (nothing of it again), the new one is new.
    std::fs::rename(&log, tmp.path().join("a.jsonl.1")).unwrap();
    std::fs::write(&log, lines(40, 2)).unwrap();
    let out = Command::new(BIN)
        .args(["ship", "--nats", &url, "--state", state.to_str().unwrap()])
        .arg(tmp.path().join("a.jsonl.1"))
        .arg(&log)
        .output()
        .unwrap();
    let said = common::text(&out.stdout);
    assert!(said.contains(" 2 events stored by"), "{said}");
    assert_eq!(stored_events(&url), 12);
    let out = ship_alone(&other, "b.state");
    assert!(
        out.contains(" 4 events stored by") && out.contains("(0 of them held already)"),
        "{out}"
    );
    let out = ship_alone(&link, "link.state");
    assert!(
        out.contains(" 4 events stored by") && out.contains("(4 of them held already)"),
        "{out}"
    );
    assert_eq!(stored_events(&url), 16);
}

/// The default simulation in `dir`, a key, the context the hunt runs with, one host's file
/// (the web server's) and `hunt`'s detections of it, sorted.
fn one_host_as_hunt_judges_it(dir: &Path) -> (Vec<String>, String, Vec<String>) {
    let arg = |s: &str| dir.join(s).display().to_string();
    towerwatch(&["simulate", "--out", &arg("sim"), "-q"]);
    std::fs::write(dir.join("key"), "a fixed key of sixteen bytes or more").unwrap();
    let context: Vec<String> = ["--min-level", "informational", "--key-file", &arg("key")]
        .map(String::from)
        .to_vec();
    let file = arg("sim/evidence/windows/WEB01.jsonl");
    let mut hunt = vec!["hunt".to_string(), file.clone()];
    hunt.extend(context.iter().cloned());
    hunt.extend(["-o", &arg("want.jsonl"), "-q"].map(String::from));
    towerwatch(&hunt.iter().map(String::as_str).collect::<Vec<_>>());
    let want = sorted(&std::fs::read_to_string(dir.join("want.jsonl")).unwrap());
    assert!(!want.is_empty(), "the web server's events give detections");
    (context, file, want)
}

#[test]
fn serve_fleet_with_nats_publishes_events_and_bulk_requests_sent_to_it_for_the_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s);
    let (context, file, want) = one_host_as_hunt_judges_it(tmp.path());

    let nats = LocalNats::start();
    let nats_url = nats.url();
    let pg = LocalPostgres::start("");
    let fleet = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut a = vec![cmd.to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(["--nats", &nats_url, "--ack-wait", "3"].map(String::from));
        a.extend(context.iter().cloned());
        a
    };
    let (b, w) = (p("builder.log"), p("worker.log"));
    let builder = start(
        &fleet(
            "story-builder",
            &["--database", &pg.url("postgres"), "--settle-ms", "500"],
        ),
        &b,
    );
    let worker = start(&fleet("worker", &[]), &w);
    let (server, admin) = serve_fleet_with(
        &p("serve"),
        &pg.url("postgres"),
        &context,
        &["--nats", &nats_url],
    );

    // The file's lines, sent a thousand at a time (the first batch twice: JetStream holds it
    // already, and says so).
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let send = |first: usize, batch: &[&str]| -> serde_json::Value {
        let path = format!("/api/v1/events?source={file}&first_line={}", first + 1);
        let body = batch.join("\n");
        let (status, reply) = server.request("POST", &path, Some(&admin), &[], body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        serde_json::from_slice(&reply).unwrap()
    };
    for (i, batch) in lines.chunks(1000).enumerate() {
        let reply = send(i * 1000, batch);
        assert_eq!(reply["accepted"], batch.len(), "{reply}");
        assert_eq!(reply["duplicates"], 0, "{reply}");
    }
    let again = send(0, &lines[..1000]);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1000))
    );
    assert_eq!(stored_events(&nats_url), lines.len() as u64);
    // Text lines still go elsewhere.
    let (status, _) = server.request(
        "POST",
        "/api/v1/lines?source=a.log",
        Some(&admin),
        &[],
        b"x\n",
    );
    assert_eq!(status, 409);

    let concluded = || {
        pg.psql("SELECT facts FROM fleet_results")
            .is_ok_and(|s| s == lines.len().to_string())
    };
    wait_for(
        "every event concluded",
        Duration::from_secs(120),
        &[&b, &w],
        concluded,
    );
    let (status, body) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    assert_eq!(status, 200);
    let shown = sorted(&String::from_utf8(body).unwrap());
    assert_eq!(shown.len(), want.len(), "detections");
    assert!(
        shown == want,
        "the detections of events sent to serve differ from hunt's"
    );

    // What Beats send (Elasticsearch's bulk API) goes to JetStream too, item by item: 201,
    // then 200 for a document sent again.
    let docs = std::fs::read_to_string(p("sim/evidence/windows/DC01.jsonl")).unwrap();
    let body: String = docs
        .lines()
        .take(3)
        .map(|d| format!("{{\"create\":{{\"_index\":\"winlogbeat\"}}}}\n{d}\n"))
        .collect();
    let statuses = |reply: &[u8]| -> Vec<u64> {
        let v: serde_json::Value = serde_json::from_slice(reply).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["create"]["status"].as_u64().unwrap())
            .collect()
    };
    for want in [201, 200] {
        let (status, reply) = server.request("POST", "/_bulk", Some(&admin), &[], body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        assert_eq!(statuses(&reply), vec![want; 3]);
    }
    assert_eq!(stored_events(&nats_url), lines.len() as u64 + 3);
    for mut c in [builder, worker] {
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        assert!(c.wait().unwrap().success());
    }
}

#[test]
fn ship_nats_follow_ships_whole_lines_as_they_are_written_and_new_files() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = LocalNats::start();
    let url = nats.url();
    let dir = tmp.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    let line = |i: usize| {
        format!(
            "{{\"EventID\":4624,\"Channel\":\"Security\",\"Computer\":\"WS{i:02}\",\"TimeCreated\":\"2024-05-01T10:00:{i:02}Z\"}}\n"
        )
    };
    let a = dir.join("a.jsonl");
    std::fs::write(&a, (0..3).map(line).collect::<String>()).unwrap();
    let (out, err) = (tmp.path().join("out.log"), tmp.path().join("err.log"));
    let mut ship = Command::new(BIN)
        .args([
            "ship",
            "--nats",
            &url,
            "--follow",
            "--poll-ms",
            "100",
            "--state",
        ])
        .arg(tmp.path().join("state.json"))
        .arg(&dir)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let logs = [out.as_path(), err.as_path()];
    let url = url.as_str();
    let stored = |n: u64| move || stored_events(url) == n;
    wait_for(
        "the file as it was",
        Duration::from_secs(30),
        &logs,
        stored(3),
    );
    // Two lines added and a third still being written: the file is left until it ends
    // with a line break (a line cut short would be shipped as a damaged record, and its
    // end never), then shipped from where it was.
    let mut f = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
    let cut = line(5);
    write!(f, "{}{}{}", line(3), line(4), &cut[..20]).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        stored_events(url),
        3,
        "a file ending in a cut line was shipped"
    );
    write!(f, "{}", &cut[20..]).unwrap();
    wait_for(
        "the lines added, once the last ended",
        Duration::from_secs(30),
        &logs,
        stored(6),
    );
    // A new file in the directory.
    std::fs::write(dir.join("b.jsonl"), (10..12).map(line).collect::<String>()).unwrap();
    wait_for("a new file", Duration::from_secs(30), &logs, stored(8));
    let _ = Command::new("kill")
        .args(["-INT", &ship.id().to_string()])
        .status();
    let status = ship.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let said = std::fs::read_to_string(&out).unwrap();
    assert!(
        said.contains("8 events stored") && said.contains("0 records rejected"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "");
}

/// A CA, and certificates it signed for 127.0.0.1 (server) and for a client: PEM of the CA,
/// then (certificate, key) of each.
fn certificates() -> (String, (String, String), (String, String)) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let server = leaf(
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = leaf(vec!["worker".into()], ExtendedKeyUsagePurpose::ClientAuth);
    (ca.pem(), server, client)
}

#[test]
fn the_fleet_speaks_tls_to_nats_and_postgresql_and_checks_their_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s);
    let arg = |s: &str| p(s).display().to_string();
    let (ca, (cert, key), (client_cert, client_key)) = certificates();
    for (name, text) in [
        ("ca.pem", &ca),
        ("server.pem", &cert),
        ("server.key", &key),
        ("client.pem", &client_cert),
        ("client.key", &client_key),
    ] {
        std::fs::write(p(name), text).unwrap();
    }
    // Another CA, which signed neither server.
    std::fs::write(p("other-ca.pem"), certificates().0).unwrap();
    // NATS takes TLS only, from clients with a certificate its CA signed; PostgreSQL takes
    // TLS only over TCP.
    let nats = LocalNats::start_with(&[
        "--tls",
        "--tlscert",
        &arg("server.pem"),
        "--tlskey",
        &arg("server.key"),
        "--tlsverify",
        "--tlscacert",
        &arg("ca.pem"),
    ]);
    let nats_url = nats.url();
    let pg = LocalPostgres::start_tls(&cert, &key);
    let database = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url("postgres"),
        arg("ca.pem")
    );

    // Plain, or with a CA that did not sign the server's certificate: refused.
    let data = arg("serve");
    for (url, why) in [
        (pg.url("postgres"), "no encryption"),
        (
            format!(
                "{}?sslmode=verify-full&sslrootcert={}",
                pg.url("postgres"),
                arg("other-ca.pem")
            ),
            "invalid peer certificate",
        ),
        (
            format!("{}?sslmode=require", pg.url("postgres")),
            "need sslrootcert",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--data", &data, "--database", &url, "init"])
            .output()
            .unwrap();
        let said = common::text(&out.stderr);
        assert!(!out.status.success() && said.contains(why), "{url}: {said}");
    }

    let (context, file, want) = one_host_as_hunt_judges_it(tmp.path());

    let tls: Vec<String> = [
        "--nats",
        &nats_url,
        "--nats-ca",
        &arg("ca.pem"),
        "--nats-cert",
        &arg("client.pem"),
        "--nats-key",
        &arg("client.key"),
    ]
    .map(String::from)
    .to_vec();
    let fleet = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut a = vec![cmd.to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(tls.iter().cloned());
        a.extend(["--ack-wait", "3"].map(String::from));
        a.extend(context.iter().cloned());
        a
    };
    let (b, w) = (p("builder.log"), p("worker.log"));
    let builder = start(
        &fleet(
            "story-builder",
            &["--database", &database, "--settle-ms", "500"],
        ),
        &b,
    );
    let worker = start(&fleet("worker", &[]), &w);
    let mut ship = vec!["ship".to_string(), "--state".into(), arg("ship.state")];
    ship.extend(tls.iter().cloned());
    ship.push(file.clone());
    let shipped = towerwatch(&ship.iter().map(String::as_str).collect::<Vec<_>>());
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(
        common::text(&shipped.stdout).contains(&format!(" {lines} events stored by")),
        "{}",
        common::text(&shipped.stdout)
    );
    // Without a client certificate NATS refuses the shipper; with another CA the shipper
    // refuses NATS. Each is said as it is.
    let client = [
        "--nats-cert",
        &arg("client.pem"),
        "--nats-key",
        &arg("client.key"),
    ];
    for (ca, extra, why) in [
        ("ca.pem", &[][..], "BadCertificate"),
        ("other-ca.pem", &client[..], "invalid peer certificate"),
    ] {
        let refused = Command::new(BIN)
            .args(["ship", "--retry-for", "2", "--nats", &nats_url, "--nats-ca"])
            .arg(p(ca))
            .args(extra)
            .arg("--state")
            .arg(p("refused.state"))
            .arg(&file)
            .output()
            .unwrap();
        let said = common::text(&refused.stderr);
        assert!(
            !refused.status.success() && said.contains(why) && said.contains("TLS refused"),
            "{ca}: {}{said}",
            common::text(&refused.stdout)
        );
    }

    wait_for(
        "every event concluded",
        Duration::from_secs(120),
        &[&b, &w],
        || {
            pg.psql("SELECT facts FROM fleet_results")
                .is_ok_and(|s| s == lines.to_string())
        },
    );
    // serve --fleet reads the builder's results over TLS too.
    let (server, admin) = serve_fleet(&p("serve"), &database, &context);
    let (status, body) = server.request("GET", "/api/v1/detections", Some(&admin), &[], b"");
    assert_eq!(status, 200);
    assert!(
        sorted(&String::from_utf8(body).unwrap()) == want,
        "the detections over TLS differ from hunt's"
    );
    for mut c in [builder, worker] {
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        assert!(c.wait().unwrap().success());
    }
}
