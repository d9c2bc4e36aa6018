//! Every route of `towerwatch serve` × every role, and no token or a forged one: each
//! answers what its role allows, nothing more; the audit log records what admins did and
//! cannot be changed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn towerwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args(args)
        .output()
        .unwrap()
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    Server { child, addr }
}

fn request(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

fn issue(addr: &str, admin: &str, role: &str) -> String {
    let (status, body) = request(
        addr,
        "POST",
        "/api/v1/tokens",
        Some(admin),
        &format!("{{\"name\": \"{role} one\", \"role\": \"{role}\"}}"),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["token"].as_str().unwrap().to_string()
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

    let server = start(&data);
    let a = server.addr.as_str();
    let viewer = issue(a, &admin, "viewer");
    let ingest = issue(a, &admin, "ingest");
    let analyst = issue(a, &admin, "analyst");
    // A token of the right shape with a wrong secret.
    let forged = format!("{}0", &admin[..admin.len() - 1]);
    let event = "{\"EventID\": 4625, \"Channel\": \"Security\", \"Computer\": \"DC01\"}\n";
    let token_body = "{\"name\": \"x\", \"role\": \"viewer\"}";
    let routes: [(&str, &str, &str, [u16; 6]); 6] = [
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
            assert_eq!(got, status, "{method} {path} as {caller:?}: {reply}");
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
