//! Subscriber identifiers with valid formats that can never belong to a real person:
//! IMSIs under the E.212 test network MCC 001 / MNC 01, MSISDNs under the unassigned E.164
//! country code 999, IMEIs with a fictional type allocation code and a valid Luhn digit.

use crate::dice::Dice;

/// The mobile country and network codes of the simulated operator (the E.212 test network).
pub const MCC: &str = "001";
pub const MNC: &str = "01";
/// The E.164 country code of the simulated numbering plan (unassigned).
pub const COUNTRY_CODE: &str = "999";

/// `999` + a 9-digit national number starting with 7 (mobile): 12 digits, E.164 without `+`.
pub fn msisdn(dice: &mut Dice) -> String {
    format!("{COUNTRY_CODE}7{:08}", dice.below(100_000_000))
}

/// MCC + MNC + a 10-digit MSIN: 15 digits.
pub fn imsi(dice: &mut Dice) -> String {
    format!("{MCC}{MNC}{:010}", dice.below(10_000_000_000))
}

/// An 8-digit TAC (fictional `35999…`), a 6-digit serial and the Luhn check digit.
pub fn imei(dice: &mut Dice) -> String {
    let body = format!("35999{:03}{:06}", dice.below(1000), dice.below(1_000_000));
    let check = luhn_digit(&body);
    format!("{body}{check}")
}

/// The Luhn check digit that completes `digits`.
pub fn luhn_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Whether a 15-digit IMEI's last digit is its Luhn check digit.
pub fn imei_is_valid(imei: &str) -> bool {
    imei.len() == 15
        && imei.bytes().all(|b| b.is_ascii_digit())
        && luhn_digit(&imei[..14]) == u32::from(imei.as_bytes()[14] - b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_have_valid_formats() {
        let mut d = Dice::new(3, "ids");
        for _ in 0..1000 {
            let m = msisdn(&mut d);
            assert_eq!(m.len(), 12);
            assert!(m.starts_with("9997"));
            let i = imsi(&mut d);
            assert_eq!(i.len(), 15);
            assert!(i.starts_with("00101"));
            assert!(imei_is_valid(&imei(&mut d)));
        }
        // A known IMEI from the GSMA examples: 49015420323751 + check digit 8.
        assert_eq!(luhn_digit("49015420323751"), 8);
    }
}
