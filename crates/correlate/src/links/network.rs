//! Zeek's linker: a flow's connection and client end, its outside addresses, the host it
//! belongs to, and the move between two inside hosts it is.

use towerwatch_event::Event;

use super::{digest, is_db_port, is_private, say, Draft, Hosts, Key, Movement};

/// A record of Zeek's log `path` (`conn`, `dns`, …).
pub(super) fn link(e: &Event, path: &str, d: &mut Draft, hosts: &mut Hosts) {
    let f = |name: &'static str| e.first_str(name).unwrap_or("");
    let (src, dst) = (f("id.orig_h"), f("id.resp_h"));
    d.remote(src);
    d.remote(dst);
    d.keys.push(Key::Connection(digest(&[
        src,
        f("id.orig_p"),
        dst,
        f("id.resp_p"),
    ])));
    if is_db_port(f("id.resp_p")) {
        d.keys.push(Key::Endpoint(digest(&[src, f("id.orig_p")])));
    }
    // A flow belongs to our end of it: the client's, or the server's when the client is
    // outside.
    d.host = hosts.get(if is_private(src) || !is_private(dst) {
        src
    } else {
        dst
    });
    if is_private(src) && is_private(dst) && path == "conn" {
        d.movement = Some(Movement::Flow {
            from: src.into(),
            to: dst.into(),
        });
    }
    say!(
        d,
        "{path} {src} → {dst}:{} {}",
        f("id.resp_p"),
        f("service")
    );
}
