//! Subscriber identifiers in outputs: keyed HMAC-SHA-256 pseudonyms by default, domain-separated
//! per identifier type (`msisdn:`, `imsi:`, `imei:`), rendered as a type tag and 96 bits of hex
//! (`M-3f9a…`). Plain hashes of numbers are reversed by enumeration; a keyed one is not without
//! the key. Whoever holds the key re-identifies by recomputing, so no output holds a way back.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use regex::Regex;
use sha2::Sha256;

use crate::numbers::luhn_ok;
use crate::sql::IdKind;

/// Digits only; MSISDNs lose an international `00`; IMEIs keep their 14-digit body (the check
/// digit and software version are not part of the identity).
pub fn normalise(kind: IdKind, raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    match kind {
        IdKind::Msisdn => digits
            .strip_prefix("00")
            .map(String::from)
            .unwrap_or(digits),
        IdKind::Imei if digits.len() >= 15 => digits[..14].to_string(),
        _ => digits,
    }
}

#[derive(Clone)]
pub struct Pseudonymizer {
    key: Vec<u8>,
    reveal: bool,
}

impl Pseudonymizer {
    /// `reveal`: outputs carry the real (normalised) identifiers instead.
    pub fn new(key: &[u8], reveal: bool) -> Pseudonymizer {
        Pseudonymizer {
            key: key.to_vec(),
            reveal,
        }
    }

    pub fn reveals(&self) -> bool {
        self.reveal
    }

    /// What outputs record of the key: a keyed hash of a fixed label (never the key), so a
    /// key offered later to reveal them can be checked against the one that made them.
    pub fn fingerprint(&self) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"towerwatch pseudonym key fingerprint v1");
        let out = mac.finalize().into_bytes();
        let hex: String = out[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("kf-{hex}")
    }

    /// The output form of an identifier already normalised.
    pub fn id(&self, kind: IdKind, normalised: &str) -> String {
        if self.reveal {
            return normalised.to_string();
        }
        let (domain, tag) = match kind {
            IdKind::Msisdn => ("msisdn:", "M"),
            IdKind::Imsi => ("imsi:", "I"),
            IdKind::Imei => ("imei:", "E"),
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        mac.update(normalised.as_bytes());
        let out = mac.finalize().into_bytes();
        let hex: String = out[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("{tag}-{hex}")
    }

    /// Free text (statements, parameters) with every run of 10–16 digits replaced by its
    /// pseudonym: 15 digits with a valid Luhn digit as an IMEI, other 15-digit runs as IMSIs,
    /// the rest as MSISDNs. Shorter numbers (row ids, dates) stay.
    pub fn redact(&self, text: &str) -> String {
        if self.reveal {
            return text.to_string();
        }
        digit_runs()
            .replace_all(text, |c: &regex::Captures<'_>| {
                let digits = c[0].trim_start_matches('+');
                let kind = match digits.len() {
                    15 if luhn_ok(digits) => IdKind::Imei,
                    15 => IdKind::Imsi,
                    _ => IdKind::Msisdn,
                };
                self.id(kind, &normalise(kind, digits))
            })
            .into_owned()
    }
}

impl Pseudonymizer {
    /// The identifier in `text` (normalised) whose pseudonym is `pseudonym`, if one is there:
    /// how the key's holder re-identifies, by recomputing (no output holds a way back).
    /// Looks at the runs of digits [`redact`](Self::redact) would replace.
    pub fn find_in(&self, pseudonym: &str, text: &str) -> Option<String> {
        let kind = match pseudonym.split_once('-')?.0 {
            "M" => IdKind::Msisdn,
            "I" => IdKind::Imsi,
            "E" => IdKind::Imei,
            _ => return None,
        };
        let hiding = Pseudonymizer::new(&self.key, false);
        digit_runs().find_iter(text).find_map(|m| {
            let n = normalise(kind, m.as_str().trim_start_matches('+'));
            (hiding.id(kind, &n) == pseudonym).then_some(n)
        })
    }
}

/// Runs of 10–16 digits, an optional `+` before: what may be a subscriber's number.
fn digit_runs() -> &'static Regex {
    static DIGITS: OnceLock<Regex> = OnceLock::new();
    DIGITS.get_or_init(|| Regex::new(r"\+?\b\d{10,16}\b").expect("valid regex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_typed_and_stable() {
        let p = Pseudonymizer::new(b"k1", false);
        let a = p.id(IdKind::Msisdn, "999700000001");
        assert!(a.starts_with("M-") && a.len() == 26);
        assert_eq!(
            a,
            p.id(
                IdKind::Msisdn,
                &normalise(IdKind::Msisdn, "+999 700 000 001")
            )
        );
        assert_ne!(
            a,
            Pseudonymizer::new(b"k2", false).id(IdKind::Msisdn, "999700000001")
        );
        assert_ne!(p.id(IdKind::Imsi, "999700000001"), a.replace("M-", "I-"));
        assert_eq!(
            Pseudonymizer::new(b"k1", true).id(IdKind::Msisdn, "999700000001"),
            "999700000001"
        );
    }

    #[test]
    fn the_key_finds_an_identifier_by_its_pseudonym_and_another_key_does_not() {
        let text = "select * from cdr where msisdn = '+999700000002' or imsi = '001010000000001'";
        let p = Pseudonymizer::new(b"the operator's key", false);
        let m = p.id(IdKind::Msisdn, "999700000002");
        let i = p.id(IdKind::Imsi, "001010000000001");
        assert_eq!(p.find_in(&m, text).as_deref(), Some("999700000002"));
        assert_eq!(p.find_in(&i, text).as_deref(), Some("001010000000001"));
        assert_eq!(
            Pseudonymizer::new(b"another key", false).find_in(&m, text),
            None
        );
        assert_eq!(p.find_in(&m, "no number here 12345"), None);
        assert_eq!(p.find_in("X-123", text), None);
    }

    #[test]
    fn redaction_leaves_no_identifier() {
        let p = Pseudonymizer::new(b"k", false);
        let text = "where served_msisdn in ('999700000001','+999700000002') and served_imsi = '001010000000001' and served_imei = '359990123456781' and record_id = 12345 and start_time >= '2017-03-06'";
        let r = p.redact(text);
        for raw in [
            "999700000001",
            "999700000002",
            "001010000000001",
            "359990123456781",
        ] {
            assert!(!r.contains(raw), "{r}");
        }
        assert!(r.contains("12345") && r.contains("2017-03-06"));
        assert!(r.contains(&p.id(IdKind::Msisdn, "999700000001")));
        assert!(r.contains(&p.id(IdKind::Imei, "35999012345678")));
        assert!(r.contains(&p.id(IdKind::Imsi, "001010000000001")));
    }
}
