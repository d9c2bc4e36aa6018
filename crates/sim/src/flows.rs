//! Zeek `conn.log` records (TSV, the columns of the header in [`crate::sink`]).

use crate::clock;
use crate::dice::Dice;

pub struct Flow<'a> {
    pub orig: (&'a str, u16),
    pub resp: (&'a str, u16),
    pub proto: &'a str,
    pub service: &'a str,
    pub duration_s: f64,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
}

/// Zeek's `local_orig`/`local_resp`: the estate's private ranges.
fn local(ip: &str) -> &'static str {
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(a) if a.is_private() => "T",
        _ => "F",
    }
}

pub fn line(dice: &mut Dice, t: i64, f: &Flow<'_>) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let uid: String = std::iter::once('C')
        .chain((0..17).map(|_| ALNUM[dice.index(ALNUM.len())] as char))
        .collect();
    let orig_pkts = f.orig_bytes / 1200 + 3;
    let resp_pkts = f.resp_bytes / 1200 + 3;
    let history = match f.proto {
        "udp" => "Dd",
        "icmp" => "-",
        _ => "ShADadFf",
    };
    format!(
        "{}.{:06}\t{uid}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.6}\t{}\t{}\tSF\t{}\t{}\t0\t{history}\t{orig_pkts}\t{}\t{resp_pkts}\t{}\t(empty)",
        t.div_euclid(clock::SECOND),
        t.rem_euclid(clock::SECOND),
        f.orig.0,
        f.orig.1,
        f.resp.0,
        f.resp.1,
        f.proto,
        if f.service.is_empty() { "-" } else { f.service },
        f.duration_s,
        f.orig_bytes,
        f.resp_bytes,
        local(f.orig.0),
        local(f.resp.0),
        f.orig_bytes + orig_pkts * 40,
        f.resp_bytes + resp_pkts * 40,
    )
}
