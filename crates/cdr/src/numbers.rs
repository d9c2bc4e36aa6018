//! Subscriber identifiers as values: which literals look like one (an E.164 MSISDN, a 15-digit
//! IMSI, an IMEI with its Luhn digit), and one form per subscriber. Numbers are written with
//! `+`, with `00`, with the national trunk `0` or without, as text or as numbers; a
//! [`Numbering`] brings them to international digits, with the operator's country code read
//! off the evidence (a national number whose international form the evidence also holds) or
//! given.

use std::collections::{HashMap, HashSet};

use crate::sql::IdKind;

/// The digits of a value (spaces, dashes, dots, a leading `+` dropped); `None` when it holds
/// anything else.
pub fn digits(raw: &str) -> Option<String> {
    let t = raw.trim().trim_start_matches('+');
    let d: String = t
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// Whether the last digit of `d` is its Luhn check digit (IMEIs carry one).
pub fn luhn_ok(d: &str) -> bool {
    let sum: u32 = d
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let v = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = v * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether an eight-digit value is a date (`20240501`), which no subscriber number is.
fn is_date(d: &str) -> bool {
    d.len() == 8
        && matches!(&d[..2], "19" | "20")
        && (1..=12).contains(&d[4..6].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d[6..8].parse::<u32>().unwrap_or(0))
}

/// The kind of identifier a literal looks like, by its shape alone.
pub fn shape(raw: &str) -> Option<IdKind> {
    let d = digits(raw)?;
    // Fifteen digits are an IMSI or an IMEI (an IMSI of the test network 001 starts with
    // `00` too); `00` before fewer digits is the international prefix of a number.
    let international = raw.trim().starts_with('+');
    let national_digits = d.strip_prefix("00").filter(|_| d.len() != 15).unwrap_or(&d);
    match d.len() {
        15 if !international => Some(if luhn_ok(&d) {
            IdKind::Imei
        } else {
            IdKind::Imsi
        }),
        16 if !international => Some(IdKind::Imei),
        8..=15 if !is_date(national_digits) => Some(IdKind::Msisdn),
        _ => None,
    }
}

/// How numbers are brought to one form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Numbering {
    /// The operator's country code (`44`), for national numbers (`07700900123`).
    pub country_code: Option<String>,
    /// How it was learnt.
    pub how: String,
}

impl Numbering {
    /// One form per subscriber: MSISDNs as international digits (no `+`, no `00`; a
    /// national `0…` gets the country code when it is known), IMSIs as digits, IMEIs as their
    /// 14-digit body (the check digit and software version are not part of the identity).
    pub fn normalise(&self, kind: IdKind, raw: &str) -> String {
        self.normal(kind, raw).into_owned()
    }

    /// As [`normalise`](Self::normalise), borrowing `raw` when it is in the normal form
    /// already (most values of an extract are): no allocation for them.
    pub fn normal<'a>(&self, kind: IdKind, raw: &'a str) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow;
        if raw.bytes().all(|b| b.is_ascii_digit()) {
            match kind {
                IdKind::Msisdn if !raw.starts_with('0') => return Cow::Borrowed(raw),
                IdKind::Msisdn => {}
                IdKind::Imei => return Cow::Borrowed(raw.get(..14).unwrap_or(raw)),
                _ => return Cow::Borrowed(raw),
            }
        }
        Cow::Owned(self.normalise_plainly(kind, raw))
    }

    /// The plain form of [`normalise`](Self::normalise), which [`normal`](Self::normal)'s
    /// shortcut is checked against.
    fn normalise_plainly(&self, kind: IdKind, raw: &str) -> String {
        let d: String = raw.chars().filter(char::is_ascii_digit).collect();
        match kind {
            IdKind::Msisdn => {
                if let Some(intl) = d.strip_prefix("00") {
                    intl.to_string()
                } else if let (Some(national), Some(cc)) = (d.strip_prefix('0'), &self.country_code)
                {
                    format!("{cc}{national}")
                } else {
                    d
                }
            }
            IdKind::Imei if d.len() >= 15 => d[..14].to_string(),
            _ => d,
        }
    }
}

/// Gathers numbers to find the country code: each national number (`0` then digits) whose
/// international form (a prefix of one to three digits, then the same digits) is also seen is
/// a vote for that prefix.
#[derive(Default)]
pub struct CountryCodeVotes {
    national: HashSet<String>,
    international: HashSet<String>,
    prefixes: HashMap<String, usize>,
}

/// Numbers kept for the vote (the first seen).
const KEEP: usize = 200_000;

impl CountryCodeVotes {
    pub fn add(&mut self, raw: &str) {
        let Some(d) = digits(raw) else { return };
        if let Some(i) = d.strip_prefix("00") {
            self.add_international(i);
        } else if let Some(n) = d.strip_prefix('0') {
            if (7..=12).contains(&n.len()) && self.national.len() < KEEP {
                self.national.insert(n.to_string());
            }
        } else if raw.trim().starts_with('+') || (9..=15).contains(&d.len()) {
            self.add_international(&d);
        }
    }

    fn add_international(&mut self, d: &str) {
        if !(9..=15).contains(&d.len()) {
            return;
        }
        for k in 1..=3 {
            *self.prefixes.entry(d[..k].to_string()).or_default() += 1;
        }
        if self.international.len() < KEEP {
            self.international.insert(d.to_string());
        }
    }

    /// The country code and how many national numbers vouch for it.
    pub fn decide(&self) -> Option<(String, usize)> {
        if self.national.is_empty() {
            return None;
        }
        // The most common prefixes of each length are the candidates.
        let mut candidates: Vec<(&String, &usize)> = self.prefixes.iter().collect();
        candidates.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for (p, _) in candidates.iter().take(12) {
            for n in &self.national {
                if self.international.contains(&format!("{p}{n}")) {
                    *votes.entry(p.as_str()).or_default() += 1;
                }
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.len().cmp(&a.0.len())))
            .map(|(p, n)| (p.to_string(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut for values in the normal form already gives what the plain form gives.
        #[test]
        fn the_borrowing_normal_form_is_the_plain_one(
            raw in "(\\+|00|0)?[0-9 -]{0,18}|[0-9]{0,17}|\\PC{0,6}",
            cc in proptest::option::of("[0-9]{1,3}"),
        ) {
            let n = Numbering { country_code: cc, how: String::new() };
            for kind in [IdKind::Msisdn, IdKind::Imsi, IdKind::Imei] {
                proptest::prop_assert_eq!(n.normal(kind, &raw), n.normalise_plainly(kind, &raw));
            }
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(shape("999700000001"), Some(IdKind::Msisdn));
        assert_eq!(shape("+44 7700 900123"), Some(IdKind::Msisdn));
        assert_eq!(shape("07700900123"), Some(IdKind::Msisdn));
        assert_eq!(shape("001010000000001"), Some(IdKind::Imsi));
        assert_eq!(shape("490154203237518"), Some(IdKind::Imei));
        assert_eq!(shape("20240501"), None);
        assert_eq!(shape("12345"), None);
        assert_eq!(shape("abc"), None);
    }

    #[test]
    fn national_and_international_forms_are_one_subscriber() {
        let mut v = CountryCodeVotes::default();
        for n in [
            "447700900123",
            "447700900124",
            "+447700900555",
            "07700900123",
            "07700900124",
        ] {
            v.add(n);
        }
        let (cc, votes) = v.decide().unwrap();
        assert_eq!((cc.as_str(), votes), ("44", 2));
        let n = Numbering {
            country_code: Some(cc),
            how: String::new(),
        };
        for form in [
            "07700900123",
            "+447700900123",
            "00447700900123",
            "447700900123",
        ] {
            assert_eq!(n.normalise(IdKind::Msisdn, form), "447700900123");
        }
        assert_eq!(
            n.normalise(IdKind::Imei, "490154203237518"),
            "49015420323751"
        );
        assert!(CountryCodeVotes::default().decide().is_none());
    }
}
