//! Every route of `towerwatch serve` × every role, and no token or a forged one: each
//! answers what its role allows, nothing more; the audit log records what admins did and
//! cannot be changed.

mod common;

use common::server::Server;

fn towerwatch(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(args)
        .output()
        .unwrap()
}

fn request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let (status, reply) = server.request(
        method,
        path,
        token,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    (status, String::from_utf8(reply).unwrap())
}

#[test]
fn every_route_answers_each_role_as_its_role_allows() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    // No default credentials: a store without an admin does not serve.
    let refused = towerwatch(&["serve", "--data", d, "--listen", "127.0.0.1:0"]);
    assert!(!refused.status.success());
    let said = common::text(&refused.stderr);
    assert!(
        said.contains("no admin token") && said.contains(" init`"),
        "{said}"
    );
    assert!(!common::text(&refused.stdout).contains("listening"));
    let init = towerwatch(&["serve", "--data", d, "init"]);
    assert!(init.status.success(), "{}", common::text(&init.stderr));
    let admin = common::text(&init.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tw_"))
        .expect("the first admin token is printed")
        .to_string();
    // Once only.
    assert!(!towerwatch(&["serve", "--data", d, "init"]).status.success());

    let server = Server::start(&data, &[]);
    let a = &server;
    let viewer = a.issue_token(&admin, "viewer one", "viewer");
    let ingest = a.issue_token(&admin, "ingest one", "ingest");
    let analyst = a.issue_token(&admin, "analyst one", "analyst");
    // A token of the right shape with a wrong secret.
    // (Its last hex digit changed: never the one it had.)
    let last = if admin.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &admin[..admin.len() - 1]);
    let event = "{\"EventID\": 4625, \"Channel\": \"Security\", \"Computer\": \"DC01\"}\n";
    let token_body = "{\"name\": \"x\", \"role\": \"viewer\"}";
    let bulk = "{\"create\": {}}\n{\"@timestamp\": \"2019-03-05T14:11:00Z\", \"winlog\": {\"event_id\": 4625, \"channel\": \"Security\", \"computer_name\": \"DC01\"}}\n";
    let reveal = "{\"subscriber\": \"M-000000000000000000000000\", \"reason\": \"case 1\"}";
    let rule = "title: t\nlogsource: {product: windows}\ndetection: {s: {EventID: 4625}, condition: s}\nlevel: low\n";
    let routes: [(&str, &str, &str, [u16; 6]); 21] = [
        // method, path, body, status for: none, forged, viewer, ingest, analyst, admin
        ("GET", "/healthz", "", [200, 200, 200, 200, 200, 200]),
        (
            "POST",
            "/api/v1/events?source=a.jsonl",
            event,
            [401, 401, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/detections",
            "",
            [401, 401, 200, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/operations",
            "",
            [401, 401, 200, 403, 200, 200],
        ),
        (
            "POST",
            "/api/v1/tokens",
            token_body,
            [401, 401, 403, 403, 403, 200],
        ),
        ("GET", "/api/v1/audit", "", [401, 401, 403, 403, 403, 200]),
        ("GET", "/metrics", "", [401, 401, 200, 403, 200, 200]),
        (
            "POST",
            "/api/v1/lines?source=u_ex190305.log",
            "#Fields: date time cs-uri-stem\n",
            [401, 401, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/exposure",
            "",
            [401, 401, 200, 403, 200, 200],
        ),
        ("GET", "/api/v1/sources", "", [401, 401, 200, 403, 200, 200]),
        (
            "GET",
            "/api/v1/detections/live?from=0",
            "",
            [401, 401, 200, 403, 200, 200],
        ),
        // Past the role check, this server has no operator key: 409, nothing revealed.
        (
            "POST",
            "/api/v1/reveal",
            reveal,
            [401, 401, 403, 403, 409, 409],
        ),
        (
            "POST",
            "/api/v1/retro",
            rule,
            [401, 401, 403, 403, 200, 200],
        ),
        // Elasticsearch's handshake is open (Beats make it before sending); bulk is not.
        ("GET", "/", "", [200, 200, 200, 200, 200, 200]),
        ("GET", "/_license", "", [200, 200, 200, 200, 200, 200]),
        ("HEAD", "/", "", [200, 200, 200, 200, 200, 200]),
        ("POST", "/_bulk", bulk, [401, 401, 403, 200, 200, 200]),
        ("PUT", "/_bulk", bulk, [401, 401, 403, 200, 200, 200]),
        (
            "POST",
            "/winlogbeat-8/_bulk",
            bulk,
            [401, 401, 403, 200, 200, 200],
        ),
        (
            "PUT",
            "/winlogbeat-8/_bulk",
            bulk,
            [401, 401, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/openapi.json",
            "",
            [200, 200, 200, 200, 200, 200],
        ),
    ];
    let callers = [
        None,
        Some(forged.as_str()),
        Some(viewer.as_str()),
        Some(ingest.as_str()),
        Some(analyst.as_str()),
        Some(admin.as_str()),
    ];
    for (method, path, body, want) in routes {
        for (caller, status) in callers.iter().zip(want) {
            let (got, reply) = request(a, method, path, *caller, body);
            // A forged token's id is checked a few times a second at most: refused either
            // way, as invalid or as too many tries.
            let throttled = *caller == Some(forged.as_str()) && status == 401 && got == 429;
            assert!(
                got == status || throttled,
                "{method} {path} as {caller:?}: {got}, not {status}: {reply}"
            );
        }
    }
    // The OpenAPI description names exactly the routes tested here, each with the role
    // this table found.
    let (_, spec) = request(a, "GET", "/api/v1/openapi.json", None, "");
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut described = std::collections::BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let role = op["x-role"].as_str().unwrap().to_string();
            described.insert((method.to_uppercase(), path.clone(), role));
        }
    }
    let roles = ["viewer", "ingest", "analyst", "admin"];
    let tested: std::collections::BTreeSet<_> = routes
        .iter()
        .map(|(method, path, _, want)| {
            let path = path
                .split('?')
                .next()
                .unwrap()
                .replace("winlogbeat-8", "{index}");
            // The least role served: none when no token is needed, else the first allowed.
            let role = if want[0] == 200 {
                "none"
            } else {
                roles
                    .iter()
                    .zip(&want[2..])
                    .find(|(_, s)| **s != 403)
                    .map(|(r, _)| *r)
                    .unwrap()
            };
            (method.to_string(), path, role.to_string())
        })
        .collect();
    assert_eq!(described, tested);
    // The web UI: a session per token (an ingest token may not sign in), each page as the
    // role allows; without a session, the sign-in page.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let pages: [(&str, &str, [u16; 4]); 7] = [
        // path, form body, status for: no session, viewer, analyst, admin
        ("/ui/operations", "", [303, 200, 200, 200]),
        ("/ui/operations/OP-999", "", [303, 404, 404, 404]),
        ("/ui/exposure", "", [303, 200, 200, 200]),
        ("/ui/rules", "", [303, 200, 200, 200]),
        ("/ui/sources", "", [303, 200, 200, 200]),
        ("/ui/audit", "", [303, 403, 403, 200]),
        // With the session's CSRF token: the viewer is refused, the others reach the
        // reveal (no operator key here: 409).
        (
            "/ui/reveal",
            "subscriber=M-000000000000000000000000&reason=case+1",
            [303, 403, 409, 409],
        ),
    ];
    let (status, _, _) = a.exchange(
        "POST",
        "/ui/login",
        None,
        &form,
        format!("token={ingest}").as_bytes(),
    );
    assert_eq!(status, 403, "an ingest token signed in");
    let (status, _, _) = a.exchange(
        "POST",
        "/ui/login",
        None,
        &form,
        format!("token={forged}").as_bytes(),
    );
    assert!(
        status == 401 || status == 429,
        "a forged token signed in: {status}"
    );
    let mut sessions = vec![None];
    for token in [&viewer, &analyst, &admin] {
        let (status, head, _) = a.exchange(
            "POST",
            "/ui/login",
            None,
            &form,
            format!("token={token}").as_bytes(),
        );
        assert_eq!(status, 303, "{head}");
        let cookie = head
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let (_, _, page) = a.exchange("GET", "/ui/operations", None, &[("Cookie", &cookie)], b"");
        let page = common::text(&page);
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF token in the page")
            + 19;
        let csrf = page[at..at + 64].to_string();
        sessions.push(Some((cookie, csrf)));
    }
    for (path, body, want) in pages {
        for (session, status) in sessions.iter().zip(want) {
            let mut headers = form.to_vec();
            let mut body = body.to_string();
            if let Some((cookie, csrf)) = session {
                headers.push(("Cookie", cookie.as_str()));
                body = format!("csrf={csrf}&{body}");
            }
            let method = if path == "/ui/reveal" { "POST" } else { "GET" };
            let (got, head, reply) = a.exchange(method, path, None, &headers, body.as_bytes());
            assert_eq!(
                got,
                status,
                "{method} {path} as {session:?}: {head}\n{}",
                common::text(&reply)
            );
            if got == 303 {
                assert!(head.contains("location: /ui/login"), "{head}");
            }
        }
    }
    // The audit log names what the admin did, and no route changes it.
    let (_, log) = request(a, "GET", "/api/v1/audit", Some(&admin), "");
    let log: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap();
    assert!(log
        .iter()
        .any(|e| e["action"] == "issue token"
            && e["detail"].as_str().unwrap().contains("analyst one")));
    for method in ["DELETE", "PUT", "PATCH"] {
        let (got, _) = request(a, method, "/api/v1/audit", Some(&admin), "");
        assert_eq!(got, 405, "{method} /api/v1/audit");
    }
    // Nor does the database underneath: the log is append-only there too.
    let db = rusqlite::Connection::open(data.join("events.sqlite")).unwrap();
    assert!(db.execute("DELETE FROM audit", []).is_err());
    assert!(db.execute("UPDATE audit SET who = 'nobody'", []).is_err());
}

/// With `--tls-cert`/`--tls-key` the service speaks HTTPS only: a real client (curl) that
/// trusts the certificate gets its answers, token checks included; plain HTTP gets none.
#[test]
fn the_service_speaks_https_with_a_given_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let init = towerwatch(&["serve", "--data", d, "init"]);
    let admin = common::text(&init.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tw_"))
        .unwrap()
        .to_string();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        &data,
        &[
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap();
    let curl = |args: &[&str]| -> (String, bool) {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "20",
                "--cacert",
                cert_pem.to_str().unwrap(),
            ])
            .args(args)
            .output()
            .expect("curl runs");
        (common::text(&out.stdout), out.status.success())
    };
    let base = format!("https://localhost:{port}");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let (body, ok) = curl(&["--resolve", &resolve, &format!("{base}/healthz")]);
    assert!(ok && body == "ok", "{body}");
    let (status, _) = curl(&[
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/api/v1/audit"),
    ]);
    assert_eq!(status, "401", "no token over HTTPS");
    let auth = format!("Authorization: Bearer {admin}");
    let (log, ok) = curl(&[
        "--resolve",
        &resolve,
        "-H",
        &auth,
        &format!("{base}/api/v1/audit"),
    ]);
    assert!(ok && log.contains("issue token"), "{log}");
    // A browser's session cookie is only ever sent back over HTTPS.
    let (head, ok) = curl(&[
        "--resolve",
        &resolve,
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--data-urlencode",
        &format!("token={admin}"),
        &format!("{base}/ui/login"),
    ]);
    assert!(ok, "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP to the HTTPS port is not served.
    use std::io::{Read, Write};
    let mut plain = std::net::TcpStream::connect(&server.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(!reply.starts_with(b"HTTP/1.1 200"), "plain HTTP was served");
}

#[test]
fn a_flood_from_one_address_is_slowed_and_the_shipper_waits_its_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = common::server::init(&data);
    let server = Server::start(&data, &["--rate-limit", "5"]);
    // A burst of twice the rate is served, then 429 with when to come back.
    let mut limited = None;
    for _ in 0..40 {
        let (status, head, _) = server.exchange("GET", "/api/v1/sources", Some(&admin), &[], b"");
        if status == 429 {
            limited = Some(head);
            break;
        }
        assert_eq!(status, 200);
    }
    let head = limited.expect("40 requests at once were all served at a rate of 5 a second");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .expect("a Retry-After header")
        .trim()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{head}");
    // Health probes are not limited.
    assert_eq!(request(&server, "GET", "/healthz", None, "").0, 200);
    // A shipper over the rate is told to wait, waits, and everything arrives.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let ingest = server.issue_token(&admin, "ingest one", "ingest");
    let log = tmp.path().join("events.jsonl");
    let lines: Vec<String> = (0..200)
        .map(|i| {
            format!(r#"{{"EventID": 4688, "Channel": "Security", "Computer": "h{i}", "TimeCreated": "2026-01-01T00:00:{:02}Z"}}"#, i % 60)
        })
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let shipped = towerwatch(&[
        "ship",
        log.to_str().unwrap(),
        "--to",
        &format!("http://{}", server.addr),
        "--token",
        &ingest,
        "--state",
        tmp.path().join("offsets.json").to_str().unwrap(),
        "--batch",
        "5",
    ]);
    assert!(
        shipped.status.success(),
        "{}",
        common::text(&shipped.stderr)
    );
    assert!(common::text(&shipped.stdout).contains(" 200 lines acknowledged"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (status, metrics) = request(&server, "GET", "/metrics", Some(&admin), "");
    assert_eq!(status, 200);
    let count = |name: &str| common::server::metric(&metrics, name);
    assert_eq!(count("towerwatch_events_stored"), 200);
    // The shipper's 40 requests at 5 a second were slowed too.
    assert!(count("towerwatch_requests_rate_limited_total") > 1);
}

#[test]
fn guessing_a_tokens_secret_is_slowed_and_the_token_still_works_after() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let admin = common::server::init(&data);
    let server = Server::start(&data, &[]);
    let viewer = server.issue_token(&admin, "viewer one", "viewer");
    // Wrong secrets for the viewer token's id, as fast as they come.
    let (id, _) = viewer.rsplit_once('_').unwrap();
    let mut throttled = None;
    for i in 0..40 {
        let guess = format!("{id}_{i:064x}");
        let (status, head, _) = server.exchange("GET", "/api/v1/sources", Some(&guess), &[], b"");
        assert!(status == 401 || status == 429, "a guess got {status}");
        if status == 429 {
            throttled = Some(head);
            break;
        }
    }
    let head = throttled.expect("40 guesses of one token were all checked");
    assert!(head.contains("retry-after: 1"), "{head}");
    // Meanwhile the real token is refused too (it is not checked now), then works.
    let (status, _) = request(&server, "GET", "/api/v1/sources", Some(&viewer), "");
    assert_eq!(status, 429);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (status, _) = request(&server, "GET", "/api/v1/sources", Some(&viewer), "");
    assert_eq!(status, 200);
    // Once checked it is known: more guesses do not lock it out.
    for i in 0..20 {
        let guess = format!("{id}_{i:064x}");
        server.exchange("GET", "/api/v1/sources", Some(&guess), &[], b"");
    }
    let (status, _) = request(&server, "GET", "/api/v1/sources", Some(&viewer), "");
    assert_eq!(status, 200);
}
