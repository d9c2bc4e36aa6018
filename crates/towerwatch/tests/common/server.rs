//! A `towerwatch serve` on a free local port for the tests, and plain HTTP/1.1 to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server; killed with SIGKILL when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The data directory's first admin token (`serve init` prints it once).
pub fn init(data: &Path) -> String {
    let out = super::towerwatch(&["serve", "--data", data.to_str().unwrap(), "init"]);
    super::text(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tw_"))
        .expect("a token is printed")
        .to_string()
}

impl Server {
    /// `towerwatch serve --data DATA --listen 127.0.0.1:0 EXTRA…`, once it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_on(data, "127.0.0.1:0", extra)
    }

    /// As [`start`](Self::start), on the address `listen`.
    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_towerwatch"))
            .args([
                "serve",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                listen,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, addr }
    }

    /// A new token for `name` with `role`, issued with the admin token `admin`.
    pub fn issue_token(&self, admin: &str, name: &str, role: &str) -> String {
        let body = format!(r#"{{"name": "{name}", "role": "{role}"}}"#);
        let (status, reply) =
            self.request("POST", "/api/v1/tokens", Some(admin), &[], body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        reply["token"].as_str().unwrap().to_string()
    }

    /// One request; the status and the body (de-chunked).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let (status, _, body) = self.exchange(method, path, token, headers, body);
        (status, body)
    }

    /// One request; the status, the reply's head (header names in lower case) and its body.
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.addr,
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split])
            .lines()
            .map(|l| match l.split_once(':') {
                Some((k, v)) => format!("{}:{v}", k.to_ascii_lowercase()),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut body = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = unchunk(&body);
        }
        (status, head, body)
    }
}

/// The value of the Prometheus sample `name` in the text `/metrics` gave.
pub fn metric(metrics: &str, name: &str) -> u64 {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 4 + n..];
    }
}
